"""FP16 conversion: I/O stays FP32, results match FP32, and the FP32 range audit catches overflow that
ONNX Runtime on the CPU would hide."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from export import fp16  # noqa: E402


def planted_overflow_model():
    """y = x / sqrt(sum((1000 x)^2) + 1e-8) * 1000: the squares reach ~1e7 (> FP16 max 65504), and the
    1e-8 epsilon is below FP16's smallest subnormal. The output itself is small."""
    n = helper.make_node
    nodes = [
        n("Mul", ["x", "k"], ["big"], name="scale"),
        n("Mul", ["big", "big"], ["sq"], name="square"),
        n("ReduceSum", ["sq", "axes"], ["ss"], name="sum", keepdims=1),
        n("Add", ["ss", "eps"], ["sse"], name="add_eps"),
        n("Sqrt", ["sse"], ["norm"], name="sqrt"),
        n("Div", ["big", "norm"], ["unit"], name="normalize"),
        n("Mul", ["unit", "gain"], ["y"], name="gain"),
    ]
    inits = [numpy_helper.from_array(np.array(1000.0, np.float32), "k"),
             numpy_helper.from_array(np.array([1], np.int64), "axes"),
             numpy_helper.from_array(np.array(1e-8, np.float32), "eps"),
             numpy_helper.from_array(np.array(3.0, np.float32), "gain")]
    g = helper.make_graph(nodes, "planted", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def feeds(n=3, scale=4.0):
    rng = np.random.default_rng(0)
    return [{"x": (scale * rng.standard_normal((2, 64))).astype(np.float32)} for _ in range(n)]


def test_audit_finds_planted_overflow():
    audit = fp16.audit_ranges(planted_overflow_model(), feeds())
    r = audit.ranges
    assert r["sq"].absmax > fp16.FP16_MAX and r["ss"].absmax > fp16.FP16_MAX  # really overflows FP16
    assert r["y"].absmax < 10
    # producers/consumers of the out-of-range tensors, and the node fed the 1e-8 epsilon, stay FP32
    assert {"square", "sum", "add_eps", "sqrt"} <= set(audit.blocked)
    assert "reaches |x|=" in audit.blocked["square"]
    assert "flushes to 0 in FP16" in audit.blocked["add_eps"]
    # 'scale' outputs |1000 x| ~ 1.5e4 > the 1e4 threshold; 'gain' sees only unit-scale values
    assert "scale" in audit.blocked and "gain" not in audit.blocked
    assert audit.summary()["largest"]["ss"] == pytest.approx(r["ss"].absmax)


def test_threshold_is_respected():
    audit = fp16.audit_ranges(planted_overflow_model(), feeds(), threshold=1e12)
    assert "square" not in audit.blocked  # nothing above 1e12 ...
    assert "add_eps" in audit.blocked  # ... but the tiny constant is still caught


def test_conversion_with_audit_block_list_is_exact_enough():
    model = planted_overflow_model()
    fs = feeds()
    audit = fp16.audit_ranges(model, fs)
    conv = fp16.convert(model, audit.blocked)
    check = fp16.check_conversion(model, conv, fs)
    assert check.ok, check.problems
    assert check.io_fp32
    assert [i.type.tensor_type.elem_type for i in conv.model.graph.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in conv.model.graph.output] == [TensorProto.FLOAT]
    assert conv.kept.keys() == audit.blocked.keys() and conv.compute_nodes == 7
    assert check.rewritten_constants == []
    assert check.fp16_nodes >= 1  # 'gain' (and the Div) really run in FP16
    assert check.max_abs_err < 5e-3


def test_a_tiny_epsilon_read_in_fp16_is_refused():
    """Without the audit's block list the 1e-8 epsilon would be read by an FP16 Add and become 0: the conversion
    refuses, naming the constant, instead of rewriting it."""
    with pytest.raises(ValueError, match=r"initializer 'eps' is read by an FP16 node: constant 1e-08 flushes to 0"):
        fp16.convert(planted_overflow_model(), blocked=[])


def test_cpu_hides_what_the_audit_sees():
    """Documented trap: with only the epsilon's reader kept FP32, the squares (~1e9) run in FP16 and the graph
    still gives finite outputs on ORT-CPU, because the CPU provider runs ops without FP16 kernels in FP32. Only
    the FP32 audit reveals the overflow."""
    model = planted_overflow_model()
    conv = fp16.convert(model, blocked={"add_eps": "epsilon"})
    assert "square" not in conv.kept  # would overflow on a GPU
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = sess.run(None, feeds(1)[0])[0]
    assert np.isfinite(y).all()  # looks fine here, would not be on a GPU


def test_tiny_pack_networks_convert_within_tolerance(shared_tiny_pack):
    from export import calib, onnx_tools
    from pridss_rt import load_pack

    pack = load_pack(shared_tiny_pack)
    for role in pack.networks:
        model = onnx_tools.sanitize(onnx_tools.load(pack.network(role).path))
        fs = calib.feeds_for(pack, role)
        audit = fp16.audit_ranges(model, fs)
        conv = fp16.convert(model, audit.blocked)
        check = fp16.check_conversion(model, conv, fs, rtol=1e-2, atol=1e-2)
        assert check.ok, (role, check.problems)
        assert check.max_abs_err < 1e-2, role
        assert check.fp16_nodes >= 1, role


def test_calibration_covers_extremes(shared_tiny_pack):
    from export import calib
    from pridss_rt import load_pack

    pack = load_pack(shared_tiny_pack)
    lat = np.concatenate(calib.latent_batches(pack))
    latents, _ = pack.bank()
    mu, sd = latents.mean(0), latents.std(0)
    assert np.allclose(lat.max(0), np.maximum(latents.max(0), mu + 3 * sd), atol=1e-6)
    imgs = calib.image_batches(pack, calib.latent_batches(pack))
    assert imgs[-1].min() == pytest.approx(-1.0) and imgs[-1].max() == pytest.approx(1.0)


# ---- the conversion pass: what onnxconverter-common 1.16 got wrong --------------------------------------------
def _model(nodes, inits, inputs, outputs):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _vi(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _types(model):
    inferred = onnx.shape_inference.infer_shapes(model)
    return {v.name: v.type.tensor_type.elem_type for v in
            list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}


def test_graph_output_stays_fp32_when_the_last_node_is_kept():
    # MatMul -> ReduceL2 (kept FP32 for its sum of squares): the 1.16 converter made the graph output FP16
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 2)).astype(np.float32), "w")
    m = _model([helper.make_node("MatMul", ["x", "w"], ["logits"], name="fc"),
                helper.make_node("ReduceL2", ["logits"], ["p"], name="norm", keepdims=1)],
               [w], [_vi("x", ["batch", 8])], [_vi("p", ["batch", 1])])
    conv = fp16.convert(m, {})
    assert [o.type.tensor_type.elem_type for o in conv.model.graph.output] == [TensorProto.FLOAT]
    assert conv.kept == {"norm": fp16.NUMERIC_FP32_OPS["ReduceL2"]}
    assert _types(conv.model)["logits"] == TensorProto.FLOAT16  # the MatMul really is FP16
    fs = [{"x": rng.standard_normal((3, 8)).astype(np.float32)}]
    chk = fp16.check_conversion(m, conv, fs, rtol=1e-2, atol=1e-3)
    assert chk.ok and chk.io_fp32, chk.problems
    # ends in an FP16 node: the output is written by a Cast back to FP32, under its own name
    m2 = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], [w], [_vi("x", ["batch", 8])],
                [_vi("y", ["batch", 2])])
    c2 = fp16.convert(m2, {})
    last = c2.model.graph.node[-1]
    assert (last.op_type, list(last.output), c2.model.graph.output[0].type.tensor_type.elem_type) == \
        ("Cast", ["y"], TensorProto.FLOAT)


def test_fanout_between_fp32_nodes_never_passes_through_fp16():
    # 'big' (~1e5, beyond FP16) is made by a kept node and read by two kept nodes and one FP16 node: the kept
    # readers read it directly; only the FP16 reader gets a Cast. The 1.16 converter sent it through FP16 (inf).
    k = numpy_helper.from_array(np.array(1e5, np.float32), "k")
    m = _model([helper.make_node("Mul", ["x", "k"], ["big"], name="scale"),
                helper.make_node("Sub", ["big", "x"], ["a"], name="sub"),
                helper.make_node("Add", ["big", "x"], ["b"], name="add"),
                helper.make_node("Div", ["a", "b"], ["r"], name="ratio"),
                helper.make_node("Sigmoid", ["big"], ["s"], name="squash")],
               [k], [_vi("x", ["batch", 4])], [_vi("r", ["batch", 4]), _vi("s", ["batch", 4])])
    blocked = {"scale": "range", "sub": "range", "add": "range"}
    conv = fp16.convert(m, blocked)
    assert fp16.round_trips(conv.model) == []
    readers = {n.name: list(n.input) for n in conv.model.graph.node}
    assert readers["sub"][0] == "big" and readers["add"][0] == "big" and readers["squash"] == ["big.to_fp16"]
    assert sum(n.op_type == "Cast" and n.input[0] == "big" for n in conv.model.graph.node) == 1  # one Cast, shared
    x = {"x": np.array([[1.0, 2.0, -3.0, 0.5]], np.float32)}
    r32 = fp16._run(m, x)
    r16 = fp16._run(conv.model, x)
    assert np.isfinite(r16[0]).all()
    np.testing.assert_allclose(r16[0], r32[0], rtol=1e-3)  # (1e5 x - x) / (1e5 x + x), all in FP32 but the Div


def test_initializer_shared_by_fp32_and_fp16_nodes_gets_an_fp16_copy():
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    m = _model([helper.make_node("MatMul", ["x", "w"], ["h"], name="kept"),
                helper.make_node("MatMul", ["h", "w"], ["y"], name="half")],
               [w], [_vi("x", ["batch", 4])], [_vi("y", ["batch", 4])])
    conv = fp16.convert(m, {"kept": "range"})
    inits = {i.name: i.data_type for i in conv.model.graph.initializer}
    assert inits == {"w": TensorProto.FLOAT, "w.fp16.init": TensorProto.FLOAT16}
    fs = [{"x": rng.standard_normal((2, 4)).astype(np.float32)}]
    chk = fp16.check_conversion(m, conv, fs, rtol=1e-2, atol=1e-2)  # ORT refused the 1.16 converter's graph
    assert chk.ok, chk.problems


def test_tiny_weights_are_rounded_not_a_reason_to_keep_fp32():
    # a 64x64x3x3 conv drawn N(0, 0.02) plus a few planted 1e-9 weights: FP16 (they round to 0); a scalar epsilon
    # of the same size keeps its reader FP32
    rng = np.random.default_rng(2)
    w = (0.02 * rng.standard_normal((64, 64, 3, 3))).astype(np.float32)
    w.flat[[5, 500, 5000]] = 1e-9
    eps = numpy_helper.from_array(np.array(1e-9, np.float32), "eps")
    m = _model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                helper.make_node("Add", ["c", "eps"], ["y"], name="add_eps")],
               [numpy_helper.from_array(w, "w"), eps], [_vi("x", ["batch", 64, 8, 8])], [_vi("y", ["batch", 64, 8, 8])])
    assert fp16._constant_problem(w) is None
    assert "flushes to 0" in fp16._constant_problem(np.array(1e-9, np.float32))
    assert "below FP16's normal range" in fp16._constant_problem(np.full((64,), 1e-6, np.float32))
    audit = fp16.audit_ranges(m, [{"x": rng.standard_normal((1, 64, 8, 8)).astype(np.float32)}])
    assert set(audit.blocked) == {"add_eps"}
    conv = fp16.convert(m, audit.blocked)
    assert "conv" not in conv.kept and conv.flushed["w"] >= 3
    chk = fp16.check_conversion(m, conv, [{"x": rng.standard_normal((1, 64, 8, 8)).astype(np.float32)}])
    assert chk.ok and chk.rewritten_constants == [], chk.problems


def test_round_trip_detector_sees_the_pattern():
    m = _model([helper.make_node("Relu", ["x"], ["a"], name="r"),
                helper.make_node("Cast", ["a"], ["a16"], name="c1", to=TensorProto.FLOAT16),
                helper.make_node("Cast", ["a16"], ["a32"], name="c2", to=TensorProto.FLOAT),
                helper.make_node("Relu", ["a32"], ["y"], name="r2")],
               [], [_vi("x", [1, 4])], [_vi("y", [1, 4])])
    assert fp16.round_trips(m) == ["a"]
    chk = fp16.check_conversion(m, m, [{"x": np.ones((1, 4), np.float32)}])
    assert not chk.ok and "round trips" in chk.problems[0]


def _softmax2_gender_net():
    """A small gender net that ends in Softmax over 2 classes (what a 'softmax2' pack network looks like)."""
    rng = np.random.default_rng(4)
    w1 = numpy_helper.from_array((0.2 * rng.standard_normal((8, 3, 3, 3))).astype(np.float32), "w1")
    b1 = numpy_helper.from_array((0.1 * rng.standard_normal(8)).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 2)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["image", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "w2"], ["logits"], name="fc"),
             helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1)]
    return _model(nodes, [w1, b1, w2], [_vi("image", ["batch", 3, 32, 32])], [_vi("probs", ["batch", 2])])


def test_fp16_matrix_softmax2_gender_and_demo_pack():
    # the demo pack's networks and a softmax2 gender net: graph I/O FP32, >= 95 % of the compute nodes FP16 where
    # no range forbids it, every kept node with its reason, ORT-CPU parity within 1e-2 (images in [-1, 1], latents,
    # probabilities, unit embeddings)
    from export import calib, onnx_tools
    from pridss_rt import load_pack

    rng = np.random.default_rng(5)
    cases = [("softmax2 gender", _softmax2_gender_net(),
              [{"image": rng.uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32)} for _ in range(2)])]
    pack = load_pack("demo")
    for role in pack.networks:
        cases.append((f"demo {role}", onnx_tools.sanitize(onnx_tools.load(pack.network(role).path)),
                      calib.feeds_for(pack, role)))
    for name, model, fs in cases:
        audit, conv, chk = fp16.convert_checked(model, fs, rtol=1e-2, atol=1e-2)
        assert chk.ok and chk.io_fp32 and not chk.round_trips, (name, chk.problems)
        assert [v.type.tensor_type.elem_type for v in list(conv.model.graph.input) + list(conv.model.graph.output)] \
            == [TensorProto.FLOAT] * (len(model.graph.input) + len(model.graph.output)), name
        assert conv.fp16_share_unforced >= 0.95, (name, conv.kept)
        assert all(conv.kept.values()), name
        ops = {n.name: n.op_type for n in model.graph.node}
        assert not [n for n, why in conv.kept.items() if ops[n] == "Conv"], (name, conv.kept)  # no conv kept FP32
    assert conv.compute_nodes > 10
