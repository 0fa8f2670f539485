"""Settings and search machinery shared by the runnable, the tool and the chat model.

Each component holds the client settings and builds one ``ImageSearchClient`` lazily on
first use. Every search is streamed from the client so that progress is published as it
happens: each typed event goes to LangGraph ``stream_mode="custom"`` listeners (when run in
a graph) and, given the caller's run manager, to callback handlers and ``astream_events``
as the ``IMAGE_SEARCH_EVENT`` custom event, followed by the search's usage
(``USAGE_EVENT``) for the cost callback. Searches go through the optional result cache.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncRunManager, BaseRunManager, RunManager
from langchain_core.callbacks.manager import ahandle_event, handle_event
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.utils import secret_from_env
from langgraph.config import get_stream_writer
from langgraph.types import StreamWriter
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from langchain_qwen_imagesearch.client import ImageSearchClient
from langchain_qwen_imagesearch.config import API_KEY_ENV, DEFAULT_MAX_RETRIES
from langchain_qwen_imagesearch.errors import ImageSearchError
from langchain_qwen_imagesearch.events import ImageSearchEvent, SearchCompleted
from langchain_qwen_imagesearch.images import ImageInput, prepare_images
from langchain_qwen_imagesearch.langchain.cache import ImageSearchCache, search_cache_key
from langchain_qwen_imagesearch.langchain.cost import USAGE_EVENT, SearchUsageReport
from langchain_qwen_imagesearch.results import ImageSearchResult, PreparedImageInfo

IMAGE_SEARCH_EVENT = "qwen_image_search"
"""Name of the callback event carrying each typed progress event (data: ``ImageSearchEvent``)."""

LS_PROVIDER = "dashscope"

# Creating a client is quick and rare; one lock for all components keeps them copyable.
_CLIENT_LOCK = threading.Lock()

ImageInputs = ImageInput | Sequence[ImageInput]


class ImageSearchEngine(BaseModel):
    """Client settings (as ``ImageSearchClient`` takes them) and the shared search machinery.

    Unset settings fall back to the environment when the client is built:
    ``DASHSCOPE_BASE_URL`` / ``DASHSCOPE_REGION`` / ``DASHSCOPE_WORKSPACE_ID``. The API key
    is read from ``DASHSCOPE_API_KEY`` at construction.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env(API_KEY_ENV, default=None),
        description=f"DashScope API key; defaults to ${API_KEY_ENV}",
    )
    base_url: str | None = Field(default=None, description="API base URL (wins over region)")
    region: str | None = Field(default=None, description="Model Studio region, e.g. cn-beijing")
    workspace_id: str | None = None
    model: str | None = Field(default=None, description="model that runs the search")
    timeout: float | None = Field(default=None, description="seconds per request")
    max_retries: int = DEFAULT_MAX_RETRIES
    enable_thinking: bool | None = None
    search_cache: ImageSearchCache | None = Field(
        default=None, exclude=True, description="cache of finished searches; None disables it"
    )

    _client: ImageSearchClient | None = PrivateAttr(default=None)

    @property
    def client(self) -> ImageSearchClient:
        """The client, built on first use from these settings."""
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = ImageSearchClient(**self.client_settings())
        return self._client

    def client_settings(self) -> dict[str, Any]:
        """These settings as ``ImageSearchClient`` keyword arguments."""
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "region": self.region,
            "workspace_id": self.workspace_id,
            "model": self.model,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "enable_thinking": self.enable_thinking,
        }

    def engine_settings(self) -> dict[str, Any]:
        """Everything another component needs to search the same way (cache included)."""
        return {**self.client_settings(), "search_cache": self.search_cache}

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Where ``langchain_core.load`` finds the class: its module path."""
        return cls.__module__.split(".")

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Serialization replaces the key by a reference to its environment variable."""
        return {"api_key": API_KEY_ENV}

    def tracing_config(self, config: RunnableConfig | None) -> RunnableConfig:
        """``config`` with the provider and model added to the run metadata."""
        config = ensure_config(config)
        metadata = {"ls_provider": LS_PROVIDER, "ls_model_name": self.client.model}
        return {**config, "metadata": {**metadata, **config.get("metadata", {})}}

    def _search_events(
        self, images: ImageInputs, query: str | None, run_manager: RunManager | None
    ) -> Iterator[ImageSearchEvent]:
        search = _Search.start(self, images, query)
        events: Iterable[ImageSearchEvent] = (
            [SearchCompleted(result=search.cached)]
            if search.cached is not None
            else self.client.stream(search.images, search.query)
        )
        for event in events:
            passed_on, notes = search.observe(event)
            _notify(notes, run_manager)
            yield passed_on

    async def _asearch_events(
        self, images: ImageInputs, query: str | None, run_manager: AsyncRunManager | None
    ) -> AsyncIterator[ImageSearchEvent]:
        # Reading and encoding local images for the cache key blocks: keep it off the loop.
        search = await asyncio.to_thread(_Search.start, self, images, query)
        events: AsyncIterable[ImageSearchEvent] = (
            _async_iter([SearchCompleted(result=search.cached)])
            if search.cached is not None
            else self.client.astream(search.images, search.query)
        )
        async for event in events:
            passed_on, notes = search.observe(event)
            await _anotify(notes, run_manager)
            yield passed_on

    def _search(
        self, images: ImageInputs, query: str | None, run_manager: RunManager | None
    ) -> ImageSearchResult:
        return _final_result(list(self._search_events(images, query, run_manager)))

    async def _asearch(
        self, images: ImageInputs, query: str | None, run_manager: AsyncRunManager | None
    ) -> ImageSearchResult:
        return _final_result([e async for e in self._asearch_events(images, query, run_manager)])


Note = tuple[str, Any]
"""A callback event to dispatch: its name and data."""


@dataclass
class _Search:
    """One search's bookkeeping: cache key and lookup, publication, usage report."""

    engine: ImageSearchEngine
    images: ImageInputs
    query: str | None
    writer: StreamWriter | None
    cache_key: str | None = None
    cached: ImageSearchResult | None = None
    prepared_inputs: list[PreparedImageInfo] | None = None

    @classmethod
    def start(cls, engine: ImageSearchEngine, images: ImageInputs, query: str | None) -> _Search:
        search = cls(engine, images, query, _graph_stream_writer())
        cache = engine.search_cache
        if cache is not None:
            # Prepared once: the key hashes exactly what is sent, and a miss sends the
            # prepared images (a file object cannot be read twice).
            prepared = prepare_images(images)
            image_urls = [image.image_url for image in prepared]
            search.images = image_urls
            search.prepared_inputs = [image.info for image in prepared]
            client = engine.client
            search.cache_key = search_cache_key(
                image_urls,
                query,
                model=client.model,
                base_url=client.base_url,
                enable_thinking=engine.enable_thinking,
            )
            search.cached = cache.lookup(search.cache_key)
        return search

    def observe(self, event: ImageSearchEvent) -> tuple[ImageSearchEvent, list[Note]]:
        """The event to pass on, and the callback events to dispatch for it."""
        notes: list[Note] = []
        if isinstance(event, SearchCompleted):
            event = SearchCompleted(result=self._settle(event.result))
            report = SearchUsageReport.of(event.result, cached=self.cached is not None)
            notes.append((USAGE_EVENT, report))
        if self.writer is not None:
            self.writer(event)
        return event, [(IMAGE_SEARCH_EVENT, event), *notes]

    def _settle(self, result: ImageSearchResult) -> ImageSearchResult:
        """A fresh result goes into the cache, described by the images as the user gave them."""
        if self.cached is not None or self.cache_key is None:
            return result
        result = result.model_copy(update={"inputs": self.prepared_inputs})
        if self.engine.search_cache is not None:
            self.engine.search_cache.update(self.cache_key, result)
        return result


def _graph_stream_writer() -> StreamWriter | None:
    """LangGraph's custom-stream writer, or ``None`` outside a graph run."""
    try:
        return get_stream_writer()
    except (RuntimeError, KeyError):
        # RuntimeError outside any runnable; KeyError in a runnable that is not a graph.
        return None


def _notify(notes: list[Note], run_manager: RunManager | None) -> None:
    for args, identity in _custom_events(notes, run_manager):
        handle_event(*args, **identity)


async def _anotify(notes: list[Note], run_manager: AsyncRunManager | None) -> None:
    for args, identity in _custom_events(notes, run_manager):
        await ahandle_event(*args, **identity)


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


async def _async_iter(items: Iterable[ImageSearchEvent]) -> AsyncIterator[ImageSearchEvent]:
    for item in items:
        yield item


def _final_result(events: Sequence[ImageSearchEvent]) -> ImageSearchResult:
    if events and isinstance(events[-1], SearchCompleted):
        return events[-1].result
    raise ImageSearchError("the search stream ended without a result")
