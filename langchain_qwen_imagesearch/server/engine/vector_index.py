"""Exact in-memory vector index: cosine similarity of unit vectors as one matrix product.

A brute-force scan is the right tool at catalog sizes up to a few hundred thousand images:
one query is a single BLAS matrix-vector product over the whole matrix, bound by memory
bandwidth (100k x 310 float32 values is 124 MB, read once per search), with exact results
and no training or tuning. Vectors are kept in float32 because NumPy has no fast float16
matrix product; catalogs store them on disk as float16 to halve the file size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class Neighbours:
    """Rows of the best-scoring vectors, best first, with their scores."""

    rows: NDArray[np.intp]
    scores: NDArray[np.float32]


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
