"""``spikegate model``: run the bit-exact integer model on a data set and report accuracy and
activity (spikes, synaptic operations, sparsity)."""
from __future__ import annotations

from .. import datasets
from ..model_eval import ModelEvaluation, evaluate_on_data
from ..progress import progress
from ._common import check_data_arguments, add_data_arguments, add_json_argument, add_net_argument, emit


def format_report(r: ModelEvaluation) -> str:
    n, s = r.network, r.snn
    shape = "-".join(str(k) for k in n["shape"])
    lines = [
        f"network        {n['name'] or '(unnamed)'} [{n['file']}]  {shape}  T={n['timesteps']}  "
        f"{n['encoding']} encoding  digest {n['digest'][:16]}",
        f"data           {r.data} {r.split} split, {s['samples']} samples",
    ]
    if r.ann_accuracy is not None:
        lines.append(f"float ANN      accuracy {100 * r.ann_accuracy:6.2f} %")
    lines.append(f"integer SNN    accuracy {100 * s['accuracy']:6.2f} %  ({s['correct']}/{s['samples']}, "
                 f"{s['timesteps']} time steps)")
    lines.append(f"spikes/sample  {s['spikes_per_sample']:.1f} in the network, "
                 f"{s['input_spikes_per_sample']:.1f} input spikes")
    for i, layer in enumerate(s["layers"]):
        what = "inputs " if i == 0 else "neurons"
        if layer["readout"]:
            lines.append(f"  {layer['name']:<12} {layer['neurons']:5d} {what}  readout (membrane, no spikes)")
        else:
            lines.append(f"  {layer['name']:<12} {layer['neurons']:5d} {what}  {layer['spikes_per_sample']:8.1f} "
                         f"spikes/sample  rate {layer['spike_rate']:.3f}/step  sparsity {layer['sparsity']:.3f}")
    dense = s["dense_synaptic_ops_per_sample"]
    lines.append(f"synaptic ops   {s['synaptic_ops_per_sample']:.0f} per sample (a dense, frame-based pass would "
                 f"do {dense}: {100 * s['synaptic_ops_per_sample'] / dense:.1f} %)")
    for note in r.notes:
        lines.append(f"note           {note}")
    return "\n".join(lines)


def run(args) -> int:
    check_data_arguments(args)
    if args.plot is not None:
        from ..plots import check_plot_file
        check_plot_file(args.plot)
    net = datasets.load_network(args.net)
    r = evaluate_on_data(net, args.net, args.data, args.split, args.data_dir, args.samples, args.seed,
                         progress=progress, predictions=True)
    if args.plot is not None:
        from ..plots import save_confusion
        from ..progress import note as say
        path = save_confusion(args.plot, net, r.snn["labels"], r.snn["predictions"],
                              title=f"integer model on {r.data} {r.split} ({r.snn['samples']} samples)")
        say(f"model: wrote {path}")
    emit(args, r, format_report)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "model", help="accuracy and activity of the integer model on a data set",
        description="Run the bit-exact integer model of a network on a data set split and report its "
                    "accuracy, the float ANN's accuracy (when the file carries it), spikes per sample per "
                    "layer, synaptic operations per sample and sparsity. --json lists every sample's "
                    "class and label.")
    add_net_argument(p)
    add_data_arguments(p)
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw the confusion matrix of the model's classes (.png, or .svg); needs the 'plot' extra")
    add_json_argument(p)
    p.set_defaults(func=run)
