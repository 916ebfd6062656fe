"""The run-time ports of :class:`~spikegate.hdl.core.NetworkCore` (``top`` below): ``cfg``
(weight, bias and threshold writes while idle, range-checked, applied ``CFG_LATENCY`` cycles
later) and the idle-time parameter reads (``param_addr`` / ``param_data``). Their contract is
docs/architecture.md ("Gateware: NetworkCore"); the twin's is
:meth:`spikegate.model.core.NetworkCore.cfg` and ``.param``."""
from __future__ import annotations

from amaranth.hdl import Const, Signal

from ..model.protocol import CfgTarget, value_range
from .read_reg import late

__all__ = ["cfg_port", "param_port"]


def cfg_port(m, top, idle, cfg_error) -> None:
    """``cfg``: ready while the core is ``idle``; a refused word sets ``cfg_error``."""
    # CFG_LATENCY registered stages, so neither the link's word decoding nor the range
    # checks sit in front of the memories' write enables: the accepted word is registered,
    # then checked (the per-layer enables and the error registered), then applied. A run
    # started right after a write reads weights, biases and thresholds later than that.
    m.d.comb += top.cfg.ready.eq(idle)
    c = Signal(top.cfg_layout)
    c_valid = Signal()
    m.d.sync += c_valid.eq(top.cfg.valid & idle)
    with m.If(top.cfg.valid & idle):
        m.d.sync += c.eq(top.cfg.payload)
    c_apply = Signal(top.cfg_layout)
    m.d.sync += c_apply.eq(c)
    any_ok = Signal()
    for l, (core, geo) in enumerate(zip(top.layers, top.geometry)):
        ok = Signal(name=f"cfg_ok{l}")
        with m.Switch(c.target):
            for target in CfgTarget:
                lo, hi = value_range(geo, target)
                in_range = (c.data >= lo) & (c.data <= hi)
                with m.Case(target):
                    if geo.conv is not None and target != CfgTarget.THRESHOLD:
                        m.d.comb += ok.eq(0)  # a conv layer's kernels and biases are fixed
                    elif target == CfgTarget.WEIGHT:
                        m.d.comb += ok.eq((c.row < geo.n_in) & (c.col < geo.n) & in_range)
                    elif target == CfgTarget.BIAS:
                        m.d.comb += ok.eq((c.col < geo.n) & in_range)
                    else:
                        m.d.comb += ok.eq(Const(0 if core.layer.readout else 1) & in_range)
        en = Signal(name=f"cfg_en{l}")
        en_q = Signal(name=f"cfg_en{l}_q")
        m.d.comb += en.eq(c_valid & (c.layer == l) & ok)
        m.d.sync += en_q.eq(en)
        with m.If(en):
            m.d.comb += any_ok.eq(1)
        m.d.comb += [
            core.cfg_target.eq(c_apply.target),
            core.cfg_row.eq(c_apply.row),
            core.cfg_col.eq(c_apply.col),
            core.cfg_data.eq(c_apply.data),
            core.cfg_en.eq(en_q),
        ]
    # (a layer number >= L matches no layer, so it is refused like any other bad word)
    bad_q = Signal()
    m.d.sync += bad_q.eq(c_valid & ~any_ok)
    with m.If(bad_q):
        m.d.sync += cfg_error.eq(1)


def param_port(m, top) -> None:
    """``param_data`` shows, ``param_latency`` cycles after ``param_addr``, the addressed layer's
    weight, bias or threshold."""
    pa = top.param_addr
    pa_q = Signal(top.param_layout)
    m.d.sync += pa_q.eq(pa)
    pa_q = late(m, pa_q, top.param_latency - 1, "param_addr_r")
    for l, core in enumerate(top.layers):
        m.d.comb += [core.param_row.eq(pa.row), core.param_col.eq(pa.col)]
        with m.If(pa_q.layer == l):
            with m.Switch(pa_q.target):
                with m.Case(CfgTarget.WEIGHT):
                    m.d.comb += top.param_data.eq(core.param_weight)
                with m.Case(CfgTarget.BIAS):
                    m.d.comb += top.param_data.eq(core.param_bias)
                with m.Case(CfgTarget.THRESHOLD):
                    m.d.comb += top.param_data.eq(core.param_threshold)
