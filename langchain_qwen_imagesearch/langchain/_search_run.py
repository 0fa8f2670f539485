"""One search as the LangChain layer runs it: cache, progress publication, usage report.

The images are prepared once by the client; the prepared search's key looks the result up
in the cache, and a miss sends that same prepared search. Every typed event goes to
LangGraph ``stream_mode="custom"`` listeners (when run in a graph) and, given the caller's
run manager, to callback handlers and ``astream_events`` as the ``IMAGE_SEARCH_EVENT``
custom event, followed by the search's usage (``USAGE_EVENT``) for the cost callback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncRunManager, BaseRunManager, RunManager
from langchain_core.callbacks.manager import ahandle_event, handle_event
from langgraph.config import get_stream_writer
from langgraph.types import StreamWriter

from langchain_qwen_imagesearch.client import (
    Images,
    ImageSearchClient,
    ImageSearchError,
    ImageSearchEvent,
    ImageSearchResult,
    PreparedSearch,
    SearchCompleted,
)
from langchain_qwen_imagesearch.langchain._cache import ImageSearchCache
from langchain_qwen_imagesearch.langchain._cost import USAGE_EVENT, SearchUsageReport

IMAGE_SEARCH_EVENT = "qwen_image_search"
"""Name of the callback event carrying each typed progress event (data: ``ImageSearchEvent``)."""

Note = tuple[str, Any]
"""A callback event to dispatch: its name and data."""


@dataclass(frozen=True)
class SearchRun:
    """Runs searches through ``client``, answering repeats from ``cache`` when there is one."""

    client: ImageSearchClient
    cache: ImageSearchCache | None

    def events(
        self, images: Images, query: str | None, run_manager: RunManager | None
    ) -> Iterator[ImageSearchEvent]:
        search = self.client.prepare(images, query)
        cached = self._lookup(search)
        events = (
            iter([SearchCompleted(result=cached)])
            if cached is not None
            else self.client.stream(search)
        )
        writer = _graph_stream_writer()
        for event in events:
            notes = self._observe(event, search, cached, writer)
            for args, identity in _custom_events(notes, run_manager):
                handle_event(*args, **identity)
            yield event

    async def aevents(
        self, images: Images, query: str | None, run_manager: AsyncRunManager | None
    ) -> AsyncIterator[ImageSearchEvent]:
        search = await self.client.aprepare(images, query)
        cached = self._lookup(search)
        writer = _graph_stream_writer()
        async for event in _cached_or_streamed(self.client, search, cached):
            notes = self._observe(event, search, cached, writer)
            for args, identity in _custom_events(notes, run_manager):
                await ahandle_event(*args, **identity)
            yield event

    def result(
        self, images: Images, query: str | None, run_manager: RunManager | None
    ) -> ImageSearchResult:
        events = list(self.events(images, query, run_manager))
        return _final_result(events[-1] if events else None)

    async def aresult(
        self, images: Images, query: str | None, run_manager: AsyncRunManager | None
    ) -> ImageSearchResult:
        events = [event async for event in self.aevents(images, query, run_manager)]
        return _final_result(events[-1] if events else None)

    def _lookup(self, search: PreparedSearch) -> ImageSearchResult | None:
        """The cached result of this search, described by the images and query as given now."""
        if self.cache is None:
            return None
        cached = self.cache.lookup(search.cache_key)
        if cached is None:
            return None
        return cached.model_copy(update={"inputs": search.inputs, "query": search.query})

    def _observe(
        self,
        event: ImageSearchEvent,
        search: PreparedSearch,
        cached: ImageSearchResult | None,
        writer: StreamWriter | None,
    ) -> list[Note]:
        """Stores a fresh result, passes the event to the graph's stream, and gives the
        callback events to dispatch for it."""
        notes: list[Note] = [(IMAGE_SEARCH_EVENT, event)]
        if isinstance(event, SearchCompleted):
            if cached is None and self.cache is not None:
                self.cache.update(search.cache_key, event.result)
            report = SearchUsageReport.of(event.result, cached=cached is not None)
            notes.append((USAGE_EVENT, report))
        if writer is not None:
            writer(event)
        return notes


def _graph_stream_writer() -> StreamWriter | None:
    """LangGraph's custom-stream writer, or ``None`` outside a graph run."""
    try:
        return get_stream_writer()
    except (RuntimeError, KeyError):
        # RuntimeError outside any runnable; KeyError in a runnable that is not a graph.
        return None


async def _cached_or_streamed(
    client: ImageSearchClient, search: PreparedSearch, cached: ImageSearchResult | None
) -> AsyncIterator[ImageSearchEvent]:
    if cached is not None:
        yield SearchCompleted(result=cached)
        return
    async for event in client.astream(search):
        yield event


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


def _final_result(last: ImageSearchEvent | None) -> ImageSearchResult:
    if isinstance(last, SearchCompleted):
        return last.result
    raise ImageSearchError("the search stream ended without a result")
