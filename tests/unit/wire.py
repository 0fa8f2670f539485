"""An in-process stand-in for the service, for unit tests of the client.

``Wire`` answers the client's requests: each request gets the next scripted answer, a JSON
response or a Server-Sent Events stream framed as docs/protocol.md#streaming shows.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpx2

from langchain_qwen_imagesearch import ImageSearchClient

BASE_URL = "https://dashscope.example/compatible-mode/v1"


def sse(events: Iterable[dict[str, Any]]) -> bytes:
    """Events in the upstream's framing (``id:``, ``event:``, ``:HTTP_STATUS/200``, ``data:``)."""
    frames = [
        f"id:{event.get('sequence_number', 0)}\nevent:{event['type']}\n:HTTP_STATUS/200\n"
        f"data:{json.dumps(event)}\n\n"
        for event in events
    ]
    return "".join(frames).encode()


class Wire:
    """Scripted answers for the client's requests, first in, first out; records each body."""

    def __init__(self) -> None:
        self._answers: deque[httpx2.Response] = deque()
        self.bodies: list[dict[str, Any]] = []

    def answer_json(self, payload: object, status: int = 200, **headers: str) -> None:
        self._answers.append(httpx2.Response(status, json=payload, headers=headers))

    def answer_stream(self, events: Iterable[dict[str, Any]], request_id: str = "req-1") -> None:
        headers = {"content-type": "text/event-stream", "x-request-id": request_id}
        self._answers.append(httpx2.Response(200, content=sse(events), headers=headers))

    def answer_sse_bytes(self, body: bytes, request_id: str = "req-1") -> None:
        """A stream of exactly these bytes, for framing that ``sse`` does not write."""
        headers = {"content-type": "text/event-stream", "x-request-id": request_id}
        self._answers.append(httpx2.Response(200, content=body, headers=headers))

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        if not self._answers:
            raise AssertionError("the client sent a request no answer was scripted for")
        return self._answers.popleft()

    def settings(self) -> dict[str, Any]:
        """Client settings that send through this wire (for the client or a component)."""
        transport = httpx2.MockTransport(self.handle)
        return {
            "base_url": BASE_URL,
            "api_key": "unit-key",
            "http_client": httpx2.Client(transport=transport),
            "http_async_client": httpx2.AsyncClient(transport=transport),
        }

    def client(self, **options: Any) -> ImageSearchClient:
        return ImageSearchClient(**self.settings(), **options)


# Payloads shaped as docs/protocol.md#response shows them.


def search_call_item(hits: list[dict[str, Any]], call_id: str = "msg_search1") -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "image_search_call",
        "status": "completed",
        "name": "image_search",
        "arguments": '{"img_idx": 0, "bbox": [0, 0, 1000, 1000]}',
        "output": json.dumps(hits),
    }


def message_item(text: str) -> dict[str, Any]:
    return {
        "id": "msg_answer1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call_item(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "id": f"msg_{call_id}",
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
    }


def response(*items: dict[str, Any], model: str = "qwen3.7-plus") -> dict[str, Any]:
    searches = sum(item["type"] == "image_search_call" for item in items)
    usage: dict[str, Any] = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
    if searches:
        usage["x_tools"] = {"image_search": {"count": searches}}
    return {
        "id": f"resp_{abs(hash(json.dumps(items))) % 10**8}",
        "object": "response",
        "created_at": 1771165900.0,
        "status": "completed",
        "model": model,
        "error": None,
        "output": list(items),
        "usage": usage,
    }


def events_of(whole: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream of ``whole`` in the documented order (docs/protocol.md#streaming)."""
    opening = {**whole, "status": "in_progress", "output": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**opening, "status": "queued"}},
        {"type": "response.in_progress", "response": opening},
    ]
    for index, item in enumerate(whole["output"]):
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        if item["type"] == "message":
            text = item["content"][0]["text"]
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            for start in range(0, len(text), 5):
                delta = text[start : start + 5]
                events.append({"type": "response.output_text.delta", "delta": delta, **where})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": whole})
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events
