"""``QwenImageSearch`` as a Runnable, against the embedded server over real HTTP."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps, load
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import RunnableLambda, RunnableParallel
from PIL import Image

from langchain_qwen_imagesearch import (
    IMAGE_SEARCH_EVENT,
    AnswerDelta,
    ConfigurationError,
    ImageInputError,
    ImageSearchResult,
    NoImageError,
    QwenImageSearch,
    QwenImageSearchResult,
    RateLimitError,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
)
from langchain_qwen_imagesearch.server import Catalog
from langchain_qwen_imagesearch.server.testing import Fault, TestingServer


def title_of(server: TestingServer, photo: Path) -> str:
    return next(entry.title for entry in server.catalog.entries() if entry.path == photo)


@pytest.fixture
def search(dashscope_env: TestingServer) -> QwenImageSearch:
    return QwenImageSearch()


def test_zero_argument_construction_reads_the_environment(
    search: QwenImageSearch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    result = search.invoke({"image": catalog_photo, "query": "where else is this photo?"})

    assert isinstance(result, ImageSearchResult)
    assert result.hits[0].title == title_of(dashscope_env, catalog_photo)
    assert result.answer
    assert result.query == "where else is this photo?"
    assert result.usage.image_search_calls == 1
    assert search.client.base_url == dashscope_env.base_url


def test_a_missing_key_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, catalog_photo: Path
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)

    with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY"):
        QwenImageSearch().invoke(catalog_photo)


def content_block_inputs(photo: Path) -> dict[str, Any]:
    data = base64.b64encode(photo.read_bytes()).decode()
    data_url = f"data:image/jpeg;base64,{data}"
    text = {"type": "text", "text": "find this"}
    return {
        "standard base64 block": HumanMessage(
            content_blocks=[text, {"type": "image", "base64": data, "mime_type": "image/jpeg"}]
        ),
        "base64 block without a MIME type": HumanMessage(
            content_blocks=[text, {"type": "image", "base64": data}]
        ),
        "OpenAI image_url part": HumanMessage(
            [text, {"type": "image_url", "image_url": {"url": data_url}}]
        ),
        "image_url part as a string": HumanMessage(
            [text, {"type": "image_url", "image_url": data_url}]
        ),
        "Responses input_image part": HumanMessage(
            [text, {"type": "input_image", "image_url": data_url}]
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "standard base64 block",
        "base64 block without a MIME type",
        "OpenAI image_url part",
        "image_url part as a string",
        "Responses input_image part",
    ],
)
def test_a_message_with_an_image_block_is_searched_with_its_text(
    kind: str, search: QwenImageSearch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    message = content_block_inputs(catalog_photo)[kind]

    result = search.invoke(message)

    assert result.hits[0].title == title_of(dashscope_env, catalog_photo)
    assert result.query == "find this"


def test_a_conversation_searches_its_latest_image_with_the_latest_user_text(
    search: QwenImageSearch, dashscope_env: TestingServer
) -> None:
    old, new = dashscope_env.catalog_photo("brick"), dashscope_env.catalog_photo("coffee")
    conversation = [
        HumanMessage([{"type": "image_url", "image_url": {"url": data_url(old)}}]),
        HumanMessage([{"type": "image_url", "image_url": {"url": data_url(new)}}]),
        HumanMessage("any shop selling this cup?"),
    ]

    result = search.invoke(conversation)

    assert result.hits[0].title == title_of(dashscope_env, new)
    assert result.query == "any shop selling this cup?"


def data_url(photo: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()


def test_a_prompt_template_feeds_the_search(
    search: QwenImageSearch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("user", [{"type": "image_url", "image_url": {"url": "{image}"}}, "{question}"])]
    )
    chain = prompt | search

    result = chain.invoke({"image": data_url(catalog_photo), "question": "who is this?"})

    assert result.hits[0].title == title_of(dashscope_env, catalog_photo)
    assert result.query == "who is this?"


def test_bare_images_of_every_kind(
    search: QwenImageSearch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    expected = title_of(dashscope_env, catalog_photo)
    with catalog_photo.open("rb") as file, Image.open(catalog_photo) as pil_image:
        inputs: list[Any] = [
            str(catalog_photo),
            catalog_photo,
            catalog_photo.read_bytes(),
            file,
            pil_image,
            data_url(catalog_photo),
        ]
        results = [search.invoke(image) for image in inputs]

    assert [result.hits[0].title for result in results] == [expected] * len(inputs)


def test_several_images_are_searched_in_one_request(
    search: QwenImageSearch, dashscope_env: TestingServer
) -> None:
    photos = [dashscope_env.catalog_photo("brick"), dashscope_env.catalog_photo("coffee")]

    result = search.invoke({"images": photos, "query": "both"})

    assert sorted(call.img_idx for call in result.calls) == [0, 1]
    titles = {hit.title for hit in result.hits}
    assert {title_of(dashscope_env, photo) for photo in photos} <= titles


@pytest.mark.parametrize(
    ("bad_input", "error", "message"),
    [
        ({"img": "a.jpg"}, ImageInputError, "unknown input key"),
        ({"image": "a.jpg", "images": ["b.jpg"]}, ImageInputError, "either 'image' or 'images'"),
        ({"query": "shoes"}, NoImageError, "no 'image'"),
        ([HumanMessage("no picture here")], NoImageError, "No image in the conversation"),
        ("missing.jpg", ImageInputError, "file not found"),
    ],
)
def test_unusable_inputs_raise_typed_errors_before_any_request(
    bad_input: Any,
    error: type[Exception],
    message: str,
    search: QwenImageSearch,
    dashscope_env: TestingServer,
) -> None:
    sent_before = dashscope_env.request_count

    with pytest.raises(error, match=message):
        search.invoke(bad_input)

    assert dashscope_env.request_count == sent_before


def test_a_chain_receives_the_result_in_invoke_and_in_stream(
    search: QwenImageSearch, catalog_photo: Path
) -> None:
    chain = search | (lambda result: [hit.url for hit in result.hits])

    urls = chain.invoke({"image": catalog_photo, "query": "same photo, other sites"})
    streamed = list(chain.stream({"image": catalog_photo}))

    assert urls and all(url.startswith("http") for url in urls)
    assert streamed == [urls]


def test_a_parallel_step_can_build_the_input_dict(
    search: QwenImageSearch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    chain = (
        RunnableParallel(image=lambda path: path, query=lambda _: "where is this from?") | search
    )

    streamed = list(chain.stream(catalog_photo))

    assert len(streamed) == 1
    assert streamed[0].hits[0].title == title_of(dashscope_env, catalog_photo)
    assert streamed[0].query == "where is this from?"


def test_stream_yields_the_typed_events_in_order(
    search: QwenImageSearch, catalog_photo: Path
) -> None:
    events = list(search.stream({"image": catalog_photo}))

    assert isinstance(events[0], SearchStarted)
    assert isinstance(events[1], SearchFinished) and events[1].hits
    assert all(isinstance(event, AnswerDelta) for event in events[2:-1])
    assert isinstance(events[-1], SearchCompleted)
    assert "".join(e.delta for e in events if isinstance(e, AnswerDelta)) == (
        events[-1].result.answer
    )


async def test_astream_and_ainvoke_agree(search: QwenImageSearch, catalog_photo: Path) -> None:
    events = [event async for event in search.astream(catalog_photo)]
    result = await search.ainvoke(catalog_photo)

    assert [type(event) for event in events[:2]] == [SearchStarted, SearchFinished]
    final = events[-1]
    assert isinstance(final, SearchCompleted)
    assert final.result.hits == result.hits


async def test_astream_events_carries_progress_as_custom_events(
    search: QwenImageSearch, catalog_photo: Path
) -> None:
    chain = search | RunnableLambda(lambda result: len(result.hits), name="count_hits")

    custom: list[Any] = []
    output = None
    async for event in chain.astream_events(catalog_photo, version="v2"):
        if event["event"] == "on_custom_event" and event["name"] == IMAGE_SEARCH_EVENT:
            custom.append(event["data"])
        if event["event"] == "on_chain_end" and event["name"] == "count_hits":
            output = event["data"]["output"]

    assert [type(data) for data in custom[:2]] == [SearchStarted, SearchFinished]
    assert isinstance(custom[-1], SearchCompleted)
    assert output == len(custom[-1].result.hits) > 0


class InFlightCounter(BaseCallbackHandler):
    """Counts how many QwenImageSearch runs overlap."""

    def __init__(self) -> None:
        self.running: set[UUID] = set()
        self.most = 0
        self.lock = threading.Lock()

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, name: str | None = None, **kw: Any
    ) -> None:
        if name == "QwenImageSearch":
            with self.lock:
                self.running.add(run_id)
                self.most = max(self.most, len(self.running))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        with self.lock:
            self.running.discard(run_id)


@pytest.fixture(scope="module")
def slow_server(demo_catalog: Catalog) -> Iterator[TestingServer]:
    """A server whose every search takes 0.2 s, so that overlap is observable."""
    with TestingServer(demo_catalog, api_key="slow-key", search_delay=0.2) as server:
        yield server


@pytest.mark.parametrize("max_concurrency", [1, 3])
def test_batch_runs_at_most_max_concurrency_searches_at_once(
    max_concurrency: int, slow_server: TestingServer
) -> None:
    search = QwenImageSearch(api_key=slow_server.api_key, base_url=slow_server.base_url)
    photos = [entry.path for entry in slow_server.catalog.entries()][:6]
    counter = InFlightCounter()

    started = time.monotonic()
    results = search.batch(
        photos, config={"max_concurrency": max_concurrency, "callbacks": [counter]}
    )
    elapsed = time.monotonic() - started

    assert [result.hits[0].title for result in results] == [
        title_of(slow_server, photo) for photo in photos if photo is not None
    ]
    assert counter.most == max_concurrency
    assert elapsed >= 0.2 * len(photos) / max_concurrency


async def test_abatch_runs_concurrently(slow_server: TestingServer) -> None:
    search = QwenImageSearch(api_key=slow_server.api_key, base_url=slow_server.base_url)
    photos = [entry.path for entry in slow_server.catalog.entries()][:4]
    counter = InFlightCounter()

    results = await search.abatch(photos, config={"max_concurrency": 4, "callbacks": [counter]})

    assert all(result.hits for result in results)
    assert counter.most == 4


def test_with_retry_retries_a_rate_limited_search(
    search: QwenImageSearch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    no_client_retries = QwenImageSearch(max_retries=0)
    retrying = no_client_retries.with_retry(
        retry_if_exception_type=(RateLimitError,),
        stop_after_attempt=2,
        wait_exponential_jitter=False,
    )
    dashscope_env.inject(Fault.failed_response())
    sent_before = dashscope_env.request_count

    result = retrying.invoke(catalog_photo)

    assert result.hits
    assert dashscope_env.request_count == sent_before + 2


def test_with_fallbacks_takes_over_when_the_search_fails(
    catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    broken = QwenImageSearch(max_retries=0, base_url="http://127.0.0.1:9/compatible-mode/v1")
    working = QwenImageSearch()

    result = broken.with_fallbacks([working]).invoke(catalog_photo)

    assert result.hits[0].title == title_of(dashscope_env, catalog_photo)


class RunRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.starts.append(kwargs)


def test_runs_are_named_and_carry_provider_metadata(
    search: QwenImageSearch, catalog_photo: Path
) -> None:
    recorder = RunRecorder()
    configured = search.with_config(run_name="find_product", tags=["shop"])

    configured.invoke(catalog_photo, config={"callbacks": [recorder]})
    list(search.stream(catalog_photo, config={"callbacks": [recorder]}))

    named, streamed = recorder.starts
    assert named["name"] == "find_product"
    assert "shop" in named["tags"]
    assert named["metadata"]["ls_provider"] == "dashscope"
    assert named["metadata"]["ls_model_name"] == "qwen3.7-plus"
    assert streamed["name"] == "QwenImageSearch"


def test_input_and_output_schemas_describe_the_contract(search: QwenImageSearch) -> None:
    request = search.get_input_jsonschema()["$defs"]["ImageSearchRequest"]
    output = search.get_output_jsonschema()

    assert set(request["properties"]) == {"image", "images", "query"}
    assert output["title"] == "QwenImageSearchResult"
    assert {"hits", "answer", "usage"} <= set(output["properties"])


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
def test_serialization_keeps_settings_and_never_the_key(
    catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    key = os.environ["DASHSCOPE_API_KEY"]
    search = QwenImageSearch(model="qwen3.6-plus", timeout=30.0)

    serialized = dumpd(search)
    restored = load(
        serialized,
        secrets_map={"DASHSCOPE_API_KEY": key},
        valid_namespaces=["langchain_qwen_imagesearch"],
        allowed_objects=[QwenImageSearch],
    )

    assert key not in dumps(search)
    assert serialized["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["DASHSCOPE_API_KEY"],
    }
    assert isinstance(restored, QwenImageSearch)
    assert (restored.model, restored.timeout) == ("qwen3.6-plus", 30.0)
    assert restored.invoke(catalog_photo).model == "qwen3.6-plus"


def test_as_tool_gives_the_search_tool_with_the_same_settings(
    dashscope_env: TestingServer, catalog_photo: Path
) -> None:
    data_url = "data:image/jpeg;base64," + base64.b64encode(catalog_photo.read_bytes()).decode()
    search = QwenImageSearch(model="qwen3.6-plus", max_retries=0)

    tool = search.as_tool(name="find_product", description="Find the product in a photo.")
    message = tool.invoke(
        {"name": "find_product", "args": {"image": data_url}, "id": "c1", "type": "tool_call"}
    )

    assert (tool.name, tool.description) == ("find_product", "Find the product in a photo.")
    assert isinstance(message, ToolMessage) and message.status == "success"
    assert isinstance(message.artifact, QwenImageSearchResult) and message.artifact.hits
    assert dashscope_env.requests[-1]["model"] == "qwen3.6-plus"


def test_nobody_listening_means_one_unstreamed_call(
    search: QwenImageSearch, catalog_photo: Path, dashscope_env: TestingServer
) -> None:
    class Listener(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[Any] = []

        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            self.events.append(data)

    search.invoke(catalog_photo)
    unlistened = dashscope_env.requests[-1]
    listener = Listener()
    search.invoke(catalog_photo, config={"callbacks": [listener]})
    listened = dashscope_env.requests[-1]

    assert unlistened.get("stream", False) is False
    assert listened["stream"] is True
    assert [type(event) for event in listener.events][:2] == [SearchStarted, SearchFinished]


class CountingRateLimiter(BaseRateLimiter):
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        return self.acquire(blocking=blocking)


async def test_the_rate_limiter_paces_paid_searches_only(
    dashscope_env: TestingServer, catalog_photo: Path
) -> None:
    limiter = CountingRateLimiter()
    search = QwenImageSearch(rate_limiter=limiter, search_cache=InMemoryCache())
    photos = [entry.path for entry in dashscope_env.catalog.entries()][:3]

    await search.abatch(photos)
    search.batch(photos)  # all from the cache: free, so not paced

    assert limiter.acquired == 3
