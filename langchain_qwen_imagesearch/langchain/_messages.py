"""The images a conversation holds.

Images come from standard ``image`` blocks, ``file`` blocks of an image type, OpenAI
``image_url`` parts and base64 data. In a conversation the image usually sits in the user's
message, where an LLM cannot re-type it (a data URL is megabytes of base64); these helpers
find it there instead.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from langchain_qwen_imagesearch.client import ImageInput, ImageInputError, NoImageError

_IMAGE_REFERENCE = re.compile(r"^\s*(?:image|img|#)\s*#?\s*(?P<number>\d+)\s*$", re.IGNORECASE)


def message_images(message: BaseMessage) -> list[ImageInput]:
    """The images of one message, in order, as inputs the client accepts."""
    return [
        image
        for block in message.content_blocks
        if (image := _block_image(dict(block))) is not None
    ]


def _block_image(block: dict[str, Any]) -> ImageInput | None:
    if block.get("type") == "file" and str(block.get("mime_type", "")).startswith("image/"):
        # A v1 file block that holds an image is an image like any other.
        block = {**block, "type": "image"}
    if block.get("type") == "non_standard":
        # OpenAI parts that langchain-core leaves unconverted: {"image_url": "<url>"} as a
        # plain string, and Responses-API input_image parts.
        value = block.get("value")
        if isinstance(value, Mapping) and value.get("type") in ("image_url", "input_image"):
            url = value.get("image_url")
            return url if isinstance(url, str) else None
        return None
    if block.get("type") != "image":
        return None
    if isinstance(block.get("url"), str):
        return str(block["url"])
    data = block.get("base64")
    if isinstance(data, str):
        mime_type = block.get("mime_type")
        if isinstance(mime_type, str):
            return f"data:{mime_type};base64,{data}"
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ImageInputError(
                "an image block of the conversation holds invalid base64",
                input="base64 image block",
                limit="valid base64",
            ) from None
    raise ImageInputError(
        "an image of the conversation is given only as a provider file id, which the "
        "image search cannot read; send it as a URL or as base64 data",
        input=f"image block {block.get('file_id') or block.get('id')}",
        limit="image URL or data",
    )


def latest_image_message(messages: Sequence[BaseMessage]) -> BaseMessage | None:
    """The most recent message that holds at least one image."""
    return next((m for m in reversed(messages) if message_images(m)), None)


def conversation_images(
    messages: Sequence[BaseMessage], reference: str | None = None
) -> tuple[list[ImageInput], BaseMessage]:
    """The images of the latest message that holds any, and that message.

    ``reference`` picks one of them: ``"image 2"`` (also ``"img 2"``, ``"#2"``) is its second
    image. Raises ``NoImageError`` when no message holds an image and ``ImageInputError``
    for a reference that names no image.
    """
    message = latest_image_message(messages)
    if message is None:
        raise NoImageError(
            "No image in the conversation: the user has not attached one. Ask for an image, "
            "or pass an http(s) URL or a file path.",
            limit="an image in the conversation",
        )
    images = message_images(message)
    if reference is None:
        return images, message
    number = image_reference_number(reference)
    if number is None or not 1 <= number <= len(images):
        raise ImageInputError(
            f"{reference!r} names no image: the latest message with images holds "
            f"{len(images)} (refer to them as 'image 1' to 'image {len(images)}').",
            input=reference,
            limit=f"image 1 to image {len(images)}",
        )
    return [images[number - 1]], message


def image_reference_number(text: str) -> int | None:
    """``2`` for ``"image 2"``, ``"img 2"`` or ``"#2"``; ``None`` when ``text`` is no reference."""
    match = _IMAGE_REFERENCE.match(text)
    return int(match.group("number")) if match else None


def conversation_request(messages: Sequence[BaseMessage]) -> tuple[list[ImageInput], str | None]:
    """What a conversation asks to search: the images of its latest message holding any,
    and the text of its latest human message as the query."""
    images, _ = conversation_images(messages)
    human = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return images, (human.text.strip() or None) if human is not None else None


def state_messages(state: Any, messages_key: str) -> list[BaseMessage]:
    """``state[messages_key]`` of a LangGraph state: a dict, an object, or a bare list."""
    if isinstance(state, list):
        return state
    if isinstance(state, Mapping):
        messages = state.get(messages_key)
    else:
        messages = getattr(state, messages_key, None)
    if not isinstance(messages, list):
        raise NoImageError(
            f"The graph state has no {messages_key!r} message list to take images from.",
            limit="an image in the conversation",
        )
    return messages
