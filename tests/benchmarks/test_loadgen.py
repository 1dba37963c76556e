"""The load generator: loopback-only targets, strict answer checking, and a 50-request run."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmarks import in_process, loadgen
from benchmarks.http11 import Answer
from tests.support.servers import allocator

# ---------------------------------------------------------------------------------------------
# TARGETS


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://localhost:8123/", "http://127.0.0.1:8123"),
        ("http://127.9.9.9:1", "http://127.9.9.9:1"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_loopback_targets_are_accepted(url: str, normalised: str) -> None:
    assert loadgen.check_loopback(url) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:8000",
        "http://10.0.0.1:8000",
        "http://169.254.169.254/",
        "http://0.0.0.0:8000",
        "http://2130706433:8000",
        "http://[::ffff:10.0.0.1]:8000",
        "https://127.0.0.1:8000",
        "http://user:pw@127.0.0.1:8000",
        "http://localhost.example.com:8000",
    ],
)
def test_other_targets_are_refused(url: str) -> None:
    with pytest.raises(loadgen.TargetRefusedError):
        loadgen.check_loopback(url)


def test_main_refuses_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def no_connect(*args: object) -> None:
        raise AssertionError("loadgen connected to a refused target")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    args = loadgen.get_args_parser().parse_args(["--url", "http://192.168.1.10:8000"])

    assert loadgen.main(args) == 2
    assert "not a loopback address" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# CHECKING ANSWERS


def photo() -> loadgen.Probe:
    return loadgen.photo_probe(loadgen.Photo("apple_pie/1", "apple_pie", b"jpeg", "apple_pie"))


def answer(status: int, body: object, content_type: str = "application/json") -> Answer:
    return Answer(status, {"content-type": content_type}, json.dumps(body).encode())


def classification(label: str) -> dict:
    top = [
        {"label": label, "display_name": label, "probability": 0.9},
        {"label": "other", "display_name": "Other", "probability": 0.1},
    ]
    return {"status": "confident", "top": top}


def test_right_label_is_a_success() -> None:
    error, label_ok = loadgen.check_answer(photo(), answer(200, classification("apple_pie")))
    assert error is None and label_ok


@pytest.mark.parametrize(
    "response",
    [
        answer(200, classification("baklava")),
        answer(503, {"status": 503}),
        answer(200, {"status": "confident", "top": []}),
        answer(200, {**classification("apple_pie"), "status": "maybe"}),
        Answer(200, {"content-type": "application/json"}, b"not json"),
    ],
    ids=["wrong-label", "503", "empty-top", "bad-status", "not-json"],
)
def test_failed_photo_answers_are_never_successes(response) -> None:
    error, label_ok = loadgen.check_answer(photo(), response)
    assert error is not None and not label_ok


def test_invalid_input_needs_its_exact_status_as_problem_json() -> None:
    probe = loadgen.Probe("svg", 415, b"<svg/>", "image/svg+xml")
    problem = {"type": "urn:x", "title": "T", "status": 415, "detail": "D"}

    assert loadgen.check_answer(probe, answer(415, problem, "application/problem+json"))[0] is None
    assert loadgen.check_answer(probe, answer(415, problem))[0] is not None
    assert loadgen.check_answer(probe, answer(422, {**problem, "status": 422}))[0] is not None
    assert loadgen.check_answer(probe, answer(500, problem, "application/problem+json"))[0]


def test_report_fails_when_any_request_failed() -> None:
    good = loadgen.RequestResult(photo(), 10.0, 200, None, True)
    lost = loadgen.RequestResult(photo(), 10.0, None, "photo: transport ReadTimeout")

    assert loadgen.Report([good], 1.0, 1).all_ok()
    assert not loadgen.Report([good, lost], 1.0, 2).all_ok()
    assert not loadgen.Report([], 1.0, 2).all_ok()


def test_the_ratio_uses_the_mean_of_the_slices_beside_the_load() -> None:
    photos = [loadgen.RequestResult(photo(), 10.0, 200, None, True)] * 120
    report = loadgen.Report(photos, 1.0, 120, best="batch 4", beside=[100.0, 200.0, 150.0])

    assert report.best_rate() == 150.0
    assert report.ratio() == pytest.approx(120 / 150)
    assert report.within_ratio() is None


def test_a_second_ratio_against_the_best_setup_that_fits_the_concurrency(capsys) -> None:
    photos = [loadgen.RequestResult(photo(), 10.0, 200, None, True)] * 120
    report = loadgen.Report(photos, 1.0, 120, best="batch 32", beside=[200.0, 240.0])
    report.scan = {"batch 32, 2 callers x 1 thread": 230.0, "batch 4, 2 callers x 1 thread": 150}
    report.concurrency, report.within, report.within_beside = 8, "batch 4", [150.0, 150.0]

    loadgen.print_in_process(report)

    out = capsys.readouterr().out
    assert report.within_ratio() == pytest.approx(120 / 150)
    assert "API / best in-process  0.545 (below the 0.8 target" in out
    assert "  at most 8 at once    0.800 (against the best setup that holds" in out
    assert "  at most 8 at once    batch 4: mean 150.0 photos/s over 2 slices" in out


def test_setups_count_the_photos_they_hold_at_once() -> None:
    assert in_process.Setup(4, 2).in_flight == 8
    assert in_process.Setup(16, 1).in_flight == 16


def test_finalists_are_the_two_best_and_the_best_that_fits_the_concurrency() -> None:
    b32, b16, b4, b2 = (in_process.Setup(n, 2) for n in (32, 16, 4, 2))
    scan = {b2: 90.0, b4: 120.0, b16: 180.0, b32: 200.0}

    assert in_process.pick_finalists(scan, 8) == [b32, b16, b4]
    assert in_process.pick_finalists(scan, 32) == [b32, b16]
    assert in_process.pick_finalists(scan, 1) == [b32, b16]


@pytest.mark.parametrize(("count", "parts"), [(10, 3), (1000, 5), (2, 5), (7, 1)])
def test_the_plan_splits_into_consecutive_parts_of_nearly_equal_length(
    count: int, parts: int
) -> None:
    probes = [loadgen.Probe(f"kind {i}", 415, b"", "text/plain") for i in range(count)]

    split = loadgen.split_plan(probes, parts)

    assert [p for part in split for p in part] == probes
    assert len(split) == min(parts, count)
    assert max(map(len, split)) - min(map(len, split)) <= 1


# ---------------------------------------------------------------------------------------------
# CPUS

needs_affinity = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="this system cannot pin processes to CPUs"
)
# CPUs this process may use (a container's CPU set need not hold CPU 0).
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
CPU = str(CPUS[0]) if CPUS else "0"


@pytest.mark.parametrize(
    ("text", "cpus"), [("0", {0}), ("0,1", {0, 1}), ("0-2,5", {0, 1, 2, 5}), (" 3 , 1", {1, 3})]
)
def test_cpu_lists_read_as_taskset_writes_them(text: str, cpus: set[int]) -> None:
    assert loadgen.parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["", "a", "1,", "2-1", "-1", "0-", "1.5"])
def test_cpu_lists_that_are_not_lists_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a CPU list"):
        loadgen.parse_cpus(text)


@needs_affinity
@pytest.mark.parametrize(
    ("server", "client", "message"),
    [
        (CPU, None, "together"),
        (None, CPU, "together"),
        (CPU, CPU, f"CPUs {CPU} are in both sets"),
        (CPU, "4096", "CPUs 4096 are not available"),
    ],
)
def test_unusable_cpu_plans_exit_2_before_any_work(
    server: str | None, client: str | None, message: str, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--spawn"]
    argv += ["--server-cpus", server] if server else []
    argv += ["--client-cpus", client] if client else []
    args = loadgen.get_args_parser().parse_args(argv)

    assert loadgen.main(args) == 2
    assert message in capsys.readouterr().err


PRINT_AFFINITY = "import os; print(sorted(os.sched_getaffinity(0)))"


@needs_affinity
def test_pinned_moves_every_thread_and_the_processes_it_starts_then_restores() -> None:
    before = os.sched_getaffinity(0)
    one = frozenset({min(before)})
    started = threading.Event()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: (started.set(), stop.wait()))
    thread.start()  # started before the block, as PyTorch's own threads are
    started.wait()
    try:
        with loadgen.pinned(one):
            assert os.sched_getaffinity(0) == one
            assert os.sched_getaffinity(thread.native_id) == one
            child = subprocess.run(
                [sys.executable, "-c", PRINT_AFFINITY], capture_output=True, text=True, check=True
            )
            assert child.stdout.strip() == str(sorted(one))
        assert os.sched_getaffinity(0) == before
        assert os.sched_getaffinity(thread.native_id) == before
    finally:
        stop.set()
        thread.join()


@needs_affinity
def test_pinned_none_changes_nothing() -> None:
    before = os.sched_getaffinity(0)
    with loadgen.pinned(None):
        assert os.sched_getaffinity(0) == before


# ---------------------------------------------------------------------------------------------
# A REAL RUN


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("pin", [False, True], ids=["shared CPUs", "pinned CPUs"])
def test_fifty_requests_against_a_spawned_server(
    pin: bool, food_mnist: Path, capsys: pytest.CaptureFixture
) -> None:
    if pin and len(CPUS) < 2:
        pytest.skip("pinning the server and the generator apart needs 2 CPUs and CPU affinity")
    server, client = (str(CPUS[0]), str(CPUS[-1])) if pin else (None, None)
    cpu_args = ["--server-cpus", server, "--client-cpus", client] if pin else []
    args = loadgen.get_args_parser().parse_args(
        [
            *cpu_args,
            "--spawn",
            "--requests",
            "50",
            "--concurrency",
            "4",
            "--photos",
            "10",
            "--data",
            str(food_mnist),
            "--in-process-seconds",
            "0.5",
            "--scan-seconds",
            "0.3",
            "--batch-sizes",
            "1,2",
            "--duration",
            "120",
        ]
    )

    status = loadgen.main(args)

    out = capsys.readouterr().out
    assert status == 0, out
    assert "success                100.0 % (50/50)" in out
    assert "correct labels         100.0 %" in out
    assert "invalid -> right 4xx   100.0 % (10/10)" in out
    assert "API / best in-process" in out
    assert "over 6 slices around the load's parts" in out
    assert "  at most 4 at once    batch " in out
    assert f"allocator              {allocator()} " in out
    where = f"API and in-process side on {server}, this generator on {client}"
    assert (where if pin else "shared by the API, the in-process side and this generator") in out
