"""Which catalog entries a search returns, and which count as the same picture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from langchain_qwen_imagesearch.server.store.catalog_files import CatalogEntry


@dataclass(frozen=True)
class Match:
    """A search hit."""

    entry: CatalogEntry
    score: float
    """Cosine similarity of the descriptors, in [-1, 1]; higher is closer."""
    near_duplicate: bool
    """The score is high enough for the hit to be the same picture, edited."""


@dataclass(frozen=True)
class HitRule:
    """Which scores make hits, and which hits are the same picture.

    The defaults are calibrated in docs/search-engine.md on the scores of edited copies
    against those of unrelated pictures (tests/benchmarks/bench_search_engine.py).
    """

    min_score: float = 0.6
    """No hit scores below this: unrelated photos rarely reach it, edited copies almost always
    do. A query unrelated to the whole catalog gets no hits rather than padding."""
    relative_margin: float = 0.15
    """Hits also score within this of the best hit: next to a close match, entries far below
    it are not similar in the same sense."""
    near_duplicate_score: float = 0.8
    """From this score on, a hit is taken for the same picture (an edited copy)."""

    def select(self, scores: NDArray[np.float32]) -> int:
        """How many of ``scores`` (sorted best first) are hits."""
        if not len(scores):
            return 0
        cutoff = max(self.min_score, float(scores[0]) - self.relative_margin)
        return int(np.count_nonzero(scores >= cutoff))


DEFAULT_HIT_RULE = HitRule()
