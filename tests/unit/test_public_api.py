"""One import path for every public name, every error exported, and the version shown."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import langchain_qwen_imagesearch as package
from langchain_qwen_imagesearch import client, langchain
from langchain_qwen_imagesearch.cli import main

REPO = Path(__file__).resolve().parents[2]
DOC_IMPORT = re.compile(r"^\s*from (langchain_qwen_imagesearch[\w.]*) import", re.M)
# The documented import paths: the package for the client and LangChain names, and the
# server room (with its test doubles) for the embedded server.
DOCUMENTED_PATHS = {
    "langchain_qwen_imagesearch",
    "langchain_qwen_imagesearch.server",
    "langchain_qwen_imagesearch.server.testing",
}


def test_the_package_exports_exactly_the_rooms_public_lists() -> None:
    rooms = {"client": client.__all__, "langchain": langchain.__all__}
    assert not set(client.__all__) & set(langchain.__all__), "a name in two rooms"
    assert sorted(package.__all__) == sorted([*client.__all__, *langchain.__all__, "__version__"])
    for room, names in rooms.items():
        module = getattr(package, room)
        for name in names:
            assert getattr(package, name) is getattr(module, name), name


def test_every_error_class_is_exported() -> None:
    errors = inspect.getmembers(
        client._errors, lambda value: isinstance(value, type) and issubclass(value, Exception)
    )
    assert len(errors) == 19
    for name, cls in errors:
        assert getattr(package, name) is cls, f"{name} is not exported"


def test_docs_and_readme_import_only_from_the_documented_paths() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    used = {path for page in pages for path in DOC_IMPORT.findall(page.read_text("utf-8"))}
    assert used <= DOCUMENTED_PATHS


def test_version_is_one_definition(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"qwen-imagesearch {package.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", package.__version__)
