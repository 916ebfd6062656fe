"""bench/link.py's samples (issue 12): every network carries the 8-bit levels its LOAD spikes come
from, the spikes are exactly what the on-chip encoder makes of them, and a difference stops the
bench instead of comparing LOAD and ENCODE on different samples."""
from __future__ import annotations


import numpy as np
import pytest

from spikegate.model.encode import from_levels

import benches


@pytest.mark.parametrize("name,shape", [("digits", (4, 8, 64)), ("mnist", (4, 16, 784))])
def test_samples_carry_the_levels_their_spikes_come_from(name, shape):
    ((_, net, spikes, levels, states),) = benches.load("link")._networks([name], 4)
    assert spikes.shape == shape and levels.shape == (4, shape[2]) and states == [0] * 4
    assert net.encoding == "rate" and levels.any()
    assert np.array_equal(from_levels(levels, net.encoding, net.timesteps), spikes)


def test_a_spike_the_encoder_would_not_make_stops_the_bench():
    bench = benches.load("link")
    ((title, net, spikes, levels, states),) = bench._networks(["mnist"], 4)
    bad = spikes.copy()
    bad[3, 5, 100] = ~bad[3, 5, 100]
    with pytest.raises(SystemExit, match=r"sample 3's LOAD spikes differ from the on-chip rate encoder's spikes "
                                         r"of its levels at 1 \(step, input\) pairs"):
        bench._check_levels(title, net, bad, levels, states)
    with pytest.raises(SystemExit, match="4 spike trains but 3 levels"):
        bench._check_levels(title, net, spikes, levels[:3], states)
