"""Indexing: a folder of images into a catalog, incrementally.

Files whose size and modification time are unchanged since the last run keep their
descriptors; so do files whose content (SHA-256) was indexed before. The previous catalog is
read once, through the store's reader, and the new one written through its writer: a
catalog folder's (``catalog_files``), or a PostgreSQL database's (``store/postgres.py``).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from langchain_qwen_imagesearch.server.engine.appearance import (
    APPEARANCE_DIM,
    APPEARANCE_VERSION,
    WORKING_SIZE,
    appearance_descriptor,
)
from langchain_qwen_imagesearch.server.engine.meaning.encoder import (
    MEANING_DIM,
    MEANING_MODEL,
    shared_encoder,
)
from langchain_qwen_imagesearch.server.engine.meaning.space import centred_on, rebuilt_features
from langchain_qwen_imagesearch.server.engine.postgres_search import DATABASE_LAYOUT
from langchain_qwen_imagesearch.server.next_generation import (
    Additions,
    keeps_centre,
    write_next_generation,
)
from langchain_qwen_imagesearch.server.store.catalog_files import (
    CatalogError,
    StoredCatalog,
    StoredMeaning,
    catalog_lock,
    read_catalog,
)
from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry
from langchain_qwen_imagesearch.server.store.manifest import manifest_path, read_manifest
from langchain_qwen_imagesearch.server.store.postgres import (
    CatalogWrite,
    CatalogWriter,
    StoredRows,
    is_database_url,
)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
INDEXING_THREADS = min(8, os.cpu_count() or 1)

_SHORT_ID_LENGTH = 16
_T = TypeVar("_T")


@dataclass
class IndexReport:
    """What :func:`build_catalog` did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    upgraded: int = 0
    """Entries that kept their appearance descriptor and got a meaning descriptor (a catalog
    built before meaning descriptors, or by another model)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Files left out, as (path relative to the source, reason)."""
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """Files with the same content as an earlier one, as (path, the earlier path): both are
    kept, each with its own title and URL."""
    total: int = 0
    """Entries in the catalog after the run."""
    seconds: float = 0.0


@dataclass(frozen=True)
class Described:
    """One file's entry and descriptors (``meaning`` as the encoder gave it; None only as read
    from a catalog that has none yet) and its key."""

    entry: CatalogEntry
    appearance: NDArray[np.float32]
    meaning: NDArray[np.float32] | None
    key: int = -1
    """The entry's key in the catalog (-1 until it has one)."""


class _Unreadable(Exception):
    """A file that cannot be indexed; the message says why."""


def build_catalog(
    source: str | Path,
    catalog_dir: str | Path,
    *,
    manifest: str | Path | None = None,
    progress: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> IndexReport:
    """Index every image below ``source`` into ``catalog_dir``, incrementally.

    A catalog holds several source folders: indexing one adds to the catalog, and files
    gone from ``source`` are dropped, the other folders' entries staying as they are. Titles
    and URLs come from ``manifest`` (default: a ``manifest.json`` in ``source``, if any),
    mapping relative paths to ``{"title", "url"}``; otherwise the title is made from the
    file name. Unreadable files are skipped and reported; files with the same content are
    all kept, and reported. One run at a time writes a catalog: another waits for it (and
    ``on_wait`` is called first). Progress shows on a terminal only.

    ``catalog_dir`` may be a ``postgresql://`` URL (the ``postgres`` extra): the catalog is
    then kept in that database, its tables made by the first run. Runs of different folders
    then describe their images at the same time, and only their writes wait for each other;
    runs of one folder wait for each other.
    """
    started = time.perf_counter()
    source_dir = Path(source).expanduser().resolve()
    if not source_dir.is_dir():
        raise CatalogError(f"{source} is not a folder: give the folder of images to index")
    descriptions = read_manifest(manifest_path(source_dir, manifest))
    if is_database_url(catalog_dir):
        report = _index_into_database(str(catalog_dir), source_dir, descriptions, progress, on_wait)
        report.seconds = time.perf_counter() - started
        return report
    folder = Path(catalog_dir).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise CatalogError(f"{catalog_dir} is a file, not a catalog folder: give a folder")
    with catalog_lock(folder, on_wait):
        return _index_into(folder, source_dir, descriptions, progress, started)


def _index_into(
    folder: Path,
    source_dir: Path,
    descriptions: dict[str, dict[str, str]],
    progress: bool,
    started: float,
) -> IndexReport:
    stored = _stored(folder)
    in_folder = _in_folder(stored, source_dir)
    earlier = _earlier_of_rows(stored, np.flatnonzero(in_folder))
    # The catalog's other folders stay as they are, but for meaning descriptors they lack.
    others = np.flatnonzero(~in_folder).astype(np.intp)
    to_upgrade: dict[Path, Described] = {}
    kept_rows = others
    if stored is not None and stored.meaning is None:
        # Built before meaning descriptors: the other folders' pictures get theirs now.
        to_upgrade = {_path_of(e): e for e in (_earlier(stored, int(row)) for row in others)}
        kept_rows = _no_rows()
    run = describe_folder(
        source_dir,
        earlier,
        descriptions,
        progress=progress,
        next_key=stored.next_key if stored is not None else 0,
        to_upgrade=to_upgrade,
    )
    sources = sorted({*(stored.sources if stored else []), str(source_dir)})
    run.report.total = write_next_generation(
        folder, stored, kept_rows, run.additions(), sources=sources, next_key=run.next_key
    )
    run.report.seconds = time.perf_counter() - started
    return run.report


def _index_into_database(
    url: str,
    source_dir: Path,
    descriptions: dict[str, dict[str, str]],
    progress: bool,
    on_wait: Callable[[], None] | None,
) -> IndexReport:
    folder = str(source_dir)
    with CatalogWriter.open(url, DATABASE_LAYOUT) as writer, writer.folder_lock(folder, on_wait):
        stored = writer.rows_below(folder)
        features = rebuilt_features(stored.meaning)
        earlier = {
            _path_of(described): described
            for described in (
                Described(entry, stored.appearance[row], features[row], int(stored.keys[row]))
                for row, entry in enumerate(stored.entries)
            )
        }
        # Keys of new entries come from the database when they are written.
        run = describe_folder(source_dir, earlier, descriptions, progress=progress, next_key=0)
        with writer.write() as write:
            deleted = write.delete_below(folder, [d.entry.id for d in run.described])
            run.report.total = _write_described(write, run.described, earlier, deleted)
    return run.report


def write_descriptors_to_database(
    url: str,
    entries: Sequence[CatalogEntry],
    appearance: NDArray[np.floating],
    meaning: NDArray[np.floating],
) -> None:
    """Entries with ready descriptors (``meaning`` as the encoder gives it) into the catalog
    database at ``url``, as an index run writes them: for benchmarks and tools that describe
    images elsewhere. Stored entries of the same ids are replaced, others kept."""
    described = [
        Described(entry, np.asarray(appearance[row]), np.asarray(meaning[row], np.float32))
        for row, entry in enumerate(entries)
    ]
    with CatalogWriter.open(url, DATABASE_LAYOUT) as writer, writer.write() as write:
        _write_described(write, described, {}, deleted=0)


def _write_described(
    write: CatalogWrite, described: list[Described], earlier: dict[Path, Described], deleted: int
) -> int:
    """Store ``described`` (``earlier``: what the run started from; ``deleted``: entries this
    write already removed); the number of entries the catalog then holds. The meaning
    centre is taken as in a catalog folder (``next_generation``): at the first write, then
    when the catalog has doubled or halved since, every row then rewritten."""
    keys, stored = write.keys_for([d.entry.id for d in described])
    count = write.count - deleted + int(np.count_nonzero(~stored))
    # Entries stored as they are stay untouched: rewriting a row costs an HNSW insertion.
    changed = [
        row for row, d in enumerate(described) if not _stored_as_is(d, bool(stored[row]), earlier)
    ]
    to_write = [described[row] for row in changed]
    raw = _meaning_features(to_write)
    centre, since = write.centre, write.centred_at_count
    if centre is not None and keeps_centre(since, count):
        write.upsert(_database_rows(to_write, keys[changed], centre, raw))
        write.finish(count, centre, since)
        return count
    # Centred on the mean of the catalog as this write leaves it, as a catalog folder is.
    replaced = [described[row].entry.id for row in changed if stored[row]]
    centre = _catalog_mean(write.batches(replaced), raw)
    recentred = (_recentred(batch, centre) for batch in write.batches(replaced))
    write.replace_all(
        itertools.chain(recentred, [_database_rows(to_write, keys[changed], centre, raw)])
    )
    write.finish(count, centre, count)
    return count


def _stored_as_is(described: Described, stored: bool, earlier: dict[Path, Described]) -> bool:
    before = earlier.get(described.entry.path) if described.entry.path is not None else None
    return stored and before is not None and before.entry == described.entry


def _database_rows(
    described: list[Described],
    keys: NDArray[np.int64],
    centre: NDArray[np.float32],
    raw_meaning: NDArray[np.float32],
) -> StoredRows:
    units, norms = centred_on(centre, raw_meaning)
    return StoredRows(
        [d.entry for d in described],
        keys,
        # float16, as a catalog folder keeps it: both give the same scores.
        _matrix([d.appearance for d in described], APPEARANCE_DIM).astype(np.float16),
        StoredMeaning(MEANING_MODEL, centre, units, norms),
    )


def _catalog_mean(
    batches: Iterable[StoredRows], raw_meaning: NDArray[np.float32]
) -> NDArray[np.float32]:
    """The mean meaning features of the stored ``batches`` and of ``raw_meaning``."""
    total = raw_meaning.sum(axis=0, dtype=np.float64)
    count = len(raw_meaning)
    for batch in batches:
        total += rebuilt_features(batch.meaning).sum(axis=0, dtype=np.float64)
        count += len(batch.keys)
    return np.asarray(total / max(count, 1), np.float32)


def _recentred(batch: StoredRows, centre: NDArray[np.float32]) -> StoredRows:
    units, norms = centred_on(centre, rebuilt_features(batch.meaning))
    return replace(batch, meaning=StoredMeaning(MEANING_MODEL, centre, units, norms))


@dataclass
class FolderRun:
    """What describing a folder found: the report so far, the entries to write, the next
    free key."""

    report: IndexReport
    described: list[Described]
    next_key: int

    def additions(self) -> Additions:
        return Additions(
            [d.entry for d in self.described],
            np.array([d.key for d in self.described], np.int64),
            _matrix([d.appearance for d in self.described], APPEARANCE_DIM),
            _meaning_features(self.described),
        )


def describe_folder(
    source_dir: Path,
    earlier: dict[Path, Described],
    descriptions: dict[str, dict[str, str]],
    *,
    progress: bool,
    next_key: int,
    to_upgrade: dict[Path, Described] | None = None,
) -> FolderRun:
    """Every image below ``source_dir`` as an entry with both descriptors, reusing what
    ``earlier`` (the last run's entries of the folder, by path) already has; and the entries
    of ``to_upgrade`` (of other folders) with the meaning descriptor they lack. Entries keep
    their key while their id is the same; new ones get keys from ``next_key`` on."""
    to_upgrade = to_upgrade or {}
    known = {e.entry.sha256: e for e in earlier.values() if e.meaning is not None}
    report = IndexReport()
    described: list[Described] = []
    first_path_of: dict[str, str] = {}
    paths = _image_files(source_dir)
    work = paths + list(to_upgrade)
    # Decoding, hashing, NumPy and onnxruntime release the GIL: threads use several cores.
    pool = ThreadPoolExecutor(max_workers=INDEXING_THREADS)
    try:
        outcomes = pool.map(
            lambda path: _try_index_file(path, earlier.get(path) or to_upgrade.get(path), known),
            work,
        )
        for path, outcome in zip(work, _progress(outcomes, len(work), progress), strict=True):
            if path in to_upgrade:
                described.append(_upgraded(to_upgrade[path], outcome, report))
                continue
            relative = path.relative_to(source_dir).as_posix()
            if isinstance(outcome, _Unreadable):
                report.skipped.append((relative, str(outcome)))
                continue
            sha256 = outcome.entry.sha256
            if sha256 in first_path_of:
                report.duplicates.append((relative, first_path_of[sha256]))
            else:
                first_path_of[sha256] = relative
            description = descriptions.get(relative, {})
            entry = replace(
                outcome.entry,
                title=description.get("title") or title_from_file_name(path.name),
                source_url=description.get("url"),
            )
            before = earlier.get(path)
            if before is None:
                report.added += 1
            elif before.entry.sha256 != sha256:
                report.updated += 1
            elif before.meaning is None:
                report.upgraded += 1
            else:
                report.unchanged += 1
            if before is not None and before.entry.id == entry.id:
                key = before.key
            else:
                key, next_key = next_key, next_key + 1
            described.append(replace(outcome, entry=entry, key=key))
    finally:
        # On an interruption, don't wait for the images still queued.
        pool.shutdown(cancel_futures=True)
    current_paths = {d.entry.path for d in described}
    report.removed = sum(1 for path in earlier if path not in current_paths)
    return FolderRun(report, described, next_key)


def title_from_file_name(name: str) -> str:
    """``"red_running_shoe.jpg"`` -> ``"Red running shoe"``."""
    words = re.sub(r"[\s_\-]+", " ", Path(name).stem).strip()
    return words[:1].upper() + words[1:] if words else name


def _stored(folder: Path) -> StoredCatalog | None:
    """The catalog as the last run left it; ``None`` if there is no usable one (everything
    is then indexed from scratch)."""
    try:
        return read_catalog(
            folder,
            appearance_version=APPEARANCE_VERSION,
            appearance_dim=APPEARANCE_DIM,
            meaning_model=MEANING_MODEL,
            meaning_dim=MEANING_DIM,
        )
    except CatalogError:
        return None


def _earlier(stored: StoredCatalog, row: int) -> Described:
    """What the last runs stored in ``row``."""
    meaning = None
    if stored.meaning is not None:
        meaning = rebuilt_features(stored.meaning, np.array([row], np.intp))[0]
    return Described(
        stored.entries.entry(row),
        np.asarray(stored.appearance[row], np.float32),
        meaning,
        int(stored.entries.keys[row]),
    )


def _in_folder(stored: StoredCatalog | None, source_dir: Path) -> NDArray[np.bool_]:
    """Which stored rows are files below ``source_dir``."""
    if stored is None:
        return np.zeros(0, dtype=bool)
    prefix = str(source_dir) + os.sep
    return np.array([path.startswith(prefix) for path in stored.entries.paths()], dtype=bool)


def _earlier_of_rows(stored: StoredCatalog | None, rows: NDArray[np.intp]) -> dict[Path, Described]:
    """What the last runs stored in ``rows``, by absolute path."""
    if stored is None:
        return {}
    return {_path_of(e): e for e in (_earlier(stored, int(row)) for row in rows)}


def _no_rows() -> NDArray[np.intp]:
    return np.zeros(0, np.intp)


def _path_of(indexed: Described) -> Path:
    assert indexed.entry.path is not None  # index runs store entries of files only
    return indexed.entry.path


def _upgraded(
    earlier: Described, outcome: Described | _Unreadable, report: IndexReport
) -> Described:
    """An entry of another folder, with the meaning descriptor it lacked (if its file can
    still be read: otherwise it is kept as it was, and reported)."""
    if isinstance(outcome, _Unreadable):
        report.skipped.append(
            (str(earlier.entry.path), f"kept without a meaning descriptor: {outcome}")
        )
        return earlier
    report.upgraded += 1
    return replace(earlier, meaning=outcome.meaning)


def _meaning_features(everything: list[Described]) -> NDArray[np.float32]:
    """One row per entry. An entry whose file could not be read again gets the mean of the
    others: centred, it is then no direction at all, and never scores as similar."""
    known = [i.meaning for i in everything if i.meaning is not None]
    mean = np.mean(known, axis=0) if known else np.zeros(MEANING_DIM, np.float32)
    rows = [i.meaning if i.meaning is not None else mean for i in everything]
    return _matrix(rows, MEANING_DIM)


def _matrix(rows: list[NDArray[np.float32]], dim: int) -> NDArray[np.float32]:
    return np.array(rows, dtype=np.float32).reshape(len(rows), dim)


def _try_index_file(
    path: Path, earlier: Described | None, known: dict[str, Described]
) -> Described | _Unreadable:
    try:
        return _index_file(path, earlier, known)
    except _Unreadable as error:
        return error


def _index_file(path: Path, earlier: Described | None, known: dict[str, Described]) -> Described:
    """The entry of ``path``, reusing earlier work when the file or its content is known:
    only the descriptors still missing are computed."""
    try:
        stat = path.stat()
        unchanged = earlier is not None and (earlier.entry.size, earlier.entry.mtime_ns) == (
            stat.st_size,
            stat.st_mtime_ns,
        )
        if earlier is not None and unchanged and earlier.meaning is not None:
            return _indexed(path, earlier.entry.sha256, stat, earlier.appearance, earlier.meaning)
        data = path.read_bytes()
    except OSError as error:
        raise _Unreadable(f"cannot read the file: {error.strerror or error}") from error
    sha256 = hashlib.sha256(data).hexdigest()
    same = known.get(sha256)
    if same is not None:
        return _indexed(path, sha256, stat, same.appearance, same.meaning)
    reusable = (
        earlier.appearance if earlier is not None and earlier.entry.sha256 == sha256 else None
    )
    appearance, meaning = _descriptors_of_file_content(data, reusable)
    return _indexed(path, sha256, stat, appearance, meaning)


def _indexed(
    path: Path,
    sha256: str,
    stat: os.stat_result,
    appearance: NDArray[np.float32],
    meaning: NDArray[np.float32] | None,
) -> Described:
    # The path is part of the id: two files of the same content are two entries.
    entry_id = hashlib.sha256(f"{path}\0{sha256}".encode()).hexdigest()[:_SHORT_ID_LENGTH]
    entry = CatalogEntry(
        id=entry_id,
        title="",
        path=path,
        source_url=None,
        sha256=sha256,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
    )
    return Described(entry, appearance, meaning)


def _descriptors_of_file_content(
    data: bytes, appearance: NDArray[np.float32] | None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Both descriptors of an image file, from one decoding; ``appearance`` when it is
    already known."""
    try:
        with warnings.catch_warnings():
            # Huge images are fine here: they are decoded at reduced size when the format allows.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # JPEGs decode straight at 1/2 to 1/8 scale, far faster for large photos, and
                # still at least as large as both descriptors need.
                image.draft(None, (2 * WORKING_SIZE, 2 * WORKING_SIZE))
                image.load()
                if appearance is None:
                    appearance = appearance_descriptor(image)
                return appearance, shared_encoder().embed([image])[0]
    except UnidentifiedImageError:
        raise _Unreadable("not an image format Pillow can read") from None
    except Exception as error:
        # Pillow's decoders fail on broken files with many kinds of exceptions (OSError,
        # ValueError, SyntaxError, struct.error, ...): none of them may stop a whole run.
        raise _Unreadable(f"damaged or unreadable image: {error}") from error


def _image_files(source_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in source_dir.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def _progress(items: Iterable[_T], total: int, enabled: bool) -> Iterable[_T]:
    if not enabled:
        return items
    from tqdm import tqdm

    # disable=None: a bar on a terminal, nothing when stderr goes to a log or a pipe.
    bar: Iterable[_T] = tqdm(
        items,
        total=total,
        desc="Indexing",
        unit="image",
        file=sys.stderr,
        disable=None,
        ncols=_bar_width(),
    )
    return bar


def _bar_width() -> int | None:
    """None lets tqdm size the bar. Some terminals (a fresh pty, ``docker -t``) report 0
    columns, on which tqdm would draw nothing at all."""
    try:
        return None if os.get_terminal_size(sys.stderr.fileno()).columns else 80
    except (OSError, ValueError):
        return None
