"""The ports every layer component has (:func:`layer_members`), so that
:class:`~spikegate.hdl.core.NetworkCore` chains a dense :class:`~spikegate.hdl.layer.LayerCore`
and a :class:`~spikegate.hdl.conv_layer.ConvLayerCore` alike, and the idle-time peek both drive
the same way (:func:`drive_peek`), and their idle-time parameter reads (:func:`drive_params`); a
dense layer's run-time configuration writes (:func:`drive_cfg`)."""
from __future__ import annotations

from amaranth.hdl import Const, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..model.layer import LayerGeometry
from ..model.protocol import CfgTarget

__all__ = ["layer_members", "drive_peek", "drive_params", "drive_cfg"]


def layer_members(geo: LayerGeometry, *, row_bits: int, col_bits: int) -> dict:
    """The ports every layer component has, so that hdl.core.NetworkCore chains a LayerCore and a
    ConvLayerCore (hdl/conv_layer.py) alike: ``row_bits``/``col_bits`` address the weights
    (``cfg_row``/``param_row``) and the neurons (``peek_addr``, ``cfg_col``, ``param_col``)."""
    V = geo.membrane_bits
    return {
        "start": In(1),
        "reset_state": In(1),
        "done": Out(1),
        "busy": Out(1),
        "events": In(stream.Signature(geo.addr_bits)),
        "events_end": In(1),
        "end_ack": Out(1),
        # Spike word of group `group`, valid for one cycle when non-zero.
        "spikes": Out(data.StructLayout({"valid": 1, "group": geo.group_bits, "word": geo.lanes})),
        # High in every cycle that sweeps a group, with its word on `spikes` whether non-zero or not.
        "swept": Out(1),
        # Idle-only access to the final state: neuron `peek_addr`, 1 + read_stages cycles later.
        "peek_addr": In(col_bits),
        "peek_v": Out(signed(V)),
        "peek_r": Out(unsigned(geo.refr_bits)),
        "peek_count": Out(unsigned(max(1, geo.count_bits))),
        # Idle-only run-time writes (already range-checked by the network core).
        "cfg_en": In(1),
        "cfg_target": In(CfgTarget),
        "cfg_row": In(row_bits),
        "cfg_col": In(col_bits),
        "cfg_data": In(signed(max(V, geo.weight_bits))),
        # Idle-only reads of the parameters (CHECKSUM): the weight at (param_row, param_col) and
        # bias[param_col] 1 + 2 * read_stages cycles later (drive_params); the threshold at once.
        "param_row": In(row_bits),
        "param_col": In(col_bits),
        "param_weight": Out(signed(geo.weight_bits)),
        "param_bias": Out(signed(V)),
        "param_threshold": Out(signed(V)),
    }


def drive_peek(m, core, fresh, lane, v_lanes, r_lanes, c_lanes) -> None:
    """A layer's idle-time peek (``layer_members``): lane ``lane`` of the state words its read
    ports answer with; a fresh group (not yet written this run) reads as zero."""
    with m.If(~fresh):
        m.d.comb += core.peek_v.eq(v_lanes[lane])
        if r_lanes is not None:
            m.d.comb += core.peek_r.eq(r_lanes[lane])
        if c_lanes is not None:
            m.d.comb += core.peek_count.eq(c_lanes[lane])


def drive_params(m, core, lane, w_lanes, b_lanes, theta, read_stages: int) -> None:
    """A layer's idle-time parameter reads (``layer_members``): lane ``lane`` of the weight and
    bias words its read ports answer with, registered once more with registered reads
    (``read_stages``; model.hardware.param_latency): a wide layer's multiplexer inputs sit beside
    blocks all over the die, and its routes plus the core's and the CHECKSUM walker's choices were
    the 64-lane ULX3S builds' slowest path. ``theta`` is a register only cfg writes, never during
    an idle-time read."""
    m.d["sync" if read_stages else "comb"] += [core.param_weight.eq(w_lanes[lane]), core.param_bias.eq(b_lanes[lane])]
    m.d.comb += core.param_threshold.eq(theta)


def drive_cfg(m, core, syn, b_wr, theta, lane_bits: int, P: int, V: int) -> None:
    """A dense layer's run-time configuration writes (``cfg_*``): a weight goes to its synapse
    array ``syn``, a bias to one lane of the bias memory's write port ``b_wr``, a threshold into
    the register ``theta``."""
    cfg_lane = core.cfg_col[:lane_bits] if lane_bits else Const(0, 1)
    cfg_group = core.cfg_col[lane_bits:] if lane_bits else core.cfg_col
    m.d.comb += [
        syn.w_en.eq(core.cfg_en & (core.cfg_target == CfgTarget.WEIGHT)),
        syn.w_row.eq(core.cfg_row),
        syn.w_col.eq(core.cfg_col),
        syn.w_data.eq(core.cfg_data),
        b_wr.addr.eq(cfg_group),
        b_wr.data.eq(core.cfg_data[:V].replicate(P)),
        b_wr.en.eq((core.cfg_en & (core.cfg_target == CfgTarget.BIAS)).replicate(P) & (Const(1, P) << cfg_lane)),
    ]
    with m.If(core.cfg_en & (core.cfg_target == CfgTarget.THRESHOLD)):
        m.d.sync += theta.eq(core.cfg_data)
