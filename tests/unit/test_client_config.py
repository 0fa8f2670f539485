"""Configuration: key, base URL or region (+ workspace), model, timeout, from arguments or env."""

from __future__ import annotations

import warnings

import pytest
from pydantic import SecretStr

from langchain_qwen_imagesearch import (
    DEFAULT_TIMEOUT_SECONDS,
    ConfigurationError,
    ImageSearchClient,
)

BEIJING = "https://dashscope.aliyuncs.com/compatible-mode/v1"
SINGAPORE = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
VIRGINIA = "https://dashscope-us.aliyuncs.com/compatible-mode/v1"
ENV_VARS = (
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_BASE_URL",
    "DASHSCOPE_API_BASE",
    "DASHSCOPE_REGION",
    "DASHSCOPE_WORKSPACE_ID",
    "DASHSCOPE_WORKSPACE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env-secret")
    return monkeypatch


def test_defaults_come_from_the_environment() -> None:
    client = ImageSearchClient()

    assert client.settings.api_key.get_secret_value() == "sk-env-secret"
    assert client.base_url == BEIJING and client.settings.region == "cn-beijing"
    assert client.model == "qwen3.7-plus"
    assert client.settings.timeout == DEFAULT_TIMEOUT_SECONDS >= 120
    assert client.settings.max_retries == 2


def test_a_missing_key_fails_at_construction_naming_the_env_var(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.delenv("DASHSCOPE_API_KEY")

    with pytest.raises(ConfigurationError, match="DASHSCOPE_API_KEY"):
        ImageSearchClient()


def test_the_key_is_never_shown() -> None:
    client = ImageSearchClient(api_key="sk-very-secret")

    assert isinstance(client.settings.api_key, SecretStr)
    assert "sk-very-secret" not in repr(client)
    assert "sk-very-secret" not in str(client)
    assert "sk-very-secret" not in repr(client.settings)


def test_a_secret_str_key_is_accepted() -> None:
    client = ImageSearchClient(api_key=SecretStr("sk-given"))

    assert client.settings.api_key.get_secret_value() == "sk-given"


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("cn-beijing", BEIJING),
        ("beijing", BEIJING),
        ("china", BEIJING),
        ("ap-southeast-1", SINGAPORE),
        ("Singapore", SINGAPORE),
        ("intl", SINGAPORE),
        ("us-east-1", VIRGINIA),
        ("us", VIRGINIA),
        ("virginia", VIRGINIA),
    ],
)
def test_regions_and_aliases_resolve_to_the_documented_base_urls(
    region: str, expected: str
) -> None:
    assert ImageSearchClient(region=region).base_url == expected


@pytest.mark.parametrize(
    "region",
    ["cn-beijing", "ap-southeast-1", "us-east-1", "cn-hongkong", "eu-central-1", "ap-northeast-1"],
)
def test_a_workspace_selects_the_workspace_endpoint(region: str) -> None:
    client = ImageSearchClient(region=region, workspace_id="ws-123")

    assert client.base_url == f"https://ws-123.{region}.maas.aliyuncs.com/compatible-mode/v1"


def test_workspace_and_region_come_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DASHSCOPE_REGION", "eu-central-1")
    clean_env.setenv("DASHSCOPE_WORKSPACE", "ws-env")

    assert (
        ImageSearchClient().base_url
        == "https://ws-env.eu-central-1.maas.aliyuncs.com/compatible-mode/v1"
    )


def test_a_workspace_only_region_without_a_workspace_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="workspace_id"):
        ImageSearchClient(region="cn-hongkong")


def test_an_unknown_region_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as raised:
        ImageSearchClient(region="mars-1")

    message = str(raised.value)
    assert "mars-1" in message
    for region in (
        "cn-beijing",
        "ap-southeast-1",
        "us-east-1",
        "cn-hongkong",
        "eu-central-1",
        "ap-northeast-1",
        "singapore",
    ):
        assert region in message


def test_base_url_wins_over_region(clean_env: pytest.MonkeyPatch) -> None:
    assert (
        ImageSearchClient(base_url="http://127.0.0.1:9/v1/", region="singapore").base_url
        == "http://127.0.0.1:9/v1"
    )
    clean_env.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:9/compatible-mode/v1")
    clean_env.setenv("DASHSCOPE_REGION", "singapore")
    client = ImageSearchClient()
    assert (
        client.base_url == "http://127.0.0.1:9/compatible-mode/v1"
        and client.settings.region is None
    )


def test_langchain_qwq_base_url_variable_is_honoured_after_ours(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("DASHSCOPE_API_BASE", SINGAPORE)
    assert ImageSearchClient().base_url == SINGAPORE

    clean_env.setenv("DASHSCOPE_BASE_URL", VIRGINIA)
    assert ImageSearchClient().base_url == VIRGINIA


def test_explicit_arguments_win_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:9/compatible-mode/v1")

    assert ImageSearchClient(region="us").base_url == VIRGINIA
    assert ImageSearchClient(api_key="sk-arg").settings.api_key.get_secret_value() == "sk-arg"


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("dashscope.aliyuncs.com/compatible-mode/v1", "not an http"),
        (BEIJING + "/responses", "/responses"),
    ],
)
def test_a_malformed_base_url_is_refused(base_url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        ImageSearchClient(base_url=base_url)


def test_a_model_the_docs_do_not_list_warns_but_works() -> None:
    with pytest.warns(UserWarning, match="qwen-turbo") as caught:
        client = ImageSearchClient(model="qwen-turbo")

    assert client.model == "qwen-turbo"
    assert caught[0].filename == __file__  # the warning points at the caller


def test_documented_models_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageSearchClient(model="qwen3.6-plus")
        ImageSearchClient(model="qwen3.7-max-2026-06-08")


@pytest.mark.parametrize(
    ("option", "value"), [("timeout", 0), ("max_retries", -1), ("retry_backoff", -1)]
)
def test_nonsense_timeouts_and_retries_are_refused(option: str, value: int) -> None:
    with pytest.raises(ConfigurationError, match=option):
        ImageSearchClient(**{option: value})  # type: ignore[arg-type]
