"""The next generation of a catalog: the rows an index run kept, plus what it added, with
the meaning space and the approximate indexes brought up to date.

Row data the run kept is copied as arrays, never turned into objects, so an index run on a
catalog of a million entries costs memory and time for what changed. Entries keep a stable
key for life; rows are ordered by key. The meaning descriptors stay centred on the mean the
catalog had when it was last centred, until the catalog has doubled or halved since: then
all are centred on the new mean (from their stored lengths, without the network) and the
meaning index is rebuilt. Otherwise the approximate indexes take the removed and added keys
only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from langchain_qwen_imagesearch.server.engine.appearance import APPEARANCE_DIM, APPEARANCE_VERSION
from langchain_qwen_imagesearch.server.engine.approximate_index import ApproximateIndex
from langchain_qwen_imagesearch.server.engine.catalog import (
    APPEARANCE_INDEX_FILE,
    APPROXIMATE_FROM,
    MEANING_INDEX_FILE,
)
from langchain_qwen_imagesearch.server.engine.meaning.encoder import MEANING_DIM, MEANING_MODEL
from langchain_qwen_imagesearch.server.engine.meaning.space import (
    centred_on,
    centred_on_mean,
    rebuilt_features,
)
from langchain_qwen_imagesearch.server.store.catalog_files import (
    StoredCatalog,
    StoredMeaning,
    write_catalog,
)
from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry, EntryTable

RECENTRE_FACTOR = 2
"""The catalog is centred again once it has this many times more, or fewer, entries than
when it was last centred."""
INDEX_THREADS = os.cpu_count() or 1


@dataclass(frozen=True)
class Additions:
    """Entries an index run wrote anew (new, changed or re-described files), their keys and
    descriptors (``meaning`` as the encoder gave it, not yet centred)."""

    entries: Sequence[CatalogEntry]
    keys: NDArray[np.int64]
    appearance: NDArray[np.floating]
    meaning: NDArray[np.floating]

    @classmethod
    def none(cls) -> Additions:
        return cls(
            [],
            np.zeros(0, np.int64),
            np.zeros((0, APPEARANCE_DIM), np.float32),
            np.zeros((0, MEANING_DIM), np.float32),
        )


def keeps_centre(centred_at_count: int, count: int) -> bool:
    """Whether meaning descriptors centred when the catalog had ``centred_at_count`` entries
    keep that centre now that it has ``count``: until it has doubled or halved."""
    return centred_at_count / RECENTRE_FACTOR <= count <= centred_at_count * RECENTRE_FACTOR


def write_next_generation(
    folder: Path,
    stored: StoredCatalog | None,
    kept_rows: NDArray[np.intp],
    additions: Additions,
    *,
    sources: Sequence[str],
    next_key: int,
) -> int:
    """Write the generation of ``stored``'s ``kept_rows`` plus ``additions``; the number of
    entries it holds. Hold the catalog lock around it."""
    base = stored.entries.take(kept_rows) if stored is not None else _empty_table()
    table = EntryTable.concat(base, EntryTable.of_entries(additions.entries, additions.keys))
    order = np.argsort(table.keys, kind="stable")
    in_order = bool(np.all(order == np.arange(len(order))))
    if not in_order:
        table = table.take(order)
    count = len(table)

    def ordered(rows: NDArray[np.floating]) -> NDArray[np.floating]:
        return rows if in_order else rows[order]

    kept_appearance = _rows(stored.appearance if stored else None, kept_rows, APPEARANCE_DIM)
    appearance = ordered(_stacked(kept_appearance, additions.appearance.astype(np.float16)))

    recentred = not (
        stored is not None
        and stored.meaning is not None
        and keeps_centre(stored.centred_at_count, count)
    )
    if stored is not None and stored.meaning is not None and not recentred:
        units, norms = centred_on(stored.meaning.centre, additions.meaning)
        meaning = StoredMeaning(
            MEANING_MODEL,
            stored.meaning.centre,
            np.concatenate([np.asarray(stored.meaning.units[kept_rows]), units]),
            np.concatenate([np.asarray(stored.meaning.norms[kept_rows]), norms]),
        )
        centred_at_count = stored.centred_at_count
    else:
        kept = _kept_meaning_features(stored, kept_rows)
        meaning = centred_on_mean(MEANING_MODEL, _stacked(kept, additions.meaning))
        centred_at_count = count
    if not in_order:
        meaning = StoredMeaning(
            meaning.model, meaning.centre, meaning.units[order], meaning.norms[order]
        )

    def add_indexes(generation: Path) -> None:
        if count < APPROXIMATE_FROM:
            return
        previous = stored.generation if stored is not None else None
        keys = np.asarray(table.keys)
        _index(previous, generation, APPEARANCE_INDEX_FILE, keys, appearance, stored, rebuild=False)
        _index(previous, generation, MEANING_INDEX_FILE, keys, meaning.units, stored, recentred)

    write_catalog(
        folder,
        sources=sources,
        appearance_version=APPEARANCE_VERSION,
        entries=table,
        appearance=appearance,
        meaning=meaning,
        next_key=next_key,
        centred_at_count=centred_at_count,
        add_files=add_indexes,
    )
    return count


def write_descriptors(
    folder: Path,
    entries: Sequence[CatalogEntry],
    appearance: NDArray[np.floating],
    meaning: NDArray[np.floating],
    *,
    sources: Sequence[str] = (),
) -> None:
    """A whole catalog from ready descriptors (``meaning`` as the encoder gives it), as an
    index run writes it: for benchmarks and tools that describe images elsewhere."""
    keys = np.arange(len(entries), dtype=np.int64)
    additions = Additions(entries, keys, appearance, meaning)
    folder.mkdir(parents=True, exist_ok=True)
    write_next_generation(
        folder,
        None,
        np.zeros(0, np.intp),
        additions,
        sources=sources,
        next_key=len(entries),
    )


def _index(
    previous: Path | None,
    generation: Path,
    file_name: str,
    keys: NDArray[np.int64],
    vectors: NDArray[np.floating],
    stored: StoredCatalog | None,
    rebuild: bool,
) -> None:
    """The approximate index ``file_name`` of ``generation``: the previous one updated with
    the removed and added keys, or built anew."""
    source = previous / file_name if previous is not None else None
    target = generation / file_name
    if rebuild or stored is None or source is None or not source.is_file():
        ApproximateIndex.build(target, keys, vectors, threads=INDEX_THREADS)
        return
    old_keys = np.asarray(stored.entries.keys)
    new = ~np.isin(keys, old_keys)
    ApproximateIndex.update(
        source,
        target,
        removed=old_keys[~np.isin(old_keys, keys)],
        keys=keys[new],
        vectors=vectors[new],
        threads=INDEX_THREADS,
    )


def _kept_meaning_features(
    stored: StoredCatalog | None, kept_rows: NDArray[np.intp]
) -> NDArray[np.float32]:
    if stored is None or stored.meaning is None or not len(kept_rows):
        return np.zeros((0, MEANING_DIM), np.float32)
    return rebuilt_features(stored.meaning, kept_rows)


def _rows(
    vectors: NDArray[np.float16] | None, rows: NDArray[np.intp], dim: int
) -> NDArray[np.float16]:
    if vectors is None:
        return np.zeros((0, dim), np.float16)
    return np.asarray(vectors[rows], np.float16)


def _stacked(first: NDArray[np.floating], second: NDArray[np.floating]) -> NDArray[np.floating]:
    """``first``'s rows then ``second``'s, without a copy when one of them is empty."""
    if not len(first):
        return second
    if not len(second):
        return first
    return np.concatenate([first, second.astype(first.dtype)])


def _empty_table() -> EntryTable:
    return EntryTable.of_entries([], np.zeros(0, np.int64))
