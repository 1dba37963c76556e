"""How many usable feedback records each dish has.

    python3 -m classifier.feedback_report feedback/
    python3 -m classifier.feedback_report s3://BUCKET/feedback/ --json

Reads the folder or prefix the app's "Right dish?" answers go to (``FEEDBACK_URI``) the way
training reads it (:func:`classifier.data.read_feedback`): one line per dish, then what was left
out (repeats of a photo, photos whose answers disagree, "no" without a correction).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from classifier.data import FeedbackSet, read_feedback
from dishlens.errors import DishLensError
from dishlens.settings import exit_on_bad_setting, load_settings


def feedback_report(feedback: FeedbackSet) -> dict[str, Any]:
    """The counts of a read feedback source: per dish, and what was kept apart or left out."""
    return {"source": feedback.source, "per_dish": feedback.per_dish(), **feedback.summary()}


def report_text(report: dict[str, Any]) -> str:
    lines = [f"Feedback in {report['source']}: {report['records']} records"]
    lines += [f"  {label:<28} {count:>6}" for label, count in report["per_dish"].items()]
    if not report["per_dish"]:
        lines.append("  (no usable photo of a dish yet)")
    for key, text in (
        ("not_food_photos", "not food (for the not-food detector)"),
        ("for_review_photos", "a dish not in the list (for review)"),
        ("duplicates", "repeats of a photo already counted"),
        ("contradictory_photos", "photos whose answers disagree (left out)"),
        ("without_answer", '"no" without a correction (left out)'),
        ("unreadable", "unreadable records (left out)"),
    ):
        lines.append(f"{text}: {report[key]}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        report = feedback_report(read_feedback(args.source, load_settings().model_cache_dir))
    except DishLensError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else report_text(report))
    return 0


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("source", help="feedback folder or s3://BUCKET/PREFIX/")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


if __name__ == "__main__":
    with exit_on_bad_setting("classifier.feedback_report"):
        sys.exit(main(get_args_parser().parse_args()))
