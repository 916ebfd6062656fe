"""``spikegate learn --board sim``: training through the host link on the simulated board (the whole
HostLink top in Verilator behind a socket) ends with every weight, threshold offset, trace and
(rstdp) eligibility equal to the model Learner's after the same samples, and saves the network file
the model path saves."""
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
    the Learner API alone; rstdp: the rewards it learned with (the most active neuron with learning
    off is right when it won the label most often so far, or never won: +8, else -1; none fired: 0)."""
    x_train, y_train = load_data(config)[:2]
    spikes = encode(x_train, init.encoding, init.timesteps)
    learner = Learner(init)
    wins = np.zeros((config.neurons, 10), np.int64)
    rewards = []
    for i in sample_order(config, len(x_train))[0]:
        if config.rule == "rstdp":
            counts = learner.run(spikes[i], learn=False)[0].sum(axis=0)
            r = 0
            if counts.any():
                j = int(np.argmax(counts))
                r = 8 if not wins[j].any() or int(np.argmax(wins[j])) == y_train[i] else -1
                wins[j, y_train[i]] += 1
            rewards.append(r)
            learner.run(spikes[i], learn=True, rewards=np.full(init.timesteps, r))
        else:
            learner.run(spikes[i], learn=True)
    return learner, spikes, rewards


def check_board_learns_as_model(tmp_path, neurons: int, samples: int, rule: str = "stdp"):
    opts = ["--data", "digits", "--neurons", str(neurons), "--samples", str(samples), "--epochs", "1",
            "--rule", rule]
    config = LearnConfig(neurons=neurons, samples=samples, epochs=1, rule=rule)
    init_path, board_path, model_path = tmp_path / "init.json", tmp_path / "board.json", tmp_path / "model.json"
    assert cli_json(["learn", *opts, "--init-out", str(init_path), "--json"])[0] == 0
    init = Network.load(init_path)
    # stdp: the host link a plastic network's `spikegate build` makes (boards.fit.choose_stream,
    # choose_ident_block and choose_encoder: one request at a time, the identify payload in block RAM,
    # no on-chip encoder); rstdp: streaming, no encoder either
    with SimulatedBoard(init_path, lanes=LANES, stream=rule != "stdp", encoder=False) as sb:
        status, rep = cli_json(["learn", *opts, "--board", "sim", "--port", sb.url, "--timeout", TIMEOUT,
                                "--out", str(board_path), "--json"])
        assert status == 0 and rep["board"] == "sim"
        with Board(sb.url, timeout=float(TIMEOUT)) as b:
            b.check_network(init)
            # the board has no encoder: the host sent the samples' spikes
            with pytest.raises(DeviceError, match="no on-chip encoder") as e:
                b.run_batch(np.zeros((1, init.layers[0].n_in), np.int64), init.encoding)
            assert e.value.status == Status.UNKNOWN_CMD
            if rule == "stdp":
                # REWARD: the network has no rstdp layer, so the board refuses it (and changes nothing)
                with pytest.raises(DeviceError, match="no rstdp layer") as e:
                    b.reward(3)
                assert e.value.status == Status.UNSUPPORTED
                with pytest.raises(DeviceError) as e:
                    b.request(Cmd.READ_STATE, pack_fields(READ_STATE_HEADER, dict(
                        layer=0, kind=StateKind.ELIGIBILITY, start=0, count=1)))
                assert e.value.status == Status.UNSUPPORTED
            board = {k: b.read_state(init, 0, k) for k in StateKind if b.state_layout(init, 0, k) is not None}
    assert cli_json(["learn", *opts, "--out", str(model_path), "--json"])[0] == 0
    learner, spikes, rewards = learner_after(config, init)
    want = learner.state[0]
    got = Network.load(board_path).layers[0]
    assert set(board) == set(StateKind) - ({StateKind.ELIGIBILITY} if rule == "stdp" else set())
    assert np.array_equal(board[StateKind.WEIGHTS], want.weights)
    assert np.array_equal(board[StateKind.OFFSETS], want.offsets)
    assert np.array_equal(board[StateKind.PRE_TRACES], want.pre) and want.pre.any()
    assert np.array_equal(board[StateKind.POST_TRACES], want.post)
    if rule == "rstdp":
        assert np.array_equal(board[StateKind.ELIGIBILITY], want.elig) and want.elig.any()
        assert rep["epoch_reports"][0]["rewarded"] == pytest.approx(np.mean(np.array(rewards) > 0), abs=1e-12)
        assert 8 in rewards and -1 in rewards
    assert np.array_equal(got.weights, want.weights)
    assert np.array_equal(got.plasticity.offsets_for(got), want.offsets)
    assert not np.array_equal(want.weights, init.layers[0].weights) and want.offsets.any()  # it learned
    # the saved network is the model path's, byte for byte
    assert board_path.read_bytes() == model_path.read_bytes()
    # every training sample's run took the twin's cycle count
    core = NetworkCore(init, HardwareConfig(lanes=LANES))
    order = sample_order(config, len(spikes))[0]
    if rule == "rstdp":  # (the learning-off pass changes nothing the learning pass reads)
        twin_cycles = [core.run(spikes[i], learn=True, reward=r).cycles for i, r in zip(order, rewards)]
    else:
        twin_cycles = [core.run(spikes[i], learn=True).cycles for i in order]
    assert rep["board_cycles"] == pytest.approx(np.mean(twin_cycles), rel=0, abs=1e-9)


def test_board_learns_as_the_model(tmp_path):
    check_board_learns_as_model(tmp_path, neurons=16, samples=40)


def test_board_learns_rstdp_as_the_model(tmp_path):
    check_board_learns_as_model(tmp_path, neurons=16, samples=30, rule="rstdp")


@pytest.mark.slow
def test_board_learns_rstdp_as_the_model_100_neurons(tmp_path):
    check_board_learns_as_model(tmp_path, neurons=100, samples=200, rule="rstdp")


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
