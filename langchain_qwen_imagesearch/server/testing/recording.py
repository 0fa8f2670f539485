"""Recording of the request bodies a server receives, for tests that check what a client sent.

Bounded: only the latest bodies are kept (a count of all is kept too), so a long-running
server that records stays within its memory.
"""

from __future__ import annotations

import threading
from collections import deque

from starlette.types import ASGIApp

from langchain_qwen_imagesearch.server.testing.rewriting import (
    RequestBody,
    Rewrite,
    RewritingMiddleware,
)

DEFAULT_KEPT_REQUESTS = 64


class RequestRecorder:
    """Keeps the JSON bodies of the latest ``keep`` Responses-API requests."""

    def __init__(self, keep: int = DEFAULT_KEPT_REQUESTS) -> None:
        self._bodies: deque[RequestBody] = deque(maxlen=keep)
        self._count = 0
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[RequestBody]:
        """The latest bodies received, oldest first."""
        with self._lock:
            return list(self._bodies)

    @property
    def count(self) -> int:
        """How many requests were received in all."""
        return self._count

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return RewritingMiddleware(app, self._record)

    def _record(self, body: RequestBody) -> Rewrite | None:
        with self._lock:
            self._bodies.append(body)
            self._count += 1
        return None
