"""FP16 conversion of ONNX graphs, guided by a value-range audit of the FP32 graph.

Why an audit: ONNX Runtime's CPU provider has no FP16 kernels for many ops, so it inserts casts and
runs them in FP32 — a converted graph that overflows on a GPU (TensorRT) still looks fine on the CPU.
So we never judge FP16 safety by running the FP16 graph on the CPU; we run the FP32 graph on
representative inputs with every intermediate exposed, record per-tensor value ranges, and keep in
FP32 every node that reads or writes values outside a safe FP16 range (``threshold``, default 1e4,
headroom below FP16's 65504), and every node fed by a constant that FP16 cannot hold (|x| > 65504, or
0 < |x| < 2**-24, which FP16 flushes to zero — e.g. a 1e-8 epsilon). Graph inputs and outputs stay FP32.

The converter (onnxconverter-common) would otherwise silently rewrite such constants (1e-8 -> 1e-7,
and by default clamps anything above 1e4); :func:`check_conversion` lists any constant whose value
changed, which must be empty for a clean conversion.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

FP16_MAX = 65504.0
FP16_MIN_SUBNORMAL = 2.0 ** -24  # 5.96e-8: smaller magnitudes become 0 in FP16
DEFAULT_THRESHOLD = 1.0e4
# ops kept in FP32 regardless of the audit: the converter's defaults plus reductions whose sums grow
# with the tensor size (their FP16 accumulators overflow long before the inputs do) and
# normalization-like ops sensitive to precision.
EXTRA_OP_BLOCK = ["ReduceSumSquare", "ReduceL2", "LpNormalization", "Softmax", "LogSoftmax"]


def _onnx():
    import onnx

    return onnx


@dataclass
class TensorRange:
    name: str
    absmax: float = 0.0
    min_nonzero: float = float("inf")
    nonfinite: bool = False

    def update(self, a: np.ndarray) -> None:
        a = np.asarray(a)
        if a.size == 0 or a.dtype.kind != "f":
            return
        finite = np.isfinite(a)
        if not finite.all():
            self.nonfinite = True
        vals = np.abs(a[finite].astype(np.float64))
        if vals.size:
            self.absmax = max(self.absmax, float(vals.max()))
            nz = vals[vals > 0]
            if nz.size:
                self.min_nonzero = min(self.min_nonzero, float(nz.min()))


@dataclass
class Audit:
    """Result of :func:`audit_ranges` plus the block list planned from it."""

    ranges: dict[str, TensorRange]
    threshold: float
    blocked: dict[str, str] = field(default_factory=dict)  # node name -> reason
    num_nodes: int = 0

    def summary(self) -> dict:
        top = sorted(self.ranges.values(), key=lambda r: -r.absmax)[:10]
        return {
            "threshold": self.threshold,
            "nodes": self.num_nodes,
            "blocked": dict(sorted(self.blocked.items())),
            "largest": {r.name: r.absmax for r in top},
            "nonfinite": sorted(r.name for r in self.ranges.values() if r.nonfinite),
        }


def name_nodes(model) -> None:
    """Give every node a unique name (the converter's node block list matches by name)."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def _float_tensor_names(model) -> list[str]:
    onnx = _onnx()
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    inits = {i.name for i in model.graph.initializer}
    names = []
    for node in model.graph.node:
        for o in node.output:
            if o and o not in inits and types.get(o, onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT:
                names.append(o)
    return names


def audit_ranges(model, feeds: Sequence[Mapping[str, np.ndarray]], threshold: float = DEFAULT_THRESHOLD) -> Audit:
    """Run the FP32 ``model`` on ``feeds`` with every intermediate float tensor exposed; record ranges."""
    import onnxruntime as ort

    onnx = _onnx()
    m = copy.deepcopy(model)
    name_nodes(m)
    existing = {o.name for o in m.graph.output}
    names = _float_tensor_names(m)
    for n in names:
        if n not in existing:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor as written
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    ranges: dict[str, TensorRange] = {}
    for feed in feeds:
        for n, a in feed.items():
            ranges.setdefault(n, TensorRange(n)).update(a)
        for n, a in zip(out_names, sess.run(out_names, dict(feed))):
            ranges.setdefault(n, TensorRange(n)).update(a)
    audit = Audit(ranges=ranges, threshold=threshold, num_nodes=len(m.graph.node))
    audit.blocked = plan_block_list(m, audit)
    return audit


def _constant_problem(arr: np.ndarray) -> str | None:
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    a = np.abs(arr.astype(np.float64))
    if np.any(a > FP16_MAX):
        return f"constant |x| up to {a.max():.3g} > FP16 max"
    nz = a[a > 0]
    if nz.size and nz.min() < FP16_MIN_SUBNORMAL:
        return f"constant {nz.min():.3g} flushes to 0 in FP16"
    return None


def plan_block_list(model, audit: Audit) -> dict[str, str]:
    """Node name -> reason, for every node that must stay FP32 (see module docstring)."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    const_nodes = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    const_nodes[node.output[0]] = numpy_helper.to_array(a.t)
    thr = audit.threshold
    blocked: dict[str, str] = {}
    for node in model.graph.node:
        reasons: list[str] = []
        for o in node.output:
            r = audit.ranges.get(o)
            if r is not None and (r.absmax > thr or r.nonfinite):
                reasons.append(f"output '{o}' reaches |x|={r.absmax:.4g}" + (" (non-finite)" if r.nonfinite else ""))
        for i in node.input:
            r = audit.ranges.get(i)
            if r is not None and r.absmax > thr:
                reasons.append(f"input '{i}' reaches |x|={r.absmax:.4g}")
            arr = inits.get(i, const_nodes.get(i))
            if arr is not None and (why := _constant_problem(arr)):
                reasons.append(f"input '{i}': {why}")
        if node.op_type == "Constant" and node.output and node.output[0] in const_nodes:
            if why := _constant_problem(const_nodes[node.output[0]]):
                reasons.append(why)
        if reasons:
            blocked[node.name] = "; ".join(reasons)
    return blocked


def convert(model, blocked: Iterable[str], extra_op_block: Iterable[str] = ()):
    """FP32 -> FP16 with graph I/O kept FP32 and ``blocked`` nodes kept FP32."""
    from onnxconverter_common import float16

    m = copy.deepcopy(model)
    name_nodes(m)
    ops = list(float16.DEFAULT_OP_BLOCK_LIST) + EXTRA_OP_BLOCK + list(extra_op_block)
    return float16.convert_float_to_float16(
        m, keep_io_types=True, node_block_list=sorted(set(blocked)), op_block_list=ops,
        # blocked nodes keep their constants in FP32, so nothing should need clamping; these bounds
        # are FP16's own, so any constant that still gets rewritten is reported by check_conversion
        min_positive_val=FP16_MIN_SUBNORMAL, max_finite_val=FP16_MAX,
    )


@dataclass
class ConversionCheck:
    io_fp32: bool
    fp16_nodes: int
    nodes: int
    max_abs_err: float
    max_rel_err: float
    rewritten_constants: list[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def count_fp16_nodes(model) -> int:
    """Compute nodes (not Cast) whose first output is FP16 after shape inference."""
    onnx = _onnx()
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in
             list(inferred.graph.value_info) + list(inferred.graph.output)}
    return sum(1 for n in model.graph.node
               if n.op_type not in ("Cast", "Constant") and n.output and types.get(n.output[0]) == onnx.TensorProto.FLOAT16)


def _io_types(model) -> list[tuple[str, int]]:
    return [(v.name, v.type.tensor_type.elem_type) for v in list(model.graph.input) + list(model.graph.output)]


def _run(model, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(feed))


def check_conversion(fp32, fp16, feeds: Sequence[Mapping[str, np.ndarray]], rtol: float = 2e-2,
                     atol: float = 2e-2) -> ConversionCheck:
    """I/O still FP32, graph valid, outputs match FP32 within ``atol + rtol*|ref|``, no constant rewritten.

    ORT-CPU parity is a necessary check, not a sufficient one (it hides FP16 overflow: see module doc).
    """
    onnx = _onnx()
    from onnx import numpy_helper

    problems: list[str] = []
    try:
        onnx.checker.check_model(fp16)
    except onnx.checker.ValidationError as exc:
        problems.append(f"onnx.checker: {exc}")
    io_fp32 = _io_types(fp16) == _io_types(fp32)
    if not io_fp32:
        problems.append(f"graph I/O types changed: {_io_types(fp32)} -> {_io_types(fp16)}")
    half = onnx.TensorProto.FLOAT16
    fp16_nodes = count_fp16_nodes(fp16)
    # constants whose value changed beyond FP16 rounding (the converter's clamping)
    orig = {i.name: numpy_helper.to_array(i) for i in fp32.graph.initializer}
    rewritten = []
    for init in fp16.graph.initializer:
        if init.name in orig and orig[init.name].dtype == np.float32:
            new = numpy_helper.to_array(init).astype(np.float64)
            old = orig[init.name].astype(np.float64)
            if new.shape == old.shape:
                expect = old.astype(np.float16).astype(np.float64) if init.data_type == half else old
                if not np.array_equal(new, expect):
                    rewritten.append(init.name)
    if rewritten:
        problems.append(f"constants rewritten by the converter: {rewritten[:5]}")
    max_abs = max_rel = 0.0
    for feed in feeds:
        ref, got = _run(fp32, feed), _run(fp16, feed)
        for r, g in zip(ref, got):
            r64, g64 = r.astype(np.float64), g.astype(np.float64)
            if not np.all(np.isfinite(g64)):
                problems.append("FP16 graph produced non-finite outputs")
                continue
            err = np.abs(r64 - g64)
            max_abs = max(max_abs, float(err.max(initial=0)))
            max_rel = max(max_rel, float((err / (np.abs(r64) + 1e-3)).max(initial=0)))
            if np.any(err > atol + rtol * np.abs(r64)):
                problems.append(f"output differs from FP32 by up to {err.max():.3g} (tolerance {atol} + {rtol}*|ref|)")
    return ConversionCheck(io_fp32, fp16_nodes, len(fp16.graph.node), max_abs, max_rel, rewritten, sorted(set(problems)))
