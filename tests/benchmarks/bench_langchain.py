"""Benchmark of the LangChain layer against the embedded server (in its own process), in one run.

Run ``python tests/benchmarks/bench_langchain.py`` (about a minute). It prints:

1. the median latency of ``QwenImageSearch.invoke`` and of the tool (``QwenImageSearchTool``
   called with a tool call) over ``ImageSearchClient.search`` for the same search, nobody
   listening to progress (target <= 1.05), and with a progress listener (streamed);
2. an ``abatch`` of many searches through an ``InMemoryRateLimiter``, against a server held at
   200 ms per search: the rate the searches were let go at, against the limit (target within 5 %).

The last line is a JSON object of the figures. Not collected by pytest.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.rate_limiters import InMemoryRateLimiter
from serve_process import KEY, server_process

from langchain_qwen_imagesearch import ImageSearchClient, QwenImageSearch, QwenImageSearchTool
from langchain_qwen_imagesearch.server import build_catalog, demo_catalog_dir

QUERY = "Find images like this one"
ROUNDS = 80
WARMUP_ROUNDS = 5
RATE_LIMIT_PER_SECOND = 8.0
RATE_LIMITED_SEARCHES = 48
SEARCH_DELAY_SECONDS = 0.2


class ProgressListener(BaseCallbackHandler):
    """A callback handler that takes the custom progress events (so the search streams)."""

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        pass


class RecordingRateLimiter(InMemoryRateLimiter):
    """Records when each search was let go."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.released: list[float] = []

    async def aacquire(self, *, blocking: bool = True) -> bool:
        allowed = await super().aacquire(blocking=blocking)
        self.released.append(time.perf_counter())
        return allowed


def median_ms(run: Callable[[], object], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return seconds


def bench_overhead(base_url: str, photo: Path) -> dict[str, float]:
    settings = {"base_url": base_url, "api_key": KEY}
    client = ImageSearchClient(**settings)
    search = QwenImageSearch(**settings)
    tool = QwenImageSearchTool(**settings, local_image_dirs=[photo.parent])
    tool_call = {
        "name": tool.name,
        "args": {"image": str(photo), "query": QUERY},
        "id": "call_1",
        "type": "tool_call",
    }
    listened = {"callbacks": [ProgressListener()]}
    runs: dict[str, Callable[[], object]] = {
        "client.search": lambda: client.search(photo, query=QUERY),
        "QwenImageSearch.invoke": lambda: search.invoke({"image": photo, "query": QUERY}),
        "QwenImageSearchTool.invoke": lambda: tool.invoke(tool_call),
        "QwenImageSearch.invoke, listened": lambda: search.invoke(
            {"image": photo, "query": QUERY}, config=listened
        ),
    }
    for run in runs.values():
        median_ms(run, WARMUP_ROUNDS)
    # Interleaved, so that the machine's drift affects every variant alike.
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            samples[name] += median_ms(run, 1)
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    baseline = medians["client.search"]
    print(f"1. median latency over {ROUNDS} interleaved rounds (target <= 1.05x client.search)")
    for name, value in medians.items():
        print(f"   {name:34} {value:7.2f} ms  {value / baseline:.3f}x")
    return {name: round(value / baseline, 3) for name, value in medians.items()}


async def bench_rate_limit(base_url: str, photos: list[Path]) -> dict[str, float]:
    limiter = RecordingRateLimiter(
        requests_per_second=RATE_LIMIT_PER_SECOND, check_every_n_seconds=0.005, max_bucket_size=1
    )
    search = QwenImageSearch(base_url=base_url, api_key=KEY, rate_limiter=limiter)
    inputs = [
        {"image": photos[n % len(photos)], "query": f"{QUERY} ({n})"}
        for n in range(RATE_LIMITED_SEARCHES)
    ]
    started = time.perf_counter()
    results = await search.abatch(inputs, config={"max_concurrency": 16})
    elapsed = time.perf_counter() - started
    assert all(result.hits for result in results)
    released = sorted(limiter.released)
    achieved = (len(released) - 1) / (released[-1] - released[0])
    print(
        f"2. {RATE_LIMITED_SEARCHES} searches through abatch (max_concurrency 16), server held "
        f"at {SEARCH_DELAY_SECONDS * 1000:.0f} ms, limit {RATE_LIMIT_PER_SECOND:g}/s"
    )
    print(
        f"   let go at {achieved:.3f}/s ({achieved / RATE_LIMIT_PER_SECOND - 1:+.1%} of the "
        f"limit); all done in {elapsed:.2f} s"
    )
    return {"rate_limit": RATE_LIMIT_PER_SECOND, "achieved_rate": round(achieved, 3)}


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        catalog_dir = Path(temp) / "demo-catalog"
        build_catalog(demo_catalog_dir(), catalog_dir)
        photos = sorted(demo_catalog_dir().glob("*.jpg"))
        photo = next(p for p in photos if "coffee" in p.name)
        with server_process(catalog_dir=catalog_dir) as server:
            ratios = bench_overhead(server.base_url, photo)
        with server_process(catalog_dir=catalog_dir, search_delay=SEARCH_DELAY_SECONDS) as server:
            rate = asyncio.run(bench_rate_limit(server.base_url, photos))
    print(json.dumps({**ratios, **rate}))


if __name__ == "__main__":
    main()
