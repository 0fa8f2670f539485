"""The fault matrix: every failure mode docs/protocol.md names, from a fake upstream on
loopback (the embedded server with scripted faults), met by the client as a typed error, a
retry, or a result that keeps what arrived. Each test consumes the faults it injects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from langchain_qwen_imagesearch import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ImageSearchClient,
    ImageSearchError,
    IncompleteResponseError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFailedError,
    SearchCompleted,
    SearchFinished,
    ServerError,
    ServiceUnavailableError,
)
from langchain_qwen_imagesearch.server import Catalog
from langchain_qwen_imagesearch.server.testing import Fault, TestingServer

KEY = "reliability-key"


@pytest.fixture(scope="module")
def upstream(demo_catalog: Catalog) -> Iterator[TestingServer]:
    with TestingServer(demo_catalog, api_key=KEY) as running:
        yield running


def client(server: TestingServer, **options: Any) -> ImageSearchClient:
    return ImageSearchClient(base_url=server.base_url, api_key=KEY, retry_backoff=0.01, **options)


def run(search: ImageSearchClient, photo: Path, how: str) -> Any:
    if how == "search":
        return search.search(photo)
    final = list(search.stream(photo))[-1]
    assert isinstance(final, SearchCompleted)
    return final.result


BOTH = pytest.mark.parametrize("how", ["search", "stream"])


@BOTH
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.http(401, code="InvalidApiKey"), AuthenticationError),
        (Fault.http(403, code="AccessDenied.Unpurchased"), PermissionDeniedError),
        (Fault.http(404, code="ModelNotFound", envelope="openai"), ModelNotFoundError),
        (Fault.http(400, code="InvalidParameter", envelope="openai"), InvalidRequestError),
    ],
    ids=["401", "403", "404", "400"],
)
def test_errors_to_fix_are_typed_and_never_retried(
    how: str,
    fault: Fault,
    error: type[ImageSearchError],
    upstream: TestingServer,
    catalog_photo: Path,
) -> None:
    upstream.inject(fault)
    before = upstream.request_count

    with pytest.raises(error):
        run(client(upstream), catalog_photo, how)
    assert upstream.request_count == before + 1


@BOTH
@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(429, code="Throttling.RateQuota", retry_after=0.2),
        Fault.http(429, code="Throttling", retry_after=formatdate(time.time() + 1, usegmt=True)),
        Fault.http(429, code="Throttling", retry_after="nan"),
        Fault.http(500, code="InternalError.Algo"),
        Fault.http(503, code="ModelUnavailable"),
        Fault.failed_response(),
        Fault.stream_error(),
        Fault.cut(after_events=1),
    ],
    ids=[
        "429-seconds",
        "429-http-date",
        "429-nan",
        "500",
        "503",
        "200-failed",
        "error-event",
        "cut-before-progress",
    ],
)
def test_transient_failures_are_retried(
    how: str, fault: Fault, upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(fault)
    before = upstream.request_count

    assert run(client(upstream, max_retries=1), catalog_photo, how).hits
    assert upstream.request_count == before + 2


def test_retry_after_as_an_http_date_is_waited_for(
    upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(
        Fault.http(429, code="Throttling", retry_after=formatdate(time.time() + 2, usegmt=True))
    )
    started = time.monotonic()

    client(upstream, max_retries=1).search(catalog_photo)

    assert time.monotonic() - started >= 0.9  # the date has one-second resolution


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.http(503, code="ModelUnavailable"), ServiceUnavailableError),
        (Fault.http(500, code="InternalError"), ServerError),
        (Fault.failed_response(), RateLimitError),
        (Fault.cut(), APIConnectionError),
        (Fault.garbage(), ResponseFailedError),
    ],
    ids=["503", "500", "200-failed", "cut-body", "garbage-body"],
)
def test_without_retries_each_failure_is_its_typed_error(
    fault: Fault, error: type[ImageSearchError], upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(fault)

    with pytest.raises(error):
        client(upstream, max_retries=0).search(catalog_photo)


def test_a_stream_cut_after_the_hits_keeps_them(
    upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(Fault.cut(after_events=4))  # created, in_progress, search added and done
    seen: list[object] = []

    with pytest.raises(IncompleteResponseError) as raised:
        for event in client(upstream, max_retries=2).stream(catalog_photo):
            seen.append(event)

    assert any(isinstance(event, SearchFinished) and event.hits for event in seen)
    partial = raised.value.partial_result
    assert partial is not None and partial.hits and partial.status == "incomplete"
    assert upstream.requests[-1]["stream"] is True


@pytest.mark.parametrize("after_events", [0, 4], ids=["first", "after-progress"])
def test_a_malformed_event_is_a_typed_error(
    after_events: int, upstream: TestingServer, catalog_photo: Path
) -> None:
    """Not retried: an answer that is not JSON may be billed, and would likely repeat."""
    upstream.inject(Fault.garbage(after_events=after_events))
    before = upstream.request_count

    with pytest.raises(ResponseFailedError, match="not JSON"):
        list(client(upstream, max_retries=2).stream(catalog_photo))
    assert upstream.request_count == before + 1


@pytest.mark.parametrize("how", ["sync", "async"])
def test_an_event_that_never_ends_is_refused_before_it_fills_the_memory(
    how: str, upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(Fault.endless_event())
    search = client(upstream, max_retries=0)

    async def astream() -> None:
        async for _ in search.astream(catalog_photo):
            pass

    with pytest.raises(ResponseFailedError, match="event over 16,777,216 bytes"):
        if how == "sync":
            list(search.stream(catalog_photo))
        else:
            asyncio.run(astream())


def test_a_stall_beyond_the_stall_timeout_ends_the_stream(
    upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(Fault.stall(2.0, after_events=3))
    started = time.monotonic()

    with pytest.raises(APITimeoutError, match="stall_timeout"):
        list(client(upstream, stall_timeout=0.5, max_retries=0).stream(catalog_photo))
    assert time.monotonic() - started < 1.8


def test_a_short_stall_within_the_stall_timeout_is_waited_out(
    upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(Fault.stall(0.3, after_events=3))

    events = list(client(upstream, stall_timeout=2.0).stream(catalog_photo))

    assert isinstance(events[-1], SearchCompleted)


def test_a_trickling_stream_cannot_outlast_the_timeout(
    upstream: TestingServer, catalog_photo: Path
) -> None:
    upstream.inject(Fault.trickle(0.25))  # about 15 events: nearly 4 s in all
    started = time.monotonic()

    with pytest.raises(APITimeoutError, match="timeout"):
        list(client(upstream, timeout=1.0, max_retries=0).stream(catalog_photo))
    assert time.monotonic() - started < 1.7
