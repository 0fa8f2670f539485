"""Typed events a streamed search yields, in the order they happen."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from langchain_qwen_imagesearch.client._results import ImageHit, ImageSearchResult


class SearchStarted(BaseModel):
    """The model began searching one input image (``img_idx``) over region ``bbox``."""

    type: Literal["search_started"] = "search_started"
    call_id: str | None = None
    img_idx: int = 0
    bbox: list[float] | None = None


class SearchFinished(BaseModel):
    """One search returned its hits (possibly none)."""

    type: Literal["search_finished"] = "search_finished"
    call_id: str | None = None
    img_idx: int = 0
    bbox: list[float] | None = None
    status: str | None = None
    hits: list[ImageHit] = Field(default_factory=list)


class AnswerDelta(BaseModel):
    """A piece of the model's answer text."""

    type: Literal["answer_delta"] = "answer_delta"
    delta: str


class SearchCompleted(BaseModel):
    """The last event: the same result the non-streamed call returns."""

    type: Literal["search_completed"] = "search_completed"
    result: ImageSearchResult


ImageSearchEvent = Annotated[
    SearchStarted | SearchFinished | AnswerDelta | SearchCompleted, Field(discriminator="type")
]
