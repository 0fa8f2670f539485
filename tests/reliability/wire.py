"""Raw requests to the embedded server, as any HTTP client could send them."""

from __future__ import annotations

import base64

import httpx

from langchain_qwen_imagesearch.server.testing import TestingServer


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def image_request(*image_urls: str) -> dict[str, object]:
    """A search request body for these images, as the upstream's reference sends it."""
    content: list[dict[str, str]] = [{"type": "input_text", "text": "find it"}]
    content += [{"type": "input_image", "image_url": url} for url in image_urls]
    return {
        "model": "qwen3.7-plus",
        "input": [{"role": "user", "content": content}],
        "tools": [{"type": "image_search"}],
    }


def post_images(server: TestingServer, *image_urls: str, timeout: float = 60) -> httpx.Response:
    """A search for these images, with the server's key."""
    return httpx.post(
        server.base_url + "/responses",
        json=image_request(*image_urls),
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=timeout,
    )
