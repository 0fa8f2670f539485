"""Every image input kind, through the client to the embedded server, and the upstream limits."""

from __future__ import annotations

import base64
import functools
import io
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from langchain_qwen_imagesearch import ImageInput, ImageInputError, ImageSearchClient, NoImageError
from langchain_qwen_imagesearch.protocol import MAX_IMAGE_BYTES
from langchain_qwen_imagesearch.server.testing import TestingServer


@pytest.fixture(scope="module")
def client(embedded_server: TestingServer) -> ImageSearchClient:
    return ImageSearchClient(base_url=embedded_server.base_url, api_key=embedded_server.api_key)


@pytest.fixture
def photo_bytes(catalog_photo: Path) -> bytes:
    return catalog_photo.read_bytes()


def sent_content(server: TestingServer) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = server.requests[-1]["input"][0]["content"]
    return content


def sent_image_urls(server: TestingServer) -> list[str]:
    return [part["image_url"] for part in sent_content(server) if part["type"] == "input_image"]


def decoded(data_url: str) -> tuple[str, bytes]:
    header, _, payload = data_url.partition(",")
    return header, base64.b64decode(payload)


def encode(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def test_a_local_path_is_sent_byte_for_byte_with_the_sniffed_type(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path, tmp_path: Path
) -> None:
    # The name says PNG; the bytes are JPEG, and the bytes decide.
    misnamed = tmp_path / "really-a-jpeg.png"
    shutil.copy(catalog_photo, misnamed)

    result = client.search(str(misnamed))

    header, data = decoded(sent_image_urls(embedded_server)[0])
    assert header == "data:image/jpeg;base64"
    assert data == catalog_photo.read_bytes()
    assert result.hits[0].title  # the catalog photo finds itself
    info = result.inputs[0]
    assert (info.kind, info.mime_type, info.converted, info.sent_bytes) == (
        "path",
        "image/jpeg",
        False,
        len(data),
    )
    assert info.source == str(misnamed)


@pytest.mark.parametrize(
    "make_input",
    [
        pytest.param(lambda path: path, id="pathlib.Path"),
        pytest.param(lambda path: path.read_bytes(), id="bytes"),
        pytest.param(lambda path: bytearray(path.read_bytes()), id="bytearray"),
        pytest.param(lambda path: io.BytesIO(path.read_bytes()), id="BytesIO"),
    ],
)
def test_local_data_of_every_kind_is_sent_unchanged(
    make_input: Any, client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    client.search(make_input(catalog_photo))

    assert decoded(sent_image_urls(embedded_server)[0])[1] == catalog_photo.read_bytes()


def test_an_open_binary_file_is_read_and_named(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    with catalog_photo.open("rb") as file:
        result = client.search(file)

    assert decoded(sent_image_urls(embedded_server)[0])[1] == catalog_photo.read_bytes()
    assert result.inputs[0].kind == "file" and result.inputs[0].source == str(catalog_photo)


def test_a_pil_image_is_sent_losslessly(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    with Image.open(catalog_photo) as opened:
        picture = opened.convert("RGB")

    result = client.search(picture)

    header, data = decoded(sent_image_urls(embedded_server)[0])
    assert header == "data:image/png;base64"
    with Image.open(io.BytesIO(data)) as received:
        assert np.array_equal(np.asarray(received.convert("RGB")), np.asarray(picture))
    assert result.inputs[0].kind == "pil" and not result.inputs[0].converted
    assert result.hits


def test_a_data_url_within_limits_is_sent_as_is(
    client: ImageSearchClient, embedded_server: TestingServer, photo_bytes: bytes
) -> None:
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo_bytes).decode()

    result = client.search(data_url)

    assert sent_image_urls(embedded_server) == [data_url]
    assert result.inputs[0].kind == "data_url" and not result.inputs[0].converted


@pytest.fixture
def image_host(catalog_photo: Path, tmp_path: Path) -> Iterator[str]:
    """A plain static HTTP server on loopback, standing for a public image host."""
    shutil.copy(catalog_photo, tmp_path / "photo.jpg")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as http:
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{http.server_address[1]}"
        http.shutdown()


def test_an_http_url_is_sent_as_is_and_the_service_fetches_it(
    client: ImageSearchClient, embedded_server: TestingServer, image_host: str
) -> None:
    url = f"{image_host}/photo.jpg"

    result = client.search(url, query="Where else is this photo?")

    content = sent_content(embedded_server)
    assert content == [
        {"type": "input_text", "text": "Where else is this photo?"},
        {"type": "input_image", "image_url": url},
    ]
    assert result.hits and result.inputs[0].kind == "url"


def test_several_images_go_in_order_after_the_query(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    other = embedded_server.catalog_photo("coffee")

    result = client.search([catalog_photo, other], query="Find both")

    content = sent_content(embedded_server)
    assert [part["type"] for part in content] == ["input_text", "input_image", "input_image"]
    assert [decoded(url)[1] for url in sent_image_urls(embedded_server)] == [
        catalog_photo.read_bytes(),
        other.read_bytes(),
    ]
    assert [call.img_idx for call in result.calls] == [0, 1]
    assert result.usage.tool_calls == {"image_search": 2}


def test_a_gif_is_converted_once_and_the_conversion_recorded(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    with Image.open(catalog_photo) as opened:
        gif = encode(opened.convert("RGB"), "GIF")

    result = client.search(gif)

    header, data = decoded(sent_image_urls(embedded_server)[0])
    assert header == "data:image/jpeg;base64"
    info = result.inputs[0]
    assert info.converted and info.conversion is not None and "GIF" in info.conversion
    assert info.mime_type == "image/jpeg" and info.sent_bytes == len(data)


def test_transparency_survives_a_conversion_as_png(
    client: ImageSearchClient, embedded_server: TestingServer
) -> None:
    icon = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    icon.paste((0, 0, 255, 255), (16, 16, 48, 48))

    result = client.search(encode(icon, "GIF", transparency=0))

    header, data = decoded(sent_image_urls(embedded_server)[0])
    assert header == "data:image/png;base64" and result.inputs[0].converted
    with Image.open(io.BytesIO(data)) as received:
        assert received.mode == "RGBA" and received.getpixel((0, 0))[3] == 0


@pytest.fixture(scope="module")
def oversized_jpeg() -> bytes:
    """A 12 MP noise photo whose data URL is over 10 MB, shot rotated (EXIF orientation 6)."""
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    jpeg = encode(Image.fromarray(noise), "JPEG", quality=98, exif=exif.tobytes())
    assert len(jpeg) * 4 / 3 > MAX_IMAGE_BYTES
    return jpeg


def test_an_oversized_photo_is_downscaled_under_the_limit_and_kept_upright(
    client: ImageSearchClient, embedded_server: TestingServer, oversized_jpeg: bytes
) -> None:
    result = client.search(oversized_jpeg)

    url = sent_image_urls(embedded_server)[0]
    assert len(url) <= MAX_IMAGE_BYTES
    info = result.inputs[0]
    assert info.converted and info.conversion is not None and "4000x3000" in info.conversion
    assert (
        info.height is not None and info.width is not None and info.height > info.width
    )  # rotated
    with Image.open(io.BytesIO(decoded(url)[1])) as received:
        assert received.size == (info.width, info.height)


def test_an_oversized_pil_image_is_converted_without_altering_it(
    client: ImageSearchClient, oversized_jpeg: bytes
) -> None:
    with Image.open(io.BytesIO(oversized_jpeg)) as picture:
        result = client.search(picture)

        assert result.inputs[0].converted and result.inputs[0].kind == "pil"
        assert picture.size == (4000, 3000)


@pytest.mark.parametrize(
    ("image", "limit", "named"),
    [
        (Image.new("RGB", (9, 40)), "10 px", "PIL image 9x40"),
        (encode(Image.new("RGB", (2010, 10)), "PNG"), "200:1", "bytes"),
        (b"%PDF-1.7 definitely not an image", "readable image", "bytes (32 B)"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(64), "readable image", "pillow-heif"),
        ("no/such/photo.jpg", "file exists", "file not found"),
        ("ftp://example.com/a.jpg", "http(s)", "ftp://example.com/a.jpg"),
        ("https:///a.jpg", "valid http(s) URL", "no host"),
        ("data:text/plain;base64,aGVsbG8=", "base64 image data URL", "data URL"),
        ("data:image/png;base64,@@@", "valid base64", "invalid base64"),
        (io.StringIO("text"), "binary file", "binary mode"),
        (12345, "supported input types", "int"),
    ],
    ids=[
        "too-small",
        "too-thin",
        "not-an-image",
        "heic",
        "missing-file",
        "ftp-url",
        "no-host",
        "not-an-image-data-url",
        "bad-base64",
        "text-file",
        "wrong-type",
    ],
)
def test_what_cannot_be_fixed_is_refused_before_sending(
    image: Any, limit: str, named: str, client: ImageSearchClient, embedded_server: TestingServer
) -> None:
    sent_before = embedded_server.request_count

    with pytest.raises(ImageInputError) as raised:
        client.search(image)

    assert (
        named in str(raised.value)
        and raised.value.limit is not None
        and limit in raised.value.limit
    )
    assert embedded_server.request_count == sent_before


def test_the_failing_image_of_several_is_named_by_position(
    client: ImageSearchClient, catalog_photo: Path
) -> None:
    with pytest.raises(ImageInputError, match=r"image 2 of 2 \(missing\.jpg\)"):
        client.search([catalog_photo, "missing.jpg"])


def test_errors_never_dump_the_bytes(client: ImageSearchClient) -> None:
    payload = b"NOT-AN-IMAGE" * 1000

    with pytest.raises(ImageInputError) as raised:
        client.search(payload)

    assert "NOT-AN-IMAGE" not in str(raised.value) and len(str(raised.value)) < 300


@pytest.mark.parametrize("images", [[], (), None], ids=["empty-list", "empty-tuple", "None"])
def test_no_image_raises_before_any_request(
    images: Any, client: ImageSearchClient, embedded_server: TestingServer
) -> None:
    sent_before = embedded_server.request_count

    with pytest.raises(NoImageError, match="No image given"):
        client.search(images)

    assert embedded_server.request_count == sent_before


async def test_async_search_prepares_local_images_too(
    client: ImageSearchClient,
    embedded_server: TestingServer,
    catalog_photo: Path,
    photo_bytes: bytes,
) -> None:
    images: list[ImageInput] = [catalog_photo, photo_bytes]

    result = await client.asearch(images)

    assert [decoded(url)[1] for url in sent_image_urls(embedded_server)] == [photo_bytes] * 2
    assert [info.kind for info in result.inputs] == ["path", "bytes"]
    with pytest.raises(NoImageError):
        await client.asearch([])
