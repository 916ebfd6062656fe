"""``lanes="auto"`` (boards.lanes): the choice, checked against the documented cycle formula and the
fit rules, and refused spellings."""
from __future__ import annotations

import pytest

import spikegate
from conftest import cycle_formula
from spikegate import datasets
from spikegate.boards import fit
from spikegate.boards.build import build, default_max_events, hardware_config
from spikegate.boards.lanes import (AUTO_SAMPLES, LOGIC_SHARE, MAX_AUTO_LANES, MIN_GAIN, choose_lanes,
                                    logic_estimate, mux_bits)
from spikegate.boards.targets import get_board
from spikegate.cli import main
from spikegate.model import Network


@pytest.fixture(scope="module")
def digits():
    net = Network.load(spikegate.default_network_path())
    x, _ = datasets.load("digits", "test")
    return net, datasets.encode_for(net, x, seed=0)


def _choose(board_name, net, spikes):
    board = get_board(board_name)

    def configure(lanes):
        return hardware_config(board, net, lanes, max_events=default_max_events(net))
    stream = fit.choose_stream(board, net, configure(board.default_lanes))
    return board, configure, stream, choose_lanes(board, net, configure, spikes, stream=stream, max_payload=512)


def _mean_cycles(net, lanes, spikes, hw):
    return cycle_formula(net, lanes, spikes[:AUTO_SAMPLES], registered_reads=hw.registered_reads).mean()


@pytest.mark.parametrize("board_name, chosen", [("ulx3s-85f", [64, 16]), ("orangecrab-25f", [32, 8]),
                                                ("tangnano9k", [8, 4])])
def test_each_step_doubles_one_layer_and_saves_enough_and_the_next_does_not(board_name, chosen, digits):
    net, spikes = digits
    board, configure, stream, got = _choose(board_name, net, spikes)
    assert got["lanes"] == chosen
    steps = got["steps"]
    assert steps[0]["lanes"] == [board.default_lanes] * 2 and steps[-1]["lanes"] == chosen
    for before, after in zip(steps, steps[1:]):
        grown = [l for l in range(2) if after["lanes"][l] != before["lanes"][l]]
        assert len(grown) == 1 and after["lanes"][grown[0]] == 2 * before["lanes"][grown[0]]
        assert after["cycles_per_sample"] <= (1 - MIN_GAIN) * before["cycles_per_sample"]
    for step in steps:  # the twin's cycles are the documented formula's
        hw = configure(step["lanes"])
        assert step["cycles_per_sample"] == pytest.approx(_mean_cycles(net, step["lanes"], spikes, hw), abs=0.05)
    # Stopped because no doubling is allowed or worth it.
    now = steps[-1]["cycles_per_sample"]
    for l in range(2):
        cand = list(chosen)
        cand[l] *= 2
        if cand[l] > MAX_AUTO_LANES:
            continue
        hw = configure(cand)
        if logic_estimate(cand, hw.geometry(net)) > LOGIC_SHARE * board.luts:
            continue
        if not fit.fits(board, fit.estimate(board, net, hw, stream=stream)):
            continue
        assert _mean_cycles(net, cand, spikes, hw) > (1 - MIN_GAIN) * now


def test_the_icebreaker_keeps_its_lanes(digits):
    # Its default already takes more than the logic budget by the estimate (the real build: 89 % of
    # the UP5K's logic cells), so nothing grows.
    net, spikes = digits
    board, _, _, got = _choose("icebreaker", net, spikes)
    assert logic_estimate([2, 2]) > LOGIC_SHARE * board.luts
    assert got["lanes"] == [2, 2] and len(got["steps"]) == 1


def test_the_choice_keeps_the_streaming_link_in_its_block_ram(digits, monkeypatch):
    # Only the iCEBreaker's block RAM is tight enough for the streaming link's two blocks to
    # matter; there the logic estimate stops any growth, and (4, 4) saves 1.2 % over (4, 2): both
    # rules are set aside here so that the block RAM alone decides.
    import spikegate.boards.lanes as lanes_module
    monkeypatch.setattr(lanes_module, "LOGIC_SHARE", 100.0)
    monkeypatch.setattr(lanes_module, "MIN_GAIN", 0.001)
    net, spikes = digits
    board, configure, stream, got = _choose("icebreaker", net, spikes)
    assert stream is True
    four = configure([4, 4])
    assert fit.fits(board, fit.estimate(board, net, four))
    assert not fit.fits(board, fit.estimate(board, net, four, stream=True))
    assert [s["lanes"] for s in got["steps"]] == [[2, 2], [4, 2]]
    unstreamed = choose_lanes(board, net, configure, spikes, stream=False, max_payload=512)
    assert [s["lanes"] for s in unstreamed["steps"]] == [[2, 2], [4, 2], [4, 4]]


def test_other_spellings_are_refused_by_name_before_any_tool(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"lanes = 'fast' is not valid; valid: 'auto'"):
        build("ulx3s-85f", None, lanes="fast", out_dir=tmp_path)
    assert main(["build", "--board", "ulx3s-85f", "--lanes", "fast", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--lanes = 'fast' is not valid; valid: auto, a power of two" in err and "Traceback" not in err
    # The utilisation plot builds (or finds in the cache) what build would, auto included.
    with pytest.raises(SystemExit) as stop:  # (argparse refuses it, with the message)
        main(["plot", "utilisation", "--board", "ulx3s-85f", "--lanes", "fast", "-o", str(tmp_path / "u.png")])
    assert stop.value.code == 2
    assert "--lanes = 'fast' is not valid; valid: auto, a power of two" in capsys.readouterr().err
    # Only build chooses lanes: export generates what it is told.
    assert main(["export", "--lanes", "auto", "-o", str(tmp_path / "x.v")]) == 2
    err = capsys.readouterr().err
    assert "--lanes = 'auto' is not valid; valid: a power of two" in err
    assert list(tmp_path.iterdir()) == []


def test_logic_estimate_counts_the_flip_flop_memories_multiplexers():
    # 784-128-10 at (64, 4) with registered reads: the hidden layer's 2 groups keep membranes and
    # biases (64 lanes x 16 bits each) in flip-flops, the readout's 3 groups stay in block RAM.
    # The build measured 22,259 LUT4s (docs/timing.md, "The parameter read registered").
    from spikegate.model.hardware import HardwareConfig
    from spikegate.model.random import random_network
    net = random_network(1, (784, 128, 10), readout=True, weight_bits=8, membrane_bits=16, refractory=0)
    geos = HardwareConfig(lanes=[64, 4], registered_reads=True).geometry(net)
    assert [g.groups_in_logic for g in geos] == [True, False]
    assert mux_bits(geos) == 2 * 64 * 16
    assert logic_estimate([64, 4], geos) == logic_estimate([64, 4]) + 2048 >= 22_259
    assert mux_bits(HardwareConfig(lanes=[64, 4]).geometry(net)) == 0  # block RAM without registered reads
