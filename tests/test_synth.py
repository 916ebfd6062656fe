"""Yosys (YoWASP) synthesis of the default digits network: weights and neuron state in block RAM.

Prints the LUT and RAM counts (run with -s to see them).
"""
import pytest

from spikeforge.datasets import load_network
from spikeforge.hdl.export import export_verilog
from spikeforge.hdl.synth import synthesize

BLOCK_PRIMITIVES = {"ice40": ("$__ICE40_RAM4K_", "$__ICE40_SPRAM_"), "ecp5": ("$__DP16KD_", "$__PDPW16KD_")}


def expected_memories(net):
    names = ["input_buffer"]
    for l, layer in enumerate(net.layers):
        names += [f"layer{l}.synapses.weights", f"layer{l}.synapses.accs", f"layer{l}.v_mem", f"layer{l}.bias_mem"]
        if layer.refractory:
            names.append(f"layer{l}.r_mem")
        if l == len(net.layers) - 1 and not layer.readout:
            names.append(f"layer{l}.count_mem")
    return names


@pytest.mark.parametrize("family,lanes", [("ice40", 1), ("ecp5", 4)])
def test_default_network_in_block_ram(tmp_path, family, lanes):
    net = load_network()
    path = tmp_path / "top.v"
    export_verilog(net, path, lanes=lanes, max_events=1024)
    r = synthesize(path, family)
    print(f"\n{family} digits {'-'.join(map(str, net.shape))} lanes={lanes}: {r['luts']} LUTs, "
          f"{r['rams']} block RAMs, {r['lutrams']} LUT RAMs; cells: "
          + ", ".join(f"{k} {v}" for k, v in sorted(r["cells"].items()) if not k.startswith("$")))
    for name in expected_memories(net):
        assert name in r["memories"], f"memory {name} was not mapped to RAM (became flip-flops/logic)"
        assert r["memories"][name] in BLOCK_PRIMITIVES[family], (
            f"memory {name} became {r['memories'][name]}, not block RAM")
    assert r["rams"] >= len(expected_memories(net))
    assert r["luts"] > 0
