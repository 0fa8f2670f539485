"""``ChatQwenImageSearch``: a Qwen chat model with search by image built in.

Each turn sends the whole conversation to the Responses API. When the turn's user message
brings images (``image_search="auto"``), the built-in ``image_search`` tool is offered and
the model searches; a text-only turn is answered from the conversation, earlier hits
included, without paying for a new search. Tools bound with ``bind_tools`` go upstream as
``function`` tools beside the search, and the model's ``function_call`` items come back as
``tool_calls``, so this model can drive ``create_agent`` with the user's own tools.

Messages carry the search as LangChain expects: the answer as content (with
``output_version="v1"``: ``server_tool_call`` and ``server_tool_result`` blocks, the result
holding the hits, then the text), the tokens in ``usage_metadata``, the tool calls in
``response_metadata["x_tools"]``, and the whole result in ``additional_kwargs`` (read it
typed with ``image_search_result(message)``).

Why not build on langchain-openai's ``ChatOpenAI``: its ``bind_tools`` rejects
``image_search``, it drops the ``image_search_call`` items (the hits) and ``usage.x_tools``
in private module functions no method override reaches, and it fails on an image_search
server-tool pair in its history; a working subclass needs private imports and copied
streaming code (docs/langchain.md, "Why its own chat model").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    InvalidToolCall,
    ToolCall,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field
from typing_extensions import override

from langchain_qwen_imagesearch.client import (
    AnswerDelta,
    FunctionCall,
    FunctionTool,
    ImageSearchCall,
    ImageSearchEvent,
    ImageSearchResult,
    PreparedRequest,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
    ToolChoice,
)
from langchain_qwen_imagesearch.langchain._history import (
    ImageSearchMode,
    conversation_of,
    offers_image_search,
)
from langchain_qwen_imagesearch.langchain._results import RESULT_KEY
from langchain_qwen_imagesearch.langchain._search_run import SearchRun
from langchain_qwen_imagesearch.langchain._settings import LS_PROVIDER, ImageSearchSettings
from langchain_qwen_imagesearch.langchain._stop import StopCutter

IMAGE_SEARCH_TOOL_SPEC = {"type": "image_search"}


class ChatQwenImageSearch(ImageSearchSettings, BaseChatModel):
    """A Qwen chat model (Responses API) that searches the web by image when a turn brings
    images, and calls the tools bound to it.

    >>> chat = ChatQwenImageSearch()  # doctest: +SKIP
    >>> question = HumanMessage([{"type": "image", "url": "https://..."}])  # doctest: +SKIP
    >>> reply = chat.invoke([question])  # doctest: +SKIP
    >>> image_search_result(reply).hits  # doctest: +SKIP
    """

    image_search: ImageSearchMode = Field(
        default="auto",
        description="when a turn offers the image search: 'auto' (the turn's user message "
        "brings images), 'always' (the conversation holds any), 'never'; per call too",
    )

    @classmethod
    @override
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    @override
    def _llm_type(self) -> str:
        return "qwen-image-search"

    @property
    @override
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "base_url": self.base_url,
            "region": self.region,
            "enable_thinking": self.enable_thinking,
            "image_search": self.image_search,
        }

    @override
    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = LS_PROVIDER
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        return params

    @override
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` to the model as ``function`` tools, beside the image search.

        ``tool_choice``: ``"auto"``, ``"any"``/``"required"``/``True`` (call some tool), or a
        tool's name. ``{"type": "image_search"}`` among ``tools`` is accepted and left out:
        the search is built in.
        """
        functions = [
            convert_to_openai_tool(tool, strict=strict)["function"]
            for tool in tools
            if tool != IMAGE_SEARCH_TOOL_SPEC
        ]
        return self.bind(tools=functions, tool_choice=_tool_choice(tool_choice), **kwargs)

    # A chat turn goes through the rate limiter of BaseChatModel, once.
    @override
    def _search_run(self) -> SearchRun:
        return SearchRun(self.client, self.search_cache, rate_limiter=None)

    def _request(self, messages: list[BaseMessage], kwargs: Mapping[str, Any]) -> PreparedRequest:
        mode: ImageSearchMode = kwargs.get("image_search", self.image_search)
        functions = [
            FunctionTool(
                name=function["name"],
                description=function.get("description", ""),
                parameters=function.get("parameters", {"type": "object", "properties": {}}),
            )
            for function in kwargs.get("tools") or []
        ]
        return self.client.prepare_conversation(
            conversation_of(messages),
            image_search=offers_image_search(messages, mode),
            functions=functions,
            tool_choice=kwargs.get("tool_choice"),
            model=kwargs.get("model"),
        )

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, kwargs)
        result = self._search_run().result(request, run_manager)
        return self._chat_result(result, request, stop)

    @override
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Reading and encoding the conversation's images blocks: keep it off the loop.
        request = await asyncio.to_thread(self._request, messages, kwargs)
        result = await self._search_run().aresult(request, run_manager)
        return self._chat_result(result, request, stop)

    @override
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, kwargs)
        chunks = _Chunks(self.output_version == "v1", request, stop)
        for event in self._search_run().events(request, run_manager):
            yield from chunks.of(event)

    @override
    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = await asyncio.to_thread(self._request, messages, kwargs)
        chunks = _Chunks(self.output_version == "v1", request, stop)
        async for event in self._search_run().aevents(request, run_manager):
            for chunk in chunks.of(event):
                yield chunk

    def _chat_result(
        self, result: ImageSearchResult, request: PreparedRequest, stop: list[str] | None
    ) -> ChatResult:
        answer = StopCutter(stop).cut(result.answer)
        content: str | list[str | dict[str, Any]] = answer
        if self.output_version == "v1":
            content = [
                *(block for call in result.calls for block in _search_blocks(call)),
                {"type": "text", "text": answer},
            ]
        calls, invalid = _tool_calls(result.function_calls)
        message = AIMessage(
            content=content,
            tool_calls=calls,
            invalid_tool_calls=invalid,
            **_metadata(result, request),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class _Chunks:
    """A streamed turn's events as message chunks: the search blocks (v1) and the answer text
    as they come, then the tool calls, usage and the whole result on the last chunk."""

    def __init__(self, v1: bool, request: PreparedRequest, stop: list[str] | None) -> None:
        self._v1 = v1
        self._request = request
        self._stop = StopCutter(stop)
        self._next_index = 0
        self._text_index: int | None = None

    def of(self, event: ImageSearchEvent) -> list[ChatGenerationChunk]:
        if isinstance(event, AnswerDelta):
            return self._text(self._stop.feed(event.delta))
        if isinstance(event, SearchCompleted):
            return [*self._text(self._stop.rest()), self._last(event.result)]
        if self._v1 and isinstance(event, SearchStarted | SearchFinished):
            call = ImageSearchCall(
                id=event.call_id,
                img_idx=event.img_idx,
                bbox=event.bbox,
                status=getattr(event, "status", None),
                hits=getattr(event, "hits", []),
            )
            block = _search_blocks(call)[0 if isinstance(event, SearchStarted) else 1]
            self._text_index = None
            return [self._chunk([{**block, "index": self._claim_index()}])]
        return []

    def _claim_index(self) -> int:
        self._next_index += 1
        return self._next_index - 1

    def _text(self, text: str) -> list[ChatGenerationChunk]:
        if not text:
            return []
        if not self._v1:
            return [ChatGenerationChunk(message=AIMessageChunk(content=text))]
        if self._text_index is None:
            self._text_index = self._claim_index()
        return [self._chunk([{"type": "text", "text": text, "index": self._text_index}])]

    def _chunk(self, content: list[str | dict[str, Any]]) -> ChatGenerationChunk:
        return ChatGenerationChunk(message=AIMessageChunk(content=content))

    def _last(self, result: ImageSearchResult) -> ChatGenerationChunk:
        calls = [
            tool_call_chunk(name=call.name, args=call.arguments, id=call.call_id, index=index)
            for index, call in enumerate(result.function_calls)
        ]
        message = AIMessageChunk(
            content=[] if self._v1 else "",
            tool_call_chunks=calls,
            chunk_position="last",
            **_metadata(result, self._request),
        )
        return ChatGenerationChunk(message=message)


def _search_blocks(call: ImageSearchCall) -> list[dict[str, Any]]:
    """One image search as v1 standard blocks: the call, and its result holding the hits."""
    failed = call.status is not None and call.status not in ("completed", "in_progress")
    return [
        {
            "type": "server_tool_call",
            "id": call.id or "",
            "name": "image_search",
            "args": {"img_idx": call.img_idx, "bbox": call.bbox},
        },
        {
            "type": "server_tool_result",
            "tool_call_id": call.id or "",
            "status": "error" if failed else "success",
            "output": [hit.model_dump() for hit in call.hits],
        },
    ]


def _tool_calls(calls: list[FunctionCall]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """The model's function calls as LangChain tool calls (invalid: arguments not a JSON
    object)."""
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for call in calls:
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError:
            args = None
        if isinstance(args, dict):
            valid.append(tool_call(name=call.name, args=args, id=call.call_id))
        else:
            invalid.append(
                invalid_tool_call(
                    name=call.name,
                    args=call.arguments,
                    id=call.call_id,
                    error="the arguments are not a JSON object",
                )
            )
    return valid, invalid


def _tool_choice(choice: dict[str, Any] | str | bool | None) -> ToolChoice:
    """LangChain's spellings of ``tool_choice`` in the Responses API's."""
    if choice is None or choice == "auto":
        return None if choice is None else "auto"
    if choice is True or choice in ("any", "required"):
        return "required"
    if choice == "none" or choice is False:
        return "none"
    if isinstance(choice, str):
        return {"type": "function", "name": choice}
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        return {"type": "function", "name": name}
    raise ValueError(f"unsupported tool_choice {choice!r}")


def _metadata(result: ImageSearchResult, request: PreparedRequest) -> dict[str, Any]:
    """Usage, response metadata and (when the turn searched) the whole result."""
    usage = result.usage
    usage_metadata = UsageMetadata(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        total_tokens=usage.total_tokens or 0,
    )
    if usage.cached_tokens is not None:
        usage_metadata["input_token_details"] = InputTokenDetails(cache_read=usage.cached_tokens)
    if usage.reasoning_tokens is not None:
        usage_metadata["output_token_details"] = OutputTokenDetails(
            reasoning=usage.reasoning_tokens
        )
    searched = bool(result.calls) or request.offers_image_search
    return {
        "additional_kwargs": {RESULT_KEY: result.model_dump(mode="json")} if searched else {},
        "usage_metadata": usage_metadata,
        "response_metadata": {
            "id": result.id,
            "model_name": result.model or request.model,
            "model_provider": LS_PROVIDER,
            "status": result.status,
            "x_tools": usage.tool_calls,
        },
    }
