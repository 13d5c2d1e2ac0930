"""The API's bodies, responses and errors, shaped as OpenAI's.

Bodies are pydantic models, strict: a string is not a number, `true` is not 1, NaN and infinity are
refused; fields OpenAI's clients may send and this server does not use are ignored, but one that
would change the answer (`stop`, `logprobs`, penalties, ...) is refused rather than silently
dropped. vLLM's extensions `ignore_eos` and `min_tokens` are taken: a benchmark needs exact output
lengths, and a random-init model stops anywhere; so is `return_token_ids` (each streamed chunk's
choice carries `token_ids`, the ids it holds, as vLLM's do), which a load generator uses to carry a
conversation's replies into its next turn as the ids the model made.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

# parameters that would change the answer: refused when given a value
UNSUPPORTED = ("stop", "logprobs", "top_logprobs", "echo", "best_of", "suffix", "logit_bias", "presence_penalty",
               "frequency_penalty", "repetition_penalty", "tools", "tool_choice", "functions", "response_format",
               "prompt_logprobs", "guided_json", "guided_regex", "guided_choice")


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
    include_usage: bool = False


class _Generation(_Body):
    model: str = Field(max_length=256)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False
    min_tokens: int = Field(0, ge=0)
    return_token_ids: bool = False  # vLLM's extension: each streamed chunk carries its token ids
    user: str | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _supported(self):
        for name in UNSUPPORTED:
            if (self.model_extra or {}).get(name) not in (None, False, 0, 0.0, "", [], {}):
                raise PydanticCustomError("unsupported", "{name}: not supported by this server", {"name": name})
        return self


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
        if err["type"] == "unsupported":
            raise ApiError(400, err["msg"], param=err["ctx"]["name"]) from None
        loc = [str(x) for x in err["loc"] if not str(x).startswith(("str", "list[", "function-"))]
        param = ".".join(loc) or None
        raise ApiError(400, f"{param}: {err['msg']}" if param else err["msg"], param=param) from None


class Shape:
    """The JSON of one kind of response (completions or chat completions), whole or in chunks."""

    def __init__(self, chat: bool, rid: str, model: str, created: int):
        self.chat, self.head = chat, {"id": rid, "created": created, "model": model}

    def chunk(self, text: str | None, finish: str | None = None, first: bool = False,
              ids: list[int] | None = None) -> dict:
        extra = {} if ids is None else {"token_ids": ids}
        if self.chat:
            delta = {} if text is None else {"role": "assistant", "content": text} if first else {"content": text}
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **extra}
            return {**self.head, "object": "chat.completion.chunk", "choices": [choice]}
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish, **extra}
        return {**self.head, "object": "text_completion", "choices": [choice]}

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
