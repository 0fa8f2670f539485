"""Against the real DashScope service: one search and one stream of a public image URL.

They run only when ``DASHSCOPE_API_KEY`` is set and ``DASHSCOPE_BASE_URL`` (if set) is not a
loopback URL; each costs one image_search tool call plus tokens.
"""

from __future__ import annotations

import pytest

from langchain_qwen_imagesearch import (
    ImageSearchClient,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
)
from tests.live.live import LIVE

# The image of the upstream's own user guide.
PUBLIC_IMAGE_URL = (
    "https://img.alicdn.com/imgextra/i4/O1CN01YbrnSS1qtmsAkw0Ud_!!6000000005554-2-tps-788-450.png"
)
QUERY = "Find landscape images with a style similar to this one"


pytestmark = LIVE


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
