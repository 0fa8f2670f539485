"""Scripted upstream failures, so clients can be tested against every error the service gives.

Each ``Failure`` applies to one coming request (first in, first out). Payloads are shaped
exactly as the reference's "Errors" section shows.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from langchain_qwen_imagesearch.server.upstream_errors import Envelope

FailureKind = Literal["http", "failed_response", "stream_error", "delay", "incomplete"]

RATE_LIMIT_MESSAGE = "Requests rate limit exceeded, please try again later."


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
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
    ) -> Failure:
        """An HTTP error status with the flat or the OpenAI-style envelope."""
        return cls("http", status, code, message or code, envelope, retry_after)

    @classmethod
    def failed_response(
        cls, *, code: str = "server_error", message: str = RATE_LIMIT_MESSAGE
    ) -> Failure:
        """HTTP 200 with ``status: "failed"`` (streamed: a ``response.failed`` event)."""
        return cls("failed_response", code=code, message=message)

    @classmethod
    def stream_error(cls, *, code: str = "InternalError", message: str = "") -> Failure:
        """A bare ``error`` event after ``response.created`` (not streamed: HTTP 500)."""
        return cls("stream_error", 500, code, message or "An internal error has occured.")

    @classmethod
    def delay(cls, seconds: float) -> Failure:
        """The server stalls this long before answering normally."""
        return cls("delay", seconds=seconds)

    @classmethod
    def incomplete(cls) -> Failure:
        """The response ends ``incomplete`` (``max_output_tokens`` reached)."""
        return cls("incomplete", code="max_output_tokens", message="max_output_tokens")


class FailureQueue:
    """Thread-safe: tests inject from their thread, the server pops in its own."""

    def __init__(self) -> None:
        self._queue: deque[Failure] = deque()
        self._lock = threading.Lock()

    def push(self, failure: Failure) -> None:
        with self._lock:
            self._queue.append(failure)

    def pop(self) -> Failure | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
