"""Images found in chat messages, whatever block format holds them."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from langchain_qwen_imagesearch.langchain._messages import message_images

PNG_BASE64 = "iVBORw0KGgo="


def test_v1_file_blocks_that_hold_an_image_are_images() -> None:
    message = HumanMessage(
        content_blocks=[
            {"type": "text", "text": "what is this?"},
            {"type": "file", "base64": PNG_BASE64, "mime_type": "image/png"},
            {"type": "file", "url": "https://example.com/photo.jpg", "mime_type": "image/jpeg"},
            {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"},
        ]
    )

    assert message_images(message) == [
        f"data:image/png;base64,{PNG_BASE64}",
        "https://example.com/photo.jpg",
    ]


def test_image_blocks_openai_parts_and_responses_parts_are_images() -> None:
    message = HumanMessage(
        [
            {"type": "image", "url": "https://example.com/a.jpg"},
            {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
            {"type": "input_image", "image_url": "https://example.com/c.jpg"},
        ]
    )

    assert message_images(message) == [
        "https://example.com/a.jpg",
        "https://example.com/b.jpg",
        "https://example.com/c.jpg",
    ]
