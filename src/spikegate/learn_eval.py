"""Turning a learned winner-take-all layer into a classifier: each neuron is labelled with the class
it answers most strongly on the training split (the only use of the labels in unsupervised
learning), and a fixed, non-spiking readout layer adds up each class's neurons.

The readout weight of neuron j for its class c is round(READOUT_SCALE / m_c), m_c the number of
neurons labelled c, so a class's score is (nearly) the mean spike count of its neurons, as in Diehl
& Cook (2015). The saved network is then an ordinary spikegate network: ``spikegate model --net
FILE`` classifies with it and gets the accuracy :func:`with_readout` reports.
"""
from __future__ import annotations

import numpy as np

from .datasets import N_CLASSES
from .evaluation import evaluate
from .model.network import Layer, Network
from .model.simulate import simulate

__all__ = ["READOUT_SCALE", "label_neurons", "readout_layer", "with_readout"]

READOUT_SCALE = 1 << 12
READOUT_WEIGHT_BITS = 16


def label_neurons(net: Network, spikes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The class of every neuron of ``net``'s last layer: the label whose samples make it fire most
    on average (ties to the lowest class); -1 for a neuron that never fired. ``spikes`` bool
    [N, T, n_in] are the training samples, ``y`` their labels."""
    counts = simulate(net, spikes).counts.astype(np.float64)
    y = np.asarray(y)
    means = np.stack([counts[y == c].mean(axis=0) if (y == c).any() else np.zeros(counts.shape[1])
                      for c in range(N_CLASSES)], axis=1)
    labels = np.argmax(means, axis=1).astype(np.int64)
    labels[counts.sum(axis=0) == 0] = -1
    return labels


def readout_layer(labels: np.ndarray, timesteps: int) -> Layer:
    """A readout layer [n, N_CLASSES] summing each class's labelled neurons, each weighted
    round(READOUT_SCALE / m_c); its membrane is wide enough for every neuron firing every step."""
    labels = np.asarray(labels)
    weights = np.zeros((len(labels), N_CLASSES), np.int64)
    for c in range(N_CLASSES):
        members = labels == c
        if members.any():
            weights[members, c] = max(1, int(round(READOUT_SCALE / members.sum())))
    bound = timesteps * int(weights.sum(axis=0).max())
    return Layer(weights=weights, weight_bits=READOUT_WEIGHT_BITS, membrane_bits=max(8, bound.bit_length() + 1),
                 readout=True, name="classes")


def with_readout(learned: Network, labels: np.ndarray, x_test: np.ndarray, y_test: np.ndarray):
    """``learned`` with the class readout appended, and its accuracy on (x_test, y_test) as
    :func:`spikegate.evaluation.evaluate` (what ``spikegate model`` runs) measures it."""
    net = learned.replace(layers=[*learned.layers, readout_layer(labels, learned.timesteps)], meta=dict(learned.meta))
    return net, float(evaluate(net, x_test, y_test)["accuracy"])
