"""Decoding input images within a pixel budget, checked on the header before any pixels are
decoded, at reduced size where the format allows (JPEG), a bounded number at a time.

A 657 KB PNG can declare 13000 x 13000 pixels and take 2.7 GB to decode: the budget refuses
it from its header. A large JPEG decodes straight at 1/2 to 1/8 scale, which is all the
search needs, so it stays within the budget.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import anyio.to_thread
from PIL import Image, UnidentifiedImageError

from langchain_qwen_imagesearch.protocol import (
    MAX_ASPECT_RATIO,
    MAX_DECODED_PIXELS,
    MIN_IMAGE_SIDE,
)
from langchain_qwen_imagesearch.server.error_answers import invalid_parameter

DECODE_SIDE = 1024
"""Formats that can decode at reduced scale do so down to about this many pixels a side:
the search engine works on far smaller pictures."""
DECODES_AT_ONCE = 2
"""Images decoded at the same time, whatever the number of requests: memory stays bounded."""


@dataclass(frozen=True)
class InputPicture:
    """One input image, decoded: its pixels (perhaps at reduced scale) and its true size."""

    pixels: Image.Image
    width: int
    height: int


class Decoder:
    """Decodes input images in worker threads, at most ``DECODES_AT_ONCE`` at a time."""

    def __init__(self, at_once: int = DECODES_AT_ONCE) -> None:
        self._limiter = anyio.CapacityLimiter(at_once)

    async def decode(self, data: bytes) -> InputPicture:
        return await anyio.to_thread.run_sync(decode_within_limits, data, limiter=self._limiter)


def decode_within_limits(data: bytes) -> InputPicture:
    """Decode image bytes, checking the upstream's size limits and the pixel budget first."""
    try:
        with warnings.catch_warnings():
            # The budget below decides; Pillow's own bomb check only warns this far.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise _too_many_pixels(None) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise _illegal_format() from None
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
    image.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
    if image.size[0] * image.size[1] > MAX_DECODED_PIXELS:
        raise _too_many_pixels((width, height))
    try:
        image.load()  # GIFs and multi-page TIFFs load their first frame, as the upstream does.
    except Exception:
        # Pillow's decoders fail on broken files with many kinds of exceptions (OSError,
        # ValueError, SyntaxError, struct.error, ...): each is the sender's broken image.
        raise _illegal_format() from None
    return InputPicture(image, width, height)


def _too_many_pixels(size: tuple[int, int] | None) -> Exception:
    declared = f" ({size[0]}x{size[1]})" if size else ""
    return invalid_parameter(
        f"The image has too many pixels{declared}: this server decodes at most "
        f"{MAX_DECODED_PIXELS:,} pixels per image. Downscale it."
    )


def _illegal_format() -> Exception:
    return invalid_parameter(
        "The image format is illegal and cannot be opened. "
        "Supported formats: JPEG, PNG, WEBP, BMP, TIFF."
    )
