"""``ImageSearchClient``: search by image with Qwen's Responses API and get typed results.

The wire work goes through the OpenAI SDK's low-level ``post`` with ``cast_to=object``: it
returns the JSON exactly as received (the raw response kept in results, unknown event types
passed through) and skips the SDK's own model construction, which ``responses.create`` does
and then needs ``model_dump(warnings=False)`` to undo; our protocol models validate instead.
The SDK's retries are off (``max_retries=0``) so that one policy, ours, applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict
from weakref import WeakKeyDictionary

import httpx2
from pydantic import SecretStr
from typing_extensions import Self

if TYPE_CHECKING:
    import openai

from langchain_qwen_imagesearch.client._conversation import ConversationItem, FunctionTool, Turn
from langchain_qwen_imagesearch.client._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    ResponseFailedError,
    make_api_error,
)
from langchain_qwen_imagesearch.client._events import ImageSearchEvent
from langchain_qwen_imagesearch.client._images import ImageInput, image_list
from langchain_qwen_imagesearch.client._request import PreparedRequest, ToolChoice
from langchain_qwen_imagesearch.client._results import ImageSearchResult
from langchain_qwen_imagesearch.client._retry import RetryPolicy, parse_retry_after
from langchain_qwen_imagesearch.client._settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BACKOFF_SECONDS,
    ClientSettings,
    resolve_model,
)
from langchain_qwen_imagesearch.client._stream import StreamAccumulator
from langchain_qwen_imagesearch.client._transport import (
    Deadline,
    aread_events,
    aread_json,
    read_events,
    read_json,
)

RESPONSES_PATH = "/responses"

Images: TypeAlias = ImageInput | Sequence[ImageInput]
"""One image or several, as ``search`` and ``stream`` take them."""

HttpClient: TypeAlias = httpx2.Client
"""The HTTP client the OpenAI SDK sends through (``httpx2``): proxies, TLS, test transports."""
AsyncHttpClient: TypeAlias = httpx2.AsyncClient


class _SDKOptions(TypedDict):
    api_key: str
    base_url: str
    timeout: float
    max_retries: int


class ImageSearchClient:
    """Search the web by image with Qwen (Model Studio's ``image_search`` tool).

    Configuration comes from the arguments, else from ``DASHSCOPE_API_KEY``,
    ``DASHSCOPE_BASE_URL`` or ``DASHSCOPE_REGION`` (+ ``DASHSCOPE_WORKSPACE_ID``). The key
    is held as a ``SecretStr`` and never shown; ``settings`` holds the resolved configuration
    (key, base URL, region, model, timeout, retries). ``timeout`` bounds each attempt from
    sending the request to the last byte of the answer, however slowly it trickles;
    ``stall_timeout`` bounds the wait for the next bytes of a stream (by default
    ``timeout``). ``retry_backoff`` is the first retry's backoff in seconds
    (doubling, with jitter) when the service sends no ``Retry-After``.
    ``http_client`` / ``http_async_client`` are ``httpx2`` clients (the OpenAI SDK's HTTP
    library) to send through: proxies, custom TLS, test transports. By default the SDK makes
    its own.
    """

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        region: str | None = None,
        workspace_id: str | None = None,
        model: str | None = None,
        timeout: float | None = None,
        stall_timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        enable_thinking: bool | None = None,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF_SECONDS,
        http_client: HttpClient | None = None,
        http_async_client: AsyncHttpClient | None = None,
    ) -> None:
        self.settings = ClientSettings.resolve(
            api_key=api_key,
            base_url=base_url,
            region=region,
            workspace_id=workspace_id,
            model=model,
            timeout=timeout,
            stall_timeout=stall_timeout,
            max_retries=max_retries,
            enable_thinking=enable_thinking,
            retry_backoff=retry_backoff,
        )
        self._retry = RetryPolicy(self.settings.max_retries, self.settings.retry_backoff)
        self._sdk_options = _SDKOptions(
            api_key=self.settings.api_key.get_secret_value(),
            base_url=self.settings.base_url,
            timeout=self.settings.timeout,
            max_retries=0,
        )
        # Imported here: the SDK takes most of a second to import, which the CLI's index and
        # serve commands, and the server, never need.
        import openai

        self._openai = openai.OpenAI(**self._sdk_options, http_client=http_client)
        self._http_async_client = http_async_client
        # An async HTTP pool belongs to one event loop; callers may run several in turn.
        self._async_openai: WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            WeakKeyDictionary()
        )

    @property
    def model(self) -> str:
        return self.settings.model

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
            f"timeout={self.settings.timeout:g}, max_retries={self.settings.max_retries})"
        )

    # ------------------------------------------------------------------ preparing

    def prepare(
        self, images: Images, query: str | None = None, *, model: str | None = None
    ) -> PreparedRequest:
        """Read, check and encode the images once; the result can be sent by ``search``,
        ``stream`` and their async twins, and carries the search's ``cache_key``. ``model``
        overrides the client's model for this search."""
        return self.prepare_conversation(
            [Turn("user", query or "", image_list(images))], image_search=True, model=model
        )

    def prepare_conversation(
        self,
        conversation: Sequence[ConversationItem],
        *,
        image_search: bool = True,
        functions: Sequence[FunctionTool] = (),
        tool_choice: ToolChoice = None,
        model: str | None = None,
    ) -> PreparedRequest:
        """A request for a whole conversation (turns, and earlier function calls with their
        results), offering the model the image search and the caller's ``functions``.

        With ``image_search`` the conversation must hold an image. Send it with ``search`` or
        ``stream``; the result's ``function_calls`` are the model's calls of ``functions``.
        """
        return PreparedRequest.build(
            conversation,
            image_search=image_search,
            functions=functions,
            tool_choice=tool_choice,
            model=resolve_model(model) if model else self.settings.model,
            base_url=self.settings.base_url,
            enable_thinking=self.settings.enable_thinking,
        )

    async def aprepare(
        self, images: Images, query: str | None = None, *, model: str | None = None
    ) -> PreparedRequest:
        """``prepare`` off the event loop: reading and converting images blocks."""
        return await asyncio.to_thread(functools.partial(self.prepare, model=model), images, query)

    def _prepared(self, images: Images | PreparedRequest, query: str | None) -> PreparedRequest:
        if not isinstance(images, PreparedRequest):
            return self.prepare(images, query)
        return self._checked(images, query)

    async def _aprepared(
        self, images: Images | PreparedRequest, query: str | None
    ) -> PreparedRequest:
        if not isinstance(images, PreparedRequest):
            return await self.aprepare(images, query)
        return self._checked(images, query)

    def _checked(self, search: PreparedRequest, query: str | None) -> PreparedRequest:
        if query is not None:
            raise ConfigurationError(
                "a prepared request already holds its query: pass query=... to prepare() instead"
            )
        if search.base_url != self.settings.base_url:
            raise ConfigurationError(
                f"this request was prepared for {search.base_url}, not for this client's "
                f"{self.settings.base_url}: prepare it with the client that sends it"
            )
        return search

    # ------------------------------------------------------------------ sync

    def search(
        self, images: Images | PreparedRequest, query: str | None = None
    ) -> ImageSearchResult:
        """Search by one image or several (or send a prepared request); ``query`` says what
        to look for."""
        search = self._prepared(images, query)
        attempts = self._retry.attempts()
        while True:
            deadline = Deadline.after(self.settings.timeout)
            try:
                with self._translated_errors(deadline), self._send(search.body, deadline) as sent:
                    payload = read_json(sent.response, deadline)
                return search.result_of_payload(payload)
            except APIError as error:
                time.sleep(attempts.wait_before_retry(error))

    def stream(
        self, images: Images | PreparedRequest, query: str | None = None
    ) -> Iterator[ImageSearchEvent]:
        """Typed events as the search runs; the last, ``SearchCompleted``, holds the result.

        A failure is retried only while nothing has been yielded yet. The wire stream is read
        to its end (the service closes it right after ``response.completed``), so that the
        connection can be reused.
        """
        search = self._prepared(images, query)
        attempts = self._retry.attempts()
        while True:
            deadline = Deadline.after(self.settings.timeout)
            accumulator = StreamAccumulator(search)
            try:
                with (
                    self._translated_errors(deadline),
                    self._send(search.stream_body(), deadline) as sent,
                ):
                    accumulator.request_id = sent.response.headers.get("x-request-id")
                    for payload in read_events(sent.response, deadline):
                        yield from accumulator.feed(payload)
                if accumulator.result is not None:
                    return
                raise accumulator.ended_early()
            except APIError as error:
                if accumulator.emitted:
                    raise accumulator.cut_short(error) from error
                time.sleep(attempts.wait_before_retry(error))

    def close(self) -> None:
        """Release the HTTP connections (the sync ones; see ``aclose`` for async)."""
        self._openai.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ async

    async def asearch(
        self, images: Images | PreparedRequest, query: str | None = None
    ) -> ImageSearchResult:
        """``search`` without blocking the event loop (images are prepared in a thread)."""
        search = await self._aprepared(images, query)
        attempts = self._retry.attempts()
        while True:
            deadline = Deadline.after(self.settings.timeout)
            try:
                with self._translated_errors(deadline):
                    async with await self._asend(search.body, deadline) as sent:
                        payload = await aread_json(sent.response, deadline)
                return search.result_of_payload(payload)
            except APIError as error:
                await asyncio.sleep(attempts.wait_before_retry(error))

    async def astream(
        self, images: Images | PreparedRequest, query: str | None = None
    ) -> AsyncIterator[ImageSearchEvent]:
        """``stream`` as an async generator."""
        search = await self._aprepared(images, query)
        attempts = self._retry.attempts()
        while True:
            deadline = Deadline.after(self.settings.timeout)
            accumulator = StreamAccumulator(search)
            try:
                with self._translated_errors(deadline):
                    async with await self._asend(search.stream_body(), deadline) as sent:
                        accumulator.request_id = sent.response.headers.get("x-request-id")
                        async for payload in aread_events(sent.response, deadline):
                            for event in accumulator.feed(payload):
                                yield event
                if accumulator.result is not None:
                    return
                raise accumulator.ended_early()
            except APIError as error:
                if accumulator.emitted:
                    raise accumulator.cut_short(error) from error
                await asyncio.sleep(attempts.wait_before_retry(error))

    async def aclose(self) -> None:
        """Release the HTTP connections of every async call made so far, and the sync ones."""
        for client in list(self._async_openai.values()):
            await client.close()
        self._async_openai.clear()
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _async_client(self) -> openai.AsyncOpenAI:
        import openai

        loop = asyncio.get_running_loop()
        client = self._async_openai.get(loop)
        if client is None:
            client = openai.AsyncOpenAI(**self._sdk_options, http_client=self._http_async_client)
            self._async_openai[loop] = client
        return client

    # ------------------------------------------------------------------ errors

    def _send(self, body: dict[str, Any], deadline: Deadline) -> openai.Stream[object]:
        """The request sent, its response unread (``_transport`` reads it)."""
        import openai

        return self._openai.post(
            RESPONSES_PATH,
            body=body,
            cast_to=object,
            stream=True,
            stream_cls=openai.Stream[object],
            options={"timeout": self._read_timeout(body, deadline)},
        )

    async def _asend(self, body: dict[str, Any], deadline: Deadline) -> openai.AsyncStream[object]:
        import openai

        return await self._async_client().post(
            RESPONSES_PATH,
            body=body,
            cast_to=object,
            stream=True,
            stream_cls=openai.AsyncStream[object],
            options={"timeout": self._read_timeout(body, deadline)},
        )

    def _read_timeout(self, body: dict[str, Any], deadline: Deadline) -> float:
        """How long one read may wait: what is left of the call, and for a stream no more
        than the stall timeout."""
        stall = self.settings.stall_timeout if body.get("stream") else None
        left = max(deadline.remaining(), 0.001)
        return min(stall, left) if stall is not None else left

    @contextlib.contextmanager
    def _translated_errors(self, deadline: Deadline) -> Iterator[None]:
        """The SDK's and the HTTP library's exceptions, raised as this package's errors."""
        import openai

        try:
            yield
        except openai.APIError as error:
            raise _api_error(error, self.settings, deadline) from error
        except httpx2.TimeoutException as error:
            raise _timeout(self.settings, deadline) from error
        except httpx2.TransportError as error:
            raise APIConnectionError(
                f"The connection to {self.settings.base_url} broke: {error}"
            ) from error


def _timeout(settings: ClientSettings, deadline: Deadline) -> APITimeoutError:
    if deadline.remaining() > 0 and settings.stall_timeout is not None:
        return APITimeoutError(
            f"{settings.base_url} sent nothing for {settings.stall_timeout:g} s "
            "(stall_timeout) in the middle of a stream."
        )
    return APITimeoutError(
        f"No complete answer from {settings.base_url} within the {settings.timeout:g} s "
        "timeout. An image search can take over a minute upstream: pass a larger timeout=... "
        "if this repeats."
    )


def _api_error(error: openai.APIError, settings: ClientSettings, deadline: Deadline) -> APIError:
    import openai

    if isinstance(error, openai.APITimeoutError):
        return _timeout(settings, deadline)
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.message
        return APIConnectionError(f"Could not reach {settings.base_url}: {cause}")
    # Flat envelopes arrive whole; the SDK unwraps OpenAI-style ones to their "error" object.
    body = error.body if isinstance(error.body, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), str) else error.message
    code = str(body["code"]) if body.get("code") is not None else None
    if isinstance(error, openai.APIStatusError):
        return make_api_error(
            message,
            code=code,
            request_id=body.get("request_id") or error.request_id,
            status_code=error.status_code,
            retry_after=parse_retry_after(error.response.headers.get("retry-after")),
        )
    # An event carrying an "error" object, which the SDK raises mid-stream.
    return make_api_error(message, code=code, default=ResponseFailedError)
