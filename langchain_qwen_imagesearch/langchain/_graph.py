"""A LangGraph node that searches the images of the conversation in the graph state.

The node searches the latest message holding images and appends two messages: an
``AIMessage`` calling the search tool and the tool's ``ToolMessage``, whose artifact is the
``ImageSearchResult``. The pair keeps the history valid for any chat model that reads it
next (a tool result always answers a tool call), and errors the model can act on (no image
in the conversation, an unusable image) arrive as an error ``ToolMessage``.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.prebuilt import ToolRuntime
from langgraph.runtime import get_runtime

from langchain_qwen_imagesearch.langchain._tool import QwenImageSearchTool

NodeUpdate = dict[str, list[BaseMessage]]


def create_image_search_node(
    tool: QwenImageSearchTool | None = None,
    *,
    query: str | None = None,
    name: str = "image_search",
) -> Runnable[Any, NodeUpdate]:
    """A node for ``StateGraph.add_node`` (sync and async).

    ``tool`` sets the client settings, the state key of the messages (``messages_key``) and
    how many hits the text lists; by default a ``QwenImageSearchTool()`` from the
    environment. ``query`` is what to search for; by default the text of the message that
    holds the images.
    """
    search_tool = tool or QwenImageSearchTool()

    def call_with_state(state: Any, config: RunnableConfig) -> tuple[AIMessage, ToolCall]:
        """The tool call to show in the history, and the same call with the state injected."""
        call_id = f"call_{uuid4().hex}"
        args: dict[str, Any] = {"query": query} if query else {}
        runtime = get_runtime()
        tool_runtime = ToolRuntime[Any, Any](
            state=state,
            context=runtime.context,
            config=config,
            stream_writer=runtime.stream_writer,
            tool_call_id=call_id,
            store=runtime.store,
        )
        shown = ToolCall(name=search_tool.name, args=args, id=call_id, type="tool_call")
        injected = ToolCall(
            name=search_tool.name,
            args={**args, "runtime": tool_runtime},
            id=call_id,
            type="tool_call",
        )
        return AIMessage(content="", tool_calls=[shown]), injected

    def search(state: Any, config: RunnableConfig) -> NodeUpdate:
        request, call = call_with_state(state, config)
        return _update(search_tool, request, search_tool.invoke(call, config))

    async def asearch(state: Any, config: RunnableConfig) -> NodeUpdate:
        request, call = call_with_state(state, config)
        return _update(search_tool, request, await search_tool.ainvoke(call, config))

    return RunnableLambda(search, afunc=asearch, name=name)


def _update(tool: QwenImageSearchTool, request: AIMessage, answer: ToolMessage) -> NodeUpdate:
    return {tool.messages_key: [request, answer]}
