"""Where the package keeps what it can rebuild: the demo catalog, the converted encoder."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/langchain-qwen-imagesearch``, by default in ``~/.cache``."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "langchain-qwen-imagesearch"
