"""`--max-payload` end to end: a HostLink with a 1024-byte request buffer in Verilator behind a
socket, driven by the unmodified driver: identify reports the size, and ENCODE frames of 605 bytes
(over the default 512) run bit-exact against the model, cycles against the core's twin."""
from dataclasses import replace

import numpy as np
import pytest

from spikegate.host import Board
from spikegate.model import simulate
from spikegate.model.core import HardwareConfig, NetworkCore
from spikegate.model.encode import from_levels
from spikegate.model.link import encode_fits
from spikegate.model.random import random_network
from spikegate.sim.link_bridge import SimulatedBoard

LANES = 2
N_IN = 600  # an ENCODE frame of 5 + 600 = 605 bytes


@pytest.mark.slow
def test_encode_larger_than_the_default_buffer(tmp_path):
    net = random_network(1, (N_IN, 8, 4), weight_bits=4, membrane_bits=10, readout=False, timesteps=4)
    path = tmp_path / "wide.json"
    net.save(path)
    levels = np.random.default_rng(3).integers(0, 256, size=(3, N_IN))
    twin = NetworkCore(net, HardwareConfig(lanes=LANES))
    with SimulatedBoard(path, lanes=LANES, max_payload=1024) as sb, Board(sb.url, timeout=60.0) as b:
        assert b.identify().max_payload == 1024
        b.check_network(net)
        assert encode_fits(b.geo) and not encode_fits(replace(b.geo, max_payload=512))
        for q in levels:
            spikes = from_levels(q[None], "rate", net.timesteps, None)
            want = simulate(net, spikes)
            c, m, cycles = b.run_levels(q, "rate")
            assert c.tolist() == want.counts[0].tolist() and m.tolist() == want.membranes[-1][0].tolist()
            assert cycles == twin.run(spikes[0]).cycles
