"""Proof (b4) of :mod:`spikegate.sim.formal_link_live`: a quiet link answers IDENTIFY."""
from __future__ import annotations

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Assert, Assume, Const, Cover, Elaboratable, Module, Signal

from ..model import link as proto
from ..model.protocol import RESPONSE_HEADER, Cmd
from .formal_link_rig import RUN_BOUND, LinkProofConfig, LinkRig, no_reset


class IdentifyProof(Elaboratable):
    """From any state in which the decoder hunts and the back end is idle, the host sends an
    IDENTIFY frame a byte a cycle; the answer's first ``expect`` bytes must equal the byte-level
    twin's, the last of them within ``answer_cycles`` of the frame's last byte, and nothing may be
    sent while the frame comes in. After the frame the line is free (bytes a host sends then are
    dropped). ``expect`` is at most, and by default, the bytes that do not depend on the link's state
    (sync, header, the identify block's static part: magic, version, shape, digests, clock, lanes;
    its dirty flag and network id follow).

    Each check is recorded when it happens and asserted at the last step."""

    def __init__(self, config: LinkProofConfig, *, expect: int | None = None, tag: int = 0x3C):
        self.rig = LinkRig(config, free_core=True, run_bound=RUN_BOUND)
        # (the rig's blocks take one request at a time: a twin of a board without streaming)
        twin = proto.HostLink(config.net, lanes=1, clk_freq=1_000_000, baud=100_000,
                              max_payload=config.max_payload, max_events=config.max_events, stream=False,
                              registered_reads=config.geo.registered_reads)
        static = proto.identify_static(config.geo, proto.structure_digest(config.net), proto.content_digest(config.net))
        most = 1 + RESPONSE_HEADER + len(static)
        expect = most if expect is None else expect
        if isinstance(expect, bool) or not isinstance(expect, int) or not 1 <= expect <= most:
            raise ValueError(f"expect = {expect!r} is not valid; valid: 1 to {most} (the bytes that do not "
                             f"depend on the link's state)")
        self.frame = proto.encode_request(Cmd.IDENTIFY, tag)
        self.expected = twin.feed(self.frame)[:expect]
        # Decoder takes the CRC byte and offers the frame; engine: EXEC, then RESP with the sync
        # byte on the transmitter; then the header a byte a cycle and payload bytes every 2 cycles.
        self.answer_cycles = 3 + (1 + RESPONSE_HEADER) + 2 * max(0, expect - 1 - RESPONSE_HEADER)

    @property
    def depth_needed(self) -> int:
        """BMC steps from the first step to the last check, included."""
        return len(self.frame) + self.answer_cycles + 1

    def elaborate(self, platform):
        m = Module()
        no_reset(m)
        m.submodules.rig = rig = self.rig
        frame, expected, n = self.frame, self.expected, len(self.frame)
        last_step = self.depth_needed - 1
        step = Signal(range(last_step + 1), name="step")
        with m.If(step < last_step):
            m.d.sync += step.eq(step + 1)
        got = Signal(range(len(expected) + 1), name="answer_bytes")
        spoke, wrong = Signal(name="spoke"), Signal(name="wrong_answer")
        sending = step < n
        line = Signal(8)
        m.d.comb += [line.eq(AnySeq(8)), rig.line_error.eq(AnySeq(1))]
        with m.If(sending):
            m.d.comb += [rig.valid.eq(1),
                         rig.byte.eq(Const(int.from_bytes(frame, "little"), 8 * n).word_select(step[:3], 8))]
            with m.If(rig.tx_valid):
                m.d.sync += spoke.eq(1)
        with m.Else():
            m.d.comb += [rig.valid.eq(AnySeq(1)), rig.byte.eq(line)]
            with m.If(rig.tx_valid & (got < len(expected))):
                m.d.sync += got.eq(got + 1)
                with m.If(rig.tx_byte != Const(int.from_bytes(expected, "little"), 8 * len(expected)).word_select(got, 8)):
                    m.d.sync += wrong.eq(1)
        last = step == last_step
        m.d.comb += [
            Assume(~Initial() | ((step == 0) & (got == 0) & ~spoke & ~wrong & rig.decoder.hunting & rig.backend_idle)),
            Assert(~last | ~spoke, "the link sends while the host sends IDENTIFY"),
            Assert(~last | ~wrong, "the answer to IDENTIFY differs from the twin's"),
            Assert(~last | (got == len(expected)), "IDENTIFY not answered in time"),
            Cover(last & (got == len(expected))),
        ]
        return m
