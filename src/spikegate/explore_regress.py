"""Random-configuration regression runs for ``spikegate explore --regress N``: random networks
(every layer parameter drawn from its valid range) and random lane counts, run through the
generated Verilog (:class:`spikegate.sim.core.CoreSim`) and compared with the bit-exact model,
one Dask task per configuration. Like a sweep point, a run never raises: a mismatch or a
simulator failure is its result."""
from __future__ import annotations

import io
import time
import traceback
from contextlib import redirect_stderr

import numpy as np

from .model.random import random_network, random_spikes

__all__ = ["REGRESS_LANES", "regress_config", "regress_point"]

REGRESS_LANES = (1, 2, 4, 8, 16)


def regress_config(seed: int, samples: int = 8):
    """``(net, lanes, spikes)`` of configuration ``seed``: ``samples`` random samples plus one in
    which every input spikes at every step (the input buffer's worst case)."""
    net = random_network(seed)
    lanes = REGRESS_LANES[seed % len(REGRESS_LANES)]
    spikes = np.concatenate([random_spikes(seed, samples, net.timesteps, net.n_inputs),
                             np.ones((1, net.timesteps, net.n_inputs), bool)])
    return net, lanes, spikes


def regress_point(seed: int, *, simulator: str = "verilator", build_root=None, samples: int = 8) -> dict:
    """Run configuration ``seed`` in ``simulator`` and compare it with the model (on a worker)."""
    from .sim.core import CoreSim
    t0 = time.monotonic()
    net, lanes, spikes = regress_config(seed, samples)
    row = {"label": f"regress_seed{seed}", "seed": seed, "shape": list(net.shape), "lanes": lanes,
           "timesteps": net.timesteps, "samples": len(spikes), "simulator": simulator,
           "status": "ok", "mismatches": 0, "first_mismatch": None, "error": None}
    log = io.StringIO()
    try:
        with redirect_stderr(log):
            sim = CoreSim(net, lanes=lanes, simulator=simulator, build_root=build_root)
            _, _, mismatches = sim.check(spikes)
        if mismatches:
            row.update(status="mismatch", mismatches=len(mismatches), first_mismatch=str(mismatches[0]))
    except Exception as e:  # noqa: BLE001 - a crashed run is this configuration's result
        tail = traceback.format_exception_only(type(e), e)[-1].strip()
        row.update(status="error", error=f"{tail} (log: {log.getvalue()[-500:].strip()})")
    row["seconds"] = round(time.monotonic() - t0, 1)
    return row
