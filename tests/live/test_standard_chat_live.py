"""langchain-tests' integration suite for ``ChatQwenImageSearch`` against DashScope itself,
the tests that need a language model included. Each costs tokens; image tests a search fee."""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests

from tests.integration.test_standard_chat import ChatModelFlags
from tests.live.live import LIVE

pytestmark = LIVE


class TestChatQwenImageSearchLive(ChatModelFlags, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "qwen3.7-plus", "enable_thinking": False}
