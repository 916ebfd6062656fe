"""``spikegate learn --board sim``: training through the host link on the simulated board (the whole
HostLink top in Verilator behind a socket) ends with every weight and threshold offset equal to the
model Learner's after the same samples, and saves the network file the model path saves."""
import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest

from spikegate import cli
from spikegate.host import Board, DeviceError
from spikegate.learn_run import LearnConfig, load_data, sample_order
from spikegate.model.core import NetworkCore
from spikegate.model.encode import encode
from spikegate.model.hardware import HardwareConfig
from spikegate.model.learning import Learner
from spikegate.model.network import Network
from spikegate.model.protocol import READ_STATE_HEADER, Cmd, StateKind, Status, pack_fields
from spikegate.sim.link_bridge import SimulatedBoard

LANES = 4
TIMEOUT = "20"  # a simulated UART is slow: allow much more silence than on hardware


def cli_json(argv):
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(argv)
    return status, json.loads(out.getvalue())


def learner_after(config: LearnConfig, init: Network):
    """The model's Learner after the samples in the order learn_run learns them, written here from
    the Learner API alone."""
    x_train = load_data(config)[0]
    spikes = encode(x_train, init.encoding, init.timesteps)
    learner = Learner(init)
    for i in sample_order(config, len(x_train))[0]:
        learner.run(spikes[i], learn=True)
    return learner, spikes


def check_board_learns_as_model(tmp_path, neurons: int, samples: int):
    opts = ["--data", "digits", "--neurons", str(neurons), "--samples", str(samples), "--epochs", "1"]
    init_path, board_path, model_path = tmp_path / "init.json", tmp_path / "board.json", tmp_path / "model.json"
    assert cli_json(["learn", *opts, "--init-out", str(init_path), "--json"])[0] == 0
    init = Network.load(init_path)
    with SimulatedBoard(init_path, lanes=LANES) as sb:
        status, rep = cli_json(["learn", *opts, "--board", "sim", "--port", sb.url, "--timeout", TIMEOUT,
                                "--out", str(board_path), "--json"])
        assert status == 0 and rep["board"] == "sim"
        with Board(sb.url, timeout=float(TIMEOUT)) as b:
            b.check_network(init)
            # REWARD: the network has no rstdp layer, so the board refuses it (and changes nothing)
            with pytest.raises(DeviceError, match="no rstdp layer") as e:
                b.reward(3)
            assert e.value.status == Status.UNSUPPORTED
            with pytest.raises(DeviceError) as e:
                b.request(Cmd.READ_STATE, pack_fields(READ_STATE_HEADER, dict(layer=0, kind=StateKind.PRE_TRACES,
                                                                              start=0, count=1)))
            assert e.value.status == Status.UNSUPPORTED
            board_weights = b.read_state(init, 0, StateKind.WEIGHTS)
    assert cli_json(["learn", *opts, "--out", str(model_path), "--json"])[0] == 0
    learner, spikes = learner_after(LearnConfig(neurons=neurons, samples=samples, epochs=1), init)
    want = learner.state[0]
    got = Network.load(board_path).layers[0]
    assert np.array_equal(board_weights, want.weights)
    assert np.array_equal(got.weights, want.weights)
    assert np.array_equal(got.plasticity.offsets_for(got), want.offsets)
    assert not np.array_equal(want.weights, init.layers[0].weights) and want.offsets.any()  # it learned
    # the saved network is the model path's, byte for byte
    assert board_path.read_bytes() == model_path.read_bytes()
    # every training sample's run took the twin's cycle count
    core = NetworkCore(init, HardwareConfig(lanes=LANES))
    twin_cycles = [core.run(spikes[i], learn=True).cycles for i in sample_order(
        LearnConfig(neurons=neurons, samples=samples, epochs=1), len(spikes))[0]]
    assert rep["board_cycles"] == pytest.approx(np.mean(twin_cycles), rel=0, abs=1e-9)


def test_board_learns_as_the_model(tmp_path):
    check_board_learns_as_model(tmp_path, neurons=16, samples=40)


@pytest.mark.slow
def test_board_learns_as_the_model_100_neurons(tmp_path):
    check_board_learns_as_model(tmp_path, neurons=100, samples=200)


@pytest.mark.slow
def test_sim_option_starts_its_own_board(tmp_path):
    """learn --sim: the simulated board built and started by the command, the model's file again."""
    opts = ["--data", "digits", "--neurons", "16", "--samples", "20", "--epochs", "1"]
    status, rep = cli_json(["learn", *opts, "--sim", "--out", str(tmp_path / "sim.json"), "--json"])
    assert status == 0 and rep["board"] == "sim"
    assert cli_json(["learn", *opts, "--out", str(tmp_path / "model.json"), "--json"])[0] == 0
    assert (tmp_path / "sim.json").read_bytes() == (tmp_path / "model.json").read_bytes()
