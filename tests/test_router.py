"""`spikegate build --router {router1,router2}`: nextpnr's routing algorithm as a build option,
checked before any tool runs, passed to nextpnr, part of the cache key and named in the report; and
the placer's timing weight every build passes (``boards.toolchain.PLACER_TIMING_WEIGHT``)."""
from __future__ import annotations

import json
import time

import pytest

from spikegate.boards.build import board_top_plan, build, default_max_events, hardware_config
from spikegate.boards.cache import design_key
from spikegate.boards.fastest import build_fastest
from spikegate.boards.flow import NOT_RUN, timeout_advice
from spikegate.boards.targets import get_board
from spikegate.boards.toolchain import PLACER_TIMING_WEIGHT, ROUTERS, resolve
from spikegate.cli import main
from spikegate.model.random import random_network

LEAN = {"encoder": False, "stream": False}


def _tiny():
    return random_network(3, (16, 8), timesteps=4, readout=False)


def test_cli_refuses_an_unknown_router_before_any_tool(capsys, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "ulx3s-85f", "--out", str(tmp_path / "o"), "--router", "router3"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "argument --router: invalid choice: 'router3' (choose from 'router1', 'router2')" in err, err
    assert time.monotonic() - t0 < 5 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("router", ["router3", "", "ROUTER2", 2, True])
def test_library_refuses_an_unknown_router_before_loading_the_network(tmp_path, router):
    want = f"router = {router!r} is not valid; valid: router1, router2 or None"
    with pytest.raises(ValueError, match=want.replace("(", r"\(").replace(")", r"\)")):
        build("ulx3s-85f", tmp_path / "missing.json", router=router, out_dir=tmp_path / "o", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="router = "):
        build_fastest("ulx3s-85f", tmp_path / "missing.json", router=router, out_dir=tmp_path / "o",
                      cache_dir=tmp_path)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("board_name", ["icebreaker", "ulx3s-85f", "tangnano9k"])
def test_the_router_reaches_nextpnr_and_the_cache_key(board_name):
    board, net = get_board(board_name), _tiny()
    hw = hardware_config(board, net, board.default_lanes, max_events=default_max_events(net))
    tools = {t: resolve(t) for t in board.platform().required_tools if t not in NOT_RUN}

    def plan_of(router):
        plan = board_top_plan(board, net, hw, router=router, **LEAN)
        script = json.loads(plan.files["build_top.json"])["commands"]
        pnr = next(cmd for cmd in script if cmd[0].startswith("nextpnr"))
        return pnr, design_key(plan, board, tools)

    (default_cmd, default_key), *routed = [plan_of(r) for r in (None, *ROUTERS)]
    assert "--router" not in default_cmd  # nextpnr's own default: unchanged builds keep their cache keys
    weight = PLACER_TIMING_WEIGHT[board.family]
    for cmd, _ in (default_cmd, default_key), *routed:
        if weight is None:  # nextpnr's own weight
            assert not any(opt.startswith("--placer-heap") for opt in cmd)
        else:
            assert cmd[cmd.index("--placer-heap-timingweight") + 1] == str(weight)
    for router, (cmd, key) in zip(ROUTERS, routed):
        assert cmd[cmd.index("--router") + 1] == router
        assert key != default_key
    assert routed[0][1] != routed[1][1]
    # A build stopped at its deadline in place and route points to router2, unless it ran router2.
    advice = "; if it was still routing, `--router router2` may finish it"
    assert timeout_advice(default_cmd) == timeout_advice(routed[0][0]) == advice
    assert timeout_advice(routed[1][0]) == "" and timeout_advice(["yosys", "-q", "top.ys"]) == ""


def test_a_router2_build_routes_with_router2_and_says_so(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    r = build("icebreaker", _tiny(), router="router2", out_dir=tmp_path / "a", cache_dir=cache / "builds",
              samples=5, **LEAN)
    assert r["router"] == "router2" and r["timing"]["met"] and r["cached"] is False
    assert r["placer_timing_weight"] == PLACER_TIMING_WEIGHT["ice40"] == 100
    assert (tmp_path / "a" / "icebreaker.bin").read_bytes()[:4096].find(b"\x7e\xaa\x99\x7e") >= 0
    # nextpnr's own log, kept in the cache entry, shows which router ran.
    log = (cache / "builds" / r["cache_key"] / "top.tim").read_text()
    assert "Running router2" in log and "Running router1 to check" in log
    # The CLI: the same design and router, served from the cache.
    net_file = tmp_path / "tiny.json"
    _tiny().save(net_file)
    monkeypatch.setenv("SPIKEGATE_CACHE", str(cache))
    assert main(["build", "--board", "icebreaker", "--net", str(net_file), "--router", "router2", "--no-encoder",
                 "--no-stream", "--samples", "5", "--out", str(tmp_path / "b"), "--json"]) == 0
    r2 = json.loads(capsys.readouterr().out)
    assert r2["cached"] is True and r2["cache_key"] == r["cache_key"] and r2["router"] == "router2"
