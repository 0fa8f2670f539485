"""Turn what a user gives as an image into the ``image_url`` string the service accepts.

URLs go as they are. Local data (a path, bytes, a binary file, a PIL image, a ``data:`` URL)
becomes a base64 data URL whose MIME type is sniffed from the bytes, never from a file name.
An image within the upstream limits is sent byte-for-byte; one that is not (too large, a
format the service does not list) is converted once and the conversion is recorded. What
cannot be fixed raises ``ImageInputError`` naming the input and the limit.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias
from urllib.parse import urlsplit

from PIL import Image, ImageOps, UnidentifiedImageError
from typing_extensions import TypeIs

from langchain_qwen_imagesearch.client._errors import ImageInputError
from langchain_qwen_imagesearch.client._results import PreparedImageInfo
from langchain_qwen_imagesearch.protocol import (
    MAX_ASPECT_RATIO,
    MAX_DECODED_PIXELS,
    MAX_IMAGE_BYTES,
    MIN_IMAGE_SIDE,
)

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | bytearray | BinaryIO | Image.Image
"""One image: an http(s) or data URL, a local path, raw bytes, a binary file or a PIL image."""

# Pillow's names of the formats the upstream lists, as data-URL MIME types. Camera JPEGs
# with an embedded preview are reported as MPO but are plain JPEG files.
_MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "JPEG2000": "image/jp2",
    "ICO": "image/x-icon",
    "ICNS": "image/icns",
    "SGI": "image/sgi",
}
# Converted images are capped here: above what the model reads (about 2,500 tokens of
# 32x32 px each), and small enough to decode and encode quickly.
MAX_CONVERTED_SIDE = 3072
JPEG_QUALITY = 90
# An oversized encoding is retried a little smaller than the size ratio alone asks for.
_SHRINK_MARGIN = 0.9
_PNG_MODES = ("1", "L", "P", "RGB", "RGBA", "I;16")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_DATA_URL_HEADER = re.compile(r"^data:(?P<mime>image/[\w.+-]+)(?:;[^,;]*)*;base64,", re.I)
# ISO-BMFF brands of HEIC/HEIF files, which Pillow reads only with the pillow-heif plugin.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the wire: the ``image_url`` string and what was done to it."""

    image_url: str
    info: PreparedImageInfo


@dataclass(frozen=True)
class _Source:
    """An input's name for messages (never its bytes), its kind and its place in the call."""

    description: str
    kind: str
    position: str | None = None

    def error(self, problem: str, *, limit: str) -> ImageInputError:
        name = f"{self.position} ({self.description})" if self.position else self.description
        return ImageInputError(f"{name}: {problem}", input=name, limit=limit)

    def sent(
        self,
        mime_type: str,
        data: bytes,
        size: tuple[int, int],
        *,
        image_url: str | None = None,
        conversion: str | None = None,
    ) -> PreparedImage:
        info = PreparedImageInfo(
            source=self.description,
            kind=self.kind,
            mime_type=mime_type,
            width=size[0],
            height=size[1],
            sent_bytes=len(data),
            converted=conversion is not None,
            conversion=conversion,
        )
        return PreparedImage(image_url or _data_url(mime_type, data), info)


def image_list(images: ImageInput | Sequence[ImageInput] | None) -> list[ImageInput]:
    """One image or several as a list (a string or bytes is one image, not a sequence)."""
    if images is None:
        return []
    if _is_single(images):
        return [images]
    return list(images)


def _is_single(value: ImageInput | Sequence[ImageInput]) -> TypeIs[ImageInput]:
    """Strings and bytes are sequences too; anything else not iterable is one (bad) input."""
    single_types = (str, bytes, bytearray, os.PathLike, Image.Image)
    return (
        isinstance(value, single_types) or hasattr(value, "read") or not isinstance(value, Iterable)
    )


def prepare_image(image: ImageInput, *, position: str | None = None) -> PreparedImage:
    """Prepare one image; ``position`` (e.g. "image 2 of 3") is named in errors."""
    if isinstance(image, str):
        return _prepare_string(image, position)
    if isinstance(image, os.PathLike):
        return _prepare_path(Path(image), _Source(os.fspath(image), "path", position))
    if isinstance(image, (bytes, bytearray)):
        return _prepare_bytes(bytes(image), _Source(f"bytes ({len(image):,} B)", "bytes", position))
    if isinstance(image, Image.Image):
        width, height = image.size
        return _prepare_pil(
            image, _Source(f"PIL image {width}x{height} {image.mode}", "pil", position)
        )
    if hasattr(image, "read"):
        name = getattr(image, "name", None)
        description = name if isinstance(name, str) else "file object"
        return _prepare_file(image, _Source(description, "file", position))
    raise _Source(type(image).__name__, "unknown", position).error(
        "unsupported image type; pass an http(s) URL, a data: URL, a path (str or Path), "
        "bytes, a binary file object or a PIL.Image.Image",
        limit="supported input types",
    )


def _prepare_string(value: str, position: str | None) -> PreparedImage:
    text = value.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme in ("http", "https"):
        return _prepare_url(text, _Source(_shorten(text), "url", position))
    if scheme == "data":
        return _prepare_data_url(text, _Source(_describe_data_url(text), "data_url", position))
    if "://" in text:
        raise _Source(_shorten(text), "url", position).error(
            f"unsupported URL scheme {scheme!r}: the service downloads only http(s) URLs. "
            "Pass an http(s) URL, a data: URL or a local file path.",
            limit="http(s) or data: URL",
        )
    if not text:
        raise _Source("empty string", "path", position).error(
            "an empty string is not an image; pass a URL or a file path", limit="file exists"
        )
    return _prepare_path(Path(value).expanduser(), _Source(value, "path", position))


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_data_url(url: str) -> str:
    header = _DATA_URL_HEADER.match(url)
    mime_type = header.group("mime") if header else "unknown type"
    return f"data URL ({mime_type}, {len(url):,} chars)"


def _prepare_url(url: str, source: _Source) -> PreparedImage:
    if not urlsplit(url).hostname:
        raise source.error("the URL has no host name", limit="valid http(s) URL")
    return PreparedImage(url, PreparedImageInfo(source=source.description, kind=source.kind))


def _prepare_data_url(url: str, source: _Source) -> PreparedImage:
    header = _DATA_URL_HEADER.match(url)
    if header is None:
        raise source.error(
            "a data URL must look like data:image/<format>;base64,<data>",
            limit="base64 image data URL",
        )
    try:
        data = base64.b64decode(url[header.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise source.error("the data URL holds invalid base64", limit="valid base64") from None
    return _prepare_bytes(data, source, as_given=url)


def _prepare_path(path: Path, source: _Source) -> PreparedImage:
    if not path.exists():
        raise source.error(
            f"file not found (looked for {path.absolute()}); a string must be an http(s) URL, "
            "a data: URL or the path of an existing image file",
            limit="file exists",
        )
    if not path.is_file():
        raise source.error("not a file", limit="file exists")
    try:
        size = path.stat().st_size
        if size <= MAX_IMAGE_BYTES:
            return _prepare_bytes(path.read_bytes(), source)
        with path.open("rb") as file:
            return _prepare_large_file(file, size, source)
    except OSError as error:
        raise source.error(f"cannot read the file: {error.strerror}", limit="readable") from None


def _prepare_file(file: BinaryIO, source: _Source) -> PreparedImage:
    """An open file, sized before it is read: one over the limit is never read whole (as
    a path), and one that cannot tell its size is read only up to the limit."""
    try:
        if not isinstance(file.read(0), (bytes, bytearray)):
            raise source.error(
                "the file is open in text mode; open it in binary mode (open(path, 'rb'))",
                limit="binary file",
            )
        size = _bytes_left(file)
        if size is not None and size > MAX_IMAGE_BYTES:
            start = file.tell()
            # Pillow reads a file from its beginning: a file read partly is seen from here on.
            rest = file if start == 0 else io.BufferedReader(_FileFrom(file, start))
            return _prepare_large_file(rest, size, source)
        data = _read_at_most(file, MAX_IMAGE_BYTES + 1, source)
    except OSError as error:
        raise source.error(f"cannot read the file: {error.strerror}", limit="readable") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise source.error(
            f"the file is over the {_LIMIT_TEXT} limit and cannot be converted, as it cannot "
            "seek (a pipe or a stream); pass its path, or a seekable file",
            limit=f"data URL <= {_LIMIT_TEXT}",
        )
    return _prepare_bytes(data, source)


def _prepare_large_file(file: BinaryIO, size: int, source: _Source) -> PreparedImage:
    """A file of ``size`` bytes, too large to send as it is: never read whole; Pillow reads
    what a conversion needs."""
    head = file.read(16)
    file.seek(0)
    with _opened(lambda: Image.open(file), head, source) as image:
        _check_geometry(image.size, source)
        reason = f"the file is {_megabytes(size)}, over the {_LIMIT_TEXT} limit"
        return _convert(image, reason, source)


def _bytes_left(file: BinaryIO) -> int | None:
    """The bytes from where ``file`` stands to its end, when it can seek; else ``None``."""
    try:
        if not file.seekable():
            return None
        start = file.tell()
        file.seek(0, os.SEEK_END)
        end = file.tell()
        file.seek(start)
    except (AttributeError, OSError, ValueError):
        return None
    return end - start


def _read_at_most(file: BinaryIO, limit: int, source: _Source) -> bytes:
    """Up to ``limit`` bytes of ``file`` (a raw file may return fewer than asked at once)."""
    chunks: list[bytes] = []
    received = 0
    while received < limit:
        chunk = file.read(limit - received)
        if not isinstance(chunk, (bytes, bytearray)):
            raise source.error("the file gave no bytes when read", limit="binary file")
        if not chunk:
            break
        chunks.append(bytes(chunk))
        received += len(chunk)
    return b"".join(chunks)


class _FileFrom(io.RawIOBase):
    """The part of a seekable ``file`` from ``start`` on, as a file of its own."""

    def __init__(self, file: BinaryIO, start: int) -> None:
        super().__init__()
        self._file = file
        self._start = start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._file.seek(self._start + max(offset, 0))
        else:
            self._file.seek(offset, whence)
        return self.tell()

    def tell(self) -> int:
        return max(self._file.tell() - self._start, 0)


def _prepare_bytes(data: bytes, source: _Source, *, as_given: str | None = None) -> PreparedImage:
    """Send ``data`` unchanged when the service accepts it, else convert it once.

    Only the header is read here, which gives the format and the size; pixels are decoded
    only for a conversion. ``as_given`` is the user's own data URL, sent verbatim if it fits.
    """
    image = _open(data, source)
    _check_geometry(image.size, source)
    mime_type = _MIME_BY_FORMAT.get(image.format or "")
    if mime_type is None:
        return _convert(image, f"{image.format} is not a format the service accepts", source)
    width, height = image.size
    if width * height > MAX_DECODED_PIXELS:
        reason = f"it declares {width}x{height} pixels, over the {_PIXEL_BUDGET_TEXT} budget"
        return _convert(image, reason, source)
    url_length = len(as_given) if as_given else _data_url_length(mime_type, len(data))
    if url_length > MAX_IMAGE_BYTES:
        reason = f"as a data URL it is {_megabytes(url_length)}, over the {_LIMIT_TEXT} limit"
        return _convert(image, reason, source)
    return source.sent(mime_type, data, image.size, image_url=as_given)


def _prepare_pil(image: Image.Image, source: _Source) -> PreparedImage:
    """Encode in-memory pixels losslessly as PNG when that fits the limit, else convert."""
    _check_geometry(image.size, source)
    pixels = image if image.mode in _PNG_MODES else image.convert(_mode_for(image))
    # PNG hardly ever grows past the raw pixels: only images whose raw pixels fit are tried.
    raw_bytes = image.width * image.height * len(pixels.getbands())
    if _data_url_length("image/png", raw_bytes) <= MAX_IMAGE_BYTES:
        data = _encode(pixels, "PNG")
        if _data_url_length("image/png", len(data)) <= MAX_IMAGE_BYTES:
            return source.sent("image/png", data, image.size)
    reason = f"its lossless PNG encoding would exceed the {_LIMIT_TEXT} limit"
    return _convert(image, reason, source, opened_here=False)


def _open(data: bytes, source: _Source) -> Image.Image:
    return _opened(lambda: Image.open(io.BytesIO(data)), data[:16], source)


def _opened(open_image: Callable[[], Image.Image], head: bytes, source: _Source) -> Image.Image:
    """The image ``open_image`` opens (its header only: pixels decode later, if at all), or
    this module's error for it; ``head`` is the first bytes of the data."""
    if not head:
        raise source.error("the image is empty (0 bytes)", limit="readable image")
    try:
        with warnings.catch_warnings():
            # The pixel budget decides (_convert); Pillow's own check only warns this far.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return open_image()
    except Image.DecompressionBombError:
        raise _too_many_pixels(source, None) from None
    except (UnidentifiedImageError, OSError):
        if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
            problem = (
                "HEIC/HEIF images need the pillow-heif plugin: pip install pillow-heif and call "
                "pillow_heif.register_heif_opener() once (or convert the image to JPEG)"
            )
        else:
            problem = "not a readable image (JPEG, PNG, WEBP, BMP, TIFF, GIF, ...)"
        raise source.error(problem, limit="readable image") from None


def _check_geometry(size: tuple[int, int], source: _Source) -> None:
    width, height = size
    if min(width, height) < MIN_IMAGE_SIDE:
        raise source.error(
            f"the image is {width}x{height} px; the service needs at least "
            f"{MIN_IMAGE_SIDE} px on each side",
            limit=f"width and height >= {MIN_IMAGE_SIDE} px",
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise source.error(
            f"the image is {width}x{height} px; the service accepts an aspect ratio of at "
            f"most {MAX_ASPECT_RATIO}:1 (crop it)",
            limit=f"aspect ratio <= {MAX_ASPECT_RATIO}:1",
        )


def _convert(
    image: Image.Image, reason: str, source: _Source, *, opened_here: bool = True
) -> PreparedImage:
    """Re-encode once as JPEG (PNG when transparent), downscaled until the data URL fits.

    ``opened_here``: the image was opened by this module, so its decoder may be set to a
    reduced scale; a user's PIL image is never altered.
    """
    original = image.size
    mode = _mode_for(image)
    image_format, mime_type = ("PNG", "image/png") if mode == "RGBA" else ("JPEG", "image/jpeg")
    if opened_here:
        image.draft(mode, _decoded_size(image))
    if image.width * image.height > MAX_DECODED_PIXELS:
        raise _too_many_pixels(source, original)
    try:
        pixels = image.convert(mode)
    except (OSError, ValueError) as error:
        raise source.error(
            f"the image cannot be decoded: {error}", limit="readable image"
        ) from None
    # The conversion drops EXIF, so its orientation goes into the pixels.
    ImageOps.exif_transpose(pixels, in_place=True)
    longest = MAX_CONVERTED_SIDE
    while True:
        size = _fit(pixels.size, longest)
        if min(size) < MIN_IMAGE_SIDE:
            raise source.error(
                f"{reason}, and it cannot be made small enough without going under "
                f"{MIN_IMAGE_SIDE} px a side",
                limit=f"data URL <= {_LIMIT_TEXT}",
            )
        resized = (
            pixels
            if size == pixels.size
            else pixels.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        )
        data = _encode(resized, image_format)
        url_length = _data_url_length(mime_type, len(data))
        if url_length <= MAX_IMAGE_BYTES:
            break
        longest = int(max(size) * math.sqrt(MAX_IMAGE_BYTES / url_length) * _SHRINK_MARGIN)
    steps = [f"re-encoded as {image_format}"]
    if max(resized.size) < max(original):
        steps.append(f"downscaled from {original[0]}x{original[1]}")
    if getattr(image, "n_frames", 1) > 1:
        steps.append("first frame only")
    return source.sent(mime_type, data, resized.size, conversion=f"{reason}: {', '.join(steps)}")


def _too_many_pixels(source: _Source, size: tuple[int, int] | None) -> ImageInputError:
    declared = f"{size[0]}x{size[1]} " if size else ""
    return source.error(
        f"the image has too many pixels ({declared}over the {_PIXEL_BUDGET_TEXT} budget): "
        "it would take too much memory to decode; downscale it first",
        limit=f"{_PIXEL_BUDGET_TEXT} decoded",
    )


def _decoded_size(image: Image.Image) -> tuple[int, int]:
    """The size to decode at: JPEG scales by 1/2, 1/4 or 1/8 while decoding, almost free,
    so the largest such size within ``MAX_CONVERTED_SIDE`` needs no resize afterwards."""
    width, height = image.size
    for divisor in (1, 2, 4, 8):
        if max(width, height) <= MAX_CONVERTED_SIDE * divisor:
            return math.ceil(width / divisor), math.ceil(height / divisor)
    return _fit(image.size, MAX_CONVERTED_SIDE)


def _mode_for(image: Image.Image) -> str:
    """RGBA when the image has transparency (kept, as PNG), else RGB."""
    return "RGBA" if image.mode in _ALPHA_MODES or "transparency" in image.info else "RGB"


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """``size`` scaled down (never up) so that its longer side is at most ``longest``."""
    scale = min(1.0, longest / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    if image_format == "JPEG":
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, image_format)
    return buffer.getvalue()


def _data_url_length(mime_type: str, byte_count: int) -> int:
    return len(f"data:{mime_type};base64,") + 4 * math.ceil(byte_count / 3)


def _data_url(mime_type: str, data: bytes) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def _megabytes(byte_count: int) -> str:
    return f"{byte_count / 1024 / 1024:.1f} MB"


_LIMIT_TEXT = _megabytes(MAX_IMAGE_BYTES)
_PIXEL_BUDGET_TEXT = f"{MAX_DECODED_PIXELS / 1e6:g} megapixel"
