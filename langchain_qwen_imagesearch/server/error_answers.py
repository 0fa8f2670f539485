"""Errors the server answers with, shaped like the upstream's (code, message, HTTP status)."""

from __future__ import annotations

from typing import Literal

Envelope = Literal["flat", "openai"]


class UpstreamError(Exception):
    """An error answered to the caller exactly as the upstream would."""

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


def invalid_parameter(message: str) -> UpstreamError:
    return UpstreamError(400, "InvalidParameter", message)


def invalid_api_key() -> UpstreamError:
    return UpstreamError(
        401,
        "InvalidApiKey",
        "Invalid API-key provided.",
        envelope="flat",
        error_type="authentication_error",
    )
