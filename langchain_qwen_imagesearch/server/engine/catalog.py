"""The searchable catalog: entries, their two descriptors in vector indexes, and the hit rule.

A search returns the catalog's edited copies of the query first (by appearance: the
calibrated near-duplicate rule), then the images whose meaning is close to the query's
(same kind of thing, same style), best first, up to the upstream's 100. Small catalogs are
searched exactly; from ``APPROXIMATE_FROM`` entries on, the index run builds approximate
indexes (``approximate_index``) and searches use them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
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
from langchain_qwen_imagesearch.server.engine.approximate_index import (
    ApproximateIndex,
    ApproximateNeighbours,
)
from langchain_qwen_imagesearch.server.engine.hit_rule import DEFAULT_HIT_RULE, HitRule, Match
from langchain_qwen_imagesearch.server.engine.meaning.encoder import (
    MEANING_DIM,
    MEANING_MODEL,
    shared_encoder,
)
from langchain_qwen_imagesearch.server.engine.meaning.space import centred_query
from langchain_qwen_imagesearch.server.engine.vector_index import (
    Neighbours,
    NeighbourSearch,
    VectorIndex,
)
from langchain_qwen_imagesearch.server.store.catalog_files import (
    StoredCatalog,
    StoredMeaning,
    read_catalog,
)
from langchain_qwen_imagesearch.server.store.entry_table import (
    CatalogEntry,
    EntrySource,
    EntryTable,
)
from langchain_qwen_imagesearch.server.store.postgres import is_database_url

logger = logging.getLogger(__name__)

APPROXIMATE_FROM = 10_000
"""Entries from which index runs build approximate indexes: below, an exact scan of both
descriptors on one thread takes under about 7 ms; above, the approximate search is faster
(tests/benchmarks/bench_catalog_scale.py)."""
APPEARANCE_INDEX_FILE = "appearance.usearch"
MEANING_INDEX_FILE = "meaning.usearch"


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
        """A catalog from ready descriptors (one row per entry each), searched exactly; tests
        and benchmarks can pass synthetic vectors. Without ``meaning`` it finds edited copies
        only. :meth:`open` loads one from disk."""
        table = (
            entries
            if isinstance(entries, EntryTable)
            else EntryTable.of_entries(entries, np.arange(len(entries), dtype=np.int64))
        )
        self._assemble(
            table,
            _exact(appearance, len(table), APPEARANCE_DIM),
            _exact(meaning.units, len(table), MEANING_DIM) if meaning is not None else None,
            meaning.centre if meaning is not None else None,
            hit_rule,
        )

    def _assemble(
        self,
        entries: EntrySource,
        appearance: NeighbourSearch,
        meaning: NeighbourSearch | None,
        meaning_centre: ArrayLike | None,
        hit_rule: HitRule,
    ) -> None:
        if isinstance(entries, EntryTable) and _has_repeated_ids(entries):
            raise ValueError("entry ids must be unique")
        self._entries = entries
        self._appearance = appearance
        self._meaning = meaning
        self._meaning_centre = np.asarray(
            meaning_centre if meaning_centre is not None else np.zeros(MEANING_DIM), np.float32
        )
        self.hit_rule = hit_rule

    @classmethod
    def open(cls, directory: str | Path, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> Catalog:
        """Open the catalog that ``build_catalog`` wrote into ``directory``: its files are
        memory-mapped, so this takes milliseconds at any size. ``directory`` may also be a
        ``postgresql://`` URL: the catalog is then searched in that database, shared with
        other servers and index runs (the ``postgres`` extra).

        Raises ``CatalogError``, saying how to rebuild it, if there is none or it is damaged
        or was built by an incompatible version (or the database cannot be reached).
        """
        if is_database_url(directory):
            # Imported here: that module builds on this one.
            from langchain_qwen_imagesearch.server.engine.postgres_search import DatabaseCatalog

            return DatabaseCatalog.connect(str(directory), hit_rule=hit_rule)
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
        return cls.of_stored(stored, hit_rule=hit_rule)

    @classmethod
    def of_stored(cls, stored: StoredCatalog, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> Catalog:
        """The catalog of what ``read_catalog`` opened; searched approximately when its
        generation holds approximate indexes."""
        appearance_index = stored.generation / APPEARANCE_INDEX_FILE
        if not appearance_index.is_file():
            return cls(stored.entries, stored.appearance, stored.meaning, hit_rule=hit_rule)
        keys = np.asarray(stored.entries.keys)
        meaning = None
        if stored.meaning is not None:
            meaning_index = ApproximateIndex.view(stored.generation / MEANING_INDEX_FILE)
            meaning = ApproximateNeighbours(meaning_index, stored.meaning.units, keys)
        catalog = cls.__new__(cls)
        catalog._assemble(
            stored.entries,
            ApproximateNeighbours(ApproximateIndex.view(appearance_index), stored.appearance, keys),
            meaning,
            stored.meaning.centre if stored.meaning is not None else None,
            hit_rule,
        )
        return catalog

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def searches_by_meaning(self) -> bool:
        """Whether searches also find similar images, not only edited copies."""
        return self._meaning is not None

    @property
    def searches_at_once(self) -> int:
        """How many searches are worth running at the same time: one per core, since a
        search here is computation (more would only queue for the cores, each holding its
        pictures and buffers)."""
        return os.cpu_count() or 1

    def warm_up(self) -> None:
        """Build the image encoder now, rather than during the first search (about 1 s)."""
        if self._meaning is not None:
            shared_encoder()

    def entries(self) -> Iterable[CatalogEntry]:
        """All entries, in catalog order (each made when read)."""
        return iter(self._entries)

    def get(self, entry_id: str) -> CatalogEntry | None:
        row = self._entries.row_of(entry_id)
        return self._entries.entry(row) if row is not None else None

    def search(self, image: Image.Image, limit: int = MAX_HITS_PER_SEARCH) -> list[Match]:
        """Catalog images that are edited copies of ``image`` (as is or mirrored), then
        images like it, best first; at most ``limit`` (1 to 100), possibly none."""
        meaning = None
        if self._meaning is not None:
            meaning = self.meaning_query(shared_encoder().embed([image])[0])
        return self.search_vectors(appearance_with_mirror(image), meaning, limit)

    def meaning_query(self, features: ArrayLike) -> NDArray[np.float32]:
        """The encoder's features of a query, in this catalog's meaning space: what
        :meth:`search_vectors` takes."""
        return centred_query(self._meaning_centre, np.asarray(features, np.float32))

    def search_vectors(
        self,
        appearance: ArrayLike,
        meaning: ArrayLike | None = None,
        limit: int = MAX_HITS_PER_SEARCH,
    ) -> list[Match]:
        """:meth:`search` for ready descriptors: ``appearance`` one per row (each entry keeps
        its best), ``meaning`` one vector in the catalog's space (:meth:`meaning_query`)."""
        if not 1 <= limit <= MAX_HITS_PER_SEARCH:
            raise ValueError(f"limit must be between 1 and {MAX_HITS_PER_SEARCH}, got {limit}")
        rule = self.hit_rule
        if self._meaning is None or meaning is None:
            best = self._appearance.search(appearance, limit, min_score=rule.min_score)
            hits = rule.select(best.scores)
            return self._matches(best.rows[:hits], best.scores[:hits], rule.near_duplicate_score)
        looks, similar = self._candidates(self._meaning, appearance, meaning, limit)
        # An edited copy looks like the query and shows the same thing: both must agree.
        same = self._meaning.scores_of(meaning, looks.rows) >= rule.same_picture_meaning
        copies, copy_scores = looks.rows[same], looks.scores[same]
        others = ~np.isin(similar.rows, copies)
        matches = self._matches(copies, copy_scores, near_duplicate_from=-1.0)
        matches += self._matches(
            similar.rows[others], similar.scores[others], near_duplicate_from=np.inf
        )
        return matches[:limit]

    def _candidates(
        self, meaning_index: NeighbourSearch, appearance: ArrayLike, meaning: ArrayLike, limit: int
    ) -> tuple[Neighbours, Neighbours]:
        """The entries that may be edited copies (by appearance), and the ``limit`` best by
        meaning: enough, since each copy taken out of those is also one hit fewer to fill."""
        rule = self.hit_rule
        looks = self._appearance.search(appearance, limit, min_score=rule.near_duplicate_score)
        return looks, meaning_index.search(meaning, limit, rule.similar_score)

    def _matches(
        self, rows: NDArray[np.intp], scores: NDArray[np.float32], near_duplicate_from: float
    ) -> list[Match]:
        return [
            Match(
                entry=entry, score=float(score), near_duplicate=bool(score >= near_duplicate_from)
            )
            for entry, score in zip(self._entries.entries_of(rows), scores, strict=True)
        ]


def _exact(vectors: ArrayLike, count: int, dim: int) -> VectorIndex:
    index = VectorIndex(vectors)
    if len(index) != count:
        raise ValueError(f"{count} entries but {len(index)} descriptors")
    if len(index) and index.dim != dim:
        raise ValueError(f"descriptors have {index.dim} values, not {dim}")
    return index


def _has_repeated_ids(table: EntryTable) -> bool:
    columns = table.arrays()
    ordered = columns["ids"][columns["id_order"]]
    return bool(np.any(ordered[1:] == ordered[:-1]))
