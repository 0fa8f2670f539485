"""The client room: images in, a request to the Responses API, a typed result out.

Sync and async, streamed or not. It knows nothing of LangChain or of the embedded server;
it shares only ``langchain_qwen_imagesearch.protocol`` with the server. Its modules are
private: this list is its whole public interface.
"""

from langchain_qwen_imagesearch.client._client import Images, ImageSearchClient
from langchain_qwen_imagesearch.client._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BillingError,
    ConfigurationError,
    ContentModerationError,
    ImageInputError,
    ImageSearchError,
    IncompleteResponseError,
    InvalidRequestError,
    ModelNotFoundError,
    NoImageError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFailedError,
    ServerError,
    ServiceUnavailableError,
)
from langchain_qwen_imagesearch.client._events import (
    AnswerDelta,
    ImageSearchEvent,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
)
from langchain_qwen_imagesearch.client._images import ImageInput
from langchain_qwen_imagesearch.client._request import DEFAULT_QUERY, PreparedSearch
from langchain_qwen_imagesearch.client._results import (
    ImageHit,
    ImageSearchCall,
    ImageSearchResult,
    PreparedImageInfo,
    Usage,
)
from langchain_qwen_imagesearch.client._settings import (
    API_KEY_ENV,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    ClientSettings,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_QUERY",
    "DEFAULT_TIMEOUT_SECONDS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AnswerDelta",
    "AuthenticationError",
    "BillingError",
    "ClientSettings",
    "ConfigurationError",
    "ContentModerationError",
    "ImageHit",
    "ImageInput",
    "ImageInputError",
    "ImageSearchCall",
    "ImageSearchClient",
    "ImageSearchError",
    "ImageSearchEvent",
    "ImageSearchResult",
    "Images",
    "IncompleteResponseError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoImageError",
    "PermissionDeniedError",
    "PreparedImageInfo",
    "PreparedSearch",
    "RateLimitError",
    "ResponseFailedError",
    "SearchCompleted",
    "SearchFinished",
    "SearchStarted",
    "ServerError",
    "ServiceUnavailableError",
    "Usage",
]
