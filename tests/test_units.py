"""Units belong to a workload's figure, not to a column name; labels and notes say what is true: a
price note's devices, a run without a label, a long note that keeps its end, a price that priced
nothing."""

from __future__ import annotations

from pathlib import Path

from conftest import cli_run
from reportgen import make_report

from bench.analysis.compare import compare
from bench.analysis.comparison import Costing
from bench.analysis.cost import parse_price
from bench.model.io import dump_report, load_report
from bench.model.report import FigureSpec
from bench.render import words
from workloads.blender_finetune import BlenderFinetune
from bench.serve.workload import BlenderServe
from workloads.retrieval_encode import RetrievalEncode

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = [str(p) for p in sorted((ROOT / "reports" / "reference").glob("*.json"))]


def lead(cls) -> FigureSpec:
    return next(f for f in cls.figures if f.lead)


def runs_of(cls, label, seed=0):
    r = make_report(label, 0.1, workload=cls.name, figures=cls.figures, repeats=3, seed=seed)
    return (f"{label}-{cls.name}.json", r)


def test_each_workload_names_the_unit_of_its_own_samples_per_s(tmp_path):
    import bench

    # serving leads with its latency at its offered rate (seconds); its samples_per_s, the engine-busy rate,
    # still names requests
    assert [lead(c).unit for c in (BlenderFinetune, RetrievalEncode, BlenderServe)] == ["samples/s", "contexts/s", "s"]
    assert next(f for f in BlenderServe.figures if f.key == "metrics.samples_per_s").unit == "requests/s"
    paths = []
    for i, cls in enumerate((BlenderFinetune, RetrievalEncode, BlenderServe)):
        for label in ("a", "b"):
            path, report = runs_of(cls, label, seed=i)
            paths.append(dump_report(report, tmp_path / path))
    frame = bench.load_reports(paths)
    units = frame.attrs["units"]
    assert units["blender-finetune"]["samples_per_s"] == "samples/s"
    assert units["retrieval-encode"]["samples_per_s"] == "contexts/s"
    assert units["blender-serve"]["samples_per_s"] == "requests/s"
    by = dict(zip(frame["workload"], frame["unit"], strict=False))  # and each row says its own
    assert by == {"blender-finetune": "samples/s", "retrieval-encode": "contexts/s", "blender-serve": "s"}


def priced(*specs):
    loaded = [(p, load_report(p)) for p in REFERENCE]
    return compare(loaded, costing=Costing(prices=tuple(parse_price(s) for s in specs)))


def notes_of(c, code):
    return [words.sentence(n) for n in list(c.notes) + [n for w in c for r in w.rows for n in r.notes]
            if n.code == code]


def test_a_published_run_that_held_its_machine_is_charged_the_instance_it_held():
    c = priced("hpu=dl1.24xlarge", "cuda=0.5")
    [dl1] = [t for t in notes_of(c, "priced") if "DL1" in t]
    assert "held all 8 devices of its machine (8 x Gaudi HL-205" in dl1 and "$13.11 an hour" in dl1
    assert "used 1" not in dl1
    [p100] = [t for t in notes_of(c, "priced") if "P100" in t]
    assert "the run used 1, so its hour costs $0.5" in p100
    own = priced("seed: Habana DL1=13.11")  # the seed's own rented instance, priced by its label
    assert "$13.11 an hour" in notes_of(own, "priced")[0]


def test_a_run_without_a_label_is_not_label_none():
    a, b = make_report("a", 0.1, repeats=3), make_report(None, 0.1, repeats=3, seed=1)
    c = compare([("a.json", a), ("b.json", b)], costing=Costing(prices=(parse_price("a=1"),)))
    [text] = notes_of(c, "unpriced")
    assert "no label, device 'cpu'" in text and "None" not in text


def test_a_price_that_names_no_run_is_said():
    c = priced("gpu=1", "cuda=0.5")
    [text] = notes_of(c, "price_unmatched")
    assert "the price for 'gpu' (given with --price) matches no run" in text
    assert "'seed: Colab P100'" in text and "cuda, hpu" in text
    assert notes_of(priced("cuda=0.5", "hpu=1"), "price_unmatched") == []


def test_a_long_note_keeps_its_end(capsys):
    """The seed's not-comparable note is longer than a report string may be: each value in it is cut,
    the sentence is not (it ended "(48 more characters)" and lost its last differences)."""
    code, out, _ = cli_run(capsys, "compare", *REFERENCE, "--width", "250")
    text = " ".join(out.split())
    assert code == 0 and "more characters" not in text
    assert "world_size: '8 cards present, none used' vs" in text  # the last difference is there


def test_a_huge_value_is_cut_inside_the_sentence_and_the_sentence_ends():
    a = make_report("a", 0.1, repeats=3)
    b = make_report("b", 0.1, repeats=3, seed=1, params={"model": "m" * 5000, "zz_last": 1})
    c = compare([("a.json", a), ("b.json", b)])
    [text] = notes_of(c, "not_comparable")
    assert len(text) < 1000 and "m" * 70 + "…'" in text and text.endswith("zz_last: 1 vs None)")
