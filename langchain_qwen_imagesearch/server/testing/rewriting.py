"""An ASGI middleware that lets a test double see each Responses-API request and change the
server's answer to it: answer in its place, hold it back, or rewrite its events.

The app under it is the plain server; nothing here runs unless a test (or ``serve`` with a
development flag) wraps the app. Streamed answers are rewritten event by event as the app
sends them; non-streamed ones as a whole.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langchain_qwen_imagesearch.protocol import ResponseObject, StreamEvent, dump_wire
from langchain_qwen_imagesearch.server.error_answers import ErrorAnswer
from langchain_qwen_imagesearch.server.http.rendering import (
    REQUEST_ID_HEADER,
    error_response,
    sse_frame,
)

RequestBody = dict[str, Any]


class EndStream:
    """Sent in place of events: the stream's body ends here, without a terminal event."""


END_STREAM = EndStream()


@dataclass(frozen=True)
class RawBody:
    """A non-streamed answer's body as given (``declared`` bytes announced in its
    Content-Length: more than it holds, and the connection breaks off mid-body)."""

    body: bytes
    declared: int | None = None


StreamPiece = StreamEvent | bytes | EndStream
"""An event, a raw frame (its bytes as sent), or the end of the stream."""


class Rewrite:
    """How one request's answer changes. The default changes nothing; subclasses override."""

    async def instead(self, request_id: str) -> Response | None:
        """An answer to send without asking the app (it may also just wait), or ``None``."""
        return None

    async def event(self, event: StreamEvent) -> list[StreamPiece]:
        """What to send for one event of a streamed answer (possibly nothing)."""
        return [event]

    async def response(self, response: ResponseObject) -> ResponseObject | ErrorAnswer | RawBody:
        """What to send for a non-streamed answer of HTTP 200."""
        return response


RewriteFor = Callable[[RequestBody], Rewrite | None]
"""Given a request's JSON body, the rewrite of its answer (``None``: leave it alone)."""


class RewritingMiddleware:
    """Wraps ``app``; asks ``rewrite_for`` about each ``POST .../responses`` request."""

    def __init__(self, app: ASGIApp, rewrite_for: RewriteFor) -> None:
        self._app = app
        self._rewrite_for = rewrite_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].endswith("/responses")
        ):
            await self._app(scope, receive, send)
            return
        body = await _read_body(receive)
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None  # the app answers it
        rewrite = self._rewrite_for(parsed) if isinstance(parsed, dict) else None
        if rewrite is None:
            await self._app(scope, _replay(body, receive), send)
            return
        answer = await rewrite.instead(request_id=str(uuid.uuid4()))
        if answer is not None:
            await answer(scope, _replay(body, receive), send)
            return
        await self._app(scope, _replay(body, receive), _RewritingSend(send, rewrite))


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives the body read already, then waits on the client as before
    (a streaming response listens for the disconnect)."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying


class _RewritingSend:
    """The app's ``send``, with its answer rewritten on the way out."""

    def __init__(self, send: Send, rewrite: Rewrite) -> None:
        self._send = send
        self._rewrite = rewrite
        self._start: Message | None = None
        self._streaming = False
        self._ended = False
        self._buffer = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            headers = dict(message.get("headers", []))
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            self._streaming = content_type.startswith("text/event-stream")
            if self._streaming or message["status"] != 200:
                await self._send_start()
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        if self._start["status"] != 200 and not self._streaming:
            await self._send(message)
            return
        if self._ended:
            return
        self._buffer += message.get("body", b"")
        more = bool(message.get("more_body", False))
        if self._streaming:
            await self._send_frames(final=not more)
        elif not more:
            await self._send_whole()

    async def _send_start(self) -> None:
        if self._start is not None:
            await self._send(self._start)

    async def _send_frames(self, *, final: bool) -> None:
        *frames, self._buffer = self._buffer.split(b"\n\n")
        out = b""
        for frame in frames:
            event = _event_of_frame(frame)
            if event is None:
                out += frame + b"\n\n"
                continue
            for piece in await self._rewrite.event(event):
                if isinstance(piece, EndStream):
                    self._ended, final = True, True
                    break
                out += piece if isinstance(piece, bytes) else sse_frame(piece)
            if self._ended:
                break
        if final:
            out, self._buffer = out + self._buffer, b""
        await self._send({"type": "http.response.body", "body": out, "more_body": not final})

    async def _send_whole(self) -> None:
        assert self._start is not None
        headers = dict(self._start.get("headers", []))
        request_id = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        try:
            response = ResponseObject.model_validate_json(self._buffer)
        except ValidationError:
            await self._send_start()
            await self._send({"type": "http.response.body", "body": self._buffer})
            return
        rewritten = await self._rewrite.response(response)
        if isinstance(rewritten, RawBody):
            declared = len(rewritten.body) if rewritten.declared is None else rewritten.declared
            headers_out = [
                (b"content-type", b"application/json"),
                (b"content-length", str(declared).encode()),
                (REQUEST_ID_HEADER.encode(), request_id.encode()),
            ]
            await self._send({"type": "http.response.start", "status": 200, "headers": headers_out})
            await self._send({"type": "http.response.body", "body": rewritten.body})
            return
        if isinstance(rewritten, ErrorAnswer):
            answer = error_response(rewritten, request_id)
        else:
            answer = Response(
                json.dumps(dump_wire(rewritten)),
                media_type="application/json",
                headers={REQUEST_ID_HEADER: request_id},
            )
        await self._send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": answer.raw_headers,
            }
        )
        await self._send({"type": "http.response.body", "body": answer.body})


def _event_of_frame(frame: bytes) -> StreamEvent | None:
    for line in frame.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                return StreamEvent.model_validate_json(line[len(b"data:") :])
            except ValidationError:
                return None
    return None
