"""What the service may send that is not quite the documented hits (docs/client.md#results):
a bad entry among good ones, an output that is no JSON, more hits than documented, and
Server-Sent Events with comments and fields the client has no use for. Through the public
client (searched and streamed) and the search tool in a LangGraph ``ToolNode``, over an
in-process transport."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from PIL import Image

from langchain_qwen_imagesearch import (
    MalformedOutputError,
    QwenImageSearchTool,
    SearchCompleted,
    SearchFinished,
)
from langchain_qwen_imagesearch.client import MalformedHit
from tests.unit.wire import Wire, events_of, message_item, response, search_call_item

IMAGE = Image.new("RGB", (64, 48), "teal")
GOOD: list[dict[str, Any]] = [
    {"title": "Stone arch bridge", "url": "https://example.com/bridge.jpg", "index": 1},
    {"title": "Old town at night", "url": "https://example.com/town.jpg", "index": 3},
]
BAD: dict[str, Any] = {
    "title": "Misnumbered",
    "url": "https://example.com/bad.jpg",
    "index": "first",
}
WITH_A_BAD_HIT = [GOOD[0], BAD, GOOD[1]]
REPORTED = [MalformedHit(entry=json.dumps(BAD), problem="index 'first' is not a number")]


def answered(hits: list[dict[str, Any]], answer: str = "Two bridges.") -> dict[str, Any]:
    return response(search_call_item(hits), message_item(answer))


def test_a_bad_hit_is_reported_and_the_good_ones_are_kept(wire: Wire) -> None:
    wire.answer_json(answered(WITH_A_BAD_HIT))

    result = wire.client(max_retries=0).search(IMAGE)

    assert [hit.url for hit in result.hits] == [hit["url"] for hit in GOOD]
    assert [hit.index for hit in result.hits] == [1, 3]
    assert result.calls[0].malformed_hits == REPORTED
    assert result.answer == "Two bridges."


def test_a_bad_hit_in_a_stream_is_reported_and_the_good_ones_are_kept(wire: Wire) -> None:
    wire.answer_stream(events_of(answered(WITH_A_BAD_HIT)))

    events = list(wire.client(max_retries=0).stream(IMAGE))

    (finished,) = [event for event in events if isinstance(event, SearchFinished)]
    assert [hit.url for hit in finished.hits] == [hit["url"] for hit in GOOD]
    completed = events[-1]
    assert isinstance(completed, SearchCompleted)
    assert [hit.url for hit in completed.result.hits] == [hit["url"] for hit in GOOD]
    assert completed.result.calls[0].malformed_hits == REPORTED


def test_a_tool_node_search_with_a_bad_hit_still_gives_the_good_hits(wire: Wire) -> None:
    """The agent's tool message lists the good hits; the artifact reports the bad entry."""
    wire.answer_stream(events_of(answered(WITH_A_BAD_HIT)))
    tool = QwenImageSearchTool(**wire.settings(), max_retries=0)
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    call = {
        "name": tool.name,
        "args": {"image": "https://example.com/photo.jpg"},
        "id": "call_1",
    }

    state = graph.compile().invoke({"messages": [AIMessage(content="", tool_calls=[call])]})

    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "success"
    assert "Found 2 matching images" in message.content
    for hit in GOOD:
        assert hit["url"] in message.content
    assert BAD["url"] not in message.content
    assert [hit.url for hit in message.artifact.hits] == [hit["url"] for hit in GOOD]
    assert message.artifact.calls[0].malformed_hits == REPORTED


NOT_JSON = "[{'title': 'Stone arch bridge', 'url': 'https://example.com/bridge.jpg'"


def malformed(raised: pytest.ExceptionInfo[MalformedOutputError]) -> MalformedOutputError:
    error = raised.value
    assert error.raw_output == NOT_JSON
    assert error.partial_result is not None
    assert error.partial_result.answer == "Two bridges."
    assert error.partial_result.hits == []
    return error


def test_an_output_that_is_not_json_is_a_typed_error_keeping_the_text(wire: Wire) -> None:
    whole = answered([])
    whole["output"][0]["output"] = NOT_JSON
    wire.answer_json(whole)
    wire.answer_json(answered(GOOD))  # a retry would get this: there must be none

    with pytest.raises(MalformedOutputError, match="not valid JSON") as raised:
        wire.client(max_retries=2, retry_backoff=0).search(IMAGE)

    assert "raw_output" in str(malformed(raised))
    assert len(wire.bodies) == 1


def test_a_streamed_output_that_is_not_json_is_a_typed_error_keeping_the_text(
    wire: Wire,
) -> None:
    whole = answered([])
    whole["output"][0]["output"] = NOT_JSON
    wire.answer_stream(events_of(whole))
    wire.answer_stream(events_of(answered(GOOD)))

    with pytest.raises(MalformedOutputError, match="not valid JSON") as raised:
        list(wire.client(max_retries=2, retry_backoff=0).stream(IMAGE))

    malformed(raised)
    assert len(wire.bodies) == 1


MANY = [
    {"title": f"Picture {n}", "url": f"https://example.com/{n}.jpg", "index": n}
    for n in range(1, 151)
]


def test_more_hits_than_the_documented_100_are_all_kept(wire: Wire) -> None:
    """The upstream documents at most 100 per search; the client drops nothing it was sent
    (docs/client.md#results: "Nothing is dropped without a trace")."""
    wire.answer_json(answered(MANY))
    wire.answer_stream(events_of(answered(MANY)))
    client = wire.client(max_retries=0)

    searched = client.search(IMAGE)
    events = list(client.stream(IMAGE))

    assert [hit.index for hit in searched.hits] == list(range(1, 151))
    assert searched.calls[0].malformed_hits == []
    (finished,) = [event for event in events if isinstance(event, SearchFinished)]
    assert len(finished.hits) == 150
    completed = events[-1]
    assert isinstance(completed, SearchCompleted)
    assert completed.result.hits == searched.hits


def test_comments_and_unknown_fields_in_a_stream_are_ignored(wire: Wire) -> None:
    """A ``: ping`` after an ``id:`` line, fields the client has no use for, and blocks
    without data are not events (the SSE standard); the stream completes with its hits."""
    frames = []
    for event in events_of(answered(GOOD)):
        frames.append(
            f"id:{event['sequence_number']}\n: ping\nevent:{event['type']}\nretry: 3000\n"
            f"x-trace: abc\n:HTTP_STATUS/200\ndata:{json.dumps(event)}\n\n"
            f"id:{event['sequence_number']}\n: ping\n\n: keep-alive\n\n"
        )
    wire.answer_sse_bytes("".join(frames).encode())

    events = list(wire.client(max_retries=0).stream(IMAGE))

    completed = events[-1]
    assert isinstance(completed, SearchCompleted)
    assert [hit.url for hit in completed.result.hits] == [hit["url"] for hit in GOOD]
    assert completed.result.answer == "Two bridges."
    assert sum(isinstance(event, SearchFinished) for event in events) == 1
