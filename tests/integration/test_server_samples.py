"""The upstream's own sample programs run against the embedded server unchanged
(but for base URL, key and image URL), and print what the upstream guide shows."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_qwen_imagesearch.server.testing import TestingServer

SAMPLES = Path(__file__).parent / "upstream_samples"


def data_url(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


def run_sample(name: str, server: TestingServer, image: Path) -> str:
    env = {
        **os.environ,
        "DASHSCOPE_API_KEY": server.api_key or "",
        "DASHSCOPE_BASE_URL": server.base_url,
        "SAMPLE_IMAGE_URL": data_url(image),
    }
    completed = subprocess.run(
        [sys.executable, str(SAMPLES / name)], env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.mark.parametrize(
    "sample", ["responses_image_search.py", "responses_image_search_stream.py"]
)
def test_upstream_sample_prints_hits_answer_and_tool_statistics(
    sample: str, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    output = run_sample(sample, embedded_server, catalog_photo)

    assert "Search by image" in output and "(status: completed)" in output
    found = re.search(r"Found (\d+) images:", output)
    assert found and int(found.group(1)) >= 1
    first_url = re.search(r"\[1\] .+\n (\S+)", output)
    assert first_url and first_url.group(1).startswith("http://127.0.0.1:")
    assert "[Model Response]" in output
    assert re.search(r"\[Token Usage\] Input: \d+, Output: \d+, Total: \d+", output)
    assert "[Tool Statistics] image_search call count: 1" in output
