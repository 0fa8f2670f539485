"""Client settings: API key, base URL (from a region or given), model, timeout and retries.

Resolution follows the DashScope ecosystem: explicit arguments first, then the environment
(``DASHSCOPE_API_KEY``, ``DASHSCOPE_BASE_URL`` (or langchain-qwq's ``DASHSCOPE_API_BASE``),
``DASHSCOPE_REGION``,
``DASHSCOPE_WORKSPACE_ID`` / ``DASHSCOPE_WORKSPACE``). A base URL always wins over a region
given at the same level.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from langchain_qwen_imagesearch.client._errors import ConfigurationError
from langchain_qwen_imagesearch.protocol import DEFAULT_MODEL, is_documented_model

API_KEY_ENV = "DASHSCOPE_API_KEY"
BASE_URL_ENV = "DASHSCOPE_BASE_URL"
# langchain-qwq's name for the same setting; read after ours.
LEGACY_BASE_URL_ENV = "DASHSCOPE_API_BASE"
REGION_ENV = "DASHSCOPE_REGION"
WORKSPACE_ENVS = ("DASHSCOPE_WORKSPACE_ID", "DASHSCOPE_WORKSPACE")

# An image search takes about 70 s end to end upstream (docs/protocol.md#cost-and-latency).
DEFAULT_TIMEOUT_SECONDS = 180.0
DEFAULT_MAX_RETRIES = 2
# The first retry's backoff when the service sends no Retry-After; it doubles per retry.
DEFAULT_RETRY_BACKOFF_SECONDS = 1.0
DEFAULT_REGION = "cn-beijing"

WORKSPACE_URL_TEMPLATE = "https://{workspace}.{region}.maas.aliyuncs.com/compatible-mode/v1"
# A workspace id becomes a DNS label of the base URL.
_WORKSPACE_ID_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Region:
    """A Model Studio region: its official id, and its shared endpoint if it has one."""

    id: str
    label: str
    shared_base_url: str | None

    def base_url(self, workspace_id: str | None) -> str:
        """The workspace endpoint when a workspace is given, else the shared one."""
        if workspace_id:
            return WORKSPACE_URL_TEMPLATE.format(workspace=workspace_id, region=self.id)
        if self.shared_base_url is None:
            raise ConfigurationError(
                f"Region {self.id} ({self.label}) is reached only through a workspace URL: "
                f"pass workspace_id=... or set {WORKSPACE_ENVS[0]}."
            )
        return self.shared_base_url


REGIONS: dict[str, Region] = {
    region.id: region
    for region in (
        Region(
            "cn-beijing", "China (Beijing)", "https://dashscope.aliyuncs.com/compatible-mode/v1"
        ),
        Region(
            "ap-southeast-1", "Singapore", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
        ),
        Region(
            "us-east-1", "US (Virginia)", "https://dashscope-us.aliyuncs.com/compatible-mode/v1"
        ),
        Region("cn-hongkong", "China (Hong Kong)", None),
        Region("eu-central-1", "Germany (Frankfurt)", None),
        Region("ap-northeast-1", "Japan (Tokyo)", None),
    )
}

REGION_ALIASES: dict[str, str] = {
    "beijing": "cn-beijing",
    "china": "cn-beijing",
    "singapore": "ap-southeast-1",
    "intl": "ap-southeast-1",
    "us": "us-east-1",
    "virginia": "us-east-1",
}


def resolve_region(name: str) -> Region:
    """The region named by its official id or a friendly alias (case-insensitive)."""
    key = name.strip().lower()
    region = REGIONS.get(REGION_ALIASES.get(key, key))
    if region is None:
        official = ", ".join(REGIONS)
        aliases = ", ".join(f"{alias} ({target})" for alias, target in REGION_ALIASES.items())
        raise ConfigurationError(
            f"Unknown region {name!r}. Valid regions: {official}; aliases: {aliases}. "
            f"Or pass base_url=... / set {BASE_URL_ENV}."
        )
    return region


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"base_url {base_url!r} is not an http(s) URL; it should look like "
            f"{REGIONS[DEFAULT_REGION].shared_base_url}."
        )
    if parts.path.rstrip("/").endswith("/responses"):
        raise ConfigurationError(
            f"base_url {base_url!r} ends with /responses: give the base URL without it "
            "(the client appends /responses itself)."
        )
    return base_url.rstrip("/")


def _check_workspace_id(workspace_id: str) -> str:
    if not _WORKSPACE_ID_PATTERN.match(workspace_id):
        raise ConfigurationError(
            f"workspace_id {workspace_id!r} is not a valid workspace id (letters, digits and "
            "hyphens, as shown in the Model Studio console)."
        )
    return workspace_id


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def resolve_base_url(
    base_url: str | None, region: str | None, workspace_id: str | None
) -> tuple[str, str | None]:
    """The base URL to call and the region id it belongs to (``None`` for a custom URL)."""
    workspace = workspace_id or next(filter(None, map(_env, WORKSPACE_ENVS)), None)
    if workspace is not None:
        workspace = _check_workspace_id(workspace)
    if base_url is None and region is None:
        base_url = _env(BASE_URL_ENV) or _env(LEGACY_BASE_URL_ENV)
        region = _env(REGION_ENV)
    if base_url is not None:
        return _check_base_url(base_url), None
    chosen = resolve_region(region or DEFAULT_REGION)
    return chosen.base_url(workspace), chosen.id


def resolve_api_key(api_key: str | SecretStr | None) -> SecretStr:
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    key = (api_key or "").strip() or _env(API_KEY_ENV)
    if not key:
        raise ConfigurationError(
            f"No API key: set the {API_KEY_ENV} environment variable or pass api_key=... "
            "(get a key in the Model Studio console of your region)."
        )
    return SecretStr(key)


def resolve_model(model: str | None) -> str:
    chosen = (model or "").strip() or DEFAULT_MODEL
    if not is_documented_model(chosen):
        warnings.warn(
            f"Model {chosen!r} is not listed by Model Studio as supporting the image_search "
            f"tool; the request may fail. Documented models include {DEFAULT_MODEL}, "
            "qwen3.6-plus, qwen3.5-plus and qwen3.7-max-2026-06-08.",
            UserWarning,
            # Point at the code constructing ImageSearchClient (via ClientSettings.resolve).
            stacklevel=4,
        )
    return chosen


@dataclass(frozen=True)
class ClientSettings:
    """Everything the client needs to call the service, checked once at construction."""

    api_key: SecretStr
    base_url: str
    region: str | None
    model: str
    timeout: float
    stall_timeout: float | None
    max_retries: int
    enable_thinking: bool | None
    retry_backoff: float

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        region: str | None = None,
        workspace_id: str | None = None,
        model: str | None = None,
        timeout: float | None = None,
        stall_timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        enable_thinking: bool | None = None,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF_SECONDS,
    ) -> ClientSettings:
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, not {timeout}")
        if stall_timeout is not None and not stall_timeout > 0:
            raise ConfigurationError(
                f"stall_timeout must be a positive number of seconds, not {stall_timeout}"
            )
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, not {max_retries}")
        if retry_backoff < 0:
            raise ConfigurationError(
                f"retry_backoff must be 0 or more seconds, not {retry_backoff}"
            )
        resolved_url, resolved_region = resolve_base_url(base_url, region, workspace_id)
        return cls(
            api_key=resolve_api_key(api_key),
            base_url=resolved_url,
            region=resolved_region,
            model=resolve_model(model),
            timeout=DEFAULT_TIMEOUT_SECONDS if timeout is None else float(timeout),
            stall_timeout=None if stall_timeout is None else float(stall_timeout),
            max_retries=max_retries,
            enable_thinking=enable_thinking,
            retry_backoff=retry_backoff,
        )
