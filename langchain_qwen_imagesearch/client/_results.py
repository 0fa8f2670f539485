"""The typed result of a search by image, built from a wire response."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from langchain_qwen_imagesearch.client._gallery import gallery_html
from langchain_qwen_imagesearch.protocol import (
    IMAGE_SEARCH_TOOL,
    ImageSearchCallItem,
    ResponseObject,
    dump_wire,
)

logger = logging.getLogger("langchain_qwen_imagesearch.client")


class ImageHit(BaseModel):
    """One image the search found: its 1-based rank, title and source URL."""

    model_config = ConfigDict(frozen=True)

    index: int
    title: str
    url: str


class MalformedHit(BaseModel):
    """An entry of a search's output that is not a hit (kept out of ``hits``), and why."""

    model_config = ConfigDict(frozen=True)

    entry: str = Field(description="the entry as received, as JSON")
    problem: str


class ImageSearchCall(BaseModel):
    """One ``image_search`` tool call: which input image, which region, what it found."""

    id: str | None = None
    img_idx: int = Field(default=0, description="0-based index of the input image searched")
    bbox: list[float] | None = Field(
        default=None, description="searched region, [x1, y1, x2, y2] on 0-1000"
    )
    status: str | None = None
    hits: list[ImageHit] = Field(default_factory=list)
    malformed_hits: list[MalformedHit] = Field(
        default_factory=list, description="entries of the output that are no hits, and why"
    )
    output_error: str | None = Field(
        default=None, description="why the whole output is not the documented list of hits"
    )
    raw_output: str | None = Field(
        default=None, description="the output as received, kept when it could not be read"
    )

    @classmethod
    def from_item(cls, item: ImageSearchCallItem) -> ImageSearchCall:
        arguments = item.parsed_arguments()
        parsed = item.parsed_output()
        if parsed.malformed or parsed.error:
            logger.warning(
                "image_search_call %s: %s",
                item.id,
                parsed.error or f"{len(parsed.malformed)} entries are no hits",
            )
        return cls(
            id=item.id,
            img_idx=arguments.img_idx,
            bbox=arguments.bbox,
            status=item.status,
            hits=[ImageHit(index=h.index, title=h.title, url=h.url) for h in parsed.hits],
            malformed_hits=[
                MalformedHit(entry=m.entry, problem=m.problem) for m in parsed.malformed
            ],
            output_error=parsed.error,
            raw_output=item.output if parsed.error or parsed.malformed else None,
        )


class FunctionCall(BaseModel):
    """The model's call of one of the caller's function tools; ``arguments`` is JSON text."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    name: str
    arguments: str = "{}"
    id: str | None = None


class Usage(BaseModel):
    """Token usage and built-in tool calls; every field may be missing upstream."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    tool_calls: dict[str, int] = Field(
        default_factory=dict, description="built-in tool name -> call count (usage.x_tools)"
    )

    @property
    def image_search_calls(self) -> int:
        return self.tool_calls.get(IMAGE_SEARCH_TOOL, 0)


class PreparedImageInfo(BaseModel):
    """What was sent for one input image, and whether it had to be converted."""

    source: str = Field(description="short description of what the user gave")
    kind: str = Field(description="url | data_url | path | bytes | file | pil")
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    sent_bytes: int | None = Field(
        default=None, description="size of the encoded image sent, if local"
    )
    converted: bool = False
    conversion: str | None = Field(default=None, description="why and how the image was converted")


class ImageSearchResult(BaseModel):
    """Structured hits plus the model's inference, usage and the raw wire response."""

    id: str | None = None
    model: str | None = None
    status: str | None = None
    hits: list[ImageHit] = Field(
        default_factory=list, description="all hits, de-duplicated by URL across calls, in order"
    )
    calls: list[ImageSearchCall] = Field(default_factory=list)
    answer: str = Field(default="", description="the model's inference (text of the message items)")
    function_calls: list[FunctionCall] = Field(
        default_factory=list, description="calls of the caller's function tools, in order"
    )
    usage: Usage = Field(default_factory=Usage)
    query: str | None = None
    inputs: list[PreparedImageInfo] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict, description="the wire response as JSON")

    @classmethod
    def from_response(
        cls,
        response: ResponseObject,
        *,
        query: str | None = None,
        inputs: list[PreparedImageInfo] | None = None,
        raw: dict[str, Any] | None = None,
    ) -> ImageSearchResult:
        calls = [ImageSearchCall.from_item(item) for item in response.image_search_calls()]
        seen: set[str] = set()
        hits: list[ImageHit] = []
        for call in calls:
            for hit in call.hits:
                if hit.url not in seen:
                    seen.add(hit.url)
                    hits.append(hit)
        return cls(
            id=response.id,
            model=response.model,
            status=response.status,
            hits=hits,
            calls=calls,
            answer=response.answer_text(),
            function_calls=[
                FunctionCall(
                    call_id=item.call_id, name=item.name, arguments=item.arguments, id=item.id
                )
                for item in response.function_calls()
            ],
            usage=_usage_of(response),
            query=query,
            inputs=inputs or [],
            raw=raw if raw is not None else dump_wire(response),
        )

    def _repr_html_(self) -> str:
        return gallery_html(
            query=self.query,
            hits=[(hit.title, hit.url) for hit in self.hits],
            answer=self.answer,
            footer=self._usage_line(),
        )

    def _usage_line(self) -> str:
        pieces = [f"{len(self.hits)} hits", f"{self.usage.image_search_calls} image_search call(s)"]
        if self.usage.total_tokens is not None:
            pieces.append(f"{self.usage.total_tokens:,} tokens")
        if self.model:
            pieces.append(self.model)
        return " · ".join(pieces)


def _usage_of(response: ResponseObject) -> Usage:
    wire = response.usage
    if wire is None:
        return Usage()
    return Usage(
        input_tokens=wire.input_tokens,
        output_tokens=wire.output_tokens,
        total_tokens=wire.total_tokens,
        cached_tokens=wire.input_tokens_details.cached_tokens
        if wire.input_tokens_details
        else None,
        reasoning_tokens=(
            wire.output_tokens_details.reasoning_tokens if wire.output_tokens_details else None
        ),
        tool_calls={
            name: tool.count
            for name, tool in (wire.x_tools or {}).items()
            if tool.count is not None
        },
    )
