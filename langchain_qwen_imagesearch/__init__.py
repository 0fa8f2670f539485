"""Search by image with Qwen on Alibaba Cloud Model Studio, as LangChain building blocks.

Names are imported lazily: ``import langchain_qwen_imagesearch`` stays cheap, and the
client can be used without loading LangChain or LangGraph.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_qwen_imagesearch.client import ImageSearchClient
    from langchain_qwen_imagesearch.errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        ConfigurationError,
        ImageInputError,
        ImageSearchError,
        NoImageError,
        RateLimitError,
        ResponseFailedError,
    )
    from langchain_qwen_imagesearch.events import (
        AnswerDelta,
        ImageSearchEvent,
        SearchCompleted,
        SearchFinished,
        SearchStarted,
    )
    from langchain_qwen_imagesearch.langchain.chat import ChatQwenImageSearch
    from langchain_qwen_imagesearch.langchain.cost import get_image_search_callback
    from langchain_qwen_imagesearch.langchain.graph import create_image_search_node
    from langchain_qwen_imagesearch.langchain.runnable import QwenImageSearch
    from langchain_qwen_imagesearch.langchain.tool import QwenImageSearchTool
    from langchain_qwen_imagesearch.langchain.toolkit import QwenImageSearchToolkit
    from langchain_qwen_imagesearch.results import (
        ImageHit,
        ImageSearchCall,
        ImageSearchResult,
        PreparedImageInfo,
        Usage,
    )

_EXPORTS: dict[str, str] = {
    "ImageSearchClient": "client",
    "ImageSearchResult": "results",
    "ImageHit": "results",
    "ImageSearchCall": "results",
    "PreparedImageInfo": "results",
    "Usage": "results",
    "ImageSearchEvent": "events",
    "SearchStarted": "events",
    "SearchFinished": "events",
    "AnswerDelta": "events",
    "SearchCompleted": "events",
    "ImageSearchError": "errors",
    "ConfigurationError": "errors",
    "ImageInputError": "errors",
    "NoImageError": "errors",
    "APIError": "errors",
    "AuthenticationError": "errors",
    "RateLimitError": "errors",
    "ResponseFailedError": "errors",
    "APITimeoutError": "errors",
    "APIConnectionError": "errors",
    "QwenImageSearch": "langchain.runnable",
    "QwenImageSearchTool": "langchain.tool",
    "QwenImageSearchToolkit": "langchain.toolkit",
    "ChatQwenImageSearch": "langchain.chat",
    "create_image_search_node": "langchain.graph",
    "get_image_search_callback": "langchain.cost",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AnswerDelta",
    "AuthenticationError",
    "ChatQwenImageSearch",
    "ConfigurationError",
    "ImageHit",
    "ImageInputError",
    "ImageSearchCall",
    "ImageSearchClient",
    "ImageSearchError",
    "ImageSearchEvent",
    "ImageSearchResult",
    "NoImageError",
    "PreparedImageInfo",
    "QwenImageSearch",
    "QwenImageSearchTool",
    "QwenImageSearchToolkit",
    "RateLimitError",
    "ResponseFailedError",
    "SearchCompleted",
    "SearchFinished",
    "SearchStarted",
    "Usage",
    "create_image_search_node",
    "get_image_search_callback",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
