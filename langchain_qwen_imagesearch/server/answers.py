"""Writers of the model's "inference": what the server says about the hits, streamed as deltas."""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from langchain_qwen_imagesearch.protocol import SearchHitWire
from langchain_qwen_imagesearch.server.engine.hit_rule import Match

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

THEME_STOPWORDS = frozenset(
    {"with", "from", "that", "this", "into", "over", "under", "onto", "their", "there"}
    | {"the", "and", "for", "near", "image", "photo", "picture"}
)
WORDS_PER_DELTA = 3


@dataclass(frozen=True)
class SearchOutcome:
    """What one ``image_search`` call found for one input image."""

    img_idx: int
    matches: Sequence[Match]
    hits: Sequence[SearchHitWire]


class AnswerWriter(Protocol):
    """Writes the answer text for a request, as a stream of text deltas."""

    def write(
        self, *, query: str, images: Sequence[Image.Image], outcomes: Sequence[SearchOutcome]
    ) -> AsyncIterator[str]: ...


def split_into_deltas(text: str) -> list[str]:
    """Chunks of a few words, whitespace kept, so the deltas join back to ``text`` exactly."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return [
        "".join(tokens[i : i + WORDS_PER_DELTA]) for i in range(0, len(tokens), WORDS_PER_DELTA)
    ]


def common_themes(titles: Sequence[str], limit: int = 5) -> list[str]:
    """Words that recur across at least two titles, most frequent first."""
    counts: Counter[str] = Counter()
    for title in titles:
        words = {w for w in re.findall(r"[a-z]+", title.lower()) if len(w) > 2}
        counts.update(words - THEME_STOPWORDS)
    return [word for word, count in counts.most_common() if count >= 2][:limit]


class SummaryAnswerWriter:
    """A deterministic written summary of what the local engine found; says what it is."""

    def __init__(self, catalog_size: int):
        self._catalog_size = catalog_size

    async def write(
        self, *, query: str, images: Sequence[Image.Image], outcomes: Sequence[SearchOutcome]
    ) -> AsyncIterator[str]:
        for delta in split_into_deltas(self.summary(query, outcomes)):
            yield delta

    def summary(self, query: str, outcomes: Sequence[SearchOutcome]) -> str:
        lines = [
            f"Searched {len(outcomes)} image(s) against a local catalog of "
            f"{self._catalog_size} images. This summary was written by the embedded offline "
            "search engine from similarity scores (appearance for edited copies, meaning for "
            "similar images), not by a Qwen model."
        ]
        if query:
            lines.append(f'Request: "{query}"')
        for outcome in outcomes:
            lines.append("")
            lines.extend(self._describe(outcome))
        return "\n".join(lines)

    def _describe(self, outcome: SearchOutcome) -> list[str]:
        label = f"Image {outcome.img_idx + 1}"
        if not outcome.matches:
            return [
                f"{label}: no catalog image is similar enough to report; "
                "no unrelated images are listed instead."
            ]
        duplicates = [m for m in outcome.matches if m.near_duplicate]
        similar = [m for m in outcome.matches if not m.near_duplicate]
        lines = [f"{label}: {len(outcome.matches)} match(es)."]
        if duplicates:
            lines.append(
                "Same picture (very likely edited, cropped or re-encoded copies): "
                + ", ".join(f'"{m.entry.title}" ({m.score:.2f})' for m in duplicates[:5])
                + "."
            )
        if similar:
            lines.append(
                "Similar images (the same kind of thing or style, not the same picture): "
                + ", ".join(f'"{m.entry.title}" ({m.score:.2f})' for m in similar[:5])
                + (f" and {len(similar) - 5} more." if len(similar) > 5 else ".")
            )
        themes = common_themes([m.entry.title for m in outcome.matches])
        if themes:
            lines.append("Common themes in the titles: " + ", ".join(themes) + ".")
        return lines


class ChatModelAnswerWriter:
    """Asks a real chat model at an OpenAI-compatible endpoint to write the inference."""

    SYSTEM_PROMPT = (
        "You answer a search-by-image request. A visual search over an image catalog found the "
        "images listed below (title, URL, kind, similarity score 0-1): 'same picture' results are "
        "edited copies of the input image, 'similar' ones show the same kind of thing or style. "
        "Reason over them to answer the user's request: say what the input image most likely "
        "shows and what the results have in common with it. Cite results by title. Never "
        "invent results or URLs."
    )

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None):
        # Imported here: only this optional writer needs the SDK, and it is slow to import.
        from openai import AsyncOpenAI

        self._model = model
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed")

    async def write(
        self, *, query: str, images: Sequence[Image.Image], outcomes: Sequence[SearchOutcome]
    ) -> AsyncIterator[str]:
        content: list[ChatCompletionContentPartParam] = [
            {"type": "text", "text": self._prompt(query, outcomes)}
        ]
        content += [
            {"type": "image_url", "image_url": {"url": _thumbnail_data_url(image)}}
            for image in images
        ]
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": self.SYSTEM_PROMPT},
            {"role": "user", "content": content},
        ]
        stream = await self._client.chat.completions.create(
            model=self._model, messages=messages, stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    @staticmethod
    def _prompt(query: str, outcomes: Sequence[SearchOutcome]) -> str:
        lines = [f"Request: {query or 'Find images similar to this one.'}"]
        for outcome in outcomes:
            lines.append(f"Results for input image {outcome.img_idx + 1}:")
            lines.extend(
                f"[{hit.index}] {hit.title} | {hit.url} | {match.kind} | {match.score:.2f}"
                for hit, match in zip(outcome.hits, outcome.matches, strict=True)
            )
            if not outcome.hits:
                lines.append("(no results)")
        return "\n".join(lines)


def _thumbnail_data_url(image: Image.Image, side: int = 512) -> str:
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((side, side))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
