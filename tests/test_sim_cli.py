"""``spikegate sim``: JSON and text reports, waves, exit status on a mismatch, clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import cycle_formula

from spikegate import cli, datasets
from spikegate.model.simulate import classify, simulate
from spikegate.sim import core as sim_core

NET = datasets.load_network(None)


def _run(capsys, *argv):
    status = cli.main(["sim", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_report_on_digits(capsys):
    status, out, err = _run(capsys, "--data", "digits", "--samples", "6", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["samples"] == 6 and r["bit_exact"] == 6 and r["first_mismatch"] is None
    assert r["simulator"] == "verilator" and r["lanes"] == 4
    assert r["accuracy"] == r["model_accuracy"]
    assert r["cycles_per_sample"]["min"] <= r["cycles_per_sample"]["mean"] <= r["cycles_per_sample"]["max"]
    assert r["simulated_cycles"] > r["core_cycles"] > 0 and r["cycles_per_second"] > 0
    assert r["wall_seconds"] > 0
    # Per sample: the label, the RTL's class (the model's, as every sample is bit-exact) and the
    # exact cycle count of the documented formula.
    x, y = datasets.load("digits", "test")
    spikes = datasets.encode_for(NET, x[:6], seed=0)
    assert r["labels"] == y[:6].tolist()
    assert r["predictions"] == classify(NET, simulate(NET, spikes)).tolist()
    assert r["cycles"] == cycle_formula(NET, 4, spikes).tolist()
    assert np.mean(r["cycles"]) == r["cycles_per_sample"]["mean"]


def test_text_report_and_waves_with_icarus(capsys, tmp_path):
    waves = tmp_path / "w.fst"
    status, out, err = _run(capsys, "--samples", "3", "--simulator", "icarus", "--waves", str(waves),
                            "--waves-sample", "2")
    assert status == 0, err
    assert "bit-exact      3 of 3 samples match the model" in out
    assert f"waves          {waves} (sample 2)" in out
    assert waves.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["w.fst"]  # nothing half-written left behind


def test_a_mismatch_exits_1_and_names_it(capsys, monkeypatch):
    real = sim_core.expected_results

    def corrupted(net, spikes, lanes=4):
        exp = real(net, spikes, lanes)
        exp.spikes[0][1, 3, 5] ^= True  # one bit of the model's answer
        return exp

    monkeypatch.setattr(sim_core, "expected_results", corrupted)
    status, out, err = _run(capsys, "--samples", "2", "--json")
    assert status == 1
    r = json.loads(out)
    assert r["bit_exact"] == 1 and r["mismatched_samples"] == [1] and r["mismatches"] == 1
    m = r["first_mismatch"]
    assert (m["sample"], m["step"], m["layer"], m["neuron"], m["kind"]) == (1, 3, 0, 5, "spike")
    assert m["text"].startswith("sample 1, step 3, layer 0, neuron 5: spike expected ")


def test_plot_of_the_rtl_classes(tmp_path, capsys):
    """`sim --plot` draws the confusion matrix of the RTL's classes; `plot confusion --rtl` reads
    them from a real `spikegate sim --json` run (or, from a file without per-sample classes, takes
    the model's when every sample was bit-exact); another sample count is refused."""
    pytest.importorskip("matplotlib")
    from test_plots import assert_drawn, png_size, svg_root
    sim_json, sim_png = tmp_path / "sim.json", tmp_path / "sim.png"
    assert cli.main(["sim", "--samples", "8", "--json", "--plot", str(sim_png)]) == 0
    cap = capsys.readouterr()
    sim_json.write_text(cap.out)
    s = json.loads(cap.out)
    assert f"sim: wrote {sim_png}" in cap.err and len(s["predictions"]) == 8
    assert assert_drawn(sim_png) == (600, 540)
    assert cli.main(["sim", "--samples", "3", "--plot", str(tmp_path / "sim.svg")]) == 0
    svg_root(tmp_path / "sim.svg")
    capsys.readouterr()
    out = tmp_path / "rtl.png"
    assert cli.main(["plot", "confusion", "--rtl", str(sim_json), "--samples", "8", "-o", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["source"].startswith("RTL (verilator") and r["samples"] == 8
    assert r["accuracy"] == s["accuracy"] == np.mean(np.array(s["predictions"]) == s["labels"])
    assert png_size(out) == (r["width"], r["height"])
    old = {k: v for k, v in s.items() if k not in ("predictions", "labels", "cycles")}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert cli.main(["plot", "confusion", "--rtl", str(tmp_path / "old.json"), "--samples", "8", "-o", str(out),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == s["accuracy"]
    assert cli.main(["plot", "confusion", "--rtl", str(sim_json), "--samples", "9", "-o", str(out)]) == 2
    assert "ran samples = 8, this plot 9" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--samples", "0"], "--samples = 0 is not valid; valid: an integer >= 1"),
    (["--lanes", "3"], "lanes = 3 (layer 0) is not valid; valid: a power of two from 1 to 64"),
    (["--samples", "2", "--waves", "--waves-sample", "5"], "--waves-sample = 5 is not valid; valid: 0 <= sample < 2"),
    (["--net", "/nonexistent/net.json"], "network file '/nonexistent/net.json' does not exist"),
])
def test_bad_input_is_one_clear_line(capsys, argv, message):
    status, out, err = _run(capsys, *argv)
    assert status == 2
    assert message in err and "Traceback" not in err
