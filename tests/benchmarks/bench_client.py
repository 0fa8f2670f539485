"""Benchmark of ImageSearchClient against the embedded server, in one run.

Run ``python tests/benchmarks/bench_client.py`` (about half a minute). It prints:

1. the client's median latency over the bare OpenAI SDK's for the same request
   (``search`` vs ``responses.create``, ``stream`` vs ``responses.create(stream=True)``);
2. the time to prepare 1 MP, 12 MP and 48 MP local JPEG files (generated in a temp dir);
3. 64 async searches at concurrency 16 against a server held at 200 ms per search, against
   the ideal 64 / 16 x 0.2 s = 0.8 s, and the bare async SDK under the same load.

Not collected by pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openai
from PIL import Image
from serve_process import KEY, server_process

from langchain_qwen_imagesearch import ImageSearchClient, SearchCompleted
from langchain_qwen_imagesearch.server import build_catalog, demo_catalog_dir

QUERY = "Find images like this one"
LATENCY_ROUNDS = 60
WARMUP_ROUNDS = 5
PREPARE_ROUNDS = 7
PHOTO_MEGAPIXELS = (1, 12, 48)
CONCURRENT_SEARCHES = 64
# Preparing images sends nothing: any base URL will do.
OFFLINE_CLIENT = ImageSearchClient(base_url="http://127.0.0.1:9/compatible-mode/v1", api_key="x")
CONCURRENCY = 16
SEARCH_DELAY_SECONDS = 0.2
SOLO_ROUNDS = 5


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bare_request(photo: Path, *, stream: bool) -> dict[str, Any]:
    """What a user of the bare SDK sends: the same body the client builds."""
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()
    return {
        "model": "qwen3.7-plus",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": QUERY},
                    {"type": "input_image", "image_url": data_url},
                ],
            }
        ],
        "tools": [{"type": "image_search"}],
        "stream": stream,
    }


def bench_overhead(base_url: str, photo: Path) -> None:
    client = ImageSearchClient(base_url=base_url, api_key=KEY)
    sdk = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    plain, streamed = bare_request(photo, stream=False), bare_request(photo, stream=True)

    def sdk_search() -> None:
        response = sdk.responses.create(**plain)
        assert response.output_text

    def sdk_stream() -> None:
        events = list(sdk.responses.create(**streamed))
        assert events[-1].type == "response.completed"

    def client_search() -> None:
        assert client.search(photo, query=QUERY).hits

    def client_stream() -> None:
        assert isinstance(list(client.stream(photo, query=QUERY))[-1], SearchCompleted)

    print(f"1. Overhead over the bare OpenAI SDK ({LATENCY_ROUNDS} interleaved rounds, median)")
    for label, ours, bare in (
        ("search", client_search, sdk_search),
        ("stream", client_stream, sdk_stream),
    ):
        for _ in range(WARMUP_ROUNDS):
            ours()
            bare()
        ours_times, bare_times = [], []
        for _ in range(LATENCY_ROUNDS):
            ours_times.append(timed(ours))
            bare_times.append(timed(bare))
        ratio = statistics.median(ours_times) / statistics.median(bare_times)
        print(
            f"   {label}: client {median_ms(ours_times):.1f} ms, bare SDK "
            f"{median_ms(bare_times):.1f} ms, ratio {ratio:.3f} (target <= 1.10)"
        )


def synthetic_photo(megapixels: int, source: Path, directory: Path) -> Path:
    """A camera-like JPEG: a demo photo upscaled to 4:3 with sensor-like noise, quality 92."""
    scale = math.sqrt(megapixels * 1_000_000 / 12)
    width, height = round(4 * scale), round(3 * scale)
    with Image.open(source) as opened:
        base = np.asarray(opened.convert("RGB").resize((width, height)), dtype=np.int16)
    noise = np.random.default_rng(megapixels).integers(-6, 7, base.shape, dtype=np.int16)
    path = directory / f"photo_{megapixels}mp.jpg"
    Image.fromarray((base + noise).clip(0, 255).astype(np.uint8)).save(path, quality=92)
    return path


def bench_prepare(source: Path, directory: Path) -> None:
    print(f"2. Preparing local JPEG files (median of {PREPARE_ROUNDS})")
    for megapixels in PHOTO_MEGAPIXELS:
        path = synthetic_photo(megapixels, source, directory)
        info = OFFLINE_CLIENT.prepare(path).inputs[0]
        seconds = [
            timed(functools.partial(OFFLINE_CLIENT.prepare, path)) for _ in range(PREPARE_ROUNDS)
        ]
        what = f"converted to {info.width}x{info.height}" if info.converted else "sent as is"
        print(
            f"   {megapixels:>2} MP, {path.stat().st_size / 1e6:.1f} MB file: "
            f"{median_ms(seconds):.1f} ms ({what})"
        )


async def bench_concurrency(base_url: str, photo: Path) -> None:
    """The client, then the bare async SDK with the same request, under the same load."""
    client = ImageSearchClient(base_url=base_url, api_key=KEY)
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    body = bare_request(photo, stream=False)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def ours() -> None:
        async with limit:
            assert (await client.asearch(photo, query=QUERY)).hits

    async def bare() -> None:
        async with limit:
            assert (await sdk.responses.create(**body)).output_text

    ideal = CONCURRENT_SEARCHES / CONCURRENCY * SEARCH_DELAY_SECONDS
    print(
        f"3. {CONCURRENT_SEARCHES} async searches at concurrency {CONCURRENCY}, "
        f"{SEARCH_DELAY_SECONDS * 1000:.0f} ms per search (ideal {ideal:.1f} s, target <= 1.15x)"
    )
    alone = []
    for _ in range(SOLO_ROUNDS):
        started = time.perf_counter()
        await ours()
        alone.append(time.perf_counter() - started)
    print(f"   one search alone: {median_ms(alone):.1f} ms (median of {SOLO_ROUNDS})")
    for label, search in (("client", ours), ("bare SDK", bare)):
        await asyncio.gather(*(search() for _ in range(CONCURRENCY)))  # connections warmed up
        started = time.perf_counter()
        await asyncio.gather(*(search() for _ in range(CONCURRENT_SEARCHES)))
        elapsed = time.perf_counter() - started
        print(f"   {label}: {elapsed:.3f} s, {elapsed / ideal:.3f}x ideal")
    await client.aclose()
    await sdk.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        catalog_dir = directory / "demo-catalog"
        build_catalog(demo_catalog_dir(), catalog_dir)  # the photos the server will serve
        photo = next(demo_catalog_dir().glob("*coffee*"))
        with server_process(catalog_dir=catalog_dir) as server:
            bench_overhead(server.base_url, photo)
        bench_prepare(photo, directory)
        with server_process(catalog_dir=catalog_dir, search_delay=SEARCH_DELAY_SECONDS) as server:
            asyncio.run(bench_concurrency(server.base_url, photo))


if __name__ == "__main__":
    main()
