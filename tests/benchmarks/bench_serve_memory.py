"""Memory of a plain ``qwen-imagesearch serve`` under many large requests.

Starts the server in its own process on a loopback port (demo catalog), sends ``--requests``
searches whose image is a data URL of about 1 MB, one at a time, and prints the server's
resident memory after the first 20 and after all of them. A server that keeps nothing per
request stays flat. The last line is a JSON object of the figures.

    python tests/benchmarks/bench_serve_memory.py [--requests 500] [--python PYTHON]

``--python`` runs another checkout's interpreter (e.g. to measure an older version).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
import time

import httpx
import numpy as np
from PIL import Image
from serve_process import KEY, rss_mb, server_process

from langchain_qwen_imagesearch.server import demo_catalog_dir

TARGET_BODY_BYTES = 1_000_000
EARLY_REQUESTS = 20


def large_data_url() -> str:
    """A demo photo, enlarged with noise until its JPEG data URL passes 1 MB."""
    photo = sorted(demo_catalog_dir().glob("*.jpg"))[0]
    rng = np.random.default_rng(0)
    for width in range(1200, 4000, 100):
        with Image.open(photo) as opened:
            resized = opened.convert("RGB").resize((width, width * 3 // 4))
        base = np.asarray(resized, dtype=np.int16)
        noise = rng.integers(-12, 13, base.shape, dtype=np.int16)
        buffer = io.BytesIO()
        Image.fromarray((base + noise).clip(0, 255).astype(np.uint8)).save(buffer, "JPEG")
        url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        if len(url) >= TARGET_BODY_BYTES:
            return url
    raise RuntimeError("could not make a 1 MB image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--python", default=sys.executable, help="interpreter running serve")
    args = parser.parse_args()
    if args.requests <= EARLY_REQUESTS:
        parser.error(f"--requests must be more than {EARLY_REQUESTS}")

    url = large_data_url()
    body = {
        "model": "qwen3.7-plus",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Find this picture"},
                    {"type": "input_image", "image_url": url},
                ],
            }
        ],
        "tools": [{"type": "image_search"}],
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    with (
        tempfile.TemporaryFile() as log,
        server_process(python=args.python, log=log) as server,
    ):
        started_mb = rss_mb(server.pid)
        early_mb = 0.0
        started = time.perf_counter()
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
            for number in range(1, args.requests + 1):
                http.post("/responses", json=body).raise_for_status()
                if number == EARLY_REQUESTS:
                    early_mb = rss_mb(server.pid)
        seconds = time.perf_counter() - started
        final_mb = rss_mb(server.pid)

    print(
        f"request body: {len(json.dumps(body)) / 1e6:.2f} MB, {args.requests} requests, "
        f"{seconds:.1f} s"
    )
    print(
        f"server RSS: {started_mb:.0f} MB at start, {early_mb:.0f} MB after {EARLY_REQUESTS}, "
        f"{final_mb:.0f} MB after {args.requests} ({final_mb - early_mb:+.0f} MB)"
    )
    figures = {
        "requests": args.requests,
        "body_mb": round(len(json.dumps(body)) / 1e6, 2),
        "rss_start_mb": round(started_mb, 1),
        "rss_after_early_mb": round(early_mb, 1),
        "rss_after_all_mb": round(final_mb, 1),
        "growth_mb": round(final_mb - early_mb, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
