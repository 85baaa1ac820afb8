"""FP16 conversion: I/O stays FP32, results match FP32, and the FP32 range audit catches overflow that
ONNX Runtime on the CPU would hide."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxconverter_common")

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
    assert [i.type.tensor_type.elem_type for i in conv.graph.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in conv.graph.output] == [TensorProto.FLOAT]
    assert check.rewritten_constants == []
    assert check.fp16_nodes >= 1  # 'gain' (and the Div) really run in FP16
    assert check.max_abs_err < 5e-3


def test_converter_rewriting_a_tiny_epsilon_is_reported():
    """Without the audit's block list the converter clamps the 1e-8 epsilon; the check must say so."""
    model = planted_overflow_model()
    conv = fp16.convert(model, blocked=[])
    check = fp16.check_conversion(model, conv, feeds())
    assert "eps" in check.rewritten_constants
    assert not check.ok


def test_cpu_hides_what_the_audit_sees():
    """Documented trap: the unblocked FP16 graph still gives finite outputs on ORT-CPU, because the CPU
    provider runs ops without FP16 kernels in FP32. Only the FP32 audit reveals the overflow."""
    model = planted_overflow_model()
    conv = fp16.convert(model, blocked=[])
    import onnxruntime as ort

    sess = ort.InferenceSession(conv.SerializeToString(), providers=["CPUExecutionProvider"])
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
