"""The demo / train / model / info commands and the progress helper."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikegate import datasets, default_network_path
from spikegate.cli import main
from spikegate.model import Network
from spikegate.model.random import random_network
from spikegate.progress import Progress, note

MNIST_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-subset"
SCRIPT = Path(sys.executable).parent / "spikegate"


def run_json(capsys, *argv):
    status = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert status == 0, out
    return json.loads(out)


def run_error(capsys, *argv):
    status = main(list(argv))
    cap = capsys.readouterr()
    assert status != 0
    assert "Traceback" not in cap.err
    return cap.err


# --- demo -----------------------------------------------------------------------------------

def test_demo_prints_both_accuracies(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    ann_line = next(line for line in out.splitlines() if line.startswith("float ANN"))
    snn_line = next(line for line in out.splitlines() if line.startswith("integer SNN"))
    assert float(snn_line.split()[3]) >= 95.0 and float(ann_line.split()[3]) >= 95.0
    assert "synaptic ops" in out and "spikes/sample" in out


def test_demo_json_matches_an_independent_computation(capsys):
    r = run_json(capsys, "demo")
    net = Network.load(default_network_path())
    x, y = datasets.load("digits", "test")
    from spikegate.model import classify, simulate
    s = datasets.encode_for(net, x)
    res = simulate(net, s)
    assert r["snn"]["samples"] == 445
    assert r["snn"]["accuracy"] == np.mean(classify(net, res) == y) >= 0.95
    assert r["snn"]["input_spikes_per_sample"] == s.sum() / 445
    assert r["snn"]["layers"][1]["spikes_per_sample"] == res.spikes[0].sum() / 445
    # every input spike reaches 64 hidden neurons, every hidden spike 10 readout neurons
    assert r["snn"]["synaptic_ops_per_sample"] == (s.sum() * 64 + res.spikes[0].sum() * 10) / 445
    assert r["network"]["digest"] == net.digest() and r["network"]["timesteps"] <= 32
    assert r["ann_accuracy"] >= 0.95


def test_console_script_demo_and_error():
    env = {**os.environ, "SPIKEGATE_PROGRESS": "0"}
    p = subprocess.run([str(SCRIPT), "demo", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["snn"]["accuracy"] >= 0.95
    p = subprocess.run([str(SCRIPT), "model", "--data", "mnist"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 2
    assert "--data-dir is required" in p.stderr and "Traceback" not in p.stderr


# --- model ----------------------------------------------------------------------------------

def test_model_on_digits_samples(capsys):
    r = run_json(capsys, "model", "--data", "digits", "--samples", "40", "--split", "train")
    assert r["snn"]["samples"] == 40 and r["split"] == "train"
    layers = r["snn"]["layers"]
    assert [l["neurons"] for l in layers] == [64, 64, 10]
    assert layers[2]["readout"] and layers[2]["sparsity"] is None
    assert 0 < layers[1]["sparsity"] < 1


def test_model_on_spike_count_network(tmp_path, capsys):
    net = random_network(5, (64, 20, 10), readout=False, timesteps=6)
    path = tmp_path / "rand.json"
    net.save(path)
    r = run_json(capsys, "model", "--net", str(path), "--samples", "30")
    assert r["ann_accuracy"] is None and any("no float ANN" in n for n in r["notes"])
    assert r["snn"]["layers"][2]["readout"] is False


def test_model_mnist_network_on_the_subset(tmp_path, capsys):
    out = tmp_path / "m.json"
    r = run_json(capsys, "train", "--data", "mnist", "--data-dir", str(MNIST_SUBSET), "--hidden", "16",
                 "--epochs", "1", "--out", str(out))
    assert any("not comparable" in n for n in r["notes"])
    m = run_json(capsys, "model", "--net", str(out), "--data-dir", str(MNIST_SUBSET), "--samples", "200")
    assert m["data"] == "mnist" and m["snn"]["samples"] == 200
    assert any("not comparable" in n for n in m["notes"])
    main(["model", "--net", str(out), "--data-dir", str(MNIST_SUBSET), "--samples", "50"])
    assert "not comparable" in capsys.readouterr().out
    err = run_error(capsys, "model", "--net", str(out), "--data", "digits")
    assert "784 inputs" in err and "64 features" in err


@pytest.mark.parametrize("argv, words", [
    (["model", "--data", "mnist"], ["--data-dir is required"]),
    (["model", "--samples", "0"], ["--samples", "0"]),
    (["model", "--data", "mnist", "--data-dir", "/nonexistent/dir"], ["/nonexistent/dir", "does not exist"]),
    (["info", "--net", "/nonexistent/net.json"], ["/nonexistent/net.json", "does not exist"]),
    (["demo", "--net", "/nonexistent/net.json"], ["/nonexistent/net.json"]),
])
def test_errors_exit_nonzero_without_traceback(capsys, argv, words):
    err = run_error(capsys, *argv)
    for w in words:
        assert w in err


def test_corrupt_network_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    err = run_error(capsys, "info", "--net", str(bad))
    assert "not valid JSON" in err
    status = main(["model", "--net", str(bad), "--json"])
    cap = capsys.readouterr()
    assert status == 2 and "error" in json.loads(cap.out)


# --- info -----------------------------------------------------------------------------------

def test_info_memory_and_digest(capsys):
    # The generator's memories: at one lane a layer's weight memory is exactly its synapses times
    # the weight width and its bias memory one membrane-wide word per neuron.
    d = run_json(capsys, "info", "--lanes", "1")
    net = datasets.load_network()
    assert d["shape"] == [64, 64, 10] and d["digest"] == net.digest()
    h, o = d["layers"]
    assert h["memory_bits"]["weights"] == 64 * 64 * 8 and o["memory_bits"]["weights"] == 64 * 10 * 8
    assert h["memory_bits"]["bias"] == 64 * h["membrane_bits"]
    # 4096 input buffer words (the default) of 6 address bits and an end-of-step bit
    assert d["memory_bits"]["input_buffer"] == 4096 * 7
    assert d["memory_bits"]["total"] == (sum(l["memory_bits"]["total"] for l in d["layers"])
                                         + d["memory_bits"]["input_buffer"])
    assert h["threshold"] == net.layers[0].threshold and o["readout"]
    assert d["recorded"]["dataset"] == "digits" and d["has_float_ann"]
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert net.digest() in out and "memory" in out


def test_info_memory_is_the_generators(tmp_path, capsys):
    """info and export report the same total for the same hardware parameters; the iCEBreaker's
    (2 lanes, 1024 input words) is the figure its build report gives for the built-in network."""
    d = run_json(capsys, "info", "--lanes", "2", "--max-events", "1024")
    assert d["memory_bits"]["total"] == 48238 and d["hardware"] == {"lanes": [2, 2], "max_events": 1024}
    for args in (["--lanes", "2", "--max-events", "1024"], ["--lanes", "8,2", "--max-events", "512"], []):
        info = run_json(capsys, "info", *args)
        exp = run_json(capsys, "export", "-o", str(tmp_path / "top.v"), *args)
        assert info["memory_bits"]["total"] == exp["memory_bits_total"], args
        assert [l["memory_bits"]["total"] for l in info["layers"]] == \
            [sum(l["memory_bits"].values()) for l in exp["layers"]], args


def test_info_refractory_state_bits(tmp_path, capsys):
    net = random_network(9, (5, 4, 3), readout=False, refractory=7)
    path = tmp_path / "r.json"
    net.save(path)
    d = run_json(capsys, "info", "--net", str(path), "--lanes", "1")
    for l, layer in zip(d["layers"], net.layers):
        m = l["memory_bits"]
        assert m["membranes"] + m["refractory"] == layer.n * (layer.membrane_bits + 3)
    assert d["recorded"] == {} and not d["has_float_ann"]


# --- train ----------------------------------------------------------------------------------

def test_train_reproduces_the_builtin_network(tmp_path, capsys):
    out = tmp_path / "digits.json"
    r = run_json(capsys, "train", "--out", str(out))
    assert r["identical_to_builtin"] is True
    assert out.read_bytes() == Path(default_network_path()).read_bytes()
    assert r["snn_accuracy"] >= 0.95 and r["ann_accuracy"] >= 0.95
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_train_options_change_the_network(tmp_path, capsys):
    out = tmp_path / "small.json"
    r = run_json(capsys, "train", "--out", str(out), "--hidden", "24", "--timesteps", "12", "--weight-bits", "6",
                 "--membrane-bits", "16", "--epochs", "20", "--seed", "2")
    assert r["identical_to_builtin"] is False
    net = Network.load(out)
    assert net.shape == (64, 24, 10) and net.timesteps == 12
    assert all(l.weight_bits == 6 and l.membrane_bits == 16 for l in net.layers)
    assert net.meta["seed"] == 2 and "--seed 2" in net.meta["generated_by"]


@pytest.mark.parametrize("argv, words", [
    (["--hidden", "abc"], ["--hidden", "'abc'"]),
    (["--hidden", "64,0"], ["--hidden", "'64,0'"]),
    (["--timesteps", "0"], ["timesteps = 0"]),
    (["--weight-bits", "1"], ["weight_bits = 1"]),
    (["--percentile", "101"], ["percentile = 101"]),
    (["--data", "mnist"], ["--data-dir is required"]),
])
def test_train_errors_leave_no_file(tmp_path, capsys, argv, words):
    out = tmp_path / "x.json"
    err = run_error(capsys, "train", "--out", str(out), *argv)
    for w in words:
        assert w in err
    assert list(tmp_path.iterdir()) == []


def test_train_out_errors(tmp_path, capsys):
    err = run_error(capsys, "train", "--out", str(tmp_path / "no" / "x.json"))
    assert "does not exist" in err
    err = run_error(capsys, "train", "--out", str(tmp_path))
    assert "is a directory" in err


# --- progress -------------------------------------------------------------------------------

def test_progress_log_form_is_two_lines(monkeypatch):
    monkeypatch.delenv("SPIKEGATE_PROGRESS", raising=False)
    buf = io.StringIO()
    with Progress(5, "work", unit="items", stream=buf) as p:
        for _ in range(5):
            p.update()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "work (5 items) ..." and lines[1].startswith("work: done, 5 items in ")
    assert len(lines) == 2


def test_progress_tty_form_and_off(monkeypatch):
    monkeypatch.setenv("SPIKEGATE_PROGRESS", "1")
    buf = io.StringIO()
    with Progress(4, "sim", unit="batches", stream=buf) as p:
        p.update(2)
    text = buf.getvalue()
    assert text.startswith("\rsim:   0% 0/4 batches") and text.endswith("\n")
    assert "sim: done, 2 batches" in text
    monkeypatch.setenv("SPIKEGATE_PROGRESS", "0")
    buf = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(3, "x", stream=buf) as p:
            raise RuntimeError("boom")
    note("hello", stream=buf)
    assert buf.getvalue() == ""


def test_progress_reports_a_failure(monkeypatch):
    monkeypatch.delenv("SPIKEGATE_PROGRESS", raising=False)
    buf = io.StringIO()
    with pytest.raises(KeyError):
        with Progress(None, "scan", stream=buf) as p:
            p.update()
            raise KeyError
    assert "scan: stopped, 1 in" in buf.getvalue()
