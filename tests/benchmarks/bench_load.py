"""Load on a plain ``qwen-imagesearch serve``: latency and memory under concurrent streams.

Builds a catalog of 200 images (the demo photos and distinct edited copies of them), starts
the server on it in its own process on a loopback port, then, for 1, 8, 32 and 64
concurrent streamed searches (``ImageSearchClient.astream``, each image a data URL of a
catalog photo), runs rounds for a few seconds and prints the requests, errors, p50 and p99
latency and the server's resident memory. The last line is a JSON object of the figures.

    python tests/benchmarks/bench_load.py [--seconds 3.5] [--server-source DIR]

``--server-source`` indexes and serves with the package in another checkout (its root
folder), the client staying this one: the same load on two versions of the server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageEnhance, ImageOps
from serve_process import KEY, rss_mb, server_process

from langchain_qwen_imagesearch import ImageSearchClient, SearchCompleted
from langchain_qwen_imagesearch.client import PreparedRequest
from langchain_qwen_imagesearch.server import demo_catalog_dir

CATALOG_SIZE = 200
CONCURRENCY_LEVELS = (1, 8, 32, 64)
MAX_ROUNDS = 2000
QUERY_PHOTOS = 24
REQUEST_TIMEOUT = 60.0


def write_catalog_photos(folder: Path, count: int) -> list[Path]:
    """The demo photos and edited copies of them (resized, rotated, recoloured, cropped),
    ``count`` distinct files in all."""
    folder.mkdir(parents=True, exist_ok=True)
    originals = sorted(demo_catalog_dir().glob("*.jpg"))
    written = []
    for number in range(count):
        variant, original = divmod(number, len(originals))
        target = folder / f"{variant:02d}_{originals[original].name}"
        with Image.open(originals[original]) as opened:
            image = opened.convert("RGB")
        if variant:
            scale = 0.5 + 0.05 * variant
            image = image.resize(
                (max(32, round(image.width * scale)), max(32, round(image.height * scale)))
            )
            image = image.rotate(7 * variant, expand=variant % 2 == 0)
            image = ImageEnhance.Color(image).enhance(0.3 + 0.15 * variant)
            image = ImageEnhance.Brightness(image).enhance(0.7 + 0.05 * variant)
            if variant % 3 == 0:
                image = ImageOps.mirror(image)
        image.save(target, quality=88)
        written.append(target)
    return written


def data_url(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


async def streamed_search(client: ImageSearchClient, request: PreparedRequest) -> float:
    """One streamed search to its final event; its latency in seconds."""
    started = time.perf_counter()
    async for event in client.astream(request):
        if isinstance(event, SearchCompleted):
            if not event.result.hits:
                raise RuntimeError("no hits for a catalog photo")
            return time.perf_counter() - started
    raise RuntimeError("the stream ended without a result")


async def load_level(
    client: ImageSearchClient, requests: list[PreparedRequest], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Rounds of ``concurrency`` searches at once, for about ``seconds``."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    started = time.perf_counter()
    for _ in range(MAX_ROUNDS):
        batch = [requests[(sent + i) % len(requests)] for i in range(concurrency)]
        sent += concurrency
        outcomes = await asyncio.gather(
            *(streamed_search(client, request) for request in batch), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                errors += 1
            else:
                latencies.append(outcome)
        if time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive") if latencies else []
    return {
        "concurrency": concurrency,
        "requests": sent,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(sent / elapsed, 1),
        "p50_ms": round(percentiles[49] * 1000, 1) if percentiles else None,
        "p99_ms": round(percentiles[98] * 1000, 1) if percentiles else None,
    }


async def run_levels(base_url: str, pid: int, photos: list[Path], seconds: float) -> list[Any]:
    figures = []
    client = ImageSearchClient(
        base_url=base_url, api_key=KEY, max_retries=0, timeout=REQUEST_TIMEOUT
    )
    try:
        step = max(1, len(photos) // QUERY_PHOTOS)
        requests = [client.prepare(data_url(photo)) for photo in photos[::step]]
        await load_level(client, requests, 1, 0.5)  # warm-up: connections, first searches
        for concurrency in CONCURRENCY_LEVELS:
            level = await load_level(client, requests, concurrency, seconds)
            level["server_rss_mb"] = round(rss_mb(pid), 1)
            figures.append(level)
            print(
                f"N={concurrency:>3}: {level['requests']:>5} requests, {level['errors']} errors, "
                f"{level['requests_per_s']:>6.1f} req/s, p50 {level['p50_ms']} ms, "
                f"p99 {level['p99_ms']} ms, server RSS {level['server_rss_mb']:.0f} MB",
                flush=True,
            )
    finally:
        await client.aclose()
    return figures


@dataclass(frozen=True)
class ServerSource:
    """Where ``python -m langchain_qwen_imagesearch.cli`` finds the server's package: run
    in the checkout's root folder, since ``-m`` puts the working folder first on the path
    (from the repository's root it would load this checkout whatever PYTHONPATH says)."""

    env: dict[str, str] | None = None
    cwd: Path | None = None

    @classmethod
    def of(cls, source: Path | None) -> ServerSource:
        if source is None:
            return cls()
        if not (source / "langchain_qwen_imagesearch").is_dir():
            raise SystemExit(f"{source} holds no langchain_qwen_imagesearch package")
        root = source.resolve()
        return cls({**os.environ, "PYTHONPATH": str(root)}, root)


def index(photos: Path, catalog: Path, source: ServerSource) -> float:
    """Index with the server's own version of the CLI; the seconds it took."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "langchain_qwen_imagesearch.cli", "index", str(photos)]
    command += ["--catalog", str(catalog), "--quiet"]
    subprocess.run(
        command,
        env=source.env,
        cwd=source.cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.5, help="load time per level")
    parser.add_argument("--server-source", type=Path, help="checkout whose server to load")
    args = parser.parse_args()
    source = ServerSource.of(args.server_source)

    with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryFile() as log:
        photos = write_catalog_photos(Path(workdir) / "photos", CATALOG_SIZE)
        catalog = Path(workdir) / "catalog"
        seconds = index(Path(workdir) / "photos", catalog, source)
        with server_process(catalog_dir=catalog, log=log, env=source.env, cwd=source.cwd) as server:
            # Counted by the server: every version answers its catalog's size on /health.
            size = httpx.get(server.root_url + "/health", timeout=10).json()["catalog_images"]
            if size != CATALOG_SIZE:
                raise RuntimeError(f"expected {CATALOG_SIZE} distinct images, got {size}")
            print(f"catalog: {size} images, indexed in {seconds:.1f} s", flush=True)
            started_mb = rss_mb(server.pid)
            print(f"server RSS at start: {started_mb:.0f} MB", flush=True)
            levels = asyncio.run(run_levels(server.base_url, server.pid, photos, args.seconds))

    figures = {"catalog_images": size, "rss_start_mb": round(started_mb, 1), "levels": levels}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
