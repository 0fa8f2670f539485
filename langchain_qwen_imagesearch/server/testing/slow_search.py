"""A slow upstream: each search is held to at least a given time, as the real one takes
about a minute (docs/protocol.md#cost-and-latency). For client and load testing."""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp

from langchain_qwen_imagesearch.protocol import IMAGE_SEARCH_CALL, ResponseObject, StreamEvent
from langchain_qwen_imagesearch.server.error_answers import ErrorAnswer
from langchain_qwen_imagesearch.server.testing.rewriting import (
    RequestBody,
    Rewrite,
    RewritingMiddleware,
    StreamPiece,
)


def slow_searches(app: ASGIApp, seconds: float) -> ASGIApp:
    """``app`` with every search finishing no sooner than ``seconds`` after the last one (the
    first: after the request arrived), so a held server answers in exactly the held time."""

    def rewrite_for(body: RequestBody) -> Rewrite | None:
        return _SlowRewrite(seconds)

    return RewritingMiddleware(app, rewrite_for)


class _SlowRewrite(Rewrite):
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._clock = time.perf_counter()

    async def _hold(self, searches: int) -> None:
        remaining = searches * self._seconds - (time.perf_counter() - self._clock)
        if remaining > 0:
            await asyncio.sleep(remaining)
        self._clock = time.perf_counter()

    async def event(self, event: StreamEvent) -> list[StreamPiece]:
        item = event.item
        if event.type == "response.output_item.done" and item and item.type == IMAGE_SEARCH_CALL:
            await self._hold(1)
        return [event]

    async def response(self, response: ResponseObject) -> ResponseObject | ErrorAnswer:
        await self._hold(len(response.image_search_calls()))
        return response
