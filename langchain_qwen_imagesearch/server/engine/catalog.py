"""The searchable catalog: entries, their descriptors in a vector index, and the hit rule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from numpy.typing import ArrayLike
from PIL import Image

from langchain_qwen_imagesearch.protocol import MAX_HITS_PER_SEARCH
from langchain_qwen_imagesearch.server.engine.descriptors import (
    DESCRIPTOR_DIM,
    DESCRIPTOR_VERSION,
    image_and_mirror_descriptors,
)
from langchain_qwen_imagesearch.server.engine.hit_rule import DEFAULT_HIT_RULE, HitRule, Match
from langchain_qwen_imagesearch.server.engine.vector_index import VectorIndex
from langchain_qwen_imagesearch.server.store.catalog_files import (
    CatalogEntry,
    StoredCatalog,
    read_catalog,
)


class Catalog:
    """Indexed images and their descriptors, searchable by image."""

    def __init__(
        self,
        entries: Sequence[CatalogEntry],
        vectors: ArrayLike,
        *,
        hit_rule: HitRule = DEFAULT_HIT_RULE,
    ) -> None:
        """A catalog from ready descriptors (one row per entry), as :meth:`open` builds it;
        tests and benchmarks can pass synthetic vectors."""
        index = VectorIndex(vectors)
        if len(index) != len(entries):
            raise ValueError(f"{len(entries)} entries but {len(index)} vectors")
        if len(index) and index.dim != DESCRIPTOR_DIM:
            raise ValueError(
                f"vectors have {index.dim} values, image descriptors have {DESCRIPTOR_DIM}"
            )
        self._entries = tuple(entries)
        self._by_id = {entry.id: entry for entry in self._entries}
        if len(self._by_id) != len(self._entries):
            raise ValueError("entry ids must be unique")
        self._index = index
        self.hit_rule = hit_rule

    @classmethod
    def open(cls, directory: str | Path, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> Catalog:
        """Load the catalog that ``build_catalog`` wrote into ``directory``.

        Raises ``CatalogError``, saying how to rebuild it, if there is none or it is damaged
        or was built by an incompatible version.
        """
        folder = Path(directory).expanduser().resolve()
        stored = read_catalog(folder, descriptor_version=DESCRIPTOR_VERSION, dim=DESCRIPTOR_DIM)
        return cls.of_stored(stored, hit_rule=hit_rule)

    @classmethod
    def of_stored(cls, stored: StoredCatalog, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> Catalog:
        return cls(stored.entries, stored.vectors, hit_rule=hit_rule)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> tuple[CatalogEntry, ...]:
        """All entries, in catalog order."""
        return self._entries

    def get(self, entry_id: str) -> CatalogEntry | None:
        return self._by_id.get(entry_id)

    def search(self, image: Image.Image, limit: int = MAX_HITS_PER_SEARCH) -> list[Match]:
        """Catalog images that look like ``image`` (as is or mirrored), best first.

        Returns the hits that :attr:`hit_rule` selects, at most ``limit`` (1 to 100);
        possibly none.
        """
        return self.search_vectors(image_and_mirror_descriptors(image), limit)

    def search_vectors(self, queries: ArrayLike, limit: int = MAX_HITS_PER_SEARCH) -> list[Match]:
        """:meth:`search` for ready descriptors (one per row; each entry keeps its best)."""
        if not 1 <= limit <= MAX_HITS_PER_SEARCH:
            raise ValueError(f"limit must be between 1 and {MAX_HITS_PER_SEARCH}, got {limit}")
        rule = self.hit_rule
        best = self._index.search(queries, limit, min_score=rule.min_score)
        hits = rule.select(best.scores)
        return [
            Match(
                entry=self._entries[row],
                score=float(score),
                near_duplicate=bool(score >= rule.near_duplicate_score),
            )
            for row, score in zip(best.rows[:hits], best.scores[:hits], strict=True)
        ]
