"""``ChatQwenImageSearch``: image search as a chat model turn, with nothing lost.

``ChatOpenAI(use_responses_api=True)`` cannot carry the upstream ``image_search`` tool:
``bind_tools([{"type": "image_search"}])`` raises ``ValueError``, and ``bind(tools=[...])``
sends it but drops the ``image_search_call`` items (the hits) and ``usage.x_tools`` from the
``AIMessage``. This chat model runs the search through ``ImageSearchClient`` instead: given
a conversation, it searches the images of the latest message holding any, with the latest
user text as the query, and answers with an ``AIMessage`` whose

- ``content`` is the search model's inference,
- ``additional_kwargs["image_search"]`` is the full result as JSON (read it back typed with
  ``image_search_result(message)``),
- ``usage_metadata`` holds the tokens and ``response_metadata["x_tools"]`` the tool calls.

Chat models never send ``additional_kwargs`` of this kind back upstream, so the message is
safe in a history a ``ChatOpenAI`` reads later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from typing_extensions import override

from langchain_qwen_imagesearch.client import (
    AnswerDelta,
    ImageSearchEvent,
    ImageSearchResult,
    SearchCompleted,
)
from langchain_qwen_imagesearch.langchain._messages import RESULT_KEY, conversation_request
from langchain_qwen_imagesearch.langchain._settings import LS_PROVIDER, ImageSearchSettings


class ChatQwenImageSearch(ImageSearchSettings, BaseChatModel):
    """A chat model whose every turn searches the conversation's latest image(s).

    >>> chat = ChatQwenImageSearch()  # doctest: +SKIP
    >>> question = HumanMessage([{"type": "image", "url": "https://..."}])  # doctest: +SKIP
    >>> reply = chat.invoke([question])  # doctest: +SKIP
    >>> image_search_result(reply).hits  # doctest: +SKIP
    """

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
            "model": self.model,
            "base_url": self.base_url,
            "region": self.region,
            "enable_thinking": self.enable_thinking,
        }

    @override
    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = LS_PROVIDER
        params["ls_model_name"] = self.client.model
        return params

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        result = self._search(*conversation_request(messages), None)
        return _chat_result(result)

    @override
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        result = await self._asearch(*conversation_request(messages), None)
        return _chat_result(result)

    @override
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for event in self._search_events(*conversation_request(messages), None):
            if (chunk := _chunk(event)) is not None:
                yield chunk

    @override
    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for event in self._asearch_events(*conversation_request(messages), None):
            if (chunk := _chunk(event)) is not None:
                yield chunk


def _chat_result(result: ImageSearchResult) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=AIMessage(**_message_fields(result)))])


def _chunk(event: ImageSearchEvent) -> ChatGenerationChunk | None:
    """The answer text as it comes, then everything else on the last chunk."""
    if isinstance(event, AnswerDelta):
        return ChatGenerationChunk(message=AIMessageChunk(content=event.delta))
    if isinstance(event, SearchCompleted):
        fields = {**_message_fields(event.result), "content": ""}
        return ChatGenerationChunk(message=AIMessageChunk(**fields, chunk_position="last"))
    return None


def _message_fields(result: ImageSearchResult) -> dict[str, Any]:
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
    return {
        "content": result.answer,
        "additional_kwargs": {RESULT_KEY: result.model_dump(mode="json")},
        "usage_metadata": usage_metadata,
        "response_metadata": {
            "id": result.id,
            "model_name": result.model,
            "model_provider": LS_PROVIDER,
            "status": result.status,
            "x_tools": usage.tool_calls,
        },
    }
