"""A catalog's entries as columns: NumPy arrays, memory-mapped from disk, one row per entry.

A million ``CatalogEntry`` objects take seconds to build and gigabytes to hold; a search
needs only the few it returns. So the entries live in arrays (fixed-width ids, hashes,
sizes, times, stable keys, and every title, path and URL in one UTF-8 blob with offsets),
opened without reading them, and a ``CatalogEntry`` is made only for a row asked for.
Entry ids are found by binary search in a stored order of the ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, overload

import numpy as np
from numpy.typing import NDArray

_TEXT_FIELDS = 3  # title, path, source URL; an empty path or URL stands for None


@dataclass(frozen=True)
class CatalogEntry:
    """One indexed image."""

    id: str
    """Stable, URL-safe id: 16 hex digits of the SHA-256 of the file's path and content."""
    title: str
    path: Path | None
    """Absolute path of the image file (``None`` if only a source URL is known)."""
    source_url: str | None
    """Where the image comes from, from the manifest; used as the hit URL when present."""
    sha256: str
    size: int = 0
    """File size in bytes when indexed (with ``mtime_ns``, tells an unchanged file)."""
    mtime_ns: int = 0


class EntrySource(Protocol):
    """Where a catalog's entries are read from, by row (a table here, or a database)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[CatalogEntry]: ...

    def entry(self, row: int) -> CatalogEntry: ...

    def entries_of(self, rows: NDArray[np.intp]) -> list[CatalogEntry]:
        """The entries of ``rows``, in that order."""
        ...

    def row_of(self, entry_id: str) -> int | None: ...


COLUMNS = ("keys", "ids", "id_order", "sha256", "sizes", "mtimes", "text", "text_offsets")
"""The arrays of a table, each stored as ``<name>.npy``."""


class EntryTable(Sequence[CatalogEntry]):
    """The entries, row by row; ``keys`` are stable integers that outlive row numbers (the
    approximate indexes name entries by them), ascending with the rows."""

    def __init__(self, columns: dict[str, NDArray[Any]]) -> None:
        # Plain arrays over the same memory: indexing a np.memmap costs far more per call.
        columns = {name: np.asarray(array) for name, array in columns.items()}
        self._columns = columns
        self.keys: NDArray[np.int64] = columns["keys"]
        self._ids = columns["ids"]
        self._id_order = columns["id_order"]
        self._text = columns["text"]
        self._offsets = columns["text_offsets"]

    @classmethod
    def of_entries(cls, entries: Sequence[CatalogEntry], keys: NDArray[np.int64]) -> EntryTable:
        texts = [
            part.encode()
            for entry in entries
            for part in (
                entry.title,
                str(entry.path) if entry.path is not None else "",
                entry.source_url or "",
            )
        ]
        lengths = np.fromiter((len(text) for text in texts), np.int64, len(texts))
        ids = np.array([entry.id.encode() for entry in entries], dtype="S")
        return cls(
            {
                "keys": np.asarray(keys, np.int64),
                "ids": ids,
                "id_order": np.argsort(ids, kind="stable").astype(np.int64),
                "sha256": np.array([entry.sha256.encode() for entry in entries], dtype="S64"),
                "sizes": np.array([entry.size for entry in entries], np.int64),
                "mtimes": np.array([entry.mtime_ns for entry in entries], np.int64),
                "text": np.frombuffer(b"".join(texts), np.uint8),
                "text_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            }
        )

    @classmethod
    def load(cls, folder: Path) -> EntryTable:
        """The table saved in ``folder``, memory-mapped: nothing is read until used."""
        return cls({name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in COLUMNS})

    def take(self, rows: NDArray[np.intp]) -> EntryTable:
        """A new table of these rows, in this order."""
        rows = np.asarray(rows, np.intp)
        starts = self._offsets[_TEXT_FIELDS * rows]
        ends = self._offsets[_TEXT_FIELDS * rows + _TEXT_FIELDS]
        lengths = ends - starts
        new_starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Byte i of the new blob comes from its row's start plus its place within the row.
        within = np.arange(int(new_starts[-1]), dtype=np.int64) - np.repeat(
            new_starts[:-1], lengths
        )
        text = np.asarray(self._text)[np.repeat(starts, lengths) + within]
        fields = (
            self._offsets[_TEXT_FIELDS * rows[:, None] + np.arange(_TEXT_FIELDS)[None, :]]
            - starts[:, None]
        )
        offsets = np.concatenate([(fields + new_starts[:-1, None]).ravel(), new_starts[-1:]])
        ids = np.asarray(self._ids)[rows]
        return EntryTable(
            {
                "keys": np.asarray(self.keys)[rows],
                "ids": ids,
                "id_order": np.argsort(ids, kind="stable").astype(np.int64),
                "sha256": np.asarray(self._columns["sha256"])[rows],
                "sizes": np.asarray(self._columns["sizes"])[rows],
                "mtimes": np.asarray(self._columns["mtimes"])[rows],
                "text": text.astype(np.uint8),
                "text_offsets": offsets.astype(np.int64),
            }
        )

    @classmethod
    def concat(cls, first: EntryTable, second: EntryTable) -> EntryTable:
        """``first``'s rows, then ``second``'s."""
        a, b = first.arrays(), second.arrays()
        shift = int(a["text_offsets"][-1])
        ids = np.concatenate([a["ids"], b["ids"]])
        return cls(
            {
                "keys": np.concatenate([a["keys"], b["keys"]]),
                "ids": ids,
                "id_order": np.argsort(ids, kind="stable").astype(np.int64),
                "sha256": np.concatenate([a["sha256"], b["sha256"]]),
                "sizes": np.concatenate([a["sizes"], b["sizes"]]),
                "mtimes": np.concatenate([a["mtimes"], b["mtimes"]]),
                "text": np.concatenate([a["text"], b["text"]]),
                "text_offsets": np.concatenate([a["text_offsets"][:-1], b["text_offsets"] + shift]),
            }
        )

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The columns, by file name stem, to save."""
        return dict(self._columns)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    @overload
    def __getitem__(self, row: int) -> CatalogEntry: ...
    @overload
    def __getitem__(self, row: slice) -> Sequence[CatalogEntry]: ...
    def __getitem__(self, row: int | slice) -> CatalogEntry | Sequence[CatalogEntry]:
        if isinstance(row, slice):
            return [self.entry(r) for r in range(*row.indices(len(self)))]
        return self.entry(row)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return (self.entry(row) for row in range(len(self)))

    def entry(self, row: int) -> CatalogEntry:
        if not -len(self) <= row < len(self):
            raise IndexError(f"row {row} of {len(self)}")
        row %= len(self)
        title, path, url = (self._text_field(row, field) for field in range(_TEXT_FIELDS))
        return CatalogEntry(
            id=self._ids[row].decode(),
            title=title,
            path=Path(path) if path else None,
            source_url=url or None,
            sha256=self._columns["sha256"][row].decode(),
            size=int(self._columns["sizes"][row]),
            mtime_ns=int(self._columns["mtimes"][row]),
        )

    def entries_of(self, rows: NDArray[np.intp]) -> list[CatalogEntry]:
        return [self.entry(int(row)) for row in rows]

    def row_of(self, entry_id: str) -> int | None:
        """The row of ``entry_id``, or None."""
        wanted = entry_id.encode()
        if len(self) == 0 or len(wanted) > self._ids.dtype.itemsize:
            return None
        position = int(np.searchsorted(self._ids, wanted, sorter=self._id_order))
        if position < len(self) and self._ids[self._id_order[position]] == wanted:
            return int(self._id_order[position])
        return None

    def paths(self) -> list[str]:
        """Every row's path ("" where there is none): what an index run compares with."""
        return [self._text_field(row, 1) for row in range(len(self))]

    def sha256(self, row: int) -> str:
        return str(self._columns["sha256"][row].decode())

    def _text_field(self, row: int, field: int) -> str:
        start = int(self._offsets[_TEXT_FIELDS * row + field])
        end = int(self._offsets[_TEXT_FIELDS * row + field + 1])
        return bytes(self._text[start:end]).decode()
