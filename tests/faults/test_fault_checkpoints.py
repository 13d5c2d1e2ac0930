"""Fault class: a --model directory whose parts are each fine but do not fit together — sizes whose
product is no host's, widths that heads do not divide, token ids outside the vocabulary, tensors whose
shapes the config does not give, parameters missing or layers too many — or that baits the loader
with a pickle (a shard index naming a .bin). Each is refused before any work, exit 2, naming the file
and the field; nothing loads a pickle.

Checkpoints are real: the tiny BlenderBot config saved by transformers, then one part changed."""

from __future__ import annotations

import json
import time

import pytest
from conftest import cli_run as run_cli
from conftest import tiny_checkpoint
from faultkit import QUICK
from faultkit import fault_fixture  # noqa: F401 - each case's own temporary directory

FINETUNE = ["--workload", "blender-finetune"]


def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


def _refused(capsys, tmp_path, folder, *said, workload=FINETUNE):
    started = time.monotonic()
    code, _, err = run_cli(capsys, "run", *QUICK, *workload, "--model", folder, "--out", tmp_path / "out")
    assert code == 2, err
    for s in said:
        assert s in err, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))
    return time.monotonic() - started


CONFIGS = {  # config.json changes -> what the refusal names
    "vocabulary x width beyond any host": ({"vocab_size": 10_000_000, "d_model": 65_536},
                                          ["config.json", "parameters", "vocab_size x d_model"]),
    "layers x width beyond any host": ({"encoder_layers": 1000, "decoder_layers": 1000, "d_model": 65_536},
                                       ["config.json", "parameters"]),
    "a width the encoder heads do not divide": ({"encoder_attention_heads": 3},
                                                ["config.json: d_model 64 is not divisible by encoder_attention_heads 3"]),
    "a width the decoder heads do not divide": ({"decoder_attention_heads": 5},
                                                ["d_model 64 is not divisible by decoder_attention_heads 5"]),
    "an end token outside the vocabulary": ({"eos_token_id": 1000}, ["config.json: eos_token_id 1000 is not a token"]),
    "a start token outside the vocabulary": ({"decoder_start_token_id": 4096},
                                             ["decoder_start_token_id 4096 is not a token of a vocabulary of vocab_size"]),
    "a negative pad token": ({"pad_token_id": -1}, ["pad_token_id -1"]),
}


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_a_config_whose_sizes_do_not_fit_together_is_refused_naming_the_field(kind, tmp_path, capsys):
    changes, said = CONFIGS[kind]
    folder = tiny_checkpoint(tmp_path / "ckpt")
    _edit_config(folder, **changes)
    _refused(capsys, tmp_path, folder, *said)


SHAPES = {  # config.json changes that the saved weights do not follow -> what the refusal names
    "a wider feed-forward": ({"encoder_ffn_dim": 512, "decoder_ffn_dim": 512},
                             ["model.safetensors: tensor", ".fc1.", "256", "but config.json makes it [512",
                              "_ffn_dim"]),
    "a larger vocabulary": ({"vocab_size": 2000}, ["model.safetensors: tensor", "1000]", "2000]", "(vocab_size 2000)"]),
    "more positions": ({"max_position_embeddings": 1024}, ["embed_positions.weight", "max_position_embeddings 1024"]),
    "more layers than the weights hold": ({"encoder_layers": 3}, ["lack", "encoder.layers.2", "random numbers"]),
    "fewer layers than the weights hold": ({"decoder_layers": 1}, ["decoder.layers.1", "belongs to layer 1",
                                                                   "decoder_layers 1"]),
}


@pytest.mark.parametrize("kind", list(SHAPES))
def test_weights_whose_shapes_the_config_does_not_give_are_refused_before_work(kind, tmp_path, capsys):
    changes, said = SHAPES[kind]
    folder = tiny_checkpoint(tmp_path / "ckpt")
    _edit_config(folder, **changes)
    _refused(capsys, tmp_path, folder, *said)


def test_the_checkpoint_as_saved_runs(tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "ckpt")
    code, _, err = run_cli(capsys, "run", *QUICK, *FINETUNE, "--steps", 2, "--in-process", "--sample-hz", 0,
                           "--model", folder, "--out", tmp_path / "out")
    assert code == 0, err


def _shard(folder, name="model-00001-of-00001.safetensors", weight_map=None):
    (folder / "model.safetensors").rename(folder / name)
    from workloads.checkpoint import safetensors_header

    tensors = safetensors_header(folder / name, "x")
    index = {"metadata": {}, "weight_map": weight_map or dict.fromkeys(tensors, name)}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return tensors


def _bait(folder):
    """A pickle that would run code if anything unpickled it: its mark is a file it would create."""
    import pickle

    class Bait:
        def __reduce__(self):
            return (open, (str(folder / "UNPICKLED"), "w"))

    (folder / "pytorch_model-00002.bin").write_bytes(pickle.dumps(Bait()))


@pytest.mark.parametrize("shard", ["pytorch_model-00002.bin", "model.pt", "../elsewhere.safetensors",
                                   "/abs/model.safetensors", "sub/model.safetensors", "model.safetensors.bin"])
def test_a_shard_index_naming_anything_but_a_safetensors_file_here_is_refused(shard, tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "ckpt")
    _bait(folder)
    tensors = _shard(folder)
    name = next(iter(tensors))
    weight_map = {**dict.fromkeys(tensors, "model-00001-of-00001.safetensors"), name: shard}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    _refused(capsys, tmp_path, folder, "model.safetensors.index.json", "only safetensors files of this folder")
    assert not (folder / "UNPICKLED").exists()


@pytest.mark.parametrize("index,said", [
    ("{broken", "not readable JSON"),
    ('{"weight_map": {}}', "no weight_map"),
    ('{"weight_map": ["a"]}', "no weight_map"),
    ('{"weight_map": {"x": "missing.safetensors"}}', "names missing.safetensors, which is not in the folder"),
    ('{"weight_map": {"no.such.tensor": "model-00001-of-00001.safetensors"}}', "its header does not"),
])
def test_a_shard_index_that_does_not_fit_its_shards_is_refused(index, said, tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "ckpt")
    _shard(folder)
    (folder / "model.safetensors.index.json").write_text(index)
    _refused(capsys, tmp_path, folder, "model.safetensors.index.json", said)


def test_a_sharded_checkpoint_of_safetensors_runs(tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "ckpt")
    _shard(folder)
    code, _, err = run_cli(capsys, "run", *QUICK, *FINETUNE, "--steps", 2, "--in-process", "--sample-hz", 0,
                           "--model", folder, "--out", tmp_path / "out")
    assert code == 0, err


def test_every_workload_that_takes_a_model_checks_it_before_work(tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "ckpt")
    _edit_config(folder, encoder_ffn_dim=512)
    for workload in ("blender-generate", "blender-serve", "retrieve-refine"):
        _refused(capsys, tmp_path, folder, ".fc1.", "encoder_ffn_dim", workload=["--workload", workload])
