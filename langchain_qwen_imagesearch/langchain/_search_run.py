"""One search as the LangChain layer runs it: cache, rate limit, progress, usage report.

The client prepares the request once; its key looks the result up in the cache, and a miss
sends that same prepared request, after the rate limiter lets it go. Progress is streamed
only when something listens: a LangGraph graph (``stream_mode="custom"``) or a callback
handler that takes custom events (``astream_events`` among them). Then every typed event
goes to them as the ``IMAGE_SEARCH_EVENT`` custom event; otherwise one non-streamed call
does the work. Either way the search's usage goes out as ``USAGE_EVENT`` for the cost
callback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import (
    AsyncCallbackHandler,
    AsyncRunManager,
    BaseCallbackHandler,
    BaseRunManager,
    RunManager,
)
from langchain_core.callbacks.manager import ahandle_event, handle_event
from langchain_core.rate_limiters import BaseRateLimiter
from langgraph.config import get_stream_writer
from langgraph.types import StreamWriter

from langchain_qwen_imagesearch.client import (
    ImageSearchClient,
    ImageSearchError,
    ImageSearchEvent,
    PreparedRequest,
    SearchCompleted,
)
from langchain_qwen_imagesearch.langchain import _cache
from langchain_qwen_imagesearch.langchain._cost import (
    USAGE_EVENT,
    ImageSearchCostHandler,
    SearchUsageReport,
    report_where_callbacks_do_not_reach,
)
from langchain_qwen_imagesearch.langchain._results import QwenImageSearchResult

IMAGE_SEARCH_EVENT = "qwen_image_search"
"""Name of the callback event carrying each typed progress event (data: ``ImageSearchEvent``)."""

Note = tuple[str, Any]
"""A callback event to dispatch: its name and data."""


@dataclass(frozen=True)
class SearchRun:
    """Runs searches through ``client``: repeats from ``cache``, paid ones at the pace of
    ``rate_limiter``."""

    client: ImageSearchClient
    cache: BaseCache | None = None
    rate_limiter: BaseRateLimiter | None = None

    def events(
        self, request: PreparedRequest, run_manager: RunManager | None, *, stream: bool = True
    ) -> Iterator[ImageSearchEvent]:
        """The typed events of the search; with ``stream=False``, only ``SearchCompleted``."""
        cached = _cache.lookup(self.cache, request.cache_key) if self.cache is not None else None
        publisher = _Publisher.for_run(request, run_manager, stream)
        if cached is not None:
            events: Iterator[ImageSearchEvent] = iter([SearchCompleted(result=cached)])
        else:
            if self.rate_limiter is not None:
                self.rate_limiter.acquire(blocking=True)
            events = (
                self.client.stream(request)
                if publisher.streams
                else iter([SearchCompleted(result=self.client.search(request))])
            )
        for event in events:
            event = _typed(event, request, cached)
            if isinstance(event, SearchCompleted) and cached is None and self.cache is not None:
                _cache.store(self.cache, request.cache_key, event.result)
            for args, identity in publisher.notes(event, cached is not None):
                handle_event(*args, **identity)
            yield event

    async def aevents(
        self,
        request: PreparedRequest,
        run_manager: AsyncRunManager | None,
        *,
        stream: bool = True,
    ) -> AsyncIterator[ImageSearchEvent]:
        """``events`` without blocking the event loop."""
        cached = (
            await _cache.alookup(self.cache, request.cache_key) if self.cache is not None else None
        )
        publisher = _Publisher.for_run(request, run_manager, stream)
        if cached is None and self.rate_limiter is not None:
            await self.rate_limiter.aacquire(blocking=True)
        async for event in self._aevents(request, cached, publisher.streams):
            event = _typed(event, request, cached)
            if isinstance(event, SearchCompleted) and cached is None and self.cache is not None:
                await _cache.astore(self.cache, request.cache_key, event.result)
            for args, identity in publisher.notes(event, cached is not None):
                await ahandle_event(*args, **identity)
            yield event

    async def _aevents(
        self, request: PreparedRequest, cached: QwenImageSearchResult | None, streams: bool
    ) -> AsyncIterator[ImageSearchEvent]:
        if cached is not None:
            yield SearchCompleted(result=cached)
        elif streams:
            async for event in self.client.astream(request):
                yield event
        else:
            yield SearchCompleted(result=await self.client.asearch(request))

    def result(
        self, request: PreparedRequest, run_manager: RunManager | None
    ) -> QwenImageSearchResult:
        """The result; progress is streamed only when something listens for it."""
        last = None
        for last in self.events(request, run_manager, stream=False):  # noqa: B007
            pass
        return _final_result(last)

    async def aresult(
        self, request: PreparedRequest, run_manager: AsyncRunManager | None
    ) -> QwenImageSearchResult:
        last = None
        async for last in self.aevents(request, run_manager, stream=False):  # noqa: B007
            pass
        return _final_result(last)


def _typed(
    event: ImageSearchEvent, request: PreparedRequest, cached: QwenImageSearchResult | None
) -> ImageSearchEvent:
    """The event with its result as this layer's type; a cached result describes the images
    and query as given now."""
    if not isinstance(event, SearchCompleted):
        return event
    if cached is not None:
        update = {"inputs": request.inputs, "query": request.query}
        return SearchCompleted(result=cached.model_copy(update=update))
    return SearchCompleted(result=QwenImageSearchResult.of(event.result))


@dataclass(frozen=True)
class _Publisher:
    """Where a run's progress and usage go."""

    request: PreparedRequest
    run_manager: BaseRunManager | None
    writer: StreamWriter | None
    streams: bool

    @classmethod
    def for_run(
        cls, request: PreparedRequest, run_manager: BaseRunManager | None, stream: bool
    ) -> _Publisher:
        writer = _graph_stream_writer()
        listened = writer is not None or _listens_for_progress(run_manager)
        return cls(request, run_manager, writer, stream or listened)

    def notes(
        self, event: ImageSearchEvent, cached: bool
    ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
        """The ``handle_event`` arguments of the callback events for ``event``; the event
        itself also goes to the graph's custom stream."""
        notes: list[Note] = []
        if self.streams:
            notes.append((IMAGE_SEARCH_EVENT, event))
            if self.writer is not None:
                self.writer(event)
        if isinstance(event, SearchCompleted):
            report = SearchUsageReport.of(
                event.result, cached=cached, searched=self.request.offers_image_search
            )
            notes.append((USAGE_EVENT, report))
            reached = self.run_manager.handlers if self.run_manager is not None else []
            report_where_callbacks_do_not_reach(report, reached)
        return _custom_events(notes, self.run_manager)


def _listens_for_progress(run_manager: BaseRunManager | None) -> bool:
    """Whether a handler of the run takes custom events (the cost handler takes only usage)."""
    if run_manager is None:
        return False
    return any(
        not handler.ignore_custom_event
        and not isinstance(handler, ImageSearchCostHandler)
        and _overrides_on_custom_event(handler)
        for handler in run_manager.handlers
    )


def _overrides_on_custom_event(handler: BaseCallbackHandler) -> bool:
    base = (
        AsyncCallbackHandler if isinstance(handler, AsyncCallbackHandler) else BaseCallbackHandler
    )
    return type(handler).on_custom_event is not base.on_custom_event


def _graph_stream_writer() -> StreamWriter | None:
    """LangGraph's custom-stream writer, or ``None`` outside a graph run."""
    try:
        return get_stream_writer()
    except (RuntimeError, KeyError):
        # RuntimeError outside any runnable; KeyError in a runnable that is not a graph.
        return None


def _custom_events(
    notes: list[Note], run_manager: BaseRunManager | None
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The ``handle_event`` arguments that dispatch each note as a custom event of the run."""
    if run_manager is None:
        return
    identity = {
        "run_id": run_manager.run_id,
        "tags": run_manager.tags,
        "metadata": run_manager.metadata,
    }
    for name, data in notes:
        yield (run_manager.handlers, "on_custom_event", "ignore_custom_event", name, data), identity


def _final_result(last: ImageSearchEvent | None) -> QwenImageSearchResult:
    if isinstance(last, SearchCompleted) and isinstance(last.result, QwenImageSearchResult):
        return last.result
    raise ImageSearchError("the search stream ended without a result")
