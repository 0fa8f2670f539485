"""Against the real DashScope service: one search and one stream of a public image URL.

They run only when ``DASHSCOPE_API_KEY`` is set and ``DASHSCOPE_BASE_URL`` (if set) is not a
loopback URL; each costs one image_search tool call plus tokens.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

import pytest

from langchain_qwen_imagesearch import (
    ImageSearchClient,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
)

# The image of the upstream's own user guide.
PUBLIC_IMAGE_URL = (
    "https://img.alicdn.com/imgextra/i4/O1CN01YbrnSS1qtmsAkw0Ud_!!6000000005554-2-tps-788-450.png"
)
QUERY = "Find landscape images with a style similar to this one"


def _live_skip_reason() -> str | None:
    if not os.environ.get("DASHSCOPE_API_KEY"):
        return "DASHSCOPE_API_KEY is not set"
    host = urlsplit(os.environ.get("DASHSCOPE_BASE_URL", "")).hostname
    if host is None:
        return None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return f"DASHSCOPE_BASE_URL points at a local server ({host})" if loopback else None


pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(_live_skip_reason() is not None, reason=_live_skip_reason() or ""),
]


@pytest.fixture(scope="module")
def client() -> ImageSearchClient:
    return ImageSearchClient(enable_thinking=False)


def test_live_search_finds_images(client: ImageSearchClient) -> None:
    result = client.search(PUBLIC_IMAGE_URL, query=QUERY)

    assert result.status == "completed"
    assert result.calls and result.hits
    assert all(hit.url.startswith("http") for hit in result.hits)
    assert result.answer
    assert result.usage.tool_calls.get("image_search", 0) >= 1


def test_live_stream_reports_progress_and_the_result(client: ImageSearchClient) -> None:
    events = list(client.stream(PUBLIC_IMAGE_URL, query=QUERY))

    assert any(isinstance(event, SearchStarted) for event in events)
    assert any(isinstance(event, SearchFinished) for event in events)
    final = events[-1]
    assert isinstance(final, SearchCompleted)
    assert final.result.hits and final.result.answer
