"""The simulation infrastructure on a small design of its own: Verilog export, content-hashed build
cache (reuse, separation, concurrent builders), cocotb runs on Verilator and Icarus, failures
reported as failures.

The cocotb tests at the bottom run inside the simulator (this module is their test module).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikegate.sim import runner

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the simulator imports this module by name
    sys.path.insert(0, str(HERE))


class Accumulator(wiring.Component):
    """Sums signed stream words; ``start`` then counts ``total`` cycles down to ``done``.

    Small, but shaped like the real core: a struct stream input with ready, a run that the
    testbench only waits on, registered outputs.
    """
    def __init__(self, width: int = 8):
        self.width = width
        super().__init__({
            "inp": In(stream.Signature(data.StructLayout({"value": width, "negate": 1}))),
            "start": In(1),
            "total": Out(32),
            "done": Out(1),
            "ticks": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        busy = Signal()
        left = Signal(32)
        m.d.comb += self.inp.ready.eq(~busy)
        with m.If(self.inp.valid & ~busy):
            with m.If(self.inp.payload.negate):
                m.d.sync += self.total.eq(self.total - self.inp.payload.value)
            with m.Else():
                m.d.sync += self.total.eq(self.total + self.inp.payload.value)
        with m.If(self.start & ~busy):
            m.d.sync += [busy.eq(1), left.eq(self.total), self.done.eq(0), self.ticks.eq(0)]
        with m.Elif(busy):
            m.d.sync += [left.eq(left - 1), self.ticks.eq(self.ticks + 1)]
            with m.If(left <= 1):
                m.d.sync += [busy.eq(0), self.done.eq(1)]
        return m


def _verilog(width=8) -> str:
    return runner.export_verilog(Accumulator(width))


@pytest.fixture(scope="module")
def build_root():
    # The shared cache, as the product uses it: Verilator's runtime objects are compiled once per
    # machine, and the builds here are keyed by this module's own designs.
    return runner.default_build_root()


def _run(bld, tmp_path, values, test="tb_accumulate"):
    env = {"SF_TEST_VALUES": ",".join(map(str, values))}
    return runner.run(bld, "test_sim_runner", run_dir=tmp_path / f"run-{bld.simulator}-{test}", testcase=test,
                      env=env, timeout=600)


def test_export_verilog_names_ports_and_omits_source_paths():
    v = _verilog()
    assert "module top(" in v
    for port in ("inp__valid", "inp__ready", "inp__payload", "start", "total", "done", "clk", "rst"):
        assert port in v
    # Source locations would tie the cache key to unrelated edits of the Python files.
    assert "src =" not in v and __file__ not in v


def test_build_runs_and_is_reused(simulator, build_root, tmp_path):
    v = _verilog()
    first = runner.build(v, simulator=simulator, build_root=build_root)
    res = _run(first, tmp_path, [5, 7, -3, 100])
    assert res.passed, res.log.read_text()[-3000:]
    again = runner.build(v, simulator=simulator, build_root=build_root)
    assert again.reused and again.directory == first.directory
    # Another design (another width) must get its own build, never the cached one.
    other = runner.build(_verilog(9), simulator=simulator, build_root=build_root)
    assert other.directory != first.directory and other.key != first.key


def test_failing_cocotb_test_is_reported(simulator, build_root, tmp_path):
    bld = runner.build(_verilog(), simulator=simulator, build_root=build_root)
    res = _run(bld, tmp_path, [1, 2, 3], test="tb_wrong_expectation")
    assert res.tests == 1 and res.failures == 1 and not res.passed


def _build_in_child(args):
    v, root = args
    b = runner.build(v, simulator="icarus", build_root=root)
    return str(b.directory), b.reused


def test_concurrent_builders_share_one_build(tmp_path):
    v = _verilog(11)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_build_in_child, [(v, str(tmp_path))] * 3)
    assert len({d for d, _ in results}) == 1
    # Exactly one process compiled; the others waited on the lock and reused its result.
    assert sorted(reused for _, reused in results) == [False, True, True]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_timed_out_simulator_command_ends_its_children(tmp_path):
    """A wedged tool (here a shell with two children) is ended with every process it started."""
    r = runner.runner_class("icarus")()
    r.timeout = 1.0
    r.env = dict(os.environ)
    pids = tmp_path / "pids"
    tree = f"sleep 300 & echo $! > {pids}; sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    with pytest.raises(runner.SimulatorError, match="sh did not finish within 1 s"):
        r._execute_cmds([["sh", "-c", tree]], tmp_path)
    started = [int(x) for x in pids.read_text().split()]
    assert len(started) == 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in started):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{p}").exists() for p in started)


def test_bad_arguments_are_refused(build_root):
    with pytest.raises(ValueError, match="simulator = 'ghdl' is not valid; valid: verilator, icarus"):
        runner.build(_verilog(), simulator="ghdl", build_root=build_root)
    with pytest.raises(ValueError, match="module 'top'"):
        runner.build("module other(); endmodule", simulator="icarus", build_root=build_root)


def test_verilator_env_is_restored():
    before = {k: os.environ.get(k) for k in ("PATH", "VERILATOR_ROOT", "CXXFLAGS")}
    with runner.verilator_env():
        assert "VL_TIME_CONTEXT" not in os.environ["CXXFLAGS"]
        assert os.environ["PATH"].split(os.pathsep)[0].endswith(os.path.join("verilator", "bin"))
    assert {k: os.environ.get(k) for k in before} == before


# --- cocotb tests (run inside the simulator) -------------------------------------------------------

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout
except ImportError:  # pragma: no cover - cocotb is a dependency
    cocotb = None


async def _accumulate(dut, values, width=8):
    Clock(dut.clk, 10, "ns", impl="gpi").start()
    dut.rst.value = 1
    dut.inp__valid.value = 0
    dut.start.value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    for x in values:
        raw = (abs(x) & ((1 << width) - 1)) | ((1 << width) if x < 0 else 0)
        dut.inp__payload.value = raw
        dut.inp__valid.value = 1
        await FallingEdge(dut.clk)
    dut.inp__valid.value = 0
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    await with_timeout(RisingEdge(dut.done), 100, "us")
    await FallingEdge(dut.clk)
    return int(dut.total.value), int(dut.ticks.value)


if cocotb is not None:
    @cocotb.test()
    async def tb_accumulate(dut):
        values = [int(v) for v in os.environ["SF_TEST_VALUES"].split(",")]
        total, ticks = await _accumulate(dut, values)
        expect = sum(values) & 0xFFFFFFFF
        assert total == expect, (total, expect)
        assert ticks == max(expect, 1), (ticks, expect)

    @cocotb.test()
    async def tb_wrong_expectation(dut):
        values = [int(v) for v in os.environ["SF_TEST_VALUES"].split(",")]
        total, _ = await _accumulate(dut, values)
        assert total == sum(values) + 1
