"""Result caching: repeating a search (same images, query, model and endpoint) costs nothing.

Keys are ``PreparedSearch.cache_key``: they hash the image *content* as sent (local images
by their encoded bytes, http(s) images by their URL, whose bytes are never downloaded here).
A cached search is not billed, and the cost callback counts it apart.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict

from langchain_qwen_imagesearch.client import ImageSearchResult


class ImageSearchCache(ABC):
    """Where finished searches are kept. Lookups run inline, so keep them fast."""

    @abstractmethod
    def lookup(self, key: str) -> ImageSearchResult | None:
        """The result stored under ``key``, or ``None``."""

    @abstractmethod
    def update(self, key: str, result: ImageSearchResult) -> None:
        """Store ``result`` under ``key``."""

    @abstractmethod
    def clear(self) -> None:
        """Forget every result."""


class InMemoryImageSearchCache(ImageSearchCache):
    """A thread-safe least-recently-used cache in this process.

    ``maxsize=None`` keeps everything. Results are copied in and out, so a caller that
    edits a result it got never changes what the cache returns next.
    """

    def __init__(self, maxsize: int | None = 1024) -> None:
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"maxsize must be at least 1 (or None for no limit), not {maxsize}")
        self.maxsize = maxsize
        self._entries: OrderedDict[str, ImageSearchResult] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: str) -> ImageSearchResult | None:
        with self._lock:
            result = self._entries.get(key)
            if result is None:
                return None
            self._entries.move_to_end(key)
        return result.model_copy(deep=True)

    def update(self, key: str, result: ImageSearchResult) -> None:
        stored = result.model_copy(deep=True)
        with self._lock:
            self._entries[key] = stored
            self._entries.move_to_end(key)
            if self.maxsize is not None and len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
