"""LangChain chat histories as the client's conversations, and back to portable messages.

A history goes upstream whole: system, user and assistant turns, the user's images, tool
calls and their results. An assistant turn that searched carries its hits as text, so a
later text-only turn can reason over them without paying for another search. The other
direction, :func:`portable_history`, turns this package's image-search content blocks into
text, for chat models that cannot read them (``ChatOpenAI`` fails on an ``image_search``
server-tool pair in its history).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_qwen_imagesearch.client import (
    ConversationItem,
    FunctionCall,
    FunctionResult,
    Turn,
)
from langchain_qwen_imagesearch.langchain._messages import message_images
from langchain_qwen_imagesearch.langchain._results import (
    QwenImageSearchResult,
    hit_lines,
    image_search_result,
)

ImageSearchMode = Literal["auto", "always", "never"]
"""When a chat turn offers the model the image search: ``auto`` when the turn's user message
brings images, ``always`` whenever the conversation holds any, ``never``."""

HITS_IN_HISTORY = 20
"""Hits of an earlier search that go back upstream as text (the model saw them then)."""

_SERVER_TOOL_BLOCKS = ("server_tool_call", "server_tool_result")


def conversation_of(messages: Sequence[BaseMessage]) -> list[ConversationItem]:
    """The history as the client's conversation items, in order."""
    items: list[ConversationItem] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            items.append(FunctionResult(call_id=message.tool_call_id, output=_text_of(message)))
        elif isinstance(message, AIMessage):
            text = assistant_text(message)
            if text:
                items.append(Turn("assistant", text))
            items.extend(
                FunctionCall(
                    call_id=call["id"] or "", name=call["name"], arguments=json.dumps(call["args"])
                )
                for call in message.tool_calls
            )
        elif isinstance(message, HumanMessage):
            items.append(Turn("user", message.text, message_images(message)))
        elif isinstance(message, SystemMessage):
            items.append(Turn("system", message.text))
        elif isinstance(message, ChatMessage):
            role = message.role if message.role in ("system", "assistant") else "user"
            items.append(Turn(role, message.text))  # type: ignore[arg-type]
    return items


def offers_image_search(messages: Sequence[BaseMessage], mode: ImageSearchMode) -> bool:
    """Whether this turn offers the model the image search (see ``ImageSearchMode``).

    In ``auto`` mode only the first model call after the user's message does: later calls in
    the same turn (an agent after its tool calls) would pay for the same search again.
    """
    if mode == "never":
        return False
    if mode == "always":
        return any(message_images(m) for m in messages if isinstance(m, HumanMessage))
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return bool(message_images(message))
        if isinstance(message, AIMessage):
            return False
    return False


def assistant_text(message: AIMessage) -> str:
    """An assistant turn as text: the hits it searched (if any), then its answer."""
    result = image_search_result(message)
    answer = message.text.strip()
    if result is None or not result.hits:
        return answer
    return "\n".join([_hits_text(result), "", answer]).strip()


def portable_history(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The history with this package's image-search content blocks (``server_tool_call`` /
    ``server_tool_result`` named ``image_search``) turned into one text block listing the
    hits, so that any chat model can read it; other messages are returned as they are."""
    return [_portable(message) for message in messages]


def _portable(message: BaseMessage) -> BaseMessage:
    if not isinstance(message, AIMessage) or not isinstance(message.content, list):
        return message
    blocks = message.content
    if not any(_is_image_search_block(block) for block in blocks):
        return message
    kept: list[str | dict[str, Any]] = [b for b in blocks if not _is_image_search_block(b)]
    result = image_search_result(message)
    if result is not None and result.hits:
        kept.insert(0, {"type": "text", "text": _hits_text(result)})
    return message.model_copy(update={"content": kept})


def _is_image_search_block(block: object) -> bool:
    return isinstance(block, dict) and block.get("type") in _SERVER_TOOL_BLOCKS


def _hits_text(result: QwenImageSearchResult) -> str:
    shown = result.hits[:HITS_IN_HISTORY]
    more = len(result.hits) - len(shown)
    lines = [f"Image search found {len(result.hits)} image(s):", *hit_lines(shown, start=1)]
    if more:
        lines.append(f"... and {more} more.")
    return "\n".join(lines)


def _text_of(message: ToolMessage) -> str:
    return message.text if message.text else json.dumps(message.content, default=str)
