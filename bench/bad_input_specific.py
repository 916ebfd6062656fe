"""The command-specific cases of the bad-input catalogue (``bench/bad_input_catalogue.py``, which
generates the generic ones from the CLI parser): each command's own inputs and option rules.

``add(command, kind, label, override, option)`` adds a case: ``override`` replaces (or adds) base
arguments, :data:`DROP` removes one, ``"@name"`` is an input file, ``option`` what a clean message
must name.
"""
from __future__ import annotations

__all__ = ["DROP", "OPEN", "specific"]

DROP = object()
# (command, label) of cases that still succeed on a bad input and are not yet fixed in their
# commands: the full matrix reports them as wrong successes, the CI subset leaves them out.
OPEN: set = set()


def specific(add) -> None:
    """Cases of one command's own inputs."""
    for name in ("empty.bin", "random.bin", "adir", "none.bin", "fifo"):
        add("flash", "bitstream", name, {"--bitstream": f"@{name}"}, "bitstream")
    add("flash", "bitstream", "/dev/zero", {"--bitstream": "/dev/zero"}, "bitstream")
    for board, name in (("ulx3s-85f", "random.bit"), ("ulx3s-85f", "ice40.bit"), ("orangecrab-25f", "random.bit"),
                        ("tangnano9k", "text.fs"), ("icebreaker", "random.bit")):
        add("flash", "bitstream", f"{board} {name}", {"--board": board, "--bitstream": f"@{name}"}, "bitstream")
    for name in ("garbage.nir", "empty.nir", "zero.nir", "huge.nir", "none.nir", "adir", "fifo"):
        add("import", "nir file", name, {"": f"@{name}"}, "")
    add("import", "nir file", "/dev/zero", {"": "/dev/zero"}, "/dev/zero")
    add("import", "nir file", "--dt missing", {"--dt": DROP}, "--dt")
    add("import", "nir file", "export with --dt", {"": "@exported.nir"}, "--dt")
    for name in ("calib-shape.npy", "calib-garbage.npy", "none.npy"):
        add("import", "calibration", name, {"--calibrate": f"@{name}"}, "calib")
    add("import", "calibration", "mnist without --data-dir", {"--calibrate": "mnist"}, "--data-dir")
    for label, v in (("0", "0"), ("abc", "abc"), ("empty", ""), ("negative", "-3"), ("huge", "100000")):
        add("train", "hidden", f"--hidden {label}", {"--hidden": v}, "hidden")
    add("train", "percentile", "--percentile 10", {"--percentile": "10"}, "percentile")
    add("model", "data", "mnist without --data-dir", {"--data": "mnist"}, "--data-dir")
    add("model", "data", "mnist, empty --data-dir", {"--data": "mnist", "--data-dir": "@adir"}, "")
    add("model", "data", "samples beyond the split", {"--samples": "1000000"}, "--samples")
    add("sim", "waves", "--waves-sample beyond the data", {"--waves-sample": "1000000"}, "--waves-sample")
    for label, v in (("bogus", "bogus"), ("per layer, too many", "block,block,block,block")):
        add("export", "weight ram", f"--weight-ram {label}", {"--weight-ram": v}, "weight")
    for label, v in (("digit first", "1top"), ("space", "a b"), ("empty", "")):
        add("export", "name", f"--name {label}", {"--name": v}, "--name")
    add("export", "memory", "--memory-budget 10", {"--memory-budget": "10"}, "memory")
    add("build", "clock", "--clock 1000000", {"--clock": "1000000"}, "--clock")
    add("build", "clock", "--clock 1 (below the PLL)", {"--clock": "1"}, "clock")
    add("run", "port", "--port /nonexistent", {"--port": "/dev/nonexistent-port"}, "port")
    _newer(add)
    _plot_explore_cache(add)


def _newer(add) -> None:
    """Cases of commands and options added after the first matrix: learn, info --lanes, import
    --v-reset / --calibrate-samples, run --on-chip / --batch."""
    add("learn", "data", "mnist without --data-dir", {"--data": "mnist"}, "--data-dir")
    add("learn", "data", "mnist, empty --data-dir", {"--data": "mnist", "--data-dir": "@adir"}, "")
    for label, v in (("100000", "100000"), ("empty", "")):
        add("learn", "neurons", f"--neurons {label}", {"--neurons": v}, "--neurons")
    add("learn", "plot", "--plot x.txt (no image format)", {"--plot": "x.txt"}, "--plot")
    add("learn", "output path", "--out the same file as --plot", {"--out": "same.png", "--plot": "same.png"}, "")
    _learn_board(add)
    for label, v in (("per layer, too many", "4,4,4"), ("per layer, one bad", "4,3")):
        add("info", "lanes", f"--lanes {label}", {"--lanes": v}, "lanes")
    add("import", "v-reset", "--v-reset for a file that stores v_reset", {"--v-reset": "subtract"}, "--v-reset")
    add("import", "v-reset", "--v-reset for a spikegate export", {"": "@exported.nir", "--dt": DROP,
                                                                  "--v-reset": "subtract"}, "--v-reset")
    add("import", "calibration", "--calibrate-samples without --calibrate", {"--calibrate-samples": "5"},
        "--calibrate-samples")
    add("run", "on-chip", "--batch without --on-chip", {"--batch": "5"}, "--batch")
    add("run", "on-chip", "--on-chip, poisson network", {"--on-chip": None, "--net": "@poisson.json"}, "encoding")
    add("run", "on-chip", "--on-chip --batch 100000", {"--on-chip": None, "--batch": "100000"}, "--batch")


def _learn_board(add) -> None:
    """learn --board/--port/--baud/--timeout/--samples/--init-out (training through the host link)."""
    board = {"--board": "sim", "--port": "socket://127.0.0.1:9", "--timeout": "0.5"}
    add("learn", "board", "--board without --port", {"--board": "sim"}, "--port")
    add("learn", "board", "--port without --board", {"--port": "socket://127.0.0.1:9"}, "--board")
    add("learn", "board", "--timeout without --board", {"--timeout": "5"}, "--timeout")
    # rstdp learns on the board too (two passes a sample): it gets as far as the missing board
    add("learn", "board", "--rule rstdp, no board on the port", {**board, "--rule": "rstdp"}, "port")
    add("learn", "board", "--rule rstdp --epochs 2 on the board", {**board, "--rule": "rstdp", "--epochs": "2"},
        "--epochs")
    add("learn", "board", "--epochs 3 on the board", {**board, "--epochs": "3"}, "--epochs")
    add("learn", "board", "no board on the port", board, "port")
    add("learn", "samples", "--samples beyond the split", {"--samples": "100000"}, "--samples")
    add("learn", "init-out", "--init-out with --out", {"--init-out": "i.json"}, "--init-out")
    add("learn", "init-out", "--init-out with --board", {"--init-out": "i.json", "--out": DROP, **board}, "--init-out")
    add("learn", "init-out", "--init-out in a missing dir", {"--init-out": "nodir/i.json", "--out": DROP}, "--init-out")
    add("learn", "output path", "neither --out nor --init-out", {"--out": DROP}, "--out")
    add("learn", "board", "--sim with --board", {"--sim": None, "--board": "sim"}, "--sim")
    add("learn", "board", "--sim with --baud", {"--sim": None, "--baud": "115200"}, "--baud")


def _plot_explore_cache(add) -> None:
    add("plot", "kind", "bogus", {"": "bogus"}, "bogus")
    for label, v in (("letters", "a,b"), ("negative", "-1"), ("beyond the layer", "100000"), ("empty", "")):
        add("plot", "neurons", f"trace --neurons {label}", {"": "trace", "--neurons": v}, "--neurons")
    for label, v in (("no width", "8x"), ("zero", "0x0"), ("not the inputs", "3x3"), ("letters", "axb")):
        add("plot", "shape", f"fields --shape {label}", {"": "fields", "--shape": v}, "--shape")
    add("plot", "range", "--sample beyond the data", {"--sample": "100000"}, "--sample")
    add("plot", "range", "--layer beyond the network", {"": "trace", "--layer": "9"}, "--layer")
    for kind, opt in (("utilisation", "--report"), ("pareto", "--results"), ("confusion", "--rtl")):
        samples = {"--samples": "5"} if kind == "confusion" else {}  # the only one of them that takes samples
        for name in ("garbage.json", "none.json", "adir", "deep.json", "list.json", "empty.json"):
            add("plot", "input file", f"{kind} {opt} {name}", {"": kind, opt: f"@{name}", **samples}, opt)
        add("plot", "input file", f"{kind} {opt} /dev/zero", {"": kind, opt: "/dev/zero"}, opt)
    add("plot", "input file", "pareto without --results", {"": "pareto"}, "--results")
    # options another kind uses: refused, not ignored
    for kind, opt, v in (("raster", "--layer", "1"), ("raster", "--neurons", "1,2"), ("trace", "--shape", "8x8"),
                         ("fields", "--sample", "3"), ("fields", "--data", "digits"), ("confusion", "--max-tiles", "9"),
                         ("confusion", "--board", "ulx3s-85f"), ("pareto", "--net", "@ok.json"),
                         ("utilisation", "--rtl", "@ok.json"), ("raster", "--results", "@ok.json")):
        add("plot", "option scope", f"{kind} {opt}", {"": kind, opt: v}, opt)
    add("plot", "option scope", "utilisation --report with --lanes", {"": "utilisation", "--report": "@ok.json",
                                                                        "--lanes": "2"}, "--lanes")
    add("plot", "option scope", "html report with --dpi", {"": "pareto", "--results": "@ok.json", "-o": "p.html",
                                                           "--dpi": "50"}, "--dpi")
    for label, v in (("bogus", "bogus"), ("empty", ""), ("only commas", ",")):
        add("explore", "weight ram", f"--weight-ram {label}", {"--weight-ram": v}, "--weight-ram")
    for label, v in (("letters", "abc"), ("negative", "-5"), ("empty", ""), ("zero", "0")):
        add("explore", "clock list", f"--clock {label}", {"--clock": v}, "--clock")
    for label, v in (("letters", "abc"), ("negative", "-1"), ("empty", ""), ("backwards range", "8-1")):
        add("explore", "seed list", f"--seeds {label}", {"--seeds": v}, "--seeds")
    add("explore", "board", "one bogus in the list", {"--board": "icebreaker,bogus"}, "bogus")
    add("explore", "board", "empty", {"--board": ""}, "--board")
    add("explore", "plot", "--plot x.txt (no image format)", {"--plot": "x.txt"}, "--plot")
    add("explore", "scheduler", "--scheduler not a URL", {"--scheduler": "not a url"}, "--scheduler")
    for label, v in (("no port", "tcp://127.0.0.1"), ("port 0", "tcp://127.0.0.1:0"), ("http", "http://127.0.0.1:8786"),
                     ("empty", "")):
        add("explore", "scheduler", f"--scheduler {label}", {"--scheduler": v}, "--scheduler")
    add("explore", "scheduler", "--regress, --scheduler not a URL", {"--regress": "1", "--scheduler": "x y"},
        "--scheduler")
    add("cache", "action", "--info and --clear", {"--clear": None}, "--clear")
