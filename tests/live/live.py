"""When tests may talk to the real DashScope service: with a key, and not at a local server."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

import pytest


def _live_skip_reason() -> str | None:
    if not os.environ.get("DASHSCOPE_API_KEY"):
        return "DASHSCOPE_API_KEY is not set"
    host = urlsplit(os.environ.get("DASHSCOPE_BASE_URL", "")).hostname
    if host is None:
        return None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return f"DASHSCOPE_BASE_URL points at a local server ({host})" if loopback else None


LIVE_SKIP_REASON = _live_skip_reason()
LIVE = [
    pytest.mark.live,
    pytest.mark.skipif(LIVE_SKIP_REASON is not None, reason=LIVE_SKIP_REASON or ""),
]
"""Marks of a live test: it runs only against DashScope, and says why it is skipped."""
