"""The embedded server speaks the upstream wire protocol exactly (docs/protocol.md)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image, ImageEnhance

from langchain_qwen_imagesearch.protocol import MAX_IMAGE_BYTES
from langchain_qwen_imagesearch.server import ServerConfigError
from langchain_qwen_imagesearch.server.testing import Fault, TestingServer

ROUTES = ("/compatible-mode/v1", "/api/v2/apps/protocols/compatible-mode/v1", "/v1")


def data_url_of(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    mime = "jpeg" if fmt == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def photo_data_url(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


def request_body(
    *image_urls: str, stream: bool = False, text: str = "Find similar images"
) -> dict[str, Any]:
    content: list[dict[str, str]] = [{"type": "input_text", "text": text}]
    content += [{"type": "input_image", "image_url": url} for url in image_urls]
    return {
        "model": "qwen3.7-plus",
        "input": [{"role": "user", "content": content}],
        "tools": [{"type": "image_search"}],
        "stream": stream,
    }


def post(
    server: TestingServer, body: dict[str, Any], route: str = ROUTES[0], key: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    return httpx.post(
        server.root_url + route + "/responses", json=body, headers=headers, timeout=30
    )


def sse_frames(server: TestingServer, body: dict[str, Any]) -> list[list[str]]:
    response = post(server, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return [frame.split("\n") for frame in response.text.split("\n\n") if frame]


@pytest.fixture
def sdk(embedded_server: TestingServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=embedded_server.api_key, base_url=embedded_server.base_url)


def test_stream_uses_upstream_framing_and_event_order(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    frames = sse_frames(embedded_server, request_body(photo_data_url(catalog_photo), stream=True))

    events = []
    for frame in frames:
        assert frame[0].startswith("id:") and frame[1].startswith("event:")
        assert frame[2] == ":HTTP_STATUS/200" and frame[3].startswith("data:")
        data = json.loads(frame[3].removeprefix("data:"))
        assert data["type"] == frame[1].removeprefix("event:")
        assert data["sequence_number"] == int(frame[0].removeprefix("id:"))
        events.append(data)
    assert "[DONE]" not in "".join(line for frame in frames for line in frame)

    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
    ]
    assert events[0]["response"]["status"] == "queued"
    added, done = events[2]["item"], events[3]["item"]
    assert added["type"] == done["type"] == "image_search_call"
    assert added["status"] == "in_progress" and "output" not in added
    assert added["name"] == "image_search"
    assert json.loads(added["arguments"]) == {"img_idx": 0, "bbox": [0, 0, 1000, 1000]}
    assert done["status"] == "completed" and done["id"] == added["id"]
    hits = json.loads(done["output"])
    assert hits and set(hits[0]) == {"title", "url", "index"} and hits[0]["index"] == 1
    message_events = types[4:]
    assert message_events[:2] == ["response.output_item.added", "response.content_part.added"]
    assert "response.output_text.delta" in message_events
    assert message_events[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == next(e["text"] for e in events if e["type"] == "response.output_text.done")
    assert events[-1]["response"]["usage"]["x_tools"] == {"image_search": {"count": 1}}


@pytest.mark.parametrize("route", ROUTES)
def test_every_upstream_route_answers_with_a_search(
    route: str, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    response = post(embedded_server, request_body(photo_data_url(catalog_photo)), route=route)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["id"].startswith("resp_")
    assert all(item["id"].startswith("msg_") for item in body["output"])
    assert [item["type"] for item in body["output"]] == ["image_search_call", "message"]


def test_sdk_reads_hits_answer_and_usage(
    sdk: openai.OpenAI, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    response = sdk.responses.create(
        model="qwen3.7-plus",
        input=[
            {
                "role": "user",
                "content": [{"type": "input_image", "image_url": photo_data_url(catalog_photo)}],
            }
        ],
        tools=[{"type": "image_search"}],  # type: ignore[list-item]
    )

    call = next(item for item in response.output if item.type == "image_search_call")
    hits = json.loads(call.output)  # type: ignore[union-attr]
    catalog_file = httpx.get(
        hits[0]["url"], headers={"Authorization": f"Bearer {embedded_server.api_key}"}
    )
    assert catalog_file.status_code == 200
    assert catalog_file.content == catalog_photo.read_bytes()
    assert response.output_text
    assert response.usage is not None and response.usage.input_tokens > 0
    assert response.usage.x_tools == {"image_search": {"count": 1}}  # type: ignore[attr-defined]


def test_an_edited_copy_finds_its_original_first(
    sdk: openai.OpenAI, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    with Image.open(catalog_photo) as original:
        width, height = original.size
        edited = ImageEnhance.Brightness(
            original.convert("RGB").crop((width // 10, height // 10, width, height))
        ).enhance(1.3)
    response = post(embedded_server, request_body(data_url_of(edited, "JPEG")))

    hits = json.loads(response.json()["output"][0]["output"])
    first = httpx.get(
        hits[0]["url"], headers={"Authorization": f"Bearer {embedded_server.api_key}"}
    )
    assert first.content == catalog_photo.read_bytes()


def test_each_input_image_gets_its_own_search_call(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    other = embedded_server.catalog_photo("coffee")
    body = post(
        embedded_server, request_body(photo_data_url(catalog_photo), photo_data_url(other))
    ).json()

    calls = [item for item in body["output"] if item["type"] == "image_search_call"]
    assert [json.loads(c["arguments"])["img_idx"] for c in calls] == [0, 1]
    assert body["usage"]["x_tools"] == {"image_search": {"count": 2}}


def test_an_unrelated_image_is_not_padded_with_a_hundred_hits(
    embedded_server: TestingServer,
) -> None:
    flat = Image.new("RGB", (64, 64), (250, 0, 250))
    body = post(embedded_server, request_body(data_url_of(flat))).json()

    assert len(json.loads(body["output"][0]["output"])) < 100


def test_no_image_answers_without_a_tool_call(embedded_server: TestingServer) -> None:
    body = post(embedded_server, request_body(text="Find images like my photo")).json()

    assert [item["type"] for item in body["output"]] == ["message"]
    assert "no search by image was run" in body["output"][0]["content"][0]["text"]
    assert "x_tools" not in body["usage"]


def test_wrong_key_gets_401_invalid_api_key_in_the_flat_envelope(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    response = post(embedded_server, request_body(photo_data_url(catalog_photo)), key="wrong")

    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"request_id", "code", "message"} and body["code"] == "InvalidApiKey"


def test_hit_links_are_signed_and_work_without_the_key(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    body = post(embedded_server, request_body(photo_data_url(catalog_photo))).json()
    url = json.loads(body["output"][0]["output"])[0]["url"]
    bare, _, query = url.partition("?")
    expires, signature = (part.split("=")[1] for part in query.split("&"))
    forged = f"{bare}?expires={expires}&signature={'0' * len(signature)}"
    later = f"{bare}?expires={int(expires) + 1}&signature={signature}"
    stale = f"{bare}?expires=1&signature={signature}"

    assert httpx.get(url).status_code == 200
    assert httpx.get(url).content == catalog_photo.read_bytes()
    for refused in (bare, forged, later, stale):
        assert httpx.get(refused).status_code == 401, refused
    keyed = httpx.get(bare, headers={"Authorization": f"Bearer {embedded_server.api_key}"})
    assert keyed.status_code == 200


@pytest.mark.parametrize(
    ("image_url", "message_part"),
    [
        (data_url_of(Image.new("RGB", (8, 40))), "must be larger than 10"),
        (data_url_of(Image.new("RGB", (2100, 10))), "aspect ratio"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "cannot be opened"),
        (
            "data:image/png;base64," + "A" * MAX_IMAGE_BYTES,
            "max bytes per data-uri item : 10485760",
        ),
        ("http://127.0.0.1:9/missing.png", "does not appear to be valid"),
    ],
    ids=["too-small", "too-thin", "not-an-image", "over-10MB", "unreachable-url"],
)
def test_image_limits_answer_400_invalid_parameter(
    image_url: str, message_part: str, embedded_server: TestingServer
) -> None:
    response = post(embedded_server, request_body(image_url))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidParameter" and message_part in error["message"]


def test_a_bad_image_in_a_stream_ends_in_response_failed(embedded_server: TestingServer) -> None:
    frames = sse_frames(
        embedded_server, request_body(data_url_of(Image.new("RGB", (5, 5))), stream=True)
    )

    last = json.loads(frames[-1][3].removeprefix("data:"))
    assert last["type"] == "response.failed"
    assert last["response"]["error"]["code"] == "InvalidParameter"


def test_an_image_url_is_downloaded(embedded_server: TestingServer, catalog_photo: Path) -> None:
    first = post(embedded_server, request_body(photo_data_url(catalog_photo))).json()
    url = json.loads(first["output"][0]["output"])[0]["url"]
    server = TestingServer(embedded_server.catalog)  # keyless, so its own URLs are fetchable
    with server:
        keyless_url = url.replace(embedded_server.root_url, server.root_url)
        body = post(server, request_body(keyless_url)).json()

    hits = json.loads(body["output"][0]["output"])
    # The keyless server links its images unsigned; the entry is the same.
    assert hits[0]["url"].rsplit("/", 1)[1] == url.rsplit("/", 1)[1].split("?")[0]


def test_an_unknown_model_is_not_found(embedded_server: TestingServer, catalog_photo: Path) -> None:
    response = post(
        embedded_server, {**request_body(photo_data_url(catalog_photo)), "model": "gpt-4o"}
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ModelNotFound"


def test_rate_limit_can_arrive_as_http_200_failed(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    embedded_server.inject(Fault.failed_response())
    response = post(embedded_server, request_body(photo_data_url(catalog_photo)))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "server_error" and "rate limit" in body["error"]["message"]


def test_throttling_comes_with_retry_after(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    embedded_server.inject(Fault.http(429, code="Throttling.RateQuota", retry_after=2))
    response = post(embedded_server, request_body(photo_data_url(catalog_photo)))

    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert response.json()["code"] == "Throttling.RateQuota"


def test_a_keyless_server_refuses_to_bind_beyond_loopback() -> None:
    with pytest.raises(ServerConfigError, match="--api-key"):
        TestingServer(catalog=None, host="0.0.0.0")
