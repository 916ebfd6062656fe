"""NetworkCore gateware (Amaranth simulator) vs its twin vs the contract, bit for bit and cycle for cycle.

Every run compares: output spikes of every layer at every step (from the ``mon`` port), the final
membranes and refractory counters of every layer, the output spike counts and final membranes read
through ``out_addr``, the ``mon`` words themselves, and the ``cycles`` port against the twin's
cycle formula.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cycle_formula as formula, run_testbench
from waits import until
from spikegate import datasets
from spikegate.hdl.core import CFG_LATENCY, NetworkCore
from spikegate.hdl.synapse import SynapseArray
from spikegate.hdl.testbench import run_in_testbench, simulate_core
from spikegate.model.core import NetworkCore as Twin, RunResult, input_words, weight_cfg_words
from spikegate.model.blocks import weight_slice_bits
from spikegate.model.hardware import SCHEDULES, HardwareConfig
from spikegate.model.network import Layer, Leak, Network, signed_range
from spikegate.model.protocol import CfgTarget
from spikegate.model.random import random_network, random_spikes
from spikegate.model.simulate import simulate
from spikegate.sim.collisions import CollisionPoison


def check(net, spikes, lanes, schedule="inflight", registered_reads=False):
    """Run samples [N, T, n_in] through contract, twin and gateware; all must agree."""
    lanes_l = lanes if isinstance(lanes, list) else [lanes] * len(net.layers)
    ref = simulate(net, spikes)
    hw_config = HardwareConfig(lanes=lanes, schedule=schedule, registered_reads=registered_reads)
    twin = Twin(net, hw_config)
    # Reads that meet a write in a no_rw_check memory return garbage, as they may on the boards.
    hw = simulate_core(NetworkCore(net, hw_config), spikes, platform=CollisionPoison())
    for b in range(spikes.shape[0]):
        tr = twin.run(spikes[b])
        assert (m := RunResult.from_simulation(net, ref, b).mismatch(tr)) is None, f"twin vs contract, sample {b}: {m}"
        assert (m := tr.mismatch(hw[b])) is None, f"gateware vs twin, sample {b}: {m}"
        assert hw[b].cycles == formula(net, lanes_l, spikes[b], schedule=schedule,
                                       registered_reads=registered_reads), \
            f"sample {b}: cycles {hw[b].cycles} != formula"
    return hw


def one_layer(weights, **kw):
    return Layer(weights=np.asarray(weights, np.int64), **kw)


# --- hypothesis: random networks -------------------------------------------------------------

# registered: HardwareConfig.registered_reads, a register behind every block RAM read, a cycle
# more a layer step.
@pytest.mark.parametrize("registered_reads", [False, True], ids=["", "registered"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.lists(st.integers(0, 4), min_size=3, max_size=3),
       p=st.sampled_from([0.0, 0.1, 0.4, 0.9, 1.0]), schedule=st.sampled_from(SCHEDULES))
def test_random_networks(seed, lanes_exp, p, schedule, registered_reads):
    net = random_network(seed, timesteps=int(np.random.default_rng(seed).integers(1, 7)))
    lanes = [1 << e for e in lanes_exp[:len(net.layers)]]
    spikes = random_spikes(seed + 1, 2, net.timesteps, net.n_inputs, p=p)
    check(net, spikes, lanes, schedule, registered_reads=registered_reads)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_registered_reads_back_to_back_ops(groups, schedule):
    # Every input spikes at every step, so ops come back to back: with G <= 2 an op reads its
    # accumulator word before the ops just ahead of it (the same group) have written theirs.
    net = random_network(13, (7, 4 * groups, 4 * groups, 3), timesteps=4, readout=True)
    spikes = np.ones((1, 4, 7), bool)
    check(net, spikes, [4, 4, 1], schedule, registered_reads=True)
    check(net, random_spikes(14, 2, 4, 7, p=0.9), [4, 4, 1], schedule, registered_reads=True)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_registered_reads_wide_spike_words(schedule):
    # 32-lane spike words, as the ULX3S's 784-128-10 build has (lanes 32, 4): the queues between
    # layers hand each word's first event and "two or more set" over from registers (WordQueue's
    # lead), then word_events serialises the rest. 40 and 36 neurons: a full word, a ragged one.
    net = random_network(3, (12, 40, 36, 5), timesteps=4)
    for p in (0.3, 1.0):
        spikes = random_spikes(4, 2, 4, 12, p=p)
        words = [np.asarray(s)[..., :32].sum(-1) for s in simulate(net, spikes).spikes[:2]]
        assert all((w >= 3).any() and (w == 1).any() for w in words)  # words of one lane and of several
        check(net, spikes, [32, 32, 4], schedule, registered_reads=True)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_registered_reads_64_lane_words(schedule):
    # 64-lane spike words, as the ULX3S's 784-128-10 build has (lanes 64, 4). Random networks
    # this small seldom fire a single neuron of 64 alone, so this one is built to: input 0
    # excites hidden neuron 5 alone, every other input a third of the hidden neurons, and the
    # second layer maps each hidden neuron onto one of its own (a permutation); the small
    # non-positive weights elsewhere keep the sums real. 72 and 68 neurons: a full word, a ragged one.
    rng = np.random.default_rng(21)
    theta, strong = 60, 100
    w1 = -rng.integers(0, 3, (12, 72))
    w1[0, 5] = strong
    for i in range(1, 12):
        w1[i, rng.choice(72, 24, replace=False)] = strong
    w2 = -rng.integers(0, 3, (72, 68))
    w2[np.arange(68), rng.permutation(68)] = strong
    net = Network([one_layer(w1, threshold=theta, weight_bits=8, membrane_bits=10),
                   one_layer(w2, threshold=theta, weight_bits=8, membrane_bits=10),
                   one_layer(rng.integers(-40, 40, (68, 5)), weight_bits=8, membrane_bits=12, readout=True)],
                  timesteps=4)
    spikes = random_spikes(4, 2, 4, 12, p=0.3)
    spikes[0, 0] = spikes[1, 2] = False
    spikes[0, 0, 0] = spikes[1, 2, 0] = True  # input 0 alone
    words = [np.asarray(s)[..., :64].sum(-1) for s in simulate(net, spikes).spikes[:2]]
    assert all((w == 1).any(axis=1).all() and (w >= 3).any(axis=1).all() for w in words)  # in every sample
    check(net, spikes, [64, 64, 4], schedule, registered_reads=True)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.lists(st.integers(0, 6), min_size=3, max_size=3),
       p=st.floats(0.0, 1.0), schedule=st.sampled_from(SCHEDULES), registered_reads=st.booleans())
def test_random_networks_many(seed, lanes_exp, p, schedule, registered_reads):
    net = random_network(seed)
    lanes = [1 << e for e in lanes_exp[:len(net.layers)]]
    check(net, random_spikes(seed + 1, 2, net.timesteps, net.n_inputs, p=p), lanes, schedule,
          registered_reads=registered_reads)


# --- named edge cases --------------------------------------------------------------------------

@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
def test_lanes_with_ragged_last_group(lanes):
    # 13 and 7 neurons: never a multiple of P > 1, so the last group has idle lanes.
    net = random_network(11, (9, 13, 7), timesteps=5, readout=False, refractory=2)
    check(net, random_spikes(12, 2, 5, 9, p=0.5), lanes)


def test_saturation_at_both_rails():
    vb = 6
    lo, hi = signed_range(vb)
    w = np.array([[127, -128, 100, -100, 127, -128]] * 6, np.int64)
    l1 = one_layer(w, bias=[hi, lo, 0, 0, hi, lo], threshold=hi - 1, weight_bits=8, membrane_bits=vb,
                   reset="subtract")
    l2 = one_layer(np.full((6, 3), -7, np.int64), weight_bits=4, membrane_bits=4, readout=True)
    net = Network([l1, l2], timesteps=6)
    spikes = np.ones((1, 6, 6), bool)
    spikes[0, 3] = False  # an all-silent step between all-active ones
    check(net, spikes, 2)


@pytest.mark.parametrize("leak", [Leak.none(), Leak.shift(2), Leak.multiply(5, 3)], ids=["none", "shift", "multiply"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_leaks_and_resets(leak, reset):
    rng = np.random.default_rng(5)
    w = rng.integers(-20, 60, (8, 5))
    l1 = one_layer(w, bias=rng.integers(-5, 5, 5), threshold=50, weight_bits=8, membrane_bits=10, leak=leak,
                   reset=reset, refractory=1)
    net = Network([l1], timesteps=10)
    check(net, random_spikes(6, 2, 10, 8, p=0.6), 4)


@pytest.mark.parametrize("refractory", [1, 3, 255])
def test_refractory_periods(refractory):
    l1 = one_layer(np.full((3, 4), 30), threshold=20, weight_bits=8, membrane_bits=9, refractory=refractory)
    l2 = one_layer(np.full((4, 2), 9), threshold=5, weight_bits=5, membrane_bits=8, refractory=2)
    net = Network([l1, l2], timesteps=12)
    check(net, np.ones((1, 12, 3), bool), 2)


def test_theta_next_to_rail_and_negative_weights():
    vb = 8
    hi = signed_range(vb)[1]
    rng = np.random.default_rng(9)
    l1 = one_layer(rng.integers(-128, 128, (10, 9)), threshold=hi - 1, weight_bits=8, membrane_bits=vb)
    l2 = one_layer(-rng.integers(0, 8, (9, 3)), threshold=0, weight_bits=4, membrane_bits=8, bias=[7, 0, -3])
    net = Network([l1, l2], timesteps=6)
    check(net, random_spikes(10, 2, 6, 10, p=0.7), [4, 1])


def test_one_input_and_one_neuron_layers():
    l1 = one_layer([[3]], threshold=4, weight_bits=3, membrane_bits=5)          # 1 input, 1 neuron
    l2 = one_layer([[2, -1, 3]], threshold=1, weight_bits=3, membrane_bits=5)   # 1 input, 3 neurons
    l3 = one_layer([[1], [1], [1]], weight_bits=2, membrane_bits=4, readout=True)  # 1 neuron readout
    net = Network([l1, l2, l3], timesteps=8)
    check(net, random_spikes(3, 2, 8, 1, p=0.7), [1, 2, 1])
    check(net, random_spikes(3, 1, 8, 1, p=0.7), [16, 16, 16])


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_all_silent_sample_and_empty_run(schedule):
    net = random_network(21, (5, 4, 3), timesteps=4)
    check(net, np.zeros((1, 4, 5), bool), 2, schedule)
    # T = 0 (nothing loaded): done after the run overhead, state reads as zero.
    hw = simulate_core(NetworkCore(net, HardwareConfig(lanes=2, schedule=schedule)), np.zeros((1, 0, 5), bool))[0]
    assert hw.cycles == 1 and not hw.counts.any() and not hw.membranes[-1].any()


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("registered_reads", [False, True], ids=["", "registered"])
@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_default_digits_samples(lanes, schedule, registered_reads):
    net = datasets.load_network()
    x, _ = datasets.load("digits", "test")
    check(net, datasets.encode_for(net, x[:1]), lanes, schedule, registered_reads=registered_reads)


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [4])
def test_default_digits_full_test_split(lanes):
    net = datasets.load_network()
    x, y = datasets.load("digits", "test")
    spikes = datasets.encode_for(net, x)
    hw = check(net, spikes, lanes)
    pred = np.array([np.argmax(r.membranes[-1]) if net.readout else np.argmax(r.counts) for r in hw])
    print(f"\ndigits test split on the gateware (lanes={lanes}): accuracy {np.mean(pred == y):.4f}, "
          f"cycles/sample {np.mean([r.cycles for r in hw]):.1f}")


# --- ports: load/overflow/clear, re-run, cfg, trace ------------------------------------------

def _bench(dut, body):
    run_testbench(dut, body)


async def _send(ctx, stream, payload):
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick()
    ctx.set(stream.valid, 0)


async def _run_and_check(ctx, dut, expect):
    """Start a run of the loaded sample; its cycles and outputs (read at the core's read latency)
    must be ``expect``'s."""
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    await until(ctx, lambda: ctx.get(dut.done), "done")
    assert ctx.get(dut.cycles) == expect.cycles
    for j in range(len(expect.counts)):
        ctx.set(dut.out_addr, j)
        await ctx.tick().repeat(dut.read_latency)
        assert ctx.get(dut.out_count) == expect.counts[j], j
        assert ctx.get(dut.out_membrane) == expect.membranes[-1][j], j


@pytest.mark.parametrize("registered_reads", [False, True], ids=["", "registered"])
def test_overflow_clear_and_rerun(registered_reads):
    net = random_network(31, (6, 5, 4), timesteps=3, readout=False)
    spikes = random_spikes(32, 1, 3, 6, p=0.5)[0]
    words = input_words(spikes)
    hw = HardwareConfig(lanes=2, max_events=len(words), registered_reads=registered_reads)
    twin = Twin(net, hw)
    expect = twin.run(spikes)
    dut = NetworkCore(net, hw)

    async def body(ctx):
        # Fill the buffer exactly; one more word overflows.
        for a, e in words:
            await _send(ctx, dut.load, {"addr": a, "end_of_step": e})
        assert not ctx.get(dut.overflow)
        await _send(ctx, dut.load, {"addr": 0, "end_of_step": 1})
        assert ctx.get(dut.overflow)
        # The refused word changed nothing: the run is the expected one, twice in a row.
        for _ in range(2):
            await _run_and_check(ctx, dut, expect)
        # clear empties the buffer and the sticky flag; an address >= n_in is refused.
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        assert not ctx.get(dut.overflow) and not ctx.get(dut.done)
        await _send(ctx, dut.load, {"addr": 7, "end_of_step": 0})
        assert ctx.get(dut.overflow)
        # With an empty buffer a run is T = 0 steps.
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        assert ctx.get(dut.busy)
        await until(ctx, lambda: ctx.get(dut.done), "done of an empty run")
        assert ctx.get(dut.cycles) == 1

    _bench(dut, body)


@pytest.mark.parametrize("registered_reads", [False, True], ids=["", "registered"])
@pytest.mark.parametrize("steps", [[[]], [[], [2]], [[0, 3], [1], [], [0, 1, 2, 3]]], ids=["one-word", "two-steps", "four-steps"])
def test_start_right_after_the_last_load(steps, registered_reads):
    # The port contract allows start in the cycle after the last load; with registered reads the
    # input buffer's head is a flip-flop, which must still see a word written just before start
    # (the one-word sample writes the head itself). Each sample is loaded over the last one.
    net = random_network(33, (4, 5, 3), timesteps=4, readout=True)
    hw = HardwareConfig(lanes=2, max_events=16, registered_reads=registered_reads)
    twin = Twin(net, hw)
    samples = []
    for k in range(3):  # the same steps with other inputs, so a stale head word would show
        x = np.zeros((len(steps), 4), bool)
        for t, active in enumerate(steps):
            x[t, [(i + k) % 4 for i in active]] = True
        samples.append(x)
    dut = NetworkCore(net, hw)

    async def body(ctx):
        for x in samples:
            expect = twin.run(x)
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for a, e in input_words(x):
                await _send(ctx, dut.load, {"addr": a, "end_of_step": e})
            await _run_and_check(ctx, dut, expect)  # start in the cycle right after the last load

    _bench(dut, body)


@pytest.mark.parametrize("registered_reads", [False, True], ids=["", "registered"])
def test_parameter_reads_answer_after_the_param_latency(registered_reads):
    # param_addr moves every cycle; param_data shows each address's value param_latency cycles later.
    net = random_network(35, (5, 6, 3), timesteps=2, readout=False)
    hw = HardwareConfig(lanes=4, registered_reads=registered_reads)
    dut = NetworkCore(net, hw)
    reads = [(l, CfgTarget.WEIGHT, i, j, int(layer.weights[i, j])) for l, layer in enumerate(net.layers)
             for i in range(layer.n_in) for j in range(layer.n)]
    reads += [(l, CfgTarget.BIAS, 0, j, int(layer.bias[j])) for l, layer in enumerate(net.layers) for j in range(layer.n)]
    reads += [(l, CfgTarget.THRESHOLD, 0, 0, layer.threshold) for l, layer in enumerate(net.layers)]

    async def body(ctx):
        seen = []
        lat = dut.param_latency
        assert lat == (3 if registered_reads else 1)
        for l, target, row, col, _ in reads + [reads[0]] * lat:
            ctx.set(dut.param_addr, {"layer": l, "target": target, "row": row, "col": col})
            await ctx.tick()
            seen.append(ctx.get(dut.param_data))
        assert seen[lat - 1:len(reads) + lat - 1] == [r[-1] for r in reads]

    _bench(dut, body)


def test_weight_slices_keep_each_bit_within_two_blocks():
    # (n_in, n, lanes, weight_bits) -> bits per slice of layer 0's weight memory with registered reads
    cases = {(64, 64, 4, 8): None,        # digits: 1,024 words, two 512 x 32 blocks, kept whole
             (784, 128, 4, 8): 1,         # 25,088 words: 49 blocks deep whole, 2 deep at 16 K x 1
             (300, 16, 4, 8): 8,          # 1,200 words: 8-bit slices, one 2 K-deep block each
             (150, 40, 1, 6): 2,          # 6,000 words of 6 bits: 2-bit slices (8 K deep), within a lane
             (700, 9, 2, 4): None,        # 3,500 words of 8 bits: two 2 K x 9 blocks deep, kept whole
             (400, 16, 4, 16): 16}        # 1,600 words of 64 bits (blocks side by side): 16-bit slices
    for (n_in, n, lanes, wb), bits in cases.items():
        net = random_network(1, (n_in, n, 3), weight_bits=wb)
        geo = HardwareConfig(lanes=lanes, registered_reads=True).geometry(net)[0]
        assert weight_slice_bits(geo) == bits, (n_in, n, lanes, wb)
    net = random_network(1, (784, 128, 3), weight_bits=8)
    assert SynapseArray(net.layers[0], HardwareConfig(lanes=4).geometry(net)[0]).weight_slices == []


@pytest.mark.parametrize("n_in, n, lanes, parts", [
    # 1,200 or 2,400 words at 4 lanes: four 8-bit slices, one or two blocks (2,048 words) deep
    (300, 16, 4, [[1200]] * 4), (1200, 8, 4, [[2048, 352]] * 4),
    # 1,200 words of 16 bits at 2 lanes: whole words (<= 2 x 1,024), as two parts
    (300, 8, 2, [[1024, 176]])])
def test_sliced_weights_take_cfg_writes_and_answer_parameter_reads(n_in, n, lanes, parts):
    # Layer 0 is built as slices (or whole words) in block-deep parts (with two, each part's word
    # registered, and the core's reads take two stages): writes reach one lane of one part, reads
    # put the word together, and a run uses the written weights.
    net = random_network(51, (n_in, n, 5), timesteps=4, readout=True, weight_bits=8)
    hw = HardwareConfig(lanes=lanes, registered_reads=True)
    dut = NetworkCore(net, hw)
    blocks = len(parts[0])
    assert [[part.depth for part in s] for s in dut.layers[0].synapses.weight_slices] == parts
    assert [g.read_stages for g in dut.geometry] == [blocks, blocks] and dut.param_latency == 3
    rng = np.random.default_rng(52)
    twin = Twin(net, hw)
    writes = [(0, 0, int(rng.integers(0, n_in)), int(rng.integers(0, n)), int(rng.integers(-128, 128)))
              for _ in range(20)]
    if blocks > 1:  # both sides of the parts' boundary and the last row, in several lanes
        first = parts[0][0] // -(-n // lanes)  # the first row in the second part (row i: words i * G..)
        writes += [(0, 0, n_in - 1, 0, 77), (0, 0, n_in - 1, n - 1, -77), (0, 0, first, 1, 55),
                   (0, 0, first - 1, n - 2, -55)]
    for w in writes:
        assert twin.cfg(*w)
    spikes = random_spikes(53, 1, 4, n_in, p=0.1)[0]
    spikes[:, [w[2] for w in writes]] = True  # the written rows take part in the run
    expect = twin.run(spikes)
    results = {}

    async def body(ctx):
        for layer, target, row, col, data in writes:
            await _send(ctx, dut.cfg, {"layer": layer, "target": target, "row": row, "col": col, "data": data})
        await ctx.tick().repeat(CFG_LATENCY)
        seen = []
        for _, target, row, col, _ in writes:
            ctx.set(dut.param_addr, {"layer": 0, "target": target, "row": row, "col": col})
            await ctx.tick().repeat(dut.param_latency)
            seen.append(ctx.get(dut.param_data))
        results["read"] = seen
        results["hw"] = await run_in_testbench(ctx, dut, spikes)

    _bench(dut, body)
    last = {(r, c): d for _, _, r, c, d in writes}
    assert results["read"] == [last[(r, c)] for _, _, r, c, _ in writes]
    assert (m := expect.mismatch(results["hw"])) is None, m


def test_cfg_writes_match_twin():
    net = random_network(41, (7, 6, 5, 3), timesteps=5, readout=True)
    rng = np.random.default_rng(42)
    spikes = random_spikes(43, 1, 5, 7, p=0.6)[0]
    twin = Twin(net, HardwareConfig(lanes=4))
    before = twin.run(spikes)
    l0, _, l1 = net.layers
    wlo0, whi0 = signed_range(l0.weight_bits)
    vlo1, vhi1 = signed_range(l1.membrane_bits)
    writes = []
    for _ in range(12):
        writes.append((0, 0, int(rng.integers(0, 7)), int(rng.integers(0, 6)), int(rng.integers(wlo0, whi0 + 1))))
    writes += [(2, 1, 0, 2, vhi1), (2, 1, 0, 0, vlo1), (0, 2, 0, 0, int(rng.integers(0, signed_range(l0.membrane_bits)[1])))]
    # Refused: bad layer, row, col, value range, threshold of a readout layer, bad target, bias col.
    refused = [(3, 0, 0, 0, 1), (0, 0, 7, 0, 1), (0, 0, 0, 6, 1), (0, 0, 0, 0, whi0 + 1), (2, 2, 0, 0, 1),
               (0, 3, 0, 0, 0), (2, 1, 0, 3, 0)]
    for w in writes:
        assert twin.cfg(*w)
    for w in refused:
        assert not twin.cfg(*w)
    after = twin.run(spikes)
    assert after.mismatch(before) is not None, "the writes should change the run"
    # The twin's own changed weights agree with the contract on a network edited the same way.
    dut = NetworkCore(net, HardwareConfig(lanes=4))
    results = {}

    async def body(ctx):
        for i, (layer, target, row, col, data) in enumerate(writes + refused):
            await _send(ctx, dut.cfg, {"layer": layer, "target": target, "row": row, "col": col, "data": data})
            # The word is checked and applied CFG_LATENCY cycles after its handshake; not before.
            for _ in range(CFG_LATENCY):
                assert ctx.get(dut.cfg_error) == (i > len(writes)), (layer, target, row, col, data)
                await ctx.tick()
            assert ctx.get(dut.cfg_error) == (i >= len(writes)), (layer, target, row, col, data)
        results["hw"] = await run_in_testbench(ctx, dut, spikes)
        assert not ctx.get(dut.cfg_error), "clear resets cfg_error"

    _bench(dut, body)
    assert (m := after.mismatch(results["hw"])) is None, m
    # And the edited twin is still the contract.
    edited = [Layer(weights=c.synapses.weights.reshape(c.geo.n_in, -1)[:, :c.geo.n], bias=c.neurons(c.bias),
                    threshold=c.theta, weight_bits=c.layer.weight_bits, membrane_bits=c.layer.membrane_bits,
                    leak=c.layer.leak, reset=c.layer.reset, refractory=c.layer.refractory, readout=c.layer.readout)
              for c in twin.layers]
    ref = simulate(Network(edited, timesteps=5), spikes[None])
    assert (m := RunResult.from_simulation(net, ref, 0).mismatch(after)) is None, m


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_trace_memory(schedule):
    """Sequential: one trace memory, the first trace_depth words in emission order. Inflight: one
    bank of trace_depth words per layer, read back layer after layer (one bank overflows here)."""
    net = random_network(52, (6, 9, 4), timesteps=6, readout=False)
    spikes = random_spikes(53, 1, 6, 6, p=0.8)[0]  # 10 words of layer 0, 2 of layer 1
    expect = Twin(net, HardwareConfig(lanes=2, schedule=schedule)).run(spikes)
    banks = ([expect.mon] if schedule == "sequential" else
             [[w for w in expect.mon if w[0] == l] for l in range(len(net.layers))])
    depth = max(1, max(len(b) for b in banks) - 2)
    kept = [w for b in banks for w in b[:depth]]
    assert 0 < len(kept) < len(expect.mon)
    assert schedule == "sequential" or min(len(b) for b in banks) <= depth  # and one bank does not
    dut = NetworkCore(net, HardwareConfig(lanes=2, trace_depth=depth, schedule=schedule))

    async def body(ctx):
        await run_in_testbench(ctx, dut, spikes)
        n = ctx.get(dut.trace_count)
        assert n == len(kept)
        assert ctx.get(dut.trace_overflow) == any(len(b) > depth for b in banks)
        for k in range(n):
            ctx.set(dut.trace_addr, k)
            await ctx.tick()
            d = ctx.get(dut.trace_data)
            assert (d.layer, d.step, d.base, d.word) == kept[k]

    _bench(dut, body)


@pytest.mark.parametrize("lanes", [1, 4])
def test_spram_weights_loaded_through_cfg(lanes):
    """weight_ram='spram': SB_SPRAM256KA tiles (cycle model) start empty; cfg loads the weights."""
    net = random_network(7, (9, 13, 5), timesteps=4, weight_bits=8)
    spikes = random_spikes(8, 1, 4, 9, p=0.5)[0]
    twin = Twin(net, HardwareConfig(lanes=lanes, weight_ram=["spram", "block"]))
    empty = twin.run(spikes)
    for w in weight_cfg_words(net, [0]):
        assert twin.cfg(*w)
    loaded = twin.run(spikes)
    assert (m := RunResult.from_simulation(net, simulate(net, spikes[None]), 0).mismatch(loaded)) is None, m
    dut = NetworkCore(net, HardwareConfig(lanes=lanes, weight_ram=["spram", "block"]), spram_primitive="model")
    got = {}

    async def body(ctx):
        got["empty"] = await run_in_testbench(ctx, dut, spikes)
        for layer, target, row, col, data in weight_cfg_words(net, [0]):
            await _send(ctx, dut.cfg, {"layer": layer, "target": target, "row": row, "col": col, "data": data})
        assert not ctx.get(dut.cfg_error)
        got["loaded"] = await run_in_testbench(ctx, dut, spikes)

    _bench(dut, body)
    assert (m := empty.mismatch(got["empty"])) is None, m
    assert (m := loaded.mismatch(got["loaded"])) is None, m
