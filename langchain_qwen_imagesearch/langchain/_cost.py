"""Totals of image searches, tokens and tool fees across a run, like ``get_openai_callback``.

The runnable, the tool and the graph node report each search's usage as a callback event
(``USAGE_EVENT``); ``ChatQwenImageSearch`` turns carry it in their message, read at
``on_llm_end`` as ``get_openai_callback`` reads token usage. ``get_image_search_callback()``
installs a handler for everything run inside its ``with`` block (threads and tasks
included); the handler can also be passed explicitly as ``config={"callbacks": [handler]}``.
A response counted once is not counted again (a cached chat turn replays the same response).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook
from pydantic import BaseModel

from langchain_qwen_imagesearch.client import ImageSearchResult, Usage
from langchain_qwen_imagesearch.langchain._messages import image_search_result

USAGE_EVENT = "qwen_image_search_usage"
"""Name of the callback event that reports one search's usage (data: ``SearchUsageReport``)."""

MAINLAND_FEE_PER_1000_CALLS = 48.0
"""Tool fee in CNY per 1,000 ``image_search`` calls on the mainland (Beijing) deployment."""
INTERNATIONAL_FEE_PER_1000_CALLS = 58.713905
"""Tool fee in CNY per 1,000 ``image_search`` calls on the international deployment."""


class SearchUsageReport(BaseModel):
    """What one search used. ``cached`` searches were answered from a cache and cost nothing."""

    response_id: str | None = None
    model: str | None = None
    usage: Usage
    image_search_calls: int
    cached: bool = False

    @classmethod
    def of(cls, result: ImageSearchResult, *, cached: bool = False) -> SearchUsageReport:
        return cls(
            response_id=result.id,
            model=result.model,
            usage=result.usage,
            # Billing counts tool calls; fall back to the call items if usage omits x_tools.
            image_search_calls=result.usage.image_search_calls or len(result.calls),
            cached=cached,
        )


class ImageSearchCostHandler(BaseCallbackHandler):
    """Sums the usage of image searches; safe to share between threads and tasks."""

    # Totals must be complete when the run returns, so never defer to a thread pool.
    run_inline = True

    def __init__(
        self,
        *,
        fee_per_1000_calls: float = MAINLAND_FEE_PER_1000_CALLS,
        currency: str = "CNY",
        parent: ImageSearchCostHandler | None = None,
    ) -> None:
        super().__init__()
        self.fee_per_1000_calls = fee_per_1000_calls
        self.currency = currency
        self.searches = 0
        self.cached_searches = 0
        self.image_search_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.total_tokens = 0
        self.reasoning_tokens = 0
        self._parent = parent
        self._counted_responses: set[str] = set()
        self._lock = threading.Lock()

    @property
    def tool_fee(self) -> float:
        """The ``image_search`` tool fee so far, in ``currency`` (tokens are billed apart)."""
        return self.image_search_calls * self.fee_per_1000_calls / 1000

    def record(self, report: SearchUsageReport) -> None:
        """Add one search (also to the enclosing ``get_image_search_callback`` block's)."""
        with self._lock:
            if report.cached or report.response_id in self._counted_responses:
                self.cached_searches += 1
            else:
                if report.response_id is not None:
                    self._counted_responses.add(report.response_id)
                usage = report.usage
                self.searches += 1
                self.image_search_calls += report.image_search_calls
                self.input_tokens += usage.input_tokens or 0
                self.output_tokens += usage.output_tokens or 0
                self.total_tokens += usage.total_tokens or 0
                self.reasoning_tokens += usage.reasoning_tokens or 0
        if self._parent is not None:
            self._parent.record(report)

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if name == USAGE_EVENT and isinstance(data, SearchUsageReport):
            self.record(data)

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generation in chain.from_iterable(response.generations):
            if isinstance(generation, ChatGeneration):
                result = image_search_result(generation.message)
                if result is not None:
                    self.record(SearchUsageReport.of(result))

    def __repr__(self) -> str:
        return (
            f"Image searches: {self.searches} ({self.cached_searches} more from cache)\n"
            f"image_search calls: {self.image_search_calls}\n"
            f"Tokens: {self.total_tokens} (input {self.input_tokens}, "
            f"output {self.output_tokens}, reasoning {self.reasoning_tokens})\n"
            f"Tool fee: {self.currency} {self.tool_fee:.4f}"
        )


_active_handler: ContextVar[ImageSearchCostHandler | None] = ContextVar(
    "qwen_image_search_cost_handler", default=None
)
register_configure_hook(_active_handler, inheritable=True)


@contextmanager
def get_image_search_callback(
    *, fee_per_1000_calls: float = MAINLAND_FEE_PER_1000_CALLS, currency: str = "CNY"
) -> Iterator[ImageSearchCostHandler]:
    """Count every image search run inside the block.

    >>> with get_image_search_callback() as cost:  # doctest: +SKIP
    ...     chain.invoke(...)
    >>> cost.image_search_calls, cost.total_tokens, cost.tool_fee  # doctest: +SKIP

    Blocks nest: an inner block's searches count in the outer block too. Pass
    ``fee_per_1000_calls=INTERNATIONAL_FEE_PER_1000_CALLS`` for the international deployment.
    """
    handler = ImageSearchCostHandler(
        fee_per_1000_calls=fee_per_1000_calls, currency=currency, parent=_active_handler.get()
    )
    token = _active_handler.set(handler)
    try:
        yield handler
    finally:
        _active_handler.reset(token)
