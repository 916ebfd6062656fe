"""Conv networks outside the model core: NIR import of Conv2d / pooling / Flatten graphs, CNN
training and conversion, and the commands that handle dense layers only refusing them clearly."""
import json

import nir
import numpy as np
import pytest

from spikegate.cli import main
from spikegate.cnn import train_cnn
from spikegate.conv_convert import convert_cnn
from spikegate.conv_train import ConvTrainConfig, build_conv
from spikegate.errors import UserError
from spikegate.model import Network, simulate
from spikegate.model.conv import fan_out, kernel_4d
from spikegate.model.conv_eval import conv2d_layer, pool_layer
from spikegate.model.core import weight_cfg_words
from spikegate.model.network import Layer
from spikegate.nir import network_from_graph
from spikegate.nir.export import network_to_graph

DT = 1e-3


def lif(shape, thr=1.0):
    return nir.LIF(tau=np.full(shape, 2 * DT), r=np.full(shape, 2.0), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))


def conv_graph(pool="SumPool2d", **conv_kw):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 2, 3, 3))
    conv = nir.Conv2d(input_shape=(6, 6), weight=w, stride=conv_kw.get("stride", 1),
                      padding=conv_kw.get("padding", 1), dilation=conv_kw.get("dilation", 1),
                      groups=conv_kw.get("groups", 1), bias=np.arange(4.0) / 10)
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 6, 6])}), "conv": conv,
             "lif": lif((4, 6, 6)), "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0),
             "fc": nir.Affine(weight=rng.normal(size=(5, 36)), bias=np.zeros(5)),
             "out_lif": nir.LI(tau=np.full(5, 2 * DT), r=np.ones(5) * 2, v_leak=np.zeros(5)),
             "output": nir.Output(output_type={"output": np.array([5])})}
    nodes["pool"] = getattr(nir, pool)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                       padding=np.array([0, 0]))
    order = ["input", "conv", "lif", "pool", "flat", "fc", "out_lif", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:]))), w


@pytest.mark.parametrize("pool, theta, reset", [("SumPool2d", 0, "zero"), ("AvgPool2d", 4, "subtract")])
def test_nir_conv_graph_imports_as_conv_pool_and_dense(pool, theta, reset):
    graph, w = conv_graph(pool)
    res = network_from_graph(graph, dt=DT, weight_bits=8)
    net = res.network
    assert net.shape == (72, 144, 36, 5) and net.readout
    conv, p = net.layers[0], net.layers[1]
    assert conv.conv.kind == "conv2d" and conv.conv.padding == (1, 1) and conv.leak.factor == 0.5
    # One scale for the layer: the integer kernel is the float kernel times it, rounded.
    k = kernel_4d(conv)
    scale = 127 / np.abs(w).max()
    assert np.abs(k - w * scale).max() <= 0.5 + 1e-9
    assert p.conv.kind == pool.lower() and (p.threshold, p.reset) == (theta, reset)
    assert [r["kind"] for r in res.layers] == ["Conv2d+LIF", pool, "LI"]


@pytest.mark.parametrize("change, message", [
    ({"dilation": np.array([2, 2])}, r"'conv' \(Conv2d\): dilation and groups other than 1 are not supported"),
    ({"groups": 2}, r"'conv' \(Conv2d\): dilation and groups other than 1 are not supported"),
    ({"padding": "same"}, r"'conv' \(Conv2d\): padding = 'same' is not supported"),
    ({"padding": np.array([3, 3])}, r"'conv' \(Conv2d\): padding = \[3, 3\] is not valid for kernel = \[3, 3\]"),
])
def test_nir_conv_refusals_name_the_node(change, message):
    graph, _ = conv_graph()
    for key, value in change.items():  # set after the graph is built: NIR's own type inference would object first
        setattr(graph.nodes["conv"], key, value)
    with pytest.raises(UserError, match=message):
        network_from_graph(graph, dt=DT)


def test_nir_conv_unsupported_node_and_per_neuron_parameters_are_refused():
    graph, _ = conv_graph()
    graph.nodes["lif"] = nir.LIF(tau=np.full((4, 6, 6), 2 * DT), r=np.linspace(1, 2, 144).reshape(4, 6, 6),
                                 v_leak=np.zeros((4, 6, 6)), v_threshold=np.ones((4, 6, 6)),
                                 v_reset=np.zeros((4, 6, 6)))
    with pytest.raises(UserError, match=r"'lif' \(LIF\): its neurons have different parameters"):
        network_from_graph(graph, dt=DT)
    graph, _ = conv_graph()
    graph.nodes["pool"] = nir.Conv1d(input_shape=4, weight=np.ones((1, 1, 1)), stride=1, padding=0, dilation=1,
                                     groups=1, bias=np.zeros(1))
    with pytest.raises(UserError, match=r"NIR node 'pool' \(Conv1d\): not supported"):
        network_from_graph(graph, dt=DT)


def conv_net():
    return Network([conv2d_layer(np.ones((2, 1, 3, 3), np.int64), (1, 4, 4), threshold=2, name="c"),
                    pool_layer("sumpool2d", (2, 2, 2), 2), Layer(weights=np.ones((2, 3), np.int64), readout=True)])


def test_dense_only_parts_refuse_conv_networks_naming_the_layer(tmp_path, capsys):
    net = conv_net()
    for call, what in ((lambda: network_to_graph(net), "NIR export"), (lambda: weight_cfg_words(net), "the cfg port")):
        with pytest.raises(ValueError, match=rf"layer 0 \(c\) is a conv2d layer; {what} supports dense layers only"):
            call()
    path = net.save(tmp_path / "c.json")
    assert main(["export-nir", "--net", str(path), "-o", str(tmp_path / "x.nir")]) == 2
    assert "layer 0 (c) is a conv2d layer" in capsys.readouterr().err
    # The gateware runs the pooling layer on the conv core (model.conv_layer.pool_as_conv); a conv layer
    # after a dense one it still refuses, naming the layer.
    assert main(["export", "--net", str(path), "-o", str(tmp_path / "x.v")]) == 0
    capsys.readouterr()
    assert main(["info", "--net", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layers"][1]["features"] == ["sumpool2d"] and d["layers"][1]["memory_bits"]["weights"] == 2 * 4 * 2 * 4
    assert d["layers"][0]["features"] == ["conv2d"] and d["memory_bits"]["total"] > 0
    assert d["layers"][0]["synapses"] == int(fan_out(net.layers[0]).sum())
    assert d["layers"][0]["weights"] == net.layers[0].weights.size
    late = Network([Layer(weights=np.ones((16, 16), np.int64), name="d"), net.layers[0], net.layers[1], net.layers[2]])
    late_path = late.save(tmp_path / "late.json")
    assert main(["export", "--net", str(late_path), "-o", str(tmp_path / "y.v")]) == 2
    assert "layer 1 (c) is a conv2d layer after a dense layer" in capsys.readouterr().err
    assert main(["info", "--net", str(late_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["memory_bits"] is None and "layer 1 (c) is a conv2d layer after a dense layer" in d["hardware"]["unsupported"]
    assert main(["info", "--net", str(late_path)]) == 0
    assert "hardware   none yet: layer 1 (c) is a conv2d layer after a dense layer" in capsys.readouterr().out
    assert main(["model", "--net", str(path), "--data", "digits", "--samples", "5", "--json"]) == 2  # 64 inputs
    assert "input" in capsys.readouterr().err


def test_cnn_training_is_deterministic_and_converts_to_a_conv_snn():
    from spikegate import datasets
    x, y = datasets.load("digits", "train")
    x, y = x[:300], y[:300]
    a = train_cnn(x, y, (1, 8, 8), [(4, 3, 2, 1)], epochs=2, seed=3)
    b = train_cnn(x, y, (1, 8, 8), [(4, 3, 2, 1)], epochs=2, seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(a.weights + a.biases, b.weights + b.biases))
    net = convert_cnn(a, x, timesteps=8)
    assert [layer.conv.kind if layer.conv else "dense" for layer in net.layers] == ["conv2d", "dense"]
    assert net.layers[0].conv.out_shape == (4, 4, 4) and net.layers[-1].readout
    res = simulate(net, np.zeros((1, 8, 64), bool))
    assert res.spikes[0].sum() == 0 or net.layers[0].bias.max() > 0


def test_build_conv_reports_accuracy_and_sizes():
    net, report = build_conv(ConvTrainConfig(data="digits", channels=(4,), kernel=3, stride=1, epochs=5, shift=0,
                                             timesteps=16))
    assert report["sizes"]["layers"][0] == {"name": "conv0", "kind": "conv2d", "weight_words": 36,
                                            "membranes": 256, "weight_bits": 288,
                                            "membrane_bits": 256 * net.layers[0].membrane_bits}
    assert report["ann_accuracy"] > 0.8 and abs(report["snn"]["accuracy"] - report["ann_accuracy"]) < 0.15
    assert Network.from_dict(json.loads(net.to_json())) == net and net.meta["cnn"]["convs"][0]["kernel"] == 3


def test_train_command_arch_conv_writes_a_conv_network(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["train", "--arch", "conv", "--data", "digits", "--channels", "4", "--epochs", "1",
                 "--timesteps", "4", "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["arch"] == "conv" and r["shape"] == [64, 64, 10] and r["sizes"]["total_weight_words"] == 100 + 640
    net = Network.load(out)
    assert net.layers[0].conv.out_shape == (4, 4, 4) and net.timesteps == 4
    assert main(["train", "--arch", "conv", "--channels", "4,x", "--out", str(out)]) == 2
    assert "--channels = '4,x' is not valid" in capsys.readouterr().err


def test_train_command_convs_sets_each_conv_layer(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["train", "--arch", "conv", "--data", "digits", "--convs", "3:3:2:1,4:2:1:0", "--epochs", "1",
                 "--timesteps", "4", "--out", str(out), "--json"]) == 0
    net = Network.load(out)
    # 8 x 8 -> (8 + 2 - 3) // 2 + 1 = 4 -> (4 - 2) // 1 + 1 = 3
    assert [l.conv.out_shape for l in net.layers[:2]] == [(3, 4, 4), (4, 3, 3)]
    assert [l.conv.padding for l in net.layers[:2]] == [(1, 1), (0, 0)]
    assert "--convs 3:3:2:1,4:2:1:0" in net.meta["generated_by"]
    capsys.readouterr()
    for text, message in (("3:3:2", "layers[0] = (3, 3, 2) is not valid"), ("3:3:2:3", "layers[0] = (3, 3, 2, 3)"),
                          ("3:a", "--convs = '3:a' is not valid"),
                          ("3:5:1:0,4:5:1:0", "conv layer 1 (4:5:1:0): kernel = [5, 5] is larger than the padded")):
        assert main(["train", "--arch", "conv", "--data", "digits", "--convs", text, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err, text


def test_icebreaker_placement_of_the_built_conv_network():
    """boards/fit.py on the iCEBreaker: the checked-in conv network built there (README "A conv network on the
    iCEBreaker") fits only with its dense readout's weights (at packed rows) and its input buffer in SPRAM;
    a network that fits without moving the input buffer keeps it in block RAM (its Verilog unchanged)."""
    from pathlib import Path
    from spikegate.boards import fit
    from spikegate.boards.targets import get_board
    from spikegate.datasets import load_network
    from spikegate.model.hardware import HardwareConfig
    board = get_board("icebreaker")
    net = Network.load(Path(__file__).parent / "data" / "mnist-conv-16k7s3.json")
    hw = fit.choose_weight_ram(board, net, HardwareConfig(lanes=1, max_events=16384))
    assert hw.layer_weight_ram(2) == ["block", "spram"] and hw.input_ram == "spram"
    est = fit.precheck(board, net, hw)
    assert (est["blocks"], est["spram_tiles"], est["input_ram"]) == (23, 2, "spram")
    assert all(r["memory"] != "input buffer" and r["memory"] != "layer 1 weights" for r in est["memories"])
    # each move alone is not enough (at 8,192 words: T = 32 MNIST needs up to 7,617): 47 blocks with the
    # buffer in block RAM, 43 with the readout's weights there
    for alone, blocks in ((HardwareConfig(lanes=1, max_events=8192, weight_ram=["block", "spram"]), 47),
                          (HardwareConfig(lanes=1, max_events=8192, input_ram="spram"), 43)):
        with pytest.raises(fit.ResourceError, match=f"block RAM needs {blocks} blocks.*input_ram = 'spram' fits"):
            fit.precheck(board, net, alone)
    digits = load_network()
    assert fit.choose_weight_ram(board, digits, HardwareConfig(lanes=2)).input_ram == "block"
