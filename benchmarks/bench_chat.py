"""Time to first token through ``llm_client.Chat`` vs a bare ``InferenceClient``, same run, same
local SSE server; and the offline answerer's latency.

    python3 -m benchmarks.bench_chat --iterations 300

Prints p50/p90 for both paths and the overhead at p50 (target: at most 5 ms).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator

# Otherwise huggingface_hub's first request also asks huggingface.co for its agent list.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_HUB_OFFLINE", None)

from huggingface_hub import InferenceClient

from benchmarks.common import percentile
from dishlens.settings import load_settings
from llm_client import DishContext, make_chat
from llm_client.offline import offline_answer
from llm_client.prompts import build_messages
from tests.support.chat_server import ChatServer

DISH = DishContext("apple_pie", 0.87, alternatives=["bread_pudding", "baklava"])
HISTORY = [
    {"role": "user", "content": "What is in it?"},
    {"role": "assistant", "content": "Apples, flour, butter, sugar and cinnamon."},
]
QUESTION = "Is it gluten-free?"
MS = 1000.0


def first_token_seconds(open_stream: Callable[[], Iterator[str]]) -> float:
    """Seconds until the first text delta; the rest of the stream is read but not timed."""
    start = time.perf_counter()
    stream = open_stream()
    next(stream)
    elapsed = time.perf_counter() - start
    for _ in stream:
        pass
    return elapsed


def bare_stream(client: InferenceClient, messages: list[dict[str, str]], model: str):
    def open_stream() -> Iterator[str]:
        chunks = client.chat_completion(messages, model=model, stream=True, max_tokens=512)
        return (
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        )

    return open_stream


def bench_remote(iterations: int, warmup: int) -> tuple[list[float], list[float]]:
    server = ChatServer().start()
    try:
        settings = dataclasses.replace(load_settings({}), llm_base_url=server.url)
        chat = make_chat(settings)
        messages = build_messages(
            QUESTION, DISH, HISTORY, budget_tokens=settings.llm_context_tokens
        )
        client = InferenceClient(base_url=server.url, api_key="EMPTY", timeout=settings.llm_timeout)
        through_chat = lambda: chat.stream_answer(QUESTION, DISH, HISTORY)  # noqa: E731
        bare = bare_stream(client, messages, settings.llm_model)
        chat_times: list[float] = []
        bare_times: list[float] = []
        for index in range(warmup + iterations):
            # Alternate which goes first so drift on a busy machine hits both alike.
            order = [(through_chat, chat_times), (bare, bare_times)]
            for open_stream, times in order if index % 2 else reversed(order):
                elapsed = first_token_seconds(open_stream)
                if index >= warmup:
                    times.append(elapsed)
        return chat_times, bare_times
    finally:
        server.stop()


def bench_offline(repeats: int) -> list[float]:
    questions = [
        "What's in it?",
        "Is it gluten-free?",
        "How many calories?",
        "Is it vegan?",
        "How do I make it?",
        "Where is it from?",
        "Is it spicy?",
    ]
    labels = ["apple_pie", "pad_thai", "sushi", "hummus", "ramen", "not_a_dish"]
    times = []
    for _ in range(repeats):
        for label in labels:
            dish = DishContext(label, 0.9)
            for question in questions:
                start = time.perf_counter()
                offline_answer(question, dish)
                times.append(time.perf_counter() - start)
    return times


def main(args: argparse.Namespace) -> int:
    chat_times, bare_times = bench_remote(args.iterations, args.warmup)
    offline_times = bench_offline(args.offline_repeats)
    overhead = (statistics.median(chat_times) - statistics.median(bare_times)) * MS
    paired = statistics.median(c - b for c, b in zip(chat_times, bare_times, strict=True)) * MS
    print(f"time to first token, {len(chat_times)} iterations each (local SSE server):")
    print(_row("Chat.stream_answer", chat_times))
    print(_row("bare InferenceClient", bare_times))
    print(
        f"  overhead at p50        {overhead:7.3f} ms (median of paired differences "
        f"{paired:.3f} ms; target <= 5 ms)"
    )
    print(f"offline answer, {len(offline_times)} answers:")
    print(_row("offline_answer", offline_times) + " (target p50 <= 20 ms)")
    return 0 if overhead <= 5.0 and statistics.median(offline_times) * MS <= 20.0 else 1


def _row(name: str, times: list[float]) -> str:
    p50, p90 = statistics.median(times) * MS, percentile(times, 90) * MS
    return f"  {name:<22} p50 {p50:7.3f} ms   p90 {p90:7.3f} ms   max {max(times) * MS:7.3f} ms"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=add_help)
    parser.add_argument(
        "--iterations", type=int, default=300, help="timed requests per path (default 300)"
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="untimed requests per path first (default 20)"
    )
    parser.add_argument(
        "--offline-repeats",
        type=int,
        default=50,
        help="passes over 42 offline questions (default 50)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
