"""Errors the server answers with, shaped like the upstream's (docs/protocol.md#errors)."""

from __future__ import annotations

from typing import Literal

from langchain_qwen_imagesearch.protocol import IMAGE_SEARCH_TOOL, ErrorCode

Envelope = Literal["flat", "openai"]


class ErrorAnswer(Exception):
    """An error answered to the caller as the upstream would: HTTP status, code, message,
    and which of its two envelopes carries them."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        envelope: Envelope = "openai",
        error_type: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.envelope = envelope
        self.error_type = error_type


def invalid_parameter(message: str) -> ErrorAnswer:
    return ErrorAnswer(400, ErrorCode.INVALID_PARAMETER, message)


def invalid_api_key() -> ErrorAnswer:
    return ErrorAnswer(
        401,
        ErrorCode.INVALID_API_KEY,
        "Invalid API-key provided.",
        envelope="flat",
        error_type="authentication_error",
    )


def model_not_found(model: str) -> ErrorAnswer:
    return ErrorAnswer(
        404,
        ErrorCode.MODEL_NOT_FOUND,
        f"The model `{model}` does not exist or does not support the {IMAGE_SEARCH_TOOL} tool.",
    )
