"""Three FP16 converters on the same graphs: onnxconverter-common (1.16, what export/fp16.py used before),
NVIDIA ModelOpt's AutoCast (``modelopt.onnx.autocast.convert_to_mixed_precision``, keep_io_types=True) and
export/fp16.py's own pass. Prints a table: graph I/O FP32, share of compute nodes in FP16, FP32 -> FP16 -> FP32
round trips, whether ONNX Runtime loads the graph, max |FP16 - FP32| on ORT-CPU, non-finite outputs.

Cases: the demo pack's networks; a softmax2 gender net (ends in Softmax); a value of ~1e5 made and read by nodes
that must stay FP32 with a fan-out; an initializer read by an FP32 and an FP16 node; a conv with a few 1e-9
weights. ModelOpt needs its own install (``pip install nvidia-modelopt`` plus its onnx extras; not a dependency
of this repo).

    python research/experiments/fp16_converters.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _model(nodes, inits, inputs, outputs):
    from onnx import helper

    m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def cases():
    from onnx import TensorProto, helper, numpy_helper

    from export import calib, onnx_tools
    from pridss_rt import load_pack

    vi = lambda n, d: helper.make_tensor_value_info(n, TensorProto.FLOAT, d)  # noqa: E731
    rng = np.random.default_rng(0)
    out = []
    pack = load_pack("demo")
    for role in pack.networks:
        out.append((f"demo {role}", onnx_tools.sanitize(onnx_tools.load(pack.network(role).path)),
                    calib.feeds_for(pack, role), {}))
    w1 = numpy_helper.from_array((0.2 * rng.standard_normal((8, 3, 3, 3))).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 2)).astype(np.float32), "w2")
    out.append(("softmax2 gender", _model(
        [helper.make_node("Conv", ["image", "w1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
         helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
         helper.make_node("MatMul", ["f", "w2"], ["logits"], name="fc"),
         helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1)],
        [w1, w2], [vi("image", ["batch", 3, 32, 32])], [vi("probs", ["batch", 2])]),
        [{"image": rng.uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32)}], {}))
    k = numpy_helper.from_array(np.array(1e5, np.float32), "k")
    out.append(("1e5 fan-out between FP32 nodes", _model(
        [helper.make_node("Mul", ["x", "k"], ["big"], name="scale"),
         helper.make_node("Sub", ["big", "x"], ["a"], name="sub"),
         helper.make_node("Add", ["big", "x"], ["b"], name="add"),
         helper.make_node("Div", ["a", "b"], ["r"], name="ratio"),
         helper.make_node("Sigmoid", ["big"], ["s"], name="squash")],
        [k], [vi("x", ["batch", 4])], [vi("r", ["batch", 4]), vi("s", ["batch", 4])]),
        [{"x": np.array([[1.0, 2.0, -3.0, 0.5]], np.float32)}], {"scale", "sub", "add"}))
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    out.append(("initializer shared by FP32 and FP16", _model(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="kept"),
         helper.make_node("MatMul", ["h", "w"], ["y"], name="half")],
        [w], [vi("x", ["batch", 4])], [vi("y", ["batch", 4])]),
        [{"x": rng.standard_normal((2, 4)).astype(np.float32)}], {"kept"}))
    cw = (0.02 * rng.standard_normal((64, 64, 3, 3))).astype(np.float32)
    cw.flat[[5, 500, 5000]] = 1e-9
    out.append(("conv with three 1e-9 weights", _model(
        [helper.make_node("Conv", ["x", "cw"], ["y"], name="conv", pads=[1, 1, 1, 1])],
        [numpy_helper.from_array(cw, "cw")], [vi("x", ["batch", 64, 8, 8])], [vi("y", ["batch", 64, 8, 8])]),
        [{"x": rng.standard_normal((1, 64, 8, 8)).astype(np.float32)}], {}))
    return out


def ours(model, feeds, keep):
    from export import fp16

    audit = fp16.audit_ranges(model, feeds)
    blocked = dict(audit.blocked) | {n: "case" for n in keep}
    return fp16.convert(model, blocked).model


def converter_common(model, feeds, keep):
    from onnxconverter_common import float16

    from export import fp16

    audit = fp16.audit_ranges(model, feeds)
    return float16.convert_float_to_float16(model, keep_io_types=True,
                                            node_block_list=sorted(set(audit.blocked) | set(keep)))


def modelopt(model, feeds, keep):
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision

    from export import fp16

    audit = fp16.audit_ranges(model, feeds)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "m.onnx"
        m = onnx.load_from_string(model.SerializeToString())
        fp16.name_nodes(m)
        onnx.save(m, str(p))
        return convert_to_mixed_precision(str(p), "fp16", keep_io_types=True,
                                          nodes_to_exclude=sorted(set(audit.blocked) | set(keep)) or None)


def measure(fp32, conv, feeds) -> dict:
    import onnx

    from export import fp16

    TP = onnx.TensorProto
    io = all(v.type.tensor_type.elem_type == TP.FLOAT for v in list(conv.graph.input) + list(conv.graph.output))
    try:
        types = {v.name: v.type.tensor_type.elem_type for v in
                 list(onnx.shape_inference.infer_shapes(conv).graph.value_info) + list(conv.graph.output)}
    except Exception:
        types = {}
    compute = [n for n in conv.graph.node if n.op_type not in ("Cast", "Constant")
               and types.get(n.output[0]) in (TP.FLOAT, TP.FLOAT16)]
    share = sum(types.get(n.output[0]) == TP.FLOAT16 for n in compute) / max(1, len(compute))
    row = dict(io_fp32=io, fp16_share=share, round_trips=len(fp16.round_trips(conv)), loads=True, err=None,
               finite=None)
    try:
        errs, finite = [], True
        for f in feeds:
            for r, g in zip(fp16._run(fp32, f), fp16._run(conv, f)):
                g = g.astype(np.float64)
                finite &= bool(np.isfinite(g).all())
                errs.append(float(np.nanmax(np.abs(g - r))))
        row.update(err=max(errs), finite=finite)
    except Exception as exc:
        row.update(loads=False, err=str(exc).split("\n")[0][:70])
    return row


def main() -> int:
    tools = {"ours": ours, "onnxconverter-common": converter_common, "ModelOpt AutoCast": modelopt}
    print("| case | converter | I/O FP32 | FP16 share | round trips | ORT loads | max err | finite |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model, feeds, keep in cases():
        for tname, fn in tools.items():
            try:
                conv = fn(model, feeds, keep)
                r = measure(model, conv, feeds)
            except Exception as exc:
                print(f"| {name} | {tname} | conversion failed: {type(exc).__name__}: {str(exc)[:60]} | | | | | |")
                continue
            err = f"{r['err']:.2e}" if isinstance(r["err"], float) else r["err"]
            print(f"| {name} | {tname} | {r['io_fp32']} | {r['fp16_share']:.0%} | {r['round_trips']} | {r['loads']} | "
                  f"{err} | {r['finite']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
