"""The upstream's stream sloppiness, reproduced so that tolerant clients can be tested.

Each quirk is one docs/protocol.md#stream-quirks lists as seen in the upstream's own
examples; streams only, where it was seen.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from langchain_qwen_imagesearch.protocol import (
    IMAGE_SEARCH_CALL,
    MessageItem,
    OutputTextPart,
    ResponseObject,
    StreamEvent,
)
from langchain_qwen_imagesearch.server.testing.rewriting import (
    RequestBody,
    Rewrite,
    RewritingMiddleware,
    StreamPiece,
)

UNKNOWN_EVENT_TYPE = "response.x_keepalive"
SEQUENCE_GAP_EVERY = 4


def sloppy_streams(app: ASGIApp) -> ASGIApp:
    """``app`` with every streamed answer sent the way the upstream has been seen to."""

    def rewrite_for(body: RequestBody) -> Rewrite | None:
        return _SloppyRewrite() if body.get("stream") else None

    return RewritingMiddleware(app, rewrite_for)


def _as_text_part(part: OutputTextPart | None) -> OutputTextPart | None:
    return part.model_copy(update={"type": "text"}) if part is not None else None


class _SloppyRewrite(Rewrite):
    def __init__(self) -> None:
        self._sequence = 0

    async def event(self, event: StreamEvent) -> list[StreamPiece]:
        changes: dict[str, object] = {}
        if event.type == "response.created" and event.response is not None:
            changes["response"] = event.response.model_copy(update={"model": ""})
        elif event.type == "response.output_item.done" and event.item is not None:
            if event.item.type == IMAGE_SEARCH_CALL and event.output_index is not None:
                changes["output_index"] = event.output_index + 1
            if isinstance(event.item, MessageItem):
                parts = [_as_text_part(p) for p in event.item.content]
                changes["item"] = event.item.model_copy(update={"content": parts})
        elif event.type in ("response.content_part.added", "response.content_part.done"):
            changes["part"] = _as_text_part(event.part)
        elif event.type == "response.output_text.delta":
            changes.update(item_id=None, content_index=None)
        elif event.type == "response.completed" and event.response is not None:
            whole = event.response
            changes["response"] = ResponseObject(
                id=whole.id, status=whole.status, usage=whole.usage
            )
        if self._sequence % SEQUENCE_GAP_EVERY == SEQUENCE_GAP_EVERY - 1:
            self._sequence += 1
        changes["sequence_number"] = self._sequence
        self._sequence += 1
        sent: list[StreamPiece] = [event.model_copy(update=changes)]
        if event.type == "response.in_progress":
            sent.append(StreamEvent(type=UNKNOWN_EVENT_TYPE, sequence_number=self._sequence))
            self._sequence += 1
        return sent
