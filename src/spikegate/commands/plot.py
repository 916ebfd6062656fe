"""``spikegate plot KIND``: draw a network's activity, weights, results or build report as a PNG
(SVG when the output name ends in .svg)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .. import datasets
from ..boards.lanes import AUTO
from ..errors import UserError
from ..model.simulate import classify, simulate
from ._common import add_data_arguments, add_net_argument, check_data_arguments, parse_lanes

KINDS = ("raster", "trace", "confusion", "fields", "utilisation", "pareto")
# Kinds that also write a self-contained HTML report (tables and figures) for -o FILE.html.
HTML_KINDS = ("utilisation", "pareto")
_SAMPLE_KINDS = ("raster", "trace", "confusion")
# The kinds each kind-specific option is used by (by argparse dest); -o, --dpi and --json are for all.
USED_BY = {
    "net": ("raster", "trace", "confusion", "fields", "utilisation"),
    "data": _SAMPLE_KINDS, "data_dir": _SAMPLE_KINDS, "split": _SAMPLE_KINDS, "seed": _SAMPLE_KINDS,
    "samples": ("confusion",), "rtl": ("confusion",),
    "sample": ("raster", "trace"), "layer": ("trace", "fields"), "neurons": ("trace",),
    "shape": ("fields",), "max_tiles": ("fields",),
    "report": ("utilisation",), "board": ("utilisation",), "lanes": ("utilisation",),
    "cache_dir": ("utilisation",), "build_out": ("utilisation",),
    "results": ("pareto",),
}
# utilisation with --report draws that report: nothing is built.
BUILD_ONLY = ("net", "board", "lanes", "cache_dir", "build_out")


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_options_apply(args, defaults: dict) -> None:
    """Refuse an option given (a value other than its default) to a kind that would ignore it."""
    for dest, kinds in USED_BY.items():
        value = getattr(args, dest)
        if value == defaults[dest]:
            continue
        if args.kind not in kinds:
            raise UserError(f"{_option(dest)} = {value!r} does not apply to `plot {args.kind}`; valid: "
                            f"{_option(dest)} with plot {' or '.join(kinds)} (leave it out here)")
        if args.kind == "utilisation" and args.report is not None and dest in BUILD_ONLY:
            raise UserError(f"{_option(dest)} = {value!r} does not apply to `plot utilisation --report`, which "
                            f"draws the report as it is; valid: {_option(dest)} without --report (a build to draw)")


def _ints(option: str, text: str) -> list[int]:
    try:
        return [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"{option} = {text!r} is not valid; valid: integers separated by commas (e.g. 0,3,7)") from None


def _shape(text):
    if text is None:
        return None
    parts = str(text).lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--shape = {text!r} is not valid; valid: HxW, e.g. 8x8 or 28x28") from None
    return h, w


def _one_sample(net, args):
    data, x, _ = datasets.select(net, args.data, args.split, args.data_dir)
    k = args.sample
    if not 0 <= k < len(x):
        raise ValueError(f"--sample = {k} is not valid; valid: 0 to {len(x) - 1} ({data} {args.split} split)")
    return datasets.encode_for(net, x[k:k + 1], seed=args.seed)[0], f"{data} {args.split} sample {k}"


def _rtl_predictions(net, path: str, y_model, y, info: dict):
    """Per-sample classes the RTL produced, from a ``spikegate sim --json`` result."""
    from ..plots_hw import read_json
    r = read_json("--rtl", path)
    if not isinstance(r, dict) or "bit_exact" not in r or "network" not in r:
        raise ValueError(f"--rtl = {path!r} is not valid; valid: the output of `spikegate sim --json`")
    if r["network"].get("digest") != net.digest():
        raise ValueError(f"--rtl = {path!r} is a simulation of another network (digest "
                         f"{str(r['network'].get('digest'))[:16]}, this one {net.digest()[:16]}): pass its --net")
    for key in ("data", "split", "samples", "seed"):
        if r.get(key) != info[key]:
            raise ValueError(f"--rtl = {path!r} ran {key} = {r.get(key)!r}, this plot {info[key]!r}: "
                             f"pass the same --{key} as the simulation")
    if "predictions" in r:
        return np.asarray(r["predictions"], np.int64), r
    if r["bit_exact"] != r["samples"]:
        raise UserError(f"--rtl = {path!r}: {r['samples'] - r['bit_exact']} samples differ from the model and "
                        f"the file lists no per-sample predictions, so the RTL's classes are unknown")
    # Every sample's spikes, final membranes and counts matched the model, and those decide the
    # class: the RTL's classes are the model's. The recorded accuracy must agree.
    if abs(float(np.mean(y_model == y)) - r["accuracy"]) > 1e-9:
        raise ValueError(f"--rtl = {path!r} records accuracy {r['accuracy']} but the model gives "
                         f"{np.mean(y_model == y)} on the same samples")
    return y_model, r


def _lanes(text: str):
    """--lanes of the build to plot: as `spikegate build` takes it, ``auto`` included."""
    try:
        return parse_lanes(text, auto=True)
    except ValueError as e:  # argparse prints this one's message, not a generic one
        raise argparse.ArgumentTypeError(str(e)) from None


def _report(args) -> tuple[dict, dict]:
    """utilisation: the build report of --report, else of the (cached) build for --board."""
    from .. import plots_hw
    if args.report:
        return plots_hw.load_report(args.report), {"report": args.report}
    from ..boards.build import TimingError, build
    try:
        rep = build(args.board, args.net, lanes=args.lanes, cache_dir=args.cache_dir, out_dir=args.build_out)
    except TimingError as e:
        rep = e.report
    return rep, {"board": rep["board"], "cached": rep["cached"]}


def _results(args) -> tuple[dict, dict]:
    """pareto: the sweep of --results."""
    if not args.results:
        raise ValueError("--results is required for `plot pareto`: the output of `spikegate explore --json`")
    from .. import plots_hw
    r = plots_hw.read_json("--results", args.results)
    if not isinstance(r, dict) or not isinstance(r.get("points"), list):
        raise ValueError(f"--results = {args.results!r} is not valid; valid: the output of `spikegate explore --json`")
    return r, {"points": len(r["points"])}


def _html(args) -> tuple[str, dict]:
    from .. import plots_html
    if args.kind == "utilisation":
        rep, info = _report(args)
        return plots_html.build_html(rep), info
    r, info = _results(args)
    return plots_html.sweep_html(r, plots_html.best_reports(r)), info


def _figure(args):
    from .. import plots, plots_hw
    kind = args.kind
    if kind == "utilisation":
        rep, info = _report(args)
        return plots_hw.utilisation(rep, dpi=args.dpi), info
    if kind == "pareto":
        r, info = _results(args)
        return plots_hw.pareto(r["points"], r.get("pareto"), dpi=args.dpi), info
    net = datasets.load_network(args.net)
    if kind == "fields":
        layer = args.layer if args.layer is not None else 0
        return plots.fields(net, layer, shape=_shape(args.shape), max_tiles=args.max_tiles,
                            dpi=args.dpi), {"layer": layer}
    if kind == "confusion":
        data, x, y = datasets.select(net, args.data, args.split, args.data_dir, args.samples)
        pred = classify(net, simulate(net, datasets.encode_for(net, x, seed=args.seed)))
        info = {"data": data, "split": args.split, "samples": len(y), "seed": args.seed}
        what = "integer model"
        if args.rtl:
            pred, r = _rtl_predictions(net, args.rtl, pred, y, info)
            what = f"RTL ({r['simulator']}, lanes {r['lanes']})"
        title = f"{what} on {data} {args.split} ({len(y)} samples)"
        return plots.confusion(y, pred, n_classes=plots.class_count(net, y), title=title,
                               dpi=args.dpi), {**info, "accuracy": float(np.mean(pred == y)), "source": what}
    spikes, what = _one_sample(net, args)
    if kind == "raster":
        return plots.raster(net, spikes, title=f"spike raster: {what}", dpi=args.dpi), {"sample": args.sample}
    layer = args.layer if args.layer is not None else len(net.layers) - 1
    neurons = _ints("--neurons", args.neurons) if args.neurons is not None else plots.active_neurons(net, spikes, layer)
    return plots.trace(net, spikes, layer, neurons, title=f"membrane traces, layer {layer}: {what}",
                       dpi=args.dpi), {"sample": args.sample, "layer": layer, "neurons": neurons}


def check_arguments(args, defaults: dict) -> None:
    """Every option, before any data is read or a build runs: each applies to the kind (``defaults``:
    the parser's, telling which were given), input files exist and are small enough to read (a
    pipe or /dev/zero would never end)."""
    from ..checks import check_input_file, check_int, check_output_dir
    from ..model.params import MAX_NETWORK_FILE_BYTES
    from ..boards.targets import get_board
    from ..model.hardware import HardwareConfig
    check_options_apply(args, defaults)
    check_data_arguments(args)
    get_board(args.board)
    if args.lanes not in (None, AUTO):  # the values; a per-layer list's length needs the network
        HardwareConfig(lanes=args.lanes)
    check_int("--sample", args.sample, 0)
    check_int("--layer", args.layer, 0)
    check_int("--max-tiles", args.max_tiles, 1)
    for option, path in (("--rtl", args.rtl), ("--report", args.report), ("--results", args.results)):
        check_input_file(option, path, MAX_NETWORK_FILE_BYTES)
    for option, path in (("--cache-dir", args.cache_dir), ("--build-out", args.build_out)):
        check_output_dir(option, path)


def run(args) -> int:
    from .. import plots
    from ..plots_html import HTML_SUFFIXES
    if args.out is None:
        args.out = f"{args.kind}.png"
    check_arguments(args, args.plot_defaults)
    if Path(args.out).suffix.lower() in HTML_SUFFIXES:
        if args.kind not in HTML_KINDS:
            raise ValueError(f"--out = {args.out!r} is not valid for `plot {args.kind}`; valid: a name ending in "
                             f".png or .svg (.html for {' and '.join(HTML_KINDS)})")
        if args.dpi != args.plot_defaults["dpi"]:
            raise UserError(f"--dpi = {args.dpi!r} does not apply to an HTML report (--out = {args.out!r}); valid: "
                            "--dpi with a .png or .svg --out")
        from ..plots_html import check_html_file, save_html
        check_html_file(args.out, "--out")
        text, info = _html(args)
        path = save_html(text, args.out)
        result = {"plot": args.kind, "file": str(path), "bytes": path.stat().st_size, **info}
        print(json.dumps(result, indent=1) if args.json else f"wrote {path} ({result['bytes']} bytes)")
        return 0
    plots.output_format(args.out, "--out")
    fig, info = _figure(args)
    path = plots.save(fig, args.out)
    # The pixels Agg renders: the size in inches times the dpi, rounded down (8.1 in at 70 dpi is 566).
    w, h = fig.canvas.get_width_height()
    result = {"plot": args.kind, "file": str(path), "width": w, "height": h, **info}
    print(json.dumps(result, indent=1) if args.json else f"wrote {path} ({result['width']}x{result['height']})")
    return 0


def register(subparsers) -> None:
    from ..boards.targets import board_names
    p = subparsers.add_parser(
        "plot", help="draw spike rasters, membrane traces, confusion matrices, weights, utilisation, Pareto fronts",
        description="Write one figure as PNG (SVG when --out ends in .svg). raster: input and per-layer spikes of "
                    "one sample; trace: membranes and threshold of chosen neurons over time; confusion: model "
                    "results on a data set, or RTL results with --rtl SIM.json (from `spikegate sim --json`); "
                    "fields: a layer's weights as image tiles; utilisation: a build report (--report FILE, else "
                    "the cached build for --board); pareto: a sweep (--results from `spikegate explore --json`). "
                    "For utilisation and pareto, -o FILE.html writes a self-contained HTML report (tables, "
                    "figures embedded). "
                    "Needs the 'plot' extra (pip install \"spikegate[plot]\").")
    p.add_argument("kind", choices=KINDS, metavar="KIND", help=f"one of: {', '.join(KINDS)}")
    add_net_argument(p)
    add_data_arguments(p)
    p.add_argument("-o", "--out", metavar="FILE", default=None,
                   help="output file, .png or .svg; .html for utilisation and pareto (default: KIND.png)")
    p.add_argument("--dpi", type=int, default=100, help="pixels per inch (default: 100)")
    p.add_argument("--sample", type=int, default=0, metavar="K", help="raster/trace: sample index in the split (default: 0)")
    p.add_argument("--layer", type=int, default=None, metavar="L",
                   help="trace: layer (default: the last); fields: layer (default: 0)")
    p.add_argument("--neurons", metavar="J,J,...", default=None,
                   help="trace: neuron indices (default: the 4 most active on the sample)")
    p.add_argument("--shape", metavar="HxW", default=None,
                   help="fields: image shape of the layer's inputs (default: square, e.g. 8x8 or 28x28)")
    p.add_argument("--max-tiles", type=int, default=64, metavar="N", help="fields: at most N neurons (default: 64)")
    p.add_argument("--rtl", metavar="SIM.json", default=None, help="confusion: RTL results from `spikegate sim --json`")
    p.add_argument("--report", metavar="FILE", default=None, help="utilisation: a build report JSON")
    p.add_argument("--board", default="icebreaker", metavar="NAME",
                   help=f"utilisation without --report: build (cached) for this board: {', '.join(board_names())}")
    p.add_argument("--lanes", type=_lanes, default=None, metavar="P",
                   help="utilisation: lanes of that build (auto: as `spikegate build --lanes auto`)")
    p.add_argument("--cache-dir", metavar="DIR", default=None, help="utilisation: build cache folder")
    p.add_argument("--build-out", metavar="DIR", default=None, help="utilisation: build output folder")
    p.add_argument("--results", metavar="FILE", default=None, help="pareto: the output of `spikegate explore --json`")
    p.add_argument("--json", action="store_true", help="print what was written as JSON on stdout")
    p.set_defaults(func=run, plot_defaults={a.dest: a.default for a in p._actions if a.dest in (*USED_BY, "dpi")})
