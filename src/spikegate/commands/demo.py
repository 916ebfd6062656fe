"""``spikegate demo``: the main job on the built-in digits network.

Loads the default network, recomputes the float ANN's accuracy from the parameters shipped in the
file, runs the bit-exact integer model on the test split and prints both accuracies with the
spikes and synaptic operations per sample, and what the accelerator would take on each supported
board: exact cycles per sample (the cycle formula, checked against the gateware by the tests) at
the board's default lanes, and the latency and throughput at its documented clock.
"""
from __future__ import annotations

from .. import datasets
from ..model_eval import DemoResult, demo
from ..progress import progress
from ._common import check_data_arguments, add_json_argument, add_net_argument, emit
from .model import format_report


def format_demo(r: DemoResult) -> str:
    lines = [format_report(r.evaluation)]
    if r.conversion_gap is not None:
        lines.append(f"conversion     integer SNN vs float ANN: {r.conversion_gap:+.2f} percentage points")
    lines.append("accelerator    exact cycles per sample (event-driven: they follow the spikes), at each board's "
                 "documented clock")
    for h in r.hardware:
        lines.append(f"  {h.board:<15} {h.device:<19} P={h.lanes:<2} {h.cycles_per_sample:8.1f} cycles  "
                     f"@ {h.clock_mhz:g} MHz: {h.us_per_sample:7.1f} us/sample, {h.samples_per_s:8.0f} samples/s")
    lines.append("next           spikegate sim (the RTL in Verilator, bit-exact check), "
                 "spikegate build --board icebreaker")
    return "\n".join(lines)


def run(args) -> int:
    check_data_arguments(args)
    net = datasets.load_network(args.net)
    emit(args, demo(net, args.net, args.data_dir, args.samples, progress=progress), format_demo)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the built-in digits network: float ANN vs integer SNN accuracy",
        description="Run the built-in digits classifier (or --net FILE) on its data set's test split with the "
                    "bit-exact integer model and print the float ANN accuracy beside the integer SNN accuracy, "
                    "spikes and synaptic operations per sample.")
    add_net_argument(p)
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="MNIST IDX directory, for a --net trained on mnist")
    p.add_argument("--samples", metavar="N", type=int, default=None,
                   help="use only the first N test samples (default: all)")
    add_json_argument(p)
    p.set_defaults(func=run)
