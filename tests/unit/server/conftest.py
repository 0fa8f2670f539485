"""Unit tests of the server's pure parts; they need the server extra (NumPy, Starlette)."""

from __future__ import annotations

import importlib.util

SERVER_EXTRA = all(
    importlib.util.find_spec(name) for name in ("numpy", "starlette", "uvicorn", "onnxruntime")
)
SKIP_REASON = "tests/unit/server not run: the server extra is not installed"

collect_ignore_glob = [] if SERVER_EXTRA else ["test_*.py"]


def pytest_report_header() -> str | None:
    return None if SERVER_EXTRA else SKIP_REASON
