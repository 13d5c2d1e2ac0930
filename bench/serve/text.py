"""Text in and out of the API: prompts and chat messages to token ids, generated ids to text.

A checkpoint brings its own tokenizer (loaded from its directory, no remote code); the random-init
presets have only the small word-level tokenizer trained on the shipped dialogues, whose 466 ids
cover a fraction of the model's vocabulary (1,000 tiny; 54,944 BlenderBot-90M). A generated id that
has no text is shown as a placeholder, `<|id:N|>`, separated from its neighbours by spaces; special
tokens (end of sequence, padding) have no text. A prompt may also be given as token ids.

Chat messages become the dialogue context as BlenderBot was trained on it: the turns' texts, oldest
first, one per line (ParlAI's delimiter), a system message first; a tokenizer with a chat template
uses its template instead (transformers' apply_chat_template, a Jinja sandbox), on a budget: a
template is code, and a checkpoint's may loop over the messages it is given without end, or build
gigabytes. `bounded` runs it with its template code traced (the thread's trace function sees each line
of Jinja's compiled code, whose file is "<template>"): past RenderBudget's lines, seconds or growth of
the process's resident memory, or once told to stop, the render raises TemplateRefused at its next line.
The lines are counted, not timed: the same template and messages meet the same bound on any machine.
The app renders off its event loop (app.py), and `bench serve` checks a checkpoint's template on a short
conversation with the same budget before it starts (check_chat_template).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from bench.core.errors import BenchError, ConfigError

PLACEHOLDER = "<|id:{}|>"
TEMPLATE_FILE = "<template>"  # the file name of Jinja's compiled templates (jinja2 Environment.compile, 3.1)
PROBE = [("user", "hello there"), ("assistant", "hi, how are you?"), ("user", "i am well, thank you")]


@dataclass(frozen=True)
class RenderBudget:
    """What one render of a chat template may spend."""

    lines: int = 1_000_000  # lines of template code run
    seconds: float = 10.0  # a guard for what lines do not count (a slow filter)
    memory_bytes: int = 256 << 20  # growth of the process's resident memory


BUDGET = RenderBudget()


class TemplateRefused(BenchError):
    """The chat template did not render these messages: it raised (code `template_error`), went over
    its budget (`template_budget`), or the server is stopping (`server_stopping`)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def bounded(render, budget: RenderBudget, stop: threading.Event | None = None):
    """render(), its template code held to the budget (see the module's docstring)."""
    import sys

    meter = _Meter(budget, stop)

    def line(frame, event, arg):
        if event == "line":
            meter.tick()
        return line

    sys.settrace(lambda frame, event, arg: line if frame.f_code.co_filename == TEMPLATE_FILE else None)
    try:
        return render()
    finally:
        sys.settrace(None)
        meter.close()


class _Meter:
    """A render's spending: lines counted, the clock, the process's resident memory (Linux's
    /proc/self/statm: read every MEMORY_EVERY lines, and at any line that comes a millisecond or more
    after the last read. A line can double a string, but making one of n bytes takes time in n, so a
    run of quick lines between two reads cannot build much; a read costs ~2 us, a line ~0.1 us)."""

    MEMORY_EVERY, MEMORY_AFTER_S = 64, 1e-3

    def __init__(self, budget: RenderBudget, stop: threading.Event | None):
        import os
        import time

        self.budget, self.stop, self.lines, self.clock = budget, stop, 0, time.monotonic
        self.deadline = self.read_at = self.clock()
        self.deadline += budget.seconds
        try:
            self.fd, self.page = os.open("/proc/self/statm", os.O_RDONLY), os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):  # not Linux: lines and seconds only
            self.fd = None
        self.start = self.resident()

    def resident(self) -> int:
        import os

        return int(os.pread(self.fd, 128, 0).split()[1]) * self.page if self.fd is not None else 0

    def tick(self) -> None:
        self.lines += 1
        b, now = self.budget, self.clock()
        why = (f"{b.lines:,} lines of template code" if self.lines > b.lines
               else f"{b.seconds:g} s" if now > self.deadline
               else f"{b.memory_bytes >> 20:,} MiB more memory" if self.grown(now) > b.memory_bytes
               else None)
        if self.stop is not None and self.stop.is_set():
            raise TemplateRefused("the server is stopping", "server_stopping")
        if why is not None:
            raise TemplateRefused(f"the chat template needed more than {why} to render these messages",
                                  "template_budget")

    def grown(self, now: float) -> int:
        if self.lines % self.MEMORY_EVERY and now - self.read_at < self.MEMORY_AFTER_S:
            return 0
        self.read_at = now
        return self.resident() - self.start

    def close(self) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)


class Codec:
    """Token ids <-> text for one model; `tokenizer` None: ids only (prompts as token ids)."""

    def __init__(self, tokenizer, vocab_size: int):
        self.tok, self.vocab_size = tokenizer, vocab_size
        self.hf = tokenizer is not None and hasattr(tokenizer, "apply_chat_template")

    @property
    def has_text(self) -> bool:
        return self.tok is not None

    def encode(self, text: str) -> list[int]:
        if self.hf:
            return list(self.tok.encode(text, add_special_tokens=False))
        return list(self.tok.encode(text).ids)

    @property
    def templated(self) -> bool:
        return self.hf and bool(getattr(self.tok, "chat_template", None))

    def chat(self, messages: list[tuple[str, str]], budget: RenderBudget = BUDGET,
             stop: threading.Event | None = None) -> list[int]:
        """(role, text) turns to the model's context ids; TemplateRefused where a chat template does not
        render them (within the budget)."""
        if self.templated:
            turns = [{"role": role, "content": text} for role, text in messages]
            return self._templated(turns, budget, stop)
        system = [text for role, text in messages if role in ("system", "developer")]
        dialogue = [text for role, text in messages if role not in ("system", "developer")]
        return self.encode("\n".join(system + dialogue))

    def _templated(self, turns: list[dict], budget: RenderBudget, stop) -> list[int]:
        import jinja2

        try:
            # return_dict=False: transformers 5 returns a BatchEncoding by default (tokenization_utils_base.py,
            # apply_chat_template, 5.25: `return_dict: bool = True`), whose list is its keys
            return list(bounded(lambda: self.tok.apply_chat_template(turns, tokenize=True, add_generation_prompt=True,
                                                                     return_dict=False), budget, stop))
        except jinja2.TemplateError as exc:  # its own raise_exception(...), a syntax error, a sandbox refusal
            raise TemplateRefused(f"the chat template refused these messages: {str(exc)[:300]}",
                                  "template_syntax" if isinstance(exc, jinja2.TemplateSyntaxError) else
                                  "template_error") from None

    def knows(self, token: int) -> bool:
        if self.tok is None or not 0 <= token < self.vocab_size:
            return False
        if self.hf:
            return token < len(self.tok)
        return self.tok.id_to_token(token) is not None

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True) if ids else ""


class Detokenizer:
    """The text of a reply, one piece per generated id: the pieces, joined, are the reply's text."""

    def __init__(self, codec: Codec):
        self.codec = codec
        self.done = ""  # text of the runs before the current one
        self.run: list[int] = []  # the current run of ids the tokenizer knows
        self.text = ""

    def piece(self, token: int) -> str:
        if self.codec.knows(token):
            self.run.append(token)
            text = self._join(self.done, self.codec.decode(self.run))
        else:
            self.done, self.run = self._join(self.done, self.codec.decode(self.run)), []
            text = self.done = self._join(self.done, PLACEHOLDER.format(token))
        piece = text[len(self.text):] if text.startswith(self.text) else ""
        self.text += piece
        return piece

    @staticmethod
    def _join(a: str, b: str) -> str:
        return f"{a} {b}" if a and b else a or b


def check_chat_template(codec: Codec, where: str, budget: RenderBudget = BUDGET) -> None:
    """A checkpoint's chat template renders a short conversation within the budget (ConfigError naming
    it otherwise); a template that refuses that conversation on its own terms is left to its requests."""
    if not codec.templated:
        return
    try:
        codec.chat(PROBE, budget)
    except TemplateRefused as exc:
        if exc.code in ("template_budget", "template_syntax"):
            raise ConfigError(f"the chat template of {where}: {exc} (a three-turn conversation); bench serve "
                              "would freeze on it") from None


def load_codec(servable, vocab_size: int | None = None) -> Codec:
    """The codec of a servable model (workloads/blender_servable.py): its tokenizer, or ids only, over
    its vocabulary (or `vocab_size` ids)."""
    return Codec(servable.tokenizer(), vocab_size or servable.vocab_size)
