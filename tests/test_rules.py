"""The rule helpers records declare their invariants with (bench/model/rules.py), on a record made
for the test the way a serving record with per-token times would be declared."""

from __future__ import annotations

import pytest

from bench.model.fields import ModelError, dataclass, fld, invariant, parse
from bench.model.rules import DURATION, in_order, kind_of, misfit, within


@dataclass
class Requests:
    arrival_s: list[float] = fld("arrival", factory=list, minimum=0)
    first_token_s: list[float | None] = fld("first token", factory=list, minimum=0)
    finish_s: list[float | None] = fld("finish", factory=list, minimum=0)
    token_times_s: list[list[float] | None] | None = fld("each token's time", None, minimum=0)

    @invariant
    def _in_order(self) -> None:
        in_order(self, "arrival_s", "first_token_s", "finish_s", nulls_last=True)
        within(self, "token_times_s", "first_token_s", "finish_s")


GOOD = {"arrival_s": [0.0, 1.0], "first_token_s": [0.2, None], "finish_s": [0.5, None],
        "token_times_s": [[0.2, 0.3, 0.5], None]}


@pytest.mark.parametrize("change,where,why", [
    ({"finish_s": [0.1, None]}, "finish_s[0]", "0.1 is before first_token_s (0.2)"),
    ({"finish_s": [0.5, 2.0]}, "finish_s[1]", "although first_token_s is null"),
    ({"token_times_s": [[0.2, 0.6], None]}, "token_times_s[0][1]", "is after finish_s (0.5)"),
    ({"token_times_s": [[0.1], None]}, "token_times_s[0][0]", "is before first_token_s (0.2)"),
    ({"token_times_s": [[0.3, 0.25], None]}, "token_times_s[0][1]", "before the token before it"),
    ({"token_times_s": [[0.3]]}, "token_times_s", "1 entries, and 2 in first_token_s"),
])
def test_in_order_and_within_name_the_item(change, where, why):
    parse(Requests, GOOD)
    with pytest.raises(ModelError) as caught:
        parse(Requests, {**GOOD, **change})
    assert caught.value.path == where and why in caught.value.reason


def test_names_say_what_values_are():
    assert kind_of("itl_s") is DURATION and kind_of("serve.itl_ms") is DURATION and kind_of("loss") is None
    assert misfit(-0.1, DURATION) and misfit("1", DURATION) and misfit(True, DURATION) and not misfit(0.0, DURATION)
    assert kind_of("slo.met").words == "true, false or null" and kind_of("errors").words.startswith("a count")


def test_a_count_written_as_a_whole_float_is_a_count():
    """JSON writers and older reports write 3840.0: a whole count; 3840.5, "3840" or inf are not."""
    count = kind_of("new_tokens_total")
    assert not misfit(3840.0, count) and not misfit(3840, count)
    assert misfit(3840.5, count) and misfit("3840", count) and misfit(float("inf"), count) and misfit(-1.0, count)


def test_generation_figures_pass_the_rules_their_file_is_read_with():
    """The README's smoke run wrote new_tokens_total as 3840.0 (step tokens are floats in the report), and
    the report was not written: the figures a generation result computes fit what their names say."""
    from bench.model.report import Repeat
    from bench.model.rules import named
    from workloads.blender_generate import generation_metrics

    rep = Repeat(index=0, step_times_s=[0.1, 0.2], step_samples=[8.0, 8.0], step_tokens=[1920.0, 1920.0],
                 series={"ttft_s": [0.01, 0.02], "token_gap_s": [0.001, 0.002]})
    figures = generation_metrics([rep], {"new_tokens": 16})
    assert figures["new_tokens_total"] == 3840 and type(figures["new_tokens_total"]) is int
    named(figures, "workload_metrics")  # raises where a figure does not fit its name
