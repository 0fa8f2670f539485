"""A catalog in a real PostgreSQL with pgvector, as users share one between servers and index
runs: the same hits as a catalog folder, from a separate ``serve`` process too; concurrent
index runs lose nothing; errors are one line.

PostgreSQL is ``PG_DSN``'s (a unix socket or a loopback address only), or else a pgserver
started in a temporary folder for the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from langchain_qwen_imagesearch import ImageSearchClient, cli
from langchain_qwen_imagesearch.server import (
    Catalog,
    CatalogError,
    EmbeddedServer,
    build_catalog,
    demo_catalog_dir,
    demo_similar_style_query,
)
from langchain_qwen_imagesearch.server.demo import edited_copy
from langchain_qwen_imagesearch.server.engine.postgres_search import DATABASE_LAYOUT
from langchain_qwen_imagesearch.server.store.postgres import CatalogWriter

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")

DEMO_PHOTOS = sorted(demo_catalog_dir().glob("*.jpg"))
SCORE_TOLERANCE = 1e-3
KEY = "postgres-test-key"
STARTUP_SECONDS = 60.0
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def is_local(dsn: str) -> bool:
    """Whether every host of ``dsn`` is a unix socket folder or a loopback address."""
    options = psycopg.conninfo.conninfo_to_dict(dsn)
    hosts = f"{options.get('host') or ''},{options.get('hostaddr') or ''}".split(",")
    return all(h.startswith("/") or h in LOOPBACK or h.startswith("127.") for h in hosts if h)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server with pgvector for the session: the URL of its admin database."""
    dsn = os.environ.get("PG_DSN")
    if dsn:
        if not is_local(dsn):
            pytest.skip("PG_DSN names a server off this machine: give a unix socket or loopback")
        yield dsn
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, on a machine without XDG_RUNTIME_DIR
        pgserver = pytest.importorskip("pgserver", reason="pgserver is not installed (test extra)")
    server = pgserver.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def database(postgres_url: str, request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database."""
    return new_database(postgres_url, request.node.name)


def new_database(postgres_url: str, name: str) -> str:
    name = "t_" + "".join(c if c.isalnum() else "_" for c in name.lower())[:50]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(postgres_url)._replace(path=f"/{name}").geturl()


@pytest.fixture(scope="module")
def demo_database(postgres_url: str) -> str:
    """The demo photos, indexed once into a database of their own."""
    url = new_database(postgres_url, "demo")
    build_catalog(demo_catalog_dir(), url)
    return url


def copy_photos(folder: Path, photos: list[Path]) -> Path:
    folder.mkdir(parents=True)
    for photo in photos:
        shutil.copy2(photo, folder / photo.name)
    return folder


def queries(workdir: Path) -> list[Path]:
    """An edited copy of a catalog photo, and a portrait like the catalog's one."""
    return [edited_copy(workdir)[1], demo_similar_style_query()]


def hits(catalog: Catalog, query: Path) -> list[tuple[str, str, float]]:
    with Image.open(query) as image:
        return [(m.entry.id, m.kind, m.score) for m in catalog.search(image)]


def assert_same_hits(
    found: list[tuple[str, str, float]], expected: list[tuple[str, str, float]]
) -> None:
    assert [hit[:2] for hit in found] == [hit[:2] for hit in expected]
    assert all(abs(a[2] - b[2]) < SCORE_TOLERANCE for a, b in zip(found, expected, strict=True))


def test_the_demo_photos_give_the_same_hits_as_in_a_catalog_folder(
    demo_database: str, demo_catalog: Catalog, tmp_path: Path
) -> None:
    shared = Catalog.open(demo_database)

    assert len(shared) == len(demo_catalog)
    for query in queries(tmp_path):
        expected = hits(demo_catalog, query)
        assert expected  # a copy, then the similar portrait
        assert_same_hits(hits(shared, query), expected)
    assert {e.id for e in shared.entries()} == {e.id for e in demo_catalog.entries()}


@pytest.fixture
def serve_process(demo_database: str) -> Iterator[str]:
    """``qwen-imagesearch serve --catalog URL`` in its own process: its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "langchain_qwen_imagesearch.cli", "serve"]
    command += ["--catalog", demo_database, "--port", str(port), "--api-key", KEY]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not is_up(root):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {process.communicate()[1]!r}")
            time.sleep(0.1)
        yield root + "/compatible-mode/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def is_up(root: str) -> bool:
    try:
        return httpx.get(root + "/health", timeout=1).json()["catalog_images"] > 0
    except httpx.HTTPError:
        return False


def test_a_serve_process_and_an_embedded_server_answer_the_same_hits(
    serve_process: str, demo_database: str, demo_catalog: Catalog, tmp_path: Path
) -> None:
    titles = {e.id: e.title for e in demo_catalog.entries()}
    with EmbeddedServer(demo_database, api_key=KEY) as embedded:
        for query in queries(tmp_path):
            expected = [titles[hit[0]] for hit in hits(demo_catalog, query)]
            for base_url in (serve_process, embedded.base_url):
                result = ImageSearchClient(base_url=base_url, api_key=KEY).search(query)
                assert [hit.title for hit in result.hits] == expected


def test_index_runs_at_once_keep_every_image_exactly_once(database: str, tmp_path: Path) -> None:
    folders = [
        copy_photos(tmp_path / "a", DEMO_PHOTOS[0:4]),
        copy_photos(tmp_path / "b", DEMO_PHOTOS[4:8]),
        copy_photos(tmp_path / "c", DEMO_PHOTOS[8:11]),
    ]
    waited = threading.Semaphore(0)
    with ThreadPoolExecutor(4) as pool, CatalogWriter.open(database, DATABASE_LAYOUT) as holder:
        # Folder c's lock is held while its two runs start: both wait for it, and then
        # for each other; folders a and b go on meanwhile.
        with holder.folder_lock(str(folders[2]), None):
            runs = [
                pool.submit(build_catalog, folder, database, on_wait=waited.release)
                for folder in [*folders, folders[2]]
            ]
            assert all(waited.acquire(timeout=30) for _ in range(2))
        reports = [run.result() for run in runs]

    paths = [e.path for e in Catalog.open(database).entries()]
    assert sorted(paths) == sorted(p.resolve() for folder in folders for p in folder.iterdir())
    assert sorted((r.added, r.unchanged) for r in reports[2:]) == [(0, 3), (3, 0)]


def test_reindexing_a_folder_after_a_deletion_removes_exactly_that_entry(
    database: str, tmp_path: Path
) -> None:
    photos = copy_photos(tmp_path / "photos", DEMO_PHOTOS[:3])
    others = copy_photos(tmp_path / "others", DEMO_PHOTOS[3:5])
    build_catalog(photos, database)
    build_catalog(others, database)
    before = {e.id: e for e in Catalog.open(database).entries()}
    gone = photos / DEMO_PHOTOS[1].name
    gone.unlink()

    report = build_catalog(photos, database)

    after = {e.id: e for e in Catalog.open(database).entries()}
    (removed,) = [entry_id for entry_id, e in before.items() if e.path == gone.resolve()]
    assert (report.removed, report.added, report.unchanged, report.total) == (1, 0, 2, 4)
    assert after == {entry_id: e for entry_id, e in before.items() if entry_id != removed}


def test_centring_anew_matches_a_catalog_folder_and_reaches_an_open_catalog(
    database: str, tmp_path: Path
) -> None:
    """The meaning centre is taken anew as in a catalog folder: when the catalog doubles or
    halves. A catalog opened before searches on the new centre."""
    first = copy_photos(tmp_path / "first", DEMO_PHOTOS[:2])
    second = copy_photos(tmp_path / "second", DEMO_PHOTOS[2:10])
    folder = tmp_path / "catalog"
    searched = queries(tmp_path)
    opened_early = None
    for run in ("grow", "shrink"):
        if run == "shrink":  # 10 entries -> 4: fewer than half of those centred on
            for photo in sorted(second.iterdir())[2:]:
                photo.unlink()
        for source in (first, second) if run == "grow" else (second,):
            build_catalog(source, folder)
            build_catalog(source, database)
            opened_early = opened_early or Catalog.open(database)
        for query in searched:
            expected = hits(Catalog.open(folder), query)
            assert_same_hits(hits(opened_early, query), expected)
            assert_same_hits(hits(Catalog.open(database), query), expected)


@pytest.mark.parametrize("command", ["index", "serve", "search"])
def test_an_unreachable_database_exits_2_with_one_line(
    command: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Port 1 on loopback: nothing listens there, and nothing else is ever tried.
    url = "postgresql://nobody:secret@127.0.0.1:1/x"
    args = {
        "index": ["index", str(demo_catalog_dir()), "--catalog", url],
        "serve": ["serve", "--port", "0", "--catalog", url],
        "search": ["search", str(DEMO_PHOTOS[0]), "--local", "--catalog", url],
    }[command]

    exit_code = cli.main(args)

    out, err = capfd.readouterr()
    assert exit_code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "cannot open the catalog database" in err and "127.0.0.1:1" in err
    assert "secret" not in err and out == ""


def test_a_database_without_a_catalog_says_how_to_build_one(database: str) -> None:
    with pytest.raises(CatalogError, match="qwen-imagesearch index SRC --catalog"):
        Catalog.open(database)


def test_a_database_where_pgvector_cannot_be_added_says_so(
    database: str, postgres_url: str, tmp_path: Path
) -> None:
    # Its owner is no superuser, and pgvector is no trusted extension: as on many hosts.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        try:
            admin.execute("DROP ROLE IF EXISTS imagesearch_owner")
            admin.execute("CREATE ROLE imagesearch_owner LOGIN")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("PG_DSN's user may not create roles")
        name = urlsplit(database).path.strip("/")
        admin.execute(f'ALTER DATABASE "{name}" OWNER TO imagesearch_owner')
    parts = urlsplit(database)
    host = parts.netloc.rpartition("@")[2]
    as_owner = parts._replace(netloc=f"imagesearch_owner@{host}").geturl()
    photos = copy_photos(tmp_path / "photos", DEMO_PHOTOS[:1])

    with pytest.raises(CatalogError, match="no pgvector extension, and it cannot be added"):
        build_catalog(photos, as_owner)
