"""Load generator for the DishLens JSON API that checks every answer.

It sends a fixed mix of real val photos (from ``../shared/data/food-mnist``) and invalid inputs
(not an image, SVG, PDF, truncated JPEG, oversize body/photo, private or non-http links, wrong
media type, bad JSON, bad ``top_k``) at a fixed concurrency, bounded by a request count and a
time limit, to a **loopback** server only. Every answer is checked: a photo must come back 200
with the label the same model gives in-process (computed first, same photos, same decoding);
an invalid input must get its expected 4xx as ``application/problem+json``. A request that fails
in any way is never counted a success. In the same run it measures the classifier's best
in-process throughput: a short scan of batch sizes and callers picks the two best setups, and
the best that holds no more photos at once than the load keeps in flight. The load then goes
out in ``--parts`` parts, and those setups are timed again before each part and after the last
(this machine's speed drifts by the minute, so both sides sample the same minutes); the API /
in-process ratio uses the best setup's mean over those slices, and a second ratio the best
setup's that fits the load's concurrency.

By default the generator shares every CPU with the server, so its own work counts against the
API. On a machine with CPUs to spare, ``--server-cpus`` and ``--client-cpus`` put the API and
the in-process timings on one set and the sending on another, which measures the server alone.

    python3 -m benchmarks.loadgen --spawn --requests 1000 --concurrency 8
    python3 -m benchmarks.loadgen --spawn --server-cpus 0,1 --client-cpus 2,3
    python3 -m benchmarks.loadgen --url http://127.0.0.1:8000 --requests 200

Exit status: 0 when every request succeeded (and the ratio met ``--min-ratio`` if given),
1 otherwise, 2 for a refused target or unusable options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import torch

from api.runner import cores_available
from benchmarks import in_process
from benchmarks.common import FOOD_MNIST, allocator, latency_line, spawn_api, val_photos
from benchmarks.http11 import Answer, Connection, ProtocolError
from benchmarks.in_process import Setup, decode
from classifier import Classifier, load_classifier
from dishlens.settings import load_settings
from tests.support.servers import wait_api_ready

DEFAULT_DATA = FOOD_MNIST
PROBLEM_JSON = "application/problem+json"
STATUSES = {"confident", "unsure", "not_food"}


class TargetRefusedError(ValueError):
    """The target is not a loopback address."""


class CpuPlanError(ValueError):
    """``--server-cpus`` / ``--client-cpus`` cannot be used as given."""


# ---------------------------------------------------------------------------------------------
# TARGET


def check_loopback(url: str) -> str:
    """``url`` normalised to ``http://HOST:PORT`` if its host is a loopback address.

    ``localhost`` is rewritten to ``127.0.0.1`` (never resolved); names are refused.

    Raises:
        TargetRefusedError: the URL is not plain http to a loopback IP literal.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or parts.username or parts.password:
        raise TargetRefusedError(f"{url!r}: only plain http:// URLs are accepted")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise TargetRefusedError(f"{url!r}: the host must be a loopback IP address") from None
    if not address.is_loopback:
        raise TargetRefusedError(f"{url!r}: {address} is not a loopback address; refusing")
    port = parts.port or 80
    netloc = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{netloc}:{port}"


# ---------------------------------------------------------------------------------------------
# CPUS


def parse_cpus(text: str) -> frozenset[int]:
    """CPU numbers from a list such as ``0,1`` or ``0-1,4`` (as ``taskset -c`` takes them)."""
    cpus: set[int] = set()
    for item in text.split(","):
        first, dash, last = item.strip().partition("-")
        last = last if dash else first
        if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
            raise argparse.ArgumentTypeError(f"{text!r} is not a CPU list such as 0,1 or 0-1,4")
        cpus.update(range(int(first), int(last) + 1))
    return frozenset(cpus)


def check_cpu_plan(server: frozenset[int] | None, client: frozenset[int] | None) -> None:
    """Both sets or neither, disjoint, and on CPUs this process may use.

    Raises:
        CpuPlanError: saying which of those does not hold.
    """
    if server is None and client is None:
        return
    if server is None or client is None:
        raise CpuPlanError("give --server-cpus and --client-cpus together")
    if not hasattr(os, "sched_setaffinity"):
        raise CpuPlanError("this system cannot pin processes to CPUs")
    missing = (server | client) - os.sched_getaffinity(0)
    if missing:
        raise CpuPlanError(f"CPUs {cpu_list(missing)} are not available to this process")
    if server & client:
        raise CpuPlanError(f"CPUs {cpu_list(server & client)} are in both sets")


def cpu_list(cpus: frozenset[int] | set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


@contextlib.contextmanager
def pinned(cpus: frozenset[int] | None) -> Iterator[None]:
    """Every thread of this process (and any process or thread it starts) on ``cpus`` for the
    block, then back where it was; ``None``: as is.

    PyTorch's thread count must already fit ``cpus`` (``main`` sets it before any PyTorch
    work). A thread pool made larger and then cut down runs slowly when squeezed onto fewer
    CPUs: from 8 threads to 2 on 2 CPUs, a batch took 1.6 times as long; from 16 to 2, up to
    150 times.
    """
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    _set_affinity(cpus)
    try:
        yield
    finally:
        _set_affinity(before)


def _set_affinity(cpus: set[int] | frozenset[int]) -> None:
    # sched_setaffinity(0) moves the calling thread only; PyTorch's threads must move too.
    for thread_id in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            os.sched_setaffinity(int(thread_id), cpus)


# ---------------------------------------------------------------------------------------------
# PHOTOS AND EXPECTED LABELS


@dataclass(frozen=True)
class Photo:
    name: str
    true_label: str
    data: bytes = field(repr=False)
    expected: str = ""


def select_photos(data_dir: Path, count: int) -> list[Photo]:
    """``count`` val photos spread evenly over ``meta/val.txt`` (so every dish appears)."""
    return [
        Photo(f"{path.parent.name}/{path.stem}", path.parent.name, path.read_bytes())
        for path in val_photos(count, data_dir)
    ]


def label_in_process(classifier: Classifier, photos: list[Photo]) -> list[Photo]:
    """The same photos with ``expected`` set to the label the classifier gives in-process."""
    return [
        Photo(p.name, p.true_label, p.data, classifier.predict(decode(p.data)).best.label)
        for p in photos
    ]


# ---------------------------------------------------------------------------------------------
# REQUESTS


@dataclass(frozen=True)
class Probe:
    """One kind of request: what it sends to ``POST /v1/classify`` and what answer it must get."""

    kind: str
    expected_status: int
    body: bytes = field(repr=False)  # up to MAX_IMAGE_MB: never worth printing
    content_type: str
    query: str = ""
    photo: Photo | None = None

    @property
    def target(self) -> str:
        return f"/v1/classify?{self.query}" if self.query else "/v1/classify"


def multipart(name: str, data: bytes, mime: str = "application/octet-stream") -> tuple[bytes, str]:
    """An upload of field ``photo`` as ``(body, content type)``, encoded once here so that
    sending it costs the generator (which shares the server's cores) no encoding work."""
    encoded = httpx.Request("POST", "http://127.0.0.1/", files={"photo": (name, data, mime)})
    return encoded.read(), encoded.headers["content-type"]


def json_body(value: object) -> tuple[bytes, str]:
    return json.dumps(value).encode(), "application/json"


def photo_probe(photo: Photo) -> Probe:
    upload = multipart(photo.name.replace("/", "_") + ".jpg", photo.data, "image/jpeg")
    return Probe("photo", 200, *upload, photo=photo)


def invalid_probes(sample_jpeg: bytes, max_image_mb: int) -> list[Probe]:
    """Inputs the API must refuse with a 4xx, each with the status it must give."""
    cap = max_image_mb * 1024 * 1024
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'
    too_big = sample_jpeg + b"\0" * cap

    return [
        Probe("not_an_image", 415, *multipart("notes.jpg", b"this is not a photo\n" * 50)),
        Probe("svg", 415, *multipart("drawing.svg", svg, "image/svg+xml")),
        Probe("pdf", 415, *multipart("menu.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\n")),
        Probe("truncated_jpeg", 422, *multipart("cut.jpg", sample_jpeg[: len(sample_jpeg) // 3])),
        Probe("oversize_body", 413, *multipart("huge.jpg", too_big + b"\0" * 256 * 1024)),
        Probe("oversize_photo", 413, *multipart("big.jpg", too_big)),
        Probe("private_url", 400, *json_body({"url": "http://127.0.0.1:9/food.jpg"})),
        Probe("non_http_url", 400, *json_body({"url": "ftp://127.0.0.1/food.jpg"})),
        Probe("json_missing_url", 422, *json_body({"link": "http://127.0.0.1/x.jpg"})),
        Probe("bad_json", 422, b'{"url": ', "application/json"),
        Probe("text_body", 415, b"hello", "text/plain"),
        Probe("bad_top_k", 422, *multipart("ok.jpg", sample_jpeg, "image/jpeg"), query="top_k=0"),
    ]


def plan(
    photos: list[Photo], invalid: list[Probe], count: int, invalid_share: float, seed: int
) -> list[Probe]:
    """``count`` probes: photos in turn, with every invalid kind mixed in at ``invalid_share``."""
    rng = random.Random(seed)
    n_invalid = round(count * invalid_share)
    probes = [invalid[i % len(invalid)] for i in range(n_invalid)]
    photo_probes = [photo_probe(photo) for photo in photos]
    probes += [photo_probes[i % len(photos)] for i in range(count - n_invalid)]
    rng.shuffle(probes)
    return probes


# ---------------------------------------------------------------------------------------------
# CHECKING ANSWERS


@dataclass
class RequestResult:
    probe: Probe
    latency_ms: float
    status: int | None
    error: str | None = None
    label_ok: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def check_answer(probe: Probe, response: Answer) -> tuple[str | None, bool]:
    """``(error, label_ok)``: ``error`` is None only when the answer is right in every respect."""
    if response.status_code != probe.expected_status:
        return f"{probe.kind}: expected {probe.expected_status}, got {response.status_code}", False
    if probe.photo is None:
        return check_problem(probe, response), False
    return check_classification(probe.photo, response)


def check_problem(probe: Probe, response: Answer) -> str | None:
    if response.headers.get("content-type", "").split(";")[0] != PROBLEM_JSON:
        return f"{probe.kind}: not {PROBLEM_JSON}"
    body = parse_json(response)
    if not isinstance(body, dict) or body.get("status") != response.status_code:
        return f"{probe.kind}: malformed problem body"
    if not all(isinstance(body.get(k), str) and body[k] for k in ("type", "title", "detail")):
        return f"{probe.kind}: problem lacks type/title/detail"
    return None


def check_classification(photo: Photo, response: Answer) -> tuple[str | None, bool]:
    body = parse_json(response)
    top = body.get("top") if isinstance(body, dict) else None
    if not top or not isinstance(top, list) or body.get("status") not in STATUSES:
        return "photo: malformed classification body", False
    probabilities = [item.get("probability", -1.0) for item in top]
    if probabilities != sorted(probabilities, reverse=True) or not 0 <= probabilities[0] <= 1:
        return "photo: probabilities not sorted or out of range", False
    if top[0].get("label") != photo.expected:
        return "photo: label differs from the in-process classifier", False
    return None, True


def parse_json(response: Answer) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------------------------------------
# RUNNING


async def send(connection: Connection, probe: Probe, timeout: float) -> RequestResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            response = await connection.post(probe.target, probe.body, probe.content_type)
    except (OSError, asyncio.IncompleteReadError, ProtocolError, TimeoutError) as error:
        connection.close()
        latency = (time.perf_counter() - started) * 1000
        return RequestResult(
            probe, latency, None, f"{probe.kind}: transport {type(error).__name__}"
        )
    latency = (time.perf_counter() - started) * 1000
    problem, label_ok = check_answer(probe, response)
    return RequestResult(probe, latency, response.status_code, problem, label_ok)


async def run_load(
    base_url: str, probes: list[Probe], *, concurrency: int, duration: float, timeout: float
) -> tuple[list[RequestResult], float]:
    """Send ``probes`` from ``concurrency`` senders, each on its own kept-alive connection,
    until all are sent or ``duration`` has passed."""
    parts = urlsplit(base_url)
    queue = iter(probes)
    outcomes: list[RequestResult] = []
    started = time.perf_counter()
    deadline = started + duration

    async def sender() -> None:
        connection = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            for probe in queue:
                if time.perf_counter() > deadline:
                    return
                outcomes.append(await send(connection, probe, timeout))
        finally:
            connection.close()

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return outcomes, time.perf_counter() - started


def check_same_model(base_url: str, classifier: Classifier) -> None:
    with httpx.Client(base_url=base_url, trust_env=False, timeout=10.0) as client:
        card = client.get("/v1/model").json()
    ours = {k: classifier.card.get(k) for k in ("name", "version", "weights_sha256")}
    theirs = {k: card.get(k) for k in ours}
    if ours != theirs:
        raise RuntimeError(f"the server runs another model: {theirs} (in-process: {ours})")


# ---------------------------------------------------------------------------------------------
# REPORT


@dataclass
class Report:
    outcomes: list[RequestResult]
    seconds: float
    planned: int
    scan: dict[str, float] = field(default_factory=dict)  # every setup, before the load
    best: str | None = None  # the best setup timed again between the load's parts,
    beside: list[float] = field(default_factory=list)  # its photos/s in each of those slices
    # The same for the best setup with no more photos at once than the load's concurrency
    concurrency: int = 0
    within: str | None = None
    within_beside: list[float] = field(default_factory=list)
    cpus: str = ""  # where each side ran

    def best_rate(self) -> float:
        return mean(self.beside)

    def within_ratio(self) -> float | None:
        rate = mean(self.within_beside)
        return self.photo_rate() / rate if rate else None

    def photos(self) -> list[RequestResult]:
        return [o for o in self.outcomes if o.probe.photo is not None]

    def invalid(self) -> list[RequestResult]:
        return [o for o in self.outcomes if o.probe.photo is None]

    def photo_rate(self) -> float:
        return sum(o.ok for o in self.photos()) / self.seconds if self.seconds else 0.0

    def ratio(self) -> float | None:
        best = self.best_rate()
        return self.photo_rate() / best if best else None

    def all_ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} % ({part}/{whole})" if whole else "n/a (0)"


def print_report(report: Report, *, concurrency: int, model: str) -> None:
    outcomes = report.outcomes
    print(f"model                  {model}")
    cut = " (stopped by --duration)" if len(outcomes) < report.planned else ""
    print(
        f"requests               {len(outcomes)} sent of {report.planned} planned{cut}, "
        f"concurrency {concurrency}, {report.seconds:.1f} s"
    )
    if report.cpus:
        print(f"cpus                   {report.cpus}")
    print_answers(report)
    print(
        f"throughput             {len(outcomes) / report.seconds:.1f} req/s, "
        f"{report.photo_rate():.1f} photos/s"
    )
    groups = {"all": outcomes, "photos": report.photos(), "invalid": report.invalid()}
    for name, group in groups.items():
        print(latency_line(f"latency {name}", [o.latency_ms for o in group]))
    errors = Counter(o.error for o in outcomes if o.error)
    print("errors by kind         " + ("none" if not errors else ""))
    for error, n in errors.most_common():
        print(f"  {n:5d}  {error}")
    print_in_process(report)


def print_answers(report: Report) -> None:
    """How many requests were answered, succeeded, got the right label or the right 4xx."""
    outcomes, photos, invalid = report.outcomes, report.photos(), report.invalid()
    answered = [o for o in outcomes if o.status is not None]
    print(f"answered               {rate(len(answered), len(outcomes))}")
    print(f"success                {rate(sum(o.ok for o in outcomes), len(outcomes))}")
    print(f"correct labels         {rate(sum(o.label_ok for o in photos), len(photos))}")
    print(f"invalid -> right 4xx   {rate(sum(o.ok for o in invalid), len(invalid))}")


def print_in_process(report: Report) -> None:
    if not report.scan:
        print("in-process             not measured")
        return
    print(f"allocator              {allocator()} (in-process side; a spawned server inherits it)")
    print("in-process, decode + classify (scan before the load, to pick the finalists):")
    for name, value in report.scan.items():
        print(f"  {name:<32} {value:6.1f} photos/s")
    print(f"best in-process        {report.best}: {slices(report.beside)}")
    within = f"  at most {report.concurrency} at once"
    if report.within:
        print(f"{within:<23}{report.within}: {slices(report.within_beside)}")
    ratio = report.ratio()
    verdict = "meets" if ratio is not None and ratio >= 0.8 else "below"
    print(
        f"API / best in-process  {ratio:.3f} ({verdict} the 0.8 target; API photos/s counted "
        "over the whole run, invalid requests included)"
    )
    within_ratio = report.within_ratio()
    if within_ratio is not None:
        print(
            f"{within:<23}{within_ratio:.3f} (against the best setup that holds no more photos "
            "at once than the load keeps in flight)"
        )


def slices(rates: list[float]) -> str:
    return (
        f"mean {mean(rates):.1f} photos/s over {len(rates)} slices around the load's parts "
        f"({min(rates):.1f}–{max(rates):.1f})"
    )


# ---------------------------------------------------------------------------------------------
# CLI


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        add_help=add_help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="base URL of a running API (loopback only)")
    target.add_argument(
        "--spawn", action="store_true", help="start uvicorn api.main:app on a free loopback port"
    )
    parser.add_argument("--requests", type=int, default=1000, help="requests to send")
    parser.add_argument(
        "--duration", type=float, default=600.0, help="stop sending after this many seconds"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--invalid-share", type=float, default=0.2, help="share of invalid inputs")
    parser.add_argument("--photos", type=int, default=100, help="distinct val photos to use")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="food-mnist folder")
    parser.add_argument(
        "--model", default=None, help="model dir or s3:// URI (default: MODEL_URI or bundled)"
    )
    parser.add_argument(
        "--max-image-mb",
        type=int,
        default=None,
        help="the server's MAX_IMAGE_MB (default: setting)",
    )
    parser.add_argument(
        "--in-process-seconds",
        type=float,
        default=10.0,
        help="seconds for each in-process finalist, split over the slices before "
        "each part of the load and after the last (0: skip every in-process measurement)",
    )
    parser.add_argument(
        "--parts",
        type=int,
        default=5,
        help="send the load in this many parts, with the in-process finalists timed between them",
    )
    parser.add_argument(
        "--scan-seconds",
        type=float,
        default=2.0,
        help="seconds per in-process setup (batch size x callers) in the scan that picks the best",
    )
    parser.add_argument(
        "--batch-sizes", default="1,2,4,8,16,32", help="in-process batch sizes to scan"
    )
    parser.add_argument(
        "--server-cpus",
        type=parse_cpus,
        default=None,
        help="CPUs (e.g. 0,1) for the spawned API and the in-process timings, so that this "
        "generator's own work runs beside them on --client-cpus (default: all share every CPU; "
        "with --url, pin the server yourself, e.g. with taskset)",
    )
    parser.add_argument(
        "--client-cpus", type=parse_cpus, default=None, help="CPUs for sending the load"
    )
    parser.add_argument(
        "--min-ratio", type=float, default=None, help="fail below this API/in-process ratio"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=0, help="shuffles the request mix")
    return parser


def main(args: argparse.Namespace) -> int:
    try:
        base_url = check_loopback(args.url) if args.url else None
    except TargetRefusedError as error:
        print(f"loadgen: {error}", file=sys.stderr)
        return 2
    if args.requests < 1 or args.concurrency < 1 or not 0 <= args.invalid_share <= 1:
        print(
            "loadgen: --requests and --concurrency must be ≥ 1, --invalid-share in [0, 1]",
            file=sys.stderr,
        )
        return 2
    try:
        check_cpu_plan(args.server_cpus, args.client_cpus)
    except CpuPlanError as error:
        print(f"loadgen: {error}", file=sys.stderr)
        return 2
    if args.server_cpus is not None:
        torch.set_num_threads(len(args.server_cpus))  # before PyTorch starts its thread pool
    max_image_mb = args.max_image_mb or load_settings().max_image_mb
    classifier = load_classifier(args.model)
    photos = label_in_process(classifier, select_photos(args.data, args.photos))
    if base_url is None:
        with contextlib.ExitStack() as stack:
            with pinned(args.server_cpus):  # the server's processes inherit the CPUs
                spawned = stack.enter_context(
                    spawn_api(model=args.model, max_image_mb=max_image_mb)
                )
            return run(spawned, args, classifier, photos, max_image_mb)
    wait_api_ready(base_url, None, 30.0)
    return run(base_url, args, classifier, photos, max_image_mb)


def run(
    base_url: str,
    args: argparse.Namespace,
    classifier: Classifier,
    photos: list[Photo],
    max_image_mb: int,
) -> int:
    check_same_model(base_url, classifier)
    invalid = invalid_probes(photos[0].data, max_image_mb)
    probes = plan(photos, invalid, args.requests, args.invalid_share, args.seed)
    images = [p.data for p in photos]
    with pinned(args.server_cpus):
        scan = scan_in_process(args, classifier, images)
    finalists = in_process.pick_finalists(scan, args.concurrency)
    beside: dict[Setup, list[float]] = {setup: [] for setup in finalists}
    outcomes, seconds = send_in_parts(base_url, args, probes, classifier, images, beside)
    report = Report(outcomes, seconds, len(probes), concurrency=args.concurrency)
    report.cpus = describe_cpus(args)
    report.scan = {setup.name: rate for setup, rate in scan.items()}
    add_in_process(report, beside, args.concurrency)
    print_report(report, concurrency=args.concurrency, model=classifier.name)
    ratio = report.ratio()
    ratio_ok = args.min_ratio is None or (ratio is not None and ratio >= args.min_ratio)
    return 0 if report.all_ok() and ratio_ok else 1


def send_in_parts(
    base_url: str,
    args: argparse.Namespace,
    probes: list[Probe],
    classifier: Classifier,
    images: list[bytes],
    beside: dict[Setup, list[float]],
) -> tuple[list[RequestResult], float]:
    """Send ``probes`` in ``--parts`` parts, timing the in-process finalists (``beside``)
    before each part and after the last; every answer, and the seconds spent sending.

    The machine's speed drifts by the minute, so both sides sample the same minutes. (The last
    few requests of each part run below full concurrency, which if anything costs the API.)
    """
    outcomes: list[RequestResult] = []
    seconds = 0.0
    parts = split_plan(probes, args.parts)
    slice_seconds = args.in_process_seconds / (len(parts) + 1)
    for number, part in enumerate(parts):
        if seconds >= args.duration:
            break
        with pinned(args.server_cpus):
            in_process.time_finalists(
                classifier, images, beside, slice_seconds, reverse=number % 2 == 1
            )
        with pinned(args.client_cpus):
            load = run_load(
                base_url,
                part,
                concurrency=args.concurrency,
                duration=args.duration - seconds,
                timeout=args.timeout,
            )
            done, took = asyncio.run(load)
        outcomes.extend(done)
        seconds += took
    with pinned(args.server_cpus):
        in_process.time_finalists(
            classifier, images, beside, slice_seconds, reverse=len(parts) % 2 == 1
        )
    return outcomes, seconds


def add_in_process(report: Report, beside: dict[Setup, list[float]], concurrency: int) -> None:
    """Name in ``report`` the best finalist, and the best that fits ``concurrency``."""
    if beside:
        best = in_process.fastest(beside, beside)
        report.best, report.beside = best.name, beside[best]
    if fitting := [s for s in beside if s.in_flight <= concurrency]:
        within = in_process.fastest(fitting, beside)
        report.within, report.within_beside = within.name, beside[within]


def describe_cpus(args: argparse.Namespace) -> str:
    if args.server_cpus is None:
        return f"all {cores_available()} shared by the API, the in-process side and this generator"
    return (
        f"API and in-process side on {cpu_list(args.server_cpus)}, "
        f"this generator on {cpu_list(args.client_cpus)}"
    )


def split_plan(probes: list[Probe], parts: int) -> list[list[Probe]]:
    """``probes`` in ``parts`` consecutive runs of (nearly) equal length, none empty."""
    parts = max(1, min(parts, len(probes)))
    return [probes[i * len(probes) // parts : (i + 1) * len(probes) // parts] for i in range(parts)]


def scan_in_process(
    args: argparse.Namespace, classifier: Classifier, images: list[bytes]
) -> dict[Setup, float]:
    """Photos/s of every in-process setup ({} when skipped)."""
    if args.in_process_seconds <= 0:
        return {}
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    return in_process.scan(classifier, images, sizes, args.scan_seconds)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
