"""Block RAM of the supported FPGA families: the shapes one block takes, and how a memory maps onto them.

The board checks (``boards.fit``) estimate block use from these shapes before any tool runs; the
gateware builds a deep weight memory as narrow slices from them when its reads are registered
(``HardwareConfig.registered_reads``, ``hdl.read_reg``). One table, both uses.
"""
from __future__ import annotations

__all__ = ["BLOCK_CONFIGS", "blocks_for", "slice_depth", "weight_slice_bits", "weight_parts"]

# (width, depth) configurations of one block: iCE40 SB_RAM40_4K, ECP5 DP16KD, Gowin SP/SDPB.
BLOCK_CONFIGS = {
    "ice40": [(16, 256), (8, 512), (4, 1024), (2, 2048)],
    "ecp5": [(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)],
    "gowin": [(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)],
}


def blocks_for(family: str, width: int, depth: int) -> int:
    """Fewest blocks that hold a width x depth memory (one read and one write port)."""
    return min(-(-width // w) * -(-depth // d) for w, d in BLOCK_CONFIGS[family])


def slice_depth(bits: int, family: str = "ecp5") -> int:
    """Words one block holds at ``bits`` bits a word (the deepest configuration that wide; a word
    wider than any takes blocks side by side, each as deep as the widest configuration)."""
    configs = BLOCK_CONFIGS[family]
    return max((d for w, d in configs if w >= bits), default=max(configs)[1])


def weight_slice_bits(geo) -> int | None:
    """Bits per slice of a layer's weight memory (``geo``: its LayerGeometry) with registered reads,
    or None to keep it whole.

    Yosys stacks block RAMs in depth for a deep memory and selects the word with a multiplexer
    behind them: a 784-128-10 network's first layer at 4 lanes (25,088 words of 32 bits) is 49
    DP16KD deep, and its 49-way multiplexer, spread over the die, was the ULX3S's critical path
    with every block RAM read registered (docs/timing.md). Narrow slices are each as deep as an
    ECP5 block goes at their width: the widest slice (a power of two within one lane's weight bits,
    so a lane's write enable is its slice's) that is at most 2 blocks deep. A memory at most 2
    blocks deep already stays whole."""
    D, wb = geo.n_in * geo.groups, geo.weight_bits
    if D <= 2 * slice_depth(geo.lanes * wb):
        return None
    for bits in (32, 16, 8, 4, 2, 1):
        if bits <= wb and wb % bits == 0 and 2 * slice_depth(bits) >= D:
            return bits
    return 1


def weight_parts(geo) -> int:
    """Block-deep parts of a layer's weight memory with registered reads (``geo``: its
    LayerGeometry): its slices (:func:`weight_slice_bits` bits, or the whole word) cut at an ECP5
    block's depth for their width. With more than one, a word passes a multiplexer between the
    blocks on its way out, and that multiplexer with the routes to the blocks, after their 5.8 ns
    from clock to data, made 784-128-10 at 4 lanes on the ULX3S miss 100 MHz (docs/timing.md). So
    the gateware registers each part's word before the multiplexer (``hdl.read_reg``): a read
    stage more (:func:`spikegate.model.hardware.read_stages_for`)."""
    bits = weight_slice_bits(geo) or geo.lanes * geo.weight_bits
    return -(-(geo.n_in * geo.groups) // slice_depth(bits))
