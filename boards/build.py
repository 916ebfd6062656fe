"""Bitstream builds: Yosys + nextpnr + the packer, a build report, and a content-addressed cache.

``build(board, net, lanes=..., clock_mhz=...)``:

1. checks the request before any tool runs: the board is known, the PLL can make the clock, the
   core's memories can fit the device's block RAM (:mod:`.fit`), every tool exists
   (:mod:`.toolchain`);
2. elaborates the board top (:class:`.top.BoardTop`) into Amaranth's build plan;
3. hashes the plan's files (RTLIL with every weight, constraints, tool options) together with the
   tools' versions: an unchanged design is served from the cache without running anything;
4. otherwise runs synthesis, checks the synthesised cells against the device, runs place and
   route with ``--report`` and packs the bitstream;
5. writes ``<board><ext>`` and ``<board>-report.json`` atomically into the output folder. A
   build that misses timing writes its report, no bitstream, and raises :class:`TimingError`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from .. import default_network_path
from ..errors import UserError
from ..model.fileio import write_atomic
from ..model.network import Network
from ..progress import note, progress
from . import fit
from .targets import Board, get_board
from .toolchain import resolve, tool_identity
from .top import BoardTop, pll_for

__all__ = ["build", "BuildError", "TimingError", "default_max_events", "performance",
           "cache_root", "format_report", "dfu_suffix"]

# Bump when anything that shapes the products changes outside the plan's files.
FLOW_VERSION = 1
NAME = "top"
# The host link's UART speed (8N1); every board's USB-serial bridge runs it.
BAUD = 115200
# Tools Amaranth lists as required that the build itself does not run.
_NOT_RUN = {"openFPGALoader", "dfu-suffix", "iceprog", "dfu-util"}


class BuildError(UserError):
    """A tool failed; the message carries the tool's error lines and where its log is."""


class TimingError(BuildError):
    """Place and route finished but the design is slower than the clock constraint."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def cache_root(cache_dir=None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SPIKEGATE_CACHE")
    if env:
        return Path(env) / "builds"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spikegate" / "builds"


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


# --- performance ----------------------------------------------------------------------------------

def workload(net: Network, samples: int | None = None, data_dir=None) -> tuple[np.ndarray, str]:
    """Input spikes to measure cycles per sample on, and a description of them.

    A 64-input network gets the digits test split (the data it was made for); a 784-input one
    the MNIST test split when its IDX files are in ``data_dir``; any other network (or MNIST
    without files) random spikes at a stated rate, labelled as such in the report.
    """
    from .. import datasets
    if net.n_inputs == 64:
        x, _ = datasets.load("digits", "test")
        what = "digits test split"
    elif net.n_inputs == 784 and data_dir is not None:
        x, _ = datasets.load("mnist", "test", data_dir=data_dir)
        what = "MNIST test split"
    else:
        from ..model.random import random_spikes
        n = 100 if samples is None else samples
        p = 0.13  # the mean MNIST pixel intensity: the spike rate of rate-coded MNIST
        s = random_spikes(0, n, net.timesteps, net.n_inputs, p=p)
        return s, f"{n} samples of random input spikes (p = {p} per input per step, seed 0)"
    if samples is not None:
        x = x[:samples]
    s = datasets.encode_for(net, x, seed=0)
    return s, f"{len(x)} samples of the {what}, {net.encoding} encoding, T = {net.timesteps}"


def performance(net: Network, lanes, max_events: int, clock_mhz: float, fmax_mhz: float | None,
                samples: int | None = None, data_dir=None) -> dict:
    """Cycles per sample from the core's twin (exact), and what they mean at a clock."""
    from ..model.core import NetworkCore as CoreTwin
    spikes, what = workload(net, samples, data_dir)
    twin = CoreTwin(net, lanes=lanes, max_events=max_events)
    cyc = np.array([twin.cycles(s) for s in spikes], dtype=np.int64)
    mean = float(cyc.mean())

    def at(f_mhz):
        return {"mhz": round(f_mhz, 3), "latency_us": round(mean / f_mhz, 3),
                "worst_latency_us": round(int(cyc.max()) / f_mhz, 3),
                "samples_per_s": round(f_mhz * 1e6 / mean, 1)}

    out = {"workload": what, "samples": int(len(cyc)),
           "cycles_per_sample": {"mean": round(mean, 1), "min": int(cyc.min()), "max": int(cyc.max())},
           "at_clock": at(clock_mhz),
           "note": "core compute only (from start to done); host-link transfer time not included"}
    if fmax_mhz:
        out["at_fmax"] = at(fmax_mhz)
    return out


# --- the flow -------------------------------------------------------------------------------------

def _digest(plan, board: Board, tools: dict[str, str]) -> str:
    h = hashlib.sha256()
    h.update(f"spikegate-build {FLOW_VERSION} {board.name}\n".encode())
    for name in sorted(plan.files):
        content = plan.files[name]
        if isinstance(content, str):
            content = content.encode()
        h.update(f"{name} {len(content)}\n".encode())
        h.update(content)
    for name in sorted(tools):
        h.update(f"tool {name} {tool_identity(name, tools[name])}\n".encode())
    return h.hexdigest()


def _cell_counts(netlist: Path) -> Counter:
    d = json.loads(netlist.read_text())
    counts = Counter()
    for mod in d.get("modules", {}).values():
        # Yosys writes attribute values as binary strings ("000...1").
        if str(mod.get("attributes", {}).get("top", "0")).strip("0"):
            for cell in mod.get("cells", {}).values():
                counts[cell["type"]] += 1
    return counts


def _error_lines(log: Path, limit: int = 8) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errs = [l.strip() for l in lines if "ERROR" in l or "error:" in l.lower()]
    pick = errs[-limit:] if errs else [l.strip() for l in lines[-limit:]]
    return "\n  ".join(pick)


def dfu_suffix(path: Path, vid: int = 0x1209, pid: int = 0x5AF0) -> None:
    """Append the DFU 1.0 file suffix (what ``dfu-suffix -v 1209 -p 5af0 -a`` writes).

    16 bytes: bcdDevice, idProduct, idVendor, bcdDFU (1.00), "UFD", length 16, then the CRC-32
    of the file and the first 12 suffix bytes, without the final inversion (DFU 1.1, annex B).
    """
    data = path.read_bytes()
    suffix = (0xFFFF).to_bytes(2, "little") + pid.to_bytes(2, "little") + vid.to_bytes(2, "little")
    suffix += (0x0100).to_bytes(2, "little") + b"UFD" + bytes([16])
    crc = zlib.crc32(data + suffix) ^ 0xFFFFFFFF
    path.write_bytes(data + suffix + crc.to_bytes(4, "little"))


def _run(cmd: list[str], cwd: Path, log: Path, desc: str, env: dict, prog) -> None:
    """Run one tool, its output into ``log``, keeping the progress line's clock ticking."""
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(cmd)}\n".encode())
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
        try:
            while proc.poll() is None:
                time.sleep(0.25)
                prog.update(0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0:
        raise BuildError(f"{desc} failed ({Path(cmd[0]).name} exited with status "
                         f"{proc.returncode}):\n  {_error_lines(log)}")


def _pnr_errors(log: Path, board: Board, lanes) -> None:
    """Map nextpnr's 'out of resources' errors to a ResourceError."""
    import re
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return
    m = re.search(r"Failed to expand region .* of (\d+) (\w+?)s?\b", text)
    if m:
        needed, cell = int(m.group(1)), m.group(2)
        res = {"ICESTORM_LC": "LC", "TRELLIS_COMB": "LUT", "TRELLIS_SLICE": "LUT"}.get(cell, cell)
        avail = board.luts if res in ("LC", "LUT") else -1
        raise fit.ResourceError(
            f"the design does not fit the {board.title} ({board.device}): placement needs {needed} "
            f"{cell} logic cells but the device has {avail} (lanes = {lanes}); use fewer lanes or "
            f"narrower membranes (membrane_bits), or a larger board", res, needed, avail)
    m = re.search(r"no BELs remaining to implement cell type '(\w+)'", text)
    if m:
        cell = m.group(1)
        res = {"ICESTORM_RAM": "BRAM", "ICESTORM_SPRAM": "SPRAM", "ICESTORM_DSP": "DSP",
               "ICESTORM_LC": "LUT", "DP16KD": "BRAM", "MULT18X18D": "DSP",
               "TRELLIS_COMB": "LUT", "TRELLIS_FF": "FF"}.get(cell, cell)
        raise fit.ResourceError(
            f"the design does not fit the {board.title} ({board.device}): place and route ran out "
            f"of {res} ({cell}) with lanes = {lanes}; use fewer lanes, fewer weight bits or a "
            f"larger board", res, -1, -1)


def _utilisation(board: Board, cells: dict[str, int], rep: dict) -> dict:
    u = rep.get("utilization", {})

    def row(used, avail):
        return {"used": int(used), "available": int(avail),
                "percent": round(100.0 * used / avail, 1) if avail else 0.0}

    if board.family == "ice40":
        lc = u.get("ICESTORM_LC", {"used": 0, "available": board.luts})
        return {"LUT": row(cells.get("LUT", 0), lc["available"]),
                "FF": row(cells.get("FF", 0), lc["available"]),
                "LC": row(lc["used"], lc["available"]),
                "BRAM": row(*_ua(u, "ICESTORM_RAM", board.bram_blocks)),
                "SPRAM": row(*_ua(u, "ICESTORM_SPRAM", board.spram_blocks)),
                "DSP": row(*_ua(u, "ICESTORM_DSP", board.dsps))}
    if board.family == "ecp5":
        return {"LUT": row(*_ua(u, "TRELLIS_COMB", board.luts)),
                "FF": row(*_ua(u, "TRELLIS_FF", board.ffs)),
                "BRAM": row(*_ua(u, "DP16KD", board.bram_blocks)),
                "SPRAM": row(0, 0),
                "DSP": row(*_ua(u, "MULT18X18D", board.dsps))}
    return {"LUT": row(*_ua(u, "LUT4", board.luts)), "FF": row(*_ua(u, "DFF", board.ffs)),
            "ALU": row(*_ua(u, "ALU", board.ffs)),
            "BRAM": row(*_ua(u, "BSRAM", board.bram_blocks)), "SPRAM": row(0, 0),
            "DSP": row(*_ua(u, "MULT18X18", board.dsps))}


def _ua(u: dict, key: str, default_avail: int) -> tuple[int, int]:
    e = u.get(key)
    if e is None:
        return 0, default_avail
    return e["used"], e["available"]


def _timing(rep: dict, clock_mhz: float) -> dict:
    clocks = {k: {"achieved_mhz": round(v["achieved"], 3), "constraint_mhz": round(v["constraint"], 3)}
              for k, v in rep.get("fmax", {}).items()}
    if not clocks:
        raise BuildError("place and route reported no clock: the design has no clocked logic "
                         "or the clock constraint was lost")
    main = next((k for k in clocks if "cd_sync" in k or k.endswith("sync.clk")), None)
    if main is None:
        main = min(clocks, key=lambda k: abs(clocks[k]["constraint_mhz"] - clock_mhz))
    fmax = clocks[main]["achieved_mhz"]
    met = all(c["achieved_mhz"] >= c["constraint_mhz"] for c in clocks.values())
    return {"clock": main, "constraint_mhz": round(clock_mhz, 3), "fmax_mhz": fmax,
            "slack_ns": round(1e3 / clock_mhz - 1e3 / fmax, 3), "met": met, "clocks": clocks}


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def _stage_name(tool: str) -> str:
    if tool == "yosys":
        return "synthesis"
    if tool.startswith("nextpnr"):
        return "place and route"
    return "bitstream packing"


def build(board, net=None, *, lanes=None, clock_mhz: float | None = None, out_dir=None,
          cache_dir=None, max_events: int | None = None, samples: int | None = None,
          data_dir=None, force: bool = False, seed: int | None = None) -> dict:
    """Build a bitstream for ``board`` and return the build report (see module docstring)."""
    t0 = time.monotonic()
    board = get_board(board) if not isinstance(board, Board) else board
    net, net_source = _load_net(net)
    if lanes is None:
        lanes = board.default_lanes
    if max_events is None:
        max_events = default_max_events(net)
    pll = pll_for(board, clock_mhz)
    est = fit.precheck(board, net, lanes, max_events)

    platform = board.platform()
    run_tools = [t for t in platform.required_tools if t not in _NOT_RUN]
    tools = {t: resolve(t) for t in run_tools}

    note(f"build {board.name}: elaborating the board top ({'x'.join(map(str, net.shape))}, "
         f"lanes {lanes}, {pll.f_out_mhz:g} MHz)")
    top = BoardTop(board, net, lanes=lanes, pll=pll, max_events=max_events, baud=BAUD,
                   weight_ram=est["weight_ram"])
    pnr_opts = "--report report.json --timing-allow-fail"
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed = {seed!r} is not valid; valid: an integer >= 0")
        pnr_opts += f" --seed {seed}"
    if board.family == "gowin":
        # Amaranth's Gowin flow writes no clock constraint; without one nextpnr targets 12 MHz.
        pnr_opts += f" --freq {pll.f_out_mhz:g}"
    plan = platform.prepare(top, name=NAME, nextpnr_opts=pnr_opts)
    key = _digest(plan, board, tools)

    root = cache_root(cache_dir)
    entry = root / key
    cached = (entry / "result.json").is_file() and not force
    if cached:
        note(f"build {board.name}: unchanged design, using the cached build {key[:12]}")
    else:
        _run_flow(plan, board, tools, root, entry, lanes)
    result = json.loads((entry / "result.json").read_text())

    timing = dict(result["timing"])
    fmax = timing["fmax_mhz"]
    # nextpnr derives the constraint from the oscillator through the PLL and rounds the period;
    # the report states the PLL's exact frequency and requires both to be met.
    timing["constraint_mhz"] = round(pll.f_out_mhz, 3)
    timing["slack_ns"] = round(1e3 / pll.f_out_mhz - 1e3 / fmax, 3)
    timing["met"] = bool(timing["met"] and fmax >= pll.f_out_mhz)
    perf = performance(net, lanes, max_events, pll.f_out_mhz, fmax, samples, data_dir)
    report = {
        "board": board.name, "title": board.title, "device": board.device, "family": board.family,
        "network": {"source": net_source, "name": net.name, "shape": list(net.shape),
                    "timesteps": net.timesteps, "readout": net.readout, "digest": net.digest()},
        "lanes": lanes, "max_events": max_events, "seed": seed,
        "clock": {"requested_mhz": clock_mhz if clock_mhz is not None else board.clock_mhz,
                  "pll_mhz": round(pll.f_out_mhz, 6), "oscillator_mhz": board.osc_mhz,
                  "pll_vco_mhz": round(pll.f_vco_mhz, 3), "pll_params": pll.params},
        "utilization": result["utilization"],
        "memory_estimate": {"blocks": est["blocks"], "bits": est["bits"],
                            "spram_tiles": est["spram_tiles"]},
        "weight_ram": est["weight_ram"],
        "timing": timing,
        "performance": perf,
        "host_link": {"uart": board.uart, "baud": BAUD},
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
            f"written. {_safe_clock(board, fmax)} (report: {rep_out})", report)
    bit = (entry / board.bitstream_name).read_bytes()
    report["bitstream"] = str(bit_out)
    report["bitstream_sha256"] = hashlib.sha256(bit).hexdigest()
    _atomic_write(bit_out, bit)
    _atomic_write(rep_out, (json.dumps(report, indent=1) + "\n").encode())
    report["report_path"] = str(rep_out)
    return report


def _safe_clock(board: Board, fmax: float) -> str:
    """Advice: the highest PLL frequency at or below ``fmax`` the board can make."""
    f = fmax
    for _ in range(400):
        try:
            p = pll_for(board, f)
        except ValueError:
            break
        if p.f_out_mhz <= fmax:
            return (f"Build at --clock {p.f_out_mhz:g} or lower, use fewer lanes, or try another "
                    f"placement (--seed N)")
        f -= 0.25
    return (f"The {board.family} PLL cannot make a clock at or below {fmax:.2f} MHz: use fewer "
            f"lanes or narrower membranes, or try another placement (--seed N)")


def _run_flow(plan, board: Board, tools: dict, root: Path, entry: Path, lanes) -> None:
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}-", dir=root))
    try:
        plan.extract(work)
        commands = json.loads(plan.files[f"build_{NAME}.json"])["commands"]
        env = dict(os.environ)
        log = work / "flow.log"
        tool_seconds = {}
        netlist = work / (f"{NAME}.syn.json" if board.family == "gowin" else f"{NAME}.json")
        cells = {}
        runs = [cmd for cmd in commands if cmd[0] != "dfu-suffix"]
        with progress(len(runs), f"build {board.name}: synthesis, place and route, packing",
                      unit="tools") as prog:
            for cmd in commands:
                tool = cmd[0]
                if tool == "dfu-suffix":
                    dfu_suffix(work / f"{NAME}.bit")
                    continue
                stage = _stage_name(tool)
                desc = f"build {board.name}: {stage} ({Path(tools[tool]).name})"
                note(desc + " ...")
                ts = time.monotonic()
                try:
                    _run([tools[tool]] + cmd[1:], work, log, desc, env, prog)
                except BuildError:
                    if tool.startswith("nextpnr"):
                        _pnr_errors(work / f"{NAME}.tim", board, lanes)
                    raise
                tool_seconds[stage] = round(time.monotonic() - ts, 1)
                prog.update(1)
                if tool == "yosys":
                    counts = _cell_counts(netlist)
                    cells = fit.classify_cells(board.family, counts)
                    fit.check_cells(board, cells, lanes)
        rep_path = work / "report.json"
        rep = json.loads(rep_path.read_text()) if rep_path.is_file() else {}
        timing = _timing(rep, _constraint_from(rep))
        result = {"utilization": _utilisation(board, cells, rep), "timing": timing,
                  "cells": cells, "tool_seconds": tool_seconds}
        done = work / "done"
        done.mkdir()
        shutil.copyfile(work / f"{NAME}{board.bitstream_ext}", done / board.bitstream_name)
        for f in ("report.json", f"{NAME}.tim", f"{NAME}.rpt", "flow.log"):
            if (work / f).is_file():
                shutil.copyfile(work / f, done / f)
        (done / "result.json").write_text(json.dumps(result, indent=1))
        try:
            os.replace(done, entry)
        except OSError:
            if not (entry / "result.json").is_file():
                shutil.rmtree(entry, ignore_errors=True)
                os.replace(done, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _constraint_from(rep: dict) -> float:
    f = rep.get("fmax", {})
    return max((v["constraint"] for v in f.values()), default=0.0)


def format_report(r: dict) -> str:
    """The build report as the text the CLI prints."""
    n = r["network"]
    lines = [f"{r['title']} ({r['device']}): network {n['source']} {'-'.join(map(str, n['shape']))} "
             f"(T = {n['timesteps']}{', readout' if n['readout'] else ''}), lanes {r['lanes']}",
             f"clock: {r['clock']['pll_mhz']:g} MHz from the {r['clock']['oscillator_mhz']:g} MHz "
             f"oscillator through the PLL",
             "resource      used / available      %"]
    for res, u in r["utilization"].items():
        if u["available"] or u["used"]:
            lines.append(f"  {res:<8} {u['used']:>8} / {u['available']:<9} {u['percent']:6.1f}")
    t = r["timing"]
    lines.append(f"timing: fmax {t['fmax_mhz']:.2f} MHz vs {t['constraint_mhz']:g} MHz constraint: "
                 f"{'met' if t['met'] else 'NOT MET'} (slack {t['slack_ns']:+.2f} ns)")
    p = r["performance"]
    c = p["cycles_per_sample"]
    lines.append(f"cycles per sample: mean {c['mean']:g} (min {c['min']}, max {c['max']}) over "
                 f"{p['workload']}")
    for key, label in (("at_clock", "at the PLL clock"), ("at_fmax", "at the achieved fmax")):
        if key in p:
            a = p[key]
            lines.append(f"  {label} {a['mhz']:g} MHz: {a['latency_us']:g} us per sample "
                         f"(worst {a['worst_latency_us']:g} us), {a['samples_per_s']:g} samples/s")
    rams = r.get("weight_ram", "block")
    if not isinstance(rams, str):
        spram = [str(l) for l, ram in enumerate(rams) if ram == "spram"]
        lines.append(f"weights of layer {', '.join(spram)} in SPRAM: zero after configuration; "
                     f"`spikegate run --net FILE` loads them over the host link")
    if r.get("bitstream"):
        lines.append(f"bitstream: {r['bitstream']}{' (cached build)' if r['cached'] else ''}")
    return "\n".join(lines)
