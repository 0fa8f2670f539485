"""Property-based fuzzing (hypothesis): no request body makes the server answer 5xx, and no
wire payload makes the client's parsers raise anything but this package's typed errors.
Bounded by the profile in conftest.py (HYPOTHESIS_PROFILE=long for a deeper run)."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from langchain_qwen_imagesearch import ImageSearchClient, ImageSearchError
from langchain_qwen_imagesearch.client._sse import SSEDecoder
from langchain_qwen_imagesearch.client._stream import StreamAccumulator
from langchain_qwen_imagesearch.server.testing import TestingServer

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def _tiny_png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "navy").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


PARTS = st.one_of(
    st.fixed_dictionaries({"type": st.just("input_text"), "text": st.text(max_size=30)}),
    st.fixed_dictionaries(
        {
            "type": st.just("input_image"),
            "image_url": st.sampled_from(
                [_tiny_png(), "data:image/png;base64,AAAA", "https://", "data:", "", "x"]
            )
            | st.text(max_size=30),
        }
    ),
    st.dictionaries(st.sampled_from(["type", "text", "image_url", "detail"]), JSON, max_size=3),
)
MESSAGES = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", ""]),
        "content": st.lists(PARTS, max_size=3) | st.text(max_size=10),
    }
)
REQUESTS = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["qwen3.7-plus", "qwen3.6-plus", "gpt-4o", ""])
        | st.text(max_size=8),
        "input": st.lists(MESSAGES | JSON, max_size=3) | st.text(max_size=10) | JSON,
    },
    optional={
        "tools": st.lists(
            st.fixed_dictionaries({"type": st.sampled_from(["image_search", "function", "x"])})
            | JSON,
            max_size=3,
        ),
        "stream": st.booleans() | JSON,
        "tool_choice": JSON,
        "instructions": JSON,
    },
)


# What the parsers finish with; nothing is sent.
PREPARED = ImageSearchClient(
    base_url="https://fuzz.example/compatible-mode/v1", api_key="k"
).prepare(_tiny_png())


@pytest.fixture(scope="module")
def http(embedded_server: TestingServer) -> httpx.Client:
    return httpx.Client(
        base_url=embedded_server.base_url,
        headers={"Authorization": f"Bearer {embedded_server.api_key}"},
        timeout=30,
    )


@given(body=REQUESTS | JSON)
def test_no_request_body_gets_a_5xx(http: httpx.Client, body: Any) -> None:
    # Python's JSON, NaN and Infinity included: the server reads them too.
    answer = http.post("/responses", content=json.dumps(body))
    assert answer.status_code < 500, answer.text[:300]
    if answer.status_code >= 400:
        assert "InvalidParameter" in answer.text or "ModelNotFound" in answer.text
    elif answer.headers["content-type"].startswith("text/event-stream"):
        assert "event:response.created" in answer.text


@given(
    payloads=st.lists(
        JSON
        | st.fixed_dictionaries(
            {"type": st.text(max_size=30)},
            optional={
                "response": JSON,
                "item": JSON,
                "delta": JSON,
                "output_index": JSON,
                "part": JSON,
            },
        ),
        max_size=8,
    )
)
def test_stream_payloads_give_events_or_typed_errors(payloads: list[Any]) -> None:
    accumulator = StreamAccumulator(PREPARED)
    with contextlib.suppress(ImageSearchError):
        for payload in payloads:
            accumulator.feed(payload)


@given(
    payload=JSON
    | st.fixed_dictionaries(
        {},
        optional={
            "status": JSON,
            "output": st.lists(JSON, max_size=3),
            "usage": JSON,
            "error": JSON,
            "id": JSON,
        },
    )
)
def test_response_payloads_give_results_or_typed_errors(payload: Any) -> None:
    with contextlib.suppress(ImageSearchError):
        PREPARED.result_of_payload(payload)


@given(chunks=st.lists(st.binary(max_size=40), max_size=10))
def test_the_event_stream_decoder_takes_any_bytes(chunks: list[bytes]) -> None:
    decoder = SSEDecoder()
    for chunk in chunks:
        for event in decoder.feed(chunk):
            assert isinstance(event.data, str)


SSE_TEXT = st.lists(
    st.sampled_from([b"data: {}", b"data:x", b"event: a", b": ping", b"id: 7", b"", b"\xff"]),
    max_size=12,
).flatmap(
    lambda lines: st.sampled_from([b"\n", b"\r\n", b"\r"]).map(lambda end: end.join(lines) + end)
)


@given(stream=SSE_TEXT, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_the_event_stream_decodes_the_same_however_it_is_chunked(
    stream: bytes, cuts: list[int]
) -> None:
    whole = SSEDecoder().feed(stream)
    decoder = SSEDecoder()
    bounds = [0, *sorted(min(cut, len(stream)) for cut in cuts), len(stream)]
    pieces = [stream[start:end] for start, end in itertools.pairwise(bounds)]

    assert [event for piece in pieces for event in decoder.feed(piece)] == whole
