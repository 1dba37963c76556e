"""Load generator for the DishLens JSON API that checks every answer.

It sends a fixed mix of real val photos (from ``../shared/data/food-mnist``) and invalid inputs
(not an image, SVG, PDF, truncated JPEG, oversize body/photo, private or non-http links, wrong
media type, bad JSON, bad ``top_k``) at a fixed concurrency, bounded by a request count and a
time limit, to a **loopback** server only. Every answer is checked: a photo must come back 200
with the label the same model gives in-process (computed first, same photos, same decoding);
an invalid input must get its expected 4xx as ``application/problem+json``. A request that fails
in any way is never counted a success. In the same run it measures the classifier's best
in-process throughput (batch 1 and small batches) and prints the API / in-process ratio.

    python benchmarks/loadgen.py --spawn --requests 1000 --concurrency 8
    python benchmarks/loadgen.py --url http://127.0.0.1:8000 --requests 200

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
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import intake  # noqa: E402
from api.runner import cores_available  # noqa: E402
from classifier import Classifier, load_classifier  # noqa: E402
from dishlens.settings import load_settings  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "food-mnist"
PROBLEM_JSON = "application/problem+json"
STATUSES = {"confident", "unsure", "not_food"}


class TargetRefusedError(ValueError):
    """The target is not a loopback address."""


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def spawn_server(
    *, model: str | None, max_image_mb: int, ready_timeout: float = 120.0
) -> Iterator[str]:
    """Start ``uvicorn api.main:app`` on a free loopback port; yield its base URL."""
    port = free_port()
    env = dict(os.environ, ALLOW_PRIVATE_URLS="false", MAX_IMAGE_MB=str(max_image_mb))
    if model:
        env["MODEL_URI"] = model
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, ready_timeout)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(base_url: str, process: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the API server exited with status {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"the API at {base_url} was not ready after {timeout:.0f} s")


# ---------------------------------------------------------------------------------------------
# PHOTOS AND EXPECTED LABELS


@dataclass(frozen=True)
class Photo:
    name: str
    true_label: str
    data: bytes
    expected: str = ""


def select_photos(data_dir: Path, count: int) -> list[Photo]:
    """``count`` val photos spread evenly over ``meta/val.txt`` (so every dish appears)."""
    entries = (data_dir / "meta" / "val.txt").read_text().split()
    stride = max(len(entries) // max(count, 1), 1)
    chosen = entries[::stride][:count]
    return [
        Photo(entry, entry.split("/")[0], (data_dir / "images" / f"{entry}.jpg").read_bytes())
        for entry in chosen
    ]


def decode(data: bytes) -> Image.Image:
    """Decode exactly as the API does."""
    return intake.image_from_bytes(data)


def label_in_process(classifier: Classifier, photos: list[Photo]) -> list[Photo]:
    """The same photos with ``expected`` set to the label the classifier gives in-process."""
    return [
        Photo(p.name, p.true_label, p.data, classifier.predict(decode(p.data)).best.label)
        for p in photos
    ]


def measure_in_process(
    classifier: Classifier,
    photos: list[bytes],
    *,
    seconds: float,
    batch_sizes: Sequence[int],
    callers: int,
) -> dict[str, float]:
    """Photos per second of decoding plus ``predict_batch``, ``seconds`` per configuration.

    Each photo is decoded from its bytes inside the timed loop, as the API must do (and as
    ``benchmarks/bench_classifier.py`` times ``predict``).

    Two configurations per batch size: one caller with PyTorch's own thread count, and
    ``callers`` concurrent callers with one thread each (what the API's runner does).
    """
    rates = {}
    with ThreadPoolExecutor(callers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for size in batch_sizes:
            started = time.perf_counter()
            done = _predict_for(classifier, photos, size, seconds)
            rates[f"batch {size}, 1 caller"] = done / (time.perf_counter() - started)
            started = time.perf_counter()
            jobs = [
                pool.submit(_predict_for, classifier, photos, size, seconds) for _ in range(callers)
            ]
            done = sum(job.result() for job in jobs)
            rates[f"batch {size}, {callers} callers x 1 thread"] = done / (
                time.perf_counter() - started
            )
    return rates


def _predict_for(classifier: Classifier, photos: list[bytes], size: int, seconds: float) -> int:
    """Decode and classify ``photos`` in batches of ``size`` for ``seconds``; how many were done."""
    classifier.predict_batch([decode(data) for data in photos[:size]])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = [decode(photos[(done + i) % len(photos)]) for i in range(size)]
        classifier.predict_batch(batch)
        done += size
    return done


# ---------------------------------------------------------------------------------------------
# REQUESTS


@dataclass(frozen=True)
class Probe:
    """One kind of request: how to send it and what answer it must get."""

    kind: str
    expected_status: int
    request: dict[str, Any]
    photo: Photo | None = None


def multipart(name: str, data: bytes, mime: str = "application/octet-stream") -> dict[str, Any]:
    """An upload of field ``photo``, encoded once here so that sending it costs the generator
    (which shares the server's cores) no encoding work."""
    encoded = httpx.Request("POST", "http://127.0.0.1/", files={"photo": (name, data, mime)})
    return {
        "content": encoded.read(),
        "headers": {"content-type": encoded.headers["content-type"]},
    }


def photo_probe(photo: Photo) -> Probe:
    upload = multipart(photo.name.replace("/", "_") + ".jpg", photo.data, "image/jpeg")
    return Probe("photo", 200, upload, photo)


def invalid_probes(sample_jpeg: bytes, max_image_mb: int) -> list[Probe]:
    """Inputs the API must refuse with a 4xx, each with the status it must give."""
    cap = max_image_mb * 1024 * 1024
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'

    return [
        Probe("not_an_image", 415, multipart("notes.jpg", b"this is not a photo\n" * 50)),
        Probe("svg", 415, multipart("drawing.svg", svg, "image/svg+xml")),
        Probe("pdf", 415, multipart("menu.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\n")),
        Probe("truncated_jpeg", 422, multipart("cut.jpg", sample_jpeg[: len(sample_jpeg) // 3])),
        Probe(
            "oversize_body", 413, multipart("huge.jpg", sample_jpeg + b"\0" * (cap + 256 * 1024))
        ),
        Probe("oversize_photo", 413, multipart("big.jpg", sample_jpeg + b"\0" * cap)),
        Probe("private_url", 400, {"json": {"url": "http://127.0.0.1:9/food.jpg"}}),
        Probe("non_http_url", 400, {"json": {"url": "ftp://127.0.0.1/food.jpg"}}),
        Probe("json_missing_url", 422, {"json": {"link": "http://127.0.0.1/x.jpg"}}),
        Probe(
            "bad_json",
            422,
            {"content": b'{"url": ', "headers": {"content-type": "application/json"}},
        ),
        Probe("text_body", 415, {"content": b"hello", "headers": {"content-type": "text/plain"}}),
        Probe(
            "bad_top_k",
            422,
            {**multipart("ok.jpg", sample_jpeg, "image/jpeg"), "params": {"top_k": 0}},
        ),
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
class Outcome:
    probe: Probe
    latency_ms: float
    status: int | None
    error: str | None = None
    label_ok: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def check_answer(probe: Probe, response: httpx.Response) -> tuple[str | None, bool]:
    """``(error, label_ok)``: ``error`` is None only when the answer is right in every respect."""
    if response.status_code != probe.expected_status:
        return f"{probe.kind}: expected {probe.expected_status}, got {response.status_code}", False
    if probe.photo is None:
        return check_problem(probe, response), False
    return check_classification(probe.photo, response)


def check_problem(probe: Probe, response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").split(";")[0] != PROBLEM_JSON:
        return f"{probe.kind}: not {PROBLEM_JSON}"
    body = parse_json(response)
    if not isinstance(body, dict) or body.get("status") != response.status_code:
        return f"{probe.kind}: malformed problem body"
    if not all(isinstance(body.get(k), str) and body[k] for k in ("type", "title", "detail")):
        return f"{probe.kind}: problem lacks type/title/detail"
    return None


def check_classification(photo: Photo, response: httpx.Response) -> tuple[str | None, bool]:
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


def parse_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------------------------------------
# RUNNING


async def send(client: httpx.AsyncClient, probe: Probe) -> Outcome:
    started = time.perf_counter()
    try:
        response = await client.post("/v1/classify", **probe.request)
    except httpx.HTTPError as error:
        latency = (time.perf_counter() - started) * 1000
        return Outcome(probe, latency, None, f"{probe.kind}: transport {type(error).__name__}")
    latency = (time.perf_counter() - started) * 1000
    error, label_ok = check_answer(probe, response)
    return Outcome(probe, latency, response.status_code, error, label_ok)


async def run_load(
    base_url: str, probes: list[Probe], *, concurrency: int, duration: float, timeout: float
) -> tuple[list[Outcome], float]:
    """Send ``probes`` with ``concurrency`` workers until done or ``duration`` has passed."""
    queue = iter(probes)
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    deadline = started + duration

    async def worker(client: httpx.AsyncClient) -> None:
        for probe in queue:
            if time.perf_counter() > deadline:
                return
            outcomes.append(await send(client, probe))

    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, limits=limits, timeout=timeout
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
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
    outcomes: list[Outcome]
    seconds: float
    planned: int
    in_process: dict[str, float] = field(default_factory=dict)

    def photos(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.probe.photo is not None]

    def invalid(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.probe.photo is None]

    def photo_rate(self) -> float:
        return sum(o.ok for o in self.photos()) / self.seconds if self.seconds else 0.0

    def ratio(self) -> float | None:
        best = max(self.in_process.values(), default=0.0)
        return self.photo_rate() / best if best else None

    def all_ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} % ({part}/{whole})" if whole else "n/a (0)"


def print_report(report: Report, *, concurrency: int, model: str) -> None:
    outcomes, photos, invalid = report.outcomes, report.photos(), report.invalid()
    answered = [o for o in outcomes if o.status is not None]
    print(f"model                  {model}")
    cut = " (stopped by --duration)" if len(outcomes) < report.planned else ""
    print(
        f"requests               {len(outcomes)} sent of {report.planned} planned{cut}, "
        f"concurrency {concurrency}, {report.seconds:.1f} s"
    )
    print(f"answered               {rate(len(answered), len(outcomes))}")
    print(f"success                {rate(sum(o.ok for o in outcomes), len(outcomes))}")
    print(f"correct labels         {rate(sum(o.label_ok for o in photos), len(photos))}")
    print(f"invalid -> right 4xx   {rate(sum(o.ok for o in invalid), len(invalid))}")
    print(
        f"throughput             {len(outcomes) / report.seconds:.1f} req/s, "
        f"{report.photo_rate():.1f} photos/s"
    )
    for name, group in (("all", outcomes), ("photos", photos), ("invalid", invalid)):
        lat = [o.latency_ms for o in group]
        print(
            f"latency {name:<8}       p50 {percentile(lat, 50):.1f} ms  p95 "
            f"{percentile(lat, 95):.1f} ms  p99 {percentile(lat, 99):.1f} ms"
        )
    errors = Counter(o.error for o in outcomes if o.error)
    print("errors by kind         " + ("none" if not errors else ""))
    for error, n in errors.most_common():
        print(f"  {n:5d}  {error}")
    print_in_process(report)


def print_in_process(report: Report) -> None:
    if not report.in_process:
        print("in-process             not measured")
        return
    print("in-process, decode + classify (mean of before and after the load):")
    for name, value in report.in_process.items():
        print(f"  {name:<32} {value:6.1f} photos/s")
    ratio = report.ratio()
    verdict = "meets" if ratio is not None and ratio >= 0.8 else "below"
    print(
        f"API / best in-process  {ratio:.2f} ({verdict} the 0.8 target; API photos/s counted "
        "over the whole run, invalid requests included)"
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
        help="seconds per in-process configuration (batch size x callers), split before and "
        "after the load (0: skip)",
    )
    parser.add_argument("--batch-sizes", default="1,2,4", help="in-process batch sizes")
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
    max_image_mb = args.max_image_mb or load_settings().max_image_mb
    classifier = load_classifier(args.model)
    photos = label_in_process(classifier, select_photos(args.data, args.photos))
    if base_url is None:
        with spawn_server(model=args.model, max_image_mb=max_image_mb) as spawned:
            return run(spawned, args, classifier, photos, max_image_mb)
    wait_ready(base_url, None, 30.0)
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
    before = in_process(args, classifier, photos)
    outcomes, seconds = asyncio.run(
        run_load(
            base_url,
            probes,
            concurrency=args.concurrency,
            duration=args.duration,
            timeout=args.timeout,
        )
    )
    after = in_process(args, classifier, photos)
    report = Report(outcomes, seconds, len(probes))
    report.in_process = {name: (before[name] + after[name]) / 2 for name in before}
    print_report(report, concurrency=args.concurrency, model=classifier.name)
    ratio = report.ratio()
    ratio_ok = args.min_ratio is None or (ratio is not None and ratio >= args.min_ratio)
    return 0 if report.all_ok() and ratio_ok else 1


def in_process(
    args: argparse.Namespace, classifier: Classifier, photos: list[Photo]
) -> dict[str, float]:
    """In-process throughput per configuration ({} when skipped). Run before and after the
    load and averaged, so a busy spell on the machine weighs on both sides alike."""
    if args.in_process_seconds <= 0:
        return {}
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    return measure_in_process(
        classifier,
        [p.data for p in photos],
        seconds=args.in_process_seconds / 2,
        batch_sizes=sizes,
        callers=cores_available(),
    )


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
