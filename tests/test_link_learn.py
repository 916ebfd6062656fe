"""LEARN, REWARD and READ_STATE (docs/protocol.md, "Learning on the board"): the twin against the
model's Learner and hand-worked answers, and the gateware CommandEngine (Amaranth simulator)
against the twin, answer for answer."""
import numpy as np
import pytest

from spikegate.model import link as proto
from spikegate.model.core import NetworkCore as CoreTwin
from spikegate.model.hardware import HardwareConfig
from spikegate.model.learning import Learner
from spikegate.model.link import Cmd, Status
from spikegate.model.network import Layer, Network
from spikegate.model.plasticity import Plasticity
from spikegate.model.protocol import READ_STATE_HEADER, REWARD_PAYLOAD, RewardMode, StateKind, pack_fields
from spikegate.model.random import random_network, random_spikes

from test_link_engine import Harness, engine_matches_twin

LANES, MAX_EVENTS = 2, 64


def plastic_net(second_layer: bool = False) -> Network:
    """6 inputs -> 5 neurons learning by stdp with winner-take-all and adaptive thresholds (offsets up
    to 2^12 - 2 - 40: 12 bits, 2 bytes), optionally followed by a fixed 3-neuron layer."""
    rng = np.random.default_rng(3)
    p = Plasticity(pre_inc=48, pre_decay=2, a_plus=1, a_minus=1, rate_shift=3, w_min=-32, w_max=31, wta=1,
                   inhibition="reset", theta_inc=9, theta_decay=3, theta_every=2)
    layers = [Layer(weights=rng.integers(-8, 32, size=(6, 5)), threshold=40, weight_bits=6, membrane_bits=13,
                    plasticity=p)]
    if second_layer:
        layers.append(Layer(weights=rng.integers(-8, 8, size=(5, 3)), threshold=5, weight_bits=6, membrane_bits=12))
    return Network(layers, timesteps=4, encoding="rate")


def twin_of(net):
    geo = proto.LinkGeometry.of(net, LANES, 1_000_000, 100_000, 64, MAX_EVENTS)
    return proto.CommandEngine(net, geo, CoreTwin(net, HardwareConfig(lanes=LANES, max_events=MAX_EVENTS))), geo


def rs(layer, kind, start, count):
    return pack_fields(READ_STATE_HEADER, {"layer": layer, "kind": kind, "start": start, "count": count})


def run_frames(geo, samples):
    return [(Cmd.LOAD, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + proto.encode_events(s, geo)) for s in samples]


def test_twin_learns_as_the_learner_and_reads_it_back():
    net = plastic_net()
    twin, geo = twin_of(net)
    samples = random_spikes(5, 6, net.timesteps, net.n_inputs, p=0.6)
    assert twin.execute(Cmd.LEARN, b"\x01") == (Status.OK, b"")
    for f in run_frames(geo, samples):
        assert twin.execute(*f)[0] == Status.OK
    learner = Learner(net)
    for s in samples:
        learner.run(s, learn=True)
    st, p = twin.execute(Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 30))
    assert st == Status.OK and len(p) == 30  # 6-bit weights: one byte each, row-major
    assert np.array_equal(np.frombuffer(p, np.int8).reshape(6, 5), learner.state[0].weights)
    assert not np.array_equal(learner.state[0].weights, net.layers[0].weights)  # it did learn
    st, p = twin.execute(Cmd.READ_STATE, rs(0, StateKind.OFFSETS, 1, 4))
    assert st == Status.OK and np.array_equal(np.frombuffer(p, "<u2"), learner.state[0].offsets[1:])
    # a learning run marks the weights as no longer the network id's
    assert twin.execute(Cmd.IDENTIFY, b"")[1][-17] == 1
    # learning off: runs change nothing
    assert twin.execute(Cmd.LEARN, b"\x00") == (Status.OK, b"")
    before = twin.execute(Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 30))
    twin.execute(*run_frames(geo, samples[:1])[0])
    assert twin.execute(Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 30)) == before


def test_twin_refusals():
    net = plastic_net()
    twin, _ = twin_of(net)
    cases = [
        (Cmd.LEARN, b"", Status.BAD_LENGTH), (Cmd.LEARN, b"\x01\x00", Status.BAD_LENGTH),
        (Cmd.LEARN, b"\x02", Status.RANGE),
        (Cmd.REWARD, b"\x01\x00", Status.BAD_LENGTH), (Cmd.REWARD, b"\x00\x01\x00", Status.UNSUPPORTED),
        (Cmd.REWARD, b"\x07\x01\x00", Status.UNSUPPORTED),                  # no rstdp layer: before the mode
        (Cmd.READ_STATE, rs(0, 0, 0, 1)[:7], Status.BAD_LENGTH),
        (Cmd.READ_STATE, rs(1, 0, 0, 1), Status.RANGE),                      # no layer 1
        (Cmd.READ_STATE, rs(0, 5, 0, 1), Status.RANGE),                      # no kind 5
        (Cmd.READ_STATE, rs(0, StateKind.ELIGIBILITY, 0, 1), Status.UNSUPPORTED),  # an stdp layer
        (Cmd.READ_STATE, rs(0, StateKind.PRE_TRACES, 6, 1), Status.RANGE),   # 6 inputs
        (Cmd.READ_STATE, rs(0, StateKind.POST_TRACES, 4, 2), Status.RANGE),  # 5 neurons
        (Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 0), Status.RANGE),      # count 0
        (Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 29, 2), Status.RANGE),     # past the last weight
        (Cmd.READ_STATE, rs(0, StateKind.OFFSETS, 5, 1), Status.RANGE),
    ]
    for cmd, p, want in cases:
        assert twin.execute(cmd, p) == (want, b""), (cmd, p.hex())
    # any plastic layer's state is readable; a fixed layer has none
    twin2, _ = twin_of(plastic_net(second_layer=True))
    assert twin2.execute(Cmd.READ_STATE, rs(0, StateKind.OFFSETS, 0, 1))[0] == Status.OK
    assert twin2.execute(Cmd.READ_STATE, rs(1, StateKind.WEIGHTS, 0, 1))[0] == Status.UNSUPPORTED
    assert twin2.execute(Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 30))[0] == Status.OK
    # a network without plasticity: the commands exist but have nothing to act on
    twin3, _ = twin_of(random_network(1, (4, 3)))
    for cmd, p in ((Cmd.LEARN, b"\x01"), (Cmd.REWARD, b"\x00\xff\xff"), (Cmd.READ_STATE, rs(9, 9, 0, 0))):
        assert twin3.execute(cmd, p) == (Status.UNSUPPORTED, b""), cmd


@pytest.mark.parametrize("second_layer", [False, True])
def test_engine_learning_commands_match_twin(second_layer):
    net = plastic_net(second_layer)
    dut = Harness(net, lanes=LANES, max_events=MAX_EVENTS)
    twin, geo = twin_of(net)
    samples = random_spikes(7, 3, net.timesteps, net.n_inputs, p=0.6)
    frames = [
        (Cmd.LEARN, b"\x02"), (Cmd.LEARN, b""), (Cmd.REWARD, b"\x00\x05\x00"), (Cmd.REWARD, b"\x05\x00"),
        (Cmd.READ_STATE, rs(0, StateKind.ELIGIBILITY, 0, 1)), (Cmd.READ_STATE, rs(0, 7, 0, 1)),
        (Cmd.READ_STATE, rs(2, 0, 0, 1)), (Cmd.READ_STATE, rs(0, 0, 0, 31)), (Cmd.READ_STATE, rs(0, 0, 0, 0)),
        (Cmd.READ_STATE, rs(0, 0, 0, 30)),
        (Cmd.LEARN, b"\x01"), *run_frames(geo, samples),
        (Cmd.IDENTIFY, b""), (Cmd.CHECKSUM, b""),
        (Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 30)),
        (Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 13, 9)),       # from the middle of row 2, across rows
        (Cmd.READ_STATE, rs(0, StateKind.OFFSETS, 0, 5)), (Cmd.READ_STATE, rs(0, StateKind.OFFSETS, 3, 2)),
        (Cmd.READ_STATE, rs(1, StateKind.WEIGHTS, 0, 1)),
        (Cmd.READ_STATE, rs(0, StateKind.PRE_TRACES, 0, 6)), (Cmd.READ_STATE, rs(0, StateKind.PRE_TRACES, 4, 2)),
        (Cmd.READ_STATE, rs(0, StateKind.POST_TRACES, 0, 5)), (Cmd.READ_STATE, rs(0, StateKind.POST_TRACES, 3, 2)),
        (Cmd.LEARN, b"\x00"), *run_frames(geo, samples[:1]), (Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 30)),
    ]
    got = engine_matches_twin(dut, twin, frames)
    assert [g[0] for g in got[:10]] == [Status.RANGE, Status.BAD_LENGTH, Status.UNSUPPORTED, Status.BAD_LENGTH,
                                        Status.UNSUPPORTED, Status.RANGE, Status.RANGE, Status.RANGE, Status.RANGE,
                                        Status.OK]
    learner = Learner(net)
    for s in samples:
        learner.run(s, learn=True)
    st = learner.state[0]
    assert np.frombuffer(got[-1][1], np.int8).reshape(6, 5).tolist() == st.weights.tolist()
    reads = {(f[0], f[1]): g for f, g in zip(frames, got)}
    assert reads[(Cmd.READ_STATE, rs(0, StateKind.OFFSETS, 0, 5))][1] == st.offsets.astype("<u2").tobytes()
    assert reads[(Cmd.READ_STATE, rs(0, StateKind.PRE_TRACES, 0, 6))][1] == st.pre.astype(np.uint8).tobytes()
    assert reads[(Cmd.READ_STATE, rs(0, StateKind.POST_TRACES, 0, 5))][1] == st.post.astype(np.uint8).tobytes()
    assert st.pre.any() and st.post.any()


def test_engine_without_plasticity_refuses_learning():
    net = random_network(2, (4, 3), timesteps=2)
    dut = Harness(net, lanes=LANES, max_events=MAX_EVENTS)
    twin, _ = twin_of(net)
    frames = [(Cmd.LEARN, b"\x01"), (Cmd.LEARN, b""), (Cmd.REWARD, b"\x00\x01\x00"), (Cmd.READ_STATE, rs(0, 0, 0, 1)),
              (Cmd.READ_STATE, b"\x00")]
    got = engine_matches_twin(dut, twin, frames)
    assert [g[0] for g in got] == [Status.UNSUPPORTED, Status.BAD_LENGTH, Status.UNSUPPORTED, Status.UNSUPPORTED,
                                   Status.BAD_LENGTH]


def test_twin_fuzz_with_learning_commands():
    """The link fuzzer on a plastic network: valid READ_STATE (answers compared with the host's
    record) and LEARN frames, the learning refusals, and damaged copies of them."""
    from spikegate.link_fuzz import fuzz_twin
    stats = fuzz_twin(plastic_net(second_layer=True), 1500, seed=4, lanes=LANES, max_payload=64,
                      max_events=MAX_EVENTS)
    assert (stats.lockups, stats.wrong_answers, stats.undetected) == (0, 0, 0), stats.wrong
    assert stats.commands["READ_STATE"] > 10 and stats.commands["LEARN"] > 3
    assert stats.damaged.get("READ_STATE", 0) > 0 and stats.states_checked == stats.commands["READ_STATE"]


def test_wrong_state_reference_is_caught(monkeypatch):
    """A record that ignores READ_STATE's start makes the fuzzer report READ_STATE answers wrong."""
    from spikegate.link_fuzz import fuzz_twin
    from spikegate.link_fuzz_record import Record
    right = Record.expect_state
    monkeypatch.setattr(Record, "expect_state",
                        lambda self, layer, kind, start, count: right(self, layer, kind, 0, count))
    stats = fuzz_twin(plastic_net(second_layer=True), 1500, seed=4, lanes=LANES, max_payload=64, max_events=MAX_EVENTS)
    assert stats.wrong_answers > 0 and all(w.startswith("READ_STATE") for w in stats.wrong), stats.wrong


def rstdp_net() -> Network:
    """plastic_net's layer learning by rstdp (8-bit eligibility halving every step), then a fixed layer."""
    net = plastic_net(second_layer=True)
    p = net.layers[0].plasticity.replace(rule="rstdp", elig_bits=8, elig_decay=1, reward_shift=2)
    return net.replace(layers=[net.layers[0].replace(plasticity=p), net.layers[1]])


def reward_frame(mode, value):
    return Cmd.REWARD, pack_fields(REWARD_PAYLOAD, {"mode": mode, "reward": value & 0xFFFF})


def test_engine_rewards_match_twin_and_learner():
    """REWARD STEP (held for the learning runs) and SAMPLE (after a run) on an rstdp network: the
    gateware answers as the twin, and every weight, eligibility, trace and offset read back is the
    Learner's."""
    net = rstdp_net()
    dut = Harness(net, lanes=LANES, max_events=MAX_EVENTS)
    twin, geo = twin_of(net)
    samples = random_spikes(11, 4, net.timesteps, net.n_inputs, p=0.6)
    step_rewards, sample_rewards = [5, -3, 0, 7], [-2, 9, -300, 0]
    frames = [reward_frame(2, 1), (Cmd.REWARD, b"\x00\x01"), reward_frame(RewardMode.SAMPLE, -32768),
              (Cmd.LEARN, b"\x01")]
    learner = Learner(net)
    for s, r_step, r_sample, f in zip(samples, step_rewards, sample_rewards, run_frames(geo, samples)):
        frames += [reward_frame(RewardMode.STEP, r_step), f, reward_frame(RewardMode.SAMPLE, r_sample)]
        learner.run(s, learn=True, rewards=np.full(net.timesteps, r_step))
        learner.reward(r_sample)
    reads = [rs(0, StateKind.WEIGHTS, 0, 30), rs(0, StateKind.ELIGIBILITY, 0, 30), rs(0, StateKind.ELIGIBILITY, 7, 11),
             rs(0, StateKind.PRE_TRACES, 0, 6), rs(0, StateKind.POST_TRACES, 0, 5), rs(0, StateKind.OFFSETS, 0, 5)]
    frames += [(Cmd.LEARN, b"\x00"), (Cmd.STATUS, b""), *[(Cmd.READ_STATE, p) for p in reads]]
    got = engine_matches_twin(dut, twin, frames)
    assert [g[0] for g in got[:2]] == [Status.RANGE, Status.BAD_LENGTH]
    assert all(g[0] == Status.OK for g in got[2:])  # (a reward before any run: E = 0)
    st = learner.state[0]
    w, e, e_mid, pre, post, off = (g[1] for g in got[-6:])
    assert np.frombuffer(w, np.int8).reshape(6, 5).tolist() == st.weights.tolist()
    assert np.frombuffer(e, np.int8).reshape(6, 5).tolist() == st.elig.tolist() and st.elig.any()
    assert np.frombuffer(e_mid, np.int8).tolist() == st.elig.reshape(-1)[7:18].tolist()
    assert np.frombuffer(pre, np.uint8).tolist() == st.pre.tolist()
    assert np.frombuffer(post, np.uint8).tolist() == st.post.tolist()
    assert np.frombuffer(off, "<u2").tolist() == st.offsets.tolist()
    # the rewards did change the weights: without them the learner ends elsewhere
    plain = Learner(net)
    for s in samples:
        plain.run(s, learn=True)
    assert plain.state[0].weights.tolist() != st.weights.tolist()


def test_twin_fuzz_with_rewards():
    """The link fuzzer on an rstdp network: valid REWARD frames of both modes, eligibility reads."""
    from spikegate.link_fuzz import fuzz_twin
    stats = fuzz_twin(rstdp_net(), 1500, seed=5, lanes=LANES, max_payload=64, max_events=MAX_EVENTS)
    assert (stats.lockups, stats.wrong_answers, stats.undetected) == (0, 0, 0), stats.wrong
    assert stats.commands["REWARD"] > 3 and stats.commands["READ_STATE"] > 10
