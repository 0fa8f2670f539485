"""Wire rendering: events as the upstream frames them, errors in its two envelopes
(docs/protocol.md#streaming, docs/protocol.md#errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import JSONResponse, Response, StreamingResponse

from langchain_qwen_imagesearch.protocol import (
    ErrorObject,
    FlatErrorEnvelope,
    OpenAIErrorEnvelope,
    ResponseObject,
    StreamEvent,
    dump_wire,
)
from langchain_qwen_imagesearch.server.error_answers import ErrorAnswer

REQUEST_ID_HEADER = "x-request-id"


def sse_frame(event: StreamEvent) -> bytes:
    """One event in the upstream's framing: ``id:``, ``event:``, ``:HTTP_STATUS/200``, ``data:``."""
    data = event.model_dump_json(exclude_none=True, warnings=False)
    frame = f"id:{event.sequence_number}\nevent:{event.type}\n:HTTP_STATUS/200\ndata:{data}\n\n"
    return frame.encode()


def event_stream_response(events: AsyncIterator[StreamEvent], request_id: str) -> Response:
    async def frames() -> AsyncIterator[bytes]:
        async for event in events:
            yield sse_frame(event)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={REQUEST_ID_HEADER: request_id, "cache-control": "no-cache"},
    )


def response_json(response: ResponseObject, request_id: str) -> Response:
    return JSONResponse(dump_wire(response), headers={REQUEST_ID_HEADER: request_id})


def error_response(
    error: ErrorAnswer, request_id: str, retry_after: float | None = None
) -> Response:
    envelope: FlatErrorEnvelope | OpenAIErrorEnvelope
    if error.envelope == "flat":
        envelope = FlatErrorEnvelope(request_id=request_id, code=error.code, message=error.message)
    else:
        details = ErrorObject(message=error.message, type=error.error_type, code=error.code)
        envelope = OpenAIErrorEnvelope(error=details, request_id=request_id)
    # Nulls kept (``"param": null``), as the upstream sends them.
    body = envelope.model_dump(mode="json", warnings=False)
    headers = {REQUEST_ID_HEADER: request_id}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    return JSONResponse(body, status_code=error.status, headers=headers)
