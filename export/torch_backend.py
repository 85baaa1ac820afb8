"""A PyTorch execution of a pack's ONNX networks: the eager-PyTorch baseline for ``pridss-rt bench``.

Each ONNX node runs as the matching ``torch`` / ``torch.nn.functional`` call (same weights, same graph),
so the pipeline code is identical and only the inference engine differs: eager PyTorch on the CPU versus
ONNX Runtime or TensorRT. Sessions implement the runtime's :class:`~pridss_rt.backends.base.Session`
interface, so ``Anonymizer(networks=open_torch_networks(pack))`` runs the whole pipeline on PyTorch.

Export side only (needs torch); the runtime never imports it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pridss_rt.backends import Networks
from pridss_rt.backends.base import Session
from pridss_rt.pack import ModelPack, NetworkSpec, load_pack


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pads(p, n):
    """ONNX pads [b1, b2, ..., e1, e2, ...] -> F.pad order (last dim first)."""
    p = list(p) if p is not None else [0] * (2 * n)
    out = []
    for i in reversed(range(n)):
        out += [p[i], p[i + n]]
    return out


class TorchGraph:
    """Interprets an ONNX graph with torch ops (inference).

    ``device``: where the floating-point tensors live ("cpu", "cuda", "cuda:1"); integer tensors (shapes,
    indices) stay on the CPU, where the graph's shape arithmetic reads them. ``half``: float16 weights and
    activations (GPU timing baseline); inputs and outputs stay float32 numpy arrays either way.
    """

    def __init__(self, path: str, device: str = "cpu", half: bool = False):
        import onnx
        from onnx import numpy_helper

        self.device = torch.device(device)
        self.dtype = torch.float16 if half else torch.float32
        model = onnx.load(path)
        self.graph = model.graph
        self.consts = {i.name: self._place(torch.from_numpy(numpy_helper.to_array(i).copy()))
                       for i in model.graph.initializer}
        self.nodes = list(model.graph.node)
        for n in self.nodes:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = self._place(torch.from_numpy(numpy_helper.to_array(_attrs(n)["value"]).copy()))
        self.nodes = [n for n in self.nodes if n.op_type != "Constant"]
        self.outputs = [o.name for o in model.graph.output]
        unknown = sorted({n.op_type for n in self.nodes} - set(OPS))
        if unknown:
            raise NotImplementedError(f"{path}: ONNX ops without a PyTorch mapping: {unknown}")

    def _place(self, t: torch.Tensor) -> torch.Tensor:
        if not t.is_floating_point():
            return t
        return t.to(self.device, self.dtype)

    @torch.inference_mode()
    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env = dict(self.consts)
        env.update({k: self._place(torch.from_numpy(np.ascontiguousarray(v))) for k, v in feeds.items()})
        for n in self.nodes:
            ins = [env[i] if i else None for i in n.input]
            res = OPS[n.op_type](ins, _attrs(n))
            if not isinstance(res, (tuple, list)):
                res = (res,)
            if n.op_type == "Cast" and self.dtype == torch.float16 and res[0].is_floating_point():
                res = (res[0].to(self.dtype),)  # half: a cast to float32/64 stays in float16
            for name, val in zip(n.output, res):
                env[name] = val
        return {o: env[o].float().cpu().numpy() if env[o].is_floating_point() else env[o].cpu().numpy()
                for o in self.outputs}


def _conv(x, a):
    x, w, b = (x + [None])[:3]
    nd = w.dim() - 2
    pads = a.get("pads", [0] * 2 * nd)
    sym = all(pads[i] == pads[i + nd] for i in range(nd))
    if not sym:
        x = F.pad(x, _pads(pads, nd))
    conv = F.conv2d if nd == 2 else F.conv1d
    return conv(x, w, b, a.get("strides", [1] * nd), pads[:nd] if sym else 0, a.get("dilations", [1] * nd),
                a.get("group", 1))


def _conv_t(x, a):
    x, w, b = (x + [None])[:3]
    nd = w.dim() - 2
    pads = a.get("pads", [0] * 2 * nd)
    return F.conv_transpose2d(x, w, b, a.get("strides", [1] * nd), pads[:nd], a.get("output_padding", [0] * nd),
                              a.get("group", 1), a.get("dilations", [1] * nd))


def _gemm(x, a):
    A, B = x[0], x[1]
    if a.get("transA", 0):
        A = A.t()
    if a.get("transB", 0):
        B = B.t()
    y = a.get("alpha", 1.0) * (A @ B)
    if len(x) > 2 and x[2] is not None:
        y = y + a.get("beta", 1.0) * x[2]
    return y


def _resize(x, a):
    t = x[0]
    scales = x[2] if len(x) > 2 and x[2] is not None and x[2].numel() else None
    sizes = x[3] if len(x) > 3 and x[3] is not None else None
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    ct = a.get("coordinate_transformation_mode", b"half_pixel")
    ct = ct.decode() if isinstance(ct, bytes) else ct
    size = [int(s) for s in sizes[2:]] if sizes is not None else None
    sf = [float(s) for s in scales[2:]] if size is None else None
    if mode == "nearest":
        return F.interpolate(t, size=size, scale_factor=sf, mode="nearest")
    return F.interpolate(t, size=size, scale_factor=sf, mode="bilinear" if t.dim() == 4 else "linear",
                         align_corners=ct == "align_corners")


def _reduce(fn):
    def op(x, a):
        axes = a.get("axes")
        if axes is None and len(x) > 1 and x[1] is not None:
            axes = x[1].tolist()
        keep = bool(a.get("keepdims", 1))
        if axes is None:
            axes = list(range(x[0].dim()))
        return fn(x[0], dim=tuple(int(v) for v in axes), keepdim=keep)
    return op


def _slice(x, a):
    t, starts, ends = x[0], x[1].tolist(), x[2].tolist()
    axes = x[3].tolist() if len(x) > 3 and x[3] is not None else list(range(len(starts)))
    steps = x[4].tolist() if len(x) > 4 and x[4] is not None else [1] * len(starts)
    idx = [slice(None)] * t.dim()
    for s, e, ax, st in zip(starts, ends, axes, steps):
        dim = t.shape[ax]
        s = max(min(s + dim if s < 0 else s, dim), 0)
        e = max(min(e + dim if e < 0 else e, dim), 0)
        idx[ax] = slice(s, e, st)
    return t[tuple(idx)]


def _reshape(x, a):
    shape = [int(v) for v in x[1].tolist()]
    shape = [x[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x[0].reshape(shape)


def _bn(x, a):
    return F.batch_norm(x[0], x[3], x[4], x[1], x[2], False, 0.0, a.get("epsilon", 1e-5))


def _split(x, a):
    axis = a.get("axis", 0)
    split = a.get("split") or (x[1].tolist() if len(x) > 1 and x[1] is not None else None)
    if split is None:
        n = a.get("num_outputs")
        return torch.chunk(x[0], n, axis)
    return torch.split(x[0], [int(s) for s in split], axis)


OPS = {
    "Conv": _conv, "ConvTranspose": _conv_t, "Gemm": _gemm, "MatMul": lambda x, a: x[0] @ x[1],
    "Relu": lambda x, a: F.relu(x[0]), "LeakyRelu": lambda x, a: F.leaky_relu(x[0], a.get("alpha", 0.01)),
    "Sigmoid": lambda x, a: torch.sigmoid(x[0]), "Tanh": lambda x, a: torch.tanh(x[0]),
    "Elu": lambda x, a: F.elu(x[0], a.get("alpha", 1.0)), "Erf": lambda x, a: torch.erf(x[0]),
    "PRelu": lambda x, a: torch.where(x[0] >= 0, x[0], x[0] * x[1]),
    "Add": lambda x, a: x[0] + x[1], "Sub": lambda x, a: x[0] - x[1], "Mul": lambda x, a: x[0] * x[1],
    "Div": lambda x, a: torch.div(x[0], x[1], rounding_mode="trunc") if not x[0].is_floating_point() else x[0] / x[1], "Pow": lambda x, a: torch.pow(x[0], x[1]), "Sqrt": lambda x, a: torch.sqrt(x[0]),
    "Neg": lambda x, a: -x[0], "Abs": lambda x, a: torch.abs(x[0]), "Exp": lambda x, a: torch.exp(x[0]),
    "Reciprocal": lambda x, a: 1.0 / x[0],
    "Clip": lambda x, a: torch.clamp(x[0], x[1] if len(x) > 1 and x[1] is not None else a.get("min"),
                                     x[2] if len(x) > 2 and x[2] is not None else a.get("max")),
    "Max": lambda x, a: torch.maximum(x[0], x[1]), "Min": lambda x, a: torch.minimum(x[0], x[1]),
    "Softmax": lambda x, a: torch.softmax(x[0], a.get("axis", -1)),
    "Reshape": _reshape, "Flatten": lambda x, a: x[0].flatten(a.get("axis", 1)) if a.get("axis", 1) else x[0].reshape(1, -1),
    "Transpose": lambda x, a: x[0].permute(*a["perm"]), "Concat": lambda x, a: torch.cat(x, a["axis"]),
    "Squeeze": lambda x, a: x[0].squeeze(tuple(x[1].tolist())) if len(x) > 1 else x[0].squeeze(tuple(a["axes"])),
    "Unsqueeze": lambda x, a: _unsqueeze(x[0], x[1].tolist() if len(x) > 1 else a["axes"]),
    "Slice": _slice, "Split": _split, "Identity": lambda x, a: x[0],
    "Shape": lambda x, a: torch.tensor(x[0].shape, dtype=torch.int64),
    "Gather": lambda x, a: torch.index_select(x[0], a.get("axis", 0), x[1].reshape(-1)).reshape(
        x[0].shape[:a.get("axis", 0)] + x[1].shape + x[0].shape[a.get("axis", 0) + 1:]),
    "Cast": lambda x, a: x[0].to({1: torch.float32, 7: torch.int64, 6: torch.int32, 10: torch.float16, 9: torch.bool,
                                   11: torch.float64}[a["to"]]),
    "Resize": _resize, "BatchNormalization": _bn,
    "GlobalAveragePool": lambda x, a: x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True),
    "AveragePool": lambda x, a: F.avg_pool2d(x[0], a["kernel_shape"], a.get("strides"), a.get("pads", [0] * 4)[:2],
                                             count_include_pad=bool(a.get("count_include_pad", 0))),
    "MaxPool": lambda x, a: _maxpool(x[0], a),
    "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum),
    "ReduceL2": _reduce(lambda t, dim, keepdim: torch.linalg.vector_norm(t, 2, dim=dim, keepdim=keepdim)),
    "ReduceMax": _reduce(lambda t, dim, keepdim: torch.amax(t, dim=dim, keepdim=keepdim)),
    "Pad": lambda x, a: F.pad(x[0], _pads(x[1].tolist(), x[0].dim()),
                              value=float(x[2]) if len(x) > 2 and x[2] is not None else 0.0),
    "LpNormalization": lambda x, a: F.normalize(x[0], p=a.get("p", 2), dim=a.get("axis", -1)),
    "Expand": lambda x, a: x[0] * torch.ones([int(v) for v in x[1].tolist()], dtype=x[0].dtype, device=x[0].device),
    "Where": lambda x, a: torch.where(x[0], x[1], x[2]),
    "Equal": lambda x, a: x[0] == x[1], "Greater": lambda x, a: x[0] > x[1], "Less": lambda x, a: x[0] < x[1],
    "InstanceNormalization": lambda x, a: F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get("epsilon", 1e-5)),
    "DepthToSpace": lambda x, a: F.pixel_shuffle(x[0], a["blocksize"]),
}


def _maxpool(t, a):
    k, st = a["kernel_shape"], a.get("strides", [1, 1])
    ap = a.get("auto_pad", b"NOTSET")
    ap = ap.decode() if isinstance(ap, bytes) else ap
    if ap in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for dim in (3, 2):  # F.pad order: last dim first
            n = t.shape[dim]
            total = max((-(-n // st[dim - 2]) - 1) * st[dim - 2] + k[dim - 2] - n, 0)
            lo = total // 2 if ap == "SAME_UPPER" else total - total // 2
            pads += [lo, total - lo]
        t = F.pad(t, pads, value=float("-inf"))
        return F.max_pool2d(t, k, st, 0, ceil_mode=bool(a.get("ceil_mode", 0)))
    p = a.get("pads", [0] * 4)
    if p[0] != p[2] or p[1] != p[3]:
        t = F.pad(t, _pads(p, 2), value=float("-inf"))
        p = [0, 0, 0, 0]
    return F.max_pool2d(t, k, st, p[:2], ceil_mode=bool(a.get("ceil_mode", 0)))


def _unsqueeze(t, axes):
    for ax in sorted(int(v) for v in axes):
        t = t.unsqueeze(ax)
    return t


class TorchSession(Session):
    backend = "pytorch"

    def __init__(self, spec: NetworkSpec, device: str = "cpu", half: bool = False):
        super().__init__(spec)
        self.graph = TorchGraph(str(spec.path), device, half)

    def _run(self, feeds, batch):
        out = self.graph(feeds)
        return {t.name: out[t.name] for t in self.outputs}


def open_torch_networks(pack: ModelPack | str, threads: int | None = None, device: str = "cpu",
                        half: bool = False) -> Networks:
    """The pack's networks as eager PyTorch sessions on ``device`` (float16 with ``half``)."""
    pack = load_pack(pack)
    if threads:
        torch.set_num_threads(threads)
    where = f"{torch.get_num_threads()} threads" if torch.device(device).type == "cpu" else \
        f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return Networks(pack, "pytorch", {r: TorchSession(s, device, half) for r, s in pack.networks.items()},
                    reason=f"PyTorch {torch.__version__} eager, {where}{', float16' if half else ''}")
