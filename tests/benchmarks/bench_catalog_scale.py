"""The catalog at scale: cold load, memory, search latency and recall at N entries.

    python tests/benchmarks/bench_catalog_scale.py --entries N [--backend local|postgres]
        [--dsn URL] [--catalog DIR] [--queries 200]

No image set here reaches a million pictures, so the catalog is **synthetic**: descriptors
drawn in clusters around low-rank centres (as real ones lie on a few dozen directions, not
uniformly), written by the same code an index run uses. Queries are edited copies of
catalog entries (appearance and meaning both close) and pictures of an entry's cluster
(meaning close, appearance unrelated).

- ``load_s``: opening the catalog in a fresh process (``Catalog.open``, or connecting to
  PostgreSQL), ``rss_mb`` that process's resident memory afterwards (and after the queries,
  with ``mapped_after_queries_mb`` of it pages of the catalog's mapped files);
- ``p50_ms``, ``p99_ms``: one search at a time (centring the query's meaning, both
  descriptors and the hit rule; the query's descriptors are ready, so the image encoder is
  not timed), on the second pass over the queries; ``first_pass_*`` the first, whose pages
  come from disk; with BLAS on one thread, as ``serve`` runs (``--blas-threads library``:
  BLAS's own default); ``--concurrency N`` runs the second pass N searches at a time;
- ``recall_at_10``: of the first 10 hits an exact scan of the same catalog returns, the
  share the measured search returns among its first 10; ``recall_at_100`` the same over all
  hits (up to 100).

With ``--backend postgres`` the catalog is written into PostgreSQL by the code an index run
uses, and searched there: in the database ``--dsn`` names (an empty one), or by default in a
pgserver (PostgreSQL 16 with pgvector) started in the catalog folder. ``rss_mb`` is then the
searching process's alone; ``database_mb`` is the database's size on disk.

The last line is one JSON object of the figures. With ``--catalog`` the catalog is kept and
reused by later runs of the same size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_qwen_imagesearch.server import Catalog, CatalogEntry
from langchain_qwen_imagesearch.server.engine.appearance import APPEARANCE_DIM, APPEARANCE_VERSION
from langchain_qwen_imagesearch.server.engine.meaning.encoder import MEANING_DIM, MEANING_MODEL
from langchain_qwen_imagesearch.server.engine.meaning.space import centred_on_mean
from langchain_qwen_imagesearch.server.engine.vector_index import one_blas_thread_per_search
from langchain_qwen_imagesearch.server.indexer import write_descriptors_to_database
from langchain_qwen_imagesearch.server.next_generation import write_descriptors
from langchain_qwen_imagesearch.server.store.catalog_files import read_catalog
from langchain_qwen_imagesearch.server.store.postgres import is_database_url, printable_location

RANK = 48
"""Directions the synthetic descriptors lie on, besides their noise."""
CLUSTER_SIZE = 50
CHUNK = 65_536
SEED = 7
SHARED_BUFFERS = "2GB"


def synthetic_rows(
    rng: np.random.Generator,
    basis: NDArray[np.float32],
    centres: NDArray[np.float32],
    labels: NDArray[np.int64],
    spread: float,
) -> NDArray[np.float16]:
    """Unit rows: each its cluster's centre plus low-rank and full noise, projected."""
    rank, dim = basis.shape
    mix = centres[labels] + spread * rng.normal(size=(len(labels), rank)).astype(np.float32)
    rows = mix @ basis + 0.05 * rng.normal(size=(len(labels), dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float16)


def synthetic_catalog(
    entries: int,
) -> tuple[list[CatalogEntry], NDArray[np.float16], NDArray[np.float16], dict[str, Any]]:
    rng = np.random.default_rng(SEED)
    clusters = max(1, entries // CLUSTER_SIZE)
    model: dict[str, Any] = {"clusters": clusters}
    appearance = np.empty((entries, APPEARANCE_DIM), np.float16)
    meaning = np.empty((entries, MEANING_DIM), np.float16)
    for name, target, dim in (
        ("appearance", appearance, APPEARANCE_DIM),
        ("meaning", meaning, MEANING_DIM),
    ):
        basis = rng.normal(size=(RANK, dim)).astype(np.float32)
        centres = rng.normal(size=(clusters, RANK)).astype(np.float32)
        model[name] = (basis, centres)
        for start in range(0, entries, CHUNK):
            labels = np.arange(start, min(entries, start + CHUNK)) % clusters
            target[start : start + len(labels)] = synthetic_rows(rng, basis, centres, labels, 0.6)
    rows = [
        CatalogEntry(
            id=f"{number:016x}",
            title=f"Synthetic picture {number}",
            path=None,
            source_url=f"https://example.com/pictures/{number}.jpg",
            sha256=f"{number:064x}",
        )
        for number in range(entries)
    ]
    return rows, appearance, meaning, model


def queries(
    appearance: NDArray[np.float16], meaning: NDArray[np.float16], model: dict[str, Any], count: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Appearance queries (two rows each, as a picture and its mirror) and meaning queries
    (the encoder's features, before centring): half edited copies, half cluster pictures."""
    rng = np.random.default_rng(SEED + 1)
    picked = rng.integers(0, len(appearance), count)
    copies = np.arange(count) % 2 == 0
    looks = np.asarray(appearance[picked], np.float32)
    basis, centres = model["appearance"]
    unrelated = synthetic_rows(rng, basis, centres, rng.integers(0, len(centres), count), 2.0)
    looks[~copies] = unrelated[~copies]
    looks += 0.01 * rng.normal(size=looks.shape).astype(np.float32)
    mirrored = looks + 0.05 * rng.normal(size=looks.shape).astype(np.float32)
    pair = np.stack([looks, mirrored], axis=1)
    pair /= np.linalg.norm(pair, axis=2, keepdims=True)
    basis, centres = model["meaning"]
    labels = picked % len(centres)
    kind = synthetic_rows(rng, basis, centres, labels, 0.6).astype(np.float32)
    means = np.where(copies[:, None], np.asarray(meaning[picked], np.float32), kind)
    return pair.astype(np.float32), means.astype(np.float32)


def measure(location: str | Path, query_file: Path, concurrency: int) -> dict[str, Any]:
    """In this (fresh) process: open, then search each query; the figures and hit ids."""
    started = time.perf_counter()
    catalog = Catalog.open(location)
    load_s = time.perf_counter() - started
    rss_after_load = rss_mb()
    data = np.load(query_file)
    first_pass, hits = timed_searches(catalog, data, 1)
    second_pass, _ = timed_searches(catalog, data, concurrency)
    return {
        "load_s": load_s,
        "rss_mb": rss_after_load,
        "rss_after_queries_mb": rss_mb(),
        "mapped_after_queries_mb": rss_mb("RssFile"),
        "first_pass_ms": first_pass,
        "durations_ms": second_pass,
        "hits": hits,
    }


def timed_searches(
    catalog: Catalog, data: Any, concurrency: int
) -> tuple[list[float], list[list[str]]]:
    """Each query once, ``concurrency`` at a time (as a server's request threads run them):
    the milliseconds each took and its first hit ids."""

    def one(looks: NDArray[np.float32], means: NDArray[np.float32]) -> tuple[float, list[str]]:
        begun = time.perf_counter()
        matches = catalog.search_vectors(looks, catalog.meaning_query(means))
        return (time.perf_counter() - begun) * 1000, [m.entry.id for m in matches]

    with ThreadPoolExecutor(concurrency) as pool:
        timed = list(pool.map(one, data["appearance"], data["meaning"]))
    return [duration for duration, _ in timed], [ids for _, ids in timed]


def exact_hits(location: str | Path, entries: int, query_file: Path) -> list[list[str]]:
    """The reference: the same catalog searched by an exact scan (for a database, made
    again as it was written: the first write centres the meaning on its mean)."""
    if is_database_url(location):
        rows, appearance, meaning, _ = synthetic_catalog(entries)
        exact = Catalog(rows, appearance, centred_on_mean(MEANING_MODEL, meaning))
    else:
        stored = read_catalog(
            Path(location).resolve(),
            appearance_version=APPEARANCE_VERSION,
            appearance_dim=APPEARANCE_DIM,
            meaning_model=MEANING_MODEL,
            meaning_dim=MEANING_DIM,
        )
        exact = Catalog(stored.entries, stored.appearance, stored.meaning)
    data = np.load(query_file)
    return [
        [m.entry.id for m in exact.search_vectors(looks, exact.meaning_query(means))]
        for looks, means in zip(data["appearance"], data["meaning"], strict=True)
    ]


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (``RssFile``: pages of mapped files, which the system
    can drop and reread; ``RssAnon``: its own)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def recall(measured: list[list[str]], reference: list[list[str]], top: int) -> float:
    """Of the first ``top`` hits of each exact search, the share among the measured first."""
    shares = [
        len(set(m[:top]) & set(r[:top])) / len(r[:top])
        for m, r in zip(measured, reference, strict=True)
        if r
    ]
    return float(np.mean(shares)) if shares else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, required=True)
    parser.add_argument("--backend", choices=["local", "postgres"], default="local")
    parser.add_argument("--dsn", help="PostgreSQL URL (postgres backend; default: pgserver)")
    parser.add_argument("--catalog", type=Path, help="folder to keep the catalog in")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--blas-threads",
        choices=["serve", "library"],
        default="serve",
        help="one BLAS thread as `serve` pins it (default), or BLAS's own default",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="searches at once in the second pass (the first is always one at a time)",
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        if args.blas_threads == "serve":
            one_blas_thread_per_search()
        queries = args.measure / "queries.npz"
        print(json.dumps(measure(args.dsn or args.measure, queries, args.concurrency)))
        return

    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        catalog_dir = (args.catalog or Path(workdir) / "catalog").resolve()
        location: str | Path = catalog_dir
        if args.backend == "postgres":
            location = args.dsn or stack.enter_context(pgserver_url(catalog_dir / "pgdata"))
        build_s = build(location, catalog_dir, args.entries, args.queries)
        query_file = catalog_dir / "queries.npz"
        reference = exact_hits(location, args.entries, query_file)
        command = [
            sys.executable,
            __file__,
            "--entries",
            str(args.entries),
            "--blas-threads",
            args.blas_threads,
            "--concurrency",
            str(args.concurrency),
            "--measure",
            str(catalog_dir),
        ]
        if is_database_url(location):
            command += ["--dsn", str(location)]
        run = subprocess.run(command, capture_output=True, text=True, check=True)
        measured = json.loads(run.stdout.strip().splitlines()[-1])
        durations = np.asarray(measured["durations_ms"])
        first_pass = np.asarray(measured["first_pass_ms"])
        figures = {
            "entries": args.entries,
            "dim": APPEARANCE_DIM + MEANING_DIM,
            "backend": args.backend,
            "blas_threads": args.blas_threads,
            "concurrency": args.concurrency,
            "synthetic": True,
            "build_s": round(build_s, 1),
            "load_s": round(measured["load_s"], 3),
            "rss_mb": round(measured["rss_mb"], 1),
            "rss_after_queries_mb": round(measured["rss_after_queries_mb"], 1),
            "mapped_after_queries_mb": round(measured["mapped_after_queries_mb"], 1),
            "vector_mb": round(args.entries * (APPEARANCE_DIM + MEANING_DIM) * 4 / 1e6, 1),
            "p50_ms": round(float(np.percentile(durations, 50)), 2),
            "p99_ms": round(float(np.percentile(durations, 99)), 2),
            "first_pass_p50_ms": round(float(np.percentile(first_pass, 50)), 2),
            "first_pass_p99_ms": round(float(np.percentile(first_pass, 99)), 2),
            "recall_at_10": round(recall(measured["hits"], reference, 10), 4),
            "recall_at_100": round(recall(measured["hits"], reference, 100), 4),
            "catalog": printable_location(location),
        }
        if is_database_url(location):
            figures["database_mb"] = round(database_mb(str(location)), 1)
    for name, value in figures.items():
        print(f"{name:>22}: {value}")
    print(json.dumps(figures))


def build(location: str | Path, catalog_dir: Path, entries: int, query_count: int) -> float:
    """The catalog and its queries, unless a run of the same size left them; seconds taken."""
    marker = catalog_dir / "synthetic.json"
    wanted: dict[str, Any] = {"entries": entries, "queries": query_count}
    if is_database_url(location):
        wanted["database"] = str(location)
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return 0.0
    started = time.perf_counter()
    rows, appearance, meaning, model = synthetic_catalog(entries)
    catalog_dir.mkdir(parents=True, exist_ok=True)
    if is_database_url(location):
        write_descriptors_to_database(str(location), rows, appearance, meaning)
    else:
        write_descriptors(catalog_dir, rows, appearance, meaning)
    looks, means = queries(appearance, meaning, model, query_count)
    np.savez(catalog_dir / "queries.npz", appearance=looks, meaning=means)
    marker.write_text(json.dumps(wanted))
    return time.perf_counter() - started


@contextlib.contextmanager
def pgserver_url(pgdata: Path) -> Iterator[str]:
    """A PostgreSQL server with pgvector, its data in ``pgdata``, while inside: its URL.

    Its ``shared_buffers`` are set to hold the HNSW indexes, as one sizes a database server
    for them (PostgreSQL's default of 128 MB holds a sixth of a 100,000-entry index)."""
    import pgserver
    import psycopg

    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        shown = connection.execute("SHOW shared_buffers").fetchone()
        sized = shown is not None and shown[0] == SHARED_BUFFERS
        if not sized:
            connection.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
    if not sized:  # the setting takes effect at the next start
        server.cleanup()
        server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def database_mb(url: str) -> float:
    import psycopg

    with psycopg.connect(url) as connection:
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    return float(size[0]) / 1e6 if size else 0.0


if __name__ == "__main__":
    main()
