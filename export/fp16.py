"""FP16 conversion of ONNX graphs, guided by a value-range audit of the FP32 graph.

Why an audit: ONNX Runtime's CPU provider has no FP16 kernels for many ops, so it inserts casts and
runs them in FP32 — a converted graph that overflows on a GPU (TensorRT) still looks fine on the CPU.
So we never judge FP16 safety by running the FP16 graph on the CPU; we run the FP32 graph on
representative inputs with every intermediate exposed, record per-tensor value ranges, and keep in
FP32 every node that reads or writes values outside a safe FP16 range (``threshold``, default 1e4,
headroom below FP16's 65504), and every node fed by a constant that FP16 cannot hold (|x| > 65504, or
0 < |x| < 2**-24, which FP16 flushes to zero — e.g. a 1e-8 epsilon). Graph inputs and outputs stay FP32.

The conversion (:func:`convert`) is a pass of our own over the ONNX graph, not onnxconverter-common's: that
converter (1.16) turns a graph output FP16 when the last node is kept FP32, sends values between two FP32 nodes
through FP16 when they fan out, leaves an initializer shared by FP32 and FP16 nodes in one type (ONNX Runtime
refuses the graph) and clamps constants. :func:`check_conversion` checks what must hold: FP32 graph I/O, no
FP32 -> FP16 -> FP32 round trip, every FP16 constant the IEEE rounding of its FP32 value, parity on ORT-CPU.
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


def _elem_types(model) -> dict[str, int]:
    """Element type of every value of ``model`` (shape inference, graph I/O, initializers)."""
    onnx = _onnx()
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    return types


def _float_tensor_names(model) -> list[str]:
    onnx = _onnx()
    types = _elem_types(model)
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
    """Why FP16 cannot hold ``arr`` ('' / None when it can): a value beyond FP16's range, a small constant
    (<= SMALL_CONSTANT elements, e.g. an epsilon) with a value FP16 flushes to 0, or a tensor whose values all lie
    below FP16's normal range. In a large tensor (a weight), single values below 2**-24 are flushed by the
    conversion: beside the tensor's other values they are below FP16's own rounding."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    a = np.abs(arr.astype(np.float64))
    if np.any(a > FP16_MAX):
        return f"constant |x| up to {a.max():.3g} > FP16 max"
    nz = a[a > 0]
    if not nz.size:
        return None
    if arr.size <= SMALL_CONSTANT and nz.min() < FP16_MIN_SUBNORMAL:
        return f"constant {nz.min():.3g} flushes to 0 in FP16"
    if a.max() < FP16_MIN_NORMAL:
        return f"constant with all |x| <= {a.max():.3g}, below FP16's normal range"
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


# ---- the conversion pass ----------------------------------------------------------------------------
# Ops kept FP32 for their numerics (not a range the audit can see: the sums inside them grow with the tensor)
NUMERIC_FP32_OPS = {
    "ReduceSumSquare": "sums squares inside the op (FP16 accumulator overflow)",
    "ReduceL2": "sums squares inside the op (FP16 accumulator overflow)",
    "LpNormalization": "sums squares inside the op (FP16 accumulator overflow)",
}
# Ops whose output type is fixed by an attribute or whose float inputs the ONNX spec types as float32 only
TYPED_OPS = {"Cast", "CastLike", "ConstantOfShape", "EyeLike", "RandomNormal", "RandomUniform", "RandomNormalLike",
             "RandomUniformLike", "Multinomial", "NonMaxSuppression"}
TYPE_AGNOSTIC_OPS = {"Shape", "Size", "Cast"}  # read any input type: no cast in front of them
CONTROL_FLOW_OPS = {"If", "Loop", "Scan"}
# float inputs that keep their own type when the op runs in FP16 (index -> the ONNX spec's constraint)
OWN_TYPE_INPUTS = {"Resize": {1, 2}, "Upsample": {1}}
SMALL_CONSTANT = 16  # elements: a constant this small (a scalar epsilon, a few offsets) is never flushed
FP16_MIN_NORMAL = 2.0 ** -14


@dataclass
class Conversion:
    """What :func:`convert` did: the FP16 model, the nodes kept FP32 and why, the constants flushed."""

    model: object
    kept: dict[str, str]  # node name -> reason (compute nodes only)
    compute_nodes: int
    flushed: dict[str, int]  # initializer -> elements flushed to 0 (|x| < 2**-24 in a large tensor)
    casts: int

    by_range: set[str] = field(default_factory=set)  # the kept nodes the range audit asked for

    @property
    def fp16_share(self) -> float:
        """FP16 compute nodes / compute nodes."""
        return 1.0 - len(self.kept) / max(1, self.compute_nodes)

    @property
    def fp16_share_unforced(self) -> float:
        """FP16 compute nodes / compute nodes that no value range forces to FP32."""
        free = self.compute_nodes - len(self.by_range)
        return 1.0 - (len(self.kept) - len(self.by_range)) / max(1, free)


def _constants_to_initializers(model) -> None:
    """Float Constant nodes become initializers, so every constant is handled in one place."""
    from onnx import numpy_helper

    keep = []
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and len(node.output) == 1 and ("value" in attrs or "value_float" in attrs):
            arr = numpy_helper.to_array(attrs["value"].t) if "value" in attrs else np.array(attrs["value_float"].f, np.float32)
            if arr.dtype == np.float32:
                model.graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
                continue
        keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _to_half(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """IEEE rounding to FP16, and how many non-zero values became 0 (|x| < 2**-25)."""
    half = arr.astype(np.float16)
    return half, int(np.count_nonzero((half == 0) & (arr != 0)))


def convert(model, blocked: Mapping[str, str] | Iterable[str], extra_op_block: Iterable[str] = ()) -> Conversion:
    """FP32 -> FP16, a pass of our own (no converter's cast cleanup involved):

    - every compute node runs in FP16 unless it is in ``blocked`` (node name -> reason, from the range audit),
      its op is in :data:`NUMERIC_FP32_OPS` / ``extra_op_block``, or its output type is fixed (:data:`TYPED_OPS`);
    - a tensor keeps the precision of the node that produced it; a Cast is inserted once per (tensor, type) for the
      consumers that need the other type, so the value passing between two FP32 nodes never goes through FP16, even
      when it fans out;
    - graph inputs and outputs stay FP32 (a Cast back to FP32 writes each graph output that an FP16 node produced);
    - an initializer read by FP16 and FP32 nodes alike gets an FP16 copy for the FP16 ones;
    - in large constants (weights) values under FP16's smallest subnormal round to 0 (counted in ``flushed``); a
      small constant (<= 16 elements, e.g. an epsilon) with such a value, or a constant beyond FP16's range, is a
      problem the audit reports (:func:`plan_block_list`), and the node that reads it stays FP32.
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    reasons = dict(blocked) if isinstance(blocked, Mapping) else {b: "blocked by the caller" for b in blocked}
    extra = set(extra_op_block)
    m = copy.deepcopy(model)
    name_nodes(m)
    if any(n.op_type in CONTROL_FLOW_OPS for n in m.graph.node):
        raise ValueError("FP16 conversion of graphs with control flow (If/Loop/Scan) is not supported")
    _constants_to_initializers(m)
    types = _elem_types(m)
    inits = {i.name: i for i in m.graph.initializer}
    graph_inputs = {i.name for i in m.graph.input}

    kept: dict[str, str] = {}
    compute = 0
    half_nodes: set[str] = set()
    for node in m.graph.node:
        floats = [o for o in node.output if types.get(o) == FLOAT]
        if not floats or node.op_type in ("Cast", "Constant"):
            continue
        compute += 1
        if node.name in reasons:
            kept[node.name] = reasons[node.name]
        elif node.op_type in NUMERIC_FP32_OPS:
            kept[node.name] = NUMERIC_FP32_OPS[node.op_type]
        elif node.op_type in extra:
            kept[node.name] = "op kept FP32 by the caller"
        elif node.op_type in TYPED_OPS:
            kept[node.name] = "output type fixed by the op"
        else:
            half_nodes.add(node.name)

    # the precision each non-constant float tensor is produced in
    home: dict[str, int] = {n: FLOAT for n in graph_inputs if types.get(n) == FLOAT}
    for node in m.graph.node:
        for o in node.output:
            if types.get(o) == FLOAT:
                home[o] = HALF if node.name in half_nodes else FLOAT
    # graph outputs produced in FP16: the producer writes '<name>.fp16', a Cast writes the FP32 output
    renamed = {o.name: o.name + ".fp16" for o in m.graph.output if home.get(o.name) == HALF}
    for node in m.graph.node:
        for i, o in enumerate(node.output):
            if o in renamed:
                node.output[i] = renamed[o]
        for i, x in enumerate(node.input):
            if x in renamed:
                node.input[i] = renamed[x]
    for old, new in renamed.items():
        home[new] = HALF

    demands: dict[str, set[int]] = {}
    casts: dict[tuple[str, int], str] = {}
    new_nodes = []
    for node in m.graph.node:
        half = node.name in half_nodes
        own = OWN_TYPE_INPUTS.get(node.op_type, set())
        for i, x in enumerate(node.input):
            if not x or node.op_type in TYPE_AGNOSTIC_OPS:
                continue
            is_init = x in inits and inits[x].data_type == FLOAT
            if not is_init and home.get(x) not in (FLOAT, HALF):
                continue  # not a float tensor
            want = HALF if half and i not in own else FLOAT
            if is_init:
                demands.setdefault(x, set()).add(want)
                if want == HALF:
                    node.input[i] = x + ".fp16.init"  # resolved below (same name when only FP16 nodes read it)
                continue
            if home[x] == want:
                continue
            key = (x, want)
            if key not in casts:
                casts[key] = f"{x}.to_{'fp16' if want == HALF else 'fp32'}"
                new_nodes.append(helper.make_node("Cast", [x], [casts[key]], to=want, name=f"cast:{casts[key]}"))
            node.input[i] = casts[key]
        new_nodes.append(node)
    for old, new in renamed.items():
        new_nodes.append(helper.make_node("Cast", [new], [old], to=FLOAT, name=f"cast:{old}"))

    flushed: dict[str, int] = {}
    for name, want in demands.items():
        if HALF not in want:
            continue
        arr = numpy_helper.to_array(inits[name])
        problem = _constant_problem(arr)
        if problem:  # the audit blocks the readers of such constants: the caller's block list missed one
            raise ValueError(f"initializer '{name}' is read by an FP16 node: {problem} (keep its reader FP32)")
        half_arr, n = _to_half(arr)
        if n:
            flushed[name] = n
        target = name if FLOAT not in want else name + ".fp16.init"
        if FLOAT not in want:  # only FP16 readers: convert in place
            m.graph.initializer.remove(inits[name])
        m.graph.initializer.append(numpy_helper.from_array(half_arr, target))
        if target == name:
            for node in new_nodes:
                for i, x in enumerate(node.input):
                    if x == name + ".fp16.init":
                        node.input[i] = name
    del m.graph.node[:]
    m.graph.node.extend(new_nodes)
    del m.graph.value_info[:]  # stale types: inferred again by whoever needs them
    onnx.checker.check_model(m)
    return Conversion(m, kept, compute, flushed, len(casts) + len(renamed), {n for n in kept if n in reasons})


@dataclass
class ConversionCheck:
    io_fp32: bool
    fp16_nodes: int
    nodes: int
    max_abs_err: float
    max_rel_err: float
    rewritten_constants: list[str]
    problems: list[str]
    round_trips: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def count_fp16_nodes(model) -> int:
    """Compute nodes (not Cast) whose first output is FP16 after shape inference."""
    onnx = _onnx()
    types = _elem_types(model)
    return sum(1 for n in model.graph.node
               if n.op_type not in ("Cast", "Constant") and n.output and types.get(n.output[0]) == onnx.TensorProto.FLOAT16)


def round_trips(model) -> list[str]:
    """Values that go FP32 -> FP16 -> FP32 through two Casts in a row (precision lost, overflow possible,
    between nodes that were meant to stay FP32)."""
    onnx = _onnx()
    cast_to = {n.output[0]: (n, {a.name: a.i for a in n.attribute}.get("to")) for n in model.graph.node
               if n.op_type == "Cast"}
    out = []
    for n, to in cast_to.values():
        src = cast_to.get(n.input[0])
        if to == onnx.TensorProto.FLOAT and src is not None and src[1] == onnx.TensorProto.FLOAT16:
            out.append(src[0].input[0])
    return out


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
    """I/O still FP32, graph valid, no FP32 -> FP16 -> FP32 round trip, outputs match FP32 within
    ``atol + rtol*|ref|``, every FP16 constant the IEEE rounding of its FP32 value.

    ORT-CPU parity is a necessary check, not a sufficient one (it hides FP16 overflow: see module doc).
    """
    onnx = _onnx()
    from onnx import numpy_helper

    if isinstance(fp16, Conversion):
        fp16 = fp16.model
    problems: list[str] = []
    try:
        onnx.checker.check_model(fp16)
    except onnx.checker.ValidationError as exc:
        problems.append(f"onnx.checker: {exc}")
    io_fp32 = _io_types(fp16) == _io_types(fp32)
    if not io_fp32:
        problems.append(f"graph I/O types changed: {_io_types(fp32)} -> {_io_types(fp16)}")
    trips = round_trips(fp16)
    if trips:
        problems.append(f"FP32 -> FP16 -> FP32 round trips: {trips[:5]}")
    half = onnx.TensorProto.FLOAT16
    fp16_nodes = count_fp16_nodes(fp16)
    orig = {i.name: numpy_helper.to_array(i) for i in fp32.graph.initializer}
    for node in fp32.graph.node:  # constants of Constant nodes (the conversion makes them initializers)
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    orig[node.output[0]] = numpy_helper.to_array(a.t)
    rewritten = []
    for init in fp16.graph.initializer:
        name = init.name[:-len(".fp16.init")] if init.name.endswith(".fp16.init") else init.name
        if name in orig and orig[name].dtype == np.float32:
            new = numpy_helper.to_array(init).astype(np.float64)
            old = orig[name]
            if new.shape == old.shape:
                expect = old.astype(np.float16).astype(np.float64) if init.data_type == half else old.astype(np.float64)
                if not np.array_equal(new, expect):
                    rewritten.append(name)
    if rewritten:
        problems.append(f"constants changed beyond FP16 rounding: {rewritten[:5]}")
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
    return ConversionCheck(io_fp32, fp16_nodes, len(fp16.graph.node), max_abs, max_rel, rewritten, sorted(set(problems)),
                           trips)


def convert_checked(model, feeds: Sequence[Mapping[str, np.ndarray]], threshold: float = DEFAULT_THRESHOLD,
                    rtol: float = 2e-2, atol: float = 2e-2) -> tuple[Audit, Conversion, ConversionCheck]:
    """Audit the FP32 ``model``'s ranges on ``feeds``, convert with the audit's block list, check the result."""
    audit = audit_ranges(model, feeds, threshold)
    conv = convert(model, audit.blocked)
    return audit, conv, check_conversion(model, conv, feeds, rtol=rtol, atol=atol)
