"""Options are declared once, by their owner; the command line, the checks and the presets come
from the declarations; the config is frozen once built."""

import dataclasses
import re
from dataclasses import dataclass

import pytest
from conftest import tiny_checkpoint, run_config

from bench.core.errors import ConfigError
from bench.core.options import Options, opt
from bench.launch.config import check_before_run


def test_preset_fills_unset_fields_and_flags_win(tmp_path):
    cfg = run_config("--preset", "seed", "--out", tmp_path)
    c = cfg.common
    assert (c.batch_size, c.context_len, c.label_len, c.model) == (24, 163, 18, "blenderbot-90m")
    assert cfg.options_of("blender-finetune").lr == 1e-5 and cfg.measure.steps == 10
    assert run_config("--preset", "seed", "--batch-size", 4).common.batch_size == 4
    assert run_config().options_of("blender-finetune").lr == 1e-3


def test_the_config_is_frozen_after_it_is_built():
    cfg = run_config("--device", "cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.common.batch_size = 99
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.preset = "seed"
    with pytest.raises(TypeError):
        cfg.workload_options["blender-finetune"] = None


@pytest.mark.parametrize("args,flag", [
    (["--steps", "0"], "--steps"), (["--steps", "-3"], "--steps"), (["--repeats", "0"], "--repeats"),
    (["--warmup", "-1"], "--warmup"), (["--batch-size", "0"], "--batch-size"), (["--sample-hz", "-1"], "--sample-hz"),
    (["--steps", "3", "--warmup", "3"], "--warmup"), (["--time-budget", "0"], "--time-budget"),
    (["--steps", "3", "--time-budget", "2"], "--steps and --time-budget"), (["--beams", "9"], "--beams"),
    (["--beams", "0"], "--beams"), (["--preset", "huge"], "--preset"), (["--precision", "int4"], "--precision"),
    (["--workload", "nope"], "--workload"), (["--hpu-mode", "lazy", "--device", "cpu"], "--hpu-mode"),
    (["--lr", "0"], "--lr"), (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--time-budget", "inf"], "--time-budget"),
    (["--sample-hz", "1e-300"], "--sample-hz"), (["--threads", "100000"], "--threads"),
    (["--batch-size", str(10**21)], "--batch-size"), (["--seed", str(2**64)], "--seed"), (["--steps", "3.5"], "--steps"),
    (["--steps", "1" * 60], "--steps"), (["--scaling", "1,0"], "--scaling"), (["--scaling", ","], "--scaling"),
    (["--nproc", "0"], "--nproc"), (["--rdzv-endpoint", "node0"], "--rdzv-endpoint"),
    (["--rdzv-endpoint", "node0:99999"], "--rdzv-endpoint"), (["--nnodes", "2"], "--rdzv-endpoint"),
    (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], "--node-rank"),
    (["--label", " "], "--label"), (["--in-process", "--nproc", "2"], "--in-process"),
    (["--workload", "blender-generate", "--top-k", "5"], "--top-k"),
])
def test_bad_values_name_the_flag(args, flag):
    with pytest.raises(ConfigError) as exc:
        run_config(*args)
    assert flag in str(exc.value)


@pytest.mark.parametrize("args,flag", [
    (["--pool-size", "5", "--top-k", "10"], "--pool-size"),
    (["--context-len", "600"], "--context-len"),  # beyond the model's 512 positions
    (["--new-tokens", "600"], "--new-tokens"),
    (["--workload", "retrieve-refine", "--context-len", "10", "--label-len", "16"], "--context-len 10"),
    (["--model", "/nonexistent/dir"], "--model /nonexistent/dir: not a directory"),
])
def test_checks_that_need_the_model_run_before_anything(args, flag, tmp_path):
    with pytest.raises(ConfigError) as exc:
        check_before_run(run_config("--device", "cpu", "--out", tmp_path, *args))
    assert flag in str(exc.value)


def test_model_directory_checks_before_run(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        check_before_run(run_config("--device", "cpu", "--model", d, "--out", tmp_path))
    (d / "config.json").write_text('{"model_type": "blenderbot-small", "max_position_embeddings": 64}')
    (d / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a safetensors file"):
        check_before_run(run_config("--device", "cpu", "--model", d, "--out", tmp_path))
    tiny_checkpoint(d, max_position_embeddings=64)
    with pytest.raises(ConfigError, match="--context-len: 100 is more than the 64 positions"):
        check_before_run(run_config("--device", "cpu", "--model", d, "--context-len", 100, "--out", tmp_path))
    (d / "config.json").write_text("{broken")
    with pytest.raises(ConfigError, match="not readable JSON"):
        check_before_run(run_config("--device", "cpu", "--model", d, "--out", tmp_path))


def test_unwritable_out_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--out"):
        check_before_run(run_config("--device", "cpu", "--out", blocker / "sub"))


def test_time_budget_replaces_the_preset_steps():
    m = run_config("--time-budget", "2").measure
    assert m.steps is None and m.time_budget == 2.0 and m.warmup is None  # warm-up until steady


def test_the_config_round_trips_through_json():
    from bench.launch.config import RunConfig

    cfg = run_config("--preset", "seed", "--optimizer", "adamax", "--scoring", "bi", "--workload", "blender-finetune",
                     "--workload", "retrieval-encode")
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_a_plugin_flag_that_collides_is_an_error():
    import argparse

    @dataclass(frozen=True)
    class Clash(Options):
        title = "clash"
        batch_size: int = opt(1, "same name as the common option")

    from workloads.common import CommonOptions

    taken = {}
    parser = argparse.ArgumentParser()
    CommonOptions.add_arguments(parser, taken)
    with pytest.raises(ConfigError, match="--batch-size is declared twice"):
        Clash.add_arguments(parser, taken)


def test_help_says_where_defaults_come_from(capsys):
    from bench.cli import build_parser

    argv = ["run", "--workload", "blender-serve", "--help"]
    with pytest.raises(SystemExit):
        build_parser(argv).parse_args(argv)
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: by --preset: tiny=8, seed=24)" in text
    assert "(default: None)" not in text and "(default: preset)" not in text
    assert "(default: by --preset: tiny=20, seed=1)" in text  # --qps: not the tuple (20.0,)


@pytest.mark.parametrize("chosen", [(), ("--workload", "blender-serve"), ("--workload=blender-serve",)])
def test_the_serving_options_show_in_run_help_only_with_the_serving_scenario(chosen, capsys, monkeypatch):
    """28 of bench run's flags are serving's: the help shows them where blender-serve is chosen, and says
    how to see them where it is not; they are taken all the same (refused unless it is selected)."""
    from bench.cli import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    argv = ["run", *chosen, "--help"]
    with pytest.raises(SystemExit):
        build_parser(argv).parse_args(argv)
    help_text = capsys.readouterr().out
    flat = " ".join(help_text.split())
    serving = ("--qps", "--find-capacity", "--slo-ttft-ms", "--engine", "--max-batch", "--endpoint")
    if chosen:
        assert all(f in flat for f in serving)
    else:
        assert not any(f in flat for f in serving) and len(help_text.splitlines()) <= 220
        assert "bench run --workload blender-serve --help" in flat
    ns = build_parser(["run"]).parse_args(["run", "--qps", "2"])  # parsed even where hidden
    assert any(v == "2" for k, v in vars(ns).items() if k.endswith(".qps"))


@pytest.mark.parametrize("command", ["run", "compare"])
def test_no_default_in_help_is_a_python_repr(command, capsys):
    """Every default reads as the command line takes it: no tuples, lists, None, True or 10.0."""
    import re

    from bench.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")
    defaults = re.findall(r"\(default: ([^)]*)\)", text)
    assert len(defaults) >= 4
    for d in defaults:
        assert not re.search(r"[\[(]|\bNone\b|\bTrue\b|\bFalse\b|\d\.0\b", d), d


def safetensors_file(path, tensors: dict, names=None, header_len=None, offsets=None):
    """A safetensors file as the format defines it: 8-byte little-endian header length, JSON header,
    then the bytes (F32 tensors of the given lengths)."""
    import json
    import struct

    header, begin = {}, 0
    for name, n in tensors.items():
        header[name] = {"dtype": "F32", "shape": [n], "data_offsets": offsets or [begin, begin + 4 * n]}
        begin += 4 * n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", header_len or len(raw)) + raw + b"\0" * begin)


@pytest.mark.parametrize("make,said", [
    (lambda p: safetensors_file(p, {"w": 2}, header_len=10**12), "has a header of"),
    (lambda p: safetensors_file(p, {"w": 2}, offsets=[0, 4096]), "does not fit the file"),
    (lambda p: safetensors_file(p, {"\x1b[2J\x1b]0;PWNED\x07": 2}), "not plain"),
    (lambda p: p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\xff" * 16), "not JSON"),
])
def test_a_hostile_safetensors_file_is_refused_before_anything_runs(make, said, tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "blenderbot-small"}')
    make(d / "model.safetensors")
    with pytest.raises(ConfigError, match=said):
        check_before_run(run_config("--device", "cpu", "--model", d, "--out", tmp_path))


def test_a_config_with_absurd_sizes_is_refused(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    safetensors_file(d / "model.safetensors", {"w": 2})
    for bad in ('"d_model": 10000000', '"encoder_layers": 0', '"vocab_size": 1e9', '"d_model": NaN'):
        (d / "config.json").write_text('{"model_type": "blenderbot-small", ' + bad + "}")
        with pytest.raises(ConfigError, match="config.json"):
            check_before_run(run_config("--device", "cpu", "--model", d, "--out", tmp_path))


@pytest.mark.parametrize("args,said", [
    (["--batch-size", "100000000"], "--batch-size: must be at most 65536, got 100000000"),
    (["--lr", "nan"], "--lr: must be a finite number, got 'nan'"),
    (["--handicap=-inf"], "--handicap: must be a finite number, got '-inf'"),
    (["--lr", "0"], "--lr: must be more than 0, got 0"),
    (["--steps", "3.5"], "--steps: expected a whole number, got '3.5'"),
    (["--batch-size", "1" + "0" * 5000], "--batch-size: expected a whole number, got '1000"),
    (["--sample-hz", "fast"], "--sample-hz: expected a number, got 'fast'"),
    (["--precision", "int4"], "--precision: 'int4' is not one of 'fp32', 'bf16' or 'fp16'"),
    (["--scaling", "1,0"], "--scaling: must be at least 1, got 0"),
    (["--scaling", "2,x"], "--scaling: expected a whole number, got 'x'"),
    (["--scaling", " , "], "--scaling: expected a comma-separated list, got ' , '"),
    (["--workload", "blender-serve", "--qps", "1,,2"], "--qps: an empty item in the list '1,,2'"),
    (["--workload", "blender-serve", "--qps", "1", "--conversations", "4", "--data-tokenizer", "tok"],
     "--data-tokenizer: its text prompts are single requests; not with --conversations"),
    (["--label", "a\x00b"], "--label: contains a NUL character"),
    (["--workload", "blender-generate", "--workload", "a\x00b"], "--workload: contains a NUL character"),  # repeated
])
def test_each_bad_value_is_said_in_words_naming_the_flag(args, said):
    with pytest.raises(ConfigError) as exc:
        run_config(*args)
    assert str(exc.value).startswith(said)


def test_a_new_group_declared_with_opt_gets_parsing_bounds_choices_and_presets():
    """A group another layer adds (compare's, a plug-in's) needs nothing beyond its declarations."""
    import argparse

    @dataclass(frozen=True)
    class GateOptions(Options):
        title = "gates"
        presets = {"strict": {"margin": 2.5}}

        margin: float | None = opt(None, "allowed slowdown, %", minimum=0, maximum=100, preset=True)
        levels: tuple[int, ...] = opt((90, 95), "confidence levels, %", minimum=50, maximum=99)
        style: str = opt("table", "how to show it", choices=("table", "json"))
        strict: bool = opt(False, "fail on any slowdown")

    assert GateOptions.build({}, "strict") == GateOptions(margin=2.5)
    built = GateOptions.build({"margin": "7", "levels": "80, 99", "style": "json", "strict": True})
    assert (built.margin, built.levels, built.style, built.strict) == (7.0, (80, 99), "json", True)
    for given, said in (({"margin": "101"}, "--margin: must be at most 100, got 101"),
                        ({"levels": "95,40"}, "--levels: must be at least 50, got 40"),
                        ({"style": "csv"}, "--style: 'csv' is not one of 'table' or 'json'"),
                        ({"margin": True}, "--margin: expected a number, got True")):  # a typed value is not coerced
        with pytest.raises(ConfigError, match=re.escape(said)):
            GateOptions.build(given)
    parser = argparse.ArgumentParser()
    GateOptions.add_arguments(parser, {})
    text = " ".join(parser.format_help().split())
    assert "allowed slowdown, % (at least 0, at most 100) (default: by --preset: strict=2.5)" in text
    assert "--style table,json" in text and "(at least 50, at most 99; at most 64 values, each once) (default: 90,95)" in text
    for given, said in (({"levels": ",".join(["90"] * 65)}, "--levels: at most 64 values, got 65"),
                        ({"levels": "90,95,90.0"}, "--levels: 90 is given twice")):  # refused by the declaration
        with pytest.raises(ConfigError, match=re.escape(said)):
            GateOptions.build(given)


def test_help_states_each_options_bounds(capsys):
    from bench.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "samples per step (at least 1, at most 65536) (default: by --preset: tiny=8, seed=24)" in text
    assert "learning rate (more than 0, at most 10)" in text and "(at least 0.001, at most 1000000)" in text
