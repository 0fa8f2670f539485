"""Token usage estimated the way the upstream bills it (docs/protocol.md#cost-and-latency)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from langchain_qwen_imagesearch.protocol import (
    IMAGE_SEARCH_TOOL,
    InputTokensDetails,
    OutputTokensDetails,
    SearchHitWire,
    ToolUsage,
    UsageWire,
)

PIXELS_PER_IMAGE_TOKEN_SIDE = 32
MAX_TOKENS_PER_IMAGE = 2500
CHARACTERS_PER_TEXT_TOKEN = 4
# Found images are added to the model's prompt; a 256x256 thumbnail costs 64 tokens.
TOKENS_PER_HIT_THUMBNAIL = 64


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARACTERS_PER_TEXT_TOKEN)


def image_tokens(width: int, height: int) -> int:
    """About one token per 32x32 pixels, capped near 2,500 per image."""
    side = PIXELS_PER_IMAGE_TOKEN_SIDE
    return min(MAX_TOKENS_PER_IMAGE, math.ceil(width / side) * math.ceil(height / side))


def estimate_usage(
    *,
    prompt: str,
    image_sizes: Sequence[tuple[int, int]],
    hits: Sequence[SearchHitWire],
    answer: str,
    searches: int,
) -> UsageWire:
    input_tokens = (
        text_tokens(prompt)
        + sum(image_tokens(width, height) for width, height in image_sizes)
        + sum(text_tokens(hit.title + hit.url) + TOKENS_PER_HIT_THUMBNAIL for hit in hits)
    )
    output_tokens = text_tokens(answer)
    total = input_tokens + output_tokens
    return UsageWire(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total,
        input_tokens_details=InputTokensDetails(cached_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        x_details=[
            {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": total,
                "x_billing_type": "response_api",
            }
        ],
        x_tools={IMAGE_SEARCH_TOOL: ToolUsage(count=searches)} if searches else None,
    )
