"""A simulated board on a TCP socket: the whole HostLink (UART included) in Verilator, bridged so
the unmodified host driver talks to it through pyserial's ``socket://`` URL.

Inside the simulator (the cocotb test ``bridge``) one coroutine serialises the bytes the host
sends onto the ``rx`` pin bit by bit, and another decodes the ``tx`` pin bit by bit and sends the
bytes back: the real UART gateware is on both paths. Between bits the simulator runs freely.

Time: while the board is idle (``idle`` high: hunting for a frame, nothing in flight) and the
host has sent nothing, the simulation waits for the host without advancing simulated time, as if
the host answered instantly. Everything else (frames on the line, the network's runs, answers)
takes its real number of clock cycles, so the board's cycle counters measure the link as a real
board at the configured clock and baud rate would see it with an infinitely fast host.

Run it by hand::

    python -m spikegate.sim.link_bridge --net NET.json --port-file port.txt
    spikegate run --board sim --port socket://127.0.0.1:$(cat port.txt) --net NET.json

or from Python with :class:`SimulatedBoard`.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


CLOCK_NS = 10

# Simulation defaults: 8 clock cycles per bit keeps Verilator's share small; the Python cost is
# per bit whatever the divisor.
SIM_CLK_FREQ = 1_000_000
SIM_BAUD = 125_000


def _env(name: str) -> str:
    return os.environ[f"SPIKEGATE_LINK_{name}"]


def _alive(pid: int) -> bool:
    """Whether the process that owns this board (0: none, run by hand) still runs.

    A host killed without its ``__exit__`` (SIGKILL, a test runner's timeout) never touches the
    stop file; without this check its simulator would spin on, orphaned, for ever."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


try:  # the cocotb side only exists inside the simulator process
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, FallingEdge, First, RisingEdge, Timer
except ImportError:  # pragma: no cover
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def bridge(dut):
        import select
        # The host's bit time at the nominal baud rate (the board's own divider may be fractional).
        bit_ps = float(_env("BIT_PS"))
        port_file = Path(_env("PORT_FILE"))
        stop_file = Path(_env("STOP_FILE"))
        owner = int(os.environ.get("SPIKEGATE_LINK_OWNER_PID", "0"))
        bit_ns = bit_ps / 1000

        def at(bits: float) -> int:
            """Picoseconds from a byte's start edge to ``bits`` bit times later."""
            return round(bits * bit_ps)
        Clock(dut.clk, CLOCK_NS, "ns", impl="gpi").start()
        dut.rst.value = 1
        dut.rx.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0

        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        tmp = port_file.with_name(port_file.name + ".tmp")
        tmp.write_text(str(srv.getsockname()[1]))
        os.replace(tmp, port_file)

        state = {"conn": None, "tx_busy": False}
        rxbuf = bytearray()

        def poll(wait: float) -> None:
            conn = state["conn"]
            ready, _, _ = select.select([srv] + ([conn] if conn is not None else []), [], [], wait)
            if srv in ready:
                # A new host replaces the old one (which may have died without closing).
                c, _ = srv.accept()
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if conn is not None:
                    conn.close()
                state["conn"] = conn = c
                return
            if conn is None or conn not in ready:
                return
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if data:
                rxbuf.extend(data)
            else:
                conn.close()
                state["conn"] = None

        async def tx_monitor():
            while True:
                await FallingEdge(dut.tx)
                state["tx_busy"] = True
                await Timer(at(0.5), "ps")
                if int(dut.tx.value) != 0:
                    state["tx_busy"] = False
                    continue
                value = 0
                for i in range(8):
                    await Timer(at(i + 1.5) - at(i + 0.5), "ps")
                    value |= int(dut.tx.value) << i
                await Timer(at(9.5) - at(8.5), "ps")
                if int(dut.tx.value) == 1 and state["conn"] is not None:
                    try:
                        state["conn"].sendall(bytes([value]))
                    except OSError:
                        pass
                state["tx_busy"] = False

        cocotb.start_soon(tx_monitor())
        await FallingEdge(dut.clk)
        quiet, step = 0, 1
        # Leaps stay well below the frame timeout, so host bytes that arrive while the board
        # waits inside a frame are still in time.
        max_step = max(1, int(int(_env("FRAME_TIMEOUT")) / (10 * bit_ns / CLOCK_NS) / 4))
        while True:
            if not rxbuf:
                poll(0)
            if rxbuf:
                quiet, step = 0, 1
                byte = rxbuf.pop(0)
                for i, level in enumerate([0] + [(byte >> i) & 1 for i in range(8)] + [1]):
                    dut.rx.value = level
                    await Timer(at(i + 1) - at(i), "ps")
                continue
            if int(dut.idle.value) == 1 and not state["tx_busy"]:
                step = 1
                quiet += 1
                if quiet >= 2:
                    # Idle board, silent host: wait in real time, simulated time stands still.
                    poll(0.1)
                    if stop_file.exists() or not _alive(owner):
                        break
                    continue
                await Timer(at(10), "ps")
                continue
            quiet = 0
            # A busy board (computing, answering, or waiting out a frame the host left open)
            # runs in growing leaps, so a frame timeout passes in a few Python steps; it wakes at
            # once when the board goes idle, so no idle time is added to the board's clock.
            await First(Timer(step * at(10), "ps"), RisingEdge(dut.idle))
            await FallingEdge(dut.clk)
            # While the core computes or the board answers, a streaming host sends its next frame:
            # look for it every byte time, or the leaps would hold it back.
            step = 1 if int(dut.busy.value) or state["tx_busy"] else min(2 * step, max_step)
        if state["conn"] is not None:
            state["conn"].close()
        srv.close()


def build_board(net, *, lanes=4, clk_freq: int = SIM_CLK_FREQ, baud: int = SIM_BAUD, max_payload: int = 512,
                max_events: int = 4096, frame_timeout: int | None = None, stream: bool = True,
                encoder: bool = True, weight_ram="block", input_ram: str = "block", registered_reads: bool = False,
                progress=None):
    """Verilator build of the HostLink top for ``net`` (cached by content by sim.runner).

    ``weight_ram``/``input_ram`` as in HardwareConfig: memories in SPRAM are the SB_SPRAM256KA
    cycle model, empty at start as on the iCE40, so the board is built for ``net`` with those
    layers' weights zero, as boards/top.py builds it (the host sees that and loads them).
    ``registered_reads``: HardwareConfig's (the core's and the link's block RAM reads registered)."""
    from ..hdl.core import NetworkCore
    from ..hdl.link import HostLink
    from ..model.core import as_powered_up
    from ..model.hardware import HardwareConfig
    from . import runner
    hw = HardwareConfig(lanes=lanes, max_events=max_events, weight_ram=weight_ram, input_ram=input_ram,
                        registered_reads=registered_reads)
    net = as_powered_up(net, hw)
    core = NetworkCore(net, hw, spram_primitive="model")
    top = HostLink(net, lanes=lanes, clk_freq=clk_freq, baud=baud, max_payload=max_payload,
                   max_events=max_events, frame_timeout=frame_timeout, stream=stream, encoder=encoder, core=core)
    verilog = runner.export_verilog(top, name="top")
    bld = runner.build(verilog, simulator="verilator", toplevel="top", progress=progress)
    return top, bld


class SimulatedBoard:
    """Context manager: a simulated board serving on ``self.url`` (socket://127.0.0.1:PORT).

    The simulator runs in a child process started here and stopped (by its own pid) on exit.
    """

    def __init__(self, net_path, *, lanes=4, clk_freq: int = SIM_CLK_FREQ, baud: int = SIM_BAUD,
                 max_payload: int = 512, max_events: int = 4096, frame_timeout: int | None = None,
                 stream: bool = True, encoder: bool = True, weight_ram="block", input_ram: str = "block",
                 registered_reads: bool = False, start_timeout: float = 900.0):
        self.args = [sys.executable, "-m", "spikegate.sim.link_bridge", "--net", str(net_path),
                     "--lanes", str(lanes), "--clk-freq", str(clk_freq), "--baud", str(baud),
                     "--max-payload", str(max_payload), "--max-events", str(max_events)]
        if frame_timeout is not None:
            self.args += ["--frame-timeout", str(frame_timeout)]
        if not stream:
            self.args += ["--no-stream"]
        if not encoder:
            self.args += ["--no-encoder"]
        ram = ",".join(weight_ram) if isinstance(weight_ram, (list, tuple)) else weight_ram
        self.args += ["--weight-ram", ram, "--input-ram", input_ram]
        if registered_reads:
            self.args += ["--registered-reads"]
        self.start_timeout = start_timeout
        self.proc = None

    def __enter__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="spikegate-board-"))
        self.port_file = self.dir / "port"
        self.stop_file = self.dir / "stop"
        self.log = open(self.dir / "bridge.log", "w")
        self.proc = subprocess.Popen(self.args + ["--port-file", str(self.port_file), "--stop-file",
                                                  str(self.stop_file), "--run-dir", str(self.dir / "run"),
                                                  "--owner-pid", str(os.getpid())],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                self.log.flush()
                raise RuntimeError(f"the simulated board exited ({self.proc.returncode}) before serving:\n"
                                   + (self.dir / "bridge.log").read_text()[-3000:])
            if time.monotonic() - t0 > self.start_timeout:
                self._stop()
                raise RuntimeError("the simulated board did not start in time")
            time.sleep(0.1)
        self.url = f"socket://127.0.0.1:{int(self.port_file.read_text())}"
        return self

    def _stop(self):
        if self.proc is None:
            return
        self.stop_file.touch()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def __exit__(self, *exc):
        self._stop()


def main(argv=None) -> int:
    from ..model.network import Network
    from . import runner
    ap = argparse.ArgumentParser(prog="python -m spikegate.sim.link_bridge", description=__doc__.split("\n")[0])
    ap.add_argument("--net", default=None, help="network file (default: the built-in digits network)")
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--clk-freq", type=int, default=SIM_CLK_FREQ)
    ap.add_argument("--baud", type=int, default=SIM_BAUD)
    ap.add_argument("--max-payload", type=int, default=512)
    ap.add_argument("--max-events", type=int, default=4096)
    ap.add_argument("--frame-timeout", type=int, default=None)
    ap.add_argument("--no-stream", action="store_true", help="a host link that takes one request at a time")
    ap.add_argument("--no-encoder", action="store_true",
                    help="without the on-chip encoder (ENCODE, BATCH), as a conv-first network needs")
    ap.add_argument("--weight-ram", default="block",
                    help="block or spram, one for all layers or one per layer separated by commas")
    ap.add_argument("--input-ram", default="block", help="block or spram")
    ap.add_argument("--registered-reads", action="store_true",
                    help="a flip-flop behind every block RAM read (HardwareConfig.registered_reads)")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--owner-pid", type=int, default=0,
                    help="stop when this process is gone (SimulatedBoard passes its own pid)")
    a = ap.parse_args(argv)
    from .. import default_network_path
    net = Network.load(a.net or default_network_path())
    top, bld = build_board(net, lanes=a.lanes, clk_freq=a.clk_freq, baud=a.baud, max_payload=a.max_payload,
                           max_events=a.max_events, frame_timeout=a.frame_timeout, stream=not a.no_stream,
                           encoder=not a.no_encoder, input_ram=a.input_ram, registered_reads=a.registered_reads,
                           weight_ram=tuple(a.weight_ram.split(",")) if "," in a.weight_ram else a.weight_ram,
                           progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    run_dir = a.run_dir or tempfile.mkdtemp(prefix="spikegate-bridge-")
    env = {"SPIKEGATE_LINK_BIT_PS": repr(a.clk_freq * CLOCK_NS * 1000 / a.baud),
           "SPIKEGATE_LINK_PORT_FILE": str(Path(a.port_file).resolve()),
           "SPIKEGATE_LINK_STOP_FILE": str(Path(a.stop_file).resolve()),
           "SPIKEGATE_LINK_FRAME_TIMEOUT": str(top.frame_timeout),
           "SPIKEGATE_LINK_OWNER_PID": str(a.owner_pid)}
    res = runner.run(bld, "spikegate.sim.link_bridge", run_dir=run_dir, env=env, timeout=None)
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
