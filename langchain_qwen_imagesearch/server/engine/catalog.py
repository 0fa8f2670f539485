"""The image catalog on disk, its incremental indexing, and search by image over it.

A catalog folder holds three files, written by :func:`build_catalog`:

- ``catalog.json``: format and feature versions, the source folder, the number of entries;
- ``entries.jsonl``: one JSON object per image (id, title, path, URL, SHA-256, size, mtime);
- ``vectors.npy``: one descriptor per entry, in the same order, as float16.

Images are not copied: entries point at the files in the source folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image, UnidentifiedImageError

from langchain_qwen_imagesearch.server.features import (
    FEATURE_DIM,
    FEATURE_VERSION,
    WORKING_SIZE,
    image_and_mirror_features,
    image_features,
)
from langchain_qwen_imagesearch.server.index import VectorIndex

CATALOG_FORMAT = 1
MANIFEST_NAME = "manifest.json"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MAX_HITS = 100
INDEXING_THREADS = min(8, os.cpu_count() or 1)

_META_FILE = "catalog.json"
_ENTRIES_FILE = "entries.jsonl"
_VECTORS_FILE = "vectors.npy"
_SHORT_ID_LENGTH = 16
_T = TypeVar("_T")


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


@dataclass(frozen=True)
class Match:
    """A search hit."""

    entry: CatalogEntry
    score: float
    """Cosine similarity of the descriptors, in [-1, 1]; higher is closer."""
    near_duplicate: bool
    """The score is high enough for the hit to be the same picture, edited."""


@dataclass(frozen=True)
class HitRule:
    """Which catalog entries a search returns, and which count as the same picture.

    The defaults are calibrated in docs/search-engine.md on the scores of edited copies
    against those of unrelated pictures (tests/benchmarks/bench_search_engine.py).
    """

    min_score: float = 0.6
    """No hit scores below this: unrelated photos rarely reach it, edited copies almost always
    do. A query unrelated to the whole catalog gets no hits rather than padding."""
    relative_margin: float = 0.15
    """Hits also score within this of the best hit: next to a close match, entries far below
    it are not similar in the same sense."""
    near_duplicate_score: float = 0.8
    """From this score on, a hit is taken for the same picture (an edited copy)."""

    def select(self, scores: NDArray[np.float32]) -> int:
        """How many of ``scores`` (sorted best first) are hits."""
        if not len(scores):
            return 0
        cutoff = max(self.min_score, float(scores[0]) - self.relative_margin)
        return int(np.count_nonzero(scores >= cutoff))


DEFAULT_HIT_RULE = HitRule()


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


class Catalog:
    """Indexed images and their descriptors, searchable by image."""

    def __init__(
        self,
        entries: Sequence[CatalogEntry],
        vectors: ArrayLike,
        directory: str | Path,
        *,
        hit_rule: HitRule = DEFAULT_HIT_RULE,
    ) -> None:
        """A catalog from ready descriptors (one row per entry), as :meth:`open` builds it.

        Tests and benchmarks can pass synthetic vectors: ``directory`` is then only reported
        by :attr:`directory`.
        """
        index = VectorIndex(vectors)
        if len(index) != len(entries):
            raise ValueError(f"{len(entries)} entries but {len(index)} vectors")
        if len(index) and index.dim != FEATURE_DIM:
            raise ValueError(f"vectors have {index.dim} values, image features have {FEATURE_DIM}")
        self._entries = tuple(entries)
        self._by_id = {entry.id: entry for entry in self._entries}
        if len(self._by_id) != len(self._entries):
            raise ValueError("entry ids must be unique")
        self._index = index
        self._directory = Path(directory)
        self.hit_rule = hit_rule

    @classmethod
    def open(cls, directory: str | Path, *, hit_rule: HitRule = DEFAULT_HIT_RULE) -> Catalog:
        """Load the catalog that :func:`build_catalog` wrote into ``directory``.

        Raises :class:`CatalogError`, saying how to rebuild it, if there is none or it is
        damaged or was built by an incompatible version.
        """
        folder = Path(directory).expanduser().resolve()
        meta = _read_meta(folder)
        try:
            entries = [
                _entry_from_record(json.loads(line))
                for line in (folder / _ENTRIES_FILE).read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
            vectors = np.load(folder / _VECTORS_FILE, allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise _unusable(folder, meta, f"it is incomplete or corrupt ({error})") from error
        if vectors.shape != (meta["count"], FEATURE_DIM) or len(entries) != meta["count"]:
            raise _unusable(folder, meta, "its files do not agree (an interrupted write?)")
        return cls(entries, vectors, folder, hit_rule=hit_rule)

    @property
    def directory(self) -> Path:
        return self._directory

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> tuple[CatalogEntry, ...]:
        """All entries, in catalog order."""
        return self._entries

    def get(self, entry_id: str) -> CatalogEntry | None:
        return self._by_id.get(entry_id)

    def search(self, image: Image.Image, limit: int = MAX_HITS) -> list[Match]:
        """Catalog images that look like ``image`` (as is or mirrored), best first.

        Returns the hits that :attr:`hit_rule` selects, at most ``limit`` (1 to 100);
        possibly none.
        """
        return self.search_vectors(image_and_mirror_features(image), limit)

    def search_vectors(self, queries: ArrayLike, limit: int = MAX_HITS) -> list[Match]:
        """:meth:`search` for ready descriptors (one per row; each entry keeps its best)."""
        if not 1 <= limit <= MAX_HITS:
            raise ValueError(f"limit must be between 1 and {MAX_HITS}, got {limit}")
        rule = self.hit_rule
        best = self._index.search(queries, limit, min_score=rule.min_score)
        hits = rule.select(best.scores)
        return [
            Match(
                entry=self._entries[row],
                score=float(score),
                near_duplicate=bool(score >= rule.near_duplicate_score),
            )
            for row, score in zip(best.rows[:hits], best.scores[:hits], strict=True)
        ]


def demo_catalog_dir() -> Path:
    """The bundled demo photos (a source folder for :func:`build_catalog`)."""
    return Path(__file__).resolve().parent / "demo_catalog"


def build_catalog(
    source: str | Path,
    catalog_dir: str | Path,
    *,
    manifest: str | Path | None = None,
    progress: bool = False,
) -> IndexReport:
    """Index every image below ``source`` into ``catalog_dir``, incrementally.

    Files whose size and modification time are unchanged since the last run keep their
    descriptors; so do files whose content (SHA-256) was indexed before. Files gone from
    ``source`` are dropped. Titles and URLs come from ``manifest`` (default: a
    ``manifest.json`` in ``source``, if any), mapping relative paths to ``{"title", "url"}``;
    otherwise the title is made from the file name. Unreadable files are skipped and reported.
    """
    started = time.perf_counter()
    source_dir = Path(source).expanduser().resolve()
    if not source_dir.is_dir():
        raise CatalogError(f"{source} is not a folder: give the folder of images to index")
    folder = Path(catalog_dir).expanduser().resolve()
    descriptions = _read_manifest(_manifest_path(source_dir, manifest))
    previous = _previous_records(folder)
    known_vectors = {record.sha256: record.vector for record in previous.values()}

    report = IndexReport()
    records: list[_Record] = []
    first_path_of: dict[str, str] = {}
    paths = _image_files(source_dir)
    # Decoding, hashing and most NumPy work release the GIL, so threads use several cores.
    pool = ThreadPoolExecutor(max_workers=INDEXING_THREADS)
    try:
        outcomes = pool.map(
            lambda path: _try_index_file(path, previous.get(str(path)), known_vectors), paths
        )
        for path, outcome in zip(paths, _progress(outcomes, len(paths), progress), strict=True):
            relative = path.relative_to(source_dir).as_posix()
            if isinstance(outcome, _Unreadable):
                report.skipped.append((relative, str(outcome)))
                continue
            if outcome.sha256 in first_path_of:
                same = first_path_of[outcome.sha256]
                report.skipped.append((relative, f"same picture as {same}"))
                continue
            first_path_of[outcome.sha256] = relative
            description = descriptions.get(relative, {})
            outcome.title = description.get("title") or title_from_file_name(path.name)
            outcome.source_url = description.get("url")
            earlier = previous.get(str(path))
            if earlier is None:
                report.added += 1
            elif earlier.sha256 == outcome.sha256:
                report.unchanged += 1
            else:
                report.updated += 1
            records.append(outcome)
    finally:
        # On an interruption, don't wait for the images still queued.
        pool.shutdown(cancel_futures=True)

    current_paths = {record.path for record in records}
    report.removed = sum(1 for path in previous if path not in current_paths)
    _write_catalog(folder, source_dir, records)
    report.total = len(records)
    report.seconds = time.perf_counter() - started
    return report


def title_from_file_name(name: str) -> str:
    """``"red_running_shoe.jpg"`` -> ``"Red running shoe"``."""
    words = re.sub(r"[\s_\-]+", " ", Path(name).stem).strip()
    return words[:1].upper() + words[1:] if words else name


@dataclass
class _Record:
    """An entry as stored on disk, with what incremental indexing needs."""

    path: str
    sha256: str
    size: int
    mtime_ns: int
    vector: NDArray[np.float32]
    title: str = ""
    source_url: str | None = None

    def entry(self) -> CatalogEntry:
        return CatalogEntry(
            id=self.sha256[:_SHORT_ID_LENGTH],
            title=self.title,
            path=Path(self.path),
            source_url=self.source_url,
            sha256=self.sha256,
        )

    def stored(self) -> dict[str, Any]:
        fields = asdict(self.entry())
        fields.update(path=self.path, size=self.size, mtime_ns=self.mtime_ns)
        return fields


class _Unreadable(Exception):
    """A file that cannot be indexed; the message says why."""


def _try_index_file(
    path: Path, earlier: _Record | None, known_vectors: dict[str, NDArray[np.float32]]
) -> _Record | _Unreadable:
    try:
        return _index_file(path, earlier, known_vectors)
    except _Unreadable as error:
        return error


def _index_file(
    path: Path, earlier: _Record | None, known_vectors: dict[str, NDArray[np.float32]]
) -> _Record:
    """The record of ``path``, reusing earlier work when the file or its content is known."""
    try:
        stat = path.stat()
        if earlier and (earlier.size, earlier.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            return _Record(
                str(path), earlier.sha256, stat.st_size, stat.st_mtime_ns, earlier.vector
            )
        data = path.read_bytes()
    except OSError as error:
        raise _Unreadable(f"cannot read the file: {error.strerror or error}") from error
    sha256 = hashlib.sha256(data).hexdigest()
    vector = known_vectors.get(sha256)
    if vector is None:
        vector = _features_of_file_content(data)
    return _Record(str(path), sha256, stat.st_size, stat.st_mtime_ns, vector)


def _features_of_file_content(data: bytes) -> NDArray[np.float32]:
    try:
        with warnings.catch_warnings():
            # Huge images are fine here: they are decoded at reduced size when the format allows.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # JPEGs decode straight at 1/2 to 1/8 scale: far faster for large photos.
                image.draft(None, (2 * WORKING_SIZE, 2 * WORKING_SIZE))
                return image_features(image)
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


def _manifest_path(source_dir: Path, manifest: str | Path | None) -> Path | None:
    if manifest is not None:
        return Path(manifest).expanduser()
    default = source_dir / MANIFEST_NAME
    return default if default.is_file() else None


def _read_manifest(path: Path | None) -> dict[str, dict[str, str]]:
    """Titles and URLs by relative path (``/``-separated), checked for shape."""
    if path is None:
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogError(f"cannot read the manifest {path}: {error}") from error
    if not isinstance(content, dict):
        raise CatalogError(f'manifest {path}: expected {{"<relative path>": {{"title", "url"}}}}')
    descriptions: dict[str, dict[str, str]] = {}
    for relative, description in content.items():
        if not isinstance(description, dict) or not all(
            isinstance(description.get(key, ""), str) for key in ("title", "url")
        ):
            raise CatalogError(f"manifest {path}: {relative!r} needs string title and url")
        url = description.get("url")
        if url and not url.startswith(("http://", "https://")):
            raise CatalogError(f"manifest {path}: the url of {relative!r} is not http(s)")
        key = relative.replace("\\", "/").removeprefix("./")
        descriptions[key] = {
            k: description[k].strip() for k in ("title", "url") if k in description
        }
    return descriptions


def _read_meta(folder: Path) -> dict[str, Any]:
    meta_file = folder / _META_FILE
    if not meta_file.is_file():
        raise CatalogError(
            f"no catalog in {folder}: build one with "
            f"`qwen-imagesearch index SRC --catalog {folder}` (SRC: a folder of images)"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        count = meta["count"]
        versions = (meta["format"], meta["feature_version"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _unusable(folder, {}, f"{_META_FILE} is corrupt ({error})") from error
    if not isinstance(count, int) or versions != (CATALOG_FORMAT, FEATURE_VERSION):
        raise _unusable(folder, meta, "it was built by another version of this package")
    return dict(meta)


def _unusable(folder: Path, meta: dict[str, Any], reason: str) -> CatalogError:
    source = meta.get("source") or "SRC"
    return CatalogError(
        f"the catalog in {folder} cannot be used: {reason}. Rebuild it with "
        f"`qwen-imagesearch index {source} --catalog {folder}`"
    )


def _entry_from_record(record: dict[str, Any]) -> CatalogEntry:
    return CatalogEntry(
        id=str(record["id"]),
        title=str(record["title"]),
        path=Path(record["path"]) if record.get("path") else None,
        source_url=record.get("source_url"),
        sha256=str(record["sha256"]),
    )


def _previous_records(folder: Path) -> dict[str, _Record]:
    """What the last run indexed, by absolute path; empty if there is no usable catalog."""
    try:
        meta = _read_meta(folder)
        lines = (folder / _ENTRIES_FILE).read_text(encoding="utf-8").splitlines()
        stored = [json.loads(line) for line in lines if line.strip()]
        vectors = np.load(folder / _VECTORS_FILE, allow_pickle=False).astype(np.float32)
        if vectors.shape != (meta["count"], FEATURE_DIM) or len(stored) != meta["count"]:
            return {}
        return {
            item["path"]: _Record(
                item["path"], item["sha256"], item["size"], item["mtime_ns"], vector
            )
            for item, vector in zip(stored, vectors, strict=True)
        }
    except (CatalogError, OSError, ValueError, KeyError, TypeError):
        # Nothing reusable: everything is indexed from scratch.
        return {}


def _write_catalog(folder: Path, source_dir: Path, records: list[_Record]) -> None:
    """Write the three files, each atomically; ``catalog.json`` last, as the commit mark."""
    folder.mkdir(parents=True, exist_ok=True)
    vectors = np.array([record.vector for record in records], dtype=np.float16)
    with _replacing(folder / _VECTORS_FILE) as stream:
        np.save(stream, vectors.reshape(len(records), FEATURE_DIM), allow_pickle=False)
    with _replacing(folder / _ENTRIES_FILE) as stream:
        for record in records:
            stream.write(json.dumps(record.stored(), ensure_ascii=False).encode() + b"\n")
    meta = {
        "format": CATALOG_FORMAT,
        "feature_version": FEATURE_VERSION,
        "feature_dim": FEATURE_DIM,
        "source": str(source_dir),
        "count": len(records),
    }
    with _replacing(folder / _META_FILE) as stream:
        stream.write(json.dumps(meta, indent=2).encode() + b"\n")


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
