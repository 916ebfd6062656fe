"""Cycles per sample and synaptic operations per cycle of the NetworkCore, for several lane counts.

    python bench/hw_cycles.py [--samples N] [--lanes 1,2,4,...] [--verify K] [--schedules S,...] [--json]

Every network and lane count is measured under each schedule (``HardwareConfig.schedule``, default
both: ``inflight``, the default, where layer l works on step t while layer l+1 works on step t-1,
and ``sequential``, the layers of a step one after the other), with the ratio beside it.

Networks:
- the built-in digits network on the digits test split (its own encoding and T);
- an MNIST-sized 784-128-10 network (8-bit random weights, hidden threshold calibrated on the
  contract so ~10% of hidden neurons fire per step, readout last layer), on rate-coded random
  "images" with MNIST-like intensity statistics (19% of pixels lit, T = 16). MNIST itself is used
  instead when --mnist-dir points at its IDX files (the 784-128-10 weights stay random).

- an MNIST-shaped conv network (conv 1->16 5x5 stride 2 padding 2, conv 16->32 5x5 stride 2
  padding 2, dense 1568->10 readout, README "Convolutional layers"): random 8-bit kernels with
  thresholds calibrated so ~10% of each conv layer's neurons fire per step, on the same inputs; or
  a trained one with --conv-net FILE (``spikegate train --arch conv``) on MNIST (--mnist-dir).
  Its rows are per layer: SOPs/cycle/P of each conv layer next to the dense readout's.

Cycle counts come from the cycle-exact twin (model.core.NetworkCore); with --verify K the first
K samples of each configuration are also run through the gateware in Amaranth's simulator and
must agree with the twin bit for bit, ``cycles`` included (the tests assert this on every sample
they run).

Synaptic operations (SOPs) of a sample: every input spike into a dense layer touches all n neurons
of the layer; one into a conv layer the C_out channels of every output position whose window holds
it (``fan_out``). SOPs/cycle / P is how close the core runs to one weight word (P synapses) per cycle;
the rest goes to the per-step sweep (G cycles per layer), idle lanes of a ragged last group, and
the small per-step constants.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from spikegate import datasets
from spikegate.model.core import NetworkCore as Twin
from spikegate.model.hardware import SCHEDULES, HardwareConfig
from spikegate.model.encode import from_levels, quantise, rate
from spikegate.model.network import Layer, Network
from spikegate.model.simulate import simulate
from spikegate.model.conv import fan_out
from spikegate.model.conv_eval import conv2d_layer


def _mnist_like_levels(rng: np.random.Generator, n_img: int = 64) -> np.ndarray:
    """8-bit levels [n_img, 784] of random "images" with MNIST-like statistics (about 19% of
    pixels lit, at 0.3..1.0), quantised as every encoder quantises (``model.encode.quantise``)."""
    x = np.zeros((n_img, 784))
    for i in range(n_img):
        lit = rng.random(784) < 0.19
        x[i, lit] = rng.uniform(0.3, 1.0, lit.sum())
    return quantise(x)


def mnist_sized_levels(seed: int = 0) -> np.ndarray:
    """The levels :func:`mnist_sized_network` (same ``seed``) makes its spikes from: what the
    on-chip encoder (ENCODE, BATCH) takes to make the same spikes."""
    return _mnist_like_levels(np.random.default_rng(seed))


def mnist_sized_network(seed: int = 0, T: int = 16) -> tuple[Network, np.ndarray]:
    """The 784-128-10 network and its ``rate`` spikes [64, T, 784] of :func:`mnist_sized_levels`
    (``rate(x, T)`` is ``from_levels(quantise(x), "rate", T)``, so these are the spikes of before)."""
    rng = np.random.default_rng(seed)
    spikes = from_levels(_mnist_like_levels(rng), "rate", T)
    w1 = np.clip(np.rint(rng.normal(0, 24, (784, 128))), -128, 127).astype(np.int64)
    w2 = np.clip(np.rint(rng.normal(0, 24, (128, 10))), -128, 127).astype(np.int64)
    best = None
    for theta in (2 ** np.arange(6, 15)).tolist():
        l1 = Layer(weights=w1, threshold=theta, weight_bits=8, membrane_bits=16, reset="subtract")
        l2 = Layer(weights=w2, weight_bits=8, membrane_bits=16, readout=True)
        net = Network([l1, l2], timesteps=T, encoding="rate", name="mnist-sized-784-128-10")
        rate_hidden = simulate(net, spikes[:8]).spikes[0].mean()
        if best is None or abs(rate_hidden - 0.1) < abs(best[1] - 0.1):
            best = (net, rate_hidden)
    return best[0], spikes


def mnist_conv_network(spikes: np.ndarray, seed: int = 0) -> Network:
    """The MNIST conv network's shape with random 8-bit kernels, each conv layer's threshold the one
    of 2^6..2^14 that makes its firing rate on ``spikes`` closest to 10 % per step."""
    rng = np.random.default_rng(seed)
    kernels = [np.clip(np.rint(rng.normal(0, 24, shape)), -128, 127).astype(np.int64)
               for shape in ((16, 1, 5, 5), (32, 16, 5, 5))]
    dense = np.clip(np.rint(rng.normal(0, 24, (1568, 10))), -128, 127).astype(np.int64)
    layers, shape, x = [], (1, 28, 28), spikes[:8]
    for k in kernels:
        best = None
        for theta in (2 ** np.arange(6, 15)).tolist():
            layer = conv2d_layer(k, shape, stride=2, padding=2, threshold=theta, weight_bits=8, membrane_bits=16,
                                 reset="subtract")
            out = simulate(Network([layer], timesteps=x.shape[1]), x).spikes[0]
            if best is None or abs(out.mean() - 0.1) < abs(best[1].mean() - 0.1):
                best = (layer, out)
        layers.append(best[0])
        shape, x = best[0].conv.out_shape, best[1]
    layers.append(Layer(weights=dense, weight_bits=8, membrane_bits=18, readout=True))
    return Network(layers, timesteps=spikes.shape[1], name="mnist-conv-16-32-10")


def per_layer(net: Network, spikes: np.ndarray, lanes: int) -> list[dict]:
    """Each layer's SOPs and cycles (integration, sweep and overhead; the run's per-step and per-run
    cycles are not a layer's) from the twin's per-layer cycle term, summed over the samples."""
    geometry = HardwareConfig(lanes=lanes).geometry(net)  # sizes only: max_events does not matter here
    ref = simulate(net, spikes)
    T = spikes.shape[1]
    rows = []
    for l, (layer, geo) in enumerate(zip(net.layers, geometry)):
        ev = spikes if l == 0 else ref.spikes[l - 1]
        per_input = ev.sum(axis=(0, 1), dtype=np.int64)            # events at each input, all samples
        if geo.conv is not None:
            integration = int(per_input @ geo.conv.event_cost())
        else:
            integration = int(per_input.sum()) * geo.groups
        cycles = integration + len(spikes) * T * (geo.groups + 8)
        sops = int(per_input @ fan_out(layer))
        rows.append({"layer": l, "kind": layer.conv.kind if layer.conv is not None else "dense",
                     "shape": f"{layer.n_in}->{layer.n}", "lanes": lanes, "groups": geo.groups,
                     "sops_per_sample": sops / len(spikes), "cycles_per_sample": cycles / len(spikes),
                     "sops_per_cycle_over_P": sops / cycles / lanes,
                     "sops_per_integration_cycle_over_P": sops / max(1, integration) / lanes})
    return rows


def measure(net: Network, spikes: np.ndarray, lanes: int, verify: int, schedule: str = "inflight") -> dict:
    hw = HardwareConfig(lanes=lanes, max_events=max(4096, int(spikes.sum(axis=(1, 2)).max()) + net.timesteps),
                        schedule=schedule)
    twin = Twin(net, hw)
    ref = simulate(net, spikes)
    cycles = np.array([twin.cycles(s) for s in spikes], dtype=np.int64)
    sops = ref.synaptic_events(spikes, net)
    verified = 0
    if verify:
        from spikegate.hdl.core import NetworkCore
        from spikegate.hdl.testbench import simulate_core
        runs = simulate_core(NetworkCore(net, hw), spikes[:verify])
        for k, r in enumerate(runs):
            problem = twin.run(spikes[k]).mismatch(r)
            if problem:
                raise SystemExit(f"gateware differs from the twin (lanes {lanes}, {schedule}, sample {k}): {problem}")
        verified = len(runs)
    per_cycle = sops.sum() / cycles.sum()
    return {"lanes": lanes, "schedule": schedule, "groups": [g.groups for g in twin.geometry],
            "cycles_per_sample": float(cycles.mean()), "cycles_min": int(cycles.min()), "cycles_max": int(cycles.max()),
            "sops_per_sample": float(sops.mean()), "sops_per_cycle": float(per_cycle),
            "sops_per_cycle_over_P": float(per_cycle / lanes), "verified_in_simulator": verified}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=64, help="samples per network (default 64)")
    ap.add_argument("--lanes", default="1,2,4,8,16,32", help="lane counts (default 1,2,4,8,16,32)")
    ap.add_argument("--verify", type=int, default=1,
                    help="samples per configuration also run in the Amaranth simulator (default 1; 0: none)")
    ap.add_argument("--mnist-dir", default=None, help="MNIST IDX directory (optional)")
    ap.add_argument("--conv-net", default=None, help="a trained MNIST conv network file (with --mnist-dir)")
    ap.add_argument("--schedules", default=",".join(SCHEDULES),
                    help=f"schedules to measure (default {','.join(SCHEDULES)})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    lanes = [int(p) for p in args.lanes.split(",")]
    schedules = args.schedules.split(",")
    for sch in schedules:
        if sch not in SCHEDULES:
            ap.error(f"--schedules: {sch!r} is not valid; valid: {', '.join(SCHEDULES)}")
    if args.conv_net and not args.mnist_dir:
        ap.error("--conv-net needs --mnist-dir (the MNIST test images it runs on)")

    digits = datasets.load_network()
    x, _ = datasets.load("digits", "test")
    d_spikes = datasets.encode_for(digits, x[:args.samples])
    mnist_net, m_spikes = mnist_sized_network()
    if args.mnist_dir:
        xm, _ = datasets.load("mnist", "test", args.mnist_dir)
        m_spikes = rate(xm[:args.samples], mnist_net.timesteps)
    m_spikes = m_spikes[:args.samples]
    m_input = "MNIST test" if args.mnist_dir else "MNIST-like random images"

    results = []
    for name, net, spikes, inputs in (("digits " + "-".join(map(str, digits.shape)), digits, d_spikes, "digits test"),
                                      ("784-128-10", mnist_net, m_spikes, m_input)):
        for P in lanes:
            for sch in schedules:
                t0 = time.time()
                print(f"[hw_cycles] {name} lanes={P} {sch} ...", file=sys.stderr, flush=True)
                # The 784-128-10 core at few lanes takes minutes per sample in the Python simulator.
                r = measure(net, spikes, P, args.verify if P >= 8 or name.startswith("digits") else 0, sch)
                r.update({"network": name, "inputs": inputs, "T": net.timesteps, "samples": len(spikes),
                          "seconds": round(time.time() - t0, 1)})
                results.append(r)
    if args.conv_net:
        conv_net = datasets.load_network(args.conv_net)
        conv_spikes = datasets.encode_for(conv_net, xm[:args.samples])
    else:
        conv_spikes = m_spikes
        conv_net = mnist_conv_network(conv_spikes)
    layer_rows = []
    for P in lanes:
        print(f"[hw_cycles] {conv_net.name or 'conv'} lanes={P} ...", file=sys.stderr, flush=True)
        twin = Twin(conv_net, HardwareConfig(lanes=P, max_events=max(
            4096, int(conv_spikes.sum(axis=(1, 2)).max()) + conv_net.timesteps), schedule="sequential"))
        rows = per_layer(conv_net, conv_spikes, P)
        # The per-layer terms add up to the sequential twin's run (plus 1 per step and 1 per run) on every sample.
        total = sum(r["cycles_per_sample"] for r in rows) * len(conv_spikes)
        twin_total = sum(twin.cycles(s) - 1 - conv_net.timesteps for s in conv_spikes)
        if total != twin_total:
            raise SystemExit(f"per-layer cycles {total} differ from the twin's {twin_total} (lanes {P})")
        layer_rows.extend({**r, "network": conv_net.name or "conv", "inputs": m_input, "T": conv_net.timesteps,
                           "samples": len(conv_spikes)} for r in rows)
        layer_rows.extend({**r, "network": "784-128-10", "inputs": m_input, "T": mnist_net.timesteps,
                           "samples": len(m_spikes)} for r in per_layer(mnist_net, m_spikes, P))
    if args.json:
        print(json.dumps({"networks": results, "layers": layer_rows}, indent=1))
        return 0
    print(f"{'network':22} {'inputs':26} {'T':>3} {'P':>3} {'schedule':10} {'cycles/sample':>14} {'vs seq':>6} "
          f"{'SOPs/sample':>12} {'SOPs/cycle':>11} {'/P':>6} {'sim-checked':>11}")
    sequential = {(r["network"], r["lanes"]): r["cycles_per_sample"] for r in results if r["schedule"] == "sequential"}
    for r in results:
        seq = sequential.get((r["network"], r["lanes"]))
        ratio = f"{seq / r['cycles_per_sample']:>5.2f}x" if seq else f"{'':>6}"
        print(f"{r['network']:22} {r['inputs']:26} {r['T']:>3} {r['lanes']:>3} {r['schedule']:10} "
              f"{r['cycles_per_sample']:>14.1f} {ratio} "
              f"{r['sops_per_sample']:>12.1f} {r['sops_per_cycle']:>11.2f} {r['sops_per_cycle_over_P']:>6.3f} "
              f"{r['verified_in_simulator']:>11}")
    print("\nper layer (cycles: the layer's own, integration + sweep + 8 per step; "
          "/P int: SOPs per integration cycle per lane)")
    print(f"{'network':22} {'layer':>5} {'kind':8} {'shape':>11} {'P':>3} {'SOPs/sample':>12} "
          f"{'cycles/sample':>14} {'SOPs/cyc/P':>10} {'/P int':>7}")
    for r in layer_rows:
        print(f"{r['network']:22} {r['layer']:>5} {r['kind']:8} {r['shape']:>11} {r['lanes']:>3} "
              f"{r['sops_per_sample']:>12.1f} {r['cycles_per_sample']:>14.1f} {r['sops_per_cycle_over_P']:>10.3f} "
              f"{r['sops_per_integration_cycle_over_P']:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
