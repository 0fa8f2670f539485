"""One request's life as upstream events: search each input image, then write the answer.

Streaming and non-streaming share this path: a non-streamed request is answered with the
response carried by the last event, so both always agree.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio.to_thread
from PIL import Image

from langchain_qwen_imagesearch.protocol import (
    FULL_IMAGE_BBOX,
    IMAGE_SEARCH_TOOL,
    MAX_HITS_PER_SEARCH,
    ErrorObject,
    ImageSearchCallItem,
    MessageItem,
    OutputTextPart,
    ResponseObject,
    ResponsesRequest,
    SearchHitWire,
    StreamEvent,
    is_documented_model,
)
from langchain_qwen_imagesearch.server.answer import AnswerWriter, SearchOutcome
from langchain_qwen_imagesearch.server.catalog import Catalog, CatalogEntry
from langchain_qwen_imagesearch.server.upstream_errors import UpstreamError, invalid_parameter
from langchain_qwen_imagesearch.server.usage import estimate_usage

HitUrl = Callable[[CatalogEntry], str]

NO_IMAGE_ANSWER = (
    "No image was given, so no search by image was run. Add an input_image part "
    "(an http(s) URL or a data:image/...;base64 URL) to search by image."
)
TOOL_NOT_ENABLED_ANSWER = (
    'The image_search tool was not enabled in this request (tools=[{"type": "image_search"}]), '
    "so no search by image was run."
)


def new_item_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def validate_request(request: ResponsesRequest) -> None:
    """Reject what the upstream rejects before any work: unknown models and tools."""
    if not is_documented_model(request.model):
        raise UpstreamError(
            404,
            "ModelNotFound",
            f"The model `{request.model}` does not exist or does not support the "
            f"{IMAGE_SEARCH_TOOL} tool.",
            error_type="invalid_request_error",
        )
    unsupported = sorted({tool.type for tool in request.tools} - {IMAGE_SEARCH_TOOL})
    if unsupported:
        raise invalid_parameter(
            f"Tool type(s) {', '.join(unsupported)} are not supported by this server; "
            f"it implements only {IMAGE_SEARCH_TOOL}."
        )


class EventSequence:
    """Numbers events in order, as ``sequence_number`` (and the SSE ``id:``)."""

    def __init__(self) -> None:
        self._next = 0

    def event(self, event_type: str, **fields: Any) -> StreamEvent:
        event = StreamEvent(type=event_type, sequence_number=self._next, **fields)
        self._next += 1
        return event


class ResponseRun:
    """Produces the events of one response, from ``response.created`` to its terminal event."""

    def __init__(
        self,
        request: ResponsesRequest,
        catalog: Catalog,
        writer: AnswerWriter,
        *,
        hit_url: HitUrl,
        search_delay: float = 0.0,
    ):
        self._request = request
        self._catalog = catalog
        self._writer = writer
        self._hit_url = hit_url
        self._search_delay = search_delay
        # Held searches count from the request's arrival (image decoding included), so that a
        # held server answers in exactly the held time, like a slow upstream.
        self._search_clock = time.perf_counter()
        self._events = EventSequence()
        self.response = ResponseObject(
            id=f"resp_{uuid.uuid4().hex}",
            created_at=time.time(),
            status="queued",
            model=request.model,
            output=[],
        )

    def _snapshot(self, **changes: Any) -> ResponseObject:
        return self.response.model_copy(update=changes, deep=True)

    def opening(self) -> list[StreamEvent]:
        return [
            self._events.event("response.created", response=self._snapshot()),
            self._events.event(
                "response.in_progress", response=self._snapshot(status="in_progress")
            ),
        ]

    def failed(self, code: str, message: str) -> StreamEvent:
        self.response.status = "failed"
        self.response.error = ErrorObject(code=code, message=message)
        return self._events.event("response.failed", response=self._snapshot())

    def error_event(self, code: str, message: str) -> StreamEvent:
        return self._events.event("error", code=code, message=message)

    def incomplete(self) -> StreamEvent:
        self.response.status = "incomplete"
        extra = {"incomplete_details": {"reason": "max_output_tokens"}}
        return self._events.event(
            "response.incomplete", response=self._snapshot().model_copy(update=extra)
        )

    async def run(self, images: Sequence[Image.Image]) -> AsyncIterator[StreamEvent]:
        """Search each image (one ``image_search_call`` per image), then stream the answer."""
        for event in self.opening():
            yield event
        self.response.status = "in_progress"
        searching = bool(images) and self._request.has_tool(IMAGE_SEARCH_TOOL)
        outcomes: list[SearchOutcome] = []
        if searching:
            for img_idx, image in enumerate(images):
                async for event in self._search_one(img_idx, image, outcomes):
                    yield event
        async for event in self._answer(images, outcomes, searching):
            yield event

    async def _search_one(
        self, img_idx: int, image: Image.Image, outcomes: list[SearchOutcome]
    ) -> AsyncIterator[StreamEvent]:
        item = ImageSearchCallItem(
            id=new_item_id(),
            status="in_progress",
            name=IMAGE_SEARCH_TOOL,
            arguments=json.dumps({"img_idx": img_idx, "bbox": list(FULL_IMAGE_BBOX)}),
        )
        output_index = len(self.response.output)
        self.response.output.append(item)
        yield self._events.event(
            "response.output_item.added", output_index=output_index, item=item.model_copy()
        )
        matches = await anyio.to_thread.run_sync(self._catalog.search, image, MAX_HITS_PER_SEARCH)
        remaining = self._search_delay - (time.perf_counter() - self._search_clock)
        if remaining > 0:
            await asyncio.sleep(remaining)
        self._search_clock = time.perf_counter()
        hits = [
            SearchHitWire(title=m.entry.title, url=self._hit_url(m.entry), index=rank)
            for rank, m in enumerate(matches, start=1)
        ]
        outcomes.append(SearchOutcome(img_idx=img_idx, matches=matches, hits=hits))
        item.status = "completed"
        item.output = json.dumps(
            [hit.model_dump(include={"title", "url", "index"}) for hit in hits],
            ensure_ascii=False,
        )
        yield self._events.event(
            "response.output_item.done", output_index=output_index, item=item.model_copy()
        )

    async def _answer(
        self, images: Sequence[Image.Image], outcomes: list[SearchOutcome], searched: bool
    ) -> AsyncIterator[StreamEvent]:
        message = MessageItem(id=new_item_id(), status="in_progress", content=[])
        output_index = len(self.response.output)
        self.response.output.append(message)
        events = self._events
        yield events.event(
            "response.output_item.added", output_index=output_index, item=message.model_copy()
        )
        where = {"item_id": message.id, "output_index": output_index, "content_index": 0}
        yield events.event("response.content_part.added", part=OutputTextPart(), **where)
        pieces: list[str] = []
        async for delta in self._answer_deltas(images, outcomes, searched):
            pieces.append(delta)
            yield events.event("response.output_text.delta", delta=delta, **where)
        text = "".join(pieces)
        part = OutputTextPart(text=text)
        yield events.event("response.output_text.done", text=text, **where)
        yield events.event("response.content_part.done", part=part, **where)
        message.status = "completed"
        message.content = [part]
        yield events.event(
            "response.output_item.done", output_index=output_index, item=message.model_copy()
        )
        self.response.usage = estimate_usage(
            prompt=self._request.user_text(),
            images=images,
            hits=[hit for outcome in outcomes for hit in outcome.hits],
            answer=text,
            searches=len(outcomes),
        )
        self.response.status = "completed"
        yield events.event("response.completed", response=self._snapshot())

    async def _answer_deltas(
        self, images: Sequence[Image.Image], outcomes: list[SearchOutcome], searched: bool
    ) -> AsyncIterator[str]:
        if not images:
            yield NO_IMAGE_ANSWER
        elif not searched:
            yield TOOL_NOT_ENABLED_ANSWER
        else:
            query = self._request.user_text()
            async for delta in self._writer.write(query=query, images=images, outcomes=outcomes):
                yield delta
