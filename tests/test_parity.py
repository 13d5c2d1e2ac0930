"""Output parity: runs that compute something else are flagged, within a precision's tolerance."""

import pytest
from reportgen import make_report

from bench.analysis.compare import compare
from bench.render.records import record
from bench.model.parity import disagreement
from bench.model.report import Fingerprint


def fp(values, precision="fp32", tokens=(), margins=(), kind="loss after each of 3 fixed steps"):
    return Fingerprint(kind, precision, list(values), list(tokens), list(margins))


def test_continuous_outputs_agree_within_the_precisions_tolerance():
    a = fp([6.90, 6.85, 6.80])
    assert disagreement(a, fp([6.905, 6.852, 6.79])) is None  # within 0.5 %: TF32 rounding
    why = disagreement(a, fp([6.90, 6.85, 6.40]))
    assert "value 2 is 6.8 vs 6.4" in why and "tolerance 0.5%" in why
    assert disagreement(fp([6.90], "bf16"), fp([7.10], "fp32")) is None  # 2.8 % apart, bf16 allows 5 %
    assert disagreement(fp([6.90], "bf16"), fp([7.50], "fp32")) is not None


def test_tokens_are_compared_up_to_the_first_unclear_decision():
    kind = "greedy tokens of a fixed 16-token prompt"
    a = fp([9.0, 8.0, 7.0, 6.0], tokens=[5, 6, 7, 8], margins=[3.0, 2.0, 0.001, 2.0], kind=kind)
    same_until_tie = fp([9.0, 8.0, 7.0, 6.0], tokens=[5, 6, 9, 1], margins=[3.0, 2.0, 0.0, 2.0], kind=kind)
    assert disagreement(a, same_until_tie) is None  # after a near-tie both continuations are right
    wrong = fp([9.0, 8.0, 7.0, 6.0], tokens=[5, 4, 7, 8], margins=[3.0, 2.0, 0.001, 2.0], kind=kind)
    assert "output 1 is 6 vs 4 where both runs decided clearly" in disagreement(a, wrong)


def test_different_kinds_or_missing_fingerprints_are_not_compared():
    assert disagreement(fp([1.0]), None) is None
    assert disagreement(fp([1.0]), fp([9.0], kind="top-10 candidates of a fixed context")) is None


def test_compare_flags_a_planted_disagreement():
    base, same, wrong = make_report("cpu", 0.2), make_report("gpu", 0.1, seed=1), make_report("fast", 0.05, seed=2)
    base.results[0].fingerprint = fp([6.90, 6.85, 6.80])
    same.results[0].fingerprint = fp([6.901, 6.849, 6.80])
    wrong.results[0].fingerprint = fp([6.90, 5.10, 3.20])  # fast because it computes something else
    [c] = compare([(f"{r.label}.json", r) for r in (base, same, wrong)])
    rows = {r.run.name: r for r in c.rows}
    assert rows["gpu"].mismatch is None and rows["fast"].mismatch is not None
    v = record(rows["fast"], c)
    assert "output_mismatch" in v["warnings"] and "value 1" in v["output_mismatch"]
    from bench.render.compare_view import compare_notes

    assert any("fast vs cpu: output_mismatch" in n for n in compare_notes(c))


@pytest.mark.parametrize("precision,ok,bad", [("fp32", 1.004, 1.01), ("fp16", 1.019, 1.03), ("bf16", 1.049, 1.06)])
def test_the_tolerance_follows_the_precision(precision, ok, bad):
    assert disagreement(fp([2.0], precision), fp([2.0 * ok], precision)) is None
    assert disagreement(fp([2.0], precision), fp([2.0 * bad], precision)) is not None
