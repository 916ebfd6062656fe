"""Generator API and ``spikegate export``."""
import json

import pytest
from amaranth.hdl import Fragment

from spikegate.cli import main
from spikegate.datasets import load_network
from spikegate.hdl.core import NetworkCore
from spikegate.hdl.export import build_core, export_verilog
from spikegate.model.hardware import HardwareConfig
from spikegate.model.random import random_network


def test_export_cli_json(tmp_path, capsys):
    out = tmp_path / "top.v"
    assert main(["export", "--lanes", "4,2", "--max-events", "512", "-o", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["lanes"] == [4, 2] and d["module"] == "spikegate_top"
    ports = {p["name"]: p for p in d["ports"]}
    net = load_network()
    assert ports["load__payload"]["width"] == 6 + 1 and ports["load__payload"]["dir"] == "input"
    assert ports["cycles"]["width"] == 32 and ports["out_membrane"]["width"] == net.layers[-1].membrane_bits
    assert ports["out_count"]["width"] == 10  # ceil_log2(512 + 1)
    text = out.read_text()
    assert text.startswith("// spikegate_top") and "module spikegate_top(" in text
    assert "load__payload" in text.split("module", 1)[0]  # ports documented in the header
    assert d["schedule"] == "inflight" and "max_(l: 0 <= w-l < T)" in d["cycle_formula"]


def test_export_cli_schedule(tmp_path, capsys):
    out = tmp_path / "top.v"
    assert main(["export", "--schedule", "sequential", "-o", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["schedule"] == "sequential" and d["cycle_formula"].startswith("1 + sum_t [1 + sum_l (E_l(t) * G_l")
    with pytest.raises(SystemExit):
        main(["export", "--schedule", "waves", "-o", str(out)])
    assert "invalid choice: 'waves'" in capsys.readouterr().err


def test_export_cli_registered_reads(tmp_path, capsys):
    out = tmp_path / "top.v"
    assert main(["export", "-o", str(out), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["export", "--registered-reads", "-o", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert not plain["registered_reads"] and d["registered_reads"]
    # the default digits network at 4 lanes: layer 0's 1,024 weight words of 32 bits are two
    # DP16KD deep, so two read stages (model.hardware.read_stages_for); at 16 lanes, one
    assert plain["cycle_formula"].endswith("G_l + 8)") and d["cycle_formula"].endswith("G_l + 10)")
    assert main(["export", "--registered-reads", "--lanes", "16", "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycle_formula"].endswith("G_l + 9)")
    assert main(["export", "--registered-reads", "-o", str(out)]) == 0
    assert "(inflight schedule, registered reads)" in capsys.readouterr().out


def test_export_cli_refuses_impossible_configs(tmp_path, capsys):
    out = tmp_path / "top.v"
    for args in (["--lanes", "3"], ["--lanes", "0"], ["--lanes", "x"], ["--lanes", "4,4,4"],
                 ["--max-events", "0"], ["--memory-budget", "1000"], ["--name", "1bad"]):
        assert main(["export", "-o", str(out)] + args) == 2, args
        err = capsys.readouterr().err
        assert "error" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_export_cli_bad_network_file(tmp_path, capsys):
    bad = tmp_path / "net.json"
    bad.write_text("{}")
    assert main(["export", "--net", str(bad), "-o", str(tmp_path / "top.v")]) == 2
    assert "not a spikegate network file" in capsys.readouterr().err


def test_api(tmp_path):
    net = random_network(5, (3, 4, 2))
    core = build_core(net, HardwareConfig(lanes=[1, 2], max_events=16, trace_depth=4))
    assert isinstance(core, NetworkCore) and [g.lanes for g in core.geometry] == [1, 2]
    Fragment.get(core, None)  # it elaborates
    with pytest.raises(ValueError, match="lanes = 5"):
        build_core(net, HardwareConfig(lanes=5))
    d = export_verilog(net, tmp_path / "x.v", HardwareConfig(lanes=2, trace_depth=8), name="snn")
    names = {p["name"] for p in d["ports"]}
    assert {"trace_addr", "trace_data", "trace_count", "trace_overflow", "mon"} <= names
    assert "module snn(" in (tmp_path / "x.v").read_text()
