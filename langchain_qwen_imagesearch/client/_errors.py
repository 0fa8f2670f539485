"""One exception hierarchy for every failure a user can meet; catch ``ImageSearchError``."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from langchain_qwen_imagesearch.protocol import ErrorCode, ResponseObject

if TYPE_CHECKING:
    from langchain_qwen_imagesearch.client._results import ImageSearchCall, ImageSearchResult


class ImageSearchError(Exception):
    """Base class of every error this package raises."""

    retryable: ClassVar[bool] = False


class ConfigurationError(ImageSearchError, ValueError):
    """The client is set up wrongly (missing key, unknown region, ...). Not retried."""


class ImageInputError(ImageSearchError, ValueError):
    """An input image is unusable: unreadable, not an image, or outside the upstream limits.

    ``input`` describes the offending input (never its bytes); ``limit`` names the limit broken.
    """

    def __init__(self, message: str, *, input: str | None = None, limit: str | None = None):
        super().__init__(message)
        self.input = input
        self.limit = limit


class NoImageError(ImageInputError):
    """A search was asked for with no image; the upstream would answer without searching."""


class APIError(ImageSearchError):
    """The service answered with an error. Carries the upstream ``code`` and request id."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.status_code = status_code
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"code={self.code}")
        if self.status_code is not None:
            parts.append(f"http={self.status_code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " | ".join(parts)


class InvalidRequestError(APIError):
    """400 ``InvalidParameter`` and other input errors: fix the request; never retried."""


class ContentModerationError(InvalidRequestError):
    """400 ``DataInspectionFailed``: the input or output was blocked by moderation."""


class BillingError(APIError):
    """400 ``Arrearage``: the account is in arrears."""


class AuthenticationError(APIError):
    """401 ``InvalidApiKey``. Keys belong to one region: use the key of the base URL's region."""


class PermissionDeniedError(APIError):
    """403 ``AccessDenied*`` / ``Model.AccessDenied``."""


class ModelNotFoundError(APIError):
    """404 ``ModelNotFound`` / ``model_not_found``."""


class RateLimitError(APIError):
    """429 ``Throttling*``, or an HTTP 200 response that failed with a rate-limit message."""

    retryable = True


class ServerError(APIError):
    """5xx ``InternalError*`` / ``RequestTimeOut``: transient on the service side."""

    retryable = True


class ServiceUnavailableError(ServerError):
    """503 ``ModelUnavailable``."""


class ResponseFailedError(APIError):
    """The response ended ``failed`` (HTTP 200 or a streamed ``response.failed``/``error``)."""


class MalformedOutputError(ResponseFailedError):
    """A search's output is not the documented JSON list of hits (docs/protocol.md#response).

    ``raw_output`` is the output as received; ``partial_result`` holds everything else the
    response carried (other searches' hits, the answer, usage).
    """

    raw_output: str | None = None
    partial_result: ImageSearchResult | None = None

    @classmethod
    def of(
        cls, call: ImageSearchCall, result: ImageSearchResult, request_id: str | None
    ) -> MalformedOutputError:
        error = cls(
            f"The image search's output is {call.output_error}: raw_output holds it as received.",
            request_id=request_id or result.id,
        )
        error.raw_output = call.raw_output
        error.partial_result = result
        return error


class IncompleteResponseError(APIError):
    """The response ended ``incomplete`` (for example the output token limit was hit).

    ``partial_result`` holds what the response did carry (hits already paid for, usage).
    """

    partial_result: ImageSearchResult | None = None


class APITimeoutError(APIError):
    """No complete answer within the client's timeout (searches can take ~70 s upstream)."""

    retryable = True


class APIConnectionError(APIError):
    """The service could not be reached."""

    retryable = True


_BY_CODE: dict[str, type[APIError]] = {
    ErrorCode.INVALID_PARAMETER: InvalidRequestError,
    ErrorCode.INVALID_REQUEST: InvalidRequestError,
    ErrorCode.DATA_INSPECTION_FAILED: ContentModerationError,
    ErrorCode.DATA_INSPECTION_FAILED_SNAKE: ContentModerationError,
    ErrorCode.ARREARAGE: BillingError,
    ErrorCode.INVALID_API_KEY: AuthenticationError,
    ErrorCode.INVALID_API_KEY_SNAKE: AuthenticationError,
    ErrorCode.MODEL_NOT_FOUND: ModelNotFoundError,
    ErrorCode.MODEL_NOT_FOUND_SNAKE: ModelNotFoundError,
    ErrorCode.MODEL_UNAVAILABLE: ServiceUnavailableError,
    ErrorCode.REQUEST_TIMEOUT: ServerError,
}

_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}

AUTH_HINT = (
    "API keys belong to one region: a Singapore key fails against the Beijing URL and vice "
    "versa. Check DASHSCOPE_API_KEY and the region/base_url you chose."
)


def error_class_for(code: str | None, status_code: int | None, message: str = "") -> type[APIError]:
    """The exception class for an upstream error ``code`` / HTTP status / message."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if code and code.startswith(ErrorCode.THROTTLING):
        return RateLimitError
    if code and code.startswith(ErrorCode.INTERNAL_ERROR):
        return ServerError
    if code and (
        code.startswith(ErrorCode.ACCESS_DENIED) or code.endswith(f".{ErrorCode.ACCESS_DENIED}")
    ):
        return PermissionDeniedError
    if "rate limit" in message.lower():
        return RateLimitError
    if status_code is not None:
        if status_code in _BY_STATUS:
            return _BY_STATUS[status_code]
        if status_code >= 500:
            return ServerError
    return APIError


def make_api_error(
    message: str | None,
    *,
    code: str | None = None,
    request_id: str | None = None,
    status_code: int | None = None,
    retry_after: float | None = None,
    default: type[APIError] = APIError,
) -> APIError:
    """Build the right ``APIError`` subclass; ``default`` applies when nothing is more specific."""
    text = message or "the service returned an error without a message"
    cls = error_class_for(code, status_code, text)
    if cls is APIError:
        cls = default
    if cls is AuthenticationError:
        text = f"{text}. {AUTH_HINT}"
    return cls(
        text, code=code, request_id=request_id, status_code=status_code, retry_after=retry_after
    )


def error_of_ended_response(
    response: ResponseObject, status: str, request_id: str | None
) -> APIError:
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
