"""Per board: what the accelerator costs and how fast it runs, from real builds.

    python bench/boards.py [--boards icebreaker,ulx3s-85f,orangecrab-25f] [--lanes P]
                           [--mnist-net FILE] [--data-dir DIR] [--no-mnist]
                           [--seed BOARD/NETWORK=N ...] [--json]

For the built-in digits network and an MNIST-sized 784-128-10 network with 8-bit weights (trained
here on the shared MNIST subset with ``spikegate.training``, unless --mnist-net gives one), each
board is built with ``spikegate.boards.build`` (YoWASP Yosys + nextpnr; unchanged designs come
from the build cache) and the bench prints, side by side:

- LUT % and block RAM % (used / available after place and route), SPRAM use;
- fmax achieved (nextpnr's report) and the PLL clock the bitstream runs at;
- cycles per sample (mean over the test split, from the cycle-exact twin of the core, which the
  gateware tests hold equal to the hardware's cycle counter), µs per sample and samples/s at the
  achieved fmax and at the PLL clock.

A network that does not fit a board is reported with the build's resource error (needed vs
available) instead of figures. Each board uses its default lanes (2 on the iCEBreaker, 4 elsewhere)
unless --lanes says otherwise; the MNIST-sized builds get an input buffer just large enough for
every test sample (a power of two) instead of the 4096-word worst case, which is what lets the
iCEBreaker hold it (with its layer-0 weights in SPRAM, loaded over the host link).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from spikegate.boards.build import BuildError, TimingError, build
from spikegate.boards.fit import ResourceError
from spikegate.model import Network
from spikegate.progress import note

MNIST_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-subset"


def mnist_sized_network(data_dir: Path, cache: Path) -> Network:
    """A 784-128-10 SNN with 8-bit weights trained on the MNIST subset (cached on disk)."""
    if cache.is_file():
        return Network.load(cache)
    from spikegate.training import TrainConfig
    from spikegate.training import build as train
    from spikegate.progress import progress
    print("training a 784-128-10 network on the MNIST subset ...", file=sys.stderr)
    net, _ = train(TrainConfig(data="mnist", hidden=(128,), weight_bits=8, epochs=15), data_dir=data_dir,
                   progress=progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    net.save(cache)
    return net


def input_words_needed(net: Network, data_dir) -> int:
    """Input-buffer words for every MNIST test sample (spikes + end-of-step words), rounded up to
    a power of two: the buffer the MNIST-sized builds get instead of the worst case 4096."""
    from spikegate import datasets
    x, _ = datasets.load("mnist", "test", data_dir)
    s = datasets.encode_for(net, x, seed=0)
    need = int(s.sum(axis=(1, 2)).max()) + net.timesteps
    return 1 << (need - 1).bit_length()


def row(board: str, label: str, net, lanes, out: Path, data_dir, samples, max_events=None, seed=None) -> dict:
    try:
        r = build(board, net, lanes=lanes, out_dir=out / board / label, data_dir=data_dir, samples=samples,
                  max_events=max_events, seed=seed, progress=note)
    except ResourceError as e:
        return {"board": board, "network": label, "fits": False, "error": str(e),
                "resource": e.resource, "needed": e.needed, "available": e.available}
    except TimingError as e:
        r = e.report
        r["timing_error"] = str(e)
    except BuildError as e:
        return {"board": board, "network": label, "fits": None, "error": str(e)}
    u, t, p = r["utilization"], r["timing"], r["performance"]
    return {
        "board": board, "network": label, "fits": True, "lanes": r["lanes"],
        "lut_pct": u["LUT"]["percent"], "lut": f"{u['LUT']['used']}/{u['LUT']['available']}",
        "ram_pct": u["BRAM"]["percent"], "bram": f"{u['BRAM']['used']}/{u['BRAM']['available']}",
        "spram": f"{u['SPRAM']['used']}/{u['SPRAM']['available']}", "dsp": u["DSP"]["used"],
        "fmax_mhz": t["fmax_mhz"], "clock_mhz": r["clock"]["pll_mhz"], "timing_met": t["met"],
        "cycles_per_sample": p["cycles_per_sample"]["mean"], "workload": p["workload"],
        "us_per_sample_fmax": p["at_fmax"]["latency_us"], "samples_per_s_fmax": p["at_fmax"]["samples_per_s"],
        "us_per_sample_clock": p["at_clock"]["latency_us"],
        "samples_per_s_clock": p["at_clock"]["samples_per_s"],
        "cached": r["cached"], "seconds": r["seconds"], "weight_ram": r["weight_ram"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", default="icebreaker,ulx3s-85f,orangecrab-25f")
    ap.add_argument("--lanes", type=int, default=None, help="default: each board's default lanes")
    ap.add_argument("--mnist-net", type=Path, default=None)
    ap.add_argument("--data-dir", type=Path, default=MNIST_SUBSET)
    ap.add_argument("--no-mnist", action="store_true")
    ap.add_argument("--samples", type=int, default=None, help="samples per split for cycles/sample")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "spikegate-bench-boards")
    ap.add_argument("--seed", action="append", default=[], metavar="BOARD/NETWORK=N",
                    help="nextpnr seed for one build, e.g. icebreaker/mnist-784-128-10=5 (the MNIST-sized "
                         "iCEBreaker build is within 1-5%% of 16.125 MHz and passes or not by placement)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    boards = [b.strip() for b in args.boards.split(",") if b.strip()]
    seeds = {}
    for item in args.seed:
        key, _, value = item.partition("=")
        if "/" not in key or not value.isdigit():
            ap.error(f"--seed {item!r} is not valid; valid: BOARD/NETWORK=N, e.g. icebreaker/mnist-784-128-10=5")
        seeds[key] = int(value)

    nets = [("digits", None, None, None)]
    if not args.no_mnist:
        mnet = (Network.load(args.mnist_net) if args.mnist_net
                else mnist_sized_network(args.data_dir, args.out / "mnist-784-128-10.json"))
        nets.append(("mnist-784-128-10", mnet, args.data_dir, input_words_needed(mnet, args.data_dir)))
    rows = []
    for label, net, data_dir, max_events in nets:
        for b in boards:
            print(f"== {b}: {label}", file=sys.stderr)
            seed = seeds.get(f"{b}/{label}")
            rows.append(row(b, label, net, args.lanes, args.out, data_dir, args.samples, max_events, seed))
            rows[-1]["max_events"] = max_events
            rows[-1]["seed"] = seed
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    hdr = (f"{'board':<15} {'network':<17} {'LUT%':>6} {'RAM%':>6} {'SPRAM':>6} {'fmax':>7} {'clock':>6} "
           f"{'cyc/sample':>10} {'us@fmax':>8} {'samples/s@fmax':>14} {'us@clk':>8} {'samples/s@clk':>13}")
    print(hdr)
    for r in rows:
        if not r["fits"]:
            print(f"{r['board']:<15} {r['network']:<17} does not fit: {r['error']}")
            continue
        flag = "" if r["timing_met"] else "  (timing NOT met)"
        print(f"{r['board']:<15} {r['network']:<17} {r['lut_pct']:>6.1f} {r['ram_pct']:>6.1f} {r['spram']:>6} "
              f"{r['fmax_mhz']:>7.2f} {r['clock_mhz']:>6g} {r['cycles_per_sample']:>10.1f} "
              f"{r['us_per_sample_fmax']:>8.1f} {r['samples_per_s_fmax']:>14.0f} {r['us_per_sample_clock']:>8.1f} "
              f"{r['samples_per_s_clock']:>13.0f}{flag}")
    print("\nworkloads: " + "; ".join(sorted({f"{r['network']}: {r['workload']}" for r in rows if r["fits"]})))
    for r in rows:
        if r["fits"] and not isinstance(r["weight_ram"], str):
            print(f"{r['board']} {r['network']}: weight RAM per layer {r['weight_ram']} (SPRAM weights are "
                  f"loaded over the host link after configuration)")
    for r in rows:
        if r.get("seed") is not None:
            print(f"{r['board']} {r['network']}: nextpnr seed {r['seed']}")
    mev = {r["network"]: r["max_events"] for r in rows if r.get("max_events")}
    for k, v in mev.items():
        print(f"{k}: input buffer {v} words (enough for every test sample)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
