"""HardwareConfig.registered_reads: a register behind every block RAM read of the core.

The option's contract (model tier): the refusals, the read latency of the idle-time ports, and
one more cycle in every layer step, which the twin's cycle count carries.
"""
import numpy as np
import pytest

from spikegate.model.core import NetworkCore as Twin, batch_cycles
from spikegate.model.simulate import simulate
from spikegate.model.blocks import weight_parts
from spikegate.model.hardware import HardwareConfig, param_latency, read_latency
from spikegate.model.random import random_network, random_spikes


def test_read_latency_and_drain():
    net = random_network(1, (12, 9, 5))
    plain = HardwareConfig(lanes=2).geometry(net)
    reg = HardwareConfig(lanes=2, registered_reads=True).geometry(net)
    assert (read_latency(plain), read_latency(reg)) == (1, 2)
    assert (param_latency(plain), param_latency(reg)) == (1, 3)
    for p, r in zip(plain, reg):
        assert (p.read_stages, r.read_stages) == (0, 1)
        assert r.drain_stages == p.drain_stages + 1
        assert r.cycles(3) == p.cycles(3) + 1


@pytest.mark.parametrize("lanes, parts, stages", [
    # 300 inputs, 8 neurons, 8-bit weights. 2 lanes: 4 groups, 1,200 words of 16 bits, kept whole
    # (<= 2 x 1,024, the DP16KD's depth at 18 bits) and two blocks deep: two read stages.
    (2, 2, 2),
    # 8 lanes: 1 group, 300 words of 64 bits: whole, within one block's 512 words deep.
    (8, 1, 1),
    # 1 lane: 8 groups, 2,400 words of 8 bits: kept whole (<= 2 x 2,048, the depth at 9 bits),
    # two blocks deep.
    (1, 2, 2)])
def test_two_read_stages_where_a_weight_memory_is_deeper_than_a_block(lanes, parts, stages):
    net = random_network(4, (300, 8, 4), weight_bits=8)
    reg = HardwareConfig(lanes=lanes, registered_reads=True).geometry(net)
    assert weight_parts(reg[0]) == parts and weight_parts(reg[1]) == 1
    # one count for every layer: the second layer's memory is shallow, its stages are the first's
    assert [g.read_stages for g in reg] == [stages, stages]
    assert (read_latency(reg), param_latency(reg)) == (2, 3)
    plain = HardwareConfig(lanes=lanes).geometry(net)
    assert [r.cycles(3) - p.cycles(3) for p, r in zip(plain, reg)] == [stages, stages]


@pytest.mark.parametrize("schedule", ["inflight", "sequential"])
def test_twin_costs_a_cycle_more_per_layer_step(schedule):
    net = random_network(2, (10, 8, 4), timesteps=5)
    spikes = random_spikes(2, 3, 5, 10, p=0.4)
    for sample in spikes:
        plain = Twin(net, HardwareConfig(lanes=2, schedule=schedule)).run(sample)
        reg = Twin(net, HardwareConfig(lanes=2, schedule=schedule, registered_reads=True)).run(sample)
        assert plain.mismatch(reg, cycles=False) is None
        T, L = len(sample), len(net.layers)
        # inflight: one more cycle in each of the T + L - 1 waves; sequential: in each of T * L layer steps
        assert reg.cycles - plain.cycles == (T + L - 1 if schedule == "inflight" else T * L)
    # the vectorised formula agrees with the twin, sample for sample
    res = simulate(net, spikes)
    want = [Twin(net, HardwareConfig(lanes=2, schedule=schedule, registered_reads=True)).run(s).cycles for s in spikes]
    assert batch_cycles(net, 2, spikes, res, schedule=schedule, registered_reads=True).tolist() == want


def test_refusals_name_the_field():
    with pytest.raises(TypeError, match="registered_reads must be True or False, got 1"):
        HardwareConfig(registered_reads=1)
    net = random_network(3, (12, 9, 5), weight_bits=8)
    with pytest.raises(ValueError, match="registered_reads = True is not valid with input_ram = 'spram'"):
        HardwareConfig(registered_reads=True, input_ram="spram").geometry(net)
    with pytest.raises(ValueError, match=r"layer 0 \(.*\): registered_reads = True is not valid for SPRAM weights"):
        HardwareConfig(registered_reads=True, weight_ram="spram").geometry(net)


@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
def test_shallow_group_memories_are_flip_flops_only_with_registered_reads(lanes):
    # 7 and 3 neurons: at lanes 4 the layers have 2 and 1 groups, at lanes 1 7 and 3; refractory
    # counters and (the last layer's) spike counters as well as accumulators, membranes and biases.
    from spikegate.boards.fit import memory_shapes
    from spikegate.model.layer import GROUP_MEMORIES, LOGIC_GROUPS
    net = random_network(4, (12, 7, 3), refractory=2, readout=False)
    for reads in (False, True):
        hw = HardwareConfig(lanes=lanes, registered_reads=reads)
        names = {name for name, _, _ in memory_shapes(net, hw)}
        for l, g in enumerate(hw.geometry(net)):
            assert g.groups_in_logic == (reads and -(-net.layers[l].n // lanes) <= LOGIC_GROUPS)
            kept = set(g.memory_bits()) & set(GROUP_MEMORIES)
            assert kept == set(GROUP_MEMORIES) - ({"counts"} if l == 0 else set())
            # the block-RAM estimate counts exactly the memories that stay in block RAM
            for name in kept:
                assert (f"layer {l} {name}" in names) == (not g.groups_in_logic), (l, name)
