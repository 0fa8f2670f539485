"""The searchable catalog: entries, their two descriptors in vector indexes, and the hit rule.

A search returns the catalog's edited copies of the query first (by appearance: the
calibrated near-duplicate rule), then the images whose meaning is close to the query's
(same kind of thing, same style), best first, up to the upstream's 100.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from langchain_qwen_imagesearch.protocol import MAX_HITS_PER_SEARCH
from langchain_qwen_imagesearch.server.engine.appearance import (
    APPEARANCE_DIM,
    APPEARANCE_VERSION,
    appearance_with_mirror,
)
from langchain_qwen_imagesearch.server.engine.hit_rule import DEFAULT_HIT_RULE, HitRule, Match
from langchain_qwen_imagesearch.server.engine.meaning.encoder import (
    MEANING_DIM,
    MEANING_MODEL,
    shared_encoder,
)
from langchain_qwen_imagesearch.server.engine.meaning.space import centred_query
from langchain_qwen_imagesearch.server.engine.vector_index import VectorIndex, best_of
from langchain_qwen_imagesearch.server.store.catalog_files import (
    CatalogEntry,
    StoredCatalog,
    StoredMeaning,
    read_catalog,
)

logger = logging.getLogger(__name__)


class Catalog:
    """Indexed images and their descriptors, searchable by image."""

    def __init__(
        self,
        entries: Sequence[CatalogEntry],
        appearance: ArrayLike,
        meaning: StoredMeaning | None = None,
        *,
        hit_rule: HitRule = DEFAULT_HIT_RULE,
    ) -> None:
        """A catalog from ready descriptors (one row per entry each), as :meth:`open` builds
        it; tests and benchmarks can pass synthetic vectors. Without ``meaning`` it finds
        edited copies only."""
        self._appearance = _index_of(appearance, len(entries), APPEARANCE_DIM, "appearance")
        self._meaning = None
        self._meaning_centre = np.zeros(MEANING_DIM, np.float32)
        if meaning is not None:
            self._meaning = _index_of(meaning.units, len(entries), MEANING_DIM, "meaning")
            self._meaning_centre = meaning.centre
        self._entries = tuple(entries)
        self._by_id = {entry.id: entry for entry in self._entries}
        if len(self._by_id) != len(self._entries):
            raise ValueError("entry ids must be unique")
        self.hit_rule = hit_rule

    @classmethod
    def open(cls, directory: str | Path, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> Catalog:
        """Load the catalog that ``build_catalog`` wrote into ``directory``.

        Raises ``CatalogError``, saying how to rebuild it, if there is none or it is damaged
        or was built by an incompatible version.
        """
        folder = Path(directory).expanduser().resolve()
        stored = read_catalog(
            folder,
            appearance_version=APPEARANCE_VERSION,
            appearance_dim=APPEARANCE_DIM,
            meaning_model=MEANING_MODEL,
            meaning_dim=MEANING_DIM,
        )
        if stored.meaning is None:
            logger.warning(
                "The catalog in %s has no meaning descriptors (it was built by an earlier "
                "version): searches find edited copies only. Run `qwen-imagesearch index "
                "SRC --catalog %s` to add them.",
                folder,
                folder,
            )
        else:
            shared_encoder()  # built now rather than during the first search
        return cls.of_stored(stored, hit_rule=hit_rule)

    @classmethod
    def of_stored(cls, stored: StoredCatalog, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> Catalog:
        return cls(stored.entries, stored.appearance, stored.meaning, hit_rule=hit_rule)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def searches_by_meaning(self) -> bool:
        """Whether searches also find similar images, not only edited copies."""
        return self._meaning is not None

    def entries(self) -> tuple[CatalogEntry, ...]:
        """All entries, in catalog order."""
        return self._entries

    def get(self, entry_id: str) -> CatalogEntry | None:
        return self._by_id.get(entry_id)

    def search(self, image: Image.Image, limit: int = MAX_HITS_PER_SEARCH) -> list[Match]:
        """Catalog images that are edited copies of ``image`` (as is or mirrored), then
        images like it, best first; at most ``limit`` (1 to 100), possibly none."""
        meaning = None
        if self._meaning is not None:
            meaning = centred_query(self._meaning_centre, shared_encoder().embed([image])[0])
        return self.search_vectors(appearance_with_mirror(image), meaning, limit)

    def search_vectors(
        self,
        appearance: ArrayLike,
        meaning: ArrayLike | None = None,
        limit: int = MAX_HITS_PER_SEARCH,
    ) -> list[Match]:
        """:meth:`search` for ready descriptors: ``appearance`` one per row (each entry keeps
        its best), ``meaning`` one vector, centred in the catalog's space (``centred_query``)."""
        if not 1 <= limit <= MAX_HITS_PER_SEARCH:
            raise ValueError(f"limit must be between 1 and {MAX_HITS_PER_SEARCH}, got {limit}")
        rule = self.hit_rule
        if self._meaning is None or meaning is None:
            best = self._appearance.search(appearance, limit, min_score=rule.min_score)
            hits = rule.select(best.scores)
            return self._matches(best.rows[:hits], best.scores[:hits], rule.near_duplicate_score)
        looks = self._appearance.scores(appearance)
        means = self._meaning.scores(meaning)
        # An edited copy looks like the query and shows the same thing: both must agree.
        same = (looks >= rule.near_duplicate_score) & (means >= rule.same_picture_meaning)
        copies = best_of(looks, limit, same)
        similar = best_of(means, limit, (means >= rule.similar_score) & ~same)
        matches = self._matches(copies.rows, copies.scores, near_duplicate_from=-1.0)
        matches += self._matches(similar.rows, similar.scores, near_duplicate_from=np.inf)
        return matches[:limit]

    def _matches(
        self, rows: NDArray[np.intp], scores: NDArray[np.float32], near_duplicate_from: float
    ) -> list[Match]:
        return [
            Match(
                entry=self._entries[row],
                score=float(score),
                near_duplicate=bool(score >= near_duplicate_from),
            )
            for row, score in zip(rows, scores, strict=True)
        ]


def _index_of(vectors: ArrayLike, count: int, dim: int, name: str) -> VectorIndex:
    index = VectorIndex(vectors)
    if len(index) != count:
        raise ValueError(f"{count} entries but {len(index)} {name} descriptors")
    if len(index) and index.dim != dim:
        raise ValueError(f"{name} descriptors have {index.dim} values, not {dim}")
    return index
