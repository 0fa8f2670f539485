"""Turn a request's ``input_image`` URLs into decoded images, enforcing the upstream limits
(docs/protocol.md#image-limits)."""

from __future__ import annotations

import base64
import binascii
import io

import anyio.to_thread
import httpx
from PIL import Image, UnidentifiedImageError

from langchain_qwen_imagesearch.protocol import (
    MAX_ASPECT_RATIO,
    MAX_IMAGE_BYTES,
    MIN_IMAGE_SIDE,
)
from langchain_qwen_imagesearch.server.error_answers import invalid_parameter

URL_FETCH_TIMEOUT_SECONDS = 15.0
# The upstream's own wording for these failures (docs/protocol.md#image-limits).
DATA_URI_TOO_LARGE = f"Exceeded limit on max bytes per data-uri item : {MAX_IMAGE_BYTES}"
URL_NOT_VALID = "The provided URL does not appear to be valid. Ensure it is correctly formatted."


def decode_data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    if not header.startswith("data:image/") or ";base64" not in header:
        raise invalid_parameter(
            "The image data URL must look like data:image/<format>;base64,<data>."
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise invalid_parameter(f"The image data URL holds invalid base64: {error}") from None


async def fetch_image_url(url: str, http: httpx.AsyncClient) -> bytes:
    """Download an http(s) image with a timeout and the 10 MB cap, as the upstream does."""
    try:
        async with http.stream("GET", url, timeout=URL_FETCH_TIMEOUT_SECONDS) as response:
            if response.status_code != 200:
                raise invalid_parameter(URL_NOT_VALID)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > MAX_IMAGE_BYTES:
                    raise invalid_parameter(
                        f"Exceeded limit on max bytes per image url item : {MAX_IMAGE_BYTES}"
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError:
        raise invalid_parameter(URL_NOT_VALID) from None


def open_within_limits(data: bytes) -> Image.Image:
    """Decode image bytes and check the upstream's size and aspect-ratio limits."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # GIFs and multi-page TIFFs load their first frame, as the upstream does.
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise invalid_parameter(
            "The image format is illegal and cannot be opened. "
            "Supported formats: JPEG, PNG, WEBP, BMP, TIFF."
        ) from None
    width, height = image.size
    if min(width, height) < MIN_IMAGE_SIDE:
        raise invalid_parameter(
            f"The image length and width do not meet the model restrictions. "
            f"[height:{height} or width:{width} must be larger than {MIN_IMAGE_SIDE}]"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise invalid_parameter(
            f"The aspect ratio of the image must not exceed {MAX_ASPECT_RATIO}:1 "
            f"(got {width}x{height})."
        )
    return image


async def load_input_image(url: str, http: httpx.AsyncClient) -> Image.Image:
    """Resolve one ``image_url`` (data URL or http(s) URL) into a checked image."""
    if url.startswith("data:"):
        if len(url) > MAX_IMAGE_BYTES:
            raise invalid_parameter(DATA_URI_TOO_LARGE)
        data = decode_data_url(url)
    elif url.startswith(("http://", "https://")):
        data = await fetch_image_url(url, http)
    else:
        raise invalid_parameter(URL_NOT_VALID)
    # Decoding is CPU work: keep it off the event loop so concurrent requests overlap.
    return await anyio.to_thread.run_sync(open_within_limits, data)
