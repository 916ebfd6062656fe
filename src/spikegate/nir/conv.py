"""Import of NIR graphs with convolutions: ``Conv2d``, ``SumPool2d``, ``AvgPool2d`` and ``Flatten``
(as Sinabs and snnTorch export them) next to ``Affine``/``Linear``, into conv2d, pooling and dense
layers (README, "Convolutional layers"; docs/nir.md).

- ``Conv2d -> LIF|IF`` is a conv2d layer: the kernel [C_out, C_in, k_h, k_w] and per-channel bias
  go through the dense layers' discretisation and quantisation (one scale per layer). Its neuron
  parameters must be the same for every neuron (one kernel serves every position); groups and
  dilation must be 1 and padding explicit numbers.
- ``SumPool2d`` is a sumpool2d layer with the OR rule (threshold 0, zero reset): a spike where any
  input of the window spiked. Exact while no window holds two spikes in one step; else it passes 1
  where the float graph passes the count.
- ``AvgPool2d`` is an avgpool2d layer with an integrate-and-fire rule (threshold k_h·k_w, subtract
  reset): over the run it emits the window's spike total / (k_h·k_w), to within one spike, the
  average pooling of the rates, not of each step.
- ``Flatten`` changes nothing: spikes always travel flat in (C, H, W) order.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..model.conv import ConvSpec, kernel_matrix
from ..model.conv_eval import pool_layer
from ..model.network import Network
from .chain import NEURON_TYPES, RawLayer, node_type
from .floatsim import FloatLayer, check_dt, discretise
from .quantise import quantise_layer, scale_limits

__all__ = ["CONV_NODES", "has_conv", "import_conv_graph"]

CONV_NODES = ("Conv2d", "SumPool2d", "AvgPool2d")
_ALLOWED = CONV_NODES + NEURON_TYPES + ("Input", "Output", "Flatten", "Affine", "Linear")


def has_conv(graph) -> bool:
    return any(node_type(n) in CONV_NODES for n in graph.nodes.values())


def _walk(graph) -> list[tuple[str, object]]:
    """The nodes from the single Input to the single Output, each with one successor."""
    nodes = graph.nodes
    for name, node in nodes.items():
        if node_type(node) not in _ALLOWED:
            raise UserError(f"NIR node {name!r} ({node_type(node)}): not supported in a convolutional graph; "
                            f"supported: {', '.join(_ALLOWED)}")
    ins = [n for n, v in nodes.items() if node_type(v) == "Input"]
    if len(ins) != 1:
        raise UserError(f"the NIR graph has {len(ins)} Input nodes ({ins}); exactly one is supported")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in (tuple(e) for e in graph.edges):
        if a not in nodes or b not in nodes:
            raise UserError(f"NIR edge ({a!r}, {b!r}) names a node that is not in the graph")
        succ[a].append(b)
    order, cur = [], ins[0]
    while True:
        if cur in order:
            raise UserError(f"NIR node {cur!r} ({node_type(nodes[cur])}) is reached twice: recurrence is not supported")
        order.append(cur)
        if node_type(nodes[cur]) == "Output":
            break
        if len(succ[cur]) != 1:
            raise UserError(f"NIR node {cur!r} ({node_type(nodes[cur])}) has {len(succ[cur])} outgoing edges; "
                            "only a single feed-forward chain is supported")
        cur = succ[cur][0]
    stray = sorted(set(nodes) - set(order))
    if stray:
        raise UserError(f"NIR node(s) {stray} are not on the path from the input to the output: only a single "
                        "feed-forward chain is supported")
    return [(n, nodes[n]) for n in order]


def _input_shape(name: str, node) -> tuple[int, ...]:
    t = node.input_type
    shape = [int(s) for s in np.asarray(t.get("input", next(iter(t.values())))).reshape(-1)]
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]  # a batch of one in the example input
    if len(shape) == 2:
        shape = [1] + shape
    if len(shape) not in (1, 3) or min(shape, default=0) < 1:
        raise UserError(f"NIR node {name!r} (Input) has shape {shape}; valid: [channels, rows, columns] "
                        "(or [rows, columns], or a flat [n])")
    return tuple(shape)


def _pair(name: str, node, attr: str) -> tuple[int, int]:
    v = getattr(node, attr)
    a = np.asarray(v).reshape(-1)
    if a.dtype.kind not in "iuf" or a.size not in (1, 2) or np.any(a != np.round(a)):
        raise UserError(f"NIR node {name!r} ({node_type(node)}): {attr} = {v!r} is not supported; valid: one or "
                        "two whole numbers")
    a = [int(x) for x in (a if a.size == 2 else np.repeat(a, 2))]
    return a[0], a[1]


def _uniform_gain(name: str, kind: str, F: FloatLayer) -> float:
    """The one input gain of a conv layer's neurons (discretised on a unit weight column each)."""
    g = F.weights[0]
    if np.ptp(g) > 1e-12 * max(1.0, float(np.abs(g).max())):
        raise UserError(f"NIR node {name!r} ({kind}): its neurons have different parameters (r, tau or "
                        "v_threshold); a conv layer shares one kernel over all positions, so they must be equal")
    return float(g[0])


def import_conv_graph(graph, *, dt, weight_bits: int, membrane_bits: int, leak_frac_bits: int, timesteps: int,
                      encoding: str, name: str, version: str | None) -> tuple[Network, list[dict]]:
    """A NIR graph with Conv2d / pooling nodes as a network and its per-layer report."""
    chain = _walk(graph)
    shape: tuple[int, ...] = _input_shape(*chain[0])
    if dt is None:
        raise UserError("--dt is required for this graph: NIR is continuous-time and does not record the step "
                        "a model was trained with")
    dt = check_dt(dt)
    layers, reports, pending = [], [], None
    for nname, node in chain[1:]:
        t = node_type(node)
        where = f"NIR node {nname!r} ({t})"
        if pending is not None and t not in NEURON_TYPES:
            raise UserError(f"{where} follows {pending[0]!r} directly; every Conv2d/Affine/Linear must be "
                            "followed by a LIF or IF node (LI or I for the last one)")
        if t == "Flatten" or t == "Output":
            shape = (int(np.prod(shape)),) if t == "Flatten" else shape
        elif t == "Conv2d":
            if len(shape) != 3:
                raise UserError(f"{where} receives a flat vector of {shape[0]} values; it needs a feature map "
                                "[channels, rows, columns]")
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 4 or w.shape[1] != shape[0]:
                raise UserError(f"{where}: weight has shape {list(w.shape)}; valid: [C_out, {shape[0]}, k_h, k_w]")
            if _pair(nname, node, "dilation") != (1, 1) or int(np.asarray(node.groups)) != 1:
                raise UserError(f"{where}: dilation and groups other than 1 are not supported")
            bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float64).reshape(-1), (w.shape[0],))
            try:
                spec = ConvSpec("conv2d", shape, w.shape[0], w.shape[2:], _pair(nname, node, "stride"),
                                _pair(nname, node, "padding"))
            except ValueError as e:
                raise UserError(f"{where}: {e}") from None
            pending = (nname, spec, kernel_matrix(w), bias.copy())
            shape = spec.out_shape
        elif t in ("Affine", "Linear"):
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2 or w.shape[1] != int(np.prod(shape)):
                raise UserError(f"{where}: weight has shape {list(w.shape)}; valid: [outputs, {int(np.prod(shape))}]")
            b = np.zeros(w.shape[0]) if t == "Linear" else np.broadcast_to(
                np.asarray(node.bias, dtype=np.float64).reshape(-1), (w.shape[0],))
            pending = (nname, None, w, b.copy())
            shape = (w.shape[0],)
        elif t in ("SumPool2d", "AvgPool2d"):
            if len(shape) != 3:
                raise UserError(f"{where} receives a flat vector of {shape[0]} values; it needs a feature map "
                                "[channels, rows, columns]")
            if not layers:
                raise UserError(f"{where} must follow a spiking conv layer's neuron node (it pools spikes)")
            k = _pair(nname, node, "kernel_size")
            s, p = _pair(nname, node, "stride"), _pair(nname, node, "padding")
            avg = t == "AvgPool2d"
            try:
                layer = pool_layer(t.lower(), shape, k, stride=s, padding=p, threshold=k[0] * k[1] if avg else 0,
                                   membrane_bits=membrane_bits, reset="subtract" if avg else "zero", name=nname)
            except ValueError as e:
                raise UserError(f"{where}: {e}") from None
            layers.append(layer)
            reports.append({"layer": len(layers) - 1, "synapse": nname, "neuron": nname, "kind": t,
                            "rule": f"integrate-and-fire, threshold {k[0] * k[1]}, subtract reset" if avg
                            else "OR of the window (threshold 0, zero reset)"})
            shape = layer.conv.out_shape
        elif t in NEURON_TYPES:
            if pending is None:
                raise UserError(f"{where} is not preceded by a Conv2d, Affine or Linear node")
            sname, spec, w, b = pending
            pending = None
            n = int(np.prod(shape))
            if spec is None:
                F = discretise(RawLayer(sname, nname, t, w, b, node, {}, {}), dt)
            else:
                unit = discretise(RawLayer(sname, nname, t, np.ones((n, 1)), np.zeros(n), node, {}, {}), dt)
                g = _uniform_gain(nname, t, unit)
                F = FloatLayer(weights=w * g, bias=b * g, beta=unit.beta, threshold=unit.threshold, kind=t,
                               synapse=sname, neuron=nname)
            limits = scale_limits(F, weight_bits, membrane_bits)
            by = min(limits, key=limits.get)
            layer, rep = quantise_layer(F, len(layers), weight_bits, membrane_bits, leak_frac_bits, limits[by], by)
            if spec is not None:
                if layer.readout:
                    raise UserError(f"{where}: a conv layer cannot be the non-spiking readout; end with an Affine "
                                    "or Linear layer")
                layer = layer.replace(conv=spec)
                rep["kind"] = f"Conv2d+{t}"
            layers.append(layer)
            reports.append(rep)
    if not layers:
        raise UserError("the NIR graph has no Conv2d/Affine/Linear -> neuron layer")
    try:
        net = Network(layers=layers, timesteps=timesteps, encoding=encoding, name=name,
                      meta={"source": "nir", "dt": dt, "nir_version": version, "calibrated": False})
    except ValueError as e:
        raise UserError(f"the imported layers do not form a network: {e}") from None
    return net, reports
