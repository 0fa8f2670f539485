"""A request's input images, from data URLs or fetched URLs, decoded
(docs/protocol.md#image-limits)."""

from __future__ import annotations

import base64
import binascii

from langchain_qwen_imagesearch.protocol import MAX_IMAGE_BYTES
from langchain_qwen_imagesearch.server.error_answers import invalid_parameter
from langchain_qwen_imagesearch.server.inputs.decode import Decoder, InputPicture
from langchain_qwen_imagesearch.server.inputs.fetch import URL_NOT_VALID, ImageFetcher

MAX_INPUT_IMAGES = 16
"""Images one request may carry: each is fetched or decoded, so one request cannot make the
server do unbounded work."""
# The upstream's own wording (docs/protocol.md#image-limits).
DATA_URI_TOO_LARGE = f"Exceeded limit on max bytes per data-uri item : {MAX_IMAGE_BYTES}"


class InputLoader:
    """Turns ``input_image`` URLs into checked, decoded pictures."""

    def __init__(self, fetcher: ImageFetcher, decoder: Decoder) -> None:
        self._fetcher = fetcher
        self._decoder = decoder

    async def load_all(self, urls: list[str]) -> list[InputPicture]:
        if len(urls) > MAX_INPUT_IMAGES:
            raise invalid_parameter(
                f"The request holds {len(urls)} images; this server takes at most "
                f"{MAX_INPUT_IMAGES} per request."
            )
        return [await self.load(url) for url in urls]

    async def load(self, url: str) -> InputPicture:
        if url.startswith("data:"):
            if len(url) > MAX_IMAGE_BYTES:
                raise invalid_parameter(DATA_URI_TOO_LARGE)
            data = decode_data_url(url)
        elif url.startswith(("http://", "https://")):
            data = await self._fetcher.fetch(url)
        else:
            raise invalid_parameter(URL_NOT_VALID)
        return await self._decoder.decode(data)


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
