"""The bad-input table: what users and attackers send as images, to the client and to the
server. Each is refused with a clear, typed error (the client) or a 400 (the server), or
handled (an animated GIF searches its first frame); none crashes, hangs or is sent as is."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from langchain_qwen_imagesearch import ImageInputError, ImageSearchClient
from langchain_qwen_imagesearch.protocol import MAX_IMAGE_BYTES
from langchain_qwen_imagesearch.server.testing import TestingServer
from tests.reliability.test_bombs_and_limits import png_of_zeros
from tests.reliability.wire import data_url, post_images


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "orange").save(buffer, "JPEG")
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), color) for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect/></svg>'
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "corrupt": (b"\xff\xd8\xff\xe0" + b"\x13" * 200, "not a readable image"),
    "empty": (b"", "empty"),
    "truncated": (jpeg()[:120], "readable"),
    "one-pixel": (jpeg((1, 1)), "at least 10 px"),
    "too-thin": (jpeg((2010, 10)), "aspect ratio"),
    "bomb-header": (png_of_zeros(10, 10, declared=(60000, 60000)), "too many pixels"),
    "svg": (SVG, "not a readable image"),
    "text-named-jpg": (b"just some notes, not a picture\n", "not a readable image"),
}


@pytest.fixture(scope="module")
def client(embedded_server: TestingServer) -> ImageSearchClient:
    return ImageSearchClient(
        base_url=embedded_server.base_url, api_key=embedded_server.api_key, max_retries=0
    )


@pytest.mark.parametrize(("data", "problem"), BAD_FILES.values(), ids=list(BAD_FILES))
def test_the_client_refuses_bad_files_before_sending(
    data: bytes,
    problem: str,
    client: ImageSearchClient,
    embedded_server: TestingServer,
    tmp_path: Path,
) -> None:
    path = tmp_path / "photo.jpg"  # the name promises a JPEG; the bytes decide
    path.write_bytes(data)
    before = embedded_server.request_count

    for given in (path, str(path), data):
        with pytest.raises(ImageInputError, match=problem):
            client.search(given)
    assert embedded_server.request_count == before


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_growth_mb(action: Callable[[], Any]) -> float:
    """How far this process's peak RSS rose above its RSS while ``action`` ran."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again here
    except OSError:
        pytest.skip("this kernel cannot reset the peak RSS (/proc/self/clear_refs)")
    before = _status_kb("VmRSS")
    action()
    return (_status_kb("VmHWM") - before) / 1024


def test_a_sparse_1_gb_file_is_refused_without_being_read(
    client: ImageSearchClient, embedded_server: TestingServer, tmp_path: Path
) -> None:
    """As a path or as an open file: sized first, never read whole into memory."""
    path = tmp_path / "huge.jpg"
    with path.open("wb") as file:
        file.truncate(1 << 30)
    before = embedded_server.request_count
    messages: list[str] = []

    def refused(image: Any) -> None:
        with pytest.raises(ImageInputError, match="not a readable image") as raised:
            client.search(image)
        messages.append(str(raised.value))

    with path.open("rb") as opened:
        for given in (path, str(path), opened):
            growth = peak_growth_mb(functools.partial(refused, given))
            assert growth < 100, f"{given!r}: peak RSS grew {growth:.0f} MB"
    assert len(set(messages)) == 1  # the open file is named, and refused, as its path
    assert embedded_server.request_count == before


class _Stream(io.RawIOBase):
    """A stream of ``size`` zero bytes that cannot seek, counting what was read of it."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = b"\0" * count
        self.left -= count
        self.read_bytes += count
        return count


def test_a_stream_over_the_limit_is_refused_after_reading_the_limit(
    client: ImageSearchClient,
) -> None:
    """A pipe cannot be converted without reading it whole: it is refused at the limit."""
    stream = _Stream(64 * 1024 * 1024)

    with pytest.raises(ImageInputError, match="cannot seek"):
        client.search(io.BufferedReader(stream))
    assert stream.read_bytes <= MAX_IMAGE_BYTES + 1 + io.DEFAULT_BUFFER_SIZE


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("missing.jpg", "file not found"),
        ("../../../etc/shadow", "file not found"),
        ("/", "not a file"),
        ("file:///etc/passwd", "unsupported URL scheme 'file'"),
        ("ftp://example.com/a.jpg", "unsupported URL scheme 'ftp'"),
        ("data:image/png;base64,!!!not base64", "invalid base64"),
        ("data:text/plain;base64,aGVsbG8=", "must look like data:image"),
        ("http:///no-host.jpg", "no host name"),
        ("", "empty string"),
    ],
    ids=[
        "missing",
        "traversal",
        "folder",
        "file-url",
        "ftp-url",
        "bad-base64",
        "not-image-mime",
        "no-host",
        "empty-string",
    ],
)
def test_the_client_refuses_bad_references(
    image: str,
    problem: str,
    client: ImageSearchClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageInputError, match=problem):
        client.search(image)


SERVER_PROBLEMS = {
    "corrupt": "cannot be opened",
    "empty": "cannot be opened",
    "truncated": "cannot be opened",
    "one-pixel": "must be larger than 10",
    "too-thin": "aspect ratio",
    "bomb-header": "too many pixels",
    "svg": "cannot be opened",
    "text-named-jpg": "cannot be opened",
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_the_server_answers_400_to_bad_image_data(
    name: str, embedded_server: TestingServer
) -> None:
    answer = post_images(embedded_server, data_url(BAD_FILES[name][0], "image/jpeg"))

    assert answer.status_code == 400
    assert SERVER_PROBLEMS[name] in answer.json()["error"]["message"]


def test_a_wrong_mime_type_does_not_matter_the_bytes_decide(embedded_server: TestingServer) -> None:
    assert post_images(embedded_server, data_url(jpeg(), "image/png")).status_code == 200


def test_an_animated_gif_searches_its_first_frame(
    client: ImageSearchClient, embedded_server: TestingServer
) -> None:
    assert post_images(embedded_server, data_url(animated_gif(), "image/gif")).status_code == 200
    result = client.search(animated_gif())
    assert result.inputs[0].converted and "first frame only" in (result.inputs[0].conversion or "")
