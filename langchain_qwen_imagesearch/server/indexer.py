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
from collections.abc import Iterable
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
) -> IndexReport:
    """Index every image below ``source`` into ``catalog_dir``, incrementally.

    Files gone from ``source`` are dropped. Titles and URLs come from ``manifest`` (default:
    a ``manifest.json`` in ``source``, if any), mapping relative paths to
    ``{"title", "url"}``; otherwise the title is made from the file name. Unreadable files
    are skipped and reported.
    """
    started = time.perf_counter()
    source_dir = Path(source).expanduser().resolve()
    if not source_dir.is_dir():
        raise CatalogError(f"{source} is not a folder: give the folder of images to index")
    folder = Path(catalog_dir).expanduser().resolve()
    descriptions = read_manifest(manifest_path(source_dir, manifest))
    previous = _previous_run(folder)
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
                report.skipped.append((relative, f"same picture as {first_path_of[sha256]}"))
                continue
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
    report.removed = sum(1 for path in previous if path not in current_paths)
    vectors = np.array([indexed.vector for indexed in kept], dtype=np.float32)
    write_catalog(
        folder,
        source=source_dir,
        descriptor_version=DESCRIPTOR_VERSION,
        entries=[indexed.entry for indexed in kept],
        vectors=vectors.reshape(len(kept), DESCRIPTOR_DIM),
    )
    report.total = len(kept)
    report.seconds = time.perf_counter() - started
    return report


def title_from_file_name(name: str) -> str:
    """``"red_running_shoe.jpg"`` -> ``"Red running shoe"``."""
    words = re.sub(r"[\s_\-]+", " ", Path(name).stem).strip()
    return words[:1].upper() + words[1:] if words else name


def _previous_run(folder: Path) -> dict[Path, _Indexed]:
    """What the last run indexed, by absolute path; empty if there is no usable catalog."""
    try:
        stored = read_catalog(folder, descriptor_version=DESCRIPTOR_VERSION, dim=DESCRIPTOR_DIM)
    except CatalogError:
        # Nothing reusable: everything is indexed from scratch.
        return {}
    vectors = stored.vectors.astype(np.float32)
    return {
        entry.path: _Indexed(entry, vector)
        for entry, vector in zip(stored.entries, vectors, strict=True)
        if entry.path is not None
    }


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
    entry = CatalogEntry(
        id=sha256[:_SHORT_ID_LENGTH],
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

    bar: Iterable[_T] = tqdm(items, total=total, desc="Indexing", unit="image", file=sys.stderr)
    return bar
