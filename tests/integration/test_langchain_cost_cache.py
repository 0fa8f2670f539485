"""The cost callback and the result cache, on searches run against the embedded server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.messages import HumanMessage, ToolMessage

from langchain_qwen_imagesearch import (
    INTERNATIONAL_FEE_PER_1000_CALLS,
    ChatQwenImageSearch,
    ImageSearchCostHandler,
    QwenImageSearch,
    QwenImageSearchResult,
    QwenImageSearchTool,
    get_image_search_callback,
    image_search_result,
)
from langchain_qwen_imagesearch.server.testing import TestingServer


@pytest.fixture
def search(dashscope_env: TestingServer) -> QwenImageSearch:
    return QwenImageSearch()


def test_a_block_totals_searches_tokens_and_the_tool_fee(
    search: QwenImageSearch, catalog_photo: Path
) -> None:
    chain = search | (lambda result: result.hits)

    with get_image_search_callback() as cost:
        first = search.invoke(catalog_photo)
        chain.invoke({"images": [catalog_photo, catalog_photo.with_name("brick_wall.jpg")]})

    assert cost.searches == 2
    assert cost.image_search_calls == 3
    assert first.usage.total_tokens is not None
    assert cost.total_tokens > first.usage.total_tokens
    assert cost.input_tokens + cost.output_tokens == cost.total_tokens
    assert cost.tool_fee == pytest.approx(3 * 48 / 1000)
    assert "Tool fee: CNY 0.1440" in repr(cost)


def test_searches_outside_the_block_are_not_counted(
    search: QwenImageSearch, catalog_photo: Path
) -> None:
    with get_image_search_callback() as cost:
        pass
    search.invoke(catalog_photo)

    assert cost.searches == 0


async def test_async_and_concurrent_searches_are_all_counted(
    search: QwenImageSearch, dashscope_env: TestingServer
) -> None:
    photos = [entry.path for entry in dashscope_env.catalog.entries()][:8]

    with get_image_search_callback(fee_per_1000_calls=INTERNATIONAL_FEE_PER_1000_CALLS) as cost:
        await search.abatch(photos, config={"max_concurrency": 8})
        await asyncio.gather(*(search.ainvoke(photo) for photo in photos))
        search.batch(photos, config={"max_concurrency": 8})

    assert cost.searches == cost.image_search_calls == 24
    assert cost.tool_fee == pytest.approx(24 * 58.713905 / 1000)


def test_searches_in_plain_threads_count_in_the_open_block(
    search: QwenImageSearch, dashscope_env: TestingServer
) -> None:
    photos = [entry.path for entry in dashscope_env.catalog.entries()][:4]

    with get_image_search_callback() as outer, get_image_search_callback() as cost:
        threads = [threading.Thread(target=search.invoke, args=(photo,)) for photo in photos]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        search.invoke(photos[0])

    assert (cost.searches, cost.image_search_calls) == (5, 5)
    assert outer.searches == 5


def test_blocks_nest_and_handlers_can_be_passed_explicitly(
    search: QwenImageSearch, catalog_photo: Path
) -> None:
    explicit = ImageSearchCostHandler()
    with get_image_search_callback() as outer:
        search.invoke(catalog_photo)
        with get_image_search_callback() as inner:
            search.invoke(catalog_photo)
    search.invoke(catalog_photo, config={"callbacks": [explicit]})

    assert (outer.searches, inner.searches, explicit.searches) == (2, 1, 1)


def test_tool_calls_and_chat_turns_are_counted(
    catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    tool = QwenImageSearchTool(local_image_dirs=[catalog_photo.parent])
    chat = ChatQwenImageSearch()
    question = HumanMessage([{"type": "image_url", "image_url": str(catalog_photo)}])

    with get_image_search_callback() as cost:
        tool.invoke({"image": str(catalog_photo)})
        chat.invoke([question])
        list(chat.stream([question]))

    assert cost.searches == 3


def test_a_repeated_search_comes_from_the_cache_for_free(
    catalog_photo: Path, dashscope_env: TestingServer, tmp_path: Path
) -> None:
    search = QwenImageSearch(search_cache=InMemoryCache())
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(catalog_photo.read_bytes())
    sent_before = dashscope_env.request_count

    with get_image_search_callback() as cost:
        fresh = search.invoke({"image": catalog_photo, "query": "same"})
        again = search.invoke({"image": copy, "query": "same"})
        with copy.open("rb") as file:
            from_file = search.invoke({"image": file, "query": "same"})

    assert dashscope_env.request_count == sent_before + 1
    assert (cost.searches, cost.cached_searches, cost.image_search_calls) == (1, 2, 1)
    assert again.hits == from_file.hits == fresh.hits
    assert fresh.inputs[0].kind == "path"
    assert fresh.inputs[0].source == str(catalog_photo)
    # A cache hit describes the caller's own image, not the first search's.
    assert again.inputs[0].source == str(copy)
    assert from_file.inputs[0].kind == "file"
    assert isinstance(again, QwenImageSearchResult)


def test_the_query_model_and_image_are_part_of_the_key(
    catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    cache = InMemoryCache()
    default_model = QwenImageSearch(search_cache=cache)
    other_model = QwenImageSearch(search_cache=cache, model="qwen3.6-plus")
    other_photo = dashscope_env.catalog_photo("coffee")
    sent_before = dashscope_env.request_count

    default_model.invoke({"image": catalog_photo, "query": "a"})
    default_model.invoke({"image": catalog_photo, "query": "b"})
    default_model.invoke({"image": other_photo, "query": "a"})
    other_model.invoke({"image": catalog_photo, "query": "a"})
    for repeat in (default_model, other_model):
        repeat.invoke({"image": catalog_photo, "query": "a"})

    assert dashscope_env.request_count == sent_before + 4


async def test_cached_results_stream_and_reach_tools(
    catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    cache = InMemoryCache()
    search = QwenImageSearch(search_cache=cache)
    tool = QwenImageSearchTool(search_cache=cache, local_image_dirs=[catalog_photo.parent])
    first = await search.ainvoke(catalog_photo)
    sent_before = dashscope_env.request_count

    events = [event async for event in search.astream(catalog_photo)]
    message = tool.invoke(
        {"name": tool.name, "args": {"image": str(catalog_photo)}, "id": "1", "type": "tool_call"}
    )

    assert dashscope_env.request_count == sent_before
    assert len(events) == 1
    assert events[0].result.hits == first.hits  # type: ignore[union-attr]
    assert isinstance(message, ToolMessage)
    result = image_search_result(message)
    assert result is not None and result.hits == first.hits


def test_a_bounded_cache_evicts_and_hands_out_copies(
    dashscope_env: TestingServer,
) -> None:
    cache = InMemoryCache(maxsize=1)
    search = QwenImageSearch(search_cache=cache)
    first, second = dashscope_env.catalog_photo("coffee"), dashscope_env.catalog_photo("brick")

    result = search.invoke(first)
    result.hits.clear()
    unchanged = search.invoke(first)
    search.invoke(second)
    sent_before = dashscope_env.request_count
    search.invoke(first)

    assert unchanged.hits
    assert dashscope_env.request_count == sent_before + 1


SQLITE_CACHE_SEARCH = """
import json, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its sunset
from langchain_community.cache import SQLiteCache
from langchain_qwen_imagesearch import (
    QwenImageSearch, QwenImageSearchResult, get_image_search_callback
)

search = QwenImageSearch(search_cache=SQLiteCache(database_path=sys.argv[1]))
with get_image_search_callback() as cost:
    result = search.invoke({"image": sys.argv[2], "query": "same photo"})
print(json.dumps({
    "typed": isinstance(result, QwenImageSearchResult),
    "hits": [hit.url for hit in result.hits],
    "source": result.inputs[0].source,
    "searches": cost.searches,
    "cached": cost.cached_searches,
}))
"""


def test_a_sqlite_cache_serves_a_search_to_another_process(
    catalog_photo: Path, dashscope_env: TestingServer, tmp_path: Path
) -> None:
    database = str(tmp_path / "searches.sqlite")
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(catalog_photo.read_bytes())
    sent_before = dashscope_env.request_count

    def run(photo: Path) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", SQLITE_CACHE_SEARCH, database, str(photo)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        figures: dict[str, Any] = json.loads(done.stdout)
        return figures

    first, second = run(catalog_photo), run(copy)

    assert dashscope_env.request_count == sent_before + 1
    assert (first["searches"], first["cached"]) == (1, 0)
    assert (second["searches"], second["cached"]) == (0, 1)
    assert second["typed"] and second["hits"] == first["hits"]
    assert second["source"] == str(copy)
