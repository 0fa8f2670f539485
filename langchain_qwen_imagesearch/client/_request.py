"""What a finished wire response means for the caller: a typed result, or a typed error.

Streamed and non-streamed calls end here alike, so both give the same result for the same
response. The service reports some failures with HTTP 200 (``status: "failed"``, e.g. rate
limits), so the status is read, never only the HTTP code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_qwen_imagesearch.errors import (
    APIError,
    IncompleteResponseError,
    ResponseFailedError,
    make_api_error,
)
from langchain_qwen_imagesearch.protocol import ResponseObject
from langchain_qwen_imagesearch.results import ImageSearchResult, PreparedImageInfo

FAILED_STATUSES = frozenset({"failed", "cancelled"})


@dataclass(frozen=True)
class SearchContext:
    """What the caller asked for, carried into the result."""

    model: str
    query: str | None
    inputs: list[PreparedImageInfo]


def response_error(response: ResponseObject, request_id: str | None = None) -> APIError | None:
    """The error a ``failed``/``cancelled``/``incomplete`` response stands for, else ``None``."""
    if response.status in FAILED_STATUSES or response.status == "incomplete":
        return ended_error(response, response.status, request_id)
    return None


def ended_error(response: ResponseObject, status: str, request_id: str | None) -> APIError:
    """The error of a response that ended ``status`` (failed, cancelled or incomplete)."""
    request_id = response.request_id or request_id
    if status == "incomplete":
        details = (response.model_extra or {}).get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return IncompleteResponseError(
            f"The response is incomplete ({reason or 'no reason given'}): the service stopped "
            "before finishing the answer.",
            code=reason,
            request_id=request_id,
        )
    error = response.error
    return make_api_error(
        (error.message if error else None) or f"the response ended {status}",
        code=error.code if error else None,
        request_id=request_id,
        default=ResponseFailedError,
    )


def finish(
    response: ResponseObject,
    context: SearchContext,
    *,
    raw: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> ImageSearchResult:
    """The result of a finished response, or its error raised."""
    result = ImageSearchResult.from_response(
        response, query=context.query, inputs=context.inputs, raw=raw
    )
    error = response_error(response, request_id)
    if isinstance(error, IncompleteResponseError):
        error.partial_result = result
    if error is not None:
        raise error
    return result
