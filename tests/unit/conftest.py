"""Unit tests: pure functions, and the client over an in-process transport (no server)."""

from __future__ import annotations

import pytest

from tests.unit.wire import Wire


@pytest.fixture
def wire() -> Wire:
    return Wire()
