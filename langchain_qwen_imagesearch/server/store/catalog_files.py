"""The catalog on disk: one reader, one writer, a lock, and atomic generations.

A catalog folder holds generations, each complete in its own folder:

- ``generations/<name>/catalog.json``: format and descriptor versions, the source folders,
  the number of entries, the next free entry key;
- ``generations/<name>/<column>.npy``: the entries as columns (``entry_table``);
- ``generations/<name>/vectors.npy``: the appearance descriptor of each entry, in the same
  order, float16;
- ``generations/<name>/meaning*.npy``: the meaning descriptors, centred on a mean and of
  unit length (float16), the length each had before (float32), and the mean (float32);
- other files the writer's caller adds (the approximate indexes);
- ``CURRENT``: the name of the generation in use.

Everything is opened memory-mapped: opening a catalog of a million entries reads a few
kilobytes, and the system pages in what searches touch. A writer builds a new generation
beside the current one, then switches ``CURRENT`` to it with one ``os.replace``: a reader
sees the old catalog or the new one, never a mix, even if the writer is killed at any
moment. Writers take ``.lock`` (filelock: released by the system when its holder dies), so
two index runs never lose each other's work. Images are not copied: entries point at the
files in the source folders. Catalogs of format 1 (three files at the top of the folder),
2 (no meaning descriptors) and 3 (entries as JSON lines) are still read, and upgraded by
the next write.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout
from numpy.typing import NDArray

from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry, EntryTable

CATALOG_FORMAT = 4
READABLE_FORMATS = (1, 2, 3, 4)

_POINTER = "CURRENT"
_GENERATIONS = "generations"
_LOCK = ".lock"
_META_FILE = "catalog.json"
_ENTRIES_FILE = "entries.jsonl"
_VECTORS_FILE = "vectors.npy"
_MEANING_FILE = "meaning.npy"
_MEANING_NORMS_FILE = "meaning_norms.npy"
_MEANING_CENTRE_FILE = "meaning_centre.npy"
_KEPT_GENERATIONS = 2
"""The current generation and the one before, for readers that were still opening it."""


class CatalogError(ValueError):
    """A catalog folder is missing or unusable, or a manifest is malformed."""


@dataclass(frozen=True)
class StoredMeaning:
    """The meaning descriptors of a catalog, row for row with its entries: each centred on
    ``centre`` (their mean) and scaled to unit length (``units``), and the length it had
    (``norms``), from which the descriptor as computed can be rebuilt."""

    model: str
    centre: NDArray[np.float32]
    units: NDArray[np.float16]
    norms: NDArray[np.float32]


@dataclass(frozen=True)
class StoredCatalog:
    """What a catalog folder holds: its entries and their descriptors, row for row.
    ``meaning`` is None in a catalog built before meaning descriptors, or by another model."""

    folder: Path
    generation: Path
    """The generation read: files the writer's caller added are there."""
    sources: list[str]
    entries: EntryTable
    appearance: NDArray[np.float16]
    meaning: StoredMeaning | None
    next_key: int
    """The key the next new entry gets."""
    centred_at_count: int
    """How many entries the catalog had when the meaning descriptors' mean was taken."""


def read_catalog(
    folder: Path,
    *,
    appearance_version: int,
    appearance_dim: int,
    meaning_model: str,
    meaning_dim: int,
) -> StoredCatalog:
    """Open the catalog in ``folder``, built with appearance descriptors of that version and
    size; its meaning descriptors are used if ``meaning_model`` made them.

    Raises :class:`CatalogError`, saying how to rebuild it, if there is none or it is damaged
    or was built by an incompatible version.
    """
    generation = _current_generation(folder)
    meta = _read_meta(generation, folder)
    if meta.get("feature_version") != appearance_version:
        raise _unusable(folder, meta, "it was built by another version of this package")
    count = meta["count"]
    try:
        entries = _read_entries(generation, meta)
        appearance = _load(generation / _VECTORS_FILE)
        meaning = None
        if meta.get("meaning_model") == meaning_model:
            meaning = StoredMeaning(
                model=meaning_model,
                centre=np.load(generation / _MEANING_CENTRE_FILE, allow_pickle=False),
                units=_load(generation / _MEANING_FILE),
                norms=_load(generation / _MEANING_NORMS_FILE),
            )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _unusable(folder, meta, f"it is incomplete or corrupt ({error})") from error
    agree = appearance.shape == (count, appearance_dim) and len(entries) == count
    agree = agree and appearance.dtype == np.float16
    if meaning is not None:
        agree = agree and meaning.centre.shape == (meaning_dim,)
        agree = agree and meaning.units.shape == (count, meaning_dim)
        agree = agree and meaning.norms.shape == (count,)
    if not agree:
        raise _unusable(folder, meta, "its files do not agree (an interrupted write?)")
    sources = meta.get("sources") or ([meta["source"]] if meta.get("source") else [])
    return StoredCatalog(
        folder=folder,
        generation=generation,
        sources=list(sources),
        entries=entries,
        appearance=appearance,
        meaning=meaning,
        next_key=int(meta.get("next_key", count)),
        centred_at_count=int(meta.get("centred_at_count", count)),
    )


def write_catalog(
    folder: Path,
    *,
    sources: Sequence[str],
    appearance_version: int,
    entries: EntryTable,
    appearance: NDArray[np.floating[Any]],
    meaning: StoredMeaning,
    next_key: int,
    centred_at_count: int,
    add_files: Callable[[Path], None] | None = None,
) -> None:
    """Write a new generation and switch to it; hold :func:`catalog_lock` around it.
    ``add_files`` writes more files into the generation before the switch."""
    generations = folder / _GENERATIONS
    generations.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():x}-{os.getpid()}"
    building = generations / f".{name}.building"
    building.mkdir()
    arrays: dict[str, NDArray[Any]] = {
        **{f"{column}.npy": array for column, array in entries.arrays().items()},
        _VECTORS_FILE: appearance.astype(np.float16, copy=False),
        _MEANING_FILE: meaning.units.astype(np.float16, copy=False),
        _MEANING_NORMS_FILE: meaning.norms.astype(np.float32, copy=False),
        _MEANING_CENTRE_FILE: meaning.centre.astype(np.float32, copy=False),
    }
    for file_name, array in arrays.items():
        with _durable(building / file_name) as stream:
            np.save(stream, array, allow_pickle=False)
    if add_files is not None:
        add_files(building)
    meta = {
        "format": CATALOG_FORMAT,
        "feature_version": appearance_version,
        "feature_dim": int(appearance.shape[1]),
        "meaning_model": meaning.model,
        "meaning_dim": int(meaning.centre.shape[0]),
        "sources": list(sources),
        "count": len(entries),
        "next_key": next_key,
        "centred_at_count": centred_at_count,
    }
    with _durable(building / _META_FILE) as stream:
        stream.write(json.dumps(meta, indent=2).encode() + b"\n")
    os.rename(building, generations / name)
    # The switch: one atomic replace of the pointer.
    pointer = folder / f".{_POINTER}.{name}"
    with _durable(pointer) as stream:
        stream.write(name.encode())
    os.replace(pointer, folder / _POINTER)
    _sync_folder(folder)
    _remove_old(folder, keep=name)


@contextmanager
def catalog_lock(folder: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Held by whoever writes the catalog in ``folder``; ``on_wait`` is called once if
    another writer holds it (the caller then waits for it)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / _LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _current_generation(folder: Path) -> Path:
    pointer = folder / _POINTER
    if pointer.is_file():
        return folder / _GENERATIONS / pointer.read_text(encoding="utf-8").strip()
    return folder  # format 1: the files at the top


def _read_meta(generation: Path, folder: Path) -> dict[str, Any]:
    meta_file = generation / _META_FILE
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
    if not isinstance(count, int) or catalog_format not in READABLE_FORMATS:
        raise _unusable(folder, meta, "it was built by another version of this package")
    return dict(meta)


def _unusable(folder: Path, meta: dict[str, Any], reason: str) -> CatalogError:
    sources = meta.get("sources") or [meta.get("source") or "SRC"]
    return CatalogError(
        f"the catalog in {folder} cannot be used: {reason}. Rebuild it with "
        f"`qwen-imagesearch index {sources[0]} --catalog {folder}`"
    )


def _read_entries(generation: Path, meta: dict[str, Any]) -> EntryTable:
    if meta["format"] >= 4:
        return EntryTable.load(generation)
    # Formats 1 to 3: one JSON object per line; read whole (such catalogs are small).
    lines = (generation / _ENTRIES_FILE).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    entries = [
        CatalogEntry(
            id=str(record["id"]),
            title=str(record["title"]),
            path=Path(record["path"]) if record.get("path") else None,
            source_url=record.get("source_url"),
            sha256=str(record["sha256"]),
            size=int(record.get("size", 0)),
            mtime_ns=int(record.get("mtime_ns", 0)),
        )
        for record in records
    ]
    return EntryTable.of_entries(entries, np.arange(len(entries), dtype=np.int64))


def _load(path: Path) -> NDArray[Any]:
    """The array in ``path``, memory-mapped (as a plain array: np.memmap's indexing is slow)."""
    return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))


@contextmanager
def _durable(target: Path) -> Iterator[Any]:
    """A new binary file, on disk (fsynced) before it is used."""
    with target.open("xb") as stream:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_old(folder: Path, keep: str) -> None:
    """Generations before the last two, unfinished ones of killed writers, and the files of
    a format-1 catalog; only a writer holding the lock calls this."""
    generations = folder / _GENERATIONS
    finished = sorted(
        (p for p in generations.iterdir() if not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime_ns,
    )
    stale = [p for p in finished[:-_KEPT_GENERATIONS] if p.name != keep]
    stale += [p for p in generations.iterdir() if p.name.startswith(".")]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    for name in (_META_FILE, _ENTRIES_FILE, _VECTORS_FILE):
        (folder / name).unlink(missing_ok=True)
    for leftover in folder.glob(f".{_POINTER}.*"):
        leftover.unlink(missing_ok=True)
