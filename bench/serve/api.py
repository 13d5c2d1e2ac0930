"""The API's bodies, responses and errors, shaped as OpenAI's.

Bodies are pydantic models, strict: a string is not a number, `true` is not 1, NaN and infinity are
refused. A parameter this server does not implement is judged by its value (`NEUTRAL`): the value
that asks for nothing — `repetition_penalty` 1.0, penalties 0, `response_format` `{"type": "text"}`,
`logprobs` null (or false in chat), empty lists — is taken, as its default would be; a value the
parameter cannot have (`repetition_penalty` 0, a penalty beyond ±2) is a 400 saying its range, as
vLLM answers it; any other value is refused by name, never dropped silently. Fields no client needs
an answer to (`user`, `parallel_tool_calls`, ...) are ignored. `stop` is implemented (at most
MAX_STOPS strings of 1 to MAX_STOP_CHARS characters; reply.py applies them to the text). vLLM's
extensions `ignore_eos` and `min_tokens` are taken: a benchmark needs exact output lengths, and a
random-init model stops anywhere; so is `return_token_ids` (each streamed chunk's choice carries
`token_ids`, the ids it holds, as vLLM's do), which a load generator uses to carry a conversation's
replies into its next turn as the ids the model made. `stream_options` needs `stream: true`, and
`continuous_usage_stats` is honoured (every chunk carries the usage so far), as vLLM does both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

MAX_STOPS = 16  # stop strings one request may give (OpenAI takes 4; vLLM any number)
MAX_STOP_CHARS = 256


def _number(lo: float, hi: float, lo_open: bool = False):
    def ok(v) -> bool:
        return type(v) in (int, float) and math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi
    return ok


def _whole(lo: int, hi: int):
    return lambda v: type(v) is int and lo <= v <= hi


@dataclass(frozen=True)
class Neutral:
    """A parameter this server does not implement: the values that ask for nothing (compared with their
    JSON type: `0` is not `false`), and the values it may have at all (None: any)."""

    values: tuple
    valid: object = None
    rule: str = ""


# vLLM 0.32's ranges (vllm/sampling_params.py SamplingParams._verify_args) and defaults (vllm/entrypoints/openai/
# completion/protocol.py CompletionRequest, chat_completion/protocol.py ChatCompletionRequest)
_COMMON = {
    "repetition_penalty": Neutral((None, 1.0), _number(0, math.inf, lo_open=True), "a finite number above 0"),
    "presence_penalty": Neutral((None, 0.0), _number(-2, 2), "a number from -2 to 2"),
    "frequency_penalty": Neutral((None, 0.0), _number(-2, 2), "a number from -2 to 2"),
    "top_k": Neutral((None, 0, -1), _whole(-1, 2**31 - 1), "a whole number from -1 (no limit)"),
    "min_p": Neutral((None, 0.0), _number(0, 1), "a number from 0 to 1"),
    "length_penalty": Neutral((None, 1.0), _number(-math.inf, math.inf), "a finite number"),
    "best_of": Neutral((None, 1), _whole(1, 2**31 - 1), "a whole number of at least 1"),
    "response_format": Neutral((None, {"type": "text"})),
    "prompt_logprobs": Neutral((None,)),
    "echo": Neutral((None, False)),
    "logit_bias": Neutral((None, {})),
    "stop_token_ids": Neutral((None, [])),
    "bad_words": Neutral((None, [])),
    "allowed_token_ids": Neutral((None,)),
    "use_beam_search": Neutral((None, False)),
    "include_stop_str_in_output": Neutral((None, False)),
    "skip_special_tokens": Neutral((None, True)),
    "guided_json": Neutral((None,)), "guided_regex": Neutral((None,)), "guided_choice": Neutral((None,)),
    "guided_grammar": Neutral((None,)), "structured_outputs": Neutral((None,)),
}
NEUTRAL_COMPLETIONS = {
    **_COMMON,
    # completions' logprobs is a count: 0 asks for the chosen token's own log probability, so only null is neutral
    "logprobs": Neutral((None,), lambda v: type(v) is int and (v >= 0 or v == -1), "a whole number of 0 or more"),
    "suffix": Neutral((None, "")),
}
NEUTRAL_CHAT = {
    **_COMMON,
    "logprobs": Neutral((None, False), lambda v: type(v) is bool, "true or false"),
    "top_logprobs": Neutral((None, 0), _whole(0, 20), "a whole number from 0 to 20"),
    "tools": Neutral((None, [])), "functions": Neutral((None, [])),
    "tool_choice": Neutral((None, "none", "auto")),  # no tools: neither can call one
}


def _same(value, neutral) -> bool:
    """The value is this neutral one, JSON types kept apart (`0` is not `false`; `1` is `1.0`)."""
    numbers = (int, float)
    if type(value) in numbers and type(neutral) in numbers:
        return value == neutral
    return type(value) is type(neutral) and value == neutral


def judge(params: dict, table: dict[str, Neutral]) -> None:
    """Each unimplemented parameter given: neutral (taken), invalid (PydanticCustomError `invalid`: its rule),
    or refused (`unsupported`)."""
    for name, n in table.items():
        if name not in params or any(_same(params[name], v) for v in n.values):
            continue
        if n.valid is not None and not n.valid(params[name]):
            raise PydanticCustomError("invalid", "{name}: must be {rule}", {"name": name, "rule": n.rule})
        raise PydanticCustomError("unsupported", "{name}: not supported by this server (it takes only the value that "
                                                 "asks for nothing: {neutral})", {"name": name, "neutral": _shown(n.values)})


def _shown(values: tuple) -> str:
    import json

    return " or ".join(json.dumps(v) for v in values)


class ApiError(Exception):
    """An HTTP error with OpenAI's body: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="allow")


class StreamOptions(_Body):
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False  # vLLM's: every chunk carries the usage so far


class _Generation(_Body):
    neutral: ClassVar[dict] = NEUTRAL_COMPLETIONS

    model: str = Field(max_length=256)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)  # null: the default, 1
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # vLLM's: any int64 (clients send -1)
    n: int = Field(1, ge=1, le=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    ignore_eos: bool = False
    min_tokens: int = Field(0, ge=0)
    return_token_ids: bool | None = False  # vLLM's extension: each streamed chunk carries its token ids
    user: str | None = Field(None, max_length=256)

    @field_validator("stop")
    @classmethod
    def _bounded(cls, v):
        stops = [v] if isinstance(v, str) else v or []
        if len(stops) > MAX_STOPS:
            raise PydanticCustomError("invalid", "stop: at most {n} strings", {"n": MAX_STOPS})
        if any(not 1 <= len(s) <= MAX_STOP_CHARS for s in stops):  # vLLM: "stop cannot contain an empty string"
            raise PydanticCustomError("invalid", "stop: each string has 1 to {n} characters", {"n": MAX_STOP_CHARS})
        return v

    @model_validator(mode="after")
    def _supported(self):
        judge(self.model_extra or {}, self.neutral)
        # vLLM 0.32 (completion/protocol.py, chat_completion/protocol.py): `if data.get("stream_options") and not
        # data.get("stream")` -> 400 "Stream options can only be defined when `stream=True`."; OpenAI answers 400 too
        if self.stream_options is not None and set(self.stream_options.model_fields_set) | set(
                self.stream_options.model_extra or {}) and not self.stream:
            raise PydanticCustomError("invalid", "stream_options: only with stream: true", {"name": "stream_options"})
        return self

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    @property
    def sampling(self) -> tuple[float, float]:
        """(temperature, top_p), a null one as its default (1)."""
        return (1.0 if self.temperature is None else self.temperature, 1.0 if self.top_p is None else self.top_p)

    def usage_wanted(self) -> tuple[bool, bool]:
        """(a last chunk with the usage, the usage in every chunk), as vLLM's should_include_usage reads them
        (vllm/entrypoints/serve/utils/api_utils.py: continuous only together with include_usage)."""
        o = self.stream_options
        last = bool(o and o.include_usage)
        return last, last and bool(o.continuous_usage_stats)


class CompletionRequest(_Generation):
    prompt: str | list[int] | list[str] | list[list[int]]


class TextPart(_Body):
    type: Literal["text"]
    text: str


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = Field(None, max_length=256)

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(_Generation):
    neutral: ClassVar[dict] = NEUTRAL_CHAT

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


def parse(raw: bytes, cls: type[_Generation]) -> _Generation:
    """A body, or ApiError 400 saying what is wrong with it (never echoing what was sent)."""
    try:
        return cls.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        if err["type"] == "json_invalid":
            raise ApiError(400, f"the body is not valid JSON ({err['msg']})") from None
        if err["type"] in ("unsupported", "invalid"):
            name = (err.get("ctx") or {}).get("name") or err["msg"].split(":", 1)[0]
            raise ApiError(400, err["msg"], param=name) from None
        loc = [str(x) for x in err["loc"] if not str(x).startswith(("str", "list[", "function-"))]
        param = ".".join(loc) or None
        raise ApiError(400, f"{param}: {err['msg']}" if param else err["msg"], param=param) from None


JSON_TYPES = ("application/json",)


def check_content_type(value: str | None) -> None:
    """A body is JSON when its Content-Type says so or says nothing, as FastAPI reads a JSON body (fastapi/
    routing.py get_request_handler, 0.115: no header, or `application/json` or `application/*+json`) and vLLM
    answers anything else with 400; curl's `-d` alone sends `application/x-www-form-urlencoded`."""
    if not value:
        return
    kind = value.split(";", 1)[0].strip().lower()
    main, _, sub = kind.partition("/")
    if main == "application" and (sub == "json" or sub.endswith("+json")):
        return
    raise ApiError(400, f"the body must be JSON, sent as Content-Type: application/json (it was sent as "
                        f"{kind[:60]!r}; with curl: -H 'Content-Type: application/json')", param="content-type")


class Shape:
    """The JSON of one kind of response (completions or chat completions), whole or in chunks."""

    def __init__(self, chat: bool, rid: str, model: str, created: int):
        self.chat, self.head = chat, {"id": rid, "created": created, "model": model}

    def chunk(self, text: str, finish: str | None = None, ids: list[int] | None = None,
              usage: dict | None = None) -> dict:
        """One token's chunk (its text piece, and the finish reason when it is the last)."""
        extra = {} if ids is None else {"token_ids": ids}
        if self.chat:
            choice = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": finish, **extra}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, **extra}
        return self._with(choice, usage)

    def role_chunk(self, usage: dict | None = None) -> dict:
        """A chat stream's first chunk: the role alone, as OpenAI and vLLM send it (vllm/entrypoints/openai/
        chat_completion/serving.py: `DeltaMessage(role=role, content="")` on the first output)."""
        return self._with({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                           "finish_reason": None}, usage)

    def _with(self, choice: dict, usage: dict | None) -> dict:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self.head, "object": kind, "choices": [choice], **({} if usage is None else {"usage": usage})}

    def usage_chunk(self, usage: dict) -> dict:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self.head, "object": kind, "choices": [], "usage": usage}

    def whole(self, text: str, finish: str, usage: dict) -> dict:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                      "finish_reason": finish}
            return {**self.head, "object": "chat.completion", "choices": [choice], "usage": usage}
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return {**self.head, "object": "text_completion", "choices": [choice], "usage": usage}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
