"""Scripted upstream failures, so clients can be tested against every error the service gives.

Each ``Fault`` applies to one coming request (first in, first out). Payloads are shaped as
docs/protocol.md#errors shows them.
"""

from __future__ import annotations

import asyncio
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
)
from langchain_qwen_imagesearch.server.error_answers import Envelope, ErrorAnswer
from langchain_qwen_imagesearch.server.http.rendering import error_response
from langchain_qwen_imagesearch.server.testing.rewriting import (
    RequestBody,
    Rewrite,
    RewritingMiddleware,
)

FaultKind = Literal["http", "failed_response", "stream_error", "delay", "incomplete"]

RATE_LIMIT_MESSAGE = "Requests rate limit exceeded, please try again later."
_OPENING_EVENTS = ("response.created", "response.in_progress")


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 200
    code: str = ""
    message: str = ""
    envelope: Envelope = "flat"
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def http(
        cls,
        status: int,
        *,
        code: str,
        message: str = "",
        envelope: Envelope = "flat",
        retry_after: float | None = None,
    ) -> Fault:
        """An HTTP error status with the flat or the OpenAI-style envelope."""
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
        self._last_sequence_number = 0

    async def instead(self, request_id: str) -> Response | None:
        fault = self._fault
        if fault.kind == "http":
            error = ErrorAnswer(fault.status, fault.code, fault.message, envelope=fault.envelope)
            return error_response(error, request_id, fault.retry_after)
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        return None

    async def event(self, event: StreamEvent) -> list[StreamEvent]:
        fault = self._fault
        if self._ended:
            return []
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

    async def response(self, response: ResponseObject) -> ResponseObject | ErrorAnswer:
        fault = self._fault
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
