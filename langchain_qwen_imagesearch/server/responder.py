"""The responder: one request's life, validate -> load inputs -> search -> answer, as events.

The HTTP layer hands it a parsed request once. A streamed request gets every outcome as
upstream events, failures included (a ``response.failed`` event after the opening ones); a
non-streamed one gets the finished response, or an ``ErrorAnswer`` raised before any work,
as the upstream answers it with an HTTP error. Both share one path, so they always agree.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio.to_thread

from langchain_qwen_imagesearch.protocol import (
    FULL_IMAGE_BBOX,
    FUNCTION_TOOL,
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
from langchain_qwen_imagesearch.server.answers import AnswerWriter, SearchOutcome
from langchain_qwen_imagesearch.server.engine.catalog import Catalog
from langchain_qwen_imagesearch.server.engine.hit_rule import Match
from langchain_qwen_imagesearch.server.error_answers import (
    ErrorAnswer,
    invalid_parameter,
    model_not_found,
)
from langchain_qwen_imagesearch.server.inputs.decode import InputPicture
from langchain_qwen_imagesearch.server.inputs.load import InputLoader
from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry
from langchain_qwen_imagesearch.server.usage_estimate import estimate_usage

HitUrl = Callable[[CatalogEntry], str]
"""The URL a hit links to, for the request being answered (it knows the server's address)."""

# The embedded server has no language model: without a search it can only say why.
_NO_MODEL = (
    " This embedded offline server has no language model: it answers only with what a "
    "search by image finds."
)
NO_IMAGE_ANSWER = (
    "No image was given, so no search by image was run. Add an input_image part "
    "(an http(s) URL or a data:image/...;base64 URL) to search by image." + _NO_MODEL
)
TOOL_NOT_ENABLED_ANSWER = (
    'The image_search tool was not enabled in this request (tools=[{"type": "image_search"}]), '
    "so no search by image was run." + _NO_MODEL
)
# Function tools are accepted, as upstream, but never called: there is no model to call them.
ACCEPTED_TOOLS = frozenset({IMAGE_SEARCH_TOOL, FUNCTION_TOOL})


class Responder:
    """Answers Responses-API requests by searching a catalog and writing the inference."""

    def __init__(self, catalog: Catalog, writer: AnswerWriter, inputs: InputLoader) -> None:
        self._catalog = catalog
        self._writer = writer
        self._inputs_loader = inputs
        self._searches = anyio.CapacityLimiter(catalog.searches_at_once)

    async def stream(
        self, request: ResponsesRequest, hit_url: HitUrl
    ) -> AsyncIterator[StreamEvent]:
        """Every outcome as events; failures arrive the way the upstream streams them."""
        run = _Run(request, hit_url)
        try:
            images = await self._inputs(request)
        except ErrorAnswer as error:
            for event in run.opening():
                yield event
            yield run.failed(error.code, error.message)
            return
        async for event in self._run(run, images):
            yield event

    async def respond(self, request: ResponsesRequest, hit_url: HitUrl) -> ResponseObject:
        """The finished response; raises ``ErrorAnswer`` for a request the upstream refuses."""
        run = _Run(request, hit_url)
        images = await self._inputs(request)
        async for _ in self._run(run, images):
            pass
        return run.response

    async def _inputs(self, request: ResponsesRequest) -> list[InputPicture]:
        """Reject what the upstream rejects before any work, then load the input images."""
        if not is_documented_model(request.model):
            raise model_not_found(request.model)
        unsupported = sorted({tool.type for tool in request.tools} - ACCEPTED_TOOLS)
        if unsupported:
            raise invalid_parameter(
                f"Tool type(s) {', '.join(unsupported)} are not supported by this server; "
                f"it implements {IMAGE_SEARCH_TOOL} and accepts {FUNCTION_TOOL} tools."
            )
        urls = [image.image_url for image in request.input_images()]
        return await self._inputs_loader.load_all(urls)

    async def _run(self, run: _Run, images: Sequence[InputPicture]) -> AsyncIterator[StreamEvent]:
        """Search each image (one ``image_search_call`` per image), then stream the answer."""
        for event in run.opening():
            yield event
        run.response.status = "in_progress"
        searching = bool(images) and run.request.has_tool(IMAGE_SEARCH_TOOL)
        outcomes: list[SearchOutcome] = []
        if searching:
            for img_idx in run.request.latest_images():
                image = images[img_idx]
                added, item, output_index = run.search_started(img_idx)
                yield added
                matches = await anyio.to_thread.run_sync(
                    self._catalog.search, image.pixels, MAX_HITS_PER_SEARCH, limiter=self._searches
                )
                outcome, done = run.search_finished(img_idx, item, output_index, matches)
                outcomes.append(outcome)
                yield done
        deltas = self._answer_deltas(run, images, outcomes, searching)
        async for event in run.answer(deltas, images, outcomes):
            yield event

    def _answer_deltas(
        self,
        run: _Run,
        images: Sequence[InputPicture],
        outcomes: list[SearchOutcome],
        searched: bool,
    ) -> AsyncIterator[str]:
        if not images:
            return _single(NO_IMAGE_ANSWER)
        if not searched:
            return _single(TOOL_NOT_ENABLED_ANSWER)
        searched_images = [images[outcome.img_idx].pixels for outcome in outcomes]
        query = run.request.latest_user_text()
        return self._writer.write(query=query, images=searched_images, outcomes=outcomes)


async def _single(text: str) -> AsyncIterator[str]:
    yield text


def new_item_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class _Run:
    """The response being built for one request, and its events numbered in order
    (``sequence_number``, and the SSE ``id:``)."""

    def __init__(self, request: ResponsesRequest, hit_url: HitUrl) -> None:
        self.request = request
        self._hit_url = hit_url
        self._next_sequence_number = 0
        self.response = ResponseObject(
            id=f"resp_{uuid.uuid4().hex}",
            created_at=time.time(),
            status="queued",
            model=request.model,
            output=[],
        )

    def _event(self, event_type: str, **fields: Any) -> StreamEvent:
        event = StreamEvent(type=event_type, sequence_number=self._next_sequence_number, **fields)
        self._next_sequence_number += 1
        return event

    def _snapshot(self, **changes: Any) -> ResponseObject:
        return self.response.model_copy(update=changes, deep=True)

    def opening(self) -> list[StreamEvent]:
        return [
            self._event("response.created", response=self._snapshot()),
            self._event("response.in_progress", response=self._snapshot(status="in_progress")),
        ]

    def failed(self, code: str, message: str) -> StreamEvent:
        self.response.status = "failed"
        self.response.error = ErrorObject(code=code, message=message)
        return self._event("response.failed", response=self._snapshot())

    def search_started(self, img_idx: int) -> tuple[StreamEvent, ImageSearchCallItem, int]:
        item = ImageSearchCallItem(
            id=new_item_id(),
            status="in_progress",
            name=IMAGE_SEARCH_TOOL,
            arguments=json.dumps({"img_idx": img_idx, "bbox": list(FULL_IMAGE_BBOX)}),
        )
        output_index = len(self.response.output)
        self.response.output.append(item)
        added = self._event(
            "response.output_item.added", output_index=output_index, item=item.model_copy()
        )
        return added, item, output_index

    def search_finished(
        self,
        img_idx: int,
        item: ImageSearchCallItem,
        output_index: int,
        matches: Sequence[Match],
    ) -> tuple[SearchOutcome, StreamEvent]:
        hits = [
            SearchHitWire(title=match.entry.title, url=self._hit_url(match.entry), index=rank)
            for rank, match in enumerate(matches, start=1)
        ]
        item.status = "completed"
        item.output = json.dumps(
            [hit.model_dump(include={"title", "url", "index"}) for hit in hits],
            ensure_ascii=False,
        )
        done = self._event(
            "response.output_item.done", output_index=output_index, item=item.model_copy()
        )
        return SearchOutcome(img_idx=img_idx, matches=matches, hits=hits), done

    async def answer(
        self,
        deltas: AsyncIterator[str],
        images: Sequence[InputPicture],
        outcomes: Sequence[SearchOutcome],
    ) -> AsyncIterator[StreamEvent]:
        """The message item streamed from ``deltas``, then ``response.completed``."""
        message = MessageItem(id=new_item_id(), status="in_progress", content=[])
        output_index = len(self.response.output)
        self.response.output.append(message)
        yield self._event(
            "response.output_item.added", output_index=output_index, item=message.model_copy()
        )
        where = {"item_id": message.id, "output_index": output_index, "content_index": 0}
        yield self._event("response.content_part.added", part=OutputTextPart(), **where)
        pieces: list[str] = []
        async for delta in deltas:
            pieces.append(delta)
            yield self._event("response.output_text.delta", delta=delta, **where)
        text = "".join(pieces)
        part = OutputTextPart(text=text)
        yield self._event("response.output_text.done", text=text, **where)
        yield self._event("response.content_part.done", part=part, **where)
        message.status = "completed"
        message.content = [part]
        yield self._event(
            "response.output_item.done", output_index=output_index, item=message.model_copy()
        )
        self.response.usage = estimate_usage(
            prompt=self.request.user_text(),
            image_sizes=[(image.width, image.height) for image in images],
            hits=[hit for outcome in outcomes for hit in outcome.hits],
            answer=text,
            searches=len(outcomes),
        )
        self.response.status = "completed"
        yield self._event("response.completed", response=self._snapshot())
