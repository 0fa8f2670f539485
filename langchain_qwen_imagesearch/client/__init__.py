"""The client room: images in, a request to the Responses API, a typed result out.

Sync and async, streamed or not. It knows nothing of LangChain or of the embedded server;
it shares only ``langchain_qwen_imagesearch.protocol`` with the server. Its modules are
private: this list is its whole public interface.
"""

from langchain_qwen_imagesearch.client._client import (
    AsyncHttpClient,
    HttpClient,
    Images,
    ImageSearchClient,
)
from langchain_qwen_imagesearch.client._conversation import (
    ConversationItem,
    FunctionResult,
    FunctionTool,
    Turn,
)
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
    MalformedOutputError,
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
from langchain_qwen_imagesearch.client._request import DEFAULT_QUERY, PreparedRequest, ToolChoice
from langchain_qwen_imagesearch.client._results import (
    FunctionCall,
    ImageHit,
    ImageSearchCall,
    ImageSearchResult,
    MalformedHit,
    PreparedImageInfo,
    Usage,
)
from langchain_qwen_imagesearch.client._settings import (
    API_KEY_ENV,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    ClientSettings,
)
from langchain_qwen_imagesearch.protocol import DEFAULT_MODEL

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MODEL",
    "DEFAULT_QUERY",
    "DEFAULT_TIMEOUT_SECONDS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AnswerDelta",
    "AsyncHttpClient",
    "AuthenticationError",
    "BillingError",
    "ClientSettings",
    "ConfigurationError",
    "ContentModerationError",
    "ConversationItem",
    "FunctionCall",
    "FunctionResult",
    "FunctionTool",
    "HttpClient",
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
    "MalformedHit",
    "MalformedOutputError",
    "ModelNotFoundError",
    "NoImageError",
    "PermissionDeniedError",
    "PreparedImageInfo",
    "PreparedRequest",
    "RateLimitError",
    "ResponseFailedError",
    "SearchCompleted",
    "SearchFinished",
    "SearchStarted",
    "ServerError",
    "ServiceUnavailableError",
    "ToolChoice",
    "Turn",
    "Usage",
]
