"""Indexing: a folder of images into a catalog, incrementally.

Files whose size and modification time are unchanged since the last run keep their
descriptors; so do files whose content (SHA-256) was indexed before. The previous catalog is
read once, through the store's reader, and the new one written through its writer.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from langchain_qwen_imagesearch.server.engine.descriptors import (
    DESCRIPTOR_DIM,
    DESCRIPTOR_VERSION,
    WORKING_SIZE,
    image_descriptor,
)
from langchain_qwen_imagesearch.server.store.catalog_files import (
    CatalogEntry,
    CatalogError,
    StoredCatalog,
    catalog_lock,
    read_catalog,
    write_catalog,
)
from langchain_qwen_imagesearch.server.store.manifest import manifest_path, read_manifest

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
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Files left out, as (path relative to the source, reason)."""
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """Files with the same content as an earlier one, as (path, the earlier path): both are
    kept, each with its own title and URL."""
    total: int = 0
    """Entries in the catalog after the run."""
    seconds: float = 0.0


@dataclass(frozen=True)
class _Indexed:
    """One file's entry (title and URL still to come from the manifest) and descriptor."""

    entry: CatalogEntry
    vector: NDArray[np.float32]


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
    """
    started = time.perf_counter()
    source_dir = Path(source).expanduser().resolve()
    if not source_dir.is_dir():
        raise CatalogError(f"{source} is not a folder: give the folder of images to index")
    folder = Path(catalog_dir).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise CatalogError(f"{catalog_dir} is a file, not a catalog folder: give a folder")
    descriptions = read_manifest(manifest_path(source_dir, manifest))
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
    previous = _by_path(stored)
    known_vectors = {indexed.entry.sha256: indexed.vector for indexed in previous.values()}

    report = IndexReport()
    kept: list[_Indexed] = []
    first_path_of: dict[str, str] = {}
    paths = _image_files(source_dir)
    # Decoding, hashing and most NumPy work release the GIL, so threads use several cores.
    pool = ThreadPoolExecutor(max_workers=INDEXING_THREADS)
    try:
        outcomes = pool.map(
            lambda path: _try_index_file(path, previous.get(path), known_vectors), paths
        )
        for path, outcome in zip(paths, _progress(outcomes, len(paths), progress), strict=True):
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
            earlier = previous.get(path)
            if earlier is None:
                report.added += 1
            elif earlier.entry.sha256 == sha256:
                report.unchanged += 1
            else:
                report.updated += 1
            kept.append(_Indexed(entry, outcome.vector))
    finally:
        # On an interruption, don't wait for the images still queued.
        pool.shutdown(cancel_futures=True)

    current_paths = {indexed.entry.path for indexed in kept}
    report.removed = sum(
        1 for path in previous if path.is_relative_to(source_dir) and path not in current_paths
    )
    # The catalog's other folders stay as they are.
    others = [
        kept_before for path, kept_before in previous.items() if not path.is_relative_to(source_dir)
    ]
    unlocated = _without_path(stored)
    everything = others + unlocated + kept
    vectors = np.array([indexed.vector for indexed in everything], dtype=np.float32)
    sources = sorted({*(stored.sources if stored else []), str(source_dir)})
    write_catalog(
        folder,
        sources=sources,
        descriptor_version=DESCRIPTOR_VERSION,
        entries=[indexed.entry for indexed in everything],
        vectors=vectors.reshape(len(everything), DESCRIPTOR_DIM),
    )
    report.total = len(everything)
    report.seconds = time.perf_counter() - started
    return report


def title_from_file_name(name: str) -> str:
    """``"red_running_shoe.jpg"`` -> ``"Red running shoe"``."""
    words = re.sub(r"[\s_\-]+", " ", Path(name).stem).strip()
    return words[:1].upper() + words[1:] if words else name


def _stored(folder: Path) -> StoredCatalog | None:
    """The catalog as the last run left it; ``None`` if there is no usable one (everything
    is then indexed from scratch)."""
    try:
        return read_catalog(folder, descriptor_version=DESCRIPTOR_VERSION, dim=DESCRIPTOR_DIM)
    except CatalogError:
        return None


def _indexed_entries(stored: StoredCatalog | None) -> list[_Indexed]:
    if stored is None:
        return []
    vectors = stored.vectors.astype(np.float32)
    return [_Indexed(e, v) for e, v in zip(stored.entries, vectors, strict=True)]


def _by_path(stored: StoredCatalog | None) -> dict[Path, _Indexed]:
    """What the last runs indexed, by absolute path."""
    return {i.entry.path: i for i in _indexed_entries(stored) if i.entry.path is not None}


def _without_path(stored: StoredCatalog | None) -> list[_Indexed]:
    return [i for i in _indexed_entries(stored) if i.entry.path is None]


def _try_index_file(
    path: Path, earlier: _Indexed | None, known_vectors: dict[str, NDArray[np.float32]]
) -> _Indexed | _Unreadable:
    try:
        return _index_file(path, earlier, known_vectors)
    except _Unreadable as error:
        return error


def _index_file(
    path: Path, earlier: _Indexed | None, known_vectors: dict[str, NDArray[np.float32]]
) -> _Indexed:
    """The entry of ``path``, reusing earlier work when the file or its content is known."""
    try:
        stat = path.stat()
        if earlier and (earlier.entry.size, earlier.entry.mtime_ns) == (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            return _indexed(path, earlier.entry.sha256, stat, earlier.vector)
        data = path.read_bytes()
    except OSError as error:
        raise _Unreadable(f"cannot read the file: {error.strerror or error}") from error
    sha256 = hashlib.sha256(data).hexdigest()
    vector = known_vectors.get(sha256)
    if vector is None:
        vector = _descriptor_of_file_content(data)
    return _indexed(path, sha256, stat, vector)


def _indexed(
    path: Path, sha256: str, stat: os.stat_result, vector: NDArray[np.float32]
) -> _Indexed:
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
    return _Indexed(entry, vector)


def _descriptor_of_file_content(data: bytes) -> NDArray[np.float32]:
    try:
        with warnings.catch_warnings():
            # Huge images are fine here: they are decoded at reduced size when the format allows.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # JPEGs decode straight at 1/2 to 1/8 scale: far faster for large photos.
                image.draft(None, (2 * WORKING_SIZE, 2 * WORKING_SIZE))
                return image_descriptor(image)
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
