"""Server-Sent Events, decoded as the HTML standard says (docs/protocol.md#streaming).

Comment lines (``:``, the upstream's ``:HTTP_STATUS/200`` among them) and fields other than
``data`` and ``event`` are ignored, and a block without data dispatches nothing: an ``id:``
line followed by a blank line, or a ``: ping`` keep-alive, is not an event. (The OpenAI
SDK's own decoder hands such blocks on as events with empty data.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str | None
    data: str


class SSEDecoder:
    """Feed it the bytes of a stream as they come; it returns the events they complete."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._data: list[str] = []
        self._data_size = 0
        self._event: str | None = None

    @property
    def buffered(self) -> int:
        """What is held for the event not yet complete, in bytes (about): a stream whose
        event never ends would otherwise grow it without bound."""
        return len(self._pending) + self._data_size

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if b"\n" not in chunk and b"\r" not in chunk and not self._pending.endswith(b"\r"):
            # No line ends here: only the new bytes are looked at, so a long line costs
            # linear time however many chunks it comes in.
            self._pending += chunk
            return []
        text = bytes(self._pending) + chunk
        # A CR that ends the chunk may be the first half of CRLF: decide with the next one.
        held = b"\r" if text.endswith(b"\r") else b""
        text = text[: len(text) - len(held)]
        *lines, rest = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = bytearray(rest + held)
        events = (self._line(line.decode("utf-8", errors="replace")) for line in lines)
        return [event for event in events if event is not None]

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self._data.append(value)
            self._data_size += len(value)
        elif field == "event":
            self._event = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._data_size, self._event = [], 0, None
        return ServerSentEvent(event, "\n".join(data)) if data else None
