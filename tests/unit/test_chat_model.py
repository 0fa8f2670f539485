"""``ChatQwenImageSearch`` over an in-process wire answering as the Responses API does: the
user's function tools and their calls, structured output, an agent loop, standard content
blocks, stop sequences and a per-call model. (The embedded server has no language model to
call functions; tests/integration covers the search itself.)"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.tools import tool
from PIL import Image
from pydantic import BaseModel

from langchain_qwen_imagesearch import ChatQwenImageSearch, image_search_result
from tests.unit.wire import (
    Wire,
    events_of,
    function_call_item,
    message_item,
    response,
    search_call_item,
)

HITS = [
    {"title": "Red shoe", "url": "https://shop.example/red-shoe.jpg", "index": 1},
    {"title": "Red shoe, side", "url": "https://other.example/shoe.jpg", "index": 2},
]


def photo_message(text: str = "Where can I buy this?") -> HumanMessage:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buffer, "PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return HumanMessage(
        content_blocks=[
            {"type": "text", "text": text},
            {"type": "image", "base64": data, "mime_type": "image/png"},
        ]
    )


@tool
def shop_price(url: str) -> str:
    """The price of the product on the shop page at ``url``."""
    return "EUR 59" if "shop.example" in url else "unknown"


def chat(wire: Wire, **options: Any) -> ChatQwenImageSearch:
    return ChatQwenImageSearch(**wire.settings(), **options)


def test_bound_tools_go_upstream_as_function_tools_beside_the_search(wire: Wire) -> None:
    wire.answer_json(
        response(
            search_call_item(HITS),
            function_call_item("shop_price", {"url": HITS[0]["url"]}, "call_7"),
        )
    )

    reply = chat(wire).bind_tools([shop_price]).invoke([photo_message()])

    tools = wire.bodies[-1]["tools"]
    assert tools[0] == {"type": "image_search"}
    assert tools[1]["type"] == "function" and tools[1]["name"] == "shop_price"
    assert tools[1]["parameters"]["properties"]["url"]["type"] == "string"
    assert reply.tool_calls == [
        {"name": "shop_price", "args": {"url": HITS[0]["url"]}, "id": "call_7", "type": "tool_call"}
    ]
    result = image_search_result(reply)
    assert result is not None and [hit.url for hit in result.hits] == [h["url"] for h in HITS]


def test_an_agent_calls_the_users_tool_and_answers_with_search_built_in(wire: Wire) -> None:
    agents = pytest.importorskip("langchain.agents", reason="create_agent is in langchain")
    # In a graph the model streams, so that the search's progress reaches its listeners.
    wire.answer_stream(
        events_of(
            response(
                search_call_item(HITS),
                function_call_item("shop_price", {"url": HITS[0]["url"]}, "call_1"),
            )
        )
    )
    wire.answer_stream(events_of(response(message_item("It costs EUR 59 at shop.example."))))
    agent = agents.create_agent(chat(wire), tools=[shop_price])

    state = agent.invoke({"messages": [photo_message()]})

    assert state["messages"][-1].content == "It costs EUR 59 at shop.example."
    first, second = wire.bodies
    assert "image_search" in [t["type"] for t in first["tools"]]
    # The second call answers the tool result: it offers no new (paid) search.
    assert [t["type"] for t in second["tools"]] == ["function"]
    sent = second["input"]
    assert {"type": "function_call", "call_id": "call_1", "name": "shop_price"}.items() <= sent[
        -2
    ].items()
    assert sent[-1] == {"type": "function_call_output", "call_id": "call_1", "output": "EUR 59"}
    # The earlier search goes back as text, so the model can cite its hits.
    assert HITS[0]["url"] in sent[1]["content"]


class Product(BaseModel):
    name: str
    price: float


def test_structured_output_comes_from_a_function_call(wire: Wire) -> None:
    wire.answer_json(
        response(function_call_item("Product", {"name": "Red shoe", "price": 59.0}, "call_2"))
    )

    product = chat(wire).with_structured_output(Product).invoke([photo_message()])

    assert product == Product(name="Red shoe", price=59.0)
    assert wire.bodies[-1]["tool_choice"] == "required"


def test_v1_messages_hold_the_search_as_standard_blocks(wire: Wire) -> None:
    whole = response(search_call_item(HITS), message_item("Two shops sell it."))
    wire.answer_json(whole)
    wire.answer_stream(events_of(whole))
    model = chat(wire, output_version="v1")

    reply = model.invoke([photo_message()])
    chunks = list(model.stream([photo_message()]))

    merged: BaseMessage = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk  # type: ignore[operator]
    assert isinstance(merged, AIMessageChunk)
    for message in (reply, merged):
        types = [block["type"] for block in message.content_blocks]
        assert types == ["server_tool_call", "server_tool_result", "text"]
        call, found, text = message.content_blocks
        assert call["name"] == "image_search" and found["tool_call_id"] == call["id"]
        assert [hit["url"] for hit in found["output"]] == [h["url"] for h in HITS]
        assert text["text"] == "Two shops sell it."


def test_stop_sequences_cut_the_answer(wire: Wire) -> None:
    whole = response(message_item("First shop. STOP Second shop."))
    wire.answer_json(whole)
    wire.answer_stream(events_of(whole))
    model = chat(wire)

    reply = model.invoke([HumanMessage("hi")], stop=["STOP"])
    streamed = "".join(str(c.content) for c in model.stream([HumanMessage("hi")], stop=["STOP"]))

    assert reply.content == streamed == "First shop. "


def test_a_per_call_model_is_sent_reported_and_traced(wire: Wire) -> None:
    wire.answer_json(response(message_item("hello"), model="qwen3.6-plus"))
    model = chat(wire)

    reply = model.invoke([HumanMessage("hi")], model="qwen3.6-plus")

    assert wire.bodies[-1]["model"] == "qwen3.6-plus"
    assert reply.response_metadata["model_name"] == "qwen3.6-plus"
    assert model._get_ls_params(model="qwen3.6-plus")["ls_model_name"] == "qwen3.6-plus"


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("any", "required"),
        ("auto", "auto"),
        ("shop_price", {"type": "function", "name": "shop_price"}),
    ],
)
def test_tool_choice_is_sent_in_the_responses_spelling(
    wire: Wire, choice: str, sent: object
) -> None:
    wire.answer_json(response(message_item("ok")))

    chat(wire).bind_tools([shop_price], tool_choice=choice).invoke([HumanMessage("hi")])

    assert wire.bodies[-1]["tool_choice"] == sent


def test_a_malformed_function_call_is_an_invalid_tool_call(wire: Wire) -> None:
    item = function_call_item("shop_price", {}, "call_9")
    item["arguments"] = "{not json"
    wire.answer_json(response(item))

    reply = chat(wire).bind_tools([shop_price]).invoke([HumanMessage("hi")])

    assert isinstance(reply, AIMessage) and reply.tool_calls == []
    (invalid,) = reply.invalid_tool_calls
    assert invalid["name"] == "shop_price" and invalid["args"] == "{not json"
