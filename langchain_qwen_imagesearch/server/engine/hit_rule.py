"""Which catalog entries a search returns, and which count as the same picture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry


@dataclass(frozen=True)
class Match:
    """A search hit."""

    entry: CatalogEntry
    score: float
    """Cosine similarity of the descriptors that found the hit, in [-1, 1]; higher is
    closer: appearance for an edited copy, meaning for a similar image."""
    near_duplicate: bool
    """The hit is taken for the same picture, edited (else it is only similar)."""

    @property
    def kind(self) -> str:
        return "same picture" if self.near_duplicate else "similar"


@dataclass(frozen=True)
class HitRule:
    """Which scores make hits, and which hits are the same picture.

    The defaults are calibrated in docs/search-engine.md on the scores of edited copies
    against those of unrelated pictures (tests/benchmarks/bench_search_engine.py).
    """

    near_duplicate_score: float = 0.8
    """From this appearance score on, a hit is taken for the same picture (an edited copy)..."""
    same_picture_meaning: float = 0.4
    """... if its meaning score is at least this too: every edited copy measured scores above
    it, while pictures of another kind that merely share a layout and colours (dark
    wallpapers) score far below."""
    similar_score: float = 0.15
    """The meaning score from which an image is similar (same kind of thing, same style):
    below it, neighbours are more often of another kind than of the same."""
    min_score: float = 0.6
    """In a catalog without meaning descriptors, no hit has a lower appearance score:
    unrelated photos rarely reach it, edited copies almost always do."""
    relative_margin: float = 0.15
    """In a catalog without meaning descriptors, hits also score within this of the best:
    next to a close match, entries far below it are not similar in the same sense."""

    def select(self, scores: NDArray[np.float32]) -> int:
        """How many of ``scores`` (appearance scores, sorted best first) are hits in a catalog
        without meaning descriptors."""
        if not len(scores):
            return 0
        cutoff = max(self.min_score, float(scores[0]) - self.relative_margin)
        return int(np.count_nonzero(scores >= cutoff))


DEFAULT_HIT_RULE = HitRule()
