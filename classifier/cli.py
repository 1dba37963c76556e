"""Command-line options shared by the train, calibrate and evaluate scripts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_option(
    parser: argparse.ArgumentParser,
    flag: str,
    default,
    help_text: str,
    *,
    unset: str = "off",
    kind: Callable[[str], Any] | None = None,
) -> None:
    """``--flag`` of type ``kind``, else typed like its default (an int when the default is
    None), with the default in the help."""
    kind = kind or (int if default is None else type(default))
    shown = unset if default is None else default
    parser.add_argument(flag, type=kind, default=default, help=f"{help_text} (default: {shown})")


def add_data_arguments(parser: argparse.ArgumentParser, batch_size: int = 32) -> None:
    add_option(parser, "--batch-size", batch_size, "photos per forward pass")
    add_option(
        parser, "--limit-per-class", None, "use only the first N photos of each dish", unset="all"
    )
