"""Plots: each figure is rendered and its content checked against the data it shows; files are
checked as real PNG/SVG of the expected pixel size."""
from __future__ import annotations

import base64
import json
import struct
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from spikegate import datasets, plots, plots_html, plots_hw
from spikegate.cli import main
from spikegate.errors import UserError
from spikegate.model.simulate import classify, simulate

NET = datasets.load_network(None)


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def png_pixels(path) -> np.ndarray:
    """The decoded image (height x width x channels, floats 0..1), read back by matplotlib."""
    from matplotlib.image import imread
    return imread(path)


def assert_drawn(path, width_min=300, height_min=300) -> tuple[int, int]:
    """A real PNG of at least the given size whose pixels are not one flat colour: something is
    drawn in it. Returns (width, height)."""
    w, h = png_size(path)
    assert w >= width_min and h >= height_min, (w, h)
    px = png_pixels(path)
    assert px.shape[:2] == (h, w)
    # Ink: pixels darker than near-white. An empty canvas has none; a drawn figure has some
    # percent (text, bars, cells).
    ink = float(np.mean(px[..., :3].mean(axis=2) < 0.9))
    assert ink > 0.01, f"{path} is almost blank ({100 * ink:.2f} % ink)"
    return w, h


class Page(HTMLParser):
    """An HTML report taken apart: its tables (rows of cell texts, with each row's class), headings
    and images (decoded PNG bytes); every tag seen."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.row_classes, self.headings, self.images, self.tags = [], [], [], [], set()
        self._cell = self._heading = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "table":
            self.tables.append([])
            self.row_classes.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self.row_classes[-1].append(a.get("class", ""))
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag in ("h1", "h2", "h3", "h4"):
            self._heading = ""
        elif tag == "img":
            prefix = "data:image/png;base64,"
            assert a["src"].startswith(prefix), "an image that is not embedded"
            self.images.append((a["alt"], base64.b64decode(a["src"][len(prefix):])))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None
        elif tag in ("h1", "h2", "h3", "h4"):
            self.headings.append(self._heading)
            self._heading = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._heading is not None:
            self._heading += data


def parse_report(path) -> Page:
    """The page of an HTML report, checked to be self-contained: no scripts, no links to other files."""
    page = Page(path.read_text())
    assert not page.tags & {"script", "link", "iframe"} and "http" not in path.read_text().replace(
        "http://www.w3.org", "")
    for alt, png in page.images:
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24])[0] >= 300, alt
    return page


def svg_root(path):
    """The parsed SVG document, checked to be an <svg> with drawn content."""
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 10
    return root


def one_sample(k=0):
    x, _ = datasets.load("digits", "test")
    return datasets.encode_for(NET, x[k:k + 1], seed=0)[0]


def report(met=True) -> dict:
    """A build report in the shape ``spikegate.boards.build.build`` returns (figures made up)."""
    row = lambda used, avail: {"used": used, "available": avail, "percent": round(100 * used / avail, 1)}
    return {"board": "icebreaker", "title": "iCEBreaker v1.0", "lanes": 2,
            "network": {"shape": [64, 64, 10]},
            "utilization": {"LUT": row(3000, 5280), "FF": row(1500, 5280), "LC": row(3900, 5280),
                            "BRAM": row(27, 30), "SPRAM": row(0, 4), "DSP": row(0, 8)},
            "timing": {"fmax_mhz": 18.2 if met else 15.0, "constraint_mhz": 16.125, "met": met,
                       "slack_ns": 7.1 if met else -4.6}}


def test_save_png_has_the_figure_size_and_svg_is_svg(tmp_path):
    fig = plots.raster(NET, one_sample())
    w, h = (fig.get_size_inches() * fig.dpi).round().astype(int)
    assert png_size(plots.save(fig, tmp_path / "r.png")) == (w, h)
    svg = plots.save(fig, tmp_path / "r.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    with pytest.raises(ValueError, match=r"output file = .*r\.pdf.*valid: a name ending in \.png or \.svg"):
        plots.save(fig, tmp_path / "r.pdf")


def test_raster_shows_every_spike_of_every_layer():
    s = one_sample(3)
    res = simulate(NET, s[None])
    fig = plots.raster(NET, s)
    axes = fig.axes
    assert len(axes) == 1 + len(NET.layers)
    expected = [s] + [res.spikes[l][0] for l in range(len(NET.layers))]
    for l, (ax, x) in enumerate(zip(axes, expected)):
        if l and NET.layers[l - 1].readout:
            # A readout layer never fires: its membrane is drawn instead.
            assert len(ax.images) == 1 and ax.images[0].get_array().shape == (x.shape[1], x.shape[0])
            continue
        t, i = np.nonzero(x)
        assert len(t) > 0
        pts = ax.collections[0].get_offsets()
        assert np.array_equal(np.asarray(pts), np.column_stack([t, i]))


def test_trace_draws_the_model_membranes_and_threshold():
    s = one_sample(1)
    res = simulate(NET, s[None], traces=True)
    neurons = plots.active_neurons(NET, s, 0, k=3)
    assert len(neurons) == 3
    counts = res.spikes[0][0].sum(axis=0)
    assert min(counts[neurons]) >= np.sort(counts)[-3]
    fig = plots.trace(NET, s, 0, neurons)
    assert len(fig.axes) == 3
    for ax, j in zip(fig.axes, neurons):
        membrane, threshold = ax.lines[0], ax.lines[1]
        assert np.array_equal(membrane.get_ydata(), res.traces[0][0][:, j])
        assert set(threshold.get_ydata()) == {NET.layers[0].threshold}
        assert len(ax.lines[2].get_xdata()) == counts[j]
    with pytest.raises(ValueError, match=r"--neurons = 64 is not valid; valid: .* 0 to 63"):
        plots.trace(NET, s, 0, [64])
    with pytest.raises(ValueError, match=r"--layer = 2 is not valid; valid: 0 to 1"):
        plots.trace(NET, s, 2, [0])


def test_confusion_matrix_counts_and_figure():
    m = plots.confusion_matrix([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 0], n_classes=3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 2]]
    fig = plots.confusion([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 0], n_classes=3)
    img = fig.axes[0].images[0].get_array()
    assert np.array_equal(img, m)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "1", "1", "1", "2"]


def test_fields_tiles_are_the_weights():
    fig = plots.fields(NET, 0, max_tiles=10)
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 10
    for j, ax in enumerate(tiles):
        assert np.array_equal(ax.images[0].get_array(), NET.layers[0].weights[:, j].reshape(8, 8))
    assert plots.image_shape(784) == (28, 28)
    assert plots.image_shape(64) == (8, 8)
    assert plots.image_shape(12) == (3, 4)
    assert plots.image_shape(64, (4, 16)) == (4, 16)
    with pytest.raises(ValueError, match=r"--shape = 4x4 is not valid; valid: HxW with H\*W = 64"):
        plots.image_shape(64, (4, 4))


def test_utilisation_bars_and_timing():
    for met in (True, False):
        r = report(met)
        fig = plots_hw.utilisation(r)
        bars, timing = fig.axes[0], fig.axes[1]
        widths = [p.get_width() for p in bars.patches]
        assert widths == [r["utilization"][k]["percent"] for k in ("LUT", "FF", "LC", "BRAM", "SPRAM", "DSP")]
        heights = [p.get_height() for p in timing.patches]
        assert heights == [r["timing"]["fmax_mhz"], 16.125]
        assert ("NOT met" in timing.get_title()) == (not met)


def test_load_report_accepts_build_json_and_refuses_others(tmp_path):
    r = report(False)
    f = tmp_path / "timing-failure.json"
    f.write_text(json.dumps({"error": "timing NOT met", "report": r}))
    assert plots_hw.load_report(f) == r
    g = tmp_path / "other.json"
    g.write_text(json.dumps({"points": []}))
    with pytest.raises(ValueError, match=r"--report = .*other\.json.* is not valid; valid: a build report"):
        plots_hw.load_report(g)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UserError, match=r"""needs the 'plot' extra: pip install "spikegate\[plot\]\""""):
        plots.new_figure()


@pytest.mark.parametrize("kind, extra", [("raster", ["--sample", "2"]), ("raster", ["--dpi", "70"]),
                                         ("trace", ["--neurons", "0,3"]),
                                         ("fields", ["--dpi", "50"]), ("confusion", [])])
def test_cli_writes_each_plot_for_the_builtin_network(tmp_path, capsys, kind, extra):
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, "-o", str(out), "--json", *extra]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["file"] == str(out) and assert_drawn(out) == (r["width"], r["height"])
    if kind == "confusion":
        x, y = datasets.load("digits", "test")
        pred = classify(NET, simulate(NET, datasets.encode_for(NET, x, seed=0)))
        assert r["accuracy"] == float(np.mean(pred == y)) and r["samples"] == 445


def test_cli_utilisation_from_a_report_file(tmp_path, capsys):
    f = tmp_path / "icebreaker-report.json"
    f.write_text(json.dumps(report()))
    out = tmp_path / "u.svg"
    assert main(["plot", "utilisation", "--report", str(f), "-o", str(out)]) == 0
    assert "<svg" in out.read_text()


def test_cli_bad_arguments_name_option_value_and_choices(tmp_path, capsys):
    assert main(["plot", "raster", "-o", str(tmp_path / "x.jpg")]) == 2
    assert "--out = " in capsys.readouterr().err
    assert main(["plot", "raster", "--sample", "445", "-o", str(tmp_path / "x.png")]) == 2
    assert "--sample = 445 is not valid; valid: 0 to 444" in capsys.readouterr().err
    assert main(["plot", "fields", "--shape", "8by8", "-o", str(tmp_path / "x.png")]) == 2
    assert "--shape = '8by8' is not valid; valid: HxW" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", "histogram"])
    assert "invalid choice: 'histogram'" in capsys.readouterr().err


def test_model_json_lists_every_class_and_plot_draws_their_confusion(tmp_path, capsys):
    out = tmp_path / "model.png"
    assert main(["model", "--plot", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    r = json.loads(cap.out)
    x, y = datasets.load("digits", "test")
    pred = classify(NET, simulate(NET, datasets.encode_for(NET, x, seed=0)))
    assert r["snn"]["predictions"] == pred.tolist() and r["snn"]["labels"] == y.tolist()
    assert r["snn"]["correct"] == int(np.sum(pred == y))
    assert f"model: wrote {out}" in cap.err
    # The confusion figure's 6 x 5.4 inches at 100 dpi, with the matrix drawn in it.
    assert assert_drawn(out) == (600, 540)
    svg = tmp_path / "model.svg"
    assert main(["model", "--samples", "20", "--seed", "3", "--plot", str(svg)]) == 0
    assert "integer SNN" in capsys.readouterr().out
    svg_root(svg)


def test_plot_option_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    for cmd in (["model"], ["sim"], ["build", "--board", "icebreaker"]):
        assert main([*cmd, "--plot", str(tmp_path / "m.jpg")]) == 2
        err = capsys.readouterr().err
        assert f"--plot = '{tmp_path / 'm.jpg'}' is not valid; valid: a name ending in .png or .svg" in err
        assert main([*cmd, "--plot", str(tmp_path / "missing" / "m.png")]) == 2
        assert f"--plot = '{tmp_path / 'missing' / 'm.png'}'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["model", "--plot", str(tmp_path / "m.png")]) == 2
    assert "needs the 'plot' extra" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pareto_plots_timing_clean_points_and_the_front(tmp_path, capsys):
    from spikegate.explore import Point, pareto_front, point_row
    rows = []
    for k, (sps, lut, ram, met) in enumerate([(1000, 40, 30, True), (2000, 60, 30, True), (900, 45, 35, True),
                                              (5000, 10, 10, False)]):
        r = point_row(Point("icebreaker", 2, seed=k), None, "ok" if met else "timing")
        r.update(timing_met=met, samples_per_s=sps, lut_percent=lut, ram_percent=ram, fmax_mhz=20.0)
        rows.append(r)
    front = pareto_front(rows)
    assert front == [0, 1]
    fig = plots_hw.pareto(rows, front)
    lut_ax, ram_ax = fig.axes
    assert len(lut_ax.collections[0].get_offsets()) == 3  # the timing failure is not drawn
    line = lut_ax.lines[0]
    assert list(line.get_xdata()) == [40, 60] and list(line.get_ydata()) == [1000, 2000]
    assert list(ram_ax.lines[0].get_ydata()) == [1000, 2000]
    f = tmp_path / "explore.json"
    f.write_text(json.dumps({"points": rows, "pareto": front}))
    out = tmp_path / "p.png"
    assert main(["plot", "pareto", "--results", str(f), "-o", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["points"] == 4 and png_size(out) == (r["width"], r["height"])


def sweep_rows():
    from spikegate.explore import Point, point_row
    rows = []
    for k, (sps, lut, ram, met) in enumerate([(1000, 40, 30, True), (2000, 60, 30, True), (900, 45, 35, True),
                                              (5000, 10, 10, False)]):
        r = point_row(Point("icebreaker", 2, seed=k), None, "ok" if met else "timing")
        r.update(timing_met=met, samples_per_s=sps, lut_percent=lut, ram_percent=ram, fmax_mhz=20.0 + k)
        rows.append(r)
    return rows


def test_html_report_of_a_build(tmp_path, capsys):
    r = report(False)
    r["network"]["shape"] = [64, 64, 10]
    f = tmp_path / "icebreaker-report.json"
    f.write_text(json.dumps(r))
    out = tmp_path / "build.html"
    assert main(["plot", "utilisation", "--report", str(f), "-o", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["file"] == str(out) and res["bytes"] == out.stat().st_size < 200_000
    page = parse_report(out)
    assert page.headings[0] == "spikegate build: iCEBreaker v1.0, 64-64-10"
    summary, util = page.tables
    assert dict(summary[1:])["timing met"] == "NO" and dict(summary[1:])["fmax (MHz)"] == "15"
    assert util[0] == ["resource", "used", "available", "%"]
    assert [row[0] for row in util[1:]] == ["LUT", "FF", "LC", "BRAM", "SPRAM", "DSP"]
    assert util[4] == ["BRAM", "27", "30", "90"]
    [(alt, png)] = page.images
    assert "utilisation" in alt and struct.unpack(">II", png[16:24]) == (640, 288)  # 8 x 3.6 in at 80 dpi
    assert main(["plot", "raster", "-o", str(tmp_path / "r.html")]) == 2
    assert (f"--out = '{tmp_path / 'r.html'}' is not valid for `plot raster`; valid: a name ending in .png or .svg "
            f"(.html for utilisation and pareto)") in capsys.readouterr().err


def test_html_report_of_a_sweep(tmp_path, capsys):
    rows = sweep_rows()
    result = {"network": {"name": "digits", "shape": [64, 64, 10]}, "points": rows, "pareto": [0, 1],
              "best_index": {"icebreaker": 1}, "copied": {}, "workers": 2, "scheduler": "local",
              "wall_seconds": 12.5, "counts": {"ok": 3, "timing": 1, "no-fit": 0, "error": 0}}
    rep = report()
    rep["performance"] = {"cycles_per_sample": {"mean": 1234.5},
                          "at_clock": {"latency_us": 76.6, "samples_per_s": 13062.0}}
    text = plots_html.sweep_html(result, {"icebreaker": rep})
    f = tmp_path / "sweep.html"
    plots_html.save_html(text, f)
    page = parse_report(f)
    points, best, summary, util = page.tables
    assert len(points) == 1 + len(rows)
    assert [row[0] for row in points[1:]] == [r["label"] for r in rows]
    assert [row[6] for row in points[1:]] == ["ok", "ok", "ok", "timing"]
    assert [row[12] for row in points[1:]] == ["1000", "2000", "900", "5000"]
    assert page.row_classes[0][1:] == ["front", "front", "", "fail"]
    assert best[1][:2] == ["icebreaker", rows[1]["label"]]
    assert dict(summary[1:])["samples/s"] == "13,062" and dict(summary[1:])["timing met"] == "yes"
    assert [alt for alt, _ in page.images] == ["Pareto front of the sweep", "utilisation of the icebreaker build"]
    assert f"icebreaker: {rows[1]['label']}" in page.headings
    # The CLI: the same page from an `explore --json` file.
    g = tmp_path / "explore.json"
    g.write_text(json.dumps(result))
    out = tmp_path / "p.html"
    assert main(["plot", "pareto", "--results", str(g), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert parse_report(out).tables[0] == points
