"""Yosys (YoWASP) synthesis of the default digits network: weights and neuron state in block RAM.

Prints the LUT and RAM counts (run with -s to see them).
"""
import pytest

from spikegate.datasets import load_network
from spikegate.hdl.export import export_verilog
from spikegate.hdl.synth import synthesize, synthesize_script
from spikegate.model.hardware import HardwareConfig

BLOCK_PRIMITIVES = {"ice40": ("$__ICE40_RAM4K_", "$__ICE40_SPRAM_"), "ecp5": ("$__DP16KD_", "$__PDPW16KD_")}


def expected_memories(net):
    names = ["input_buffer"]
    for l, layer in enumerate(net.layers):
        names += [f"layer{l}.synapses.weights", f"layer{l}.synapses.accs", f"layer{l}.v_mem", f"layer{l}.bias_mem"]
        if layer.refractory:
            names.append(f"layer{l}.r_mem")
        if l == len(net.layers) - 1 and not layer.readout:
            names.append(f"layer{l}.count_mem")
        if l < len(net.layers) - 1:
            names.append(f"words{l}.mem")  # the spike-word queue to the next layer
    return names


@pytest.mark.parametrize("family,lanes", [("ice40", 1), ("ecp5", 4)])
def test_default_network_in_block_ram(tmp_path, capsys, family, lanes):
    net = load_network()
    path = tmp_path / "top.v"
    export_verilog(net, path, HardwareConfig(lanes=lanes, max_events=1024))
    r = synthesize(path, family)
    with capsys.disabled():  # the counts are part of the test's output, also without -s
        print(f"\n{family} digits {'-'.join(map(str, net.shape))} lanes={lanes}: {r['luts']} LUTs, "
              f"{r['rams']} block RAMs, {r['lutrams']} LUT RAMs; cells: "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["cells"].items()) if not k.startswith("$")))
    for name in expected_memories(net):
        assert name in r["memories"], f"memory {name} was not mapped to RAM (became flip-flops/logic)"
        assert r["memories"][name] in BLOCK_PRIMITIVES[family], (
            f"memory {name} became {r['memories'][name]}, not block RAM")
    assert r["rams"] >= len(expected_memories(net))
    assert r["luts"] > 0


def test_shallow_group_memories_become_flip_flops_with_registered_reads(tmp_path):
    """LayerGeometry.groups_in_logic: at lanes (32, 8) both digits layers have 2 groups, so on the
    ECP5 with registered reads their accumulators, membranes and biases are flip-flops, not a
    DP16KD row each; their weights and spike words stay in block RAM, and the pre-check's
    estimate, which leaves the flip-flop memories out, is still a lower bound of the blocks.
    Synthesised as the OrangeCrab's build does it (its --lanes auto choice; the board top and its
    own Yosys script), because only the whole design showed that the spike-word queue's lead
    logic, as first written, made ABC9 fail an assertion; the core alone synthesised."""
    from spikegate.boards import build as board_build, fit
    from spikegate.boards.flow import extract
    from spikegate.boards.targets import get_board
    board, net = get_board("orangecrab-25f"), load_network()
    hw = board_build.hardware_config(board, net, [32, 8], max_events=board_build.default_max_events(net))
    assert hw.registered_reads and [g.groups_in_logic for g in hw.geometry(net)] == [True, True]
    # The build's defaults: the board's clock and baud, its choices of encoder and streaming.
    extract(board_build.board_top_plan(board, net, hw), tmp_path)
    r = synthesize_script(tmp_path, (tmp_path / "top.ys").read_text(), "ecp5", "top")
    core = "link.core."
    for l in range(2):
        for name in ("synapses.accs", "v_mem", "bias_mem"):
            assert f"{core}layer{l}.{name}" not in r["memories"], r["memories"]
    assert r["memories"][f"{core}words0.mem"] in BLOCK_PRIMITIVES["ecp5"], r["memories"]
    assert fit.estimate(board, net, hw)["blocks"] <= r["rams"]


def test_synthesis_past_its_timeout_is_stopped(tmp_path):
    """A Yosys run that outlasts ``timeout`` is stopped and reported, not waited for."""
    path = tmp_path / "top.v"
    export_verilog(load_network(), path, HardwareConfig(lanes=1, max_events=1024))
    with pytest.raises(RuntimeError, match=r"yosys synth_ice40 did not finish within timeout = 0\.5 s"):
        synthesize(path, "ice40", timeout=0.5)


def test_spram_weights_on_ice40(tmp_path):
    """weight_ram='spram' instantiates SB_SPRAM256KA for the weights; state stays in EBR."""
    from spikegate.model.random import random_network
    net = random_network(3, (40, 24, 6), weight_bits=8, membrane_bits=12, leak="shift", readout=False)
    path = tmp_path / "top.v"
    export_verilog(net, path, HardwareConfig(lanes=2, max_events=256, weight_ram=["spram", "block"]))
    r = synthesize(path, "ice40")
    print(f"\nice40 40-24-6 lanes=2, layer-0 weights in SPRAM: {r['luts']} LUTs, "
          f"{r['cells'].get('SB_SPRAM256KA', 0)} SPRAM, {r['cells'].get('SB_RAM40_4K', 0)} EBR")
    assert r["cells"].get("SB_SPRAM256KA") == 1
    assert r["memories"].get("layer1.synapses.weights") == "$__ICE40_RAM4K_"
    assert r["memories"].get("layer0.v_mem") == "$__ICE40_RAM4K_"


@pytest.mark.slow
def test_mnist_sized_network_fits_up5k(tmp_path):
    """784-128-10 (8-bit weights, 802 kbit in layer 0): layer-0 weights in the 4 SPRAMs, the rest
    in EBR; prints whether it fits an iCE40 UP5K (30 EBR, 4 SPRAM, 5280 LUTs)."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "bench"))
    from hw_cycles import mnist_sized_network
    net, _ = mnist_sized_network()
    path = tmp_path / "top.v"
    export_verilog(net, path, HardwareConfig(lanes=2, max_events=2048, weight_ram=["spram", "block"]))
    r = synthesize(path, "ice40")
    ebr, spram = r["cells"].get("SB_RAM40_4K", 0), r["cells"].get("SB_SPRAM256KA", 0)
    print(f"\nice40 784-128-10 lanes=2: {r['luts']} LUTs, {ebr} EBR, {spram} SPRAM")
    assert spram == 4 and ebr <= 30 and r["luts"] <= 5280
