"""The tool, the toolkit and the graph node inside real LangGraph graphs.

No chat model can run offline, so the agent's LLM is langchain-core's scripted fake: it
replies with the tool calls an LLM would make. Everything else is real: ``create_agent``,
``ToolNode``, compiled ``StateGraph``s, and searches over HTTP on the embedded server.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ToolCallLimitMiddleware
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langchain_qwen_imagesearch import (
    ImageSearchResult,
    QwenImageSearchTool,
    QwenImageSearchToolkit,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
    create_image_search_node,
)
from langchain_qwen_imagesearch.server.testing import TestingServer


class ScriptedChatModel(GenericFakeChatModel):
    """Stands in for the agent's LLM: answers with the scripted messages, in order."""

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self


def scripted(*replies: AIMessage) -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter(replies))


def tool_call(name: str, call_id: str = "call_1", **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def user_message(text: str, *photos: Path) -> HumanMessage:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    blocks += [
        {
            "type": "image",
            "base64": base64.b64encode(p.read_bytes()).decode(),
            "mime_type": "image/jpeg",
        }
        for p in photos
    ]
    return HumanMessage(content_blocks=blocks)  # type: ignore[arg-type]


def title_of(server: TestingServer, photo: Path) -> str:
    return next(entry.title for entry in server.catalog.entries() if entry.path == photo)


def tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


@pytest.fixture
def photos(dashscope_env: TestingServer) -> list[Path]:
    return [dashscope_env.catalog_photo(name) for name in ("coffee", "tabby", "brick")]


def test_an_agent_searches_the_image_the_user_attached(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    llm = scripted(
        tool_call("qwen_image_search", query="this cup in other shops"),
        AIMessage("It is sold in two shops."),
    )
    agent = create_agent(llm, tools=[QwenImageSearchTool()])

    state = agent.invoke({"messages": [user_message("Where can I buy this?", photos[0])]})

    (answer,) = tool_messages(state["messages"])
    assert answer.status == "success"
    assert isinstance(answer.artifact, ImageSearchResult)
    assert answer.artifact.hits[0].title == title_of(dashscope_env, photos[0])
    assert "the 1 image(s) of the user's latest message with images" in answer.content
    assert state["messages"][-1].content == "It is sold in two shops."
    sent = dashscope_env.requests[-1]["input"][0]["content"]
    assert sent[0]["text"] == "this cup in other shops"


def test_the_llm_can_pick_one_of_several_attached_images(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    llm = scripted(tool_call("qwen_image_search", image="image 2"), AIMessage("A cat."))
    agent = create_agent(llm, tools=[QwenImageSearchTool()])

    state = agent.invoke({"messages": [user_message("What is the second one?", *photos)]})

    (answer,) = tool_messages(state["messages"])
    assert [hit.title for hit in answer.artifact.hits] == [title_of(dashscope_env, photos[1])]
    assert answer.artifact.query == "What is the second one?"


def test_a_wrong_image_reference_lets_the_agent_carry_on(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    llm = scripted(
        tool_call("qwen_image_search", image="image 5"),
        AIMessage("You sent only one image; which one did you mean?"),
    )
    agent = create_agent(llm, tools=[QwenImageSearchTool()])

    state = agent.invoke({"messages": [user_message("Find the fifth", photos[0])]})

    (answer,) = tool_messages(state["messages"])
    assert answer.status == "error"
    assert "'image 5' names no image" in answer.content
    assert state["messages"][-1].content.startswith("You sent only one image")


def test_progress_reaches_custom_stream_listeners_as_it_happens(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    llm = scripted(tool_call("qwen_image_search"), AIMessage("Done."))
    agent = create_agent(llm, tools=[QwenImageSearchTool()])

    chunks = list(
        agent.stream(
            {"messages": [user_message("Find it", photos[0])]}, stream_mode=["custom", "updates"]
        )
    )

    custom = [chunk for mode, chunk in chunks if mode == "custom"]
    assert [type(event) for event in custom[:2]] == [SearchStarted, SearchFinished]
    assert isinstance(custom[-1], SearchCompleted)
    modes = [mode if mode == "custom" else next(iter(chunk)) for mode, chunk in chunks]
    assert modes.index("tools") > max(i for i, mode in enumerate(modes) if mode == "custom")


def test_a_call_limit_caps_paid_searches(dashscope_env: TestingServer, photos: list[Path]) -> None:
    llm = scripted(
        tool_call("qwen_image_search", call_id="first"),
        tool_call("qwen_image_search", call_id="second", image="image 1"),
        AIMessage("One search had to do."),
    )
    limit = ToolCallLimitMiddleware(tool_name="qwen_image_search", run_limit=1)
    agent = create_agent(llm, tools=[QwenImageSearchTool()], middleware=[limit])
    sent_before = dashscope_env.request_count

    state = agent.invoke({"messages": [user_message("Find it", photos[0])]})

    first, second = tool_messages(state["messages"])
    assert first.artifact.hits
    assert second.status == "error" and second.artifact is None
    assert dashscope_env.request_count == sent_before + 1


def agent_graph(llm: ScriptedChatModel, tools: list[BaseTool]) -> Any:
    """The classic agent loop, written out with a real ``ToolNode``."""
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda state: {"messages": [llm.invoke(state["messages"])]})
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


async def test_a_tool_node_runs_the_search_asynchronously(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    llm = scripted(tool_call("qwen_image_search", image=str(photos[2])), AIMessage("Bricks."))
    graph = agent_graph(llm, [QwenImageSearchTool(local_image_dirs=[photos[2].parent])])

    state = await graph.ainvoke({"messages": [HumanMessage("What is in this file?")]})

    (answer,) = tool_messages(state["messages"])
    assert answer.artifact.hits[0].title == title_of(dashscope_env, photos[2])
    assert f"Searched the image {photos[2]}." in answer.content


def test_the_toolkit_pages_through_hits_without_searching_again(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    toolkit = QwenImageSearchToolkit(max_hits_in_content=1)
    llm = scripted(
        tool_call("qwen_image_search", call_id="search_1"),
        tool_call("qwen_image_search_results", call_id="more_1", search_id="search_1", offset=1),
        AIMessage("Here are all three."),
    )
    agent = create_agent(llm, tools=toolkit.get_tools())
    sent_before = dashscope_env.request_count

    state = agent.invoke({"messages": [user_message("Find these", *photos)]})

    search, more = tool_messages(state["messages"])
    hits = search.artifact.hits
    assert len(hits) == 3
    assert "Found 3 matching images, the first 1 listed:" in search.content
    assert f"1. {hits[0].title} - {hits[0].url}" in search.content
    assert hits[1].url not in search.content
    # The search tells the LLM how to get the rest.
    assert (
        "2 more hit(s) not listed: call qwen_image_search_results with "
        "search_id='search_1', offset=1 to list them (free)."
    ) in search.content
    assert more.content.splitlines() == [
        "Images 2 to 3 of the 3 the search found:",
        f"2. {hits[1].title} - {hits[1].url}",
        f"3. {hits[2].title} - {hits[2].url}",
    ]
    assert dashscope_env.request_count == sent_before + 1


def test_the_results_tool_explains_when_there_is_no_search_yet(
    dashscope_env: TestingServer,
) -> None:
    llm = scripted(tool_call("qwen_image_search_results"), AIMessage("Let me search first."))
    agent = create_agent(llm, tools=QwenImageSearchToolkit().get_tools())

    state = agent.invoke({"messages": [HumanMessage("More results please")]})

    (answer,) = tool_messages(state["messages"])
    assert answer.status == "error"
    assert "No image search at all in this conversation" in answer.content


def search_graph(**node_options: Any) -> Any:
    """Search the user's image, then report the best hit from the artifact."""

    def report(state: MessagesState) -> dict[str, list[BaseMessage]]:
        result = state["messages"][-1].artifact
        text = f"Best match: {result.hits[0].title}" if result else "No search was possible."
        return {"messages": [AIMessage(text)]}

    graph = StateGraph(MessagesState)
    graph.add_node("image_search", create_image_search_node(**node_options))
    graph.add_node("report", report)
    graph.add_edge(START, "image_search")
    graph.add_edge("image_search", "report")
    graph.add_edge("report", END)
    return graph.compile()


def test_the_graph_node_writes_a_tool_call_and_its_result(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    graph = search_graph()

    state = graph.invoke({"messages": [user_message("Where is this cup sold?", photos[0])]})

    _, request, answer, report = state["messages"]
    assert isinstance(request, AIMessage)
    assert request.tool_calls[0]["name"] == "qwen_image_search"
    assert isinstance(answer, ToolMessage)
    assert answer.tool_call_id == request.tool_calls[0]["id"]
    assert answer.artifact.query == "Where is this cup sold?"
    assert report.content == f"Best match: {title_of(dashscope_env, photos[0])}"


async def test_the_graph_node_streams_progress_and_runs_async(
    dashscope_env: TestingServer, photos: list[Path]
) -> None:
    graph = search_graph(query="the same cat")

    custom = [
        chunk
        async for chunk in graph.astream(
            {"messages": [user_message("", photos[1])]}, stream_mode="custom"
        )
    ]

    assert [type(event) for event in custom[:2]] == [SearchStarted, SearchFinished]
    assert custom[-1].result.query == "the same cat"


def test_the_graph_node_reports_a_missing_image_in_the_history(
    dashscope_env: TestingServer,
) -> None:
    graph = search_graph()

    state = graph.invoke({"messages": [HumanMessage("Find this")]})

    answer = state["messages"][2]
    assert answer.status == "error"
    assert "No image in the conversation" in answer.content
    assert state["messages"][-1].content == "No search was possible."
