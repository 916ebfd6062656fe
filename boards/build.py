"""Bitstream builds: Yosys + nextpnr + the packer, a build report, and a content-addressed cache.

``build(board, net, lanes=..., clock_mhz=...)``:

1. checks the request before any tool runs: the board is known, the hardware configuration is
   valid, the PLL can make the clock, the core's memories can fit the device's block RAM
   (:mod:`.fit`), every tool exists (:mod:`.toolchain`);
2. elaborates the board top (:class:`.top.BoardTop`) into Amaranth's build plan;
3. hashes the plan's files (RTLIL with every weight, constraints, tool options) together with the
   tools' versions (:mod:`.cache`): an unchanged design is served from the cache without running
   anything, once its files match their recorded sha256 (a damaged entry is rebuilt); an
   identical build already running elsewhere is waited for;
4. otherwise runs the flow (:mod:`.flow`): synthesis, a check of the synthesised cells against the
   device, place and route with ``--report`` (read by :mod:`.logs`), packing;
5. measures cycles per sample on the core's twin (:mod:`.workload`) and writes ``<board><ext>``
   and ``<board>-report.json`` into the output folder, both complete on disk before either is
   renamed into place. A build that misses timing writes its report, no bitstream, and raises
   :class:`TimingError`.

Progress goes to the optional ``progress`` callback (one line of text per step), never to a
terminal: the CLI wires it to its stderr display.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .. import default_network_path
from ..model.fileio import atomic_path, write_atomic
from ..model.hardware import HardwareConfig
from ..model.network import Network
from ..model.protocol import DEFAULT_MAX_PAYLOAD, check_max_payload
from . import fit
from .cache import BUILD_TIMEOUT_S, cache_root, design_key, fetch, open_cache
from .dfu import dfu_suffix
from .errors import BuildError, TimingError
from .flow import NAME, NOT_RUN, run_flow, synth_options
from .report import format_report, pll_timing, safe_clock_advice
from .targets import Board, get_board
from .toolchain import PLACER_TIMING_WEIGHT, check_router, resolve, tool_identity
from ..model.uart import baud_divisor
from .top import BoardTop, link_baud, pll_for
from .lanes import AUTO, choose_lanes
from .workload import performance, workload

__all__ = ["build", "board_top_plan", "hardware_config", "check_arguments", "BuildError", "TimingError",
           "default_max_events", "performance", "cache_root", "format_report", "dfu_suffix"]
# Samples measured for cycles per sample: ten times MNIST's test split; a random-spike workload of
# more would need gigabytes. nextpnr takes its --seed as a signed 32-bit integer.
MAX_SAMPLES = 100_000
MAX_SEED = 2**31 - 1


def default_max_events(net: Network) -> int:
    """Input-buffer words for the worst sample (every input spiking every step), as a power of
    two (block RAM depth comes in powers of two anyway), at most 4096."""
    need = net.timesteps * (net.n_inputs + 1)
    return min(4096, 1 << (need - 1).bit_length())


def _load_net(net) -> tuple[Network, str]:
    if net is None:
        path = default_network_path()
        return Network.load(path), "default (digits)"
    if isinstance(net, Network):
        return net, net.name or "network"
    if isinstance(net, (str, os.PathLike)):
        return Network.load(net), str(net)
    raise TypeError(f"net must be a Network, a path or None, got {type(net).__name__}")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def check_arguments(seed, samples, out_dir, timeout, router=None) -> None:
    """What can be checked without the network: before the flow, not after minutes of it."""
    check_router(router)
    for name, value, lo, hi in (("seed", seed, 0, MAX_SEED), ("samples", samples, 1, MAX_SAMPLES)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi):
            raise ValueError(f"{name} = {value!r} is not valid; valid: an integer from {lo} to {hi}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not math.isfinite(timeout) or timeout <= 0):
        raise ValueError(f"timeout = {timeout!r} is not valid; valid: seconds > 0 for the build's tools together "
                         f"(default {BUILD_TIMEOUT_S:g})")
    if out_dir is not None:
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise BuildError(f"out_dir = {str(out)!r} is not a directory; valid: a directory (made if missing)")
        existing = next(p for p in [out.absolute(), *out.absolute().parents] if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise BuildError(f"out_dir = {str(out)!r} cannot be written: {str(existing)!r} is not a writable "
                             "directory")


def _write_pair(bit_out: Path, bit: bytes, rep_out: Path, rep: bytes) -> None:
    """Write the bitstream and its report: both are complete on disk before either replaces the
    old file, so the two renames follow each other directly (the report names the bitstream's
    sha256, which tells a mismatched pair apart)."""
    bit_out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(bit_out) as bit_tmp, atomic_path(rep_out) as rep_tmp:
        for tmp, data in ((bit_tmp, bit), (rep_tmp, rep)):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())


def hardware_config(board: Board, net: Network, lanes, *, max_events: int, schedule: str = "inflight",
                    weight_ram=None, registered_reads: bool | None = None,
                    max_payload: int = DEFAULT_MAX_PAYLOAD) -> HardwareConfig:
    """A build's hardware configuration for ``lanes``: the board's choices (:mod:`.fit`) where
    ``weight_ram`` or ``registered_reads`` is None."""
    # (anything but None or a bool is refused by HardwareConfig, by name)
    hw = HardwareConfig(lanes=lanes, max_events=max_events, schedule=schedule,
                        weight_ram="block" if weight_ram is None else weight_ram,
                        registered_reads=False if registered_reads is None else registered_reads)
    if weight_ram is None:
        hw = fit.choose_weight_ram(board, net, hw)
    if registered_reads is None:
        hw = replace(hw, registered_reads=fit.choose_registered_reads(board, net, hw, max_payload))
    return hw


def link_choices(board: Board, net: Network, hw: HardwareConfig, encoder: bool | None, stream: bool | None,
                 max_payload: int) -> tuple[bool, bool]:
    """``(encoder, stream)`` of a build's host link, the board's choices (:func:`.fit.choose_encoder`,
    :func:`.fit.choose_stream` for ``hw``) where None."""
    return (fit.choose_encoder(net) if encoder is None else encoder,
            fit.choose_stream(board, net, hw, max_payload) if stream is None else stream)


def board_top_plan(board: Board, net: Network, hw: HardwareConfig, *, pll=None, baud: int | None = None,
                   encoder: bool | None = None, stream: bool | None = None,
                   max_payload: int = DEFAULT_MAX_PAYLOAD, seed: int | None = None, router: str | None = None,
                   platform=None):
    """The board top's Amaranth build plan, with the tool options of a build: what :func:`build`
    hands to Yosys and nextpnr. What is None gets :func:`build`'s default: the board's clock
    (``pll``) and baud, :func:`link_choices`, nextpnr's own seed and router, a new ``platform``
    (Amaranth prepares a platform once)."""
    pll = pll_for(board, None) if pll is None else pll
    encoder, stream = link_choices(board, net, hw, encoder, stream, max_payload)
    platform = board.platform() if platform is None else platform
    top = BoardTop(board, net, hw, pll=pll, baud=baud, encoder=encoder, stream=stream, max_payload=max_payload)
    pnr_opts = "--report report.json --timing-allow-fail"
    weight = PLACER_TIMING_WEIGHT[board.family]
    if weight is not None:
        pnr_opts += f" --placer-heap-timingweight {weight}"
    if seed is not None:
        pnr_opts += f" --seed {seed}"
    if router is not None:
        pnr_opts += f" --router {router}"
    if board.family == "gowin":
        # Amaranth's Gowin flow writes no clock constraint; without one nextpnr targets 12 MHz.
        pnr_opts += f" --freq {pll.f_out_mhz:g}"
    return platform.prepare(top, name=NAME, nextpnr_opts=pnr_opts, **synth_options(board))


def build(board, net=None, *, lanes=None, clock_mhz: float | None = None, out_dir=None,
          cache_dir=None, max_events: int | None = None, samples: int | None = None,
          data_dir=None, force: bool = False, seed: int | None = None, router: str | None = None, weight_ram=None,
          baud: int | None = None, encoder: bool | None = None, schedule: str = "inflight",
          stream: bool | None = None, max_payload: int = DEFAULT_MAX_PAYLOAD, registered_reads: bool | None = None,
          timeout: float | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Build a bitstream for ``board`` and return the build report (see module docstring).

    ``lanes`` (default: the board's; ``"auto"``: one per layer, :func:`.lanes.choose_lanes`, falling
    back a step at a time while synthesis finds more cells than the device has), ``max_events``
    (default: :func:`default_max_events`) and
    ``weight_ram`` (``"block"``, ``"spram"`` or one per layer; default: block RAM, with the largest
    weight arrays moved to SPRAM when only that makes the design fit) and ``schedule`` make the
    :class:`~spikegate.model.hardware.HardwareConfig`; ``baud`` is the host link's rate (default:
    the board's, ``Board.baud``; refused before any tool runs when the board's bridge or the UART
    at the build's clock cannot run it); ``encoder`` False leaves the on-chip input encoder (the
    ENCODE and BATCH commands: about 450 iCE40 LUTs and a block RAM) out of the host link, for a
    network that fits only without it (default :func:`boards.fit.choose_encoder`: none for a
    plastic network); ``stream`` (default :func:`boards.fit.choose_stream`) makes the host
    link streaming (docs/protocol.md, "Streaming": two more block RAMs and about 125 iCE40 logic
    cells); ``max_payload`` is the host link's request payload buffer in bytes (default 512; an ENCODE
    of a sample takes 5 + n_in bytes, so a 784-input network needs at least 789; each streaming bank
    is rounded up to a power of two, docs/protocol.md "Payload buffer"); ``registered_reads`` puts a
    flip-flop behind every block RAM read, the core's and the host link's
    (:class:`~spikegate.model.hardware.HardwareConfig`; docs/timing.md: the ECP5's block RAM takes
    5.8 ns from clock to data; each layer step costs a cycle more; dense networks without temporal
    features or plasticity; default :func:`boards.fit.choose_registered_reads`: on the ECP5 where the
    network allows it); ``router`` is nextpnr's routing algorithm, one of
    :data:`boards.toolchain.ROUTERS` (default None: nextpnr's, router1 on the iCE40 and ECP5);
    ``timeout`` is the seconds
    the tools (synthesis, place and route, packing) get together (default
    :data:`boards.cache.BUILD_TIMEOUT_S`): past it the build is stopped and BuildError
    raised, nothing cached; ``progress(text)`` hears each step.
    """
    t0 = time.monotonic()
    say = progress if progress is not None else (lambda text: None)
    board = get_board(board) if not isinstance(board, Board) else board
    check_arguments(seed, samples, out_dir, timeout, router)
    check_max_payload(max_payload)
    if encoder is not None and not isinstance(encoder, bool):
        raise ValueError(f"encoder = {encoder!r} is not valid; valid: True (the on-chip input encoder in the "
                         "host link), False (left out), or None (left out of a plastic network's)")
    if stream is not None and not isinstance(stream, bool):
        raise ValueError(f"stream = {stream!r} is not valid; valid: True (a streaming host link), False, or None "
                         "(streaming where its block RAM fits)")
    auto = isinstance(lanes, str) and lanes == AUTO
    if isinstance(lanes, str) and not auto:
        raise ValueError(f"lanes = {lanes!r} is not valid; valid: {AUTO!r}, a power of two from 1 to 64, or a "
                         "list of them, one per layer")
    net, net_source = _load_net(net)
    if max_events is None:
        max_events = default_max_events(net)

    def configure(layer_lanes) -> HardwareConfig:
        return hardware_config(board, net, layer_lanes, max_events=max_events, schedule=schedule,
                               weight_ram=weight_ram, registered_reads=registered_reads, max_payload=max_payload)

    hw = configure(board.default_lanes if lanes is None or auto else lanes)
    pll = pll_for(board, clock_mhz)
    baud = link_baud(board, baud, pll.f_out_mhz * 1e6)
    # (the encoder's choice depends on the network alone; the stream's on the board's lanes)
    encoder, stream = link_choices(board, net, hw, encoder, stream, max_payload)
    lanes_auto = None
    if auto:
        say(f"build {board.name}: choosing lanes on the core's twin")
        lanes_auto = choose_lanes(board, net, configure, workload(net, samples, data_dir)[0], stream=stream,
                                  max_payload=max_payload, progress=say)
        lanes_auto["refused"] = []
    # auto: the chosen lanes, then each earlier step's, should synthesis find more cells than estimated
    tries = [hw] if not auto else [configure(step["lanes"]) for step in reversed(lanes_auto["steps"])]
    est = fit.precheck(board, net, tries[0], stream=stream, max_payload=max_payload)

    platform = board.platform()
    tools = {t: resolve(t) for t in platform.required_tools if t not in NOT_RUN}
    root = open_cache(cache_dir)
    for k, hw in enumerate(tries):
        lanes = list(hw.lanes) if isinstance(hw.lanes, tuple) else hw.lanes
        if k:  # (a fallback's memories are smaller than those checked before any tool ran)
            est = fit.precheck(board, net, hw, stream=stream, max_payload=max_payload)
        say(f"build {board.name}: elaborating the board top ({'x'.join(map(str, net.shape))}, "
            f"lanes {lanes}, {pll.f_out_mhz:g} MHz)")
        plan = board_top_plan(board, net, hw, pll=pll, baud=baud, encoder=encoder, stream=stream,
                              max_payload=max_payload, seed=seed, router=router,
                              platform=None if k else platform)
        key = design_key(plan, board, tools)
        try:
            got = fetch(root, key, board.bitstream_name, force=force, progress=say,
                        make=lambda work, products: run_flow(plan, board, tools, work, products, lanes, say,
                                                             timeout=timeout))
            break
        except fit.ResourceError as e:
            if k + 1 == len(tries):
                raise
            lanes_auto["refused"].append({"lanes": lanes, "error": str(e)})
            say(f"build {board.name}: lanes {lanes} do not fit after synthesis ({e.resource} {e.needed} > "
                f"{e.available}); the step before them")
    cached, result = got.cached, got.result
    if cached:
        say(f"build {board.name}: unchanged design, using the cached build {key[:12]}")

    timing = pll_timing(result["timing"], pll)
    fmax = timing["fmax_mhz"]
    say(f"build {board.name}: measuring cycles per sample on the core's twin")
    perf = performance(net, hw, pll.f_out_mhz, fmax, samples, data_dir)
    report = {
        "board": board.name, "title": board.title, "device": board.device, "family": board.family,
        "network": {"source": net_source, "name": net.name, "shape": list(net.shape),
                    "timesteps": net.timesteps, "readout": net.readout, "digest": net.digest()},
        "lanes": lanes, **({"lanes_auto": lanes_auto} if auto else {}),
        "max_events": max_events, "seed": seed, "router": router,
        "placer_timing_weight": PLACER_TIMING_WEIGHT[board.family], "encoder": encoder, "stream": stream,
        "schedule": hw.schedule,
        "registered_reads": hw.registered_reads,
        # block RAM ports whose read flip-flop became the block's output register (boards.outreg; ECP5)
        "bram_output_registers": result.get("bram_output_registers"),
        "clock": {"requested_mhz": clock_mhz if clock_mhz is not None else board.clock_mhz,
                  "pll_mhz": round(pll.f_out_mhz, 6), "oscillator_mhz": board.osc_mhz,
                  "pll_vco_mhz": round(pll.f_vco_mhz, 3), "pll_params": pll.params},
        "utilization": result["utilization"],
        "memory_estimate": {"blocks": est["blocks"], "bits": est["bits"],
                            "spram_tiles": est["spram_tiles"]},
        "weight_ram": est["weight_ram"],
        "timing": timing,
        "performance": perf,
        "host_link": {"uart": board.uart, "baud": baud, "max_payload": max_payload,
                      "cycles_per_bit": round(float(baud_divisor(int(round(pll.f_out_mhz * 1e6)), baud)), 4)},
        "cache_key": key, "cached": cached,
        "tools": {t: tool_identity(t, p) for t, p in tools.items()},
        "seconds": round(time.monotonic() - t0, 1),
        "tool_seconds": result.get("tool_seconds"),
    }

    out = Path(out_dir) if out_dir is not None else Path("build") / board.name
    bit_out = out / board.bitstream_name
    rep_out = out / f"{board.name}-report.json"
    if not timing["met"]:
        report["bitstream"] = None
        _atomic_write(rep_out, (json.dumps(report, indent=1) + "\n").encode())
        # A bitstream left from an earlier build would no longer match this report.
        bit_out.unlink(missing_ok=True)
        raise TimingError(
            f"timing NOT met on the {board.title}: the design reaches {fmax:.2f} MHz but the clock "
            f"is {pll.f_out_mhz:.3f} MHz (slack {timing['slack_ns']:+.2f} ns); no bitstream "
            f"written. {safe_clock_advice(board, fmax)} (report: {rep_out})", report)
    report["bitstream"] = str(bit_out)
    report["bitstream_sha256"] = hashlib.sha256(got.bitstream).hexdigest()
    _write_pair(bit_out, got.bitstream, rep_out, (json.dumps(report, indent=1) + "\n").encode())
    say(f"build {board.name}: wrote {bit_out} and {rep_out}")
    report["report_path"] = str(rep_out)
    return report
