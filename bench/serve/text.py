"""Text in and out of the API: prompts and chat messages to token ids, generated ids to text.

A checkpoint brings its own tokenizer (loaded from its directory, no remote code); the random-init
presets have only the small word-level tokenizer trained on the shipped dialogues, whose 466 ids
cover a fraction of the model's vocabulary (1,000 tiny; 54,944 BlenderBot-90M). A generated id that
has no text is shown as a placeholder, `<|id:N|>`, separated from its neighbours by spaces; special
tokens (end of sequence, padding) have no text. A prompt may also be given as token ids.

Chat messages become the dialogue context as BlenderBot was trained on it: the turns' texts, oldest
first, one per line (ParlAI's delimiter), a system message first; a tokenizer with a chat template
uses its template instead.
"""

from __future__ import annotations

PLACEHOLDER = "<|id:{}|>"


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

    def chat(self, messages: list[tuple[str, str]]) -> list[int]:
        """(role, text) turns to the model's context ids."""
        if self.hf and getattr(self.tok, "chat_template", None):
            turns = [{"role": role, "content": text} for role, text in messages]
            return list(self.tok.apply_chat_template(turns, tokenize=True, add_generation_prompt=True))
        system = [text for role, text in messages if role in ("system", "developer")]
        dialogue = [text for role, text in messages if role not in ("system", "developer")]
        return self.encode("\n".join(system + dialogue))

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


def load_codec(servable, vocab_size: int | None = None) -> Codec:
    """The codec of a servable model (workloads/blender_servable.py): its tokenizer, or ids only, over
    its vocabulary (or `vocab_size` ids)."""
    return Codec(servable.tokenizer(), vocab_size or servable.vocab_size)
