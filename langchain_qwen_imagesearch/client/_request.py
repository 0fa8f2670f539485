"""A search prepared once: the request body, the result cache key, and how a response ends.

Preparing reads and converts the images (the costly, blocking part). The prepared search is
then sent as often as retries need, and its key lets a result cache skip paid searches of
the same images, query, model and endpoint. Streamed and non-streamed calls both end in
:meth:`PreparedSearch.finish`, so both give the same result for the same response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from langchain_qwen_imagesearch.client._errors import (
    IncompleteResponseError,
    ResponseFailedError,
    error_of_ended_response,
)
from langchain_qwen_imagesearch.client._images import PreparedImage
from langchain_qwen_imagesearch.client._results import ImageSearchResult, PreparedImageInfo
from langchain_qwen_imagesearch.protocol import (
    IMAGE_SEARCH_TOOL,
    InputContent,
    InputImage,
    InputMessage,
    InputText,
    ResponseObject,
    ResponsesRequest,
    ToolSpec,
    dump_wire,
)

# The model may answer without searching unless asked to (docs/protocol.md#request:
# tool_choice cannot force the call), so a search without a query asks for one.
DEFAULT_QUERY = "Search for images similar to this image and describe what you find."

# Bumped whenever the key recipe changes, so old entries of a persistent cache never match.
_CACHE_KEY_VERSION = 2


@dataclass(frozen=True)
class PreparedSearch:
    """One search by image, ready to send: build it with ``ImageSearchClient.prepare``.

    ``query`` is the text sent with the images, ``inputs`` describes each image as sent, and
    ``cache_key`` identifies the search (image content, query, model, endpoint, thinking) for
    a result cache. ``model`` and ``base_url`` are those of the client that prepared it.
    """

    model: str
    base_url: str
    query: str
    inputs: list[PreparedImageInfo]
    body: dict[str, Any] = field(repr=False)

    @classmethod
    def build(
        cls,
        images: Sequence[PreparedImage],
        query: str | None,
        *,
        model: str,
        base_url: str,
        enable_thinking: bool | None,
    ) -> PreparedSearch:
        text = query if query and query.strip() else DEFAULT_QUERY
        content: list[InputContent] = [InputText(text=text)]
        content.extend(InputImage(image_url=image.image_url) for image in images)
        request = ResponsesRequest(
            model=model,
            input=[InputMessage(role="user", content=content)],
            tools=[ToolSpec(type=IMAGE_SEARCH_TOOL)],
        )
        body = dump_wire(request)
        if enable_thinking is not None:
            body["enable_thinking"] = enable_thinking
        return cls(
            model=model,
            base_url=base_url,
            query=text,
            inputs=[image.info for image in images],
            body=body,
        )

    @cached_property
    def cache_key(self) -> str:
        """SHA-256 over everything that changes the answer: images as sent, query, model,
        thinking and the endpoint (keys and answers belong to a region)."""
        recipe = [_CACHE_KEY_VERSION, self.base_url, self.body]
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()

    def stream_body(self) -> dict[str, Any]:
        return {**self.body, "stream": True}

    def result_of_payload(self, payload: object) -> ImageSearchResult:
        """The result of a non-streamed answer (its JSON as received)."""
        if not isinstance(payload, dict):
            raise ResponseFailedError(f"The service answered with non-JSON: {str(payload)[:200]}")
        try:
            response = ResponseObject.model_validate(payload)
        except ValidationError as error:
            raise ResponseFailedError(f"The service sent a malformed response: {error}") from None
        return self.finish(response, raw=payload)

    def finish(
        self,
        response: ResponseObject,
        *,
        raw: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> ImageSearchResult:
        """The result of a finished response, or its error raised.

        The service reports some failures with HTTP 200 (``status: "failed"``, e.g. rate
        limits), so the status is read, never only the HTTP code.
        """
        result = ImageSearchResult.from_response(
            response, query=self.query, inputs=self.inputs, raw=raw
        )
        if response.status in ("failed", "cancelled", "incomplete"):
            error = error_of_ended_response(response, response.status, request_id)
            if isinstance(error, IncompleteResponseError):
                error.partial_result = result
            raise error
        return result
