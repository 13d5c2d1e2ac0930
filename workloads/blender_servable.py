"""BlenderBot as the serving scenario serves it: what blender-generate offers bench/serve/.

The scenario (bench/serve/workload.py) asks a generating workload's `servable` for everything that
depends on the model — and nothing of the load: whether --model can be served, the model and its
identity, prompts and their texts, an executor of the engine's protocol (blender_executor.py), the
tokenizer behind the API's text. The workload never imports the scenario; the scenario reads this
class from the workload it serves (`BlenderGenerate.servable`).
"""

from __future__ import annotations

from pathlib import Path

from bench.core.errors import ConfigError
from workloads.data import SPECIALS, request_prompts, shipped_tokenizer
from workloads.models import BLENDER_CONFIGS, build_blender, check_positions, model_config, model_identity

SHIPPED_VOCAB = 1000  # the shipped tokenizer's size (it covers fewer ids of a larger model's vocabulary)
SPECIAL_IDS = len(SPECIALS)  # its ids 0-3: padding, start, end of sequence, unknown


class BlenderServable:
    """One model to serve: `build()` makes it (or only reads its config), then the rest reads it."""

    def __init__(self, common, backend=None):
        self.common, self.backend = common, backend
        self.model = self.config = None
        self.identity = {"model": None, "model_type": None, "parameters": None, "config_hash": None,
                         "reply_vocab": None}

    @staticmethod
    def check(common, new_tokens: int | None = None) -> None:
        """The engine runs BlenderBot-small models, prompts and outputs within their positions."""
        cfg = model_config(common.model)
        if cfg.get("model_type") != "blenderbot-small":
            raise ConfigError(f"--model {common.model}: the serving engine runs BlenderBot-small models "
                              f"(model_type blenderbot-small), not {str(cfg.get('model_type'))[:40]!r}")
        check_positions(common.model, cfg, **{"--context-len": common.context_len, "--new-tokens": new_tokens})

    def build(self, to_device: bool = True) -> None:
        """The model with its identity; on the device only where it serves here (`to_device`)."""
        model = build_blender(self.common.model).eval()
        self.config = model.config
        self.identity = {**model_identity(model, self.common.model), "reply_vocab": self.reply_vocab}
        self.model = model.to(self.backend.device) if to_device else None

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size if self.config is not None else model_config(self.common.model)["vocab_size"]

    @property
    def positions(self) -> int | None:
        """The decoder's positions: the longest output a request may ask for (None: not built)."""
        return self.config.max_position_embeddings if self.config is not None else None

    # -- requests --------------------------------------------------------------------------------------
    def prompts(self, n: int, seed: int, lengths=None) -> list[list[int]]:
        """n prompts of --data, cut to --context-len (or of the given lengths), as token ids."""
        c = self.common
        return request_prompts(c.data, n, c.context_len, self.vocab_size, seed, lengths)

    def texts(self, prompts) -> tuple[str, ...]:
        """Each prompt's text (the shipped tokenizer), for an API that takes messages."""
        tok = self._shipped()
        return tuple(tok.decode(list(p)) or "hello" for p in prompts)

    def encode_text(self, text: str) -> list[int]:
        """A reply's text as ids (the shipped tokenizer), where a server returned no ids."""
        return self._shipped().encode(text).ids

    def _shipped(self):
        return shipped_tokenizer(min(self.vocab_size, SHIPPED_VOCAB))

    # -- serving ---------------------------------------------------------------------------------------
    def reply_ids(self) -> list[int] | None:
        """The ids replies are drawn from: for a random-init preset, the words its shipped tokenizer has
        (not its special tokens; end of sequence is the engine's to allow), so that every reply is text; a
        checkpoint's own tokenizer covers its vocabulary (None: every id)."""
        if self.common.model not in BLENDER_CONFIGS:
            return None
        return sorted(i for i in self._shipped().get_vocab().values() if i >= SPECIAL_IDS and i < self.vocab_size)

    @property
    def reply_vocab(self) -> int | None:
        """How many ids replies are drawn from (an identity field: reports from before it was restricted drew from
        the whole vocabulary, and greedy replies of the random-init presets were empty); None: every id."""
        ids = self.reply_ids()
        return None if ids is None else len(ids)

    def executor(self, *, max_rows: int, max_source: int, max_tokens: int, precision: str = "fp32"):
        """An executor of the engine's protocol over the built model, on its backend."""
        from workloads.blender_executor import BlenderExecutor

        return BlenderExecutor(self.model, self.backend, max_rows=max_rows, max_source=max_source,
                               max_tokens=max_tokens, precision=precision, text_ids=self.reply_ids())

    def tokenizer(self):
        """The tokenizer behind the API's text: the shipped one for the random-init presets, the
        checkpoint's own for a directory (None when it has none: prompts must then be token ids)."""
        if self.common.model in BLENDER_CONFIGS:
            return self._shipped()
        return _checkpoint_tokenizer(Path(self.common.model))

    def name(self) -> str:
        """The model's name in the API: the preset's model, or the checkpoint directory's name."""
        model = self.common.model
        return model if model in BLENDER_CONFIGS else Path(model).name


def _checkpoint_tokenizer(path: Path):
    from transformers import AutoTokenizer

    from workloads.models import quiet_transformers

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception:  # noqa: BLE001 - any loader fault means: no tokenizer there (ids only)
        return None
