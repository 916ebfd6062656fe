"""Shared test infrastructure: tier markers, the Icarus requirement, caches under the run's temp dir.

Tiers (registered in pyproject.toml): every test gets exactly one of ``model`` (numpy only: the
model, twins, NIR, data sets, host driver, CLI; seconds), ``amaranth`` (Amaranth's simulator or
Verilog export), ``verilator`` / ``icarus`` (cocotb runs of the generated Verilog) and ``yosys``
(YoWASP synthesis, place and route, packing), by its file in ``FILE_TIERS`` refined per test below;
``slow`` stays an explicit marker in the test files. ``pytest -m model`` runs the model tier alone.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from spikegate.model.simulate import simulate
from spikegate.sim import runner
from waits import within

TIERS = ("model", "amaranth", "verilator", "icarus", "yosys")

# The tier of each test file's tests. A new test file must be added here (collection fails otherwise).
FILE_TIERS = {
    "test_boards.py": "amaranth",
    "test_bad_inputs.py": "model",
    "test_boards_build.py": "yosys",
    "test_boards_bench.py": "model",
    "test_lanes_auto.py": "model",
    "test_bram_bound.py": "model",
    "test_clock_search.py": "model",
    "test_bench_link.py": "model",
    "test_cli_inputs.py": "model",
    "test_cache_robustness.py": "model",
    "test_sigterm.py": "model",
    "test_cli_library.py": "model",
    "test_cli_model.py": "model",
    "test_convert.py": "model",
    "test_conv.py": "model",
    "test_conv_io.py": "model",
    "test_conv_twin.py": "model",
    "test_conv_hdl.py": "amaranth",
    "test_conv_sim.py": "verilator",
    "test_conv_snntorch.py": "model",
    "test_core_install.py": "model",
    "test_datasets.py": "model",
    "test_explore.py": "yosys",
    "test_formal.py": "yosys",  # SymbiYosys proofs with the YoWASP tools
    "test_formal_link.py": "yosys",  # SymbiYosys proofs about the host link
    "test_encode.py": "model",
    "test_encode_hdl.py": "amaranth",
    "test_encode_host.py": "model",
    "test_encode_e2e.py": "verilator",
    "test_encode_link.py": "amaranth",
    "test_link_stream.py": "amaranth",
    "test_hdl_blocks.py": "amaranth",
    "test_hdl_current.py": "amaranth",
    "test_hdl_temporal.py": "amaranth",
    "test_hdl_delay.py": "amaranth",
    "test_build_no_encoder.py": "amaranth",
    "test_max_payload.py": "amaranth",
    "test_max_payload_e2e.py": "verilator",
    "test_hdl_core.py": "amaranth",
    "test_waits.py": "amaranth",
    "test_hdl_export.py": "amaranth",
    "test_hdl_neuron.py": "amaranth",
    "test_hdl_twin.py": "model",
    "test_host.py": "model",
    "test_host_deadline.py": "model",
    "test_layering.py": "model",
    "test_link_blocks.py": "amaranth",
    "test_link_bulk.py": "amaranth",
    "test_link_conv.py": "amaranth",
    "test_link_conv_e2e.py": "verilator",
    "test_link_checksum.py": "amaranth",
    "test_link_e2e.py": "verilator",
    "test_link_fuzz.py": "verilator",
    "test_link_fuzz_reference.py": "model",
    "test_option_scope.py": "model",
    "test_link_engine.py": "amaranth",
    "test_link_learn.py": "amaranth",
    "test_learn_board.py": "verilator",
    "test_link_hdl.py": "amaranth",
    "test_link_uart.py": "amaranth",
    "test_model.py": "model",
    "test_model_speed.py": "model",
    "test_compiled.py": "model",
    "test_patterns.py": "model",
    "test_network.py": "model",
    "test_nir_cli.py": "model",
    "test_nir_digits.py": "model",
    "test_nir_import.py": "model",
    "test_nir_roundtrip.py": "model",
    "test_nir_snntorch.py": "model",
    "test_learn_cli.py": "model",
    "test_packaging.py": "model",
    "test_learning_engine.py": "model",
    "test_learning_hdl.py": "amaranth",
    "test_learning_rstdp.py": "amaranth",
    "test_learning_sim.py": "verilator",
    "test_learning_spram.py": "amaranth",
    "test_plasticity.py": "model",
    "test_plasticity_scalar.py": "model",
    "test_plots.py": "model",
    "test_sim_cli.py": "verilator",
    "test_sim_core.py": "verilator",
    "test_sim_runner.py": "verilator",
    "test_sim_slow.py": "verilator",
    "test_suite.py": "model",
    "test_temporal.py": "model",
    "test_temporal_core.py": "model",
    "test_temporal_sim.py": "verilator",
    "test_delay_core.py": "model",
    "test_delay_sim.py": "verilator",
    "test_nir_temporal.py": "model",
    "test_nir_snntorch_temporal.py": "model",
    "test_synth.py": "yosys",
    "test_router.py": "amaranth",
    "test_outreg.py": "yosys",
    "test_spram_pack.py": "amaranth",
    "test_word_queue.py": "amaranth",
    "test_registered_reads.py": "model",
    "test_link_registered.py": "amaranth",
    "test_collisions.py": "amaranth",
}
# Tests whose tier differs from their file's and that neither a ``simulator`` parameter nor
# "icarus" in their name gives away.
TEST_TIERS = {
    "test_sigterm.py::test_the_cli_ends_its_synthesis_on_sigterm": "yosys",
    "test_clock_search.py::test_search_places_at_each_fmax_and_keeps_the_fastest_met_build": "yosys",
    "test_router.py::test_a_router2_build_routes_with_router2_and_says_so": "yosys",
    "test_bram_bound.py::test_outreg_puts_every_block_ram_read_through_its_output_register": "yosys",
    "test_link_fuzz.py::test_twin_fuzz_short": "model",
    "test_link_fuzz.py::test_a_board_that_never_falls_silent_ends_the_listening": "model",
    "test_link_learn.py::test_twin_learns_as_the_learner_and_reads_it_back": "model",
    "test_link_learn.py::test_twin_refusals": "model",
    "test_link_learn.py::test_twin_fuzz_with_learning_commands": "model",
    "test_link_learn.py::test_wrong_state_reference_is_caught": "model",
    "test_link_learn.py::test_twin_fuzz_with_rewards": "model",
    "test_link_bulk.py::test_twin_bulk_write_golden": "model",
    "test_link_registered.py::test_identify_flag_and_the_twin_it_builds": "model",
    "test_link_registered.py::test_host_builds_its_twin_from_identify": "model",
    "test_link_registered.py::test_link_block_ram_reads_go_into_flip_flops": "yosys",
    "test_link_registered.py::test_build_report_names_the_option": "model",
    "test_link_registered.py::test_the_board_chooses_registered_reads": "model",
    "test_link_registered.py::test_build_command_leaves_the_choice_to_the_board_unless_told": "model",
    "test_link_bulk.py::test_twin_bulk_write_matches_scalar_transcription": "model",
    "test_link_bulk.py::test_driver_bulk_frames_load_whole_network": "model",
    "test_boards.py::test_ice40_pll_matches_icepll": "yosys",
    "test_boards.py::test_ecp5_pll_matches_ecppll": "yosys",
    "test_sim_core.py::test_amaranth_simulator_same_protocol": "amaranth",
    "test_sim_runner.py::test_export_verilog_names_ports_and_omits_source_paths": "amaranth",
    "test_sim_runner.py::test_concurrent_builders_share_one_build": "icarus",
}



def require_snntorch():
    """``(snntorch, torch, export_to_nir)`` for the snnTorch interop tests. spikegate does not depend on
    them: without them the calling test module is skipped, unless SPIKEGATE_REQUIRE_SNNTORCH=1 (set
    where they are installed, e.g. in CI), which turns their absence into a failure."""
    try:
        import snntorch
        import torch
        from snntorch.export_nir import export_to_nir
    except ImportError as e:  # pragma: no cover - depends on the environment
        if os.environ.get("SPIKEGATE_REQUIRE_SNNTORCH") == "1":
            raise
        pytest.skip(f"snntorch/torch not installed ({e}); set SPIKEGATE_REQUIRE_SNNTORCH=1 to require them",
                    allow_module_level=True)
    return snntorch, torch, export_to_nir

def tier_of(item: pytest.Item) -> str | None:
    """The tier of a collected test, or None when its file is not in FILE_TIERS."""
    name = getattr(item, "originalname", item.name)
    tier = TEST_TIERS.get(f"{item.path.name}::{name}")
    if tier is not None:
        return tier
    callspec = getattr(item, "callspec", None)
    simulator = callspec.params.get("simulator") if callspec is not None else None
    if simulator in runner.SIMULATORS:
        return simulator
    if "icarus" in name:
        return "icarus"
    return FILE_TIERS.get(item.path.name)


def pytest_collection_modifyitems(config, items):
    unclassified = set()
    for item in items:
        tier = tier_of(item)
        if tier is None:
            unclassified.add(item.path.name)
        else:
            item.add_marker(getattr(pytest.mark, tier))
    if unclassified:
        raise pytest.UsageError(f"test files without a tier: {', '.join(sorted(unclassified))}; add them to "
                                f"FILE_TIERS in {__file__} (one of {', '.join(TIERS)})")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    # A missing iverilog is a failure, not a skip: CI must not pass without the Icarus runs.
    if item.get_closest_marker("icarus") is not None:
        if not runner.simulator_available("icarus"):
            pytest.fail("iverilog is not installed (apt-get install iverilog; .ci/run installs it); "
                        "the Icarus runs need it")


@pytest.fixture(params=runner.SIMULATORS)
def simulator(request) -> str:
    """Each RTL simulator in turn: a test taking ``simulator`` runs on Verilator and on Icarus."""
    return request.param


def run_temp_root(tmp_path_factory) -> Path:
    """The temp folder of this pytest run, the same for all xdist workers (each worker's basetemp
    is a ``popen-gwN`` folder inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def compiled_drive(cache_dirs):
    """The model's compiled drive from the first call on (``auto`` would take it only once a
    process has spent some time in the numpy paths, which varies from run to run), so the whole
    suite checks the kernel; the numpy paths' own modules switch it off (``numpy_paths``)."""
    from spikegate.model import compiled
    with compiled.switched(True):
        yield


@pytest.fixture(scope="module")
def numpy_paths():
    """The model's numpy paths for a whole test module (its compiled drive switched off): for the
    modules that test those paths; test_compiled.py tests the kernel."""
    from spikegate.model import compiled
    with compiled.switched(False):
        yield


@pytest.fixture(scope="session", autouse=True)
def cache_dirs(tmp_path_factory):
    """Point spikegate's caches (bitstream builds, simulator builds) into the run's temp folder,
    never the user's ~/.cache/spikegate, nor numba's cache of the model's kernel into the
    checkout. Shared by all workers of a run, so a design's locked,
    content-hashed simulator build is still made once per run and reused. XDG_CACHE_HOME stays
    as it is: the SPIKEGATE_* variables take precedence, and YoWASP keeps its compiled tools there."""
    root = run_temp_root(tmp_path_factory) / "spikegate-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPIKEGATE_CACHE", str(root))
        mp.setenv("SPIKEGATE_SIM_CACHE", str(root / "sim"))
        # numba's compiled model kernel too (read when numba is imported: compiled_drive below,
        # and nothing imports numba before the fixtures run).
        mp.setenv("NUMBA_CACHE_DIR", str(root / "numba"))
        yield root


def two_read_stages(net, lanes) -> bool:
    """README's rule (Hardware, "Registered block RAM reads"), transcribed: with registered reads a
    dense layer's weight memory of D = n_in * G words of P * wb bits is kept whole while D <= 2 *
    depth(P * wb), else cut into s-bit slices, s the widest of 8, 4, 2, 1 that divides wb, is at
    most wb and has 2 * depth(s) >= D (1 if none); depth(b) is the deepest ECP5 DP16KD shape at
    least b bits wide (512 for a word wider than 36 bits). Two read stages for every layer when
    some layer's D is more than depth(its slice or word width)."""
    shapes = [(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)]

    def depth(bits):
        return max([d for w, d in shapes if w >= bits] or [512])

    for layer, P in zip(net.layers, lanes):
        G, wb = -(-layer.n // P), layer.weight_bits
        D, width = layer.n_in * G, P * wb
        if D > 2 * depth(width):
            width = next((s for s in (32, 16, 8, 4, 2) if s <= wb and wb % s == 0 and 2 * depth(s) >= D), 1)
        if D > depth(width):
            return True
    return False


def cycle_formula(net, lanes, spikes, learn=False, rewards=None, sample_rewards=None, weight_ram="block",
                  schedule="inflight", registered_reads=False):
    """docs/architecture.md's cycle count from the layer-step costs
    ``c_l(t) = (E_l(t) + R_l(t)) * G_l + G_l + 8 + C_l + D_l(t) + W_l + L_l(t)``: ``schedule`` "sequential"
    ``1 + sum_t [1 + sum_l c_l(t)]``, "inflight" ``1 + sum_{w=0}^{T+L-2} [1 + max_{0 <= w-l < T} c_l(w-l)]``,
    G_l = ceil(n_l / P_l), R_l(t) = layer l's own spikes of step t-1 if it is recurrent (0 at t = 0
    and otherwise), C_l = 3 for a layer with a synaptic current (0 otherwise), D_l(t) = 2 + (at t = 0)
    Dmax_l * 2^ceil(log2 G_l) + G_l for a layer whose largest delay Dmax_l > 0 (0 otherwise); a conv2d layer: each
    event's reached positions times ceil(C_out / P) instead of E_l(t) * G_l, and Ho * Wo *
    ceil(C_out / P) sweep groups. From the contract model's spikes and the lane count(s) alone (not
    from the twin, whose count it checks). ``spikes`` [T, n_in] gives an int, [N, T, n_in] an array.

    A winner-take-all layer adds its WTA pass W_l, learning on or off: (1 for one winner without
    inhibition, else G) + 2. With ``learn`` the samples are learned in order (``model.learning.learn_stream``, the
    spikes then depend on the weights learned so far) and every plastic layer adds its stage 5,
    ``L = n_in + E * (1 + (G if a_minus else 1)) + S * (1 + n_in) + 3`` (the S term only when
    a_plus, ltp_offset, weight_decay or a_minus is non-zero) with S the layer's non-zero P-lane
    spike words of the step; L = 0 otherwise. An rstdp layer's stage 5 is instead
    ``L = n_in + 2 * E + 1 + n_in * G + 4`` (the eligibility sweep). ``rewards`` (rstdp): sample
    k's reward at every step, ``sample_rewards`` its reward after the sample (both default 0). With
    ``weight_ram="spram"`` (every layer's weights in SPRAM; stdp only) a weight pass issues every
    other cycle: ``L = n_in + E * (2G if a_minus else 2) + S * 2 n_in + 4``. ``registered_reads``
    (HardwareConfig) makes the 8 a 9, or a 10 when a weight memory is deeper than one block
    (:func:`two_read_stages`)."""
    spikes = np.asarray(spikes, bool)
    batch = spikes[None] if spikes.ndim == 2 else spikes
    lanes = lanes if isinstance(lanes, (list, tuple)) else [lanes] * len(net.layers)
    if learn:
        from spikegate.model.learning import Learner
        learner, runs = Learner(net), []
        for k, sample in enumerate(batch):
            r = 0 if rewards is None else rewards[k]
            runs.append(learner.run(sample, learn=True, rewards=[r] * len(sample)))
            learner.reward(0 if sample_rewards is None else sample_rewards[k])
        out = [np.stack([o[l] for o in runs]) for l in range(len(net.layers))]
    else:
        out = simulate(net, batch).spikes
    events = [batch] + out[:-1]
    L, T = len(net.layers), batch.shape[1]
    if registered_reads:
        registered_reads = 2 if two_read_stages(net, lanes) else 1
    cost = np.zeros((L, T, len(batch)), np.int64)
    for t in range(T):
        for l, (layer, P, e, own) in enumerate(zip(net.layers, lanes, events, out)):
            cycles = cost[l, t]  # a view: the += below add layer l's step-t cost
            if layer.conv is None:
                G = -(-layer.n // P)
                tp = layer.temporal
                recurrent = own[:, t - 1].sum(axis=1) if tp is not None and tp.recurrent is not None and t else 0
                current = 3 if tp is not None and tp.current is not None else 0
                D = tp.max_delay if tp is not None else 0  # slots D + 1, cleared at t = 0; 2 stages more
                stride = 1 << (G - 1).bit_length()  # a slot's words: G rounded up to a power of two
                delay = (2 + (D * stride + G) * (t == 0)) if D else 0
                cycles += (e[:, t].sum(axis=1) + recurrent) * G + G + 8 + registered_reads + current + delay
                p = layer.plasticity
                if p is not None and p.wta:
                    cycles += (G if p.inhibition != "none" or p.wta > 1 else 1) + 2
                if learn and p is not None:
                    E = e[:, t].sum(axis=1)
                    pad = np.zeros((len(batch), G * P - layer.n), bool)
                    S = np.concatenate([own[:, t], pad], axis=1).reshape(len(batch), G, P).any(axis=2).sum(axis=1)
                    pot = bool(p.a_plus or p.ltp_offset or p.weight_decay or p.a_minus)
                    if p.rule == "rstdp":
                        cycles += layer.n_in + 2 * E + 1 + layer.n_in * G + 4
                    elif weight_ram == "spram":
                        cycles += layer.n_in + E * (2 * G if p.a_minus else 2) + pot * S * 2 * layer.n_in + 4
                    else:
                        cycles += layer.n_in + E * (1 + (G if p.a_minus else 1)) + pot * S * (1 + layer.n_in) + 3
                continue
            # conv2d: an event at (c, y, x) costs max(1, positions it reaches * Gc), Gc = ceil(C_out/P);
            # the sweep visits every position's Gc words.
            spec = layer.conv
            Gc = -(-spec.out_channels // P)
            _, h, w = spec.in_shape
            _, ho, wo = spec.out_shape
            for b in range(len(batch)):
                for i in np.flatnonzero(e[b, t]):
                    y, x = (i // w) % h, i % w
                    reach = sum(1 for oy in range(ho) for ox in range(wo)
                                if 0 <= y + spec.padding[0] - oy * spec.stride[0] < spec.kernel[0]
                                and 0 <= x + spec.padding[1] - ox * spec.stride[1] < spec.kernel[1])
                    cycles[b] += max(1, reach * Gc)
            cycles += ho * wo * Gc + 8
    if schedule == "sequential":
        cycles = 1 + T + cost.sum(axis=(0, 1))
    else:
        cycles = np.ones(len(batch), np.int64)
        for w in range(T + L - 1 if T else 0):
            cycles += 1 + np.max([cost[l, w - l] for l in range(L) if 0 <= w - l < T], axis=0)
    return int(cycles[0]) if spikes.ndim == 2 else cycles



def reward_formula(net, lanes, reward):
    """The ``cycles`` port after a per-sample reward: 1 + the longest rstdp layer's sweep
    ``n_in * G + 4`` (1 alone when the reward is 0 or no layer is rstdp)."""
    lanes = lanes if isinstance(lanes, (list, tuple)) else [lanes] * len(net.layers)
    sweeps = [layer.n_in * -(-layer.n // P) + 4 for layer, P in zip(net.layers, lanes)
              if layer.plasticity is not None and layer.plasticity.rule == "rstdp" and reward]
    return 1 + max(sweeps, default=0)


def run_testbench(dut, body, platform=None, period: float = 1e-8) -> None:
    """Amaranth simulation of ``dut`` with a clock of ``period`` seconds and the async testbench
    ``body``; a read that meets a write in a ``no_rw_check`` memory returns garbage, as it may on
    the boards (``sim.collisions.poisoned``; ``platform``: the caller's CollisionPoison)."""
    from amaranth.sim import Simulator

    from spikegate.sim.collisions import poisoned
    sim = Simulator(poisoned(dut, platform))
    sim.add_clock(period)
    sim.add_testbench(body)
    sim.run()


async def write_weight_port(ctx, dut, row, col, value) -> None:
    """One cycle of an idle-time weight write through a synapse array's per-lane write port
    (``w_en`` stays high: the caller lowers it after its last write)."""
    ctx.set(dut.w_en, 1)
    ctx.set(dut.w_row, row)
    ctx.set(dut.w_col, col)
    ctx.set(dut.w_data, value)
    await ctx.tick()

async def drive_layer_step(ctx, dut, events) -> tuple[list[tuple[int, int]], int]:
    """One layer step of a LayerCore-like ``dut`` (start, events stream, events_end) from a testbench:
    the spike words (group, word) it emits and the cycles from start to done, both ends counted."""
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    cycles, words, queue = 1, [], list(events)
    for _ in within("done at the end of the layer step"):
        ctx.set(dut.events.valid, bool(queue))
        ctx.set(dut.events.payload, queue[0] if queue else 0)
        ctx.set(dut.events_end, not queue)
        if ctx.get(dut.spikes.valid):
            words.append((ctx.get(dut.spikes.group), ctx.get(dut.spikes.word)))
        if ctx.get(dut.done):
            break
        handshake = queue and ctx.get(dut.events.ready)
        await ctx.tick()
        cycles += 1
        if handshake:
            queue.pop(0)
    ctx.set(dut.events_end, 0)
    await ctx.tick()
    return words, cycles
