"""The docs' examples that need DashScope itself (fenced ```python live): each runs alone,
against the real service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.live.live import LIVE

DOCS = Path(__file__).resolve().parents[2] / "docs"
LIVE_BLOCK = re.compile(r"^```python live\n(.*?)^```", re.S | re.M)
BLOCKS = [
    (page, number, block)
    for page in sorted(DOCS.glob("*.md"))
    for number, block in enumerate(LIVE_BLOCK.findall(page.read_text(encoding="utf-8")), 1)
]

pytestmark = LIVE


@pytest.mark.parametrize(
    ("page", "number", "block"), BLOCKS, ids=[f"{p.name}-{n}" for p, n, _ in BLOCKS]
)
def test_live_docs_examples_run(page: Path, number: int, block: str) -> None:
    exec(compile(block, f"{page.name} (live block {number})", "exec"), {"__name__": "docs"})
