"""Every ```python block in docs/ runs, in order, against the embedded server.

Blocks of one page share a namespace, like a notebook. Blocks fenced ```python live need
DashScope itself: tests/live runs them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from langchain_qwen_imagesearch.server.testing import TestingServer

DOCS = Path(__file__).resolve().parents[2] / "docs"
RUNNABLE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def runnable_blocks(page: Path) -> list[str]:
    return RUNNABLE_BLOCK.findall(page.read_text(encoding="utf-8"))


PAGES = [
    page
    for page in [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
    if runnable_blocks(page)
]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_docs_examples_run(
    page: Path,
    dashscope_env: TestingServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copy(dashscope_env.catalog_photo(), tmp_path / "photo.jpg")
    shutil.copy(dashscope_env.catalog_photo("coffee"), tmp_path / "shoe.jpg")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(runnable_blocks(page), start=1):
        code = compile(block, f"{page.name} (python block {number})", "exec")
        exec(code, namespace)
