"""``spikegate info``: a network's shape, per-layer parameters, memory footprint and digest."""
from __future__ import annotations

from .. import datasets
from ..checks import check_int
from ..model.hardware import MAX_EVENTS
from ..netinfo import DEFAULT_LANES, DEFAULT_MAX_EVENTS, NetworkInfo, network_info
from ._common import add_json_argument, add_lanes_argument, add_net_argument, emit, parse_lanes


def _bits(m: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m.items() if k != "total")


def format_info(d: NetworkInfo) -> str:
    shape = "-".join(str(k) for k in d.shape)
    lines = [
        f"network    {d.name or '(unnamed)'} [{d.file}]",
        f"shape      {shape} ({len(d.layers)} layers, {d.synapses} synapses)",
        f"run        T = {d.timesteps} steps, {d.encoding} encoding, classify by "
        f"{'final readout membrane' if d.readout else 'output spike count'}",
        f"digest     {d.digest}",
        "layers",
    ]
    for l in d.layers:
        leak = l["leak"]["kind"] + "".join(f" {k}={v}" for k, v in l["leak"].items() if k != "kind")
        kind = "readout" if l["readout"] else f"theta={l['threshold']} reset={l['reset']} R={l['refractory']}"
        lines.append(f"  [{l['index']}] {l['name'] or '(unnamed)':<10} {l['n_in']:5d} -> {l['n']:<5d} "
                     f"W {l['weight_bits']}b {l['weight_range']}  V {l['membrane_bits']}b  leak {leak}  {kind}  "
                     f"nonzero {l['nonzero_weights']}/{l['weights']}"
                     + (f"  recurrent nonzero {l['nonzero_recurrent_weights']}/{l['recurrent_synapses']}"
                        if l["recurrent_synapses"] else "")
                     + (f"  delays <= {l['max_delay']}" if l["max_delay"] else "")
                     + (f"  {' + '.join(l['features'])}" if l["features"] else ""))
        m = l["memory_bits"]
        if m is not None:
            lines.append(f"      memory bits ({l['lanes']} lanes x {l['groups']} groups): {_bits(m)}, total {m['total']}")
    m, hw = d.memory_bits, d.hardware
    if m is None:
        lines.append(f"hardware   none yet: {hw['unsupported']}")
    else:
        _memory_lines(lines, m, hw)
    _recorded_lines(lines, d.recorded)
    return "\n".join(lines)


def _memory_lines(lines: list, m: dict, hw: dict) -> None:
    lanes = ",".join(map(str, hw["lanes"]))
    lines.append(f"memory     {m['total']} bits = {m['total'] / 8192:.1f} KiB in the accelerator `spikegate export` "
                 f"makes with lanes {lanes}, max_events {hw['max_events']}")
    lines.append(f"           {_bits(m)}")


def _recorded_lines(lines: list, r: dict) -> None:
    if r:
        acc = []
        if "ann_test_accuracy" in r:
            acc.append(f"float ANN {100 * r['ann_test_accuracy']:.2f} %")
        if "snn_test_accuracy" in r:
            acc.append(f"integer SNN {100 * r['snn_test_accuracy']:.2f} %")
        src = f"trained on {r['dataset']}" if "dataset" in r else "provenance"
        lines.append(f"recorded   {src}" + (f"; test accuracy at training: {', '.join(acc)}" if acc else "")
                     + " (run `spikegate model` to measure it now)")
        if "generated_by" in r:
            lines.append(f"reproduce  {r['generated_by']}")


def run(args) -> int:
    check_int("--max-events", args.max_events, 1, MAX_EVENTS)
    net = datasets.load_network(args.net)
    emit(args, network_info(net, args.net, parse_lanes(args.lanes), args.max_events), format_info)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="shape, per-layer parameters, memory bits and digest of a network",
        description="Describe a network file: shape, per-layer neuron parameters, the memory bits of the "
                    "accelerator the generator makes for it (per layer and memory, and the input buffer; "
                    "they depend on --lanes and --max-events), the digest of its computation and its "
                    "recorded provenance.")
    add_net_argument(p)
    add_lanes_argument(p, str(DEFAULT_LANES), f"{DEFAULT_LANES}, as spikegate export")
    p.add_argument("--max-events", metavar="N", type=int, default=DEFAULT_MAX_EVENTS,
                   help=f"input buffer words per sample (default: {DEFAULT_MAX_EVENTS}, as spikegate export)")
    add_json_argument(p)
    p.set_defaults(func=run)
