"""One request on the wire, within the call's deadline.

The OpenAI SDK sends the request (its headers, auth, error envelopes) and hands back the
HTTP response unread; the body is read here, chunk by chunk, so that the call's deadline
holds even against a server that trickles bytes (a read timeout alone restarts with every
byte), and so that streams are decoded by the Server-Sent Events rules (``_sse``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx2

from langchain_qwen_imagesearch.client._errors import APITimeoutError, ResponseFailedError
from langchain_qwen_imagesearch.client._sse import ServerSentEvent, SSEDecoder

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""A non-streamed answer larger than this is refused rather than held in memory."""
MAX_EVENT_BYTES = 16 * 1024 * 1024
"""Likewise one event of a stream (the largest, ``response.completed``, is kilobytes)."""


@dataclass(frozen=True)
class Deadline:
    """When a call must be done by (``time.monotonic``), and how to say it was missed."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise APITimeoutError(
                f"No complete answer within the {self.seconds:g} s timeout. An image search "
                "can take over a minute upstream: pass a larger timeout=... if this repeats."
            )


def read_json(response: httpx2.Response, deadline: Deadline) -> object:
    """The JSON body of a non-streamed answer."""
    return _parsed(b"".join(_capped(response.iter_bytes(), deadline)))


async def aread_json(response: httpx2.Response, deadline: Deadline) -> object:
    chunks = [chunk async for chunk in _acapped(response.aiter_bytes(), deadline)]
    return _parsed(b"".join(chunks))


def read_events(response: httpx2.Response, deadline: Deadline) -> Iterator[object]:
    """The JSON payload of each event of a streamed answer, as they arrive."""
    decoder = SSEDecoder()
    for chunk in response.iter_bytes():
        deadline.check()
        for event in _complete_events(decoder, chunk):
            yield _event_payload(event.data)


async def aread_events(response: httpx2.Response, deadline: Deadline) -> AsyncIterator[object]:
    decoder = SSEDecoder()
    async for chunk in response.aiter_bytes():
        deadline.check()
        for event in _complete_events(decoder, chunk):
            yield _event_payload(event.data)


def _complete_events(decoder: SSEDecoder, chunk: bytes) -> list[ServerSentEvent]:
    events = decoder.feed(chunk)
    if decoder.buffered > MAX_EVENT_BYTES:
        raise ResponseFailedError(
            f"The service sent an event over {MAX_EVENT_BYTES:,} bytes; it was not read whole."
        )
    return events


def _capped(chunks: Iterator[bytes], deadline: Deadline) -> Iterator[bytes]:
    received = 0
    for chunk in chunks:
        deadline.check()
        received += len(chunk)
        if received > MAX_RESPONSE_BYTES:
            raise _too_large()
        yield chunk


async def _acapped(chunks: AsyncIterator[bytes], deadline: Deadline) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in chunks:
        deadline.check()
        received += len(chunk)
        if received > MAX_RESPONSE_BYTES:
            raise _too_large()
        yield chunk


def _too_large() -> ResponseFailedError:
    return ResponseFailedError(
        f"The service's answer exceeds {MAX_RESPONSE_BYTES:,} bytes; it was not read whole."
    )


def _parsed(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        raise ResponseFailedError(f"The service answered with non-JSON: {body[:200]!r}") from None


def _event_payload(data: str) -> object:
    try:
        return json.loads(data)
    except ValueError:
        raise ResponseFailedError(
            f"The service sent an event that is not JSON: {data[:200]!r}"
        ) from None
