"""`spikegate build --max-payload N`: the host link's request payload buffer as a build option,
checked before any tool runs, baked into the board top's link (identify block, payload buffer),
the cache key, the build report and the block-RAM pre-check."""
from __future__ import annotations

import time

import pytest
from amaranth.lib.memory import Memory

import spikegate
from spikegate.boards import fit
from spikegate.boards.build import build, default_max_events
from spikegate.boards.report import format_report
from spikegate.boards.targets import get_board
from spikegate.boards.top import BoardTop, pll_for
from spikegate.cli import main
from spikegate.model import Network
from spikegate.model.hardware import HardwareConfig
from spikegate.model.link import Identity, encode_fits
from spikegate.model.protocol import DEFAULT_MAX_PAYLOAD, IDENTIFY_TAIL, layout_len
from spikegate.model.random import random_network


def _digits():
    return Network.load(spikegate.default_network_path())


def _top(board_name, net, max_payload, **kw):
    board = get_board(board_name)
    hw = HardwareConfig(lanes=2, max_events=default_max_events(net))
    return BoardTop(board, net, hw, pll=pll_for(board), max_payload=max_payload, **kw)


def _identity(top) -> Identity:
    # the constant head the bitstream answers IDENTIFY with, plus a clean tail
    return Identity.parse(top.link.identify_static + bytes(layout_len(IDENTIFY_TAIL)))


@pytest.mark.parametrize("value, shown", [("0", "0"), ("15", "15"), ("70000", "70000"), ("-1", "-1")])
def test_cli_refuses_bad_sizes_before_any_tool(capsys, tmp_path, value, shown):
    t0 = time.monotonic()
    assert main(["build", "--board", "ulx3s-85f", "--out", str(tmp_path / "o"), "--max-payload", value]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip() == f"spikegate build: error: --max-payload = {shown} is not valid; " \
                          "valid: an integer from 16 to 65535", err
    assert time.monotonic() - t0 < 5 and not (tmp_path / "o").exists()


def test_cli_refuses_a_non_integer(capsys):
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "ulx3s-85f", "--max-payload", "abc"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "argument --max-payload: invalid int value: 'abc'" in err


@pytest.mark.parametrize("value", [0, 15, 65536, 512.0, True, "1024"])
def test_library_refuses_bad_sizes_before_loading_the_network(tmp_path, value):
    with pytest.raises(ValueError, match=f"max_payload = {value!r} is not valid; valid: an integer from 16 "
                                         "to 65535 bytes"):
        build("ulx3s-85f", tmp_path / "missing.json", max_payload=value, out_dir=tmp_path / "o", cache_dir=tmp_path)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("stream", [True, False])
def test_board_top_link_is_built_with_the_chosen_size(stream):
    net = _digits()
    top = _top("ulx3s-85f", net, 1024, stream=stream)
    assert top.link.max_payload == top.link.geo.max_payload == 1024
    ident = _identity(top)
    assert ident.max_payload == 1024 and ident.stream is stream
    assert _identity(_top("ulx3s-85f", net, DEFAULT_MAX_PAYLOAD, stream=stream)).max_payload == 512
    # the decoder's payload buffer, as elaborated: one bank of 1024 bytes, or two, each byte with
    # its small flag in a ninth bit (free in ECP5 block RAM, up to 2048 x 9 in one DP16KD)
    dec = top.link.elaborate(None)._named_submodules["decoder"][0]
    buf = dec.elaborate(None)._named_submodules["buf"][0]
    assert isinstance(buf, Memory) and buf.shape == dec.word_bits == 9
    assert buf.depth == (2048 if stream else 1024)


class _Stop(Exception):
    pass


def _build_until_the_flow(monkeypatch, tmp_path, max_payload) -> dict:
    """``build`` up to the cache look-up (no tool runs): the board top it made and the cache key."""
    import spikegate.boards.build as b
    seen = {}

    def top(*args, **kw):
        seen["top"] = BoardTop(*args, **kw)
        return seen["top"]

    def fetch(root, key, *args, **kw):
        seen["key"] = key
        raise _Stop

    monkeypatch.setattr(b, "BoardTop", top)
    monkeypatch.setattr(b, "resolve", lambda tool: tool)
    monkeypatch.setattr(b, "tool_identity", lambda tool, path: tool)
    monkeypatch.setattr(b, "fetch", fetch)
    with pytest.raises(_Stop):
        build("ulx3s-85f", None, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", **(
            {} if max_payload is None else {"max_payload": max_payload}))
    return seen


def test_build_passes_the_size_to_the_link_and_the_cache_key(monkeypatch, tmp_path):
    """``build`` (what `spikegate build` calls) bakes the size into the link: its identify block says
    so, the design differs, so does the cache key; the default is 512."""
    got = {mp: _build_until_the_flow(monkeypatch, tmp_path, mp) for mp in (None, 512, 1024)}
    assert _identity(got[None]["top"]).max_payload == 512
    assert _identity(got[1024]["top"]).max_payload == 1024
    assert got[None]["key"] == got[512]["key"] != got[1024]["key"]


def test_fit_estimate_grows_with_the_size():
    net = random_network(0, (784, 32, 10), weight_bits=4, membrane_bits=12, readout=False, timesteps=8)
    hw = HardwareConfig(lanes=2, max_events=default_max_events(net))
    # the bank's words carry the small flag where fit.choose_small_bit keeps it (ECP5: 9-bit blocks)
    for name, per_1024, width in (("icebreaker", 2, 8), ("ulx3s-85f", 0, 9)):
        board = get_board(name)
        est = {mp: fit.estimate(board, net, hw, stream=True, max_payload=mp) for mp in (512, 789, 1024, 4096)}
        bank = {mp: next(r for r in e["memories"] if r["memory"] == "host link second payload bank")
                for mp, e in est.items()}
        assert [bank[mp]["depth"] for mp in est] == [512, 1024, 1024, 4096]
        assert {bank[mp]["width"] for mp in est} == {width}
        assert est[789]["blocks"] == est[1024]["blocks"]
        assert est[1024]["bits"] - est[512]["bits"] == width * 512
        # iCE40 EBRs hold 512 bytes; an ECP5 DP16KD 2048 (9 x 2048)
        assert est[1024]["blocks"] - est[512]["blocks"] == per_1024 // 2
        assert est[4096]["blocks"] > est[1024]["blocks"]
        # the default is what the pre-check has always counted: a 512-byte bank
        assert fit.estimate(board, net, hw, stream=True) == est[512]
        # without streaming the buffer is outside the estimate (see fit.memory_shapes)
        assert fit.estimate(board, net, hw, max_payload=4096) == fit.estimate(board, net, hw)


def test_stream_choice_and_precheck_see_the_size():
    """A design with room for a 512-byte second bank but not a 16 kB one on the iCEBreaker: the
    size decides whether the build streams, and an explicit streaming build is refused."""
    board = get_board("icebreaker")
    net = _digits()
    hw = HardwareConfig(lanes=2, max_events=default_max_events(net))
    assert fit.choose_stream(board, net, hw) and fit.choose_stream(board, net, hw, 512)
    assert not fit.choose_stream(board, net, hw, 32768)
    with pytest.raises(fit.ResourceError) as e:
        fit.precheck(board, net, hw, stream=True, max_payload=32768)
    assert e.value.resource == "BRAM" and "host link second payload bank" in str(e.value)
    assert "a smaller request buffer (--max-payload 512; at 32768 bytes streaming's second bank takes 64 " \
           "blocks) or --no-stream" in str(e.value)


def test_encoder_kept_and_encode_fits_at_1024():
    net = random_network(0, (784, 16, 10), weight_bits=4, membrane_bits=12, readout=False, timesteps=4)
    assert fit.choose_encoder(net)
    top = _top("ulx3s-85f", net, 1024)
    assert top.link.encoder and encode_fits(top.link.geo)
    assert not encode_fits(_top("ulx3s-85f", net, 512).link.geo)


def test_report_names_the_size():
    r = {"title": "T", "device": "D", "lanes": 2, "stream": True, "utilization": {},
         "network": {"source": "n", "shape": [784, 10], "timesteps": 4, "readout": False},
         "clock": {"pll_mhz": 25.0, "oscillator_mhz": 25.0},
         "host_link": {"uart": "ftdi", "baud": 3_000_000, "max_payload": 1024},
         "timing": {"fmax_mhz": 50.0, "constraint_mhz": 25.0, "met": True, "slack_ns": 1.0},
         "performance": {"cycles_per_sample": {"mean": 1, "min": 1, "max": 1}, "workload": "w"}}
    assert "host link: 3000000 baud, request payload buffer 1024 bytes a bank (streaming)" in format_report(r)
