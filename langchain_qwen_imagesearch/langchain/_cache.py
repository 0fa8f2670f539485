"""Result caching: repeating a search (same images, query, model and endpoint) costs nothing.

Any LangChain ``BaseCache`` holds the results: ``InMemoryCache`` in the process, or a
persistent one (``SQLiteCache``, Redis, ...) across processes. Keys are
``PreparedRequest.cache_key``: they hash the image *content* as sent (local images by their
encoded bytes, http(s) images by their URL), the query, the model and the endpoint. Results
are stored as their JSON and come back typed. A cached search is not billed, and the cost
callback counts it apart.
"""

from __future__ import annotations

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.outputs import Generation

from langchain_qwen_imagesearch.client import ImageSearchResult
from langchain_qwen_imagesearch.langchain._results import QwenImageSearchResult

# The "llm_string" half of the cache key: what kind of entry this is. Bumped when the
# stored form changes, so a persistent cache never returns an entry it cannot read.
CACHE_NAMESPACE = "langchain-qwen-imagesearch/result/v1"


def cached_result(found: RETURN_VAL_TYPE | None) -> QwenImageSearchResult | None:
    """The result a cache lookup found, or ``None`` (also for an entry it cannot read)."""
    if not found:
        return None
    try:
        return QwenImageSearchResult.model_validate_json(found[0].text)
    except ValueError:
        return None


def cache_entry(result: ImageSearchResult) -> list[Generation]:
    return [Generation(text=result.model_dump_json())]


def lookup(cache: BaseCache, key: str) -> QwenImageSearchResult | None:
    return cached_result(cache.lookup(key, CACHE_NAMESPACE))


async def alookup(cache: BaseCache, key: str) -> QwenImageSearchResult | None:
    return cached_result(await cache.alookup(key, CACHE_NAMESPACE))


def store(cache: BaseCache, key: str, result: ImageSearchResult) -> None:
    cache.update(key, CACHE_NAMESPACE, cache_entry(result))


async def astore(cache: BaseCache, key: str, result: ImageSearchResult) -> None:
    await cache.aupdate(key, CACHE_NAMESPACE, cache_entry(result))
