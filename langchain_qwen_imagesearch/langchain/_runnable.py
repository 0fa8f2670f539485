"""``QwenImageSearch``: search by image as a serializable LangChain Runnable.

Input: a dict (``image`` or ``images``, optional ``query``), a bare image (URL, path, bytes,
file, PIL image, or a list of them), or a conversation (a message, a message list or a
prompt value) whose latest message with images is searched. Output: ``ImageSearchResult``.

``stream``/``astream`` yield the client's typed events (``SearchStarted``,
``SearchFinished``, ``AnswerDelta``, then ``SearchCompleted`` holding the result). Inside a
composed chain the step passes its result on as one chunk, so the next step always receives
an ``ImageSearchResult``; the progress still reaches listeners as callback events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeAlias, TypeGuard, cast

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.tools import BaseTool
from pydantic import BaseModel
from typing_extensions import TypedDict, override

from langchain_qwen_imagesearch.client import (
    ImageInput,
    ImageInputError,
    Images,
    ImageSearchEvent,
    ImageSearchResult,
    NoImageError,
)
from langchain_qwen_imagesearch.langchain._messages import conversation_request
from langchain_qwen_imagesearch.langchain._results import QwenImageSearchResult
from langchain_qwen_imagesearch.langchain._settings import ImageSearchSettings
from langchain_qwen_imagesearch.langchain._tool import QwenImageSearchTool


class ImageSearchRequest(TypedDict, total=False):
    """The dict input: one of ``image`` / ``images``, and an optional ``query``."""

    image: ImageInput
    images: Sequence[ImageInput]
    query: str | None


ImageSearchInput: TypeAlias = (
    ImageSearchRequest | ImageInput | Sequence[ImageInput] | BaseMessage | Sequence[BaseMessage]
) | PromptValue
"""Everything ``QwenImageSearch`` accepts."""

_REQUEST_KEYS = frozenset(ImageSearchRequest.__annotations__)


def search_request(value: ImageSearchInput) -> tuple[Images, str | None]:
    """The images and query an input asks for."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - _REQUEST_KEYS)
        if unknown:
            raise ImageInputError(
                f"unknown input key(s) {', '.join(map(repr, unknown))}; a dict input takes "
                "'image' or 'images', and an optional 'query'",
                input="dict input",
                limit="input keys",
            )
        if "image" in value and "images" in value:
            raise ImageInputError(
                "give either 'image' or 'images', not both", input="dict input", limit="input keys"
            )
        images = value["image"] if "image" in value else value.get("images")
        if images is None:
            raise NoImageError("the input dict has no 'image' or 'images'", limit="an image")
        return images, value.get("query")
    if isinstance(value, PromptValue):
        value = value.to_messages()
    if isinstance(value, BaseMessage):
        value = [value]
    if _is_conversation(value):
        return conversation_request(value)
    # What remains is an image or a list of them; the client rejects anything else.
    return cast("Images", value), None


def _is_conversation(value: object) -> TypeGuard[Sequence[BaseMessage]]:
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(item, BaseMessage) for item in value)
    )


class QwenImageSearch(
    ImageSearchSettings, RunnableSerializable[ImageSearchInput, ImageSearchResult]
):
    """Search by image: structured hits plus the model's inference.

    >>> search = QwenImageSearch()  # doctest: +SKIP
    >>> chain = search | (lambda result: [hit.url for hit in result.hits])  # doctest: +SKIP
    >>> chain.invoke({"image": "shoe.jpg", "query": "same shoe, other shops"})  # doctest: +SKIP
    """

    @classmethod
    @override
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    @override
    def InputType(self) -> Any:
        return ImageSearchInput

    @property
    @override
    def OutputType(self) -> type[ImageSearchResult]:
        return QwenImageSearchResult

    @override
    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
    ) -> BaseTool:
        """This search as a tool for an LLM: a ``QwenImageSearchTool`` with the same settings
        (hits as text for the LLM, the result as the artifact; images by URL or attached to
        the conversation, local files only in ``local_image_dirs``). With ``args_schema`` or
        ``arg_types``, LangChain's generic conversion of the runnable instead."""
        if args_schema is not None or arg_types is not None:
            return super().as_tool(
                args_schema, name=name, description=description, arg_types=arg_types
            )
        tool = QwenImageSearchTool(**self.shared_settings())
        return tool.model_copy(
            update={"name": name or tool.name, "description": description or tool.description}
        )

    @override
    def invoke(
        self, input: ImageSearchInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> ImageSearchResult:
        return self._call_with_config(self._invoke, input, self.tracing_config(config))

    @override
    async def ainvoke(
        self, input: ImageSearchInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> ImageSearchResult:
        return await self._acall_with_config(self._ainvoke, input, self.tracing_config(config))

    # Streaming this step is for its progress, so its chunks are the typed events, not the
    # output type; composed chains go through ``transform``, which yields the result.
    @override
    def stream(  # type: ignore[override]
        self, input: ImageSearchInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[ImageSearchEvent]:
        yield from self._event_stream._transform_stream_with_config(
            iter([input]), self._events, self.tracing_config(config)
        )

    @override
    async def astream(  # type: ignore[override]
        self, input: ImageSearchInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[ImageSearchEvent]:
        async for event in self._event_stream._atransform_stream_with_config(
            _single(input), self._aevents, self.tracing_config(config)
        ):
            yield event

    @property
    def _event_stream(self) -> Runnable[ImageSearchInput, ImageSearchEvent]:
        """This runnable typed by what ``stream`` yields, for the streaming helpers."""
        return cast("Runnable[ImageSearchInput, ImageSearchEvent]", self)

    @override
    def transform(
        self,
        input: Iterator[ImageSearchInput],
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Iterator[ImageSearchResult]:
        yield from self._transform_stream_with_config(
            input, self._results, self.tracing_config(config)
        )

    @override
    async def atransform(
        self,
        input: AsyncIterator[ImageSearchInput],
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ImageSearchResult]:
        async for result in self._atransform_stream_with_config(
            input, self._aresults, self.tracing_config(config)
        ):
            yield result

    def _invoke(
        self, input: ImageSearchInput, run_manager: CallbackManagerForChainRun
    ) -> ImageSearchResult:
        return self._search(*search_request(input), run_manager)

    async def _ainvoke(
        self, input: ImageSearchInput, run_manager: AsyncCallbackManagerForChainRun
    ) -> ImageSearchResult:
        return await self._asearch(*search_request(input), run_manager)

    def _events(
        self, inputs: Iterator[ImageSearchInput], run_manager: CallbackManagerForChainRun
    ) -> Iterator[ImageSearchEvent]:
        yield from self._search_events(*search_request(_merged(list(inputs))), run_manager)

    async def _aevents(
        self, inputs: AsyncIterator[ImageSearchInput], run_manager: AsyncCallbackManagerForChainRun
    ) -> AsyncIterator[ImageSearchEvent]:
        request = search_request(_merged([chunk async for chunk in inputs]))
        async for event in self._asearch_events(*request, run_manager):
            yield event

    def _results(
        self, inputs: Iterator[ImageSearchInput], run_manager: CallbackManagerForChainRun
    ) -> Iterator[ImageSearchResult]:
        yield self._invoke(_merged(list(inputs)), run_manager)

    async def _aresults(
        self, inputs: AsyncIterator[ImageSearchInput], run_manager: AsyncCallbackManagerForChainRun
    ) -> AsyncIterator[ImageSearchResult]:
        yield await self._ainvoke(_merged([chunk async for chunk in inputs]), run_manager)


def _merged(chunks: list[ImageSearchInput]) -> ImageSearchInput:
    """One input from the chunks an upstream step streamed, as ``Runnable.transform`` does:
    added up when they support ``+`` (e.g. the dicts of a ``RunnableParallel``), else the last."""
    if not chunks:
        raise NoImageError("the upstream step produced no input", limit="an image")
    merged: Any = chunks[0]
    for chunk in chunks[1:]:
        try:
            merged = merged + chunk
        except TypeError:
            merged = chunk
    return cast("ImageSearchInput", merged)


async def _single(value: ImageSearchInput) -> AsyncIterator[ImageSearchInput]:
    yield value
