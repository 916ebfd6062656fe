"""Will the network fit the board? Block-RAM estimates before synthesis, exact checks after.

Before any tool runs, :func:`precheck` maps every memory of the core (shapes from
:meth:`spikegate.model.layer.LayerGeometry.memory_bits` and the core's input buffer) onto the
device's block-RAM configurations and refuses a network whose memories cannot fit even in the
best case. After synthesis, :func:`check_cells` compares the cells Yosys really produced with the
device. Both raise :class:`ResourceError` naming the resource, needed vs available, and what to
change.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import UserError
from ..model.blocks import blocks_for, weight_slice_bits
from ..model.hardware import HardwareConfig
from ..model.layer import GROUP_MEMORIES
from ..model.protocol import DEFAULT_MAX_PAYLOAD
from ..model.word_queue import queue_capacity

__all__ = ["ResourceError", "memory_shapes", "stream_shapes", "choose_stream", "choose_ident_block",
           "choose_small_bit", "choose_encoder", "choose_registered_reads", "blocks_for", "estimate", "fits",
           "choose_weight_ram", "precheck", "check_cells", "CELL_CLASSES"]


# A plastic layer's learning memories with one word per input (hdl.learning_engine), not per group.
PER_INPUT = ("pre_traces", "learn_events")


class ResourceError(UserError):
    """The design needs more of a device resource than the board has."""

    def __init__(self, message: str, resource: str, needed: int, available: int):
        super().__init__(message)
        self.resource = resource
        self.needed = needed
        self.available = available


def memory_shapes(net, hw: HardwareConfig) -> list[tuple[str, int, int]]:
    """(name, width, depth) of every block-RAM memory of the design (SPRAM weights excluded)."""
    geos = hw.geometry(net)
    shapes = []
    for l, g in enumerate(geos):
        G, P = g.groups, g.lanes
        bits = g.memory_bits()
        sb = weight_slice_bits(g) if g.read_stages and g.weight_ram != "spram" else None
        if sb is not None:  # registered reads: a deep weight memory as narrow slices (hdl.read_reg)
            shapes += [(f"layer {l} weights [{k}]", sb, g.n_in * G) for k in range(P * g.weight_bits // sb)]
        elif g.weight_ram != "spram":
            # (rows * G words for a dense layer, its recurrent region included; a conv layer's kernel
            # words, model/conv_layer.py)
            shapes.append((f"layer {l} weights", P * g.weight_bits, bits["weights"] // (P * g.weight_bits)))
        for name in bits:
            if (name == "weights" or (g.conv is not None and name == "bias")
                    or (name in GROUP_MEMORIES and g.groups_in_logic)):
                # (a conv layer's Gc bias words are a logic table, hdl/conv_layer.py; shallow
                # per-group memories with registered reads are flip-flops, LayerGeometry.groups_in_logic)
                continue
            depth = g.n_in if name in PER_INPUT else G
            shapes.append((f"layer {l} {name}", bits[name] // depth, depth))
        if l < len(geos) - 1:  # the block-RAM queue of spike words to the next layer (hdl.word_queue)
            # the inflight schedule's queue holds two steps (one being written, one being read)
            depth = G * (2 if hw.schedule == "inflight" else 1)
            shapes.append((f"layer {l} spike words", g.group_bits + P, queue_capacity(depth)))
    if hw.input_ram != "spram":
        shapes.append(("input buffer", geos[0].addr_bits + 1, hw.max_events))
    # The host link's buffers are not forced into block RAM (Yosys may build them from logic), so
    # they stay out of this lower bound; the post-synthesis check counts what they really take.
    return shapes


def stream_shapes(board, max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[tuple[str, int, int]]:
    """(name, width, depth) of the block RAM a streaming host link adds on ``board``
    (``HostLink(stream=True)``, docs/protocol.md "Streaming"): the payload buffer's second bank
    (:func:`spikegate.hdl.link.decoder.payload_bank` words, with the ``small`` flag where
    :func:`choose_small_bit` keeps it) and the answer FIFO. The first bank, the buffer a link has
    without streaming, stays out of the estimate like the link's other memories (see
    :func:`memory_shapes`)."""
    from ..hdl.link.decoder import payload_bank, payload_word_bits
    from ..hdl.link.engine import ANSWER_FIFO_DEPTH
    width = payload_word_bits(choose_small_bit(board, True, max_payload))
    return [("host link second payload bank", width, payload_bank(max_payload)),
            ("host link answer FIFO", 8, ANSWER_FIFO_DEPTH)]


def estimate(board, net, hw: HardwareConfig, *, stream: bool = False,
             max_payload: int = DEFAULT_MAX_PAYLOAD) -> dict:
    """Best-case block-RAM (and SPRAM) use of the core's memories on ``board`` (with ``stream``,
    and the streaming host link's for a ``max_payload`` buffer, :func:`stream_shapes`): a lower bound.

    The core asks for block RAM for every memory (even shallow ones), so each costs at least one
    block; wide, shallow memories (P lanes x membrane bits) cost one block per block width.
    """
    rows = []
    for name, width, depth in memory_shapes(net, hw) + (stream_shapes(board, max_payload) if stream else []):
        rows.append({"memory": name, "width": width, "depth": depth, "bits": width * depth,
                     "blocks": blocks_for(board.family, width, depth)})
    geos = hw.geometry(net)
    # As the report has always shown it: one name, or a list with one per layer.
    rams = hw.weight_ram if isinstance(hw.weight_ram, str) else list(hw.weight_ram)
    return {"memories": rows, "blocks": sum(r["blocks"] for r in rows),
            "bits": sum(r["bits"] for r in rows), "available": board.bram_blocks,
            "spram_tiles": sum(g.spram_tiles for g in geos) + hw.input_spram_tiles(), "weight_ram": rams,
            "input_ram": hw.input_ram}


def fits(board, est: dict) -> bool:
    """Whether an :func:`estimate`'s block RAM and SPRAM fit ``board``."""
    return est["blocks"] <= board.bram_blocks and est["spram_tiles"] <= board.spram_blocks


def choose_stream(board, net, hw: HardwareConfig, max_payload: int = DEFAULT_MAX_PAYLOAD) -> bool:
    """Whether a build streams by default (the one place this is decided): yes when the streaming
    link's block RAM (:func:`stream_shapes`) fits beside the design's, no when only the design
    fits, and no for a plastic network: learning over the link sends one sample at a time
    (:mod:`spikegate.learn_board`), so streaming would only cost its logic, which the learning
    engine needs (a plastic digits network on the iCEBreaker fits only without it). Logic is not
    known before synthesis: ``--no-stream`` frees about 125 iCE40 logic cells."""
    from ..model.link import has_plastic
    return not has_plastic(net) and fits(board, estimate(board, net, hw, stream=True, max_payload=max_payload))


def choose_ident_block(board, net, hw: HardwareConfig, stream: bool,
                       max_payload: int = DEFAULT_MAX_PAYLOAD) -> bool:
    """Whether the host link keeps its identify payload in block RAM (``HostLink(ident_block=...)``,
    the one place a build decides it): when it does not stream and the streaming link's two blocks
    would fit, one of them holds it and saves about 350 iCE40 logic cells."""
    return not stream and fits(board, estimate(board, net, hw, stream=True, max_payload=max_payload))


def choose_small_bit(board, stream: bool, max_payload: int = DEFAULT_MAX_PAYLOAD) -> bool:
    """Whether the host link's payload buffer keeps each byte's ``small`` flag beside it
    (``HostLink(small_bit=...)``, the one place a build decides it): when a 9-bit word costs no
    more block RAM than a byte, as on ECP5 and Gowin (9-bit block configurations); not on the
    iCE40, where it would double the buffer's blocks (256 x 16 instead of 512 x 8)."""
    from ..hdl.link.decoder import payload_depth
    depth = payload_depth(max_payload, stream)
    return blocks_for(board.family, 9, depth) == blocks_for(board.family, 8, depth)


def choose_registered_reads(board, net, hw: HardwareConfig, max_payload: int = DEFAULT_MAX_PAYLOAD) -> bool:
    """Whether a build registers its block RAM reads by default (``HardwareConfig.registered_reads``,
    the one place this is decided): on the ECP5, whose DP16KD takes 5.8 ns from clock to data
    (docs/timing.md), for a network the option takes (dense layers without temporal features or
    plasticity) whose memories still fit (a deep weight memory then takes more, narrower blocks);
    not on the iCE40 or Gowin parts, whose critical paths are logic, and where every flip-flop
    behind a block costs the iCE40 a logic cell."""
    if board.family != "ecp5":
        return False
    try:  # (the geometry refuses the layer kinds the option does not take)
        est = estimate(board, net, replace(hw, registered_reads=True), max_payload=max_payload)
    except ValueError:
        return False
    return fits(board, est)


def choose_encoder(net) -> bool:
    """Whether a build has the on-chip input encoder (ENCODE and BATCH) by default (the one place
    this is decided): yes, but not for a plastic network: learning on the board sends each sample's
    spikes, encoded on the host as the model encodes them (:mod:`spikegate.learn_board`), so the
    encoder would only cost its logic (about 290 iCE40 cells), which the learning engine needs (a
    plastic digits network on the iCEBreaker fits only without it). ``spikegate run --on-chip``
    needs a build with ``--encoder``."""
    from ..model.link import has_plastic
    return not has_plastic(net)


def choose_weight_ram(board, net, hw: HardwareConfig) -> HardwareConfig:
    """``hw`` with its weights in block RAM, or per layer in block RAM or SPRAM when only SPRAM
    weights make the design fit; failing that, with the input buffer in SPRAM too
    (``input_ram = "spram"``), then weights moved as before.

    On a device with SPRAM (the iCE40 UltraPlus), the largest weight arrays move to SPRAM, one
    layer at a time, until the block RAM suffices; a plastic layer's too (its learning stage then
    issues a weight word every other cycle, ``LearningGeometry.cycles``). SPRAM has no
    configuration-time contents, so those weights are zero after configuration and come over the
    host link.
    """
    block = replace(hw, weight_ram="block")
    if fits(board, estimate(board, net, block)) or not board.spram_blocks:
        return block
    placed = _place_weights(board, net, block)
    if placed is not None or hw.input_ram == "spram":
        return placed or block
    # The input buffer (a whole sample: 24 blocks for a conv-first MNIST network at T = 32) goes
    # to an SPRAM tile of its own when moving weights alone is not enough.
    try:
        spram_input = replace(block, input_ram="spram")
        if fits(board, estimate(board, net, spram_input)):
            return spram_input
        return _place_weights(board, net, spram_input) or block
    except ValueError:  # the buffer's words do not fit one tile
        return block


def _place_weights(board, net, block: HardwareConfig) -> HardwareConfig | None:
    """``block`` with the largest weight arrays in SPRAM, one layer at a time, until the design fits
    (None when it never does)."""
    hw = block
    rams = ["block"] * len(net.layers)
    order = sorted(range(len(net.layers)), key=lambda l: -net.layers[l].weights.size * net.layers[l].weight_bits)
    for l in order:
        if net.layers[l].weight_bits % 4:
            continue  # SPRAM writes are nibble-masked
        rams[l] = "spram"
        try:
            est = estimate(board, net, replace(hw, weight_ram=rams))
        except ValueError:  # more SPRAM tiles than the device has
            rams[l] = "block"
            continue
        if fits(board, est):
            return replace(hw, weight_ram=rams)
    return None


def _lane_options(board, net, hw: HardwareConfig) -> list[int]:
    options = []
    for P in (1, 2, 4, 8, 16, 32, 64):
        if P == hw.lanes:
            continue
        try:
            if fits(board, estimate(board, net, choose_weight_ram(board, net, replace(hw, lanes=P)))):
                options.append(P)
        except (ValueError, TypeError):
            continue
    return options


def precheck(board, net, hw: HardwareConfig, *, stream: bool = False,
             max_payload: int = DEFAULT_MAX_PAYLOAD) -> dict:
    """The memory estimate of ``hw`` on ``board`` (see :func:`estimate`); :class:`ResourceError`
    when its memories cannot fit. :func:`choose_weight_ram` first finds a weight placement that does."""
    est = estimate(board, net, hw, stream=stream, max_payload=max_payload)
    if fits(board, est):
        return est
    if est["spram_tiles"] > board.spram_blocks:
        raise ResourceError(
            f"the network does not fit the {board.title} ({board.device}): its weights in SPRAM "
            f"(weight_ram = {est['weight_ram']!r}) need {est['spram_tiles']} SB_SPRAM256KA tiles but the "
            f"device has {board.spram_blocks}; keep the weights in block RAM (weight_ram = 'block')",
            "SPRAM", est["spram_tiles"], board.spram_blocks)
    lanes, max_events = hw.lanes, hw.max_events
    biggest = max(est["memories"], key=lambda r: r["blocks"])
    kbit = board.bram_blocks * board.bram_block_bits // 1024
    hints = []
    others = _lane_options(board, net, hw)
    if others:
        hints.append(f"--lanes {' or '.join(map(str, others))} fits the block RAM")
    wb = max(layer.weight_bits for layer in net.layers)
    if wb > 2:
        hints.append(f"fewer weight bits (weight_bits = {wb} now; each halving roughly halves the "
                     f"weight memory)")
    hints.append("fewer hidden neurons or inputs")
    weight_bits = sum(r["bits"] for r in est["memories"] if r["memory"].endswith("weights"))
    spram_bits = board.spram_blocks * board.spram_block_bits
    note = ""
    placed = estimate(board, net, choose_weight_ram(board, net, hw))
    if fits(board, placed):  # only when the caller chose the placement itself
        also = ", input_ram = 'spram'" if placed["input_ram"] == "spram" else ""
        hints.insert(0, f"weight_ram = {placed['weight_ram']!r}{also} fits (the automatic placement)")
    elif spram_bits:
        note = (f" Moving weight arrays to the {board.spram_blocks} SPRAM blocks ({spram_bits // 1024} "
                f"kbit) does not make it fit either (the weights take {weight_bits} bits).")
    ibuf = next((r for r in est["memories"] if r["memory"] == "input buffer"), None)
    if ibuf is not None and ibuf["blocks"] > 2 and max_events > 512:
        hints.append(f"a smaller input buffer (--max-events {max_events // 2}; it takes "
                     f"{ibuf['blocks']} blocks at {max_events} words)")
    bank = next((r for r in est["memories"] if r["memory"] == "host link second payload bank"), None)
    if bank is not None and max_payload > DEFAULT_MAX_PAYLOAD:
        hints.append(f"a smaller request buffer (--max-payload {DEFAULT_MAX_PAYLOAD}; at {max_payload} bytes "
                     f"streaming's second bank takes {bank['blocks']} blocks) or --no-stream")
    bigger = _bigger_boards(board, est["bits"])
    if bigger:
        hints.append(f"a board with more block RAM ({', '.join(bigger)})")
    raise ResourceError(
        f"the network does not fit the {board.title} ({board.device}): block RAM needs "
        f"{est['blocks']} blocks but the device has {board.bram_blocks} ({kbit} kbit); "
        f"the design's memories hold {est['bits']} bits, the largest being {biggest['memory']} "
        f"({biggest['width']} x {biggest['depth']} = {biggest['bits']} bits, {biggest['blocks']} "
        f"blocks) with lanes = {_lanes_text(lanes)}.{note} Try: " + "; ".join(hints),
        "BRAM", est["blocks"], board.bram_blocks)


def _lanes_text(lanes) -> str:
    """Lanes as the user wrote them: one number or a list (the config keeps lists as tuples)."""
    return str(list(lanes) if isinstance(lanes, tuple) else lanes)


def _bigger_boards(board, bits: int) -> list[str]:
    from .targets import BOARDS
    return [b.name for b in BOARDS.values()
            if b.name != board.name and b.bram_blocks * b.bram_block_bits > 1.3 * bits]


# Synthesised cell types (name prefixes) by resource class, per family.
CELL_CLASSES = {
    "ice40": {"LUT": ("SB_LUT4",), "FF": ("SB_DFF",), "BRAM": ("SB_RAM40_4K",),
              "SPRAM": ("SB_SPRAM256KA",), "DSP": ("SB_MAC16",)},
    "ecp5": {"LUT": ("LUT4",), "FF": ("TRELLIS_FF",), "BRAM": ("DP16KD",),
             "DSP": ("MULT18X18D",), "LUTRAM": ("TRELLIS_DPR16X4",)},
    "gowin": {"LUT": ("LUT1", "LUT2", "LUT3", "LUT4"), "FF": ("DFF",),
              "BRAM": ("SP", "SDP", "DPB", "DPX9B", "pROM"), "DSP": ("MULT",)},
}


def classify_cells(family: str, cell_counts: dict[str, int]) -> dict[str, int]:
    """Cell counts by type -> counts by resource class (LUT, FF, BRAM, ...)."""
    out = {k: 0 for k in CELL_CLASSES[family]}
    for cell, n in cell_counts.items():
        for cls, prefixes in CELL_CLASSES[family].items():
            if cell.startswith(prefixes):
                out[cls] += n
                break
    return out


def available(board) -> dict[str, int]:
    return {"LUT": board.luts, "FF": board.ffs, "BRAM": board.bram_blocks,
            "SPRAM": board.spram_blocks, "DSP": board.dsps}


def check_cells(board, counts: dict[str, int], lanes) -> None:
    """Raise :class:`ResourceError` when synthesis produced more cells than the device has."""
    avail = available(board)
    for res in ("BRAM", "SPRAM", "DSP", "LUT", "FF"):
        need = counts.get(res, 0)
        have = avail.get(res, 0)
        if need <= have:
            continue
        if res in ("LUT", "FF", "DSP"):
            hint = (f"use fewer lanes (--lanes {max(1, _first(lanes) // 2)}; the neuron datapath "
                    f"is replicated per lane) or narrower membranes (membrane_bits)")
        else:
            hint = ("use fewer weight bits, fewer neurons, or a board with more block RAM; "
                    "changing --lanes changes the memory shapes and can change the block count")
        raise ResourceError(
            f"the design does not fit the {board.title} ({board.device}): {res} needs {need} "
            f"but the device has {have} (after synthesis, lanes = {_lanes_text(lanes)}); {hint}",
            res, need, have)


def _first(lanes) -> int:
    return lanes if isinstance(lanes, int) else max(lanes)
