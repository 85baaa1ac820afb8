"""The eager-PyTorch execution of pack networks (bench baseline) matches ONNX Runtime."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from export.torch_backend import TorchGraph, open_torch_networks  # noqa: E402
from pridss_rt.backends import open_networks  # noqa: E402


def test_tiny_pack_parity(shared_tiny_pack):
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32)
    with open_torch_networks(shared_tiny_pack, threads=1) as nt, open_networks(shared_tiny_pack, "ort-cpu", threads=1) as no:
        z = no["encoder"].run({"image": x})["latent"]
        np.testing.assert_allclose(nt["encoder"].run({"image": x})["latent"], z, atol=1e-5)
        np.testing.assert_allclose(nt["synthesis"].run({"latent": z})["image"], no["synthesis"].run({"latent": z})["image"], atol=1e-5)
        for role, name in (("gender", "p_male"), ("identity", "embedding")):
            np.testing.assert_allclose(nt[role].run({"image": x})[name], no[role].run({"image": x})[name], atol=1e-5)


def test_conv_bn_resize_graph_parity(tmp_path):
    """A graph with the ops conv nets export to (Conv with padding/stride/groups, BatchNormalization,
    LeakyRelu, Resize, ConvTranspose, Concat, GlobalAveragePool, Gemm) against ONNX Runtime."""
    import onnxruntime as ort

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, 2, 1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.c2 = torch.nn.Conv2d(8, 8, 3, 1, 1, groups=2)
            self.up = torch.nn.ConvTranspose2d(8, 4, 4, 2, 1)
            self.fc = torch.nn.Linear(12, 5)

        def forward(self, x):
            y = torch.nn.functional.leaky_relu(self.bn(self.c1(x)), 0.2)
            y = self.c2(y)
            y = torch.cat([self.up(y), torch.nn.functional.interpolate(y[:, :8], scale_factor=2.0, mode="nearest")], 1)
            return self.fc(y.mean((2, 3)))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 16, 16), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, dynamo=False, opset_version=17)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = TorchGraph(str(path))({"x": x})["y"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_unknown_op_is_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Hardmax", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "h.onnx"))
    with pytest.raises(NotImplementedError, match=r"ONNX ops without a PyTorch mapping: \['Hardmax'\]"):
        TorchGraph(str(tmp_path / "h.onnx"))


def test_half_precision_graph_matches_float32(tmp_path):
    """half=True (the GPU timing baseline) runs a graph with a Cast to float32 in float16 throughout and
    stays close to float32; inputs and outputs are float32 numpy arrays."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(3, 4, 3, 1, 1)

        def forward(self, x):
            return torch.tanh(self.c(x.double().float()))  # exports a Cast to float32

    path = tmp_path / "cast.onnx"
    torch.manual_seed(0)
    torch.onnx.export(Net().eval(), torch.zeros(1, 3, 8, 8), str(path), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    import onnx

    assert "Cast" in {n.op_type for n in onnx.load(str(path)).graph.node}
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
    full = TorchGraph(str(path))({"x": x})["y"]
    half = TorchGraph(str(path), half=True)({"x": x})["y"]
    assert half.dtype == np.float32 and half.shape == full.shape == (2, 4, 8, 8)
    assert 0 < np.abs(half - full).max() < 5e-3  # float16 really ran, and close
