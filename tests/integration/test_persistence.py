"""Typed results after LangGraph's persistence and LangChain's serialization touch them.

A checkpointer stores a message through its ``model_dump()``, which turns the tool's
artifact into a plain dict; ``image_search_result(message)`` gives it back typed, in this
process or a new one, after a later turn, an interrupt and resume, or time travel. No
"unregistered type" warning is logged on the way.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.load import dumpd, dumps, load, loads
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from langchain_qwen_imagesearch import (
    QwenImageSearch,
    QwenImageSearchResult,
    QwenImageSearchTool,
    create_image_search_node,
    image_search_result,
)
from langchain_qwen_imagesearch.server.testing import TestingServer
from tests.integration.test_langchain_agents import scripted, tool_call, user_message

REPO = Path(__file__).resolve().parents[2]
SERDE_LOGGER = "langgraph.checkpoint.serde"


def best_match(state: MessagesState) -> dict[str, list[AIMessage]]:
    """Reads the first search of the conversation, as the docs' examples do."""
    searched = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    result = image_search_result(searched)
    assert isinstance(result, QwenImageSearchResult), type(searched.artifact)
    return {"messages": [AIMessage(f"Best match: {result.hits[0].title}")]}


def search_graph(checkpointer: Any, **compile_options: Any) -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("image_search", create_image_search_node())
    graph.add_node("best_match", best_match)
    graph.add_edge(START, "image_search")
    graph.add_edge("image_search", "best_match")
    graph.add_edge("best_match", END)
    return graph.compile(checkpointer=checkpointer, **compile_options)


@pytest.fixture
def no_serde_warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger=SERDE_LOGGER)
    return caplog


def assert_no_serde_warnings(caplog: pytest.LogCaptureFixture) -> None:
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith(SERDE_LOGGER)]
    assert warnings == []


def test_a_later_turn_reads_the_earlier_search_typed(
    dashscope_env: TestingServer, catalog_photo: Path, no_serde_warnings: pytest.LogCaptureFixture
) -> None:
    graph = search_graph(InMemorySaver())
    config = {"configurable": {"thread_id": "later-turn"}}

    graph.invoke({"messages": [user_message("Find this", catalog_photo)]}, config)
    second = graph.invoke({"messages": [user_message("And again", catalog_photo)]}, config)

    restored = next(m for m in second["messages"] if isinstance(m, ToolMessage))
    assert isinstance(restored.artifact, dict)  # what the checkpointer made of it
    assert second["messages"][-1].content.startswith("Best match: ")
    assert_no_serde_warnings(no_serde_warnings)


def test_interrupt_resume_and_time_travel_give_typed_results(
    dashscope_env: TestingServer, catalog_photo: Path, no_serde_warnings: pytest.LogCaptureFixture
) -> None:
    graph = search_graph(InMemorySaver(), interrupt_before=["best_match"])
    config = {"configurable": {"thread_id": "interrupted"}}

    graph.invoke({"messages": [user_message("Find this", catalog_photo)]}, config)
    assert graph.get_state(config).next == ("best_match",)
    resumed = graph.invoke(None, config)
    assert resumed["messages"][-1].content.startswith("Best match: ")

    before_answer = next(
        snapshot for snapshot in graph.get_state_history(config) if snapshot.next == ("best_match",)
    )
    replayed = graph.invoke(None, before_answer.config)
    assert replayed["messages"][-1].content == resumed["messages"][-1].content
    assert_no_serde_warnings(no_serde_warnings)


def test_an_agent_with_a_checkpointer_reads_its_artifact_after_a_later_turn(
    dashscope_env: TestingServer, catalog_photo: Path, no_serde_warnings: pytest.LogCaptureFixture
) -> None:
    llm = scripted(
        tool_call("qwen_image_search"), AIMessage("Found it."), AIMessage("Still the same.")
    )
    agent = create_agent(llm, tools=[QwenImageSearchTool()], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "agent"}}

    agent.invoke({"messages": [user_message("Find this", catalog_photo)]}, config)
    state = agent.invoke({"messages": [HumanMessage("Thanks")]}, config)

    (searched,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    result = image_search_result(searched)
    assert isinstance(result, QwenImageSearchResult) and result.hits
    assert_no_serde_warnings(no_serde_warnings)


SQLITE_WRITER = """
import sys
from langgraph.checkpoint.sqlite import SqliteSaver
from tests.integration.test_persistence import search_graph
from tests.integration.test_langchain_agents import user_message
from pathlib import Path

with SqliteSaver.from_conn_string(sys.argv[1]) as saver:
    graph = search_graph(saver, interrupt_before=["best_match"])
    config = {"configurable": {"thread_id": "on-disk"}}
    graph.invoke({"messages": [user_message("Find this", Path(sys.argv[2]))]}, config)
"""

SQLITE_READER = """
import json, logging, sys
from langgraph.checkpoint.sqlite import SqliteSaver
from langchain_core.messages import ToolMessage
from langchain_qwen_imagesearch import image_search_result
from tests.integration.test_persistence import search_graph

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
with SqliteSaver.from_conn_string(sys.argv[1]) as saver:
    graph = search_graph(saver, interrupt_before=["best_match"])
    config = {"configurable": {"thread_id": "on-disk"}}
    messages = graph.get_state(config).values["messages"]
    searched = next(m for m in messages if isinstance(m, ToolMessage))
    result = image_search_result(searched)
    answer = graph.invoke(None, config)["messages"][-1].content
    print(json.dumps({"type": type(result).__name__, "hits": len(result.hits), "answer": answer}))
"""


def run_python(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_an_on_disk_sqlite_checkpoint_read_in_a_new_process_gives_typed_results(
    dashscope_env: TestingServer, catalog_photo: Path, tmp_path: Path
) -> None:
    database = str(tmp_path / "checkpoints.sqlite")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    run_python(SQLITE_WRITER, database, str(catalog_photo), env=env)
    read = run_python(SQLITE_READER, database, env=env)

    figures = json.loads(read.stdout)
    assert figures["type"] == "QwenImageSearchResult" and figures["hits"] >= 1
    assert figures["answer"].startswith("Best match: ")
    assert "unregistered" not in read.stderr.lower() and "blocked" not in read.stderr.lower()


def test_the_result_goes_through_dumpd_and_load_typed(
    dashscope_env: TestingServer, catalog_photo: Path
) -> None:
    result = QwenImageSearch().invoke(catalog_photo)
    message = ToolMessage("found", tool_call_id="c1", artifact=result)
    allowed = {
        "allowed_objects": [QwenImageSearchResult, ToolMessage],
        "valid_namespaces": ["langchain_qwen_imagesearch"],
    }

    revived = load(dumpd(result), **allowed)
    revived_message = loads(dumps(message), **allowed)

    assert isinstance(revived, QwenImageSearchResult) and revived == result
    assert isinstance(revived_message.artifact, QwenImageSearchResult)
    assert revived_message.artifact.hits == result.hits


def test_the_documented_load_recipe_restores_runnable_and_tool_with_their_key(
    dashscope_env: TestingServer, catalog_photo: Path
) -> None:
    components = [QwenImageSearch(model="qwen3.6-plus"), QwenImageSearchTool()]
    for component in components:
        serialized = dumps(component)
        assert os.environ["DASHSCOPE_API_KEY"] not in serialized

        restored = loads(
            serialized,
            allowed_objects=[type(component)],
            valid_namespaces=["langchain_qwen_imagesearch"],
            secrets_from_env=True,
        )

        assert type(restored) is type(component)
        assert restored.api_key is not None
        assert restored.api_key.get_secret_value() == os.environ["DASHSCOPE_API_KEY"]
    assert QwenImageSearch.model_validate(components[0]).model == "qwen3.6-plus"
