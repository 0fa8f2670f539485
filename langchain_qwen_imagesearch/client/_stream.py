"""Wire stream events in, typed events out: one accumulator for the sync and async streams.

It survives the upstream's sloppiness (docs/protocol.md#stream-quirks): an empty ``model`` in
``response.created``, an item added at one ``output_index`` and done at another, parts
typed ``text``, deltas without ``item_id``/``content_index``, gaps in ``sequence_number``,
a ``response.completed`` holding only id, status and usage, and event types it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from langchain_qwen_imagesearch.client._errors import (
    APIConnectionError,
    APIError,
    IncompleteResponseError,
    ResponseFailedError,
    error_of_ended_response,
    make_api_error,
)
from langchain_qwen_imagesearch.client._events import (
    AnswerDelta,
    ImageSearchEvent,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
)
from langchain_qwen_imagesearch.client._request import PreparedRequest
from langchain_qwen_imagesearch.client._results import ImageSearchCall, ImageSearchResult
from langchain_qwen_imagesearch.protocol import (
    ImageSearchCallItem,
    MessageItem,
    OutputItem,
    OutputTextPart,
    ResponseObject,
    StreamEvent,
    dump_wire,
)

_UNKNOWN_POSITION = 1 << 30


@dataclass(frozen=True)
class _DoneItem:
    position: int
    arrival: int
    item: OutputItem


class StreamAccumulator:
    """Feed it each wire event (a JSON dict); it returns the typed events to yield.

    ``response.completed`` yields ``SearchCompleted`` with the same result a non-streamed call
    gives; ``response.failed``, ``response.incomplete`` and ``error`` raise typed errors.
    """

    def __init__(self, search: PreparedRequest, *, request_id: str | None = None) -> None:
        self._search = search
        self.request_id = request_id
        self._opening = ResponseObject()
        self._added_at: dict[str, int] = {}
        self._done: dict[str, _DoneItem] = {}
        self._answer_deltas: list[str] = []
        self.emitted = False
        self.result: ImageSearchResult | None = None

    def feed(self, payload: Any) -> list[ImageSearchEvent]:
        """The typed events for one wire event; nothing once the response has completed."""
        if self.result is not None:
            return []
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return []
        try:
            event = StreamEvent.model_validate(payload)
        except ValidationError as error:
            raise ResponseFailedError(
                f"The service sent a malformed {payload['type']} event: {error}",
                request_id=self.request_id,
            ) from None
        events = self._handle(event, payload)
        self.emitted = self.emitted or bool(events)
        return events

    def _handle(self, event: StreamEvent, payload: dict[str, Any]) -> list[ImageSearchEvent]:
        kind = event.type
        if kind in ("response.created", "response.in_progress", "response.queued"):
            if event.response is not None:
                self._opening = event.response
        elif kind == "response.output_item.added" and event.item is not None:
            self._added_at.setdefault(_item_key(event.item, event.output_index), _index(event))
            if isinstance(event.item, ImageSearchCallItem):
                call = ImageSearchCall.from_item(event.item)
                return [SearchStarted(call_id=call.id, img_idx=call.img_idx, bbox=call.bbox)]
        elif kind == "response.output_item.done" and event.item is not None:
            return self._item_done(event, event.item)
        elif kind == "response.output_text.delta" and event.delta:
            self._answer_deltas.append(event.delta)
            return [AnswerDelta(delta=event.delta)]
        elif kind in ("response.completed", "response.incomplete"):
            # An incomplete response raises from finish(), with what it holds attached.
            ending = kind.rpartition(".")[2]
            self.result = self._complete(event.response or ResponseObject(), payload, ending)
            return [SearchCompleted(result=self.result)]
        elif kind == "response.failed":
            # The event type, not the (possibly partial) response, says how it ended.
            raise error_of_ended_response(
                event.response or ResponseObject(), "failed", self.request_id
            )
        elif kind == "error":
            raise make_api_error(
                event.message,
                code=event.code,
                request_id=self.request_id,
                default=ResponseFailedError,
            )
        return []

    def _item_done(self, event: StreamEvent, item: OutputItem) -> list[ImageSearchEvent]:
        key = _item_key(item, event.output_index)
        # Ordered by where the item was added: the upstream may report another index at done.
        position = self._added_at.get(key, _index(event))
        self._done[key] = _DoneItem(position, len(self._done), item)
        if not isinstance(item, ImageSearchCallItem):
            return []
        call = ImageSearchCall.from_item(item)
        return [
            SearchFinished(
                call_id=call.id,
                img_idx=call.img_idx,
                bbox=call.bbox,
                status=call.status,
                hits=call.hits,
            )
        ]

    def _complete(
        self, completed: ResponseObject, payload: dict[str, Any], ending: str
    ) -> ImageSearchResult:
        """The final result: from the completed response when it holds the output, else from
        the items seen done, with id, model, status and usage merged in. ``ending`` is how
        the event type says the response ended; it wins over a missing or stale status."""
        holds_output = bool(completed.output)
        response = (
            completed
            if holds_output
            else completed.model_copy(update={"output": self._collected_output()})
        )
        opening = self._opening
        response = response.model_copy(
            update={
                "id": response.id or opening.id,
                "model": response.model or opening.model or self._search.model,
                "status": ending if ending != "completed" else response.status or ending,
                "created_at": response.created_at or opening.created_at,
            }
        )
        # The raw JSON is the wire's own when it carried the whole response.
        raw = payload["response"] if holds_output else dump_wire(response)
        return self._search.finish(response, raw=raw, request_id=self.request_id)

    def _collected_output(self) -> list[OutputItem]:
        done = sorted(self._done.values(), key=lambda entry: (entry.position, entry.arrival))
        output = [entry.item for entry in done]
        if self._answer_deltas and not any(isinstance(item, MessageItem) for item in output):
            # The message's output_item.done never came: the deltas are the answer.
            text = "".join(self._answer_deltas)
            output.append(MessageItem(content=[OutputTextPart(text=text)]))
        return output

    def ended_early(self) -> APIError:
        """The error for a stream that closed before any terminal event: incomplete, with
        what arrived, once something did; else a connection error (retried)."""
        return self.cut_short(
            APIConnectionError(
                "The stream ended before the response completed (connection closed early).",
                request_id=self.request_id,
            )
        )

    def cut_short(self, error: APIError) -> APIError:
        """``error`` as the caller should see it after part of the answer was shown: a cut
        connection becomes ``IncompleteResponseError`` holding the hits that arrived."""
        if not self.emitted or not isinstance(error, APIConnectionError):
            return error
        response = ResponseObject(
            id=self._opening.id,
            model=self._opening.model or self._search.model,
            status="incomplete",
            output=self._collected_output(),
        )
        incomplete = IncompleteResponseError(
            f"The stream was cut before the response completed ({error.message}); "
            "partial_result holds what arrived.",
            code="connection_cut",
            request_id=self.request_id,
        )
        incomplete.partial_result = ImageSearchResult.from_response(
            response, query=self._search.query, inputs=self._search.inputs
        )
        return incomplete


def _item_key(item: OutputItem, output_index: int | None) -> str:
    return item.id or f"output_index:{output_index}"


def _index(event: StreamEvent) -> int:
    """The event's output_index; items without one go after those with one."""
    return event.output_index if event.output_index is not None else _UNKNOWN_POSITION
