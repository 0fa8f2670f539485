"""``QwenImageSearchTool`` called directly, against the embedded server over real HTTP."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from langchain_qwen_imagesearch import (
    AuthenticationError,
    ConfigurationError,
    ImageSearchResult,
    QwenImageSearchTool,
    RateLimitError,
)
from langchain_qwen_imagesearch.server import demo_catalog_dir
from langchain_qwen_imagesearch.server.testing import Fault, TestingServer
from tests.integration.test_langchain_runnable import CountingRateLimiter


@pytest.fixture
def tool(dashscope_env: TestingServer, tmp_path: Path) -> QwenImageSearchTool:
    """The tool, allowed to read the catalog's photos and this test's own files."""
    return QwenImageSearchTool(local_image_dirs=[demo_catalog_dir(), tmp_path])


def call(tool: QwenImageSearchTool, **args: Any) -> ToolMessage:
    message = tool.invoke({"name": tool.name, "args": args, "id": "call_1", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    return message


def test_the_llm_sees_only_image_query_and_focus(tool: QwenImageSearchTool) -> None:
    schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]

    assert set(schema["properties"]) == {"image", "query", "focus"}
    assert schema.get("required", []) == []
    assert "'image 1'" in schema["properties"]["image"]["description"]
    assert tool.name == "qwen_image_search"
    assert tool.response_format == "content_and_artifact"


def test_content_is_compact_text_and_the_artifact_the_full_result(
    tool: QwenImageSearchTool, catalog_photo: Path
) -> None:
    message = call(tool, image=str(catalog_photo), query="same photo elsewhere")

    result = message.artifact
    assert isinstance(result, ImageSearchResult)
    assert message.status == "success"
    hit = result.hits[0]
    assert f"1. {hit.title} - {hit.url}" in message.content
    assert "Found 1 matching image:" in message.content
    assert "Analysis by the search model:" in message.content
    assert result.answer.strip() in message.content
    assert result.query == "same photo elsewhere"


async def test_async_calls_give_the_same_answer(
    tool: QwenImageSearchTool, catalog_photo: Path
) -> None:
    tool_call = {
        "name": tool.name,
        "args": {"image": str(catalog_photo)},
        "id": "call_2",
        "type": "tool_call",
    }
    sync_message = tool.invoke(tool_call)
    async_message = await tool.ainvoke(tool_call)

    assert async_message.content == sync_message.content
    assert async_message.artifact.hits == sync_message.artifact.hits


def test_focus_goes_to_the_search_as_text(
    tool: QwenImageSearchTool, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    call(tool, image=str(catalog_photo), query="find this", focus="the face")

    parts = dashscope_env.requests[-1]["input"][0]["content"]
    assert parts[0] == {"type": "input_text", "text": "find this\nFocus on: the face"}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("missing.jpg", "file not found"),
        ("http://127.0.0.1:9/gone.jpg", "The provided URL does not appear to be valid"),
        (None, "No image given"),
        ("image 1", "No image given"),
    ],
)
def test_errors_the_llm_can_act_on_come_back_as_error_messages(
    image: str | None, expected: str, tool: QwenImageSearchTool
) -> None:
    message = call(tool, image=image) if image else call(tool)

    assert message.status == "error"
    assert message.content.startswith("Image search failed:")
    assert expected in message.content


def test_a_file_that_is_no_image_is_reported_to_the_llm(
    tool: QwenImageSearchTool, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")

    message = call(tool, image=str(notes))

    assert message.status == "error"
    assert "not a readable image" in message.content


def test_configuration_and_service_errors_raise(
    monkeypatch: pytest.MonkeyPatch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    image = str(catalog_photo)
    folders = [catalog_photo.parent]
    with pytest.raises(AuthenticationError):
        call(QwenImageSearchTool(api_key="wrong-key", local_image_dirs=folders), image=image)

    dashscope_env.inject(Fault.failed_response())
    with pytest.raises(RateLimitError):
        call(QwenImageSearchTool(max_retries=0, local_image_dirs=folders), image=image)

    monkeypatch.delenv("DASHSCOPE_API_KEY")
    with pytest.raises(ConfigurationError):
        call(QwenImageSearchTool(local_image_dirs=folders), image=image)


def test_the_llm_reads_no_local_files_unless_allowed(
    catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    tool = QwenImageSearchTool()
    data_url = "data:image/jpeg;base64," + base64.b64encode(catalog_photo.read_bytes()).decode()

    refused = call(tool, image=str(catalog_photo))
    allowed = call(tool, image=data_url)

    assert refused.status == "error"
    assert "reads no local files" in refused.content
    assert allowed.artifact.hits


def test_allowed_folders_confine_local_files(
    catalog_photo: Path, dashscope_env: TestingServer, tmp_path: Path
) -> None:
    allowed_folder = tmp_path / "allowed"
    allowed_folder.mkdir()
    (allowed_folder / "photo.jpg").write_bytes(catalog_photo.read_bytes())
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(catalog_photo.read_bytes())
    (allowed_folder / "link.jpg").symlink_to(outside)
    tool = QwenImageSearchTool(local_image_dirs=[allowed_folder])

    inside = call(tool, image="photo.jpg")
    escapes = [
        call(tool, image=name)
        for name in (
            str(outside),
            "../secret.jpg",
            "link.jpg",
            str(allowed_folder / "../secret.jpg"),
        )
    ]

    assert inside.status == "success" and inside.artifact.hits
    for refused in escapes:
        assert refused.status == "error"
        assert "outside the folders this tool may read" in refused.content


def test_called_without_a_tool_call_it_returns_the_text(
    tool: QwenImageSearchTool, catalog_photo: Path
) -> None:
    content = tool.invoke({"image": str(catalog_photo)})

    assert isinstance(content, str)
    assert content.startswith(f"Searched the image {catalog_photo}.")


def test_the_rate_limiter_paces_each_search(
    dashscope_env: TestingServer, catalog_photo: Path
) -> None:
    limiter = CountingRateLimiter()
    tool = QwenImageSearchTool(local_image_dirs=[demo_catalog_dir()], rate_limiter=limiter)

    call(tool, image=str(catalog_photo))
    call(tool, image=str(catalog_photo), query="where else")

    assert limiter.acquired == 2
