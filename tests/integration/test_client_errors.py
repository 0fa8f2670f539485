"""Every upstream failure, as the embedded server scripts it, becomes a typed error; transient
ones are retried. Every test consumes all the failures it injects (first in, first out)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_qwen_imagesearch import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BillingError,
    ContentModerationError,
    ImageSearchClient,
    IncompleteResponseError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFailedError,
    SearchCompleted,
    SearchStarted,
    ServerError,
    ServiceUnavailableError,
)
from langchain_qwen_imagesearch.server import Catalog
from langchain_qwen_imagesearch.server.testing import Fault, TestingServer

KEY = "test-key"
FAST_BACKOFF = 0.01


@pytest.fixture(scope="module")
def server(demo_catalog: Catalog) -> Iterator[TestingServer]:
    with TestingServer(demo_catalog, api_key=KEY) as running:
        yield running


def make_client(server: TestingServer, **options: Any) -> ImageSearchClient:
    return ImageSearchClient(
        base_url=server.base_url, api_key=KEY, retry_backoff=FAST_BACKOFF, **options
    )


def search(client: ImageSearchClient, photo: Path, how: str) -> Any:
    """One search the way a user would run it: ``search`` or a stream read to its end."""
    if how == "search":
        return client.search(photo)
    return streamed_result(client, photo)


def streamed_result(client: ImageSearchClient, photo: Path) -> Any:
    final = list(client.stream(photo))[-1]
    assert isinstance(final, SearchCompleted)
    return final.result


BOTH = pytest.mark.parametrize("how", ["search", "stream"])


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (400, "InvalidParameter", InvalidRequestError),
        (400, "DataInspectionFailed", ContentModerationError),
        (400, "Arrearage", BillingError),
        (403, "AccessDenied.Unpurchased", PermissionDeniedError),
        (404, "ModelNotFound", ModelNotFoundError),
    ],
)
@pytest.mark.parametrize("envelope", ["flat", "openai"])
def test_input_errors_are_typed_and_never_retried(
    status: int,
    code: str,
    error_type: type[APIError],
    envelope: Any,
    server: TestingServer,
    catalog_photo: Path,
) -> None:
    server.inject(Fault.http(status, code=code, message=f"{code} happened", envelope=envelope))

    # Had the client retried, the second attempt would have succeeded.
    with pytest.raises(error_type) as raised:
        make_client(server).search(catalog_photo)

    error = raised.value
    assert (error.code, error.status_code, error.message) == (code, status, f"{code} happened")
    assert error.request_id


@pytest.mark.parametrize("envelope", ["flat", "openai"])
def test_a_stream_maps_http_errors_alike(
    envelope: Any, server: TestingServer, catalog_photo: Path
) -> None:
    server.inject(Fault.http(400, code="InvalidParameter", message="bad image", envelope=envelope))

    with pytest.raises(InvalidRequestError, match="bad image") as raised:
        list(make_client(server).stream(catalog_photo))
    assert raised.value.status_code == 400 and raised.value.code == "InvalidParameter"


@BOTH
def test_a_wrong_key_says_keys_belong_to_a_region(
    how: str, server: TestingServer, catalog_photo: Path
) -> None:
    client = ImageSearchClient(
        base_url=server.base_url, api_key="sk-other-region", retry_backoff=FAST_BACKOFF
    )

    with pytest.raises(AuthenticationError, match="region") as raised:
        search(client, catalog_photo, how)
    assert raised.value.code == "InvalidApiKey" and raised.value.status_code == 401


@BOTH
@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "Throttling.RateQuota"), (500, "InternalError.Algo"), (503, "ModelUnavailable")],
)
def test_transient_http_errors_are_retried(
    status: int, code: str, how: str, server: TestingServer, catalog_photo: Path
) -> None:
    server.inject(Fault.http(status, code=code))
    server.inject(Fault.http(status, code=code, envelope="openai"))

    result = search(make_client(server), catalog_photo, how)

    assert result.hits


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (429, "Throttling", RateLimitError),
        (500, "InternalError", ServerError),
        (503, "ModelUnavailable", ServiceUnavailableError),
    ],
)
def test_transient_errors_surface_once_retries_run_out(
    status: int, code: str, error_type: type[APIError], server: TestingServer, catalog_photo: Path
) -> None:
    for _ in range(3):
        server.inject(Fault.http(status, code=code))

    with pytest.raises(error_type) as raised:
        make_client(server, max_retries=2).search(catalog_photo)
    assert raised.value.retryable and raised.value.code == code
    assert make_client(server).search(catalog_photo).hits  # all three were used up


def test_retry_after_is_honoured_and_reported(server: TestingServer, catalog_photo: Path) -> None:
    server.inject(Fault.http(429, code="Throttling.RateQuota", retry_after=0.3))
    server.inject(Fault.http(429, code="Throttling.RateQuota", retry_after=0.25))

    started = time.perf_counter()
    assert make_client(server).search(catalog_photo).hits
    assert time.perf_counter() - started >= 0.55

    server.inject(Fault.http(429, code="Throttling.BurstRate", retry_after=0.5))
    with pytest.raises(RateLimitError) as raised:
        make_client(server, max_retries=0).search(catalog_photo)
    assert raised.value.retry_after == 0.5


@BOTH
def test_a_rate_limit_reported_with_http_200_is_retried(
    how: str, server: TestingServer, catalog_photo: Path
) -> None:
    server.inject(Fault.failed_response())

    assert search(make_client(server), catalog_photo, how).hits

    server.inject(Fault.failed_response())
    with pytest.raises(RateLimitError, match="rate limit"):
        search(make_client(server, max_retries=0), catalog_photo, how)


@BOTH
def test_a_failed_response_with_an_input_error_is_not_retried(
    how: str, server: TestingServer, catalog_photo: Path
) -> None:
    server.inject(
        Fault.failed_response(
            code="InvalidParameter", message="The provided URL does not appear to be valid."
        )
    )

    with pytest.raises(InvalidRequestError, match="URL does not appear"):
        search(make_client(server), catalog_photo, how)


def test_a_bare_error_event_in_a_stream_is_a_typed_error_and_retried(
    server: TestingServer, catalog_photo: Path
) -> None:
    server.inject(Fault.stream_error(code="InternalError", message="boom"))

    assert streamed_result(make_client(server), catalog_photo).hits

    server.inject(Fault.stream_error(code="InternalError", message="boom"))
    with pytest.raises(ServerError, match="boom"):
        list(make_client(server, max_retries=0).stream(catalog_photo))


@BOTH
def test_an_incomplete_response_is_an_error(
    how: str, server: TestingServer, catalog_photo: Path
) -> None:
    server.inject(Fault.incomplete())

    with pytest.raises(IncompleteResponseError, match="max_output_tokens") as raised:
        search(make_client(server), catalog_photo, how)
    assert not raised.value.retryable
    partial = raised.value.partial_result
    assert partial is not None and partial.hits, "the hits already paid for are kept"
    assert partial.status == "incomplete"


@BOTH
def test_a_timeout_is_typed_and_retried(
    how: str, server: TestingServer, catalog_photo: Path
) -> None:
    server.inject(Fault.delay(0.6))

    assert search(make_client(server, timeout=0.2), catalog_photo, how).hits

    server.inject(Fault.delay(0.6))
    with pytest.raises(APITimeoutError, match="timeout"):
        search(make_client(server, timeout=0.2, max_retries=0), catalog_photo, how)


async def test_async_calls_map_errors_and_retry_alike(
    server: TestingServer, catalog_photo: Path
) -> None:
    client = make_client(server)
    server.inject(Fault.http(429, code="Throttling"))
    server.inject(Fault.failed_response())

    assert (await client.asearch(catalog_photo)).hits

    server.inject(Fault.http(400, code="InvalidParameter"))
    with pytest.raises(InvalidRequestError):
        await client.asearch(catalog_photo)
    server.inject(Fault.stream_error())
    events = [event async for event in client.astream(catalog_photo)]
    assert isinstance(events[-1], SearchCompleted)
    server.inject(Fault.delay(0.6))
    with pytest.raises(APITimeoutError):
        await make_client(server, timeout=0.2, max_retries=0).asearch(catalog_photo)


def test_an_unreachable_service_is_a_connection_error(catalog_photo: Path) -> None:
    client = ImageSearchClient(
        base_url="http://127.0.0.1:9/compatible-mode/v1", api_key=KEY, retry_backoff=FAST_BACKOFF
    )

    with pytest.raises(APIConnectionError, match="Could not reach"):
        client.search(catalog_photo)
    with pytest.raises(APIConnectionError):
        list(client.stream(catalog_photo))


def test_a_stream_is_not_retried_once_events_were_yielded(
    demo_catalog: Catalog, catalog_photo: Path
) -> None:
    # Each search takes 0.6 s, so the stream stalls after SearchStarted and times out.
    with TestingServer(demo_catalog, api_key=KEY, search_delay=0.6) as slow:
        client = make_client(slow, timeout=0.2, max_retries=2)
        seen: list[Any] = []

        with pytest.raises(APITimeoutError):
            for event in client.stream(catalog_photo):
                seen.append(event)

        assert [type(event) for event in seen] == [SearchStarted]
        assert slow.request_count == 1


def test_all_errors_share_one_base_class(server: TestingServer, catalog_photo: Path) -> None:
    from langchain_qwen_imagesearch import ImageSearchError

    server.inject(Fault.failed_response(code="InternalError", message="down"))

    with pytest.raises(ImageSearchError):
        make_client(server, max_retries=0).search(catalog_photo)
    assert issubclass(ResponseFailedError, ImageSearchError)
