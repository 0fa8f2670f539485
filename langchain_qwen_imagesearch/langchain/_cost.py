"""Totals of image searches, tokens and tool fees across a run, like ``get_openai_callback``.

Every component (runnable, tool, graph node, chat model) reports each search's usage as a
callback event (``USAGE_EVENT``). ``get_image_search_callback()`` installs a handler for
everything run inside its ``with`` block: in its context (tasks, and threads that copy the
context, as LangChain's executors do) through the callback system, and searches run in plain
``threading.Thread``s, which start without any context, by reporting them to the innermost
blocks open at the time. The handler can also be passed explicitly, as
``config={"callbacks": [handler]}``. A response counted once is not counted again; a chat
turn that LangChain's own cache replays counts as a cached search.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
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
from langchain_qwen_imagesearch.langchain._results import image_search_result

USAGE_EVENT = "qwen_image_search_usage"
"""Name of the callback event that reports one search's usage (data: ``SearchUsageReport``)."""

MAINLAND_FEE_PER_1000_CALLS = 48.0
"""Tool fee in CNY per 1,000 ``image_search`` calls on the mainland (Beijing) deployment."""
INTERNATIONAL_FEE_PER_1000_CALLS = 58.713905
"""Tool fee in CNY per 1,000 ``image_search`` calls on the international deployment."""


class SearchUsageReport(BaseModel):
    """What one request used. ``cached`` ones were answered from a cache and cost nothing;
    ``searched`` is false for a chat turn that offered no image search (tokens only)."""

    response_id: str | None = None
    model: str | None = None
    usage: Usage
    image_search_calls: int
    cached: bool = False
    searched: bool = True

    @classmethod
    def of(
        cls, result: ImageSearchResult, *, cached: bool = False, searched: bool = True
    ) -> SearchUsageReport:
        return cls(
            response_id=result.id,
            model=result.model,
            usage=result.usage,
            # Billing counts tool calls; fall back to the call items if usage omits x_tools.
            image_search_calls=result.usage.image_search_calls or len(result.calls),
            cached=cached,
            searched=searched or bool(result.calls),
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
        # Responses reported by an event whose chat turn (if any) has not ended yet.
        self._reported_unclaimed: set[str] = set()
        self._lock = threading.Lock()

    @property
    def tool_fee(self) -> float:
        """The ``image_search`` tool fee so far, in ``currency`` (tokens are billed apart)."""
        return self.image_search_calls * self.fee_per_1000_calls / 1000

    def record(self, report: SearchUsageReport) -> None:
        """Add one search (also to the enclosing ``get_image_search_callback`` block's)."""
        with self._lock:
            if report.response_id is not None:
                self._reported_unclaimed.add(report.response_id)
            if report.cached or report.response_id in self._counted_responses:
                self.cached_searches += report.searched
            else:
                if report.response_id is not None:
                    self._counted_responses.add(report.response_id)
                usage = report.usage
                self.searches += report.searched
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
        """A chat turn that reported no search ran none: LangChain's own cache replayed it,
        for free."""
        for generation in chain.from_iterable(response.generations):
            if not isinstance(generation, ChatGeneration):
                continue
            result = image_search_result(generation.message)
            if result is None or not result.calls:
                continue
            with self._lock:
                reported = result.id in self._reported_unclaimed
                self._reported_unclaimed.discard(result.id or "")
            if not reported:
                self.record(SearchUsageReport.of(result, cached=True))

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

# The blocks open now, in any thread: for searches run where no block's context reaches.
_open_blocks: list[ImageSearchCostHandler] = []
_open_blocks_lock = threading.Lock()


def report_where_callbacks_do_not_reach(
    report: SearchUsageReport, reached: Sequence[BaseCallbackHandler]
) -> None:
    """Count a search in the blocks that the run's own handlers (``reached``) leave out: the
    block of this context when the run had no callbacks (``BaseChatModel.stream`` hands its
    ``_stream`` none), and, for a search outside every block's context (a plain thread), the
    innermost open blocks, each passing it on to its enclosing ones."""
    active = _active_handler.get()
    if active is not None:
        if not any(handler is active for handler in reached):
            active.record(report)
        return
    with _open_blocks_lock:
        parents = {id(block._parent) for block in _open_blocks if block._parent is not None}
        innermost = [block for block in _open_blocks if id(block) not in parents]
    for block in innermost:
        if not any(handler is block for handler in reached):
            block.record(report)


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
    with _open_blocks_lock:
        _open_blocks.append(handler)
    try:
        yield handler
    finally:
        with _open_blocks_lock:
            _open_blocks.remove(handler)
        _active_handler.reset(token)
