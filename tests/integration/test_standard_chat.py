"""langchain-tests' standard suites for ``ChatQwenImageSearch``: unit, and integration against
the embedded server.

The capability flags say what the model does. The embedded server has no language model, so
the suite tests that need one to call tools or follow instructions are skipped here with
that reason; tests/live runs the whole suite against DashScope.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from langchain_qwen_imagesearch import ChatQwenImageSearch
from langchain_qwen_imagesearch.server.testing import TestingServer

NEEDS_A_LANGUAGE_MODEL = frozenset(
    {
        "test_tool_calling",
        "test_tool_calling_async",
        "test_tool_calling_with_no_arguments",
        "test_tool_choice",
        "test_bind_runnables_as_tools",
        "test_agent_loop",
        "test_unicode_tool_call_integration",
        "test_structured_few_shot_examples",
        "test_structured_output",
        "test_structured_output_async",
        "test_structured_output_pydantic_2_v1",
        "test_structured_output_optional_param",
    }
)
NEEDS_THE_INTERNET = frozenset({"test_image_inputs"})
SERDES_REASON = (
    "load(..., allowed_objects='all') admits only the classes in langchain-core's own mapping; "
    "this class loads with allowed_objects=[ChatQwenImageSearch] (tested in "
    "test_langchain_chat.py)"
)


class ChatModelFlags:
    """What ``ChatQwenImageSearch`` can do, for both suites."""

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatQwenImageSearch

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "qwen3.6-plus"


class TestChatQwenImageSearchUnit(ChatModelFlags, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen3.7-plus", "base_url": "https://dashscope.example/compatible-mode/v1"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"DASHSCOPE_API_KEY": "env-key"}, {}, {"api_key": "env-key"}

    @pytest.mark.xfail(reason=SERDES_REASON, raises=ValueError, strict=True)
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)


class TestChatQwenImageSearchIntegration(ChatModelFlags, ChatModelIntegrationTests):
    skipped_here: ClassVar[dict[str, str]] = {
        **dict.fromkeys(
            NEEDS_A_LANGUAGE_MODEL,
            "needs a language model that calls tools; the embedded server has none "
            "(tests/live runs it against DashScope)",
        ),
        **dict.fromkeys(
            NEEDS_THE_INTERNET,
            "downloads its test image from the internet, which this machine does not reach "
            "(image inputs: test_langchain_chat.py)",
        ),
    }

    @pytest.fixture(autouse=True)
    def _environment(self, dashscope_env: TestingServer) -> None:
        """Construction from the environment, pointed at the embedded server."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen3.7-plus"}
