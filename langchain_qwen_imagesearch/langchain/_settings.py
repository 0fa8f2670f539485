"""The client settings every LangChain component of this package holds, and its searches.

Each component (runnable, tool, toolkit, chat model) carries these fields and builds one
``ImageSearchClient`` lazily on first use; its searches run through ``SearchRun``, which
uses the result cache and the rate limiter and publishes progress.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.caches import BaseCache
from langchain_core.callbacks import AsyncRunManager, RunManager
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.utils import secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from langchain_qwen_imagesearch.client import (
    API_KEY_ENV,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    AsyncHttpClient,
    HttpClient,
    Images,
    ImageSearchClient,
    ImageSearchEvent,
)
from langchain_qwen_imagesearch.langchain._results import LC_NAMESPACE, QwenImageSearchResult
from langchain_qwen_imagesearch.langchain._search_run import SearchRun

LS_PROVIDER = "dashscope"

# Creating a client is quick and rare; one lock for all components keeps them copyable.
_CLIENT_LOCK = threading.Lock()


class ImageSearchSettings(BaseModel):
    """Client settings (as ``ImageSearchClient`` takes them) and the searches they run.

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
    timeout: float | None = Field(
        default=None, description="seconds an attempt may take, to the answer's last byte"
    )
    stall_timeout: float | None = Field(
        default=None, description="seconds a stream may go silent (default: timeout)"
    )
    max_retries: int = DEFAULT_MAX_RETRIES
    enable_thinking: bool | None = None
    search_cache: BaseCache | None = Field(
        default=None,
        exclude=True,
        description="any LangChain cache (InMemoryCache, SQLiteCache, ...) of finished "
        "searches; None disables it",
    )
    http_client: HttpClient | None = Field(
        default=None, exclude=True, description="httpx2 client to send through (proxies, TLS)"
    )
    http_async_client: AsyncHttpClient | None = Field(
        default=None, exclude=True, description="httpx2 async client to send through"
    )
    rate_limiter: BaseRateLimiter | None = Field(
        default=None,
        exclude=True,
        description="paces paid searches, e.g. InMemoryRateLimiter(requests_per_second=2)",
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
            "stall_timeout": self.stall_timeout,
            "max_retries": self.max_retries,
            "enable_thinking": self.enable_thinking,
            "http_client": self.http_client,
            "http_async_client": self.http_async_client,
        }

    def shared_settings(self) -> dict[str, Any]:
        """Everything another component needs to search the same way (cache and rate
        limiter included)."""
        return {
            **self.client_settings(),
            "search_cache": self.search_cache,
            "rate_limiter": self.rate_limiter,
        }

    @property
    def model_name(self) -> str:
        """The model searches run with, without building the client."""
        return self.model or DEFAULT_MODEL

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Where ``langchain_core.load`` finds the class: its package, as exported."""
        return LC_NAMESPACE

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Serialization replaces the key by a reference to its environment variable."""
        return {"api_key": API_KEY_ENV}

    def tracing_config(self, config: RunnableConfig | None) -> RunnableConfig:
        """``config`` with the provider and model added to the run metadata."""
        config = ensure_config(config)
        metadata = {"ls_provider": LS_PROVIDER, "ls_model_name": self.model_name}
        return {**config, "metadata": {**metadata, **config.get("metadata", {})}}

    def _search_run(self) -> SearchRun:
        return SearchRun(self.client, self.search_cache, self.rate_limiter)

    def _search_events(
        self, images: Images, query: str | None, run_manager: RunManager | None
    ) -> Iterator[ImageSearchEvent]:
        request = self.client.prepare(images, query)
        return self._search_run().events(request, run_manager)

    async def _asearch_events(
        self, images: Images, query: str | None, run_manager: AsyncRunManager | None
    ) -> AsyncIterator[ImageSearchEvent]:
        request = await self.client.aprepare(images, query)
        async for event in self._search_run().aevents(request, run_manager):
            yield event

    def _search(
        self, images: Images, query: str | None, run_manager: RunManager | None
    ) -> QwenImageSearchResult:
        request = self.client.prepare(images, query)
        return self._search_run().result(request, run_manager)

    async def _asearch(
        self, images: Images, query: str | None, run_manager: AsyncRunManager | None
    ) -> QwenImageSearchResult:
        request = await self.client.aprepare(images, query)
        return await self._search_run().aresult(request, run_manager)
