"""Searching a catalog kept in PostgreSQL (``store/postgres.py``), which other servers share
and index runs write while it is searched: what they write is found at once.

The descriptors stay in the database. A search asks pgvector's HNSW indexes for each
descriptor's neighbours, both at once on two connections (their scores are exact inner
products), then reads the entries of its hits in one query: four statements at most. Each
runs alone, so an entry can be deleted between two of them; the search is then run again.
The meaning centre is read anew when an index run has taken another one.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray

from langchain_qwen_imagesearch.protocol import MAX_HITS_PER_SEARCH
from langchain_qwen_imagesearch.server.engine.appearance import APPEARANCE_DIM, APPEARANCE_VERSION
from langchain_qwen_imagesearch.server.engine.catalog import Catalog
from langchain_qwen_imagesearch.server.engine.hit_rule import DEFAULT_HIT_RULE, HitRule, Match
from langchain_qwen_imagesearch.server.engine.meaning.encoder import MEANING_DIM, MEANING_MODEL
from langchain_qwen_imagesearch.server.engine.meaning.space import centred_query
from langchain_qwen_imagesearch.server.engine.vector_index import Neighbours, NeighbourSearch
from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry
from langchain_qwen_imagesearch.server.store.postgres import (
    POOL_SIZE,
    CatalogDatabase,
    EntriesChanged,
    VectorLayout,
)

DATABASE_LAYOUT = VectorLayout(APPEARANCE_VERSION, APPEARANCE_DIM, MEANING_MODEL, MEANING_DIM)
EF_SEARCH = 128
"""Candidates each HNSW search keeps, as the local graphs do: pgvector returns no more, and
rows an index run deleted but vacuum has not yet removed take places among them, so they
leave room beside the 100 a search asks for. The recall this gives is measured by
tests/benchmarks/bench_catalog_scale.py."""
SEARCH_ATTEMPTS = 3
"""Tries of a search whose hits were deleted under it before it is given up."""


class DatabaseEntries:
    """An ``EntrySource`` over the database: rows are entry keys."""

    def __init__(self, database: CatalogDatabase) -> None:
        self._database = database

    def __len__(self) -> int:
        return self._database.count()

    def __iter__(self) -> Iterator[CatalogEntry]:
        return self._database.all_entries()

    def entry(self, row: int) -> CatalogEntry:
        return self._database.entry(row)

    def entries_of(self, rows: NDArray[np.intp]) -> list[CatalogEntry]:
        return self._database.entries_of(np.asarray(rows, np.int64))

    def row_of(self, entry_id: str) -> int | None:
        return self._database.key_of(entry_id)


class DatabaseNeighbours:
    """A ``NeighbourSearch`` over one descriptor column, by its HNSW index."""

    def __init__(self, database: CatalogDatabase, column: str) -> None:
        self._database = database
        self._column = column

    def __len__(self) -> int:
        return self._database.count()

    def search(self, queries: ArrayLike, k: int, min_score: float = -1.0) -> Neighbours:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        keys, scores = self._database.nearest(self._column, _matrix(queries), k, min_score)
        return Neighbours(rows=keys.astype(np.intp), scores=scores)

    def scores_of(self, queries: ArrayLike, rows: NDArray[np.intp]) -> NDArray[np.float32]:
        return self._database.scores(self._column, _matrix(queries), np.asarray(rows, np.int64))


class DatabaseCatalog(Catalog):
    """A catalog in PostgreSQL: :meth:`Catalog.open` gives one for a ``postgresql://`` URL."""

    _database: CatalogDatabase
    _centre: tuple[int, NDArray[np.float32]]
    _side_searches: ThreadPoolExecutor

    @classmethod
    def connect(cls, url: str, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> DatabaseCatalog:
        """The catalog in the database at ``url``; raises ``CatalogError``, saying what to
        do, if it is unreachable or holds none."""
        database = CatalogDatabase.open(url, DATABASE_LAYOUT, ef_search=EF_SEARCH)
        catalog = cls.__new__(cls)
        catalog._database = database
        catalog._centre = _centre(database)
        catalog._side_searches = ThreadPoolExecutor(POOL_SIZE, "catalog-database")
        catalog._assemble(
            DatabaseEntries(database),
            DatabaseNeighbours(database, "appearance"),
            DatabaseNeighbours(database, "meaning"),
            catalog._centre[1],
            hit_rule,
        )
        return catalog

    def meaning_query(self, features: ArrayLike) -> NDArray[np.float32]:
        # An index run may have centred the catalog anew since the last search.
        if self._database.centre_version() != self._centre[0]:
            self._centre = _centre(self._database)
        return centred_query(self._centre[1], np.asarray(features, np.float32))

    def search_vectors(
        self,
        appearance: ArrayLike,
        meaning: ArrayLike | None = None,
        limit: int = MAX_HITS_PER_SEARCH,
    ) -> list[Match]:
        for _ in range(SEARCH_ATTEMPTS - 1):
            try:
                return super().search_vectors(appearance, meaning, limit)
            except EntriesChanged:
                pass  # an index run deleted a hit meanwhile: search the catalog as it is now
        return super().search_vectors(appearance, meaning, limit)

    def _candidates(
        self, meaning_index: NeighbourSearch, appearance: ArrayLike, meaning: ArrayLike, limit: int
    ) -> tuple[Neighbours, Neighbours]:
        # Both index searches at once, on two pooled connections: the database has cores to
        # spare for one search.
        rule = self.hit_rule
        similar = self._side_searches.submit(
            meaning_index.search, meaning, limit, rule.similar_score
        )
        looks = self._appearance.search(appearance, limit, min_score=rule.near_duplicate_score)
        return looks, similar.result()

    @property
    def searches_at_once(self) -> int:
        # A search here mostly waits for the database: as many as the connection pool.
        return POOL_SIZE

    def get(self, entry_id: str) -> CatalogEntry | None:
        # One query: the entry cannot go between finding its key and reading it.
        return self._database.entry_with_id(entry_id)


def _centre(database: CatalogDatabase) -> tuple[int, NDArray[np.float32]]:
    version, centre = database.centre()
    return version, centre if centre is not None else np.zeros(MEANING_DIM, np.float32)


def _matrix(queries: ArrayLike) -> NDArray[np.float32]:
    return np.atleast_2d(np.asarray(queries, np.float32))
