"""Searching through the real OpenAI SDK over loopback HTTP: sync, async, streamed."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_qwen_imagesearch import (
    DEFAULT_QUERY,
    AnswerDelta,
    ImageSearchClient,
    ImageSearchResult,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
)
from langchain_qwen_imagesearch.server import Catalog
from langchain_qwen_imagesearch.server.testing import TestingServer

QUERY = "Find products like this one"


@pytest.fixture(scope="module")
def client(embedded_server: TestingServer) -> ImageSearchClient:
    return ImageSearchClient(base_url=embedded_server.base_url, api_key=embedded_server.api_key)


def comparable(result: ImageSearchResult) -> dict[str, Any]:
    """A result without what differs between two runs of the same search (ids, raw JSON)."""
    dumped = result.model_dump(exclude={"id", "raw"})
    for call in dumped["calls"]:
        call.pop("id")
    return dumped


def test_zero_argument_construction_searches_the_configured_service(
    dashscope_env: TestingServer, catalog_photo: Path
) -> None:
    result = ImageSearchClient().search(catalog_photo, query=QUERY)

    assert result.status == "completed" and result.model == "qwen3.7-plus"
    assert result.id and result.id.startswith("resp_")
    first = result.hits[0]
    assert first.index == 1 and first.title and first.url.startswith("http://127.0.0.1")
    assert result.answer
    assert result.usage.tool_calls["image_search"] == 1
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens  # type: ignore[operator]
    assert result.query == QUERY


def test_the_result_keeps_the_raw_wire_json_and_per_call_detail(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    result = client.search(catalog_photo)

    raw_call = result.raw["output"][0]
    assert raw_call["type"] == "image_search_call"
    assert [hit.url for hit in result.calls[0].hits] == [
        hit["url"] for hit in json.loads(raw_call["output"])
    ]
    assert result.calls[0].bbox == [0, 0, 1000, 1000]
    assert result.answer == result.raw["output"][-1]["content"][0]["text"]


def test_results_round_trip_through_json_without_warnings(
    client: ImageSearchClient, catalog_photo: Path
) -> None:
    result = client.search(catalog_photo)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = result.model_dump_json()
    assert ImageSearchResult.model_validate_json(text) == result


def test_the_request_carries_the_query_first_and_the_image_search_tool(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    client.search(catalog_photo, query=QUERY)

    body = embedded_server.requests[-1]
    assert body["model"] == "qwen3.7-plus" and body["tools"] == [{"type": "image_search"}]
    assert body["input"][0]["role"] == "user"
    assert body["input"][0]["content"][0] == {"type": "input_text", "text": QUERY}
    assert "enable_thinking" not in body


def test_without_a_query_the_model_is_asked_to_search(
    client: ImageSearchClient, embedded_server: TestingServer, catalog_photo: Path
) -> None:
    result = client.search(catalog_photo)

    assert embedded_server.requests[-1]["input"][0]["content"][0]["text"] == DEFAULT_QUERY
    assert result.query == DEFAULT_QUERY


def test_enable_thinking_is_sent_when_set(
    embedded_server: TestingServer, catalog_photo: Path
) -> None:
    client = ImageSearchClient(
        base_url=embedded_server.base_url, api_key=embedded_server.api_key, enable_thinking=False
    )

    client.search(catalog_photo)

    assert embedded_server.requests[-1]["enable_thinking"] is False


def test_a_stream_shows_progress_then_the_same_result_as_search(
    client: ImageSearchClient, catalog_photo: Path
) -> None:
    events = list(client.stream(catalog_photo, query=QUERY))

    assert isinstance(events[0], SearchStarted) and events[0].img_idx == 0
    assert isinstance(events[1], SearchFinished) and events[1].hits
    deltas = [event.delta for event in events if isinstance(event, AnswerDelta)]
    assert deltas
    final = events[-1]
    assert isinstance(final, SearchCompleted)
    assert [e for e in events if isinstance(e, SearchCompleted)] == [final]
    assert final.result.answer == "".join(deltas)
    assert final.result.hits == events[1].hits
    assert comparable(final.result) == comparable(client.search(catalog_photo, query=QUERY))


async def test_async_search_and_stream_match_the_sync_ones(
    client: ImageSearchClient, catalog_photo: Path
) -> None:
    expected = comparable(client.search(catalog_photo, query=QUERY))

    assert comparable(await client.asearch(catalog_photo, query=QUERY)) == expected
    events = [event async for event in client.astream(catalog_photo, query=QUERY)]
    assert isinstance(events[0], SearchStarted)
    assert isinstance(events[-1], SearchCompleted)
    assert comparable(events[-1].result) == expected


def test_one_client_serves_several_event_loops(
    client: ImageSearchClient, catalog_photo: Path
) -> None:
    first = asyncio.run(client.asearch(catalog_photo))
    second = asyncio.run(client.asearch(catalog_photo))

    assert first.hits == second.hits


@pytest.fixture(scope="module")
def sloppy_server(demo_catalog: Catalog) -> Iterator[TestingServer]:
    with TestingServer(demo_catalog, api_key="test-key", sloppy_stream=True) as server:
        yield server


def test_a_sloppy_stream_gives_the_result_a_clean_search_gives(
    sloppy_server: TestingServer,
    client: ImageSearchClient,
    embedded_server: TestingServer,
    catalog_photo: Path,
) -> None:
    sloppy = ImageSearchClient(base_url=sloppy_server.base_url, api_key="test-key")
    photos = [catalog_photo, embedded_server.catalog_photo("coffee")]

    events = list(sloppy.stream(photos, query=QUERY))

    result = events[-1]
    assert isinstance(result, SearchCompleted)
    expected = comparable(client.search(photos, query=QUERY))
    got = comparable(result.result)
    # Hit URLs name the server that found them; everything else must match.
    for dumped in (expected, got):
        for hit in dumped["hits"] + [h for call in dumped["calls"] for h in call["hits"]]:
            hit["url"] = hit["url"].split("/catalog/")[1]
    assert got == expected
    assert [e.img_idx for e in events if isinstance(e, SearchFinished)] == [0, 1]
    assert result.result.answer == "".join(e.delta for e in events if isinstance(e, AnswerDelta))
