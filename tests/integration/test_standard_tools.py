"""langchain-tests' standard suites for ``QwenImageSearchTool``; integration against the
embedded server."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_qwen_imagesearch import QwenImageSearchTool
from langchain_qwen_imagesearch.server import demo_catalog_dir
from langchain_qwen_imagesearch.server.testing import TestingServer

EXAMPLE_ARGS = {
    "image": str(demo_catalog_dir() / "tabby_cat_chelsea.jpg"),
    "query": "the same cat photo on other sites",
}


class TestQwenImageSearchToolUnit(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[QwenImageSearchTool]:
        return QwenImageSearchTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"api_key": "unit-test-key"}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return EXAMPLE_ARGS

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"DASHSCOPE_API_KEY": "env-key"}, {}, {"api_key": "env-key"}


class TestQwenImageSearchToolIntegration(ToolsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _environment(self, dashscope_env: TestingServer) -> None:
        """Construction from the environment, pointed at the embedded server."""

    @property
    def tool_constructor(self) -> type[QwenImageSearchTool]:
        return QwenImageSearchTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"local_image_dirs": [demo_catalog_dir()]}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return EXAMPLE_ARGS
