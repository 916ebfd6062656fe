"""``spikegate import MODEL.nir -o NET``: a NIR graph to a spikegate network file (docs/nir.md)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..checks import check_float, check_input_dir, check_input_file, check_int, check_output_file
from ..errors import UserError
from ..model.network import ENCODINGS, MAX_NETWORK_FILE_BYTES
from ._common import add_json_argument, emit

DEFAULTS = {"weight_bits": 8, "membrane_bits": 16, "leak_frac_bits": 8, "timesteps": 32, "encoding": "rate"}
# Options that only make sense for float graphs; a spikegate export imports exactly without them.
# A NIR file holds the same parameters as a network file, as float32 in HDF5: no larger.
MAX_NIR_FILE_BYTES = MAX_NETWORK_FILE_BYTES
# The forward-Euler step: NIR time constants are seconds, and a step of more than an hour
# describes no trained network (and overflows the discretised parameters).
MAX_DT = 3600.0
FLOAT_ONLY = ("dt", "weight_bits", "membrane_bits", "leak_frac_bits", "timesteps", "encoding", "calibrate",
              "calibrate_samples", "v_reset")
# --v-reset's default, kept apart from the option (None = not given) so that a choice that cannot
# apply is refused instead of ignored.
V_RESET_DEFAULT = "zero"
DEFAULT_CALIBRATE_SAMPLES = 2000


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import", help="convert a NIR graph (snnTorch, Norse, Sinabs, Lava-dl, Rockpool, ...) into a network",
        description="Convert a NIR graph into a spikegate network file. Float graphs are discretised with "
                    "forward Euler (step --dt) and quantised; graphs written by 'spikegate export-nir' "
                    "import bit for bit. Prints the quantisation error of every parameter. See docs/nir.md.")
    p.add_argument("model", metavar="MODEL.nir", help="NIR file (HDF5, as written by nir.write)")
    p.add_argument("-o", "--output", metavar="NET", required=True, help="network file to write (JSON)")
    p.add_argument("--dt", type=float, metavar="SECONDS",
                   help="simulation time step the model was trained with (snnTorch exports: 1e-4)")
    p.add_argument("--weight-bits", type=int, metavar="B", help=f"weight width (default {DEFAULTS['weight_bits']})")
    p.add_argument("--membrane-bits", type=int, metavar="V",
                   help=f"membrane width (default {DEFAULTS['membrane_bits']})")
    p.add_argument("--leak-frac-bits", type=int, metavar="F",
                   help=f"fraction bits of a multiply leak m/2^F (default {DEFAULTS['leak_frac_bits']})")
    p.add_argument("--timesteps", type=int, metavar="T",
                   help=f"time steps per sample stored in the network (default {DEFAULTS['timesteps']})")
    p.add_argument("--encoding", choices=ENCODINGS, help=f"input encoding stored in the network "
                                                         f"(default {DEFAULTS['encoding']})")
    p.add_argument("--calibrate", metavar="DATA",
                   help="bound each layer's scale by the membranes the float network reaches on DATA: a data "
                        "set name (digits, mnist: training split) or a .npy file of intensities [N, n_in] or "
                        "spikes [N, T, n_in]")
    p.add_argument("--data-dir", metavar="DIR", help="directory of the mnist IDX files (with --calibrate mnist)")
    p.add_argument("--calibrate-samples", type=int, default=None, metavar="N",
                   help=f"use at most the first N calibration samples (default {DEFAULT_CALIBRATE_SAMPLES})")
    p.add_argument("--v-reset", choices=("zero", "subtract"), default=None,
                   help="what a spike does in LIF/IF/CubaLIF nodes of files written before NIR 1.0.6, which store "
                        "no v_reset: 'zero' (default, what NIR's own reader assumes) sets the membrane to 0, "
                        "'subtract' takes the threshold off it; reported in the summary")
    p.add_argument("--ignore-metadata", action="store_true",
                   help="treat a graph exported by spikegate as a float graph (re-quantise it)")
    add_json_argument(p)
    p.set_defaults(func=run)


def _progress(msg: str) -> None:
    print(f"spikegate import: {msg}", file=sys.stderr, flush=True)


def _check_arguments(args) -> None:
    from ..nir.importer import check_float_options
    check_input_file("MODEL.nir", args.model, MAX_NIR_FILE_BYTES)
    check_output_file("-o/--output", args.output)
    check_float("--dt", args.dt, 0, MAX_DT, lo_open=True)
    check_float_options(**{k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in DEFAULTS.items()})
    if args.calibrate_samples is not None:
        check_int("--calibrate-samples", args.calibrate_samples, 1)
        if args.calibrate is None:
            raise UserError(f"--calibrate-samples = {args.calibrate_samples} applies only with --calibrate; "
                            "valid: give --calibrate DATA too, or leave it out")
    check_input_dir("--data-dir", args.data_dir)


def run(args) -> int:
    from .. import nir as nir_io
    _check_arguments(args)
    _progress(f"reading {args.model}")
    graph, version, missing = nir_io.read_graph(args.model)
    exact = nir_io.is_spikegate_export(graph) and not args.ignore_metadata
    if exact:
        given = [f"--{o.replace('_', '-')}" for o in FLOAT_ONLY if getattr(args, o) is not None]
        if given:
            raise UserError(f"{args.model} was exported by spikegate and imports bit for bit; "
                            f"{', '.join(given)} would be ignored. Leave out those options, or pass --ignore-metadata "
                            "to re-quantise it as a float graph")
    v_reset = args.v_reset or V_RESET_DEFAULT
    if args.v_reset is not None and not exact and nir_io.check_v_reset(version, missing, v_reset) is None:
        raise UserError(f"--v-reset = {args.v_reset} does not apply to {args.model} (NIR {version or 'unknown'}): "
                        "it has no spiking node without v_reset from a file older than NIR 1.0.6; valid: leave "
                        "--v-reset out")
    opts = {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in DEFAULTS.items()}
    calib = desc = None
    if args.calibrate is not None:
        # Validate the graph (and find its input width) before loading possibly large data.
        n_in = nir_io.graph_input_count(graph)
        _progress(f"loading calibration data {args.calibrate}")
        calib, desc = nir_io.load_calibration(args.calibrate, n_inputs=n_in, timesteps=opts["timesteps"],
                                              encoding=opts["encoding"], data_dir=args.data_dir,
                                              limit=args.calibrate_samples or DEFAULT_CALIBRATE_SAMPLES)
    result = nir_io.network_from_graph(graph, dt=args.dt, calibrate=calib, ignore_metadata=args.ignore_metadata,
                                       version=version, missing_v_reset=missing, v_reset=v_reset,
                                       name=Path(args.model).stem,
                                       progress=_progress, **opts)
    if desc:
        result.calibration["data"] = desc
    result.network.save(args.output)
    out = result.to_json()
    out["input"], out["output"] = str(args.model), str(args.output)
    emit(args, out, _report)
    return 0


def _leak_text(leak: dict) -> str:
    return {"none": "none", "shift": f"shift {leak.get('k')}",
            "multiply": f"multiply {leak.get('m')}/2^{leak.get('frac_bits')}"}[leak["kind"]]


def _fmt_err(e: dict) -> str:
    return f"max abs err {e['max_abs']:.3g} (max rel {100 * e['max_rel']:.3g} %), rms {e['rms']:.3g}"


def _report(out: dict) -> str:
    lines = [f"{out['input']} (NIR {out['nir_version'] or '?'}) -> {out['output']}: "
             f"{'-'.join(map(str, out['shape']))}{', readout' if out['readout'] else ''}, "
             f"T = {out['timesteps']}, {out['encoding']} encoding"]
    if out["exact"]:
        lines.append("spikegate export: rebuilt bit for bit from its metadata (quantisation error 0)")
    else:
        lines.append(f"forward Euler with dt = {out['dt']:g}; errors are in the graph's float units")
    a = out.get("v_reset_assumption")
    if a:
        lines.append(f"assumed v_reset: {a['nodes']} (no v_reset stored: written by NIR {a['nir_version'] or '(unknown)'}, "
                     f"before 1.0.6) reset by {'setting v to 0' if a['assumed'] == 'zero' else 'subtracting the threshold'}"
                     f" (--v-reset {a['assumed']})")
    for L in out["layers"]:
        p = L["params"]
        lk = p["leak_beta"]
        leak = lk["leak"]
        leak_s = _leak_text(leak)
        lines.append(f"layer {L['layer']}: {L['synapse']} -> {L['neuron']} ({L['kind']}), scale {L['scale']:.6g} "
                     f"(limited by {L['scale_limited_by']})")
        lines.append(f"  weights    {_fmt_err(p['weights'])}")
        lines.append(f"  bias       {_fmt_err(p['bias'])}")
        lines.append(f"  leak       beta {lk['float']:.6g} -> {leak_s} = {lk['int']:.6g} (err {lk['max_abs']:.3g})")
        if "current_alpha" in p:
            c = p["current_alpha"]
            lines.append(f"  current    alpha {c['float']:.6g} -> {_leak_text(c['leak'])} = {c['int']:.6g} (err {c['max_abs']:.3g})")
        if "recurrent" in p:
            lines.append(f"  recurrent  {_fmt_err(p['recurrent'])}")
        if "delays" in p:
            lines.append(f"  delays     up to {p['delays']['max']} steps, {p['delays']['distinct']} distinct")
        if "threshold" in p:
            t = p["threshold"]
            lines.append(f"  threshold  {t['float']:.6g} -> {t['int']} (= {t['represented']:.6g}, err "
                         f"{t['max_abs']:.3g})")
        if "calibration" in L:
            c = L["calibration"]
            what = "argmax classes" if c["measure"] == "argmax" else "spikes"
            lines.append(f"  calibration: {c['candidates']} candidate scale(s), float membrane peak {c['peak']:.4g}; "
                         f"differing {what} {100 * c['mismatch']:.3g} % (range-limited scale: "
                         f"{100 * c['mismatch_uncalibrated']:.3g} %)")
        for note in L["notes"]:
            lines.append(f"  note: {note}")
    if out.get("calibration"):
        c = out["calibration"]
        lines.append(f"calibration: {c.get('data', '')}; float and integer networks agree on "
                     f"{100 * c['agreement']:.2f} % of {c['samples']} samples")
    return "\n".join(lines)
