"""Image search in chat-model conversations: what langchain-openai does today, and
``ChatQwenImageSearch``, which keeps hits, usage and ``x_tools``. All against the embedded
server, which speaks the Responses wire protocol that ``ChatOpenAI`` talks."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph

from langchain_qwen_imagesearch import (
    IMAGE_SEARCH_EVENT,
    ChatQwenImageSearch,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
    get_image_search_callback,
    image_search_result,
    portable_history,
)
from langchain_qwen_imagesearch.server.testing import TestingServer
from tests.integration.test_langchain_runnable import CountingRateLimiter

IMAGE_SEARCH = {"type": "image_search"}


@pytest.fixture
def question(catalog_photo: Path) -> HumanMessage:
    data = base64.b64encode(catalog_photo.read_bytes()).decode()
    return HumanMessage(
        content_blocks=[
            {"type": "text", "text": "Where else is this photo published?"},
            {"type": "image", "base64": data, "mime_type": "image/jpeg"},
        ]
    )


def chat_openai(server: TestingServer, output_version: str) -> ChatOpenAI:
    return ChatOpenAI(
        use_responses_api=True,
        output_version=output_version,
        base_url=server.base_url,
        api_key=server.api_key,  # type: ignore[arg-type]
        model="qwen3.7-plus",
    )


@pytest.mark.parametrize("output_version", ["v0", "responses/v1", "v1"])
def test_chat_openai_cannot_carry_image_search_results(
    output_version: str, question: HumanMessage, dashscope_env: TestingServer
) -> None:
    """Why ``ChatQwenImageSearch`` exists: checked against the installed langchain-openai."""
    llm = chat_openai(dashscope_env, output_version)

    with pytest.raises(ValueError, match="Unsupported function"):
        llm.bind_tools([IMAGE_SEARCH])
    answer = llm.bind(tools=[IMAGE_SEARCH]).invoke([question])
    streamed = list(llm.bind(tools=[IMAGE_SEARCH]).stream([question]))

    # The server did search (the answer is its summary), but the hits never reach the message.
    assert answer.text
    for message in [answer, *streamed]:
        dumped = json.dumps(message.model_dump(), default=str)
        assert "image_search_call" not in dumped
        assert "x_tools" not in dumped


def test_chat_qwen_image_search_keeps_hits_usage_and_x_tools(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    chat = ChatQwenImageSearch()

    reply = chat.invoke([question])

    result = image_search_result(reply)
    assert result is not None
    assert result.hits and result.hits[0].url.startswith(dashscope_env.base_url.split("/comp")[0])
    assert reply.content == result.answer
    assert result.query == "Where else is this photo published?"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["total_tokens"] == result.usage.total_tokens
    assert reply.response_metadata["x_tools"] == {"image_search": 1}
    assert reply.response_metadata["model_name"] == "qwen3.7-plus"


def test_streaming_gives_the_answer_as_it_comes_and_everything_at_the_end(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    chat = ChatQwenImageSearch()

    chunks = list(chat.stream([question]))

    text_chunks = [chunk for chunk in chunks if chunk.content]
    assert len(text_chunks) > 1
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert isinstance(merged, AIMessageChunk)
    result = image_search_result(merged)
    assert result is not None and result.hits
    assert merged.content == result.answer
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["total_tokens"] == result.usage.total_tokens


async def test_async_turns_and_astream_events(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    chat = ChatQwenImageSearch()

    reply = await chat.ainvoke([question])
    streamed = [
        event["data"]["chunk"].content
        async for event in chat.astream_events([question], version="v2")
        if event["event"] == "on_chat_model_stream"
    ]

    assert "".join(streamed) == reply.content
    result = image_search_result(reply)
    assert result is not None and result.hits


def test_the_reply_is_safe_in_history_a_chat_openai_reads(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    reply = ChatQwenImageSearch().invoke([question])
    follow_up = HumanMessage("Thanks. Which of these is the original?")
    llm = chat_openai(dashscope_env, "v1")

    llm.invoke([question, reply, follow_up])

    sent = dashscope_env.requests[-1]["input"]
    assert [message["role"] for message in sent] == ["user", "assistant", "user"]
    assert "additional_kwargs" not in json.dumps(sent)
    assert '"hits"' not in json.dumps(sent)


def test_a_v1_reply_reaches_chat_openai_through_portable_history(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    reply = ChatQwenImageSearch(output_version="v1").invoke([question])
    assert [block["type"] for block in reply.content_blocks][:2] == [
        "server_tool_call",
        "server_tool_result",
    ]
    follow_up = HumanMessage("Which of these is the original?")
    llm = chat_openai(dashscope_env, "v1")

    result = image_search_result(reply)
    assert result is not None

    # As it is, the hits never reach ChatOpenAI's model: langchain-openai 1.7 fails on an
    # image_search server-tool pair in its own conversion. That is why portable_history exists.
    try:
        llm.invoke([question, reply, follow_up])
        hits_sent = result.hits[0].url in json.dumps(dashscope_env.requests[-1]["input"])
    except UnboundLocalError:
        hits_sent = False
    assert not hits_sent
    answer = llm.invoke(portable_history([question, reply, follow_up]))

    assert answer.text
    sent = json.dumps(dashscope_env.requests[-1]["input"])
    assert result.hits[0].url in sent
    assert "server_tool" not in sent


def test_a_text_only_turn_is_answered_without_a_search(dashscope_env: TestingServer) -> None:
    reply = ChatQwenImageSearch().invoke([HumanMessage("find similar shoes")])

    assert reply.text
    assert image_search_result(reply) is None
    assert dashscope_env.requests[-1]["tools"] == []


def test_a_follow_up_turn_reads_the_earlier_hits_without_a_new_search(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    chat = ChatQwenImageSearch()
    reply = chat.invoke([question])
    result = image_search_result(reply)
    assert result is not None and result.hits
    sent_before = dashscope_env.request_count

    with get_image_search_callback() as cost:
        follow_up = chat.invoke([question, reply, HumanMessage("Which one is the original?")])

    assert follow_up.text and image_search_result(follow_up) is None
    assert dashscope_env.request_count == sent_before + 1 and cost.searches == 0
    sent = dashscope_env.requests[-1]
    assert sent["tools"] == []
    roles = [item.get("role") for item in sent["input"]]
    assert roles == ["user", "assistant", "user"]
    # The image stays in the conversation, and the earlier hits go back as text.
    assert sent["input"][0]["content"][1]["type"] == "input_image"
    assert result.hits[0].url in sent["input"][1]["content"]
    # Asked to, the turn searches again.
    again = chat.invoke([question, reply, HumanMessage("Search again")], image_search="always")
    assert image_search_result(again) is not None


def test_in_a_langgraph_node_progress_reaches_custom_listeners(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    chat = ChatQwenImageSearch()
    graph = StateGraph(MessagesState)
    graph.add_node("search", lambda state: {"messages": [chat.invoke(state["messages"])]})
    graph.add_edge(START, "search")

    chunks = list(graph.compile().stream({"messages": [question]}, stream_mode="custom"))

    assert [type(event) for event in chunks[:2]] == [SearchStarted, SearchFinished]


def test_turns_are_counted_once_even_when_langchain_caches_them(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    chat = ChatQwenImageSearch(cache=InMemoryCache())
    sent_before = dashscope_env.request_count

    with get_image_search_callback() as cost:
        first = chat.invoke([question])
        second = chat.invoke([question])

    assert second.content == first.content
    assert dashscope_env.request_count == sent_before + 1
    assert (cost.searches, cost.cached_searches) == (1, 1)


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_the_chat_model_serializes_without_its_key(dashscope_env: TestingServer) -> None:
    chat = ChatQwenImageSearch(model="qwen3.6-plus")

    serialized = dumpd(chat)
    restored = load(
        serialized,
        secrets_map={"DASHSCOPE_API_KEY": "restored-key"},
        valid_namespaces=["langchain_qwen_imagesearch"],
        allowed_objects=[ChatQwenImageSearch],
    )

    assert dashscope_env.api_key not in json.dumps(serialized)
    assert isinstance(restored, ChatQwenImageSearch)
    assert restored.model == "qwen3.6-plus"
    assert restored.api_key is not None
    assert restored.api_key.get_secret_value() == "restored-key"


def test_a_chat_turn_reports_the_same_progress_events_as_the_tool(
    question: HumanMessage, dashscope_env: TestingServer
) -> None:
    class Listener(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[object] = []

        def on_custom_event(self, name: str, data: object, **kwargs: object) -> None:
            if name == IMAGE_SEARCH_EVENT:
                self.events.append(data)

    listener = Listener()
    ChatQwenImageSearch().invoke([question], config={"callbacks": [listener]})

    kinds = [type(event) for event in listener.events]
    assert kinds[:2] == [SearchStarted, SearchFinished] and kinds[-1] is SearchCompleted


def test_the_rate_limiter_paces_each_turn(
    dashscope_env: TestingServer, question: HumanMessage
) -> None:
    limiter = CountingRateLimiter()
    chat = ChatQwenImageSearch(rate_limiter=limiter)

    reply = chat.invoke([question])
    chat.invoke([HumanMessage("Thanks!")])

    assert image_search_result(reply) is not None
    assert limiter.acquired == 2
