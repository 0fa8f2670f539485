"""Approximate nearest neighbours for large catalogs: HNSW graphs built with usearch.

Beyond some tens of thousands of entries an exact scan of every descriptor costs more per
search than the rest of the request. usearch (Unum; well kept, one C++ core, Python wheels
for every platform) keeps an HNSW graph in one file that can be memory-mapped: a server
opens a million-entry index in milliseconds and pages in only what searches visit, adds
entries without a rebuild, and removes them by key. (faiss has no memory-mapped HNSW;
hnswlib keeps only float32 vectors and loads its whole file into memory.) The graph holds
the vectors quantized to 8 bits, which halves its size and its build time against float16;
the candidates it finds are then scored exactly from the catalog's own vectors, which makes
up for the quantization (tests/benchmarks/bench_catalog_scale.py measures the recall).
Scores are inner products of unit vectors: cosine similarities, as in the exact scan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# onnxruntime must be loaded before usearch: in the other order the process crashes while
# importing onnxruntime (seen with usearch 2.26.6 and onnxruntime 1.32, Linux x86-64).
import onnxruntime  # noqa: F401
from numpy.typing import ArrayLike, NDArray
from usearch.index import BatchMatches, Index

from langchain_qwen_imagesearch.server.engine.vector_index import Neighbours, best_of, row_scores

CONNECTIVITY = 16
"""Graph edges per node: usearch's default; more costs memory for little recall here."""
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128
"""Candidates kept while searching (at least as many as asked for): see the recall it gives
in tests/benchmarks/bench_catalog_scale.py."""


class ApproximateIndex:
    """Unit vectors by entry key, searched approximately by inner product."""

    def __init__(self, index: Index) -> None:
        self._index = index

    @classmethod
    def build(
        cls, path: Path, keys: NDArray[np.int64], vectors: NDArray[np.floating], *, threads: int
    ) -> None:
        """A new index of ``vectors`` (one row per key), saved at ``path``."""
        index = _empty(int(vectors.shape[1]))
        _add(index, keys, vectors, threads)
        index.save(str(path))

    @classmethod
    def update(
        cls,
        source: Path,
        path: Path,
        *,
        removed: NDArray[np.int64],
        keys: NDArray[np.int64],
        vectors: NDArray[np.floating],
        threads: int,
    ) -> None:
        """The index at ``source`` without the ``removed`` keys and with ``vectors`` added
        under ``keys``, saved at ``path``: no rebuild."""
        index = _empty(int(vectors.shape[1]))
        index.load(str(source))
        if len(removed):
            index.remove(removed)
        _add(index, keys, vectors, threads)
        index.save(str(path))

    @classmethod
    def view(cls, path: Path) -> ApproximateIndex:
        """The index saved at ``path``, memory-mapped."""
        index = Index.restore(str(path), view=True, expansion_search=EXPANSION_SEARCH)
        if index is None:
            raise ValueError(f"{path} is not a usearch index")
        return cls(index)

    def __len__(self) -> int:
        return int(self._index.size)

    def nearest_keys(self, queries: ArrayLike, k: int) -> NDArray[np.int64]:
        """The keys of about the ``k`` nearest entries of each of ``queries`` (one per row),
        without repeats: candidates, to be scored exactly."""
        matrix = np.atleast_2d(np.asarray(queries, np.float32))
        # One thread per search: the server runs searches side by side on its own threads.
        found = self._index.search(matrix, count=k, threads=1)
        if not isinstance(found, BatchMatches):  # a single query's matches: all valid
            return np.unique(np.asarray(found.keys, np.int64))
        keys = np.asarray(found.keys, np.int64).reshape(len(matrix), -1)
        counts = np.asarray(found.counts).reshape(-1)
        valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
        return np.unique(keys[valid])


class ApproximateNeighbours:
    """A ``NeighbourSearch`` over an ``ApproximateIndex``: candidates from the graph, scored
    exactly from the catalog's own vectors, so that scores agree with the exact scan."""

    def __init__(
        self, index: ApproximateIndex, vectors: NDArray[np.floating], keys: NDArray[np.int64]
    ) -> None:
        self._index = index
        self._vectors = vectors
        self._keys = keys

    def __len__(self) -> int:
        return int(self._keys.shape[0])

    def search(self, queries: ArrayLike, k: int, min_score: float = -1.0) -> Neighbours:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        # At least EXPANSION_SEARCH candidates, scored exactly: the graph ranks by 8-bit
        # distances, so an entry just past the first k may score higher, and some of the
        # first k may fall below min_score.
        keys = self._index.nearest_keys(queries, max(k, EXPANSION_SEARCH))
        rows = np.searchsorted(self._keys, keys).clip(0, max(len(self) - 1, 0))
        rows = rows[self._keys[rows] == keys].astype(np.intp)
        scores = row_scores(self._vectors, queries, rows)
        best = best_of(scores, k, scores >= min_score)
        return Neighbours(rows=rows[best.rows], scores=best.scores)

    def scores_of(self, queries: ArrayLike, rows: NDArray[np.intp]) -> NDArray[np.float32]:
        return row_scores(self._vectors, queries, rows)


def _empty(dim: int) -> Index:
    return Index(
        ndim=dim,
        metric="ip",
        dtype="i8",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


_ADD_CHUNK = 65_536


def _add(
    index: Index, keys: NDArray[np.int64], vectors: NDArray[np.floating], threads: int
) -> None:
    # In chunks: a million float32 rows at once would be gigabytes of temporary copy.
    for start in range(0, len(keys), _ADD_CHUNK):
        chunk = slice(start, start + _ADD_CHUNK)
        index.add(
            np.asarray(keys[chunk], np.int64),
            np.asarray(vectors[chunk], np.float32),
            threads=threads,
        )
