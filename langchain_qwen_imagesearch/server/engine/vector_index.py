"""Exact in-memory vector index: cosine similarity of unit vectors as one matrix product.

A brute-force scan is the right tool for catalogs up to some tens of thousands of images:
one query is a single BLAS matrix-vector product over the whole matrix, bound by memory
bandwidth, with exact results and no training or tuning; beyond, ``approximate_index``
takes over, and this scan stays the reference its recall is measured against. Vectors are
kept in float32 because NumPy has no fast float16 matrix product; catalogs store them on
disk as float16 to halve the file size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class Neighbours:
    """Rows of the best-scoring vectors, best first, with their scores."""

    rows: NDArray[np.intp]
    scores: NDArray[np.float32]


class NeighbourSearch(Protocol):
    """Unit vectors, one per catalog row, and the rows closest to a query."""

    def __len__(self) -> int: ...

    def search(self, queries: ArrayLike, k: int, min_score: float = -1.0) -> Neighbours:
        """The ``k`` best rows for any of ``queries`` (one per row) scoring at least
        ``min_score``, best first."""
        ...

    def scores_of(self, queries: ArrayLike, rows: NDArray[np.intp]) -> NDArray[np.float32]:
        """The exact scores of ``rows`` (each its best over ``queries``)."""
        ...


class VectorIndex:
    """Unit vectors, one per row, searched exhaustively by dot product."""

    def __init__(self, vectors: ArrayLike) -> None:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"vectors must be a 2-D matrix, got shape {matrix.shape}")
        matrix.setflags(write=False)
        self._vectors = matrix

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def __len__(self) -> int:
        return int(self._vectors.shape[0])

    def scores(self, queries: ArrayLike) -> NDArray[np.float32]:
        """Per row, the best dot product with any of ``queries`` (one vector or one per row).

        Several queries describe one picture in several ways (e.g. as is and mirrored);
        a row is as close as its closest description.
        """
        matrix = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if matrix.shape[1] != self.dim:
            raise ValueError(f"queries have {matrix.shape[1]} values, the index has {self.dim}")
        if len(self) == 0:
            return np.zeros(0, dtype=np.float32)
        all_scores: NDArray[np.float32] = matrix @ self._vectors.T
        return np.asarray(all_scores.max(axis=0), dtype=np.float32)

    def search(self, queries: ArrayLike, k: int, min_score: float = -1.0) -> Neighbours:
        """The ``k`` best rows scoring at least ``min_score``, best first."""
        scores = self.scores(queries)
        return best_of(scores, k, scores >= min_score)

    def scores_of(self, queries: ArrayLike, rows: NDArray[np.intp]) -> NDArray[np.float32]:
        return row_scores(self._vectors, queries, rows)


def one_blas_thread_per_search() -> None:
    """Limit this process's BLAS to one thread, for good: a server runs searches side by
    side, one per request, and BLAS threads inside each would fight them for the same cores
    (tests/benchmarks/bench_catalog_scale.py measures the p99 it costs). Only for processes
    that are servers: a library user's own NumPy is left alone."""
    threadpool_limits(limits=1, user_api="blas")


def row_scores(
    vectors: NDArray[np.floating], queries: ArrayLike, rows: NDArray[np.intp]
) -> NDArray[np.float32]:
    """Per row of ``rows``, its best dot product with any of ``queries``."""
    matrix = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if not len(rows):
        return np.zeros(0, np.float32)
    chosen = np.asarray(vectors[np.sort(rows)], np.float32)[np.argsort(np.argsort(rows))]
    return np.asarray((matrix @ chosen.T).max(axis=0), np.float32)


def best_of(scores: NDArray[np.float32], k: int, eligible: NDArray[np.bool_]) -> Neighbours:
    """The ``k`` best-scoring rows among the ``eligible`` ones, best first."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    candidates = np.flatnonzero(eligible)
    if len(candidates) > k:
        # Partial selection keeps this linear in the catalog size; only k rows get sorted.
        best_k = np.argpartition(scores[candidates], len(candidates) - k)[-k:]
        candidates = candidates[best_k]
    order = np.argsort(-scores[candidates], kind="stable")
    rows = candidates[order]
    return Neighbours(rows=rows, scores=scores[rows])
