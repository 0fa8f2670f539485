"""Streams as the service sends them (docs/protocol.md#streaming), through the public client
over an in-process transport: typed progress, the same result as a non-streamed call, and
typed errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PIL import Image

from langchain_qwen_imagesearch import (
    AnswerDelta,
    ImageSearchEvent,
    ImageSearchResult,
    IncompleteResponseError,
    InvalidRequestError,
    RateLimitError,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
    ServerError,
)
from tests.unit.wire import Wire

QUERY = "Find similar landscapes"
IMAGE = Image.new("RGB", (64, 48), "teal")
HITS = [
    {"title": "Serene Asian Landscape", "url": "https://example.com/a.jpg", "index": 1},
    {"title": "QingMing Notice", "url": "https://example.com/b.jpg", "index": 2},
]
USAGE = {
    "input_tokens": 8371,
    "output_tokens": 417,
    "total_tokens": 8788,
    "x_tools": {"image_search": {"count": 1}},
}


def search_item(*, done: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "msg_s1",
        "type": "image_search_call",
        "status": "completed" if done else "in_progress",
        "name": "image_search",
        "arguments": '{"img_idx": 0, "bbox": [0, 0, 1000, 1000]}',
    }
    if done:
        item["output"] = json.dumps(HITS)
    return item


def message_item(text: str, part_type: str = "output_text") -> dict[str, Any]:
    return {
        "id": "msg_m1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": part_type, "text": text, "annotations": []}],
    }


def full_response(answer: str) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1771165900.0,
        "status": "completed",
        "model": "qwen3.7-plus",
        "error": None,
        "output": [search_item(done=True), message_item(answer)],
        "usage": USAGE,
    }


def clean_stream(answer_pieces: list[str]) -> list[dict[str, Any]]:
    """A stream in the documented order (docs/protocol.md#streaming)."""
    answer = "".join(answer_pieces)
    opening = {"id": "resp_1", "status": "queued", "model": "qwen3.7-plus", "output": []}
    where = {"item_id": "msg_m1", "output_index": 1, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": {**opening, "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": search_item(done=False)},
        {"type": "response.output_item.done", "output_index": 0, "item": search_item(done=True)},
        {"type": "response.output_item.added", "output_index": 1, "item": message_item("")},
        {"type": "response.content_part.added", "part": {"type": "output_text"}, **where},
        *({"type": "response.output_text.delta", "delta": p, **where} for p in answer_pieces),
        {"type": "response.output_text.done", "text": answer, **where},
        {"type": "response.content_part.done", "part": {"type": "output_text"}, **where},
        {"type": "response.output_item.done", "output_index": 1, "item": message_item(answer)},
        {"type": "response.completed", "response": full_response(answer)},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def sloppy_stream(answer_pieces: list[str]) -> list[dict[str, Any]]:
    """Every sloppiness docs/protocol.md#stream-quirks lists, at once."""
    answer = "".join(answer_pieces)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "resp_1", "model": "", "status": "queued"}},
        {"type": "response.x_unknown_keepalive", "sequence_number": 7},
        {"type": "response.output_item.added", "output_index": 0, "item": search_item(done=False)},
        {"type": "response.output_item.added", "output_index": 1, "item": message_item("", "text")},
        *({"type": "response.output_text.delta", "delta": p} for p in answer_pieces),
        # The message is done before the search, and the search is done at another index.
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": message_item(answer, "text"),
        },
        {"type": "response.output_item.done", "output_index": 2, "item": search_item(done=True)},
        {
            "type": "response.completed",
            "response": {"id": "resp_1", "status": "completed", "usage": USAGE},
        },
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number * 3  # gaps
    return events


def streamed(wire: Wire, events: list[dict[str, Any]]) -> list[ImageSearchEvent]:
    """The typed events the client yields for a stream of ``events``."""
    wire.answer_stream(events)
    return list(wire.client(max_retries=0).stream(IMAGE, query=QUERY))


def not_streamed(wire: Wire, payload: dict[str, Any]) -> ImageSearchResult:
    """The result the client returns for a non-streamed answer of ``payload``."""
    wire.answer_json(payload)
    return wire.client(max_retries=0).search(IMAGE, query=QUERY)


def test_a_clean_stream_gives_progress_then_the_non_streamed_result(wire: Wire) -> None:
    typed = streamed(wire, clean_stream(["OK. I have ", "found ", "two images."]))

    assert isinstance(typed[0], SearchStarted) and typed[0].img_idx == 0
    assert typed[0].bbox == [0, 0, 1000, 1000]
    assert isinstance(typed[1], SearchFinished)
    assert [hit.url for hit in typed[1].hits] == [h["url"] for h in HITS]
    assert [e.delta for e in typed if isinstance(e, AnswerDelta)] == [
        "OK. I have ",
        "found ",
        "two images.",
    ]
    completed = typed[-1]
    assert isinstance(completed, SearchCompleted)
    expected = not_streamed(wire, full_response("OK. I have found two images."))
    assert completed.result == expected


def test_a_sloppy_stream_gives_the_same_result_as_the_full_response(wire: Wire) -> None:
    answer = "OK. I have found two images."
    typed = streamed(wire, sloppy_stream(["OK. I have ", "found two images."]))

    completed = typed[-1]
    assert isinstance(completed, SearchCompleted)
    result = completed.result
    expected = not_streamed(wire, full_response(answer))
    assert result.model_dump(exclude={"raw"}) == expected.model_dump(exclude={"raw"})
    assert result.model == "qwen3.7-plus"  # neither created nor completed named it
    assert result.usage.tool_calls == {"image_search": 1}
    # Ordered by where each item was added, not where it was reported done.
    assert [item["type"] for item in result.raw["output"]] == ["image_search_call", "message"]


def final_result(events: list[ImageSearchEvent]) -> ImageSearchResult:
    assert isinstance(events[-1], SearchCompleted)
    return events[-1].result


def test_deltas_are_the_answer_when_the_message_is_never_reported_done(wire: Wire) -> None:
    events = [
        e
        for e in sloppy_stream(["part one, ", "part two"])
        if e.get("item", {}).get("type") != "message"
    ]

    assert final_result(streamed(wire, events)).answer == "part one, part two"


def test_items_without_ids_are_kept_apart_by_output_index(wire: Wire) -> None:
    events = clean_stream(["done"])
    for event in events:
        if "item" in event:
            event["item"] = {key: value for key, value in event["item"].items() if key != "id"}
        event.get("response", {}).pop("output", None)

    result = final_result(streamed(wire, events))
    assert [call.hits[0].title for call in result.calls] == ["Serene Asian Landscape"]
    assert result.answer == "done"


@pytest.mark.parametrize(
    ("event", "error_type"),
    [
        (
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {
                        "code": "server_error",
                        "message": "Requests rate limit exceeded, please try again later.",
                    },
                },
            },
            RateLimitError,
        ),
        (
            {
                "type": "response.failed",
                "response": {
                    "error": {
                        "code": "InvalidParameter",
                        "message": "The provided URL does not appear to be valid.",
                    }
                },
            },
            InvalidRequestError,
        ),
        (
            {"type": "error", "code": "InternalError", "message": "An internal error has occured."},
            ServerError,
        ),
        (
            {
                "type": "response.incomplete",
                "response": {"incomplete_details": {"reason": "max_output_tokens"}},
            },
            IncompleteResponseError,
        ),
    ],
    ids=["failed-rate-limit", "failed-bad-url", "bare-error", "incomplete"],
)
def test_terminal_failures_raise_typed_errors(
    wire: Wire, event: dict[str, Any], error_type: type[Exception]
) -> None:
    wire.answer_stream([clean_stream(["x"])[0], event], request_id="req-1")

    with pytest.raises(error_type) as raised:
        list(wire.client(max_retries=0).stream(IMAGE, query=QUERY))
    assert getattr(raised.value, "request_id", None) == "req-1"


def test_a_failure_before_any_progress_is_retried(wire: Wire) -> None:
    """Nothing the caller saw would be repeated, so a transient failure is retried."""
    stream = clean_stream(["x"])
    failed = {"type": "error", "code": "InternalError", "message": "An internal error."}
    wire.answer_stream([stream[0], stream[1], failed])
    wire.answer_stream(stream)

    events = list(wire.client(max_retries=1, retry_backoff=0).stream(IMAGE, query=QUERY))

    assert final_result(events).answer == "x"
    assert len(wire.bodies) == 2


def test_a_failure_after_progress_was_shown_is_not_retried(wire: Wire) -> None:
    """The caller already saw a search start: a retry would show it twice."""
    stream = clean_stream(["x"])
    failed = {"type": "error", "code": "InternalError", "message": "An internal error."}
    wire.answer_stream([*stream[:3], failed])
    wire.answer_stream(stream)
    seen: list[ImageSearchEvent] = []

    with pytest.raises(ServerError):
        for event in wire.client(max_retries=1, retry_backoff=0).stream(IMAGE, query=QUERY):
            seen.append(event)
    assert [type(event) for event in seen] == [SearchStarted]
    assert len(wire.bodies) == 1
