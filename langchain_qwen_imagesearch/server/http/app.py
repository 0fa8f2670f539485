"""The Responses-API-compatible HTTP app (Starlette).

Starlette + uvicorn: a small, well-kept ASGI stack with first-class streaming responses,
which is all this wire protocol needs; no framework-level validation is wanted because
errors must come back in the upstream's own envelopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.responses import StreamingResponse as StarletteStreamingResponse
from starlette.routing import Route

from langchain_qwen_imagesearch.protocol import (
    ErrorObject,
    FlatErrorEnvelope,
    OpenAIErrorEnvelope,
    ResponsesRequest,
    StreamEvent,
    dump_wire,
)
from langchain_qwen_imagesearch.server.answer import AnswerWriter, SummaryAnswerWriter
from langchain_qwen_imagesearch.server.catalog import Catalog, CatalogEntry
from langchain_qwen_imagesearch.server.failures import Failure, FailureQueue
from langchain_qwen_imagesearch.server.inputs import load_input_image
from langchain_qwen_imagesearch.server.pipeline import HitUrl, ResponseRun, validate_request
from langchain_qwen_imagesearch.server.quirks import sloppy_stream
from langchain_qwen_imagesearch.server.upstream_errors import (
    UpstreamError,
    invalid_api_key,
    invalid_parameter,
)

# The paths the upstream serves the Responses API under (reference, "Endpoint and auth").
API_PREFIXES = ("/compatible-mode/v1", "/api/v2/apps/protocols/compatible-mode/v1", "/v1")
CATALOG_IMAGE_PATH = "/catalog/images/{entry_id}"


def sse_frame(event: StreamEvent) -> bytes:
    """One event in the upstream's framing: ``id:``, ``event:``, ``:HTTP_STATUS/200``, ``data:``."""
    data = event.model_dump_json(exclude_none=True, warnings=False)
    frame = f"id:{event.sequence_number}\nevent:{event.type}\n:HTTP_STATUS/200\ndata:{data}\n\n"
    return frame.encode()


def error_response(
    error: UpstreamError, request_id: str, retry_after: float | None = None
) -> Response:
    envelope: FlatErrorEnvelope | OpenAIErrorEnvelope
    if error.envelope == "flat":
        envelope = FlatErrorEnvelope(request_id=request_id, code=error.code, message=error.message)
    else:
        details = ErrorObject(message=error.message, type=error.error_type, code=error.code)
        envelope = OpenAIErrorEnvelope(error=details, request_id=request_id)
    # Nulls kept (``"param": null``), as the upstream sends them.
    body = envelope.model_dump(mode="json", warnings=False)
    headers = {"x-request-id": request_id}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    return JSONResponse(body, status_code=error.status, headers=headers)


class ImageSearchApp:
    """State and handlers of one server: catalog, answer writer, key, scripted failures."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        api_key: str | None = None,
        writer: AnswerWriter | None = None,
        search_delay: float = 0.0,
        sloppy: bool = False,
    ):
        self.catalog = catalog
        self.api_key = api_key
        self.writer = writer or SummaryAnswerWriter(len(catalog))
        self.search_delay = search_delay
        self.sloppy = sloppy
        self.failures = FailureQueue()
        self.requests: list[dict[str, Any]] = []
        self._http: httpx.AsyncClient | None = None

    def starlette(self) -> Starlette:
        routes = [
            Route(f"{prefix}/responses", self.responses, methods=["POST"])
            for prefix in API_PREFIXES
        ]
        routes.append(Route(CATALOG_IMAGE_PATH, self.catalog_image, methods=["GET"]))
        routes.append(Route("/health", self.health, methods=["GET"]))
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(follow_redirects=True) as http:
            self._http = http
            yield
        self._http = None

    def _authorized(self, request: Request) -> bool:
        if self.api_key is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), self.api_key)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "catalog_images": len(self.catalog)})

    async def catalog_image(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if not self._authorized(request):
            return error_response(invalid_api_key(), request_id)
        entry = self.catalog.get(request.path_params["entry_id"])
        if entry is None:
            return JSONResponse(
                {"request_id": request_id, "code": "NotFound", "message": "No such catalog image."},
                status_code=404,
            )
        if entry.path is None:
            return RedirectResponse(entry.source_url or "/", status_code=302)
        return FileResponse(entry.path)

    def hit_url_for(self, request: Request) -> HitUrl:
        base = str(request.base_url).rstrip("/")

        def hit_url(entry: CatalogEntry) -> str:
            return entry.source_url or base + CATALOG_IMAGE_PATH.format(entry_id=entry.id)

        return hit_url

    async def responses(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if not self._authorized(request):
            return error_response(invalid_api_key(), request_id)
        failure = self.failures.pop()
        if failure is not None and failure.kind == "http":
            error = UpstreamError(
                failure.status, failure.code, failure.message, envelope=failure.envelope
            )
            return error_response(error, request_id, failure.retry_after)
        if failure is not None and failure.kind == "delay":
            await asyncio.sleep(failure.seconds)
            failure = None
        try:
            body = json.loads(await request.body())
            self.requests.append(body)
            parsed = ResponsesRequest.model_validate(body)
        except (ValueError, ValidationError) as error:
            return error_response(
                invalid_parameter(f"The request body is invalid: {error}"), request_id
            )
        run = ResponseRun(
            parsed,
            self.catalog,
            self.writer,
            hit_url=self.hit_url_for(request),
            search_delay=self.search_delay,
        )
        events = self._events(run, parsed, failure)
        if parsed.stream:
            return self._stream(events, request_id)
        return await self._complete(events, request_id)

    async def _events(
        self, run: ResponseRun, request: ResponsesRequest, failure: Failure | None
    ) -> AsyncIterator[StreamEvent]:
        """Every outcome as events; failures arrive the way the upstream streams them."""
        try:
            validate_request(request)
            assert self._http is not None, "the app's lifespan has not started"
            pictures = [
                await load_input_image(i.image_url, self._http) for i in request.input_images()
            ]
        except UpstreamError as error:
            if not request.stream:
                raise
            for event in run.opening():
                yield event
            yield run.failed(error.code, error.message)
            return
        if failure is not None and failure.kind in ("failed_response", "stream_error"):
            for event in run.opening():
                yield event
            if failure.kind == "failed_response":
                yield run.failed(failure.code, failure.message)
            else:
                yield run.error_event(failure.code, failure.message)
            return
        stream = run.run([picture.image for picture in pictures])
        if failure is not None and failure.kind == "incomplete":
            async for event in stream:
                if event.type == "response.completed":
                    yield run.incomplete()
                    return
                yield event
        else:
            # The upstream's sloppiness was seen in streams only.
            async for event in sloppy_stream(stream) if self.sloppy and request.stream else stream:
                yield event

    def _stream(self, events: AsyncIterator[StreamEvent], request_id: str) -> Response:
        async def frames() -> AsyncIterator[bytes]:
            async for event in events:
                yield sse_frame(event)

        return StarletteStreamingResponse(
            frames(),
            media_type="text/event-stream",
            headers={"x-request-id": request_id, "cache-control": "no-cache"},
        )

    async def _complete(self, events: AsyncIterator[StreamEvent], request_id: str) -> Response:
        last: StreamEvent | None = None
        try:
            async for event in events:
                last = event
        except UpstreamError as error:
            return error_response(error, request_id)
        if last is None or (last.type == "error"):
            code = last.code if last and last.code else "InternalError"
            message = last.message if last and last.message else "An internal error has occured."
            return error_response(UpstreamError(500, code, message, envelope="flat"), request_id)
        assert last.response is not None
        return JSONResponse(dump_wire(last.response), headers={"x-request-id": request_id})


def create_app(
    catalog: Catalog,
    *,
    api_key: str | None = None,
    writer: AnswerWriter | None = None,
    search_delay: float = 0.0,
    sloppy_stream: bool = False,
) -> Starlette:
    """The ASGI app: serve it with any ASGI server (``uvicorn``)."""
    handlers = ImageSearchApp(
        catalog, api_key=api_key, writer=writer, search_delay=search_delay, sloppy=sloppy_stream
    )
    app = handlers.starlette()
    app.state.handlers = handlers
    return app
