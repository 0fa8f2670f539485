"""The catalog on disk: one reader and one writer of its three files.

A catalog folder holds:

- ``catalog.json``: format and descriptor versions, the source folder, the number of entries;
- ``entries.jsonl``: one JSON object per image (id, title, path, URL, SHA-256, size, mtime);
- ``vectors.npy``: one descriptor per entry, in the same order, as float16.

Images are not copied: entries point at the files in the source folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

CATALOG_FORMAT = 1

_META_FILE = "catalog.json"
_ENTRIES_FILE = "entries.jsonl"
_VECTORS_FILE = "vectors.npy"


class CatalogError(ValueError):
    """A catalog folder is missing or unusable, or a manifest is malformed."""


@dataclass(frozen=True)
class CatalogEntry:
    """One indexed image."""

    id: str
    """Stable, URL-safe id: the first 16 hex digits of the file's SHA-256."""
    title: str
    path: Path | None
    """Absolute path of the image file (``None`` if only a source URL is known)."""
    source_url: str | None
    """Where the image comes from, from the manifest; used as the hit URL when present."""
    sha256: str
    size: int = 0
    """File size in bytes when indexed (with ``mtime_ns``, tells an unchanged file)."""
    mtime_ns: int = 0


@dataclass(frozen=True)
class StoredCatalog:
    """What a catalog folder holds: its entries and their descriptors, row for row."""

    folder: Path
    source: str | None
    descriptor_version: int
    entries: list[CatalogEntry]
    vectors: NDArray[np.float16]


def read_catalog(folder: Path, *, descriptor_version: int, dim: int) -> StoredCatalog:
    """Read the catalog in ``folder``, built with descriptors of that version and size.

    Raises :class:`CatalogError`, saying how to rebuild it, if there is none or it is damaged
    or was built by an incompatible version.
    """
    meta = _read_meta(folder)
    if meta.get("feature_version") != descriptor_version:
        raise _unusable(folder, meta, "it was built by another version of this package")
    try:
        entries = [
            _entry_of(json.loads(line))
            for line in (folder / _ENTRIES_FILE).read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        vectors = np.load(folder / _VECTORS_FILE, allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _unusable(folder, meta, f"it is incomplete or corrupt ({error})") from error
    if vectors.shape != (meta["count"], dim) or len(entries) != meta["count"]:
        raise _unusable(folder, meta, "its files do not agree (an interrupted write?)")
    return StoredCatalog(
        folder,
        meta.get("source"),
        descriptor_version,
        entries,
        vectors.astype(np.float16, copy=False),
    )


def write_catalog(
    folder: Path,
    *,
    source: Path,
    descriptor_version: int,
    entries: Sequence[CatalogEntry],
    vectors: NDArray[np.floating[Any]],
) -> None:
    """Write the three files, each atomically; ``catalog.json`` last, as the commit mark."""
    folder.mkdir(parents=True, exist_ok=True)
    with _replacing(folder / _VECTORS_FILE) as stream:
        np.save(stream, vectors.astype(np.float16), allow_pickle=False)
    with _replacing(folder / _ENTRIES_FILE) as stream:
        for entry in entries:
            stream.write(json.dumps(_record_of(entry), ensure_ascii=False).encode() + b"\n")
    meta = {
        "format": CATALOG_FORMAT,
        "feature_version": descriptor_version,
        "feature_dim": int(vectors.shape[1]),
        "source": str(source),
        "count": len(entries),
    }
    with _replacing(folder / _META_FILE) as stream:
        stream.write(json.dumps(meta, indent=2).encode() + b"\n")


def _read_meta(folder: Path) -> dict[str, Any]:
    meta_file = folder / _META_FILE
    if not meta_file.is_file():
        raise CatalogError(
            f"no catalog in {folder}: build one with "
            f"`qwen-imagesearch index SRC --catalog {folder}` (SRC: a folder of images)"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        count, catalog_format = meta["count"], meta["format"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _unusable(folder, {}, f"{_META_FILE} is corrupt ({error})") from error
    if not isinstance(count, int) or catalog_format != CATALOG_FORMAT:
        raise _unusable(folder, meta, "it was built by another version of this package")
    return dict(meta)


def _unusable(folder: Path, meta: dict[str, Any], reason: str) -> CatalogError:
    source = meta.get("source") or "SRC"
    return CatalogError(
        f"the catalog in {folder} cannot be used: {reason}. Rebuild it with "
        f"`qwen-imagesearch index {source} --catalog {folder}`"
    )


def _entry_of(record: dict[str, Any]) -> CatalogEntry:
    return CatalogEntry(
        id=str(record["id"]),
        title=str(record["title"]),
        path=Path(record["path"]) if record.get("path") else None,
        source_url=record.get("source_url"),
        sha256=str(record["sha256"]),
        size=int(record.get("size", 0)),
        mtime_ns=int(record.get("mtime_ns", 0)),
    )


def _record_of(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "title": entry.title,
        "path": str(entry.path) if entry.path is not None else None,
        "source_url": entry.source_url,
        "sha256": entry.sha256,
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
    }


@contextmanager
def _replacing(target: Path) -> Iterator[BinaryIO]:
    """A binary file written under a temporary name, moved over ``target`` when complete."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as stream:
            yield stream
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
