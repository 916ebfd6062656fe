"""``spikegate info``: a network's shape, per-layer parameters, memory footprint and digest."""
from __future__ import annotations

import json

from .. import datasets
from .model import add_net_argument, network_summary


def _bits_for(n: int) -> int:
    """Unsigned bits to count 0..n."""
    return max(int(n).bit_length(), 1) if n > 0 else 0


def layer_info(layer, index: int) -> dict:
    synapses = layer.n_in * layer.n
    weight_bits = synapses * layer.weight_bits
    bias_bits = layer.n * layer.membrane_bits
    # The hardware holds one membrane per neuron and, when R > 0, a refractory counter per neuron;
    # thresholds are one per layer.
    state_bits = layer.n * (layer.membrane_bits + _bits_for(layer.refractory))
    return {
        "index": index,
        "name": layer.name,
        "n_in": layer.n_in,
        "n": layer.n,
        "readout": layer.readout,
        "weight_bits": layer.weight_bits,
        "membrane_bits": layer.membrane_bits,
        "threshold": layer.threshold,
        "leak": layer.leak.to_dict(),
        "reset": layer.reset,
        "refractory": layer.refractory,
        "synapses": synapses,
        "nonzero_weights": int((layer.weights != 0).sum()),
        "weight_range": [int(layer.weights.min()), int(layer.weights.max())],
        "bias_range": [int(layer.bias.min()), int(layer.bias.max())],
        "memory_bits": {"weights": weight_bits, "biases": bias_bits, "state": state_bits,
                        "total": weight_bits + bias_bits + state_bits},
    }


def network_info(net, path) -> dict:
    layers = [layer_info(layer, i) for i, layer in enumerate(net.layers)]
    meta = net.meta if isinstance(net.meta, dict) else {}
    recorded = {k: meta[k] for k in ("dataset", "generated_by", "split", "train_samples", "test_samples",
                                      "seed", "ann_test_accuracy", "snn_test_accuracy") if k in meta}
    return {
        **network_summary(net, path),
        "layers": layers,
        "synapses": sum(l["synapses"] for l in layers),
        "memory_bits": {k: sum(l["memory_bits"][k] for l in layers) for k in ("weights", "biases", "state", "total")},
        "has_float_ann": "ann" in meta,
        "recorded": recorded,
    }


def format_info(d: dict) -> str:
    shape = "-".join(str(k) for k in d["shape"])
    lines = [
        f"network    {d['name'] or '(unnamed)'} [{d['file']}]",
        f"shape      {shape} ({len(d['layers'])} layers, {d['synapses']} synapses)",
        f"run        T = {d['timesteps']} steps, {d['encoding']} encoding, classify by "
        f"{'final readout membrane' if d['readout'] else 'output spike count'}",
        f"digest     {d['digest']}",
        "layers",
    ]
    for l in d["layers"]:
        leak = l["leak"]["kind"] + "".join(f" {k}={v}" for k, v in l["leak"].items() if k != "kind")
        kind = "readout" if l["readout"] else f"theta={l['threshold']} reset={l['reset']} R={l['refractory']}"
        lines.append(f"  [{l['index']}] {l['name'] or '(unnamed)':<10} {l['n_in']:5d} -> {l['n']:<5d} "
                     f"W {l['weight_bits']}b {l['weight_range']}  V {l['membrane_bits']}b  leak {leak}  {kind}  "
                     f"nonzero {l['nonzero_weights']}/{l['synapses']}")
        m = l["memory_bits"]
        lines.append(f"      memory bits: weights {m['weights']}, biases {m['biases']}, state {m['state']}, "
                     f"total {m['total']}")
    m = d["memory_bits"]
    lines.append(f"memory     {m['total']} bits = {m['total'] / 8192:.1f} KiB (weights {m['weights']}, biases "
                 f"{m['biases']}, neuron state {m['state']})")
    r = d["recorded"]
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
    return "\n".join(lines)


def run(args) -> int:
    net = datasets.load_network(args.net)
    d = network_info(net, args.net)
    print(json.dumps(d, indent=1) if args.json else format_info(d))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="shape, per-layer parameters, memory bits and digest of a network",
        description="Describe a network file: shape, per-layer neuron parameters, weight/bias/state "
                    "memory in bits, the digest of its computation and its recorded provenance.")
    add_net_argument(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)
