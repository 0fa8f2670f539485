"""Result caching: repeating a search (same images, query, model and endpoint) costs nothing.

Keys hash the image *content* as sent: local images (paths, bytes, files, PIL images, data
URLs) by their encoded bytes, http(s) images by their URL, since their bytes are never
downloaded here. A cached search is not billed, and the cost callback counts it apart.
"""

from __future__ import annotations

import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

from langchain_qwen_imagesearch.results import ImageSearchResult

# Bumped whenever the key recipe changes, so old entries of a persistent cache never match.
_KEY_VERSION = 1


def search_cache_key(
    image_urls: Sequence[str],
    query: str | None,
    *,
    model: str,
    base_url: str,
    enable_thinking: bool | None,
) -> str:
    """A stable key for one search: SHA-256 over the images as sent and every setting that
    changes the answer."""
    image_digests = [hashlib.sha256(url.encode()).hexdigest() for url in image_urls]
    recipe = [_KEY_VERSION, model, base_url, enable_thinking, query, image_digests]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()


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
