"""The answer the server writes: a local summary by default, or a real chat model's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from langchain_qwen_imagesearch import ImageSearchClient
from langchain_qwen_imagesearch.server import BackgroundServer, Catalog, ChatModelAnswerWriter
from langchain_qwen_imagesearch.server.testing import TestingServer

STUB_ANSWER = ["This is ", "the tabby cat ", "Chelsea."]


def stub_chat_completions(received: list[dict[str, Any]]) -> Starlette:
    """An OpenAI-compatible chat endpoint that streams a fixed answer (stands in for an LLM)."""

    async def completions(request: Request) -> StreamingResponse:
        received.append(await request.json())

        async def chunks() -> AsyncIterator[str]:
            for piece in STUB_ANSWER:
                chunk = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "stub-llm",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def test_local_summary_separates_near_duplicates_and_says_what_wrote_it(
    embedded_server: TestingServer, tmp_path: Path
) -> None:
    mirrored = tmp_path / "mirrored.png"
    with Image.open(embedded_server.catalog_photo("chelsea")) as photo:
        ImageOps.mirror(photo).save(mirrored)
    client = ImageSearchClient(base_url=embedded_server.base_url, api_key=embedded_server.api_key)

    answer = client.search(mirrored, query="Where is this from?").answer

    assert "not by a Qwen model" in answer
    assert 'Request: "Where is this from?"' in answer
    assert "Same picture" in answer and '"Tabby cat Chelsea"' in answer


def test_a_chat_model_can_write_the_answer_from_query_image_and_hits(demo_catalog: Catalog) -> None:
    received: list[dict[str, Any]] = []
    with BackgroundServer(stub_chat_completions(received)) as llm:
        writer = ChatModelAnswerWriter(base_url=llm.root_url + "/v1", model="stub-llm")
        with TestingServer(demo_catalog, writer=writer) as server:
            client = ImageSearchClient(base_url=server.base_url, api_key="unused")
            events = list(client.stream(server.catalog_photo("chelsea"), query="Who is this?"))

    deltas = [e.delta for e in events if e.type == "answer_delta"]
    assert "".join(deltas) == "".join(STUB_ANSWER)
    result = events[-1].result  # type: ignore[union-attr]
    assert result.answer == "".join(STUB_ANSWER)
    prompt = received[0]["messages"][1]["content"]
    assert "Who is this?" in prompt[0]["text"] and "Tabby cat Chelsea" in prompt[0]["text"]
    assert prompt[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
