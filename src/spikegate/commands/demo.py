"""``spikegate demo``: the main job on the built-in digits network.

Loads the default network, recomputes the float ANN's accuracy from the parameters shipped in the
file, runs the bit-exact integer model on the test split and prints both accuracies with the
spikes and synaptic operations per sample, and what the accelerator would take on each supported
board: exact cycles per sample (the cycle formula, checked against the gateware by the tests) at
the board's default lanes, and the latency and throughput at its documented clock.
"""
from __future__ import annotations

import json

from .. import datasets
from ..boards.targets import BOARDS
from ..progress import note
from .model import add_net_argument, evaluate_on_data, format_report


def run(args) -> int:
    net = datasets.load_network(args.net)
    note(f"spikegate demo: {'built-in digits network' if args.net is None else args.net}")
    lanes = sorted({b.default_lanes for b in BOARDS.values()})
    r = evaluate_on_data(net, args.net, None, "test", args.data_dir, args.samples, 0, lanes=lanes)
    r["hardware"] = []
    for b in BOARDS.values():
        cycles = r["snn"]["cycles_per_sample"][str(b.default_lanes)]
        r["hardware"].append({"board": b.name, "device": b.device, "clock_mhz": b.clock_mhz,
                              "lanes": b.default_lanes, "cycles_per_sample": cycles,
                              "us_per_sample": cycles / b.clock_mhz,
                              "samples_per_s": b.clock_mhz * 1e6 / cycles})
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(format_report(r))
    if r["ann_accuracy"] is not None:
        gap = 100 * (r["snn"]["accuracy"] - r["ann_accuracy"])
        print(f"conversion     integer SNN vs float ANN: {gap:+.2f} percentage points")
    print("accelerator    exact cycles per sample (event-driven: they follow the spikes), at each board's "
          "documented clock")
    for h in r["hardware"]:
        print(f"  {h['board']:<15} {h['device']:<19} P={h['lanes']:<2} {h['cycles_per_sample']:8.1f} cycles  "
              f"@ {h['clock_mhz']:g} MHz: {h['us_per_sample']:7.1f} us/sample, {h['samples_per_s']:8.0f} samples/s")
    print("next           spikegate sim (the RTL in Verilator, bit-exact check), spikegate build --board icebreaker")
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
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)
