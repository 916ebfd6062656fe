"""HardwareConfig.registered_reads through the host link: the gateware link (UART included) with its
block RAM reads registered, byte for byte against its twin (Amaranth simulator), and what identify
tells the host about it (model tier). The engine-level harnesses cover the option too
(test_link_engine, test_link_checksum, test_encode_link: answers and cycle counts)."""
import numpy as np
import pytest

from spikegate.model import link as proto
from spikegate.model.core import NetworkCore as CoreTwin
from spikegate.model.encode import bernoulli_state
from spikegate.model.hardware import HardwareConfig, param_latency, read_latency
from spikegate.model.link import CfgTarget, Cmd, Status, encode_request
from spikegate.model.protocol import IDENT_REGISTERED, IDENT_STREAM, Encoding, field, IDENTIFY_HEAD
from spikegate.model.random import random_network, random_spikes
from spikegate.model.simulate import simulate
from test_encode_link import batch_payload, encode_payload
from test_link_hdl import check, make
from test_link_engine import write

# 8 inputs, 6 steps: neighbouring outputs of the first sample spike differently, so a READ that
# peeked an output's neighbour (a read answered a cycle late) would show.
NET = random_network(2, (8, 6, 4), readout=False, timesteps=6)
SPIKES = random_spikes(2, 2, 6, 8, p=0.6)


def _script(geo):
    levels = [0, 255, 128, 40, 200, 7, 90, 255]
    ev = [proto.encode_events(s, geo) for s in SPIKES]
    wlo, whi = geo.value_range(1, CfgTarget.WEIGHT)
    return [
        encode_request(Cmd.IDENTIFY, 1),
        encode_request(Cmd.LOAD, 2, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + ev[0]),
        encode_request(Cmd.READ, 3),
        encode_request(Cmd.CHECKSUM, 4),
        encode_request(Cmd.WRITE, 5, write(1, CfgTarget.WEIGHT, 2, 1, [whi, wlo, 3], geo)),
        encode_request(Cmd.WRITE, 6, write(0, CfgTarget.BIAS, 0, 0, [5, -5, 0], geo)),
        encode_request(Cmd.CHECKSUM, 7),
        encode_request(Cmd.SET_NET_ID, 8, bytes(range(16))),
        encode_request(Cmd.IDENTIFY, 9),
        encode_request(Cmd.LOAD, 10, bytes([proto.LOAD_CLEAR]) + ev[1]),
        encode_request(Cmd.RUN, 11),
        encode_request(Cmd.READ, 12),
        encode_request(Cmd.ENCODE, 13, encode_payload(Encoding.RATE, 0, levels)),
        encode_request(Cmd.BATCH, 14, batch_payload(Encoding.BERNOULLI, [bernoulli_state(3, i) for i in range(2)],
                                                    [levels, levels[::-1]])),
        encode_request(Cmd.STATUS, 15),
    ]


@pytest.mark.parametrize("stream", [True, False])
def test_link_matches_twin(stream):
    """Every answer byte of a dense network's session, over the UART: identify, LOAD-and-run, READ,
    CHECKSUM before and after writes, SET_NET_ID, RUN, ENCODE and BATCH (``stream``: the answer FIFO
    and two payload banks; without it the identify payload sits in a block RAM)."""
    ref = simulate(NET, SPIKES)
    assert (np.diff(ref.counts[0]) != 0).all()
    hw, tw = make(NET, registered_reads=True, stream=stream)
    assert hw.core.hw.registered_reads and tw.core.hw.registered_reads and hw.ident_block == (not stream)
    script = _script(tw.geo)
    got = check(hw, tw, script)
    statuses = [proto.decode_response(g)[2] for g in got]
    assert statuses == [Status.OK] * len(script)
    ident = proto.Identity.parse(proto.decode_response(got[0])[3])
    assert ident.registered_reads and ident.stream == stream and ident.hardware() == tw.geo.hardware()
    # the first run's answer: the contract's outputs, and the cycles of a core with registered reads
    p = proto.decode_response(got[1])[3]
    counts, mems = proto.decode_outputs(p[4:], tw.geo)
    assert counts.tolist() == ref.counts[0].tolist() and mems.tolist() == ref.membranes[-1][0].tolist()
    assert proto.decode_response(got[2])[3] == p[4:]
    plain = CoreTwin(NET, HardwareConfig(lanes=2, max_events=64)).run(SPIKES[0]).cycles
    T, L = NET.timesteps, len(NET.layers)
    assert proto.from_le(p[:4]) == CoreTwin(NET, ident.hardware()).run(SPIKES[0]).cycles == plain + T + L - 1
    assert proto.decode_response(got[3])[3] == proto.expected_checksum(NET).to_bytes(4, "little")
    assert proto.decode_response(got[6])[3] == proto.expected_checksum(tw.net).to_bytes(4, "little")


def test_prebuilt_core_brings_its_option():
    from spikegate.hdl.core import NetworkCore
    from spikegate.hdl.link import HostLink
    core = NetworkCore(NET, HardwareConfig(lanes=2, max_events=64, registered_reads=True))
    hw = HostLink(NET, clk_freq=400_000, baud=100_000, max_events=64, core=core)
    assert hw.geo.registered_reads and proto.Identity.parse(
        hw.identify_static + bytes(1 + proto.NET_ID_BYTES)).registered_reads
    with pytest.raises(ValueError, match="registered_reads = False is not valid with a core built with "
                                         "registered_reads = True"):
        HostLink(NET, clk_freq=400_000, baud=100_000, max_events=64, core=core, registered_reads=False)
    with pytest.raises(TypeError, match="registered_reads must be True, False or None, got 1"):
        HostLink(NET, clk_freq=400_000, baud=100_000, max_events=64, registered_reads=1)


def test_identify_flag_and_the_twin_it_builds():
    """Model tier: the flag bit, its parse, and the HardwareConfig a host builds from identify."""
    geo = proto.LinkGeometry.of(NET, 2, 12_000_000, 115_200, 64, 64, stream=True, registered_reads=True)
    static = proto.identify_static(geo, proto.structure_digest(NET), proto.content_digest(NET))
    flags = static[field(IDENTIFY_HEAD, "flags").offset]
    assert flags == IDENT_STREAM | IDENT_REGISTERED == 0x06
    ident = proto.Identity.parse(static + bytes(1 + proto.NET_ID_BYTES))
    assert ident.registered_reads and ident.stream
    assert ident.hardware() == HardwareConfig(lanes=(2, 2), max_events=64, registered_reads=True) == geo.hardware()
    off = proto.LinkGeometry.of(NET, 2, 12_000_000, 115_200, 64, 64)
    plain = proto.identify_static(off, proto.structure_digest(NET), proto.content_digest(NET))
    assert plain[field(IDENTIFY_HEAD, "flags").offset] == 0 and not proto.Identity.parse(
        plain + bytes(1 + proto.NET_ID_BYTES)).hardware().registered_reads
    # the link twin runs its samples on a core with the option: a cycle more per layer step
    tw = proto.HostLink(NET, lanes=2, max_events=64, registered_reads=True)
    geos = tw.core.hw.geometry(NET)
    assert (read_latency(geos), param_latency(geos)) == (2, 3)
    run = tw.feed(encode_request(Cmd.LOAD, 1, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN])
                                 + proto.encode_events(SPIKES[0], tw.geo)))
    assert proto.from_le(proto.decode_response(run)[3][:4]) == CoreTwin(NET, geo.hardware()).run(SPIKES[0]).cycles


def test_board_top_and_build_take_the_option(tmp_path, capsys):
    """BoardTop builds its core and link with the option (identify says so); ``build`` and
    ``spikegate build --registered-reads`` refuse what the option does not cover yet, naming it,
    before any tool runs."""
    import time
    from pathlib import Path
    from spikegate.boards.build import build
    from spikegate.boards.targets import get_board
    from spikegate.boards.top import BoardTop, pll_for
    from spikegate.cli import main
    board = get_board("ulx3s-85f")
    for on in (False, True):
        top = BoardTop(board, NET, HardwareConfig(lanes=2, max_events=64, registered_reads=on), pll=pll_for(board))
        assert top.link.core.hw.registered_reads == top.link.geo.registered_reads == on
        assert proto.Identity.parse(top.link.identify_static + bytes(1 + proto.NET_ID_BYTES)).registered_reads == on
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="registered_reads = True is not valid for SPRAM weights"):
        build("icebreaker", None, weight_ram="spram", registered_reads=True, out_dir=tmp_path / "a")
    with pytest.raises(TypeError, match="registered_reads must be True or False, got 'yes'"):
        build("icebreaker", None, registered_reads="yes", out_dir=tmp_path / "b")
    temporal = Path(__file__).parent / "data" / "temporal-digits-w8.json"
    assert main(["build", "--board", "ulx3s-85f", "--net", str(temporal), "--registered-reads",
                 "--out", str(tmp_path / "c")]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "registered_reads = True is not valid for a layer with synaptic delays" in err
    assert time.monotonic() - t0 < 30 and not any(tmp_path.iterdir())



def test_host_builds_its_twin_from_identify(capsys):
    """Model tier: against a board (the link twin on a socket) with registered reads, the host's
    twin predicts every run's cycles, two more per layer step than a board without them (digits at
    4 lanes: layer 0's weights are two blocks deep, so two read stages; 2 (T + L - 1) a sample, the
    waves of the inflight schedule), and `spikegate run` says so."""
    import json
    from test_host import TwinServer
    from spikegate import datasets
    from spikegate.board_run import run_on_board
    from spikegate.cli import main
    digits = datasets.load_network(None)
    runs = {}
    for on in (False, True):
        srv = TwinServer(proto.HostLink(digits, lanes=4, registered_reads=on))
        try:
            runs[on] = run_on_board(digits, srv.url, data="digits", samples=6, seed=1)
            if on:
                assert main(["run", "--board", "sim", "--port", srv.url, "--samples", "2", "--json"]) == 0
                out = json.loads(capsys.readouterr().out)
                assert out["registered_reads"] and out["read_stages"] == 2 and out["cycles_match"] == 2
                assert main(["run", "--board", "sim", "--port", srv.url, "--samples", "2"]) == 0
                assert "block RAM reads registered: 2 cycles more per layer step" in capsys.readouterr().out
        finally:
            srv.close()
    for on, r in runs.items():
        assert r.ok and r.cycles_match == r.samples == 6 and r.registered_reads == on
    T, L = digits.timesteps, len(digits.layers)
    assert runs[True].cycles_per_sample == runs[False].cycles_per_sample + 2 * (T + L - 1)


FLIP_FLOPS = {"$dff", "$dffe", "$sdff", "$sdffe", "$sdffce"}


def _link_read_users(tmp_path, **kw) -> dict[str, set]:
    """Yosys (proc, flatten, opt_dff: no synthesis) on a HostLink: for each of the link's memories
    (the core's are left out: its own tests cover them), the (cell type, port) its read data feed."""
    import json
    import subprocess
    from amaranth.back import rtlil
    from spikegate.boards.toolchain import resolve
    from spikegate.hdl.link import HostLink
    top = HostLink(NET, lanes=2, clk_freq=400_000, baud=100_000, max_events=64, max_payload=64, **kw)
    (tmp_path / "link.il").write_text(rtlil.convert(top, name="top"))
    # (YoWASP tools see the working folder only: relative paths)
    subprocess.run([resolve("yosys"), "-q", "-p", "read_rtlil link.il; hierarchy -top top; proc; flatten; "
                    "opt_clean; opt_dff; opt_clean; write_json link.json"], cwd=tmp_path, check=True, timeout=300,
                   capture_output=True)
    cells = json.loads((tmp_path / "link.json").read_text())["modules"]["top"]["cells"]
    users = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "input":
                for b in bits:
                    users.setdefault(b, set()).add((c["type"], port))
    return {c["parameters"]["MEMID"].lstrip("\\"): set().union(*(users.get(b, set()) for b in c["connections"]["DATA"]))
            for c in cells.values() if c["type"].startswith("$memrd") and "core." not in c["parameters"]["MEMID"]}


@pytest.mark.parametrize("stream", [True, False])
def test_link_block_ram_reads_go_into_flip_flops(tmp_path, stream):
    """The option's point: every memory read of the link (payload buffer, encoder remainders,
    identify payload and network id, answer FIFO) feeds a flip-flop's D input and nothing else, so
    the logic behind it starts from a register. Without the option they feed logic."""
    plain = _link_read_users(tmp_path, stream=stream)
    registered = _link_read_users(tmp_path, stream=stream, registered_reads=True)
    memories = {"decoder.buf", "engine.encoder.rem"} | ({"engine.answer_fifo.storage", "engine.answer.rom",
                                                         "engine.answer.nid"} if stream else {"engine.answer.ident"})
    assert set(registered) == set(plain) == memories
    for mem, users in registered.items():
        assert users and all(t in FLIP_FLOPS and port == "D" for t, port in users), (mem, users)
    assert any(t not in FLIP_FLOPS for users in plain.values() for t, _ in users)


def test_build_report_names_the_option():
    """Model tier: the printed build report says when the block RAM reads are registered."""
    from spikegate.boards.report import format_report
    r = {"title": "T", "device": "D", "lanes": 2, "stream": True, "utilization": {},
         "network": {"source": "n", "shape": [8, 4], "timesteps": 4, "readout": False},
         "clock": {"pll_mhz": 25.0, "oscillator_mhz": 25.0},
         "timing": {"fmax_mhz": 50.0, "constraint_mhz": 25.0, "met": True, "slack_ns": 1.0},
         "performance": {"cycles_per_sample": {"mean": 1, "min": 1, "max": 1}, "workload": "w"}}
    assert "block RAM reads registered" not in format_report(r)
    assert "block RAM reads registered" not in format_report({**r, "registered_reads": False})
    assert "oscillator through the PLL; block RAM reads registered" in format_report({**r, "registered_reads": True})


def test_the_board_chooses_registered_reads():
    """Model tier: ``build``'s default (boards.fit.choose_registered_reads) registers the reads on
    the ECP5 boards for a network the option takes and whose memories still fit; never on the
    iCE40 or Gowin boards, nor for a network the option does not take yet."""
    from pathlib import Path
    from spikegate import datasets
    from spikegate.boards import fit
    from spikegate.boards.targets import get_board
    from spikegate.model.network import Network
    digits = datasets.load_network(None)
    hw = HardwareConfig(lanes=4)
    want = {"ulx3s-85f": True, "orangecrab-25f": True, "icebreaker": False, "tangnano9k": False}
    for name, on in want.items():
        assert fit.choose_registered_reads(get_board(name), digits, hw) is on, name
    temporal = Network.load(Path(__file__).parent / "data" / "temporal-digits-w8.json")
    assert not fit.choose_registered_reads(get_board("ulx3s-85f"), temporal, HardwareConfig(lanes=4))
    # 520 x 128 at 4 lanes: 16,640 weight words, 33 blocks deep whole, 64 blocks as 1-bit slices
    # (2 deep each); the OrangeCrab 25F's 56 blocks hold the design only without registered reads.
    wide = random_network(7, (520, 128, 10), weight_bits=8)
    oc = get_board("orangecrab-25f")
    assert fit.estimate(oc, wide, hw)["blocks"] <= oc.bram_blocks
    assert fit.estimate(oc, wide, HardwareConfig(lanes=4, registered_reads=True))["blocks"] > oc.bram_blocks
    assert not fit.choose_registered_reads(oc, wide, hw)
    assert fit.choose_registered_reads(get_board("ulx3s-85f"), wide, hw)


def test_build_command_leaves_the_choice_to_the_board_unless_told():
    """Model tier: ``spikegate build`` passes None (the board's choice) unless ``--registered-reads``
    or ``--no-registered-reads`` says; ``spikegate export`` has no board, so its flag is on or off."""
    from spikegate.cli import build_parser
    p = build_parser()
    got = {tuple(extra): p.parse_args(["build", "--board", "ulx3s-85f", *extra]).registered_reads
           for extra in ([], ["--registered-reads"], ["--no-registered-reads"])}
    assert got == {(): None, ("--registered-reads",): True, ("--no-registered-reads",): False}
    assert p.parse_args(["export", "-o", "x.v"]).registered_reads is False
    assert p.parse_args(["export", "-o", "x.v", "--registered-reads"]).registered_reads is True
