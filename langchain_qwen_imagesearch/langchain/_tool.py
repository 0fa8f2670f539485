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

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import ArgsSchema, BaseTool, InjectedToolArg, ToolException
from langchain_core.tools.base import ToolExceptionHandlerOutput
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr
from typing_extensions import override

from langchain_qwen_imagesearch.client import (
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
from langchain_qwen_imagesearch.langchain._results import QwenImageSearchResult, hit_lines
from langchain_qwen_imagesearch.langchain._settings import ImageSearchSettings

TOOL_NAME = "qwen_image_search"

MODEL_ACTIONABLE_ERRORS: tuple[type[Exception], ...] = (
    ImageInputError,
    InvalidRequestError,
    ResponseFailedError,
)
"""Errors an LLM can fix with another call or a question to the user."""

_REMOTE_SCHEMES = ("http://", "https://", "data:")


def _folder_names(folders: Any) -> Any:
    """Paths are kept as text, so that the tool serializes like its other settings."""
    if isinstance(folders, (list, tuple)):
        return [os.fspath(folder) for folder in folders]
    return folders


FolderNames = Annotated[list[str], BeforeValidator(_folder_names)]
"""Folders, given as paths or text."""


class ImageSearchToolInput(BaseModel):
    """Arguments of ``QwenImageSearchTool``; ``runtime`` is injected, never shown to the LLM."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    image: str | None = Field(
        default=None,
        description=(
            "The image to search with: an http(s) URL, or an image the user attached, as "
            "'image 1', 'image 2', ... (numbered in the latest message holding images). Omit "
            "it to search every image of that message."
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
    # The class is the tool's own, so serialization leaves it out (a class is no JSON).
    args_schema: ArgsSchema = Field(default=ImageSearchToolInput, exclude=True)
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
    local_image_dirs: FolderNames = Field(
        default_factory=list,
        description="folders the LLM may name image files in (none by default: an LLM, or a "
        "prompt injection, must not have any file on the disk read and uploaded)",
    )
    _resolved_dirs: list[Path] | None = PrivateAttr(default=None)
    results_tool_name: str | None = Field(
        default=None,
        description="the tool that lists more hits (the toolkit sets it); named in the text",
    )

    @classmethod
    @override
    def is_lc_serializable(cls) -> bool:
        return True

    def _run(
        self,
        image: str | None = None,
        query: str | None = None,
        focus: str | None = None,
        runtime: ToolRuntime[Any, Any] | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> tuple[str, QwenImageSearchResult]:
        with _errors_as_tool_output():
            images, query_text, searched = self._request(image, query, focus, runtime)
            result = self._search(images, query_text, run_manager)
        return self._describe(result, searched, runtime), result

    async def _arun(
        self,
        image: str | None = None,
        query: str | None = None,
        focus: str | None = None,
        runtime: ToolRuntime[Any, Any] | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> tuple[str, QwenImageSearchResult]:
        with _errors_as_tool_output():
            images, query_text, searched = self._request(image, query, focus, runtime)
            result = await self._asearch(images, query_text, run_manager)
        return self._describe(result, searched, runtime), result

    def _describe(
        self, result: ImageSearchResult, searched: str, runtime: ToolRuntime[Any, Any] | None
    ) -> str:
        text = describe_result(result, max_hits=self.max_hits_in_content, searched=searched)
        hidden = len(result.hits) - self.max_hits_in_content
        if hidden > 0 and self.results_tool_name:
            search_id = f"search_id={runtime.tool_call_id!r}, " if runtime else ""
            text += (
                f"\n\n{hidden} more hit(s) not listed: call {self.results_tool_name} with "
                f"{search_id}offset={self.max_hits_in_content} to list them (free)."
            )
        return text

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
            if not image.strip().lower().startswith(_REMOTE_SCHEMES):
                image = str(self._allowed_local_file(image))
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

    def _allowed_local_file(self, name: str) -> Path:
        """The file ``name`` resolves to, when it lies in one of ``local_image_dirs``."""
        if self._resolved_dirs is None:
            self._resolved_dirs = [Path(d).expanduser().resolve() for d in self.local_image_dirs]
        allowed = self._resolved_dirs
        if not allowed:
            raise ImageInputError(
                "this tool reads no local files: pass an http(s) URL, or refer to an image the "
                "user attached as 'image 1', 'image 2', ...",
                input=name,
                limit="http(s) URL or an attached image",
            )
        path = Path(name).expanduser()
        # Symbolic links and ".." are followed first, so neither leads out of the folders.
        resolved = (path if path.is_absolute() else allowed[0] / path).resolve()
        if not any(resolved.is_relative_to(folder) for folder in allowed):
            folders = ", ".join(str(folder) for folder in allowed)
            raise ImageInputError(
                f"{name} is outside the folders this tool may read ({folders}); pass a file "
                "inside them, an http(s) URL, or an attached image",
                input=name,
                limit=f"files in {folders}",
            )
        return resolved


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
