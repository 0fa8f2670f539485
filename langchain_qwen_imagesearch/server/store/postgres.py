"""A catalog in PostgreSQL with pgvector: shared by many servers, written by many index runs.

Two tables, made by the first index run:

- ``imagesearch_entries``: one row per entry: its key (from the sequence
  ``imagesearch_entry_keys``, kept for life), its fields, the appearance descriptor and the
  meaning descriptor (centred on the catalog's centre, unit length) with the length it had;
  HNSW indexes on both descriptors, by inner product;
- ``imagesearch_catalog``: one row: the descriptor versions, the meaning centre, when it was
  taken (``centred_at_count``, ``centre_version``) and the number of entries.

Readers take connections from a small pool; every statement stands alone (no transaction).
A writer holds a session advisory lock on its source folder for its whole run (two runs of
one folder wait for each other; the server drops the lock if the run dies), and each write
is one transaction that first locks the catalog row, so writes never interleave. A write
changes the rows in place, or, when the meaning centre is taken anew, fills a new table and
swaps it in, with its indexes built in bulk (far faster than row by row). Readers go on
reading the old table meanwhile.

psycopg is imported only when a database is used: ``is_database_url`` serves installations
without the ``postgres`` extra.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray

from langchain_qwen_imagesearch.server.store.catalog_files import CatalogError, StoredMeaning
from langchain_qwen_imagesearch.server.store.entry_table import CatalogEntry

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.rows import TupleRow

URL_SCHEMES = ("postgresql://", "postgres://")
POSTGRES_EXTRA_HINT = (
    "a PostgreSQL catalog needs the postgres extra: "
    "pip install 'langchain-qwen-imagesearch[postgres]'"
)
ENTRIES = "imagesearch_entries"
CATALOG = "imagesearch_catalog"
_NEXT_ENTRIES = "imagesearch_entries_next"
_KEYS = "imagesearch_entry_keys"
_STAGED = "imagesearch_staged"
_ENTRY_FIELDS = "id, title, path, source_url, sha256, size, mtime_ns"
_COLUMNS = f"key, {_ENTRY_FIELDS}, appearance, meaning, meaning_norm"
_COPY_TYPES = ["bigint"] + ["text"] * 5 + ["bigint", "bigint", "vector", "vector", "real"]
_LOCK_SPACE = 0x51_6953  # advisory locks of this package: (space, folder hash)
_SCHEMA_LOCK = 0
CONNECT_TIMEOUT = 10
"""Seconds to wait for the server before saying it is unreachable."""
POOL_SIZE = 8
"""Connections a reading process opens at most: searches beyond wait for one, so that many
servers stay within the database's ``max_connections`` (100 by default)."""
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
"""Graph edges per node and candidates kept while building: pgvector's default edges, and
the build effort of the local approximate indexes (tests/benchmarks/bench_catalog_scale.py)."""
INDEX_BUILD_MEMORY = "1GB"
"""``maintenance_work_mem`` while a rewrite builds its HNSW indexes: pgvector builds them
many times faster while the graph fits in it (PostgreSQL's default is 64 MB; a 100,000-entry
meaning index needs about 600 MB)."""
BATCH = 5_000
"""Rows read or written at a time when the whole catalog is rewritten."""


def is_database_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a catalog folder."""
    return str(location).startswith(URL_SCHEMES)


def printable_location(location: str | Path) -> str:
    """``location`` fit to show: a database URL without its password."""
    text = str(location)
    password = urlsplit(text).password if is_database_url(text) else None
    return text.replace(f":{password}@", ":***@") if password else text


@dataclass(frozen=True)
class VectorLayout:
    """What a catalog's descriptors are: readers and writers check that they agree."""

    appearance_version: int
    appearance_dim: int
    meaning_model: str
    meaning_dim: int


@dataclass(frozen=True)
class StoredRows:
    """Entries with their keys and descriptors, row for row."""

    entries: list[CatalogEntry]
    keys: NDArray[np.int64]
    appearance: NDArray[np.floating[Any]]
    meaning: StoredMeaning


class EntriesChanged(Exception):
    """Entries a search found were deleted before it read them: search again."""


# ------------------------------------------------------------------ connections


def _connect(url: str) -> Connection[TupleRow]:
    try:
        import psycopg
    except ImportError as error:
        raise CatalogError(f"{POSTGRES_EXTRA_HINT} ({error})") from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as error:
        raise CatalogError(
            f"cannot open the catalog database {printable_location(url)}: {_reason(error, url)}"
        ) from None


def _with_vectors(connection: Connection[TupleRow], url: str) -> Connection[TupleRow]:
    """``connection``, reading and writing pgvector's vectors as NumPy arrays."""
    from pgvector.psycopg import register_vector

    try:
        register_vector(connection)
    except Exception as error:  # pgvector raises ProgrammingError, or fails on a missing type
        connection.close()
        raise CatalogError(
            f"the database {printable_location(url)} has no pgvector extension ({error}): "
            "install pgvector on the server, then run CREATE EXTENSION vector in it"
        ) from None
    return connection


def _reason(error: BaseException, url: str) -> str:
    """The first line of a driver error, never showing the URL's password."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    password = urlsplit(url).password
    return lines[0].replace(password, "***") if password else lines[0]


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Database failures inside (the server gone, a lost connection) as one-line
    :class:`CatalogError`."""
    import psycopg

    try:
        yield
    except psycopg.Error as error:
        raise CatalogError(
            f"the catalog database {printable_location(url)} failed: {_reason(error, url)}"
        ) from None


class _Pool:
    """Connections for reading, opened as needed, at most ``size`` in use at once; one is
    never shared between threads while it is in use."""

    def __init__(self, open_one: Callable[[], Connection[TupleRow]], size: int) -> None:
        self._open_one = open_one
        self._idle: queue.LifoQueue[Connection[TupleRow]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[Connection[TupleRow]]:
        with self._slots:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                connection = self._open_one()
            try:
                yield connection
            finally:
                # A connection the server dropped is replaced by the next use.
                if connection.broken or connection.closed:
                    connection.close()
                else:
                    self._idle.put(connection)


# ------------------------------------------------------------------ reading


class CatalogDatabase:
    """A catalog in a database, for searching: every read is one statement."""

    def __init__(self, url: str, layout: VectorLayout, *, ef_search: int) -> None:
        self.url = url
        self._layout = layout
        self._ef_search = ef_search
        self._pool = _Pool(self._open_connection, POOL_SIZE)

    @classmethod
    def open(cls, url: str, layout: VectorLayout, *, ef_search: int) -> CatalogDatabase:
        """The catalog in ``url``; raises :class:`CatalogError`, saying what to do, if the
        database is unreachable or holds no usable catalog."""
        database = cls(url, layout, ef_search=ef_search)
        with database._pool.connection():
            pass  # connects, and checks the catalog
        return database

    def _open_connection(self) -> Connection[TupleRow]:
        connection = _connect(self.url)
        with database_errors(self.url):
            _check_catalog(connection, self.url, self._layout)
            connection.execute(f"SET hnsw.ef_search = {int(self._ef_search)}")
            # JIT compiling a plan costs far more than the searches here take.
            connection.execute("SET jit = off")
        return _with_vectors(connection, self.url)

    def count(self) -> int:
        return int(self._one(f"SELECT entry_count FROM {CATALOG}")[0])

    def centre_version(self) -> int:
        return int(self._one(f"SELECT centre_version FROM {CATALOG}")[0])

    def centre(self) -> tuple[int, NDArray[np.float32] | None]:
        """The meaning centre (None before the first entries) and its version."""
        version, centre = self._one(f"SELECT centre_version, meaning_centre FROM {CATALOG}")
        return int(version), _array(centre) if centre is not None else None

    def nearest(
        self, column: str, queries: NDArray[np.float32], k: int, min_score: float
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The keys of about the ``k`` best entries by ``column`` for any of ``queries``
        (from its HNSW index), scoring at least ``min_score``, best first; and their
        scores (inner products, each key's best)."""
        column = _vector_column(column)
        branch = (
            f"(SELECT key, {column} <#> %b AS distance FROM {ENTRIES} ORDER BY distance LIMIT %s)"
        )
        branches = " UNION ALL ".join([branch] * len(queries))
        query = (
            f"SELECT key, -min(distance) AS score FROM ({branches}) AS found GROUP BY key "
            "HAVING -min(distance) >= %s ORDER BY score DESC, key LIMIT %s"
        )
        params: list[Any] = [value for vector in queries for value in (vector, k)]
        with self._pool.connection() as connection:
            rows = connection.execute(query, [*params, min_score, k], binary=True).fetchall()
        return (
            np.array([row[0] for row in rows], np.int64),
            np.array([row[1] for row in rows], np.float32),
        )

    def scores(
        self, column: str, queries: NDArray[np.float32], keys: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        """Each of ``keys``' best inner product by ``column`` with any of ``queries``."""
        if not len(keys):
            return np.zeros(0, np.float32)
        column = _vector_column(column)
        distances = ", ".join([f"{column} <#> %b"] * len(queries))
        query = f"SELECT key, -LEAST({distances}) FROM {ENTRIES} WHERE key = ANY(%s::bigint[])"
        with self._pool.connection() as connection:
            rows = connection.execute(query, [*queries, keys.tolist()], binary=True).fetchall()
        return np.array(_in_order({row[0]: row[1] for row in rows}, keys), np.float32)

    def entries_of(self, keys: NDArray[np.int64]) -> list[CatalogEntry]:
        """The entries of ``keys``, in that order, in one query."""
        if not len(keys):
            return []
        query = f"SELECT key, {_ENTRY_FIELDS} FROM {ENTRIES} WHERE key = ANY(%s::bigint[])"
        with self._pool.connection() as connection:
            rows = connection.execute(query, [keys.tolist()]).fetchall()
        return _in_order({row[0]: _entry(row[1:]) for row in rows}, keys)

    def entry(self, key: int) -> CatalogEntry:
        return self.entries_of(np.array([key], np.int64))[0]

    def key_of(self, entry_id: str) -> int | None:
        found = self._maybe_one(f"SELECT key FROM {ENTRIES} WHERE id = %s", entry_id)
        return int(found[0]) if found is not None else None

    def entry_with_id(self, entry_id: str) -> CatalogEntry | None:
        found = self._maybe_one(f"SELECT {_ENTRY_FIELDS} FROM {ENTRIES} WHERE id = %s", entry_id)
        return _entry(found) if found is not None else None

    def all_entries(self) -> Iterator[CatalogEntry]:
        """Every entry, by key, read a batch at a time."""
        after = -1
        while True:
            query = (
                f"SELECT key, {_ENTRY_FIELDS} FROM {ENTRIES} WHERE key > %s ORDER BY key LIMIT %s"
            )
            with self._pool.connection() as connection:
                rows = connection.execute(query, [after, BATCH]).fetchall()
            yield from (_entry(row[1:]) for row in rows)
            if len(rows) < BATCH:
                return
            after = rows[-1][0]

    def _one(self, query: str) -> tuple[Any, ...]:
        with self._pool.connection() as connection:
            row = connection.execute(query, binary=True).fetchone()
        assert row is not None  # the catalog row exists once the schema does
        return row

    def _maybe_one(self, query: str, value: str) -> tuple[Any, ...] | None:
        with self._pool.connection() as connection:
            return connection.execute(query, [value]).fetchone()


def _entry(row: Sequence[Any]) -> CatalogEntry:
    entry_id, title, path, source_url, sha256, size, mtime_ns = row
    return CatalogEntry(
        id=entry_id,
        title=title,
        path=Path(path) if path is not None else None,
        source_url=source_url,
        sha256=sha256,
        size=int(size),
        mtime_ns=int(mtime_ns),
    )


def _in_order(found: dict[int, Any], keys: NDArray[np.int64]) -> list[Any]:
    try:
        return [found[int(key)] for key in keys]
    except KeyError:
        raise EntriesChanged from None


def _vector_column(name: str) -> str:
    if name not in ("appearance", "meaning"):
        raise ValueError(f"no vector column {name!r}")
    return name


def _array(vector: Any) -> NDArray[np.float32]:
    """A vector as pgvector's loader gives it (a ``Vector``, or an array before 0.4)."""
    to_numpy = getattr(vector, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy is not None else vector, np.float32)


def _check_catalog(connection: Connection[TupleRow], url: str, layout: VectorLayout) -> None:
    """Raises :class:`CatalogError`, saying what to do, unless ``connection``'s database
    holds a catalog of ``layout``."""
    exists = connection.execute("SELECT to_regclass(%s) IS NOT NULL", [CATALOG]).fetchone()
    if not exists or not exists[0]:
        raise CatalogError(
            f"no catalog in the database {printable_location(url)}: build one with "
            "`qwen-imagesearch index SRC --catalog URL` (SRC: a folder of images, URL: this "
            "database's)"
        )
    row = connection.execute(f"SELECT appearance_version, meaning_model FROM {CATALOG}").fetchone()
    if row != (layout.appearance_version, layout.meaning_model):
        raise CatalogError(
            f"the catalog in the database {printable_location(url)} was built by another "
            f"version of this package (descriptors {row}): index into a new database, or drop "
            f"the tables {ENTRIES} and {CATALOG} and index again"
        )


# ------------------------------------------------------------------ writing


class CatalogWriter:
    """One connection of an index run: it makes the catalog's tables if there are none,
    holds the run's folder lock, reads what the last runs stored and writes."""

    def __init__(self, connection: Connection[TupleRow], url: str, layout: VectorLayout) -> None:
        self._connection = connection
        self.url = url
        self._layout = layout

    @classmethod
    @contextmanager
    def open(cls, url: str, layout: VectorLayout) -> Iterator[CatalogWriter]:
        """A writer of the catalog in ``url``, its tables made if missing; database failures
        inside are :class:`CatalogError`."""
        connection = _connect(url)
        try:
            with database_errors(url):
                _create_schema(connection, url, layout)
                _check_catalog(connection, url, layout)
                yield cls(_with_vectors(connection, url), url, layout)
        finally:
            connection.close()

    @contextmanager
    def folder_lock(self, folder: str, on_wait: Callable[[], None] | None) -> Iterator[None]:
        """Held by the run indexing ``folder``; ``on_wait`` is called once if another run
        holds it (this one then waits for it)."""
        digest = hashlib.sha256(folder.encode()).digest()
        lock = [_LOCK_SPACE, int.from_bytes(digest[:4], "big", signed=True)]
        got = self._connection.execute("SELECT pg_try_advisory_lock(%s, %s)", lock).fetchone()
        if not got or not got[0]:
            if on_wait is not None:
                on_wait()
            self._connection.execute("SELECT pg_advisory_lock(%s, %s)", lock)
        try:
            yield
        finally:
            if not self._connection.broken:
                self._connection.execute("SELECT pg_advisory_unlock(%s, %s)", lock)

    def rows_below(self, folder: str) -> StoredRows:
        """The entries of files below ``folder``, as one snapshot with the centre."""
        with self._connection.transaction():
            self._connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            centre = _centre_of(self._connection, self._layout)
            return _rows(
                self._connection,
                f"SELECT {_COLUMNS} FROM {ENTRIES} WHERE path >= %s AND path < %s",
                _path_range(folder),
                self._layout,
                centre,
            )

    @contextmanager
    def write(self) -> Iterator[CatalogWrite]:
        """One write transaction, once every other writer's is done: committed on leaving,
        rolled back by an error."""
        with self._connection.transaction():
            row = self._connection.execute(
                f"SELECT entry_count, centred_at_count, meaning_centre FROM {CATALOG} FOR UPDATE",
                binary=True,
            ).fetchone()
            assert row is not None  # made with the tables
            centre = _array(row[2]) if row[2] is not None else None
            yield CatalogWrite(self._connection, self._layout, int(row[0]), int(row[1]), centre)


class CatalogWrite:
    """What one write transaction can do (:meth:`CatalogWriter.write`)."""

    def __init__(
        self,
        connection: Connection[TupleRow],
        layout: VectorLayout,
        count: int,
        centred_at_count: int,
        centre: NDArray[np.float32] | None,
    ) -> None:
        self._connection = connection
        self._layout = layout
        self.count = count
        """Entries before this write."""
        self.centred_at_count = centred_at_count
        self.centre = centre
        """The meaning centre the stored rows are centred on (None before any)."""
        self._replaced = False

    def delete_below(self, folder: str, keep_ids: Sequence[str]) -> int:
        """Delete the entries of files below ``folder`` but those of ``keep_ids``; how many."""
        low, high = _path_range(folder)
        deleted = self._connection.execute(
            f"DELETE FROM {ENTRIES} WHERE path >= %s AND path < %s AND NOT id = ANY(%s::text[])",
            [low, high, list(keep_ids)],
        )
        return deleted.rowcount

    def keys_for(self, ids: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The key of each of ``ids``: its own if it is stored (True in the second array),
        else a new one from the sequence."""
        rows = self._connection.execute(
            f"SELECT e.key IS NOT NULL, coalesce(e.key, nextval('{_KEYS}')) "
            f"FROM unnest(%s::text[]) WITH ORDINALITY AS wanted(id, n) "
            f"LEFT JOIN {ENTRIES} AS e USING (id) ORDER BY n",
            [list(ids)],
        ).fetchall()
        return (
            np.array([row[1] for row in rows], np.int64),
            np.array([row[0] for row in rows], np.bool_),
        )

    def upsert(self, rows: StoredRows) -> None:
        """Write ``rows`` in place: new ids are added, stored ones replaced (their keys are
        the stored ones: :meth:`keys_for`)."""
        if not len(rows.keys):
            return
        self._connection.execute(f"CREATE TEMP TABLE {_STAGED} (LIKE {ENTRIES}) ON COMMIT DROP")
        _copy(self._connection, _STAGED, [rows])
        replaced = ", ".join(f"{name} = EXCLUDED.{name}" for name in _COLUMNS.split(", ")[2:])
        self._connection.execute(
            f"INSERT INTO {ENTRIES} ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGED} "
            f"ON CONFLICT (id) DO UPDATE SET {replaced}"
        )
        self._connection.execute(f"DROP TABLE {_STAGED}")

    def batches(self, excluding_ids: Sequence[str]) -> Iterator[StoredRows]:
        """Every stored row but those of ``excluding_ids``, a batch at a time, by key."""
        after = -1
        centre = _centre_of(self._connection, self._layout)
        while True:
            batch = _rows(
                self._connection,
                f"SELECT {_COLUMNS} FROM {ENTRIES} WHERE key > %s AND NOT id = ANY(%s::text[]) "
                "ORDER BY key LIMIT %s",
                [after, list(excluding_ids), BATCH],
                self._layout,
                centre,
            )
            if len(batch.keys):
                yield batch
            if len(batch.keys) < BATCH:
                return
            after = int(batch.keys[-1])

    def replace_all(self, batches: Iterable[StoredRows]) -> None:
        """Replace every row by ``batches``: a new table filled, indexed in bulk, and swapped
        in when the transaction commits (readers see the old one until then)."""
        self._connection.execute(f"CREATE TABLE {_NEXT_ENTRIES} (LIKE {ENTRIES} INCLUDING STORAGE)")
        _copy(self._connection, _NEXT_ENTRIES, batches)
        ops = f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
        for statement in (
            f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'",
            f"ALTER TABLE {_NEXT_ENTRIES} ADD PRIMARY KEY (key), ADD UNIQUE (id)",
            f"CREATE INDEX ON {_NEXT_ENTRIES} (path)",
            f"CREATE INDEX ON {_NEXT_ENTRIES} USING hnsw (appearance vector_ip_ops) {ops}",
            f"CREATE INDEX ON {_NEXT_ENTRIES} USING hnsw (meaning vector_ip_ops) {ops}",
            f"DROP TABLE {ENTRIES}",
            f"ALTER TABLE {_NEXT_ENTRIES} RENAME TO {ENTRIES}",
            f"ANALYZE {ENTRIES}",
        ):
            self._connection.execute(statement)
        self._replaced = True

    def finish(self, count: int, centre: NDArray[np.float32], centred_at_count: int) -> None:
        """Record the catalog as this write leaves it: ``count`` entries, centred on
        ``centre`` since ``centred_at_count``."""
        self._connection.execute(
            f"UPDATE {CATALOG} SET entry_count = %s, meaning_centre = %b, centred_at_count = %s, "
            "centre_version = centre_version + %s",
            [count, centre, centred_at_count, int(self._replaced)],
        )


def _create_schema(connection: Connection[TupleRow], url: str, layout: VectorLayout) -> None:
    """The catalog's tables, unless they exist; one writer at a time makes them."""
    import psycopg

    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_SPACE, _SCHEMA_LOCK])
        try:
            connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as error:
            raise CatalogError(
                f"the database {printable_location(url)} has no pgvector extension, and it "
                f"cannot be added ({_reason(error, url)}): install pgvector on the server, "
                "and run CREATE EXTENSION vector in the database as its owner"
            ) from None
        exists = connection.execute("SELECT to_regclass(%s) IS NOT NULL", [CATALOG]).fetchone()
        if exists and exists[0]:
            return
        for statement in (
            f"CREATE SEQUENCE {_KEYS}",
            f"""CREATE TABLE {ENTRIES} (
                key bigint PRIMARY KEY,
                id text NOT NULL UNIQUE,
                title text NOT NULL,
                path text COLLATE "C",
                source_url text,
                sha256 text NOT NULL,
                size bigint NOT NULL,
                mtime_ns bigint NOT NULL,
                appearance vector({layout.appearance_dim}) NOT NULL,
                meaning vector({layout.meaning_dim}) NOT NULL,
                meaning_norm real NOT NULL
            )""",
            f"CREATE INDEX ON {ENTRIES} (path)",
            f"""CREATE TABLE {CATALOG} (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                appearance_version integer NOT NULL,
                meaning_model text NOT NULL,
                meaning_centre vector({layout.meaning_dim}),
                centre_version bigint NOT NULL DEFAULT 0,
                centred_at_count bigint NOT NULL DEFAULT 0,
                entry_count bigint NOT NULL DEFAULT 0
            )""",
        ):
            connection.execute(statement)
        connection.execute(
            f"INSERT INTO {CATALOG} (appearance_version, meaning_model) VALUES (%s, %s)",
            [layout.appearance_version, layout.meaning_model],
        )


def _centre_of(connection: Connection[TupleRow], layout: VectorLayout) -> NDArray[np.float32]:
    row = connection.execute(f"SELECT meaning_centre FROM {CATALOG}", binary=True).fetchone()
    if row is None or row[0] is None:
        return np.zeros(layout.meaning_dim, np.float32)
    return _array(row[0])


def _path_range(folder: str) -> tuple[str, str]:
    """Paths below ``folder`` sort from the first string to before the second (the path
    column sorts by code point)."""
    prefix = folder.rstrip(os.sep) + os.sep
    return prefix, prefix[:-1] + chr(ord(os.sep) + 1)


def _rows(
    connection: Connection[TupleRow],
    query: str,
    params: Sequence[Any],
    layout: VectorLayout,
    centre: NDArray[np.float32],
) -> StoredRows:
    """The rows ``query`` selects (``_COLUMNS``), their meaning centred on ``centre``."""
    rows = connection.execute(query, params, binary=True).fetchall()
    return StoredRows(
        entries=[_entry(row[1:8]) for row in rows],
        keys=np.array([row[0] for row in rows], np.int64),
        appearance=_matrix([row[8] for row in rows], layout.appearance_dim),
        meaning=StoredMeaning(
            layout.meaning_model,
            centre,
            # Stored from float16 units (``centred_on``): back to float16 without loss.
            _matrix([row[9] for row in rows], layout.meaning_dim).astype(np.float16),
            np.array([row[10] for row in rows], np.float32),
        ),
    )


def _matrix(vectors: list[Any], dim: int) -> NDArray[np.float32]:
    matrix = np.zeros((len(vectors), dim), np.float32)
    for row, vector in enumerate(vectors):
        matrix[row] = _array(vector)
    return matrix


def _copy(connection: Connection[TupleRow], table: str, batches: Iterable[StoredRows]) -> None:
    for batch in batches:
        statement = f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(_COPY_TYPES)
            for row, entry in enumerate(batch.entries):
                copy.write_row(
                    (
                        int(batch.keys[row]),
                        entry.id,
                        entry.title,
                        str(entry.path) if entry.path is not None else None,
                        entry.source_url,
                        entry.sha256,
                        entry.size,
                        entry.mtime_ns,
                        batch.appearance[row],
                        batch.meaning.units[row],
                        float(batch.meaning.norms[row]),
                    )
                )
