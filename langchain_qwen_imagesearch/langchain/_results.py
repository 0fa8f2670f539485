"""Search results as the LangChain components hand them over, typed wherever they travel.

``QwenImageSearchResult`` is an ``ImageSearchResult`` that LangChain's own serialization
(``dumpd`` / ``load``) carries typed. Checkpointers store a message through its
``model_dump()``, which flattens an artifact to a dict and forgets its class, so whatever
reads results from messages goes through :func:`image_search_result`, which takes the
message (or the artifact, typed or a dict) and gives the typed result back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.load.serializable import (
    Serializable,
    SerializedConstructor,
    SerializedNotImplemented,
)
from langchain_core.messages import BaseMessage, ToolMessage
from typing_extensions import Self, override

from langchain_qwen_imagesearch.client import ImageHit, ImageSearchResult

RESULT_KEY = "image_search"
"""The ``additional_kwargs`` key of the result in the messages of ``ChatQwenImageSearch``."""

LC_NAMESPACE = ["langchain_qwen_imagesearch"]

_TITLE_LIMIT = 120
"""Where ``langchain_core.load`` finds this package's classes: its top-level exports."""


class QwenImageSearchResult(ImageSearchResult, Serializable):
    """An ``ImageSearchResult`` from a LangChain component; ``dumpd``/``load`` keep it typed
    (``load(..., allowed_objects=[QwenImageSearchResult],
    valid_namespaces=["langchain_qwen_imagesearch"])``)."""

    @classmethod
    @override
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    @override
    def get_lc_namespace(cls) -> list[str]:
        return LC_NAMESPACE

    @override
    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        # Plain JSON kwargs: loading validates them back into the nested models.
        return {
            "lc": 1,
            "type": "constructor",
            "id": self.lc_id(),
            "kwargs": self.model_dump(mode="json", exclude_defaults=True),
        }

    @classmethod
    def of(cls, result: ImageSearchResult | Mapping[str, Any]) -> Self:
        """The same result as this type: from the client's result, or from its JSON dict."""
        if isinstance(result, cls):
            return result
        if isinstance(result, ImageSearchResult):
            return cls(**{name: getattr(result, name) for name in ImageSearchResult.model_fields})
        return cls.model_validate(result)


def image_search_result(
    value: BaseMessage | ImageSearchResult | Mapping[str, Any] | None,
) -> QwenImageSearchResult | None:
    """The typed search result a message carries, or ``None`` when it carries none.

    Takes the ``ToolMessage`` of the search tool or the graph node (its artifact), an
    ``AIMessage`` of ``ChatQwenImageSearch``, or the artifact itself: typed, or the plain dict
    a checkpointer or ``message_to_dict`` turned it into.
    """
    if value is None:
        return None
    if isinstance(value, BaseMessage):
        raw = value.artifact if isinstance(value, ToolMessage) else None
        if raw is None:
            raw = value.additional_kwargs.get(RESULT_KEY)
        return image_search_result(raw) if raw is not None else None
    return QwenImageSearchResult.of(value)


def hit_lines(hits: Sequence[ImageHit], *, start: int) -> list[str]:
    """``"3. Title - URL"`` lines numbered from ``start``."""
    return [
        f"{number}. {_short_title(hit.title) or '(untitled)'} - {hit.url}"
        for number, hit in enumerate(hits, start=start)
    ]


def _short_title(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= _TITLE_LIMIT else title[: _TITLE_LIMIT - 3] + "..."
