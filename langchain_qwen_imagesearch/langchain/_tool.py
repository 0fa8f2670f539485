"""``QwenImageSearchTool``: search by image as a tool an LLM agent calls.

The tool answers with ``response_format="content_and_artifact"``: a compact text of the hits
and the search model's inference for the LLM, and the full ``ImageSearchResult`` as the
artifact for the application. The image can be a URL or a path the LLM gives, or an image
the user attached to the conversation (read from the graph state through ``ToolRuntime``),
so an agent never copies a data URL into a tool call.

Errors the LLM can act on (an unusable image, no image, a URL the service cannot fetch) come
back as an error ``ToolMessage``; configuration, authentication and transient service errors
raise, for the application (or ``ToolRetryMiddleware``) to handle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import ArgsSchema, BaseTool, InjectedToolArg, ToolException
from langchain_core.tools.base import ToolExceptionHandlerOutput
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, ConfigDict, Field

from langchain_qwen_imagesearch.client import (
    ImageHit,
    ImageInputError,
    Images,
    ImageSearchResult,
    InvalidRequestError,
    NoImageError,
    ResponseFailedError,
)
from langchain_qwen_imagesearch.langchain._messages import (
    conversation_images,
    image_reference_number,
    state_messages,
)
from langchain_qwen_imagesearch.langchain._settings import ImageSearchSettings

TOOL_NAME = "qwen_image_search"

MODEL_ACTIONABLE_ERRORS: tuple[type[Exception], ...] = (
    ImageInputError,
    InvalidRequestError,
    ResponseFailedError,
)
"""Errors an LLM can fix with another call or a question to the user."""

_TITLE_LIMIT = 120
_REMOTE_SCHEMES = ("http://", "https://", "data:")


class ImageSearchToolInput(BaseModel):
    """Arguments of ``QwenImageSearchTool``; ``runtime`` is injected, never shown to the LLM."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    image: str | None = Field(
        default=None,
        description=(
            "The image to search with: an http(s) URL, a local file path, or an image the "
            "user attached, as 'image 1', 'image 2', ... (numbered in the latest message "
            "holding images). Omit it to search every image of that message."
        ),
    )
    query: str | None = Field(
        default=None,
        description=(
            "What to find, in a few words, e.g. 'the same shoe in other shops' or 'where "
            "this photo was first published'."
        ),
    )
    focus: str | None = Field(
        default=None,
        description="The part of the image to search, e.g. 'the red handbag on the left'.",
    )
    runtime: Annotated[ToolRuntime[Any, Any] | None, InjectedToolArg] = None


class QwenImageSearchTool(ImageSearchSettings, BaseTool):
    """Search by image with Qwen; returns the hits and the inference, and the full result
    as the artifact.

    Settings are those of ``ImageSearchClient`` (``api_key``, ``base_url``, ``region``,
    ``model``, ``timeout``, ...), read from ``DASHSCOPE_*`` when not given.
    """

    name: str = TOOL_NAME
    description: str = (
        "Search the web by image (reverse image search). Returns visually similar images "
        "with their titles and source URLs, and an analysis of what they show. Use it to "
        "find a product in other shops, identify what or where something is, or trace where "
        "a picture comes from. Works with images the user attached: refer to them as "
        "'image 1', 'image 2', or leave out `image`."
    )
    args_schema: ArgsSchema = ImageSearchToolInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], ToolExceptionHandlerOutput] | None = (
        True
    )

    max_hits_in_content: int = Field(
        default=10, ge=1, description="hits listed for the LLM; the artifact holds them all"
    )
    messages_key: str = Field(
        default="messages", description="state key of the conversation, for attached images"
    )
    allow_local_files: bool = Field(
        default=True,
        description="let the LLM name local image files (set False when it must not read disk)",
    )

    def _run(
        self,
        image: str | None = None,
        query: str | None = None,
        focus: str | None = None,
        runtime: ToolRuntime[Any, Any] | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, ImageSearchResult]:
        with _errors_as_tool_output():
            images, query_text, searched = self._request(image, query, focus, runtime)
            result = self._search(images, query_text, run_manager)
        return describe_result(result, max_hits=self.max_hits_in_content, searched=searched), result

    async def _arun(
        self,
        image: str | None = None,
        query: str | None = None,
        focus: str | None = None,
        runtime: ToolRuntime[Any, Any] | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, ImageSearchResult]:
        with _errors_as_tool_output():
            images, query_text, searched = self._request(image, query, focus, runtime)
            result = await self._asearch(images, query_text, run_manager)
        return describe_result(result, max_hits=self.max_hits_in_content, searched=searched), result

    def _request(
        self,
        image: str | None,
        query: str | None,
        focus: str | None,
        runtime: ToolRuntime[Any, Any] | None,
    ) -> tuple[Images, str | None, str]:
        """The images, the query text, and how to name what was searched."""
        query_text = "\n".join(filter(None, [query, focus and f"Focus on: {focus}"])) or None
        if image and image_reference_number(image) is None:
            if not self.allow_local_files and not image.strip().lower().startswith(_REMOTE_SCHEMES):
                raise ImageInputError(
                    "this tool does not read local files: pass an http(s) URL, or refer to an "
                    "image the user attached as 'image 1', 'image 2', ...",
                    input=image,
                    limit="http(s) URL",
                )
            return image, query_text, _describe_image(image)
        if runtime is None:
            raise NoImageError(
                "No image given. Pass `image` as an http(s) URL or a file path (images the user "
                "attached can be used only when the tool runs inside an agent or ToolNode).",
                limit="an image",
            )
        messages = state_messages(runtime.state, self.messages_key)
        images, message = conversation_images(messages, image)
        searched = (
            f"{image} of the user's latest message with images"
            if image
            else f"the {len(images)} image(s) of the user's latest message with images"
        )
        return images, query_text or message.text.strip() or None, searched


def describe_result(result: ImageSearchResult, *, max_hits: int, searched: str) -> str:
    """A compact text of the hits and the inference, for an LLM."""
    lines = [f"Searched {searched}."]
    if not result.hits:
        # With no hits the search model has been seen to invent sources: leave its text out.
        lines.append("No matching images were found.")
        return "\n".join(lines)
    shown = result.hits[:max_hits]
    found = f"{len(result.hits)} matching image{'' if len(result.hits) == 1 else 's'}"
    more = f", the first {len(shown)} listed" if len(shown) < len(result.hits) else ""
    lines.append(f"Found {found}{more}:")
    lines.extend(hit_lines(shown, start=1))
    if answer := result.answer.strip():
        lines += ["", "Analysis by the search model:", answer]
    return "\n".join(lines)


def hit_lines(hits: Sequence[ImageHit], *, start: int) -> list[str]:
    """``"3. Title - URL"`` lines numbered from ``start``."""
    return [
        f"{number}. {_short_title(hit.title) or '(untitled)'} - {hit.url}"
        for number, hit in enumerate(hits, start=start)
    ]


@contextmanager
def _errors_as_tool_output() -> Iterator[None]:
    """Turn errors the LLM can act on into ``ToolException`` (an error ``ToolMessage``)."""
    try:
        yield
    except MODEL_ACTIONABLE_ERRORS as error:
        raise ToolException(f"Image search failed: {error}") from error


def _describe_image(image: str) -> str:
    if image.startswith("data:"):
        return "the image given as a data URL"
    return f"the image {image}"


def _short_title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= _TITLE_LIMIT else title[: _TITLE_LIMIT - 3] + "..."
