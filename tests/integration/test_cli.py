"""The qwen-imagesearch command, as a shell user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_qwen_imagesearch.server import demo_catalog_dir


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langchain_qwen_imagesearch.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(demo_catalog_dir().glob("*.jpg"))[:4]:
        shutil.copy(photo, folder)
    (folder / "notes.jpg").write_text("not really a photo")
    return folder


def test_index_reports_counts_skips_bad_files_and_reruns_incrementally(
    photo_folder: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    first = cli("index", str(photo_folder), "--catalog", str(catalog), "--quiet")
    second = cli("index", str(photo_folder), "--catalog", str(catalog), "--quiet")

    assert first.returncode == 0 and "4 added" in first.stdout and "1 skipped" in first.stdout
    assert "notes.jpg" in first.stderr
    assert second.returncode == 0 and "4 unchanged" in second.stdout and "0 added" in second.stdout


def test_index_of_a_missing_folder_exits_2_with_a_message(tmp_path: Path) -> None:
    result = cli("index", str(tmp_path / "nope"), "--catalog", str(tmp_path / "c"))

    assert result.returncode == 2 and "not a folder" in result.stderr


def test_serve_without_a_catalog_index_says_how_to_build_one(tmp_path: Path) -> None:
    result = cli("serve", "--catalog", str(tmp_path))

    assert result.returncode == 2 and "qwen-imagesearch index" in result.stderr


def test_serve_refuses_a_public_address_without_a_key() -> None:
    result = cli("serve", "--host", "0.0.0.0")

    assert result.returncode == 2 and "--api-key" in result.stderr


def test_local_search_prints_json_with_the_photo_first(photo_folder: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    assert cli("index", str(photo_folder), "--catalog", str(catalog), "--quiet").returncode == 0
    photo = sorted(photo_folder.glob("*.jpg"))[0]

    result = cli("search", str(photo), "--local", "--catalog", str(catalog), "--json")

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["hits"][0]["url"].startswith("http://127.0.0.1:")
    assert found["usage"]["tool_calls"] == {"image_search": 1}


def test_search_without_an_api_key_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = cli("search", "https://example.com/a.png", env=env)

    assert result.returncode == 2 and "DASHSCOPE_API_KEY" in result.stderr


def test_demo_streams_progress_hits_and_answer(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    result = cli("demo", env=env)

    assert result.returncode == 0, result.stderr
    assert "searching..." in result.stdout and "hit(s)" in result.stdout
    assert "[answer]" in result.stdout and "not by a Qwen model" in result.stdout
    assert "Top hit: Tabby cat Chelsea" in result.stdout
