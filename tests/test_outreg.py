"""boards.outreg: a fabric flip-flop that only registers a DP16KD read becomes the block's output
register, and nothing else does; checked on Yosys' real ECP5 netlist of a small design, and
through nextpnr to the bitstream's configuration."""
import json
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib.memory import Memory

from spikegate.boards.flow import NO_RW_CHECK_SCRIPT
from spikegate.boards.outreg import merge_in_netlist, merge_output_registers
from spikegate.boards.toolchain import resolve
from spikegate.hdl.synapse import BLOCK_RAM_NO_COLLISION
from spikegate.model.procgroup import run_in_group


DEPTH, WIDTH = 512, 8
# memory -> (how its read word is registered, whether the block may take the register)
CASES = {
    "plain": ("a reset-less, always enabled flip-flop", True),
    "enabled": ("a flip-flop with an enable", False),
    "reset": ("a flip-flop the domain's reset clears", False),
    "tapped": ("the word also read by logic before its flip-flop", False),
    "read_enable": ("a read port with an enable", False),
    "wide": ("a plain flip-flop behind a 36-bit wide block (its word on both ports' outputs)", False),
}
WIDTHS = {"wide": 32}  # 512 x 32 bits: one DP16KD in its 36-bit mode


class _Reads(Elaboratable):
    """One block RAM per case, written through one port and read through another."""

    def __init__(self):
        self.we, self.waddr, self.wdata = Signal(), Signal(range(DEPTH)), Signal(max(WIDTHS.values()))
        self.raddr, self.en = Signal(range(DEPTH)), Signal()
        self.outs = {name: Signal(WIDTHS.get(name, WIDTH), name=f"out_{name}") for name in CASES}
        self.tap = Signal(WIDTH)  # (the "tapped" case's word, read by logic too)

    def elaborate(self, platform):
        m = Module()
        for name in CASES:
            width = WIDTHS.get(name, WIDTH)
            init = [(0x9E3779B1 * i) % (1 << width) for i in range(DEPTH)]
            m.submodules[name] = mem = Memory(shape=width, depth=DEPTH, init=init, attrs=BLOCK_RAM_NO_COLLISION)
            wr = mem.write_port()
            rd = mem.read_port()
            m.d.comb += [wr.en.eq(self.we), wr.addr.eq(self.waddr), wr.data.eq(self.wdata[:width]), rd.addr.eq(self.raddr)]
            if name == "read_enable":
                m.d.comb += rd.en.eq(self.en)
            reg = Signal(width, name=f"reg_{name}", reset_less=name != "reset")
            if name == "enabled":
                with m.If(self.en):
                    m.d.sync += reg.eq(rd.data)
            else:
                m.d.sync += reg.eq(rd.data)
            if name == "tapped":
                m.d.comb += self.tap.eq(rd.data ^ reg)
            m.d.comb += self.outs[name].eq(reg)
        return m

    def ports(self):
        return [self.we, self.waddr, self.wdata, self.raddr, self.en, self.tap, *self.outs.values()]


@pytest.fixture(scope="module")
def netlist(tmp_path_factory):
    work = tmp_path_factory.mktemp("outreg")
    top = _Reads()
    (work / "top.il").write_text(rtlil.convert(top, name="top", ports=top.ports()))
    (work / "top.ys").write_text(f"read_rtlil top.il\n{NO_RW_CHECK_SCRIPT}\nsynth_ecp5 -top top -json top.json\n")
    status = run_in_group([resolve("yosys"), "-q", "top.ys"], cwd=work, stdout=subprocess.DEVNULL,
                          stderr=subprocess.STDOUT, timeout=600)
    assert status == 0
    return work / "top.json"


def _cells(d):
    return d["modules"]["top"]["cells"]


def _block_of(cells, name):
    found = [c for n, c in cells.items() if c["type"] == "DP16KD" and n.startswith(f"{name}.")]
    assert len(found) == 1, f"memory {name}: {len(found)} DP16KD"
    return found[0]


def test_only_a_plain_read_flip_flop_goes_into_its_block(netlist):
    d = json.loads(netlist.read_text())
    cells = _cells(d)
    before = {n: c for n, c in cells.items() if c["type"] == "TRELLIS_FF"}
    # Every case is a block RAM whose read port has no output register yet.
    read_port = {}
    for name in CASES:
        bram = _block_of(cells, name)
        read_port[name] = "B" if bram["connections"]["WEB"] == ["0"] else "A"
        assert bram["parameters"][f"REGMODE_{read_port[name]}"] == "NOREG"
    assert int(_block_of(cells, "wide")["parameters"]["DATA_WIDTH_B"], 2) == 36
    assert merge_output_registers(d) == 1
    cells = _cells(d)
    for name, (what, merged) in CASES.items():
        x = read_port[name]
        bram = _block_of(cells, name)
        assert bram["parameters"][f"REGMODE_{x}"] == ("OUTREG" if merged else "NOREG"), what
        regs = [n for n in cells if n.startswith(f"out_{name}_") and cells[n]["type"] == "TRELLIS_FF"]
        assert (len(regs) == 0) if merged else (len(regs) == WIDTHS.get(name, WIDTH)), what
    gone = set(before) - set(cells)
    assert len(gone) == WIDTH and all(n.startswith("out_plain_") for n in gone)
    # The block now drives the output the flip-flops drove.
    plain = _block_of(cells, "plain")
    out_bits = d["modules"]["top"]["ports"]["out_plain"]["bits"]
    assert sorted(plain["connections"][f"DO{read_port['plain']}{i}"][0] for i in range(WIDTH)) == sorted(out_bits)


def test_a_second_pass_changes_nothing(netlist, tmp_path):
    path = tmp_path / "top.json"
    path.write_text(netlist.read_text())
    assert merge_in_netlist(path) == 1
    once = path.read_text()
    assert merge_in_netlist(path) == 0
    assert path.read_text() == once
    assert not list(tmp_path.glob("*.tmp"))


def test_nextpnr_configures_the_output_register(netlist, tmp_path):
    """The parameter reaches the block's configuration: nextpnr's text configuration (what ecppack
    turns into the bitstream) sets REGMODE_B or _A to OUTREG for exactly the merged port."""
    path = tmp_path / "top.json"
    path.write_text(netlist.read_text())
    assert merge_in_netlist(path) == 1
    status = run_in_group([resolve("nextpnr-ecp5"), "--quiet", "--25k", "--package", "CABGA381", "--json", "top.json",
                           "--textcfg", "top.config", "--timing-allow-fail"], cwd=tmp_path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=600)
    assert status == 0
    config = (tmp_path / "top.config").read_text()
    assert config.count("OUTREG") == 1


# The plain case made a different circuit, one way at a time: the pass must then leave it.
CHANGES = {
    "flip-flop reset through an inverted LSR": ("ff", "LSRMUX", "INV"),
    "flip-flop on the inverted clock": ("ff", "CLKMUX", "INV"),
    "flip-flop powering up at 1": ("ff", "REGSET", "SET"),
    "flip-flop under the global set/reset": ("ff", "GSR", "ENABLED"),
    "block read on the inverted clock": ("bram", "CLKBMUX", "INV"),
    "block output register disabled": ("bram_conn", "OCEB", ["0"]),
    "block port also writing": ("bram_conn", "WEB", ["1"]),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_plain_read_made_different_is_left_alone(netlist, change):
    d = json.loads(netlist.read_text())
    cells = _cells(d)
    where, key, value = CHANGES[change]
    plain = _block_of(cells, "plain")
    assert plain["connections"]["WEB"] == ["0"]  # port B reads (what the changes below assume)
    if where == "ff":
        for n, c in cells.items():
            if n.startswith("out_plain_") and c["type"] == "TRELLIS_FF":
                c["parameters"][key] = value
    elif where == "bram":
        plain["parameters"][key] = value
    else:
        plain["connections"][key] = value
    assert merge_output_registers(d) == 0, change
    assert _block_of(_cells(d), "plain")["parameters"]["REGMODE_B"] == "NOREG"
