"""WordQueue (the block-RAM spike-word queue between layers): its twin by hand, then the gateware
against the twin and against plain FIFO order under random traffic and back-pressure."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.hdl.word_queue import WordQueue
from spikegate.model.word_queue import WordQueue as WordQueueTwin
from spikegate.sim.collisions import CollisionPoison

from conftest import run_testbench


def test_twin_worked_by_hand():
    q = WordQueueTwin(width=4, depth=3)  # capacity 4
    assert q.capacity == 4 and not q.r_valid and q.w_ready
    q.clock(True, 0x1, False)            # cycle 0: 1 written
    assert not q.r_valid                 # cycle 1: stored, not yet in the head register
    q.clock(True, 0x12, False)           # cycle 1: 2 written (masked to 4 bits)
    assert q.r_valid and q.r_payload == 1    # cycle 2: 1 at the head, from c + 2
    for w in (3, 4, 5):                  # cycles 2-4: storage fills (2, 3, 4, 5); head 1 not popped
        q.clock(True, w, False)
    assert not q.w_ready
    q.clock(True, 6, False)              # refused while full
    q.clock(False, 0, True)              # pop 1; 2 loads
    assert q.r_payload == 2 and q.w_ready
    popped = []
    for _ in range(6):
        if q.r_valid:
            popped.append(q.r_payload)
        q.clock(False, 0, True)
    assert popped == [2, 3, 4, 5] and not q.r_valid


def test_fenced_twin_worked_by_hand():
    q = WordQueueTwin(width=4, depth=4, fenced=True)
    q.clock(True, 1, False)              # written behind the fence (at 0)
    q.clock(True, 2, False)
    assert not q.r_valid                 # stored, but not yet sealed
    q.clock(True, 3, False, seal=True)   # seal: 1 and 2 are before the fence (3 is this cycle's write)
    assert q.r_valid and q.r_payload == 1
    q.clock(False, 0, True)
    assert q.r_payload == 2
    q.clock(False, 0, True)              # 3 stays behind the fence
    assert not q.r_valid
    q.clock(False, 0, False, seal=True)
    assert q.r_payload == 3


@pytest.mark.parametrize("kwargs", [{"word_lanes": 4}, {"word_lanes": 9, "registered": True},
                                    {"word_lanes": 2.0, "registered": True}, {"word_lanes": True, "registered": True}])
def test_bad_word_lanes_are_named(kwargs):
    with pytest.raises(ValueError, match=f"WordQueue word_lanes={kwargs['word_lanes']!r} is not valid"):
        WordQueue(8, 4, **kwargs)
    if kwargs.get("registered"):
        with pytest.raises(ValueError, match=f"WordQueue word_lanes={kwargs['word_lanes']!r} is not valid"):
            WordQueueTwin(8, 4, word_lanes=kwargs["word_lanes"])


@pytest.mark.parametrize("name,args", [("width", (0, 4)), ("depth", (8, 0)), ("depth", (8, 2.0)),
                                       ("width", (True, 4))])
def test_bad_parameters_are_named(name, args):
    with pytest.raises(ValueError, match=f"WordQueue {name} must be an integer >= 1"):
        WordQueueTwin(*args)
    with pytest.raises(ValueError, match=f"WordQueue {name} must be an integer >= 1"):
        WordQueue(*args)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), width=st.integers(1, 12), depth=st.integers(1, 9),
       p_write=st.floats(0.0, 1.0), p_pop=st.floats(0.0, 1.0))
@pytest.mark.parametrize("registered", [False, True], ids=["", "registered"])
@pytest.mark.parametrize("fenced", [False, True])
def test_gateware_matches_twin_and_keeps_order(seed, width, depth, p_write, p_pop, fenced, registered):
    rng = np.random.default_rng(seed)
    n = 80
    writes = rng.random(n) < p_write
    pops = rng.random(n) < p_pop
    seals = rng.random(n) < 0.2
    words = rng.integers(0, 1 << width, n)
    # registered: the head is a flip-flop behind the block RAM, with the same cycles (one twin),
    # and its top word_lanes bits are a spike word whose lead (lowest set lane, "two or more set")
    # comes with it.
    word_lanes = int(rng.integers(1, width + 1)) if registered else 0
    dut = WordQueue(width, depth, fenced=fenced, registered=registered, word_lanes=word_lanes)
    twin = WordQueueTwin(width, depth, fenced=fenced, word_lanes=word_lanes)
    accepted, popped, saw_full = [], [], []
    # A spike word with no lane set is not queued.
    spike_word = (lambda w: w >> (width - word_lanes)) if word_lanes else (lambda w: 1)

    async def body(ctx):
        for c in range(n):
            ctx.set(dut.w.valid, int(writes[c]))
            ctx.set(dut.w.payload, int(words[c]))
            ctx.set(dut.r.ready, int(pops[c]))
            if fenced:
                ctx.set(dut.seal, int(seals[c]))
            assert ctx.get(dut.r.valid) == twin.r_valid, f"cycle {c}: r.valid"
            if twin.r_valid:
                assert ctx.get(dut.r.payload) == twin.r_payload, f"cycle {c}: r.payload"
                if word_lanes:
                    assert ctx.get(dut.lead) == lead(twin.r_payload >> (width - word_lanes), word_lanes), \
                        f"cycle {c}: lead"
            assert ctx.get(dut.w.ready) == twin.w_ready, f"cycle {c}: w.ready"
            if writes[c] and ctx.get(dut.w.ready) and spike_word(int(words[c])):
                accepted.append(int(words[c]))
            saw_full.append(not ctx.get(dut.w.ready))
            if pops[c] and ctx.get(dut.r.valid):
                popped.append(ctx.get(dut.r.payload))
            twin.clock(bool(writes[c]), int(words[c]), bool(pops[c]), bool(seals[c]))
            await ctx.tick()

    # A read that meets a write in the same row returns garbage, as it may on the boards.
    platform = CollisionPoison()
    run_testbench(dut, body, platform)
    assert platform.hits == 1
    # Independently of the twin: what comes out is a prefix of what went in, in order, and the
    # queue holds at most its capacity plus the head register.
    assert popped == accepted[:len(popped)]
    assert len(accepted) - len(popped) <= dut.capacity + 1
    if any(saw_full):
        assert len(accepted) >= dut.capacity


@pytest.mark.parametrize("registered", [False, True], ids=["", "registered"])
def test_gateware_full_queue_refuses_and_drains_in_order(registered):
    """Fill to capacity with no pops (head + capacity words), check the refusal, then drain."""
    dut = WordQueue(8, 4, registered=registered)
    out = []

    async def body(ctx):
        for w in range(1, 7):           # 1 goes to the head, 2..5 fill the storage, 6 is refused
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, w)
            await ctx.tick()
        assert not ctx.get(dut.w.ready)
        ctx.set(dut.w.valid, 0)
        ctx.set(dut.r.ready, 1)
        for _ in range(8):
            if ctx.get(dut.r.valid):
                out.append(ctx.get(dut.r.payload))
            await ctx.tick()

    run_testbench(dut, body)
    assert out == [1, 2, 3, 4, 5]


def lead(word: int, lanes: int) -> int:
    """WordQueue's lead of a spike word, independently: its lowest set lane (0 if none), above it
    whether two or more lanes are set, and above that the lanes set after the lowest."""
    low = (word & -word).bit_length() - 1 if word else 0
    lb = (lanes - 1).bit_length()
    rest = sum(1 << k for k in range(low + 1, lanes) if word >> k & 1)
    return low | (bin(word).count("1") >= 2) << lb | rest << (lb + 1)


@pytest.mark.parametrize("gaps", [False, True], ids=["back_to_back", "gaps"])
@pytest.mark.parametrize("flagged", [False, True], ids=["", "head_lead"])
@pytest.mark.parametrize("lanes", [1, 2, 3, 4, 5, 8, 32, 64])
def test_word_events_serialise_every_word(lanes, flagged, gaps):
    """word_events on every word of ``lanes`` bits (all of them up to 5 lanes, a sample of 8, 32
    and 64): one event per set lane, lowest first, at group 3's addresses, ``last`` on the final
    one and only there, with takes in consecutive cycles or with gaps (no take) that change
    nothing; the next word then starts afresh. flagged: the word's lead comes from a register
    beside it, as from WordQueue."""
    from amaranth.hdl import Const, Module, Signal
    from spikegate.hdl.word_queue import word_events
    m = Module()
    lane_bits = (lanes - 1).bit_length()
    word, take, head_lead = Signal(lanes), Signal(), Signal(lane_bits + 1 + lanes)
    address, last, _ = word_events(m, Const(3, 2), word, take, lanes, head_lead=head_lead if flagged else None)
    rng = np.random.default_rng(lanes)
    words = (list(range(1, 1 << lanes)) if lanes <= 5
             else [int.from_bytes(rng.bytes(8), "little") % ((1 << lanes) - 1) + 1 for _ in range(40)])
    if lanes >= 32:  # one, two, three and more lanes, the top lane, all of them
        top = 1 << (lanes - 1)
        words += [top, top | 1, top | 1 << 16 | 1, top | 7, (1 << lanes) - 1]

    async def body(ctx):
        for w in words:
            ctx.set(word, int(w))
            ctx.set(head_lead, lead(int(w), lanes))
            events = []
            for c in range(2 * lanes + 2):
                taking = c % 2 if gaps else 1
                ctx.set(take, taking)
                a, done = ctx.get(address), ctx.get(last)
                if taking:
                    events.append((a & ((1 << lane_bits) - 1)) if lane_bits else 0)
                    assert a >> lane_bits == 3
                    assert done == (len(events) == bin(int(w)).count("1")), (w, events)
                else:
                    assert not done
                await ctx.tick()
                if done:
                    break
            assert events == [k for k in range(lanes) if int(w) >> k & 1], (w, events)
    run_testbench(m, body)


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 32])
def test_lowest_lane_search(width):
    """The balanced lowest-set-bit search (hdl.word_queue._lowest) on every value up to 8 bits and
    a sample at 32 (single bits, pairs, the top lane, none): the lowest set index, 0 when none."""
    from amaranth.hdl import Module, Signal
    from spikegate.hdl.word_queue import _lowest
    m = Module()
    bits = Signal(width)
    low = _lowest(m, bits, "low")
    m.d.sync += Signal(name="clocked").eq(bits[0])  # (a clock domain for the testbench's clock)
    values = list(range(1 << width)) if width <= 8 else (
        [0, 1 << 31, 0xffffffff, 0x80000001, 0x00010000, 0x7fff0000]
        + [1 << k | 1 << j for k in range(32) for j in range(k, 32, 7)]
        + [int(v) for v in np.random.default_rng(width).integers(0, 1 << 32, 200)])

    async def body(ctx):
        for v in values:
            ctx.set(bits, v)
            assert ctx.get(low) == ((v & -v).bit_length() - 1 if v else 0), hex(v)
    run_testbench(m, body)
