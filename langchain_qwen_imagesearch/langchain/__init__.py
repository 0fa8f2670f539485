"""The LangChain and LangGraph surface: runnable, tool, toolkit, graph node, chat model,
cost callback and result cache."""

from langchain_qwen_imagesearch.langchain.cache import (
    ImageSearchCache,
    InMemoryImageSearchCache,
    search_cache_key,
)
from langchain_qwen_imagesearch.langchain.chat import ChatQwenImageSearch
from langchain_qwen_imagesearch.langchain.cost import (
    INTERNATIONAL_FEE_PER_1000_CALLS,
    MAINLAND_FEE_PER_1000_CALLS,
    USAGE_EVENT,
    ImageSearchCostHandler,
    SearchUsageReport,
    get_image_search_callback,
)
from langchain_qwen_imagesearch.langchain.engine import IMAGE_SEARCH_EVENT, ImageSearchEngine
from langchain_qwen_imagesearch.langchain.graph import create_image_search_node
from langchain_qwen_imagesearch.langchain.messages import (
    conversation_images,
    conversation_request,
    image_search_result,
    message_images,
)
from langchain_qwen_imagesearch.langchain.runnable import (
    ImageSearchInput,
    ImageSearchRequest,
    QwenImageSearch,
)
from langchain_qwen_imagesearch.langchain.tool import ImageSearchToolInput, QwenImageSearchTool
from langchain_qwen_imagesearch.langchain.toolkit import (
    QwenImageSearchResultsTool,
    QwenImageSearchToolkit,
)

__all__ = [
    "IMAGE_SEARCH_EVENT",
    "INTERNATIONAL_FEE_PER_1000_CALLS",
    "MAINLAND_FEE_PER_1000_CALLS",
    "USAGE_EVENT",
    "ChatQwenImageSearch",
    "ImageSearchCache",
    "ImageSearchCostHandler",
    "ImageSearchEngine",
    "ImageSearchInput",
    "ImageSearchRequest",
    "ImageSearchToolInput",
    "InMemoryImageSearchCache",
    "QwenImageSearch",
    "QwenImageSearchResultsTool",
    "QwenImageSearchTool",
    "QwenImageSearchToolkit",
    "SearchUsageReport",
    "conversation_images",
    "conversation_request",
    "create_image_search_node",
    "get_image_search_callback",
    "image_search_result",
    "message_images",
    "search_cache_key",
]
