"""NIR interop: import NIR graphs as spikegate networks and export networks as NIR graphs.

NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) describes networks in continuous
time with float parameters; spikegate runs integer arithmetic in discrete steps (model/lif.py).
docs/nir.md states the rules; in short:

Import (float graphs)
    Supported: a chain of layers, each a neuron node (LIF, IF, CubaLIF; LI, I, CubaLI only as the
    last, a readout) fed by synapse paths ``[Delay] Affine|Linear [Delay]`` from the previous layer
    (per-synapse delays: one path per delay) and optionally a recurrent ``Affine|Linear`` from the
    node back to itself (the spikes of step t-1); nested subgraphs are inlined (``chain``,
    ``paths``). CubaLIF/CubaLI become layers with a synaptic current (model/temporal.py). Each neuron node is discretised with forward Euler and step
    ``dt``: ``v <- (1 - dt/tau) v + (dt r / tau) I`` (LIF, LI) or ``v <- v + dt r I`` (IF, I), with
    ``I = W s + b``. The per-neuron input gain (``dt r / tau``) is folded into the weights and bias;
    per-neuron thresholds are equalised by scaling each neuron's column (exact: with v_leak = 0 and
    v_reset = 0 a neuron's dynamics are linear in its membrane). Each layer is then quantised with
    one scale ``S`` (``W_int = rint(S W)``, ``b_int = rint(S b)``, ``theta_int = floor(S theta)``,
    which on integer membranes reproduces the strict ``v > theta`` exactly) chosen as the largest
    that fits the weights in ``weight_bits`` and bias and threshold in ``membrane_bits``. With
    calibration data, smaller scales (down to 1/16, in quarter octaves) are tried too and the one
    whose integer layer best reproduces the float layer on that data is kept. The decay
    ``beta = 1 - dt/tau`` becomes the nearest of ``shift k`` (``1 - 2^-k``) and ``multiply
    m / 2^F``; ties go to the shift, which needs no multiplier.

Export
    Every layer becomes ``Affine`` (``Linear`` when the bias is zero) with the integer weights and
    bias as floats, followed by ``LIF`` (``tau = 1 / (1 - beta)``, ``r = tau``), ``IF`` (``r = 1``),
    ``LI`` or ``I``, all with ``dt = 1`` so that forward Euler gives gain 1 and decay beta. What
    NIR's float semantics cannot carry (bit widths, the leak's kind and rounding, subtract reset,
    refractory period, names, the network's time steps and encoding) is stored as JSON in the
    nodes' and graph's ``metadata["spikegate"]``; the importer uses it to rebuild the network
    bit for bit, after checking that the float parameters are exactly what export writes.

Modules: ``read`` (files, versions, metadata, the v_reset assumption for pre-1.0.6 files),
``paths`` (subgraphs inlined, synapse paths), ``chain`` (the supported graph shape), ``floatsim``
(discretisation and the float reference simulation), ``quantise``, ``calibrate``, ``exact``
(rebuilding spikegate exports), ``importer`` and ``export``. The ``nir`` package itself is imported
only when a graph is read or built.
"""
from .calibrate import CALIBRATION_MAX_CANDIDATES, load_calibration
from .chain import graph_input_count
from .export import ExportResult, export_nir, network_to_graph
from .floatsim import FloatLayer, graph_to_float_layers, simulate_float
from .importer import ImportResult, import_nir, network_from_graph
from .quantise import choose_leak
from .read import (META_FORMAT, META_KEY, META_VERSION, MIN_V_RESET_VERSION, V_RESET_ASSUMPTIONS, check_v_reset,
                   is_spikegate_export,
                   read_graph)

__all__ = ["META_KEY", "META_FORMAT", "META_VERSION", "MIN_V_RESET_VERSION", "CALIBRATION_MAX_CANDIDATES",
           "FloatLayer", "ImportResult", "ExportResult", "read_graph", "graph_to_float_layers", "simulate_float",
           "network_from_graph", "import_nir", "network_to_graph", "export_nir", "choose_leak",
           "load_calibration", "graph_input_count", "is_spikegate_export", "check_v_reset", "V_RESET_ASSUMPTIONS"]
