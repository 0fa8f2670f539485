"""Inputs made to exhaust the server: decompression bombs, huge and deep bodies, odd
headers. Each gets a clear 4xx; none a 5xx, a hang, or unbounded memory."""

from __future__ import annotations

import io
import json
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from langchain_qwen_imagesearch import ImageInputError, ImageSearchClient
from langchain_qwen_imagesearch.server import Catalog, ServerConfigError, check_bind_address
from langchain_qwen_imagesearch.server.http.app import MAX_REQUEST_BYTES
from langchain_qwen_imagesearch.server.testing import TestingServer
from tests.benchmarks.serve_process import KEY, server_process
from tests.reliability.wire import data_url, image_request, post_images

BOMB_SIDE = 13000


def png_of_zeros(width: int, height: int, *, declared: tuple[int, int] | None = None) -> bytes:
    """A real RGBA PNG of ``width`` x ``height`` transparent pixels: tiny on disk, 4 bytes a
    pixel once decoded. Compressed row by row, never held decoded. ``declared``: the size
    its header claims instead (its data then stops short)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width * 4)
    compressed = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", *(declared or (width, height)), 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", compressed)
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """657 KB that decode to 2.7 GB."""
    return png_of_zeros(BOMB_SIDE, BOMB_SIDE)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


@pytest.mark.slow
def test_three_bombs_at_once_get_400s_and_the_server_stays_small(bomb: bytes) -> None:
    body = image_request(data_url(bomb))
    answers: list[httpx.Response] = []
    with server_process() as server:
        headers = {"Authorization": f"Bearer {KEY}"}

        def send() -> None:
            answers.append(
                httpx.post(server.base_url + "/responses", json=body, headers=headers, timeout=60)
            )

        threads = [threading.Thread(target=send) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        peak = peak_rss_mb(server.pid)

    assert [answer.status_code for answer in answers] == [400, 400, 400]
    for answer in answers:
        assert "too many pixels" in answer.json()["error"]["message"]
    assert peak < 400, f"peak RSS {peak:.0f} MB"


def test_a_header_only_giant_says_too_many_pixels(embedded_server: TestingServer) -> None:
    header_only = png_of_zeros(10, 10, declared=(60000, 60000))
    answer = post_images(embedded_server, data_url(header_only))
    assert answer.status_code == 400
    assert "too many pixels" in answer.json()["error"]["message"]


def test_a_large_jpeg_decodes_at_reduced_scale_within_the_budget(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    with Image.open(catalog_photo) as photo:
        large = photo.convert("RGB").resize((7000, 5000))  # 35 MP: over the budget as is
    buffer = io.BytesIO()
    large.save(buffer, "JPEG", quality=50)
    answer = post_images(embedded_server, data_url(buffer.getvalue(), "image/jpeg"))
    assert answer.status_code == 200


def test_the_client_refuses_a_bomb_before_sending_it(
    bomb: bytes, embedded_server: TestingServer
) -> None:
    client = ImageSearchClient(base_url=embedded_server.base_url, api_key="k")
    before = embedded_server.request_count

    with pytest.raises(ImageInputError, match="too many pixels"):
        client.search(bomb)
    assert embedded_server.request_count == before


def post_raw(
    server: TestingServer, content: bytes | Iterator[bytes], **headers: str
) -> httpx.Response:
    return httpx.post(
        server.base_url + "/responses",
        content=content,
        headers={"Authorization": f"Bearer {server.api_key}", **headers},
        timeout=60,
    )


def test_a_body_over_the_limit_is_413_declared_or_chunked(embedded_server: TestingServer) -> None:
    declared = post_raw(embedded_server, b"{" + b" " * (MAX_REQUEST_BYTES + 10) + b"}")

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_REQUEST_BYTES // 1_000_000 + 2):
            yield b" " * 1_000_000

    streamed = post_raw(embedded_server, chunks())

    assert declared.status_code == streamed.status_code == 413
    assert "exceeds" in declared.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b'{"model": "qwen3.7-plus", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
        (b"\xff\xfe not json", 400),
        (b"", 400),
        (b"null", 400),
        (b'{"model": 5, "input": {}}', 400),
        (json.dumps(image_request("data:image/png;base64,!!!")).encode(), 400),
        (json.dumps(image_request("javascript:alert(1)")).encode(), 400),
    ],
    ids=[
        "deep-arrays",
        "deep-input",
        "binary",
        "empty",
        "null",
        "wrong-types",
        "bad-b64",
        "js-url",
    ],
)
def test_malformed_bodies_are_400s(
    body: bytes, status: int, embedded_server: TestingServer
) -> None:
    answer = post_raw(embedded_server, body, **{"content-type": "application/json"})
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == "InvalidParameter"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer caf\u00e9-\u00fc".encode("latin-1"),  # bytes no ASCII key can be
        "Bearer \u4f60\u597d".encode(),  # UTF-8, read as latin-1 by the server
        b"Bearer",
        b"Basic dXNlcjpwYXNz",
        b"Bearer " + b"x" * 10_000,
    ],
    ids=["latin-1", "utf-8", "no-token", "basic", "huge"],
)
def test_malformed_authorization_is_401(
    authorization: bytes, embedded_server: TestingServer
) -> None:
    answer = httpx.post(
        embedded_server.base_url + "/responses",
        json=image_request(),
        headers={"Authorization": authorization},
        timeout=30,
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == "InvalidApiKey"


@pytest.mark.parametrize("key", [" ", "", "\t\n"])
def test_a_blank_key_is_refused(key: str, demo_catalog: Catalog) -> None:
    with pytest.raises(ServerConfigError, match="blank"):
        check_bind_address("0.0.0.0", key)
    with pytest.raises(ServerConfigError, match="blank"):
        TestingServer(demo_catalog, api_key=key)
