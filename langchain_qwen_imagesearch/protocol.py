"""Typed wire models of the Qwen Responses API with the ``image_search`` tool.

These state docs/protocol.md in code and are the only code the client and the embedded
server share: models, limits and error codes. Every model tolerates fields it does not know
(``extra="allow"``) and every field the upstream may omit is optional, because the live
service is sloppy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

IMAGE_SEARCH_TOOL = "image_search"
IMAGE_SEARCH_CALL = "image_search_call"
# The model's own tools, beside the built-in one (docs/protocol.md#request).
FUNCTION_TOOL = "function"
FUNCTION_CALL = "function_call"
FUNCTION_CALL_OUTPUT = "function_call_output"

# Upstream image limits (docs/protocol.md#image-limits).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 10
MAX_ASPECT_RATIO = 200
MAX_HITS_PER_SEARCH = 100
BBOX_SCALE = 1000
MAX_DECODED_PIXELS = 24_000_000
"""This package's budget, not an upstream limit: pixels one image may decode to, on either
side (a 6000 x 4000 photo; 96 MB as RGBA). A small file can declare far more (a 657 KB PNG
of 13000 x 13000 decodes to 2.7 GB); JPEGs decode at reduced scale first, within it."""
DEFAULT_MODEL = "qwen3.7-plus"
# Models the docs list for image_search ("series" = the alias plus dated snapshots).
_DOCUMENTED_MODEL_PATTERN = re.compile(
    r"^(qwen3\.[567]-plus(-\d{4}-\d{2}-\d{2})?"
    r"|qwen3\.7-max-2026-06-08"
    r"|qwen3\.[56]-flash(-\d{4}-\d{2}-\d{2})?"
    r"|qwen3\.[56]-\d+b(-a\d+b)?(-[a-z0-9-]+)?)$"
)
# The docs exclude this open-source model explicitly.
_UNSUPPORTED_MODELS = frozenset({"qwen3.6-27b"})


def is_documented_model(model: str) -> bool:
    """Whether the upstream docs list ``model`` as supporting the image_search tool."""
    return model not in _UNSUPPORTED_MODELS and bool(_DOCUMENTED_MODEL_PATTERN.match(model))


FULL_IMAGE_BBOX: tuple[int, int, int, int] = (0, 0, BBOX_SCALE, BBOX_SCALE)


class ErrorCode:
    """Upstream error codes (docs/protocol.md#errors), one definition for client and server.

    Some name a family: ``Throttling`` (``Throttling.RateQuota``, ...), ``InternalError``
    (``InternalError.Algo``), ``AccessDenied`` (``AccessDenied.Unpurchased``,
    ``Model.AccessDenied``). The snake-case spellings are the OpenAI-style envelope's,
    accepted as the same errors.
    """

    INVALID_PARAMETER: Final = "InvalidParameter"
    INVALID_REQUEST: Final = "invalid_request_error"
    DATA_INSPECTION_FAILED: Final = "DataInspectionFailed"
    DATA_INSPECTION_FAILED_SNAKE: Final = "data_inspection_failed"
    ARREARAGE: Final = "Arrearage"
    INVALID_API_KEY: Final = "InvalidApiKey"
    INVALID_API_KEY_SNAKE: Final = "invalid_api_key"
    ACCESS_DENIED: Final = "AccessDenied"
    MODEL_NOT_FOUND: Final = "ModelNotFound"
    MODEL_NOT_FOUND_SNAKE: Final = "model_not_found"
    THROTTLING: Final = "Throttling"
    INTERNAL_ERROR: Final = "InternalError"
    REQUEST_TIMEOUT: Final = "RequestTimeOut"
    MODEL_UNAVAILABLE: Final = "ModelUnavailable"
    SERVER_ERROR: Final = "server_error"
    """The code of an HTTP 200 ``status: "failed"`` response, rate limits among them."""


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are kept, never rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --------------------------------------------------------------------------- request


class InputText(WireModel):
    type: Literal["input_text"] = "input_text"
    text: str


class InputImage(WireModel):
    type: Literal["input_image"] = "input_image"
    image_url: str
    detail: str | None = None


def _content_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("input_text", "input_image") else "other"


class OtherContent(WireModel):
    type: str


InputContent = Annotated[
    Annotated[InputText, Tag("input_text")]
    | Annotated[InputImage, Tag("input_image")]
    | Annotated[OtherContent, Tag("other")],
    Discriminator(_content_kind),
]


class InputMessage(WireModel):
    role: str = "user"
    content: str | list[InputContent]
    type: str | None = None

    def images(self) -> list[InputImage]:
        if isinstance(self.content, str):
            return []
        return [part for part in self.content if isinstance(part, InputImage)]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, InputText))


class FunctionCallItem(WireModel):
    """A call of one of the caller's function tools: in the output, and sent back as input
    (then without ``id`` and ``status``) beside its output."""

    id: str | None = None
    type: Literal["function_call"] = "function_call"
    call_id: str = ""
    name: str = ""
    arguments: str = "{}"
    status: str | None = None


class FunctionCallOutputItem(WireModel):
    """What the caller's function returned for ``call_id``, sent as input."""

    type: Literal["function_call_output"] = "function_call_output"
    call_id: str = ""
    output: str = ""


class OtherInputItem(WireModel):
    type: str


def _input_item_kind(value: Any) -> str:
    if isinstance(value, dict):
        kind, has_role = value.get("type"), "role" in value
    else:
        kind, has_role = getattr(value, "type", None), hasattr(value, "role")
    if has_role or kind == "message":
        return "message"
    return kind if kind in (FUNCTION_CALL, FUNCTION_CALL_OUTPUT) else "other"


InputItem = Annotated[
    Annotated[InputMessage, Tag("message")]
    | Annotated[FunctionCallItem, Tag(FUNCTION_CALL)]
    | Annotated[FunctionCallOutputItem, Tag(FUNCTION_CALL_OUTPUT)]
    | Annotated[OtherInputItem, Tag("other")],
    Discriminator(_input_item_kind),
]


class ToolSpec(WireModel):
    """``{"type": "image_search"}``, or a function tool with its name and JSON schema."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ResponsesRequest(WireModel):
    model: str
    input: str | list[InputItem]
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    instructions: str | None = None

    def messages(self) -> list[InputMessage]:
        if isinstance(self.input, str):
            return [InputMessage(role="user", content=self.input)]
        return [item for item in self.input if isinstance(item, InputMessage)]

    def input_images(self) -> list[InputImage]:
        """Every input image in request order; ``img_idx`` indexes this list."""
        return [image for message in self.messages() for image in message.images()]

    def user_text(self) -> str:
        """The text of every user message, in order."""
        return "\n".join(m.text() for m in self.messages() if m.role == "user" and m.text())

    def latest_user_text(self) -> str:
        """The text of the latest user message (what this turn asks)."""
        users = [m for m in self.messages() if m.role == "user"]
        return users[-1].text() if users else ""

    def latest_images(self) -> list[int]:
        """Positions in ``input_images()`` of the images of the latest message holding any:
        what a turn that brings images asks to search."""
        first = 0
        latest: list[int] = []
        for message in self.messages():
            count = len(message.images())
            if count:
                latest = list(range(first, first + count))
            first += count
        return latest

    def has_tool(self, name: str) -> bool:
        return any(tool.type == name for tool in self.tools)


# --------------------------------------------------------------------------- response


class SearchHitWire(WireModel):
    """One element of the JSON string in ``image_search_call.output``."""

    title: str = ""
    url: str
    index: int


class ImageSearchArguments(WireModel):
    """The JSON string in ``image_search_call.arguments``."""

    img_idx: int = 0
    bbox: list[float] | None = None


class SummaryText(WireModel):
    type: str = "summary_text"
    text: str = ""


class ReasoningItem(WireModel):
    id: str | None = None
    type: Literal["reasoning"] = "reasoning"
    summary: list[SummaryText] = Field(default_factory=list)


class ImageSearchCallItem(WireModel):
    id: str | None = None
    type: Literal["image_search_call"] = "image_search_call"
    status: str | None = None
    name: str | None = IMAGE_SEARCH_TOOL
    arguments: str | None = None
    output: str | None = None

    def parsed_arguments(self) -> ImageSearchArguments:
        """The searched image and region; defaults when the JSON is missing or malformed."""
        if not self.arguments:
            return ImageSearchArguments()
        try:
            return ImageSearchArguments.model_validate_json(self.arguments)
        except ValueError:
            return ImageSearchArguments()

    def parsed_output(self) -> ParsedOutput:
        """The hits (none while in progress, or for ``"[]"``), the entries that are not hits
        and why, or why the whole output is not the documented JSON list."""
        if not self.output:
            return ParsedOutput()
        try:
            raw = json.loads(self.output)
        except ValueError as error:
            return ParsedOutput(error=f"not valid JSON ({error})")
        if not isinstance(raw, list):
            return ParsedOutput(error=f"a JSON {type(raw).__name__}, not a list of hits")
        parsed = ParsedOutput()
        for position, entry in enumerate(raw, start=1):
            problem = _hit_problem(entry)
            if problem is not None:
                parsed.malformed.append(MalformedEntry(json.dumps(entry), problem))
                continue
            index = entry.get("index")
            parsed.hits.append(
                SearchHitWire(
                    title=str(entry.get("title") or ""),
                    url=entry["url"],
                    index=int(index) if index not in (None, "") else position,
                )
            )
        return parsed


@dataclass(frozen=True)
class MalformedEntry:
    """An entry of an ``image_search_call.output`` that is no hit, as received."""

    entry: str
    problem: str


@dataclass
class ParsedOutput:
    hits: list[SearchHitWire] = field(default_factory=list)
    malformed: list[MalformedEntry] = field(default_factory=list)
    error: str | None = None


def _hit_problem(entry: Any) -> str | None:
    """Why ``entry`` is not a hit ``{title, url, index}``, or ``None``."""
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("url"), str) or not entry["url"]:
        return "no url"
    index = entry.get("index")
    if index in (None, ""):
        return None
    if isinstance(index, bool) or not isinstance(index, (int, str)):
        return f"index {index!r} is not a number"
    if isinstance(index, str) and not index.strip().isdigit():
        return f"index {index!r} is not a number"
    return None


class OutputTextPart(WireModel):
    # The upstream's own examples sometimes type the part "text" instead of "output_text".
    type: str = "output_text"
    text: str = ""
    annotations: list[Any] = Field(default_factory=list)


class MessageItem(WireModel):
    id: str | None = None
    type: Literal["message"] = "message"
    role: str = "assistant"
    status: str | None = None
    content: list[OutputTextPart] = Field(default_factory=list)

    def text(self) -> str:
        return "".join(part.text for part in self.content if part.type in ("output_text", "text"))


class OtherItem(WireModel):
    id: str | None = None
    type: str


def _item_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("reasoning", IMAGE_SEARCH_CALL, FUNCTION_CALL, "message") else "other"


OutputItem = Annotated[
    Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[ImageSearchCallItem, Tag(IMAGE_SEARCH_CALL)]
    | Annotated[FunctionCallItem, Tag(FUNCTION_CALL)]
    | Annotated[MessageItem, Tag("message")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_kind),
]


class ToolUsage(WireModel):
    count: int | None = None


class InputTokensDetails(WireModel):
    cached_tokens: int | None = None


class OutputTokensDetails(WireModel):
    reasoning_tokens: int | None = None


class UsageWire(WireModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None
    x_details: list[dict[str, Any]] | None = None
    x_tools: dict[str, ToolUsage] | None = None


class ErrorObject(WireModel):
    code: str | None = None
    message: str | None = None
    type: str | None = None
    param: str | None = None


class ResponseObject(WireModel):
    id: str | None = None
    object: str = "response"
    created_at: float | None = None
    status: str | None = None
    model: str | None = None
    error: ErrorObject | None = None
    output: list[OutputItem] = Field(default_factory=list)
    usage: UsageWire | None = None
    request_id: str | None = None

    def answer_text(self) -> str:
        return "".join(item.text() for item in self.output if isinstance(item, MessageItem))

    def image_search_calls(self) -> list[ImageSearchCallItem]:
        return [item for item in self.output if isinstance(item, ImageSearchCallItem)]

    def function_calls(self) -> list[FunctionCallItem]:
        return [item for item in self.output if isinstance(item, FunctionCallItem)]


# --------------------------------------------------------------------------- streaming


class StreamEvent(WireModel):
    """One server-sent event. A single tolerant shape: fields are set per ``type``.

    Known types (docs/protocol.md#streaming): ``response.created``, ``response.in_progress``,
    ``response.output_item.added`` / ``.done`` (``item``), ``response.content_part.added`` /
    ``.done`` (``part``), ``response.output_text.delta`` (``delta``) / ``.done`` (``text``),
    ``response.reasoning_summary_text.delta`` / ``.done``, ``response.completed`` /
    ``.incomplete`` / ``.failed`` (``response``), and a bare ``error`` (``code``, ``message``).
    """

    type: str
    sequence_number: int | None = None
    output_index: int | None = None
    item_id: str | None = None
    content_index: int | None = None
    summary_index: int | None = None
    item: OutputItem | None = None
    part: OutputTextPart | None = None
    response: ResponseObject | None = None
    delta: str | None = None
    text: str | None = None
    code: str | None = None
    message: str | None = None


# --------------------------------------------------------------------------- errors


class FlatErrorEnvelope(WireModel):
    """``{"request_id", "code", "message"}`` (the Responses docs' envelope)."""

    request_id: str | None = None
    code: str | None = None
    message: str | None = None


class OpenAIErrorEnvelope(WireModel):
    """``{"error": {"message", "type", "code", "param"}, "request_id"}``."""

    error: ErrorObject
    request_id: str | None = None


def dump_wire(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict of a wire model: no ``None`` noise, extra fields kept."""
    return model.model_dump(mode="json", exclude_none=True, warnings=False)
