"""Cost per result: prices per instance-hour scaled to the devices a run used, in every output."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import cli_run as run_cli
from reportgen import generation_report, make_report

from bench.analysis.cost import SHIPPED, parse_price, read_prices
from bench.core.errors import ConfigError
from bench.model.io import dump_report
from bench.model.report import Distributed, RankStatus



def test_prices_are_parsed_or_refused_naming_the_flag(tmp_path):
    p = parse_price("hpu=13.11/8")
    assert (p.match, p.usd_per_hour, p.devices) == ("hpu", 13.11, 8) and "--price" in p.source
    assert parse_price("gpu box=$2.5").devices == 1
    shipped = parse_price("hpu=dl1.24xlarge")
    assert shipped.usd_per_hour == SHIPPED["dl1.24xlarge"]["usd_per_hour"] and "shipped table" in shipped.source
    assert "2022" in shipped.source  # a shipped price says when it was true
    for bad in ("hpu", "=3", "hpu=nan", "hpu=-1", "hpu=inf/8", "hpu=3/0", "hpu=1e9", "hpu=cheap"):
        with pytest.raises(ConfigError, match="--price"):
            parse_price(bad)
    f = tmp_path / "prices.txt"
    f.write_text("# on demand\nhpu = 13.11/8\n\ncuda=4.10  # p4d share\n")
    assert [(x.match, x.devices) for x in read_prices(str(f))] == [("hpu", 8), ("cuda", 1)]
    f.write_text("hpu=13.11/8\nbroken\n")
    with pytest.raises(ConfigError, match=":2:"):
        read_prices(str(f))


def dl1(label, mean_s, world=1, seed=0):
    r = generation_report(label, mean_s, seed=seed, repeats=3, device="hpu", device_name="Gaudi HL-205")
    if world > 1:
        r.distributed = Distributed(world, 1, "hccl", "torch.distributed.run", 0,
                                    [RankStatus(i, "ok") for i in range(world)])
    return r


def test_a_one_card_run_pays_an_eighth_of_the_instance_in_every_output(tmp_path, capsys):
    pytest.importorskip("plotly")
    a = dump_report(dl1("gaudi", 0.1), tmp_path / "a.json")
    b = dump_report(generation_report("p100", 0.2, seed=1, repeats=3, device="cuda"), tmp_path / "b.json")
    outs = {k: tmp_path / f"o.{k}" for k in ("csv", "md", "html", "json")}
    code, out, err = run_cli(capsys, "compare", a, b, "--price", "gaudi=13.11/8", "--price", "cuda=1.46",
                             "--width", 250, "--csv", outs["csv"], "--markdown", outs["md"], "--html", outs["html"],
                             "--json", outs["json"])
    assert code == 0, err
    # gaudi: 8 samples x 20 new tokens per 0.1 s step = 1600 tokens/s; 13.11/8 $/h over 1600 x 3600 tokens
    expected = 13.11 / 8 / (1600 * 3600) * 1e6
    [ga, p1] = list(csv.DictReader(outs["csv"].open()))
    assert float(ga["usd_per_1m_tokens"]) == pytest.approx(expected, rel=0.05)
    assert float(ga["usd_per_1m_tokens_ci_low"]) <= float(ga["usd_per_1m_tokens"]) <= float(ga["usd_per_1m_tokens_ci_high"])
    assert ga["devices_used"] == "1" and ga["price_devices"] == "8" and "--price" in ga["price_source"]
    assert float(p1["usd_per_1m_tokens"]) == pytest.approx(1.46 / (800 * 3600) * 1e6, rel=0.05)
    assert "USD/1M tok [95% CI]" in out and f"{expected:.3g}" in out
    assert "priced at $13.11/h for an instance of 8 device(s)" in out and "the run used 1" in " ".join(out.split())
    assert "USD/1M tok" in outs["md"].read_text() and "USD/1M tok" in outs["html"].read_text()
    doc = json.loads(outs["json"].read_text())
    row = doc["workloads"][0]["rows"][0]
    assert row["usd_per_1m_tokens"] == pytest.approx(expected, rel=0.05)
    assert {c["key"]: c["unit"] for c in doc["workloads"][0]["columns"]}["usd_per_1m_tokens"] == "USD"


def test_a_run_on_all_eight_cards_pays_the_whole_instance(tmp_path, capsys):
    a = dump_report(dl1("gaudi8", 0.1, world=8), tmp_path / "a.json")
    code, out, _ = run_cli(capsys, "compare", a, "--price", "hpu=13.11/8", "--json", "-")
    [row] = json.loads(out)["workloads"][0]["rows"]
    assert row["devices_used"] == 8 and row["usd_per_hour_used"] == pytest.approx(13.11)


def test_without_a_price_there_is_no_cost_column_and_with_one_a_reason_for_the_unpriced(tmp_path, capsys):
    a = dump_report(make_report("a", 0.1, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.2, seed=1, repeats=3, device="cuda"), tmp_path / "b.json")
    code, out, _ = run_cli(capsys, "compare", a, b, "--width", 250)
    assert code == 0 and "USD" not in out
    code, out, _ = run_cli(capsys, "compare", a, b, "--width", 250, "--price", "a=0.5")
    flat = " ".join(out.split())
    assert "USD/1k samples [95% CI]" in out and "b: no price matches it" in flat


def test_energy_cost_from_the_measured_device_energy(tmp_path, capsys):
    r = make_report("a", 0.1, repeats=3)
    r.results[0].energy.device = __import__("bench.model.report", fromlist=["EnergyFigure"]).EnergyFigure(
        joules=720.0, window_s=6.0, method="energy counter", per_sample_j=1.5)
    a = dump_report(r, tmp_path / "a.json")
    code, out, _ = run_cli(capsys, "compare", a, "--kwh-price", "0.20", "--json", "-")
    [row] = json.loads(out)["workloads"][0]["rows"]
    assert row["energy_usd_per_1k_samples"] == pytest.approx(1.5 * 1000 / 3.6e6 * 0.20)
    assert "usd_per_1k_samples" not in row  # no instance price: no instance cost
    for bad in ("-1", "nan", "free", "1000"):
        code, _, err = run_cli(capsys, "compare", a, "--kwh-price", bad)
        assert code == 2 and "--kwh-price" in err


def test_serving_is_priced_per_1k_requests_at_the_rate_achieved_and_at_capacity():
    from bench.analysis.compare import compare
    from bench.analysis.comparison import Costing
    from bench.analysis.cost import parse_price
    from bench.model.report import Summary
    from bench.render.records import record

    reports = []
    r = make_report("srv", 0.05, repeats=3, workload="blender-serve")
    r.results = []
    for q, met in ((2.0, True), (4.0, True), (8.0, False)):
        res = make_report("srv", 0.05, repeats=3, workload="blender-serve").results[0]
        res.variant = {"qps": [q]}
        res.params["qps"] = q
        res.workload_metrics = {"offered_qps": q, "achieved_qps": q, "slo.met": met, "slo.ttft_s": 0.5,
                                "ttft_s": Summary(n=100, median=0.1, p99=0.4 if met else 0.9)}
        r.results.append(res)
    reports.append(("srv.json", r))
    costing = Costing(prices=(parse_price("cpu=3.60"),))
    comps = compare(reports, costing=costing)
    rows = {c.variant: record(c.rows[0], c) for c in comps}
    assert rows["qps=2"]["usd_per_1k_requests"] == pytest.approx(3.60 / (2 * 3600) * 1000)
    [curve] = comps.serving
    assert curve.capacity.qps == 4.0 and curve.capacity.below_qps == 8.0
    assert curve.cost.usd == pytest.approx(0.25)  # $3.60/h at 4 req/s
    assert curve.cost.usd_low == pytest.approx(0.125)
