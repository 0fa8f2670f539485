"""Shared fixtures: one embedded server per test session, on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_qwen_imagesearch.server import Catalog, open_demo_catalog
from langchain_qwen_imagesearch.server.testing import TestingServer

TEST_API_KEY = "test-key"


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The bundled demo photos, indexed once for the session in a private folder."""
    return open_demo_catalog(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def embedded_server(demo_catalog: Catalog) -> Iterator[TestingServer]:
    """The real server over real HTTP, with a key, as DashScope would be."""
    with TestingServer(demo_catalog, api_key=TEST_API_KEY) as server:
        yield server


@pytest.fixture
def catalog_photo(embedded_server: TestingServer) -> Path:
    """A real photo from the demo catalog (searching it finds itself first)."""
    return embedded_server.catalog_photo()


@pytest.fixture
def dashscope_env(embedded_server: TestingServer, monkeypatch: pytest.MonkeyPatch) -> TestingServer:
    """Point zero-argument construction (DASHSCOPE_API_KEY / DASHSCOPE_BASE_URL) at the server."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", embedded_server.base_url)
    for name in (
        "DASHSCOPE_API_BASE",
        "DASHSCOPE_REGION",
        "DASHSCOPE_WORKSPACE",
        "DASHSCOPE_WORKSPACE_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    return embedded_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, with its reason, each inherited suite test a class lists in ``skipped_here``."""
    for item in items:
        skipped = getattr(getattr(item, "cls", None), "skipped_here", {})
        reason = skipped.get(getattr(item, "originalname", item.name))
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
