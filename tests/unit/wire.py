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

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        if not self._answers:
            raise AssertionError("the client sent a request no answer was scripted for")
        return self._answers.popleft()

    def client(self, **options: Any) -> ImageSearchClient:
        transport = httpx2.MockTransport(self.handle)
        return ImageSearchClient(
            base_url=BASE_URL,
            api_key="unit-key",
            http_client=httpx2.Client(transport=transport),
            http_async_client=httpx2.AsyncClient(transport=transport),
            **options,
        )
