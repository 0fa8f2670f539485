"""A conversation to send as one request: turns with text and images, the caller's function
tools, and earlier function calls with what they returned (docs/protocol.md#request)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from langchain_qwen_imagesearch.client._images import ImageInput
from langchain_qwen_imagesearch.client._results import FunctionCall


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: who said it, its text and (for the user) its images."""

    role: Literal["system", "user", "assistant"]
    text: str = ""
    images: Sequence[ImageInput] = ()


@dataclass(frozen=True)
class FunctionTool:
    """A function of the caller's that the model may call: its name, what it does, and its
    arguments as a JSON schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@dataclass(frozen=True)
class FunctionResult:
    """What the caller's function returned for the model's call ``call_id``."""

    call_id: str
    output: str


ConversationItem: TypeAlias = Turn | FunctionCall | FunctionResult
"""One item of a conversation, in the order they happened."""
