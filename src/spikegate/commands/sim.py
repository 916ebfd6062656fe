"""``spikegate sim``: run a data set through the network's generated Verilog in Verilator or Icarus
and check every sample against the bit-exact model (per-layer spikes at every step, final
membranes, spike counts, exact cycle count). Needs the ``sim`` extra."""
from __future__ import annotations

from .. import datasets
from ..extras import require_extra
from ..progress import note, progress
from ..rtl import SIMULATORS, RtlSimulation, simulate_dataset
from ..checks import check_int, check_output_dir, check_output_file
from ._common import check_data_arguments, add_data_arguments, add_json_argument, add_lanes_argument, add_net_argument, emit, parse_lanes


def _lanes(r: RtlSimulation) -> str:
    return str(r.lanes) if isinstance(r.lanes, int) else ",".join(map(str, r.lanes))


def format_report(r: RtlSimulation) -> str:
    n = r.network
    shape = "-".join(str(k) for k in n["shape"])
    c = r.cycles_per_sample
    lanes = _lanes(r)
    lines = [
        f"network        {n['name'] or '(unnamed)'} [{n['file']}]  {shape}  T={n['timesteps']}  lanes={lanes}",
        f"data           {r.data} {r.split} split, {r.samples} samples",
        f"simulator      {r.simulator} ({'cached build' if r.build_reused else 'built in %.1f s' % r.build_seconds})",
        f"bit-exact      {r.bit_exact} of {r.samples} samples match the model "
        f"(spikes of every layer at every step, final membranes, counts, cycles)",
        f"accuracy       {100 * r.accuracy:6.2f} % on the hardware, {100 * r.model_accuracy:6.2f} % in the model",
        f"cycles/sample  {c['mean']:.1f} (min {c['min']}, max {c['max']})",
        f"speed          {r.cycles_per_second:,.0f} simulated cycles/s ({r.simulated_cycles} cycles in "
        f"{r.sim_seconds:.2f} s, loading and read-back included)",
        f"wall time      {r.wall_seconds:.1f} s",
    ]
    if r.first_mismatch:
        lines.append(f"FIRST MISMATCH {r.first_mismatch['text']}  ({r.mismatches} differences in "
                     f"{r.samples - r.bit_exact} samples)")
    if r.waves:
        lines.append(f"waves          {r.waves} (sample {r.waves_sample})")
    return "\n".join(lines)


def run(args) -> int:
    check_data_arguments(args)
    check_int("--waves-sample", args.waves_sample, 0)
    if args.waves:
        check_output_file("--waves", args.waves)
    check_output_dir("--build-dir", args.build_dir)
    if args.plot is not None:
        from ..plots import check_plot_file
        check_plot_file(args.plot)
    require_extra("sim")
    net = datasets.load_network(args.net)
    r = simulate_dataset(net, args.net, data=args.data, split=args.split, data_dir=args.data_dir,
                         samples=args.samples, seed=args.seed, simulator=args.simulator,
                         lanes=parse_lanes(args.lanes), build_dir=args.build_dir, waves=args.waves,
                         waves_sample=args.waves_sample, progress=progress)
    if args.plot is not None:
        from ..plots import save_confusion
        done = len(r.predictions)
        path = save_confusion(args.plot, net, r.labels[:done], r.predictions,
                              title=f"RTL ({r.simulator}, lanes {_lanes(r)}) on {r.data} {r.split}: "
                                    f"{r.bit_exact} of {r.samples} samples bit-exact")
        note(f"sim: wrote {path}")
    emit(args, r, format_report)
    return 0 if r.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sim", help="run a data set through the generated Verilog (Verilator/Icarus) and check it bit for bit",
        description="Generate the network's NetworkCore, build it with Verilator (default) or Icarus through "
                    "cocotb (builds are cached per design), run the data set's samples through it and compare "
                    "every layer's spikes at every step, the final membranes and spike counts and the cycle "
                    "count with the bit-exact model. Exits 1 if any sample differs, naming the first "
                    "difference (sample, step, layer, neuron, expected vs got). Needs the 'sim' extra.")
    add_net_argument(p)
    add_data_arguments(p)
    p.add_argument("--simulator", choices=SIMULATORS, default="verilator", help="(default: verilator)")
    add_lanes_argument(p)
    p.add_argument("--waves", metavar="FILE", nargs="?", const="", default=None,
                   help="also write a waveform of one sample (VCD from Verilator, FST from Icarus): the first "
                        "mismatching one, else --waves-sample; FILE defaults to sim-<simulator>-sample<k>.vcd/.fst")
    p.add_argument("--waves-sample", metavar="K", type=int, default=None,
                   help="sample whose waves to write when all match (default: 0)")
    p.add_argument("--build-dir", metavar="DIR", default=None,
                   help="simulator build cache (default: $SPIKEGATE_SIM_CACHE or ~/.cache/spikegate/sim)")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw the confusion matrix of the RTL's classes (.png, or .svg); needs the 'plot' extra")
    add_json_argument(p)
    p.set_defaults(func=run)
