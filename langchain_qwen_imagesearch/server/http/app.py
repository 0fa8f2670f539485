"""The Responses-API-compatible HTTP app (Starlette): routes, authentication, parsing.

Starlette + uvicorn: a small, well-kept ASGI stack with first-class streaming responses,
which is all this wire protocol needs; no framework-level validation is wanted because
errors must come back in the upstream's own envelopes. A request is parsed here and handed
to the responder once.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import anyio.to_thread
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from langchain_qwen_imagesearch.protocol import ErrorCode, ResponsesRequest
from langchain_qwen_imagesearch.server.answers import AnswerWriter, SummaryAnswerWriter
from langchain_qwen_imagesearch.server.engine.catalog import Catalog
from langchain_qwen_imagesearch.server.error_answers import (
    ErrorAnswer,
    invalid_api_key,
    invalid_parameter,
)
from langchain_qwen_imagesearch.server.http.auth import is_authorized
from langchain_qwen_imagesearch.server.http.rendering import (
    error_response,
    event_stream_response,
    response_json,
)
from langchain_qwen_imagesearch.server.http.signed_urls import DEFAULT_TTL_SECONDS, ImageUrlSigner
from langchain_qwen_imagesearch.server.inputs.addresses import AddressPolicy
from langchain_qwen_imagesearch.server.inputs.decode import Decoder
from langchain_qwen_imagesearch.server.inputs.fetch import ImageFetcher
from langchain_qwen_imagesearch.server.inputs.load import InputLoader
from langchain_qwen_imagesearch.server.responder import HitUrl, Responder
from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry

MAX_REQUEST_BYTES = 48 * 1024 * 1024
"""Largest request body read: a few images of the upstream's 10 MB each, as data URLs."""

# The paths the upstream serves the Responses API under
# (docs/protocol.md#endpoint-and-authentication).
API_PREFIXES = ("/compatible-mode/v1", "/api/v2/apps/protocols/compatible-mode/v1", "/v1")
CATALOG_IMAGE_PATH = "/catalog/images/{entry_id}"


def create_app(
    catalog: Catalog,
    *,
    api_key: str | None = None,
    writer: AnswerWriter | None = None,
    address_policy: AddressPolicy | None = None,
    image_url_ttl: float = DEFAULT_TTL_SECONDS,
) -> Starlette:
    """The ASGI app: serve it with any ASGI server (``uvicorn``). ``address_policy`` says
    which addresses image URLs may lead to (public ones only, by default); links to catalog
    images stay valid ``image_url_ttl`` seconds without the key."""
    writer = writer or SummaryAnswerWriter(len(catalog))
    signer = ImageUrlSigner(api_key, image_url_ttl) if api_key is not None else None
    policy = address_policy or AddressPolicy()
    return _Routes(catalog, api_key, writer, policy, signer).app()


class _Routes:
    """The handlers of one server, sharing its catalog, key and responder."""

    def __init__(
        self,
        catalog: Catalog,
        api_key: str | None,
        writer: AnswerWriter,
        address_policy: AddressPolicy,
        signer: ImageUrlSigner | None,
    ) -> None:
        self._catalog = catalog
        self._api_key = api_key
        self._writer = writer
        self._address_policy = address_policy
        self._signer = signer
        self._responder: Responder | None = None

    def app(self) -> Starlette:
        routes = [
            Route(f"{prefix}/responses", self.responses, methods=["POST"])
            for prefix in API_PREFIXES
        ]
        routes.append(Route(CATALOG_IMAGE_PATH, self.catalog_image, methods=["GET"]))
        routes.append(Route("/health", self.health, methods=["GET"]))
        return Starlette(routes=routes, lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(self._catalog.warm_up)
        fetcher = ImageFetcher(self._address_policy)
        inputs = InputLoader(fetcher, Decoder())
        self._responder = Responder(self._catalog, self._writer, inputs)
        try:
            yield
        finally:
            self._responder = None
            await fetcher.aclose()

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "catalog_images": len(self._catalog)})

    async def catalog_image(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        entry_id = request.path_params["entry_id"]
        signed = self._signer is not None and self._signer.is_valid(
            entry_id, request.query_params.get("expires"), request.query_params.get("signature")
        )
        if not signed and not is_authorized(request, self._api_key):
            return error_response(invalid_api_key(), request_id)
        entry = self._catalog.get(entry_id)
        if entry is None:
            return JSONResponse(
                {"request_id": request_id, "code": "NotFound", "message": "No such catalog image."},
                status_code=404,
            )
        if entry.path is None:
            return RedirectResponse(entry.source_url or "/", status_code=302)
        return FileResponse(entry.path)

    async def responses(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if not is_authorized(request, self._api_key):
            return error_response(invalid_api_key(), request_id)
        try:
            parsed = ResponsesRequest.model_validate(json.loads(await _capped_body(request)))
        except ErrorAnswer as error:
            return error_response(error, request_id)
        except RecursionError:
            return error_response(
                invalid_parameter("The request body is invalid: its JSON is nested too deeply."),
                request_id,
            )
        except (ValueError, ValidationError) as error:
            return error_response(
                invalid_parameter(f"The request body is invalid: {error}"), request_id
            )
        assert self._responder is not None, "the app's lifespan has not started"
        hit_url = _hit_url_for(request, self._signer)
        if parsed.stream:
            return event_stream_response(self._responder.stream(parsed, hit_url), request_id)
        try:
            return response_json(await self._responder.respond(parsed, hit_url), request_id)
        except ErrorAnswer as error:
            return error_response(error, request_id)


async def _capped_body(request: Request) -> bytes:
    """The body, refused (413) beyond ``MAX_REQUEST_BYTES`` whether declared or streamed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > MAX_REQUEST_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> ErrorAnswer:
    return ErrorAnswer(
        413,
        ErrorCode.INVALID_PARAMETER,
        f"The request body exceeds {MAX_REQUEST_BYTES:,} bytes: send fewer or smaller images.",
    )


def _hit_url_for(request: Request, signer: ImageUrlSigner | None) -> HitUrl:
    """Hits link to their source URL, else to this server's copy of the catalog image (a
    signed link on a keyed server, so that it works without the key)."""
    base = str(request.base_url).rstrip("/")

    def hit_url(entry: CatalogEntry) -> str:
        if entry.source_url:
            return entry.source_url
        link = base + CATALOG_IMAGE_PATH.format(entry_id=entry.id)
        return f"{link}?{signer.query(entry.id)}" if signer is not None else link

    return hit_url
