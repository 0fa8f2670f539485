"""Scripted upstream failures, so clients can be tested against every error the service gives.

Each ``Fault`` applies to one coming request (first in, first out). Payloads are shaped as
docs/protocol.md#errors shows them.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response
from starlette.types import ASGIApp

from langchain_qwen_imagesearch.protocol import (
    ErrorCode,
    ErrorObject,
    ResponseObject,
    StreamEvent,
    dump_wire,
)
from langchain_qwen_imagesearch.server.error_answers import Envelope, ErrorAnswer
from langchain_qwen_imagesearch.server.http.rendering import error_response
from langchain_qwen_imagesearch.server.testing.rewriting import (
    END_STREAM,
    RawBody,
    RequestBody,
    Rewrite,
    RewritingMiddleware,
    StreamPiece,
)

FaultKind = Literal[
    "http",
    "failed_response",
    "stream_error",
    "delay",
    "incomplete",
    "cut",
    "stall",
    "trickle",
    "garbage",
    "endless_event",
]

RATE_LIMIT_MESSAGE = "Requests rate limit exceeded, please try again later."
_OPENING_EVENTS = ("response.created", "response.in_progress")
ENDLESS_EVENT_MEGABYTES = 32


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 200
    code: str = ""
    message: str = ""
    envelope: Envelope = "flat"
    retry_after: float | str | None = None
    seconds: float = 0.0
    after_events: int = 0

    @classmethod
    def http(
        cls,
        status: int,
        *,
        code: str,
        message: str = "",
        envelope: Envelope = "flat",
        retry_after: float | str | None = None,
    ) -> Fault:
        """An HTTP error status with the flat or the OpenAI-style envelope; ``retry_after``
        in seconds, or as the header's text (an HTTP date, or anything)."""
        return cls("http", status, code, message or code, envelope, retry_after)

    @classmethod
    def failed_response(
        cls, *, code: str = ErrorCode.SERVER_ERROR, message: str = RATE_LIMIT_MESSAGE
    ) -> Fault:
        """HTTP 200 with ``status: "failed"`` (streamed: a ``response.failed`` event)."""
        return cls("failed_response", code=code, message=message)

    @classmethod
    def stream_error(cls, *, code: str = ErrorCode.INTERNAL_ERROR, message: str = "") -> Fault:
        """A bare ``error`` event after ``response.created`` (not streamed: HTTP 500)."""
        return cls("stream_error", 500, code, message or "An internal error has occured.")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """The server stalls this long before answering normally."""
        return cls("delay", seconds=seconds)

    @classmethod
    def incomplete(cls) -> Fault:
        """The response ends ``incomplete`` (``max_output_tokens`` reached)."""
        return cls("incomplete", code="max_output_tokens", message="max_output_tokens")

    @classmethod
    def cut(cls, *, after_events: int = 4) -> Fault:
        """The connection breaks off: a stream after ``after_events`` events, a body halfway."""
        return cls("cut", after_events=after_events)

    @classmethod
    def stall(cls, seconds: float, *, after_events: int = 3) -> Fault:
        """A stream goes silent for ``seconds`` after ``after_events`` events, then goes on."""
        return cls("stall", seconds=seconds, after_events=after_events)

    @classmethod
    def trickle(cls, seconds: float) -> Fault:
        """Every event of a stream comes ``seconds`` after the one before: never silent
        for long, yet slow."""
        return cls("trickle", seconds=seconds)

    @classmethod
    def garbage(cls, *, after_events: int = 3) -> Fault:
        """What is not JSON: the whole body, or a stream's event after ``after_events``."""
        return cls("garbage", after_events=after_events)

    @classmethod
    def endless_event(cls, *, after_events: int = 3) -> Fault:
        """After ``after_events``, an event that never ends: 32 MB on one line."""
        return cls("endless_event", after_events=after_events)


class FaultInjector:
    """Makes coming requests fail as scripted; thread-safe (tests push from their thread)."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def push(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return RewritingMiddleware(app, self._rewrite_for)

    def _rewrite_for(self, body: RequestBody) -> Rewrite | None:
        with self._lock:
            fault = self._queue.popleft() if self._queue else None
        return _FaultRewrite(fault) if fault is not None else None


class _FaultRewrite(Rewrite):
    def __init__(self, fault: Fault) -> None:
        self._fault = fault
        self._ended = False
        self._seen = 0
        self._last_sequence_number = 0

    async def instead(self, request_id: str) -> Response | None:
        fault = self._fault
        if fault.kind == "http":
            error = ErrorAnswer(fault.status, fault.code, fault.message, envelope=fault.envelope)
            answer = error_response(error, request_id)
            if fault.retry_after is not None:
                value = fault.retry_after
                answer.headers["retry-after"] = value if isinstance(value, str) else f"{value:g}"
            return answer
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        return None

    async def event(self, event: StreamEvent) -> list[StreamPiece]:
        fault = self._fault
        if self._ended:
            return []
        self._seen += 1
        if fault.kind == "trickle":
            await asyncio.sleep(fault.seconds)
            return [event]
        started = self._seen == fault.after_events + 1
        if fault.kind == "endless_event" and started:
            self._ended = True
            return [b"data: ", *[b"x" * 2**20] * ENDLESS_EVENT_MEGABYTES]
        if fault.kind in ("cut", "stall", "garbage") and started:
            if fault.kind == "cut":
                self._ended = True
                return [END_STREAM]
            if fault.kind == "stall":
                await asyncio.sleep(fault.seconds)
                return [event]
            return [b"event:response.output_item.done\ndata:{not json\n\n"]
        self._last_sequence_number = event.sequence_number or self._last_sequence_number
        if fault.kind == "incomplete" and event.type == "response.completed":
            self._ended = True
            return [
                event.model_copy(
                    update={"type": "response.incomplete", "response": _incomplete(event.response)}
                )
            ]
        if fault.kind not in ("failed_response", "stream_error") or event.type in _OPENING_EVENTS:
            return [event]
        # The failure comes right after the opening events; the rest of the answer is dropped.
        self._ended = True
        number = self._last_sequence_number
        if fault.kind == "stream_error":
            return [
                StreamEvent(
                    type="error", sequence_number=number, code=fault.code, message=fault.message
                )
            ]
        failed = _failed(event.response or ResponseObject(), fault)
        return [StreamEvent(type="response.failed", sequence_number=number, response=failed)]

    async def response(self, response: ResponseObject) -> ResponseObject | ErrorAnswer | RawBody:
        fault = self._fault
        if fault.kind in ("cut", "garbage"):
            whole = json.dumps(dump_wire(response)).encode()
            if fault.kind == "garbage":
                return RawBody(b"<html>Bad gateway</html>")
            return RawBody(whole[: len(whole) // 2], declared=len(whole))
        if fault.kind in ("stall", "trickle"):
            await asyncio.sleep(fault.seconds)
        if fault.kind == "failed_response":
            return _failed(response, fault)
        if fault.kind == "stream_error":
            return ErrorAnswer(500, fault.code, fault.message, envelope="flat")
        if fault.kind == "incomplete":
            return _incomplete(response)
        return response


def _failed(response: ResponseObject, fault: Fault) -> ResponseObject:
    return response.model_copy(
        update={
            "status": "failed",
            "error": ErrorObject(code=fault.code, message=fault.message),
            "output": [],
            "usage": None,
        }
    )


def _incomplete(response: ResponseObject | None) -> ResponseObject:
    whole = response or ResponseObject()
    extra = {"incomplete_details": {"reason": "max_output_tokens"}}
    return whole.model_copy(update={"status": "incomplete", **extra})
