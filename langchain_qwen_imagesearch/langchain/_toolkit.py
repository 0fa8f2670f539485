"""``QwenImageSearchToolkit``: the tools an agent needs to search by image.

- ``qwen_image_search`` (``QwenImageSearchTool``) runs a search; it lists only the first
  hits to keep the context small.
- ``qwen_image_search_results`` (``QwenImageSearchResultsTool``) pages through the hits of a
  search already in the conversation, read from that tool message's artifact: free, no new
  search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tools import ArgsSchema, BaseTool, BaseToolkit, InjectedToolArg, ToolException
from langchain_core.tools.base import ToolExceptionHandlerOutput
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, ConfigDict, Field

from langchain_qwen_imagesearch.client import ImageSearchResult
from langchain_qwen_imagesearch.langchain._messages import state_messages
from langchain_qwen_imagesearch.langchain._results import hit_lines, image_search_result
from langchain_qwen_imagesearch.langchain._settings import ImageSearchSettings
from langchain_qwen_imagesearch.langchain._tool import TOOL_NAME, FolderNames, QwenImageSearchTool

RESULTS_TOOL_NAME = "qwen_image_search_results"


class ImageSearchResultsInput(BaseModel):
    """Arguments of ``QwenImageSearchResultsTool``; ``runtime`` is injected."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search_id: str | None = Field(
        default=None,
        description="The tool call id of the earlier image search; omit it for the latest one.",
    )
    offset: int = Field(default=0, ge=0, description="How many hits to skip.")
    limit: int = Field(default=10, ge=1, le=50, description="How many hits to list.")
    runtime: Annotated[ToolRuntime[Any, Any] | None, InjectedToolArg] = None


class QwenImageSearchResultsTool(BaseTool):
    """Lists more hits of an image search already run in the conversation, at no cost."""

    name: str = RESULTS_TOOL_NAME
    description: str = (
        f"List more hits of an image search already run in this conversation by "
        f"{TOOL_NAME}, beyond those it showed. Free: it does not search again."
    )
    args_schema: ArgsSchema = ImageSearchResultsInput
    handle_tool_error: bool | str | Callable[[ToolException], ToolExceptionHandlerOutput] | None = (
        True
    )

    search_tool_name: str = Field(default=TOOL_NAME, description="name of the search tool")
    messages_key: str = Field(default="messages", description="state key of the conversation")

    def _run(
        self,
        search_id: str | None = None,
        offset: int = 0,
        limit: int = 10,
        runtime: ToolRuntime[Any, Any] | None = None,
    ) -> str:
        if runtime is None:
            raise ToolException(
                "Earlier searches are readable only when this tool runs inside an agent."
            )
        result = self._earlier_result(state_messages(runtime.state, self.messages_key), search_id)
        hits = result.hits[offset : offset + limit]
        if not hits:
            return f"The search found {len(result.hits)} images; none from number {offset + 1}."
        header = (
            f"Images {offset + 1} to {offset + len(hits)} of the {len(result.hits)} the "
            "search found:"
        )
        return "\n".join([header, *hit_lines(hits, start=offset + 1)])

    def _earlier_result(
        self, messages: list[BaseMessage], search_id: str | None
    ) -> ImageSearchResult:
        for message in reversed(messages):
            if (
                isinstance(message, ToolMessage)
                and message.name == self.search_tool_name
                and search_id in (None, message.tool_call_id)
                # Typed again if a checkpointer turned the artifact into plain JSON.
                and (result := image_search_result(message)) is not None
            ):
                return result
        wanted = f"with id {search_id!r}" if search_id else "at all"
        raise ToolException(
            f"No image search {wanted} in this conversation; run {self.search_tool_name} first."
        )


class QwenImageSearchToolkit(ImageSearchSettings, BaseToolkit):
    """The image search tool and the free results tool, sharing these settings and cache."""

    max_hits_in_content: int = Field(default=10, ge=1)
    messages_key: str = "messages"
    local_image_dirs: FolderNames = Field(default_factory=list)

    def get_tools(self) -> list[BaseTool]:
        results = QwenImageSearchResultsTool(messages_key=self.messages_key)
        search = QwenImageSearchTool(
            **self.shared_settings(),
            max_hits_in_content=self.max_hits_in_content,
            messages_key=self.messages_key,
            local_image_dirs=self.local_image_dirs,
            results_tool_name=results.name,
        )
        results.search_tool_name = search.name
        return [search, results]
