"""A request prepared once: its body, its result cache key, and how a response ends.

Preparing reads and converts the images (the costly, blocking part). The prepared request
is then sent as often as retries need, and its key lets a result cache skip paid searches
of the same images, query, model and endpoint. Streamed and non-streamed calls both end in
:meth:`PreparedRequest.finish`, so both give the same result for the same response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from langchain_qwen_imagesearch.client._conversation import (
    ConversationItem,
    FunctionTool,
    Turn,
)
from langchain_qwen_imagesearch.client._errors import (
    ImageInputError,
    IncompleteResponseError,
    MalformedOutputError,
    NoImageError,
    ResponseFailedError,
    error_of_ended_response,
)
from langchain_qwen_imagesearch.client._images import prepare_image
from langchain_qwen_imagesearch.client._results import (
    FunctionCall,
    ImageSearchResult,
    PreparedImageInfo,
)
from langchain_qwen_imagesearch.protocol import (
    FUNCTION_TOOL,
    IMAGE_SEARCH_TOOL,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputContent,
    InputImage,
    InputItem,
    InputMessage,
    InputText,
    ResponseObject,
    ResponsesRequest,
    ToolSpec,
    dump_wire,
)

# The model may answer without searching unless asked to (docs/protocol.md#request:
# tool_choice cannot force the call), so images sent without a text ask for a search.
DEFAULT_QUERY = "Search for images similar to this image and describe what you find."

ToolChoice = str | dict[str, Any] | None
"""``"auto"``, ``"required"``, ``{"type": "function", "name": ...}``, or the service's default.
Not reliable for forcing the image search (docs/protocol.md#request)."""

# Bumped whenever the key recipe changes, so old entries of a persistent cache never match.
_CACHE_KEY_VERSION = 2


@dataclass(frozen=True)
class PreparedRequest:
    """One request, ready to send: build it with ``ImageSearchClient.prepare`` (a search by
    image) or ``prepare_conversation`` (a conversation turn).

    ``query`` is the text of the latest user turn, ``inputs`` describes each image as sent,
    and ``cache_key`` identifies the request (image content, texts, tools, model, endpoint,
    thinking) for a result cache. ``model`` and ``base_url`` are what it is sent to.
    """

    model: str
    base_url: str
    query: str
    inputs: list[PreparedImageInfo]
    body: dict[str, Any] = field(repr=False)

    @classmethod
    def build(
        cls,
        conversation: Sequence[ConversationItem],
        *,
        image_search: bool,
        functions: Sequence[FunctionTool] = (),
        tool_choice: ToolChoice = None,
        model: str,
        base_url: str,
        enable_thinking: bool | None,
    ) -> PreparedRequest:
        """The request for ``conversation``; with ``image_search`` it must hold an image (the
        service would answer without searching: docs/protocol.md#request)."""
        image_count = sum(len(item.images) for item in conversation if isinstance(item, Turn))
        if image_search and image_count == 0:
            raise NoImageError(
                "No image given: pass at least one image (an http(s) URL, a data: URL, a file "
                "path, bytes, a binary file or a PIL image). Without one the service answers "
                "without searching.",
                limit="at least one image",
            )
        last_user = _last_user_turn(conversation)
        items: list[InputItem] = []
        inputs: list[PreparedImageInfo] = []
        for item in conversation:
            if isinstance(item, Turn):
                text = item.text
                if item is last_user and item.images and not text.strip():
                    text = DEFAULT_QUERY
                message, infos = _message(item, text, len(inputs), image_count)
                items.append(message)
                inputs.extend(infos)
            elif isinstance(item, FunctionCall):
                items.append(
                    FunctionCallItem(call_id=item.call_id, name=item.name, arguments=item.arguments)
                )
            else:
                items.append(FunctionCallOutputItem(call_id=item.call_id, output=item.output))
        tools = [ToolSpec(type=IMAGE_SEARCH_TOOL)] if image_search else []
        tools += [
            ToolSpec(
                type=FUNCTION_TOOL,
                name=function.name,
                description=function.description,
                parameters=dict(function.parameters),
            )
            for function in functions
        ]
        request = ResponsesRequest(model=model, input=items, tools=tools, tool_choice=tool_choice)
        body = dump_wire(request)
        if enable_thinking is not None:
            body["enable_thinking"] = enable_thinking
        query = last_user.text if last_user and last_user.text.strip() else DEFAULT_QUERY
        return cls(model=model, base_url=base_url, query=query, inputs=inputs, body=body)

    @property
    def offers_image_search(self) -> bool:
        """Whether the model may search by image (the ``image_search`` tool is offered)."""
        return any(tool.get("type") == IMAGE_SEARCH_TOOL for tool in self.body.get("tools", []))

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
        unreadable = [call for call in result.calls if call.output_error]
        if unreadable:
            raise MalformedOutputError.of(unreadable[0], result, request_id)
        if response.status in ("failed", "cancelled", "incomplete"):
            error = error_of_ended_response(response, response.status, request_id)
            if isinstance(error, IncompleteResponseError):
                error.partial_result = result
            raise error
        return result


def _last_user_turn(conversation: Sequence[ConversationItem]) -> Turn | None:
    return next(
        (item for item in reversed(conversation) if isinstance(item, Turn) and item.role == "user"),
        None,
    )


def _message(
    turn: Turn, text: str, images_before: int, image_count: int
) -> tuple[InputMessage, list[PreparedImageInfo]]:
    """The wire message of one turn; images are numbered across the whole conversation."""
    if turn.role != "user":
        if turn.images:
            raise ImageInputError(
                f"a {turn.role} turn holds images; only user turns can carry them",
                input=f"{turn.role} turn",
                limit="images in user turns",
            )
        return InputMessage(role=turn.role, content=text), []
    numbered = image_count > 1
    prepared = [
        prepare_image(
            image,
            position=f"image {images_before + n} of {image_count}" if numbered else None,
        )
        for n, image in enumerate(turn.images, start=1)
    ]
    content: list[InputContent] = [InputText(text=text)] if text else []
    content.extend(InputImage(image_url=image.image_url) for image in prepared)
    return InputMessage(role="user", content=content), [image.info for image in prepared]
