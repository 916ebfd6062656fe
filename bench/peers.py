"""snnTorch and spikingjelly versions of a spikegate network, for bench/model_speed.py.

Both reproduce the contract exactly on integer-valued float32 tensors for networks without leak
or refractory period whose hidden layers reset by subtraction and whose last layer is either of
those or a readout (an integrator that never fires), as long as no membrane saturates and every
value stays below 2^24 (../shared/notes/toolchain.md):
- snnTorch: ``Leaky(beta=1, threshold=theta, reset_mechanism="subtract")`` with the default
  ``reset_delay=True``, one step at a time (its usual loop); a readout is ``reset_mechanism="none"``;
- spikingjelly: ``IFNode(v_threshold=theta + 1/64, v_reset=None)`` in multi-step mode, i.e.
  ``v >= theta + 1/64``, which for integer v is ``v > theta`` (the residue after k subtractions is
  off by k/64, harmless for fewer than 64 steps); a readout has an unreachable threshold.
A peer's result is its hidden/last layers' spikes and, for a readout, its final membranes;
``mismatches`` counts the samples where any of them differs from the model's.
"""
from __future__ import annotations

import numpy as np

PEERS = ("snnTorch", "spikingjelly")


def unsupported(net) -> str | None:
    """Why the peers cannot compute this network exactly, or None."""
    if net.timesteps >= 64:
        return f"T = {net.timesteps} >= 64 steps (spikingjelly's 1/64 threshold offset)"
    for i, layer in enumerate(net.layers):
        if layer.leak.kind != "none" or layer.refractory:
            return f"layer {i} has a leak or a refractory period"
        if not layer.readout and layer.reset != "subtract":
            return f"layer {i} resets to zero"
    return None


def _linear(torch, layer, cls, **kw):
    fc = cls(layer.n_in, layer.n, **kw)
    fc.weight.data = torch.from_numpy(layer.weights.T.astype(np.float32)).contiguous()
    fc.bias.data = torch.from_numpy(layer.bias.astype(np.float32))
    return fc


def snntorch_runner(net):
    """``run(x)`` for x float32 [T, batch, n_in] -> (per-layer spikes [T, batch, n], readout v or None)."""
    import torch
    import snntorch as snn
    mods = [(_linear(torch, L, torch.nn.Linear),
             snn.Leaky(beta=1.0, threshold=1.0 if L.readout else float(L.threshold),
                       reset_mechanism="none" if L.readout else "subtract")) for L in net.layers]

    def run(x):
        with torch.inference_mode():
            mems = [lif.init_leaky() for _, lif in mods]
            trains = [[] for _ in mods]
            for t in range(x.shape[0]):
                h = x[t]
                for i, (fc, lif) in enumerate(mods):
                    h, mems[i] = lif(fc(h), mems[i])
                    trains[i].append(h)
            return [torch.stack(s) for s in trains], mems[-1] if net.layers[-1].readout else None
    return run


def spikingjelly_runner(net):
    """Same contract as :func:`snntorch_runner`, multi-step (one call per layer over all steps)."""
    import torch
    from spikingjelly.activation_based import layer as sjl, neuron
    mods = [(_linear(torch, L, sjl.Linear, step_mode="m"),
             neuron.IFNode(v_threshold=2.0 ** 40 if L.readout else L.threshold + 1 / 64, v_reset=None,
                           step_mode="m")) for L in net.layers]

    def run(x):
        with torch.inference_mode():
            trains, h = [], x
            for fc, nd in mods:
                nd.reset()
                h = nd(fc(h))
                trains.append(h)
            return trains, mods[-1][1].v if net.layers[-1].readout else None
    return run


def runners(net) -> tuple[dict, dict]:
    """``({peer: run}, {peer: why not})`` for the installed peers that can run ``net`` exactly."""
    why = unsupported(net)
    found, missing = {}, {}
    for name, make in (("snnTorch", snntorch_runner), ("spikingjelly", spikingjelly_runner)):
        if why:
            missing[name] = why
            continue
        try:
            found[name] = make(net)
        except ImportError as e:
            missing[name] = f"not installed ({e})"
    return found, missing


def mismatches(net, model, trains, readout_v) -> int:
    """Samples where a peer's spikes (per layer, [T, batch, n]) or readout membranes differ from
    the model's SimResult ``model``."""
    bad = np.zeros(model.spikes[0].shape[0], bool)
    for l, layer in enumerate(net.layers):
        if layer.readout:
            bad |= (readout_v.numpy() != model.membranes[l]).any(axis=1)
        else:
            bad |= (trains[l].numpy().transpose(1, 0, 2) != model.spikes[l]).any(axis=(1, 2))
    return int(bad.sum())
