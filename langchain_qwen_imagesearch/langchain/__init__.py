"""The LangChain room: runnable, tool, toolkit, LangGraph node, chat model, cost callback and
result cache, built on the client's public names only (no HTTP code here).

Its modules are private: this list is its whole public interface.
"""

from langchain_qwen_imagesearch.langchain._chat import ChatQwenImageSearch
from langchain_qwen_imagesearch.langchain._cost import (
    INTERNATIONAL_FEE_PER_1000_CALLS,
    MAINLAND_FEE_PER_1000_CALLS,
    USAGE_EVENT,
    ImageSearchCostHandler,
    SearchUsageReport,
    get_image_search_callback,
)
from langchain_qwen_imagesearch.langchain._graph import create_image_search_node
from langchain_qwen_imagesearch.langchain._history import ImageSearchMode, portable_history
from langchain_qwen_imagesearch.langchain._results import (
    QwenImageSearchResult,
    image_search_result,
)
from langchain_qwen_imagesearch.langchain._runnable import (
    ImageSearchInput,
    ImageSearchRequest,
    QwenImageSearch,
)
from langchain_qwen_imagesearch.langchain._search_run import IMAGE_SEARCH_EVENT
from langchain_qwen_imagesearch.langchain._tool import ImageSearchToolInput, QwenImageSearchTool
from langchain_qwen_imagesearch.langchain._toolkit import (
    QwenImageSearchResultsTool,
    QwenImageSearchToolkit,
)

__all__ = [
    "IMAGE_SEARCH_EVENT",
    "INTERNATIONAL_FEE_PER_1000_CALLS",
    "MAINLAND_FEE_PER_1000_CALLS",
    "USAGE_EVENT",
    "ChatQwenImageSearch",
    "ImageSearchCostHandler",
    "ImageSearchInput",
    "ImageSearchMode",
    "ImageSearchRequest",
    "ImageSearchToolInput",
    "QwenImageSearch",
    "QwenImageSearchResult",
    "QwenImageSearchResultsTool",
    "QwenImageSearchTool",
    "QwenImageSearchToolkit",
    "SearchUsageReport",
    "create_image_search_node",
    "get_image_search_callback",
    "image_search_result",
    "portable_history",
]
