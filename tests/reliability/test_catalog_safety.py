"""The catalog on disk survives what users do to it: kills, concurrent runs, old formats,
bad arguments; and the index command talks to a terminal only when there is one."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pty
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image, ImageEnhance, ImageOps

from langchain_qwen_imagesearch import cli
from langchain_qwen_imagesearch.server import Catalog, build_catalog, demo_catalog_dir

DEMO_PHOTOS = sorted(demo_catalog_dir().glob("*.jpg"))
FOLDER_A_SIZE = 8
FOLDER_B_SIZE = 40
KILL_ATTEMPTS = 4
WRITE_KILLS = 2
KILL_SEED = 20240601
WAITING_LINE = "waiting for it"
PROCESS_TIMEOUT = 60.0


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "langchain_qwen_imagesearch.cli", *args]


def copy_photos(folder: Path, count: int) -> Path:
    """The first ``count`` demo photos, copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in DEMO_PHOTOS[:count]:
        shutil.copy2(photo, folder / photo.name)
    return folder


def write_distinct_variants(folder: Path, count: int) -> Path:
    """``count`` JPEGs made from the demo photos, each resized, rotated and recoloured
    differently, so that no two files have the same content."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        variant = number // len(DEMO_PHOTOS)
        with Image.open(DEMO_PHOTOS[number % len(DEMO_PHOTOS)]) as opened:
            image = opened.convert("RGB")
        scale = 0.5 + 0.15 * variant
        image = image.resize(
            (max(32, round(image.width * scale)), max(32, round(image.height * scale)))
        )
        image = image.rotate(90 * (variant + 1), expand=True)
        image = ImageEnhance.Color(image).enhance(0.4 + 0.5 * variant)
        if variant % 2:
            image = ImageOps.posterize(image, 5)
        image.save(folder / f"variant_{number:03d}.jpg", quality=85)
    return folder


def image_files(folder: Path) -> set[Path]:
    return {path.resolve() for path in folder.iterdir() if path.suffix == ".jpg"}


def catalog_paths(catalog_dir: Path) -> set[Path]:
    return {entry.path for entry in Catalog.open(catalog_dir).entries() if entry.path is not None}


def fail_if_locked() -> None:
    raise AssertionError("the catalog lock is still held, though no index run is alive")


@pytest.fixture(scope="module")
def folder_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty distinct images, shared read-only by the tests of this module."""
    return write_distinct_variants(tmp_path_factory.mktemp("variants") / "B", FOLDER_B_SIZE)


@pytest.fixture
def folder_a(tmp_path: Path) -> Path:
    """Eight demo photos, the test's own (it may delete some)."""
    return copy_photos(tmp_path / "A", FOLDER_A_SIZE)


# ------------------------------------------------------------------ kills and concurrency


def kill_after(command: list[str], delay: float) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=PROCESS_TIMEOUT)


def kill_while_writing(command: list[str], catalog: Path) -> bool:
    """Run ``command`` and kill it the moment its new generation folder appears (it is
    then writing the files); whether it was caught writing."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    own_generation = f"-{process.pid}.building"
    generations = catalog / "generations"
    deadline = time.monotonic() + PROCESS_TIMEOUT
    caught = False
    while not caught and process.poll() is None and time.monotonic() < deadline:
        caught = any(name.endswith(own_generation) for name in os.listdir(generations))
        if not caught:
            time.sleep(0.001)  # the write, with its fsyncs, lasts longer than this
    process.send_signal(signal.SIGKILL)  # nothing if it has already ended
    process.wait(timeout=PROCESS_TIMEOUT)
    return caught


def test_sigkill_during_index_leaves_the_old_or_the_new_catalog(
    folder_a: Path, folder_b: Path, tmp_path: Path
) -> None:
    pristine, catalog = tmp_path / "pristine", tmp_path / "catalog"
    build_catalog(folder_a, pristine)
    shutil.copytree(pristine, catalog)
    old_paths = image_files(folder_a)
    new_paths = old_paths | image_files(folder_b)
    index_b = cli_command("index", str(folder_b), "--catalog", str(catalog), "--quiet")

    def assert_old_or_new(moment: str) -> None:
        paths = catalog_paths(catalog)
        assert paths in (old_paths, new_paths), f"a mixed catalog after a kill {moment}"

    # Killed in the middle of writing its new generation: the old catalog is still whole.
    caught_writing = 0
    for _ in range(2 * WRITE_KILLS):
        if kill_while_writing(index_b, catalog):
            caught_writing += 1
            assert catalog_paths(catalog) == old_paths, "a kill while writing changed it"
        else:  # it finished first: start again from the catalog of A alone
            assert_old_or_new("after the end of the run")
            shutil.rmtree(catalog)
            shutil.copytree(pristine, catalog)
        if caught_writing == WRITE_KILLS:
            break
    assert caught_writing == WRITE_KILLS, "the runs were not caught writing"

    # How long a whole run takes, measured on a copy so the catalog itself keeps only A.
    scratch = tmp_path / "scratch"
    shutil.copytree(pristine, scratch)
    started = time.perf_counter()
    subprocess.run(
        cli_command("index", str(folder_b), "--catalog", str(scratch), "--quiet"),
        check=True,
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
    )
    run_seconds = time.perf_counter() - started

    # Killed at random moments: one seeded delay in each slice of the run, in order.
    rng = random.Random(KILL_SEED)
    slice_seconds = run_seconds / KILL_ATTEMPTS
    for attempt in range(KILL_ATTEMPTS):
        delay = (attempt + rng.random()) * slice_seconds
        kill_after(index_b, delay)
        assert_old_or_new(f"at {delay:.2f} s of a {run_seconds:.2f} s run")

    final = build_catalog(folder_b, catalog, on_wait=fail_if_locked)

    assert final.total == len(new_paths) == FOLDER_A_SIZE + FOLDER_B_SIZE
    assert catalog_paths(catalog) == new_paths
    # The killed writers' half-built generations and pointers are cleaned up.
    assert not [p for p in (catalog / "generations").iterdir() if p.name.startswith(".")]
    assert not list(catalog.glob(".CURRENT.*"))


def wait_for_text(path: Path, text: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.05)
    return False


def start_index_run(folder: Path, catalog: Path, stderr_file: Path) -> subprocess.Popen[bytes]:
    """``index`` of ``folder`` into ``catalog`` in the background, stderr into a file."""
    command = cli_command("index", str(folder), "--catalog", str(catalog), "--quiet")
    with stderr_file.open("wb") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)


def test_two_index_runs_at_once_wait_for_each_other_and_keep_both_folders(
    folder_a: Path, folder_b: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    stderr_files = [tmp_path / "stderr-a.txt", tmp_path / "stderr-b.txt"]
    # Holding the lock makes the contention certain: both runs must wait, then take turns.
    held = FileLock(catalog / ".lock")
    held.acquire(timeout=5)
    try:
        runs = [
            start_index_run(folder, catalog, stderr_file)
            for folder, stderr_file in zip((folder_a, folder_b), stderr_files, strict=True)
        ]
        both_said_waiting = all(
            wait_for_text(stderr_file, WAITING_LINE, 20.0) for stderr_file in stderr_files
        )
        time.sleep(0.5)
        still_running = [run.poll() is None for run in runs]
    finally:
        held.release()
    exit_codes = [run.wait(timeout=PROCESS_TIMEOUT) for run in runs]

    assert both_said_waiting, [f.read_text() for f in stderr_files]
    assert still_running == [True, True], "a run went ahead while the lock was held"
    assert exit_codes == [0, 0], [f.read_text() for f in stderr_files]
    assert catalog_paths(catalog) == image_files(folder_a) | image_files(folder_b)
    assert len(Catalog.open(catalog)) == FOLDER_A_SIZE + FOLDER_B_SIZE


# ------------------------------------------------------------------ several folders, old format


def test_indexing_another_folder_adds_and_reindexing_prunes_only_that_folder(
    folder_a: Path, folder_b: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    build_catalog(folder_a, catalog)
    both = build_catalog(folder_b, catalog)
    ids_of_b = {e.id for e in Catalog.open(catalog).entries() if e.path in image_files(folder_b)}
    gone = sorted(folder_a.glob("*.jpg"))[0]
    gone.unlink()

    pruned = build_catalog(folder_a, catalog)

    assert (both.added, both.total) == (FOLDER_B_SIZE, FOLDER_A_SIZE + FOLDER_B_SIZE)
    assert (pruned.removed, pruned.unchanged, pruned.added) == (1, FOLDER_A_SIZE - 1, 0)
    assert catalog_paths(catalog) == image_files(folder_a) | image_files(folder_b)
    assert gone.resolve() not in catalog_paths(catalog)
    kept_ids = {e.id for e in Catalog.open(catalog).entries()}
    assert ids_of_b <= kept_ids and len(ids_of_b) == FOLDER_B_SIZE


def write_old_format(source: Path, target: Path, catalog_format: int) -> None:
    """The catalog of ``source`` as formats 1 and 2 stored it: entries as JSON lines and the
    appearance descriptors only; format 1 at the top of the folder, format 2 in a generation."""
    modern = target.parent / f"{target.name}-modern"
    build_catalog(source, modern)
    catalog = Catalog.open(modern)
    generation = modern / "generations" / (modern / "CURRENT").read_text().strip()
    folder = target
    if catalog_format == 2:
        folder = target / "generations" / "0-old"
        (target / "CURRENT").parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True)
    if catalog_format == 2:
        (target / "CURRENT").write_text("0-old")
    records = [
        {**dataclasses.asdict(entry), "path": str(entry.path)} for entry in catalog.entries()
    ]
    (folder / "entries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    shutil.copy2(generation / "vectors.npy", folder / "vectors.npy")
    meta = json.loads((generation / "catalog.json").read_text())
    old_meta = {
        "format": catalog_format,
        "feature_version": meta["feature_version"],
        "feature_dim": meta["feature_dim"],
        "count": meta["count"],
    }
    if catalog_format == 1:
        old_meta["source"] = meta["sources"][0]
    else:
        old_meta["sources"] = meta["sources"]
    (folder / "catalog.json").write_text(json.dumps(old_meta, indent=2))
    shutil.rmtree(modern)


def make_format_1_catalog(source: Path, work: Path) -> Path:
    """A catalog as the first format stored it: the three files at the top of the folder."""
    write_old_format(source, work / "legacy", 1)
    return work / "legacy"


def make_format_2_catalog(source: Path, work: Path) -> Path:
    """A catalog as the second format stored it: generations, no meaning descriptors."""
    write_old_format(source, work / "format-2", 2)
    return work / "format-2"


def current_appearance(catalog: Path) -> dict[str, np.ndarray]:
    """Each entry's stored appearance descriptor, by entry id."""
    opened = Catalog.open(catalog)
    generation = catalog / "generations" / (catalog / "CURRENT").read_text().strip()
    vectors = np.load(generation / "vectors.npy")
    return {entry.id: vectors[row] for row, entry in enumerate(opened.entries())}


def test_a_format_1_catalog_opens_and_is_upgraded_by_the_next_index_run(
    folder_a: Path, folder_b: Path, tmp_path: Path
) -> None:
    legacy = make_format_1_catalog(folder_a, tmp_path)
    old_ids = {entry.id for entry in Catalog.open(legacy).entries()}

    report = build_catalog(folder_b, legacy)

    assert len(old_ids) == FOLDER_A_SIZE
    assert (legacy / "CURRENT").is_file()
    assert not [
        name
        for name in ("catalog.json", "entries.jsonl", "vectors.npy")
        if (legacy / name).exists()
    ]
    upgraded = Catalog.open(legacy)
    assert report.total == len(upgraded) == FOLDER_A_SIZE + FOLDER_B_SIZE
    assert report.upgraded == FOLDER_A_SIZE  # the other folder's entries got meaning too
    assert upgraded.searches_by_meaning
    assert old_ids <= {entry.id for entry in upgraded.entries()}


def test_a_catalog_without_meaning_descriptors_still_serves_and_upgrades_in_place(
    folder_a: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = make_format_2_catalog(folder_a, tmp_path)
    appearance_before = current_appearance(catalog)

    with caplog.at_level("WARNING"):
        before = Catalog.open(catalog)
    report = build_catalog(folder_a, catalog)
    after = Catalog.open(catalog)

    assert not before.searches_by_meaning and "no meaning descriptors" in caplog.text
    assert (report.upgraded, report.added, report.updated) == (FOLDER_A_SIZE, 0, 0)
    assert after.searches_by_meaning
    # Only the new descriptor was computed: the appearance descriptors are the stored ones.
    after_upgrade = current_appearance(catalog)
    assert after_upgrade.keys() == appearance_before.keys()
    assert all(np.array_equal(after_upgrade[i], v) for i, v in appearance_before.items())


# ------------------------------------------------------------------ command-line errors


@dataclass(frozen=True)
class ErrorCase:
    args: list[str]
    says: str
    """A fragment the one error line must contain."""
    creates_nothing: bool = False
    """Whether the run must leave no catalog folder behind."""


def error_case(name: str, work: Path, photos: Path, busy_port: int) -> ErrorCase:
    catalog = str(work / "catalog")
    first_photo = sorted(photos.glob("*.jpg"))[0].name
    manifest = work / "manifest.json"
    a_file = work / "a-file"
    a_file.write_text("not a folder")
    if name == "manifest-not-json":
        manifest.write_text("{this is not json")
        return ErrorCase(
            ["index", str(photos), "--catalog", catalog, "--manifest", str(manifest)],
            "manifest",
            creates_nothing=True,
        )
    if name == "manifest-ftp-url":
        ftp = {first_photo: {"title": "A photo", "url": "ftp://example.com/a.jpg"}}
        manifest.write_text(json.dumps(ftp))
        return ErrorCase(
            ["index", str(photos), "--catalog", catalog, "--manifest", str(manifest)],
            "http(s)",
            creates_nothing=True,
        )
    if name == "catalog-is-a-file":
        return ErrorCase(["index", str(photos), "--catalog", str(a_file)], "is a file")
    if name == "catalog-under-a-file":
        return ErrorCase(
            ["index", str(photos), "--catalog", str(a_file / "sub")], "cannot write the catalog"
        )
    assert name == "serve-port-in-use"
    return ErrorCase(
        ["serve", "--host", "127.0.0.1", "--port", str(busy_port)],
        f"Port {busy_port} on 127.0.0.1 is in use",
    )


@pytest.mark.parametrize(
    "name",
    [
        "manifest-not-json",
        "manifest-ftp-url",
        "catalog-is-a-file",
        "catalog-under-a-file",
        "serve-port-in-use",
    ],
)
def test_a_bad_argument_exits_2_with_one_error_line(
    name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # In this process, for speed (each new one spends a second on imports); capfd sees
    # everything written to the file descriptors, as a shell would.
    photos = copy_photos(tmp_path / "photos", 2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        case = error_case(name, tmp_path, photos, busy.getsockname()[1])
        exit_code = cli.main(case.args)
    out, err = capfd.readouterr()
    lines = err.splitlines()

    assert exit_code == 2, err
    assert len(lines) == 1 and lines[0].strip(), err
    assert "Traceback" not in err
    assert case.says in lines[0]
    assert out == ""
    if case.creates_nothing:
        assert not (tmp_path / "catalog").exists()


# ------------------------------------------------------------------ progress bar


def read_until_closed(master: int, process: subprocess.Popen[bytes], seconds: float) -> bytes:
    """What the process wrote to the terminal, read while it runs and until it is gone."""
    os.set_blocking(master, False)
    received = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            received += chunk
        elif process.poll() is not None:
            break
    return bytes(received)


@pytest.mark.parametrize("columns", [80, 0], ids=["sized", "unsized"])
def test_index_shows_a_progress_bar_on_a_terminal(
    folder_a: Path, tmp_path: Path, columns: int
) -> None:
    master, slave = pty.openpty()
    # Some terminals (a fresh pty, `docker -t`) report 0 columns: the bar must still show.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        process = subprocess.Popen(
            cli_command("index", str(folder_a), "--catalog", str(tmp_path / "catalog")),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
        )
        os.close(slave)
        slave = -1
        shown = read_until_closed(master, process, PROCESS_TIMEOUT)
        exit_code = process.wait(timeout=PROCESS_TIMEOUT)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)

    assert exit_code == 0
    assert b"Indexing" in shown


def test_index_shows_no_progress_bar_when_stderr_is_a_pipe(folder_a: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        cli_command("index", str(folder_a), "--catalog", str(tmp_path / "catalog")),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )

    assert result.returncode == 0, result.stderr
    assert "Indexing" not in result.stderr
    assert f"Indexed {FOLDER_A_SIZE} images" in result.stdout
