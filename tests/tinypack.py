"""A tiny but complete model pack built from ONNX helper graphs, with weights known to the tests.

Networks (crop 16 px, latent 32):
  encoder   latent = tanh(flatten(image) @ We)
  synthesis image  = reshape(tanh(latent @ Ws), [-1, 3, 16, 16])
  gender    p_male = sigmoid(mean_hw(image) @ Wg)        (output_kind probability)
  identity  emb    = flatten(image) @ Wi                  (D = 8)
and, with add_coherence(), a critic p_composite = sigmoid(mean_hw(image) @ Wc).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIZE = 16
LATENT = 32
EMB = 8
TEMPLATE = [[5.0, 6.0], [11.0, 6.0], [8.0, 9.0], [5.5, 12.0], [10.5, 12.0]]


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 3 * SIZE * SIZE
    return {
        "We": (rng.standard_normal((n, LATENT)) / np.sqrt(n)).astype(np.float32),
        "Ws": (rng.standard_normal((LATENT, n)) / np.sqrt(LATENT)).astype(np.float32),
        "Wg": rng.standard_normal((3, 1)).astype(np.float32),
        "Wi": (rng.standard_normal((n, EMB)) / np.sqrt(n)).astype(np.float32),
    }


def _model(nodes, inputs, outputs, inits):
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pridss-rt-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def build_networks(w: dict[str, np.ndarray]):
    from onnx import TensorProto, helper

    img = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])  # noqa: E731
    lat = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", LATENT])  # noqa: E731
    n = helper.make_node
    enc = _model([n("Flatten", ["image"], ["flat"], axis=1), n("MatMul", ["flat", "We"], ["pre"]),
                  n("Tanh", ["pre"], ["latent"])], [img("image")], [lat("latent")], {"We": w["We"]})
    syn = _model([n("MatMul", ["latent", "Ws"], ["pre"]), n("Tanh", ["pre"], ["act"]),
                  n("Reshape", ["act", "shape"], ["image"])], [lat("latent")], [img("image")],
                 {"Ws": w["Ws"], "shape": np.array([-1, 3, SIZE, SIZE], np.int64)})
    gen = _model([n("ReduceMean", ["image"], ["m"], axes=[2, 3], keepdims=0), n("MatMul", ["m", "Wg"], ["z"]),
                  n("Sigmoid", ["z"], ["p_male"])], [img("image")],
                 [helper.make_tensor_value_info("p_male", TensorProto.FLOAT, ["batch", 1])], {"Wg": w["Wg"]})
    ide = _model([n("Flatten", ["image"], ["flat"], axis=1), n("MatMul", ["flat", "Wi"], ["embedding"])],
                 [img("image")], [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMB])],
                 {"Wi": w["Wi"]})
    return {"encoder": enc, "synthesis": syn, "gender": gen, "identity": ide}


def reference(w: dict[str, np.ndarray]):
    """numpy versions of the four networks (hand-computed expectations for the tests)."""
    return {
        "encoder": lambda x: np.tanh(x.reshape(len(x), -1) @ w["We"]),
        "synthesis": lambda z: np.tanh(z @ w["Ws"]).reshape(-1, 3, SIZE, SIZE),
        "gender": lambda x: 1 / (1 + np.exp(-(x.mean(axis=(2, 3)) @ w["Wg"]))),
        "identity": lambda x: x.reshape(len(x), -1) @ w["Wi"],
    }


def make_pack(root: Path, name: str = "tiny", seed: int = 0) -> Path:
    import onnx

    from pridss_rt.pack import sha256_file, write_pack_json

    root = Path(root) / name
    root.mkdir(parents=True, exist_ok=True)
    w = weights(seed)
    nets = build_networks(w)
    manifest: dict = {
        "schema": "pridss-rt.pack", "schema_version": 1, "name": name, "version": "0.0.1",
        "description": "test pack", "license": "test only",
        "preprocess": {"crop_size": SIZE, "template": TEMPLATE, "channel_order": "rgb",
                       "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "networks": {}, "defaults": {"candidates": 3},
    }
    io = {
        "encoder": ([("image", ["batch", 3, SIZE, SIZE])], [("latent", ["batch", LATENT])]),
        "synthesis": ([("latent", ["batch", LATENT])], [("image", ["batch", 3, SIZE, SIZE])]),
        "gender": ([("image", ["batch", 3, SIZE, SIZE])], [("p_male", ["batch", 1])]),
        "identity": ([("image", ["batch", 3, SIZE, SIZE])], [("embedding", ["batch", EMB])]),
    }
    for role, model in nets.items():
        path = root / f"{role}.onnx"
        onnx.save(model, str(path))
        ins, outs = io[role]
        manifest["networks"][role] = {
            "file": path.name, "sha256": sha256_file(path), "batch": "face" if role == "encoder" else "candidate",
            "inputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in ins],
            "outputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in outs],
        }
    manifest["networks"]["gender"]["output_kind"] = "probability"
    mask = np.zeros(LATENT, np.float32)
    mask[:12] = 1.0
    np.save(root / "fusion_mask.npy", mask)
    manifest["fusion"] = {"type": "mask", "file": "fusion_mask.npy", "sha256": sha256_file(root / "fusion_mask.npy"),
                          "segments": {"eyes": "identity", "skin": "context"}}
    rng = np.random.default_rng(seed + 1)
    latents = np.tanh(rng.standard_normal((6, LATENT))).astype(np.float32)
    np.savez(root / "bank.npz", latents=latents, male=np.array([1, 0, 1, 0, 1, 0], np.uint8))
    manifest["bank"] = {"file": "bank.npz", "sha256": sha256_file(root / "bank.npz")}
    write_pack_json(root, manifest)
    return root


def add_coherence(root: Path, weight: float = 0.5, seed: int = 7) -> np.ndarray:
    """Add a coherence critic to the pack at ``root``: p_composite = sigmoid(mean_hw(image) @ Wc), output
    [batch, 1], and set defaults.coherence_weight. Returns Wc (for hand-computed expectations)."""
    import onnx
    from onnx import TensorProto, helper

    from pridss_rt.pack import sha256_file

    wc = (40.0 * np.random.default_rng(seed).standard_normal((3, 1))).astype(np.float32)
    n = helper.make_node
    model = _model([n("ReduceMean", ["image"], ["m"], axes=[2, 3], keepdims=0), n("MatMul", ["m", "Wc"], ["z"]),
                    n("Sigmoid", ["z"], ["p_composite"])],
                   [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
                   [helper.make_tensor_value_info("p_composite", TensorProto.FLOAT, ["batch", 1])], {"Wc": wc})
    path = Path(root) / "coherence.onnx"
    onnx.save(model, str(path))

    def edit(d):
        d["networks"]["coherence"] = {
            "file": path.name, "sha256": sha256_file(path), "batch": "candidate",
            "inputs": [{"name": "image", "shape": ["batch", 3, SIZE, SIZE], "dtype": "float32"}],
            "outputs": [{"name": "p_composite", "shape": ["batch", 1], "dtype": "float32"}]}
        d["defaults"]["coherence_weight"] = weight

    edit_manifest(root, edit)
    return wc


def edit_manifest(root: Path, fn) -> None:
    """Apply ``fn`` to the parsed pack.json of ``root`` and write it back."""
    path = Path(root) / "pack.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data, indent=2))


def add_segmentation(root: Path, region: str = "head", seed: int = 3) -> np.ndarray:
    """Add a segmentation network (classes background, head, identity, body): logits = conv1x1(image) + B with a
    fixed spatial prior B (head: an ellipse around the template's face, identity: eyes-to-mouth box, body: the
    bottom rows), and set defaults.blend_region. Returns B (for hand-computed expectations)."""
    import onnx
    from onnx import TensorProto, helper

    from pridss_rt.pack import sha256_file

    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    b = np.zeros((1, 4, SIZE, SIZE), np.float32)
    b[0, 1] = 4.0 * (((xx - 8.0) / 6.0) ** 2 + ((yy - 8.0) / 7.0) ** 2 < 1.0)  # head and hair: most of the crop
    b[0, 2] = 8.0 * ((xx >= 5) & (xx <= 10) & (yy >= 6) & (yy <= 12))  # eyes, nose, mouth
    b[0, 3] = 4.0 * (yy >= 14)  # neck, clothes
    w = (0.5 * np.random.default_rng(seed).standard_normal((4, 3, 1, 1))).astype(np.float32)
    n = helper.make_node
    model = _model([n("Conv", ["image", "W"], ["c"]), n("Add", ["c", "B"], ["logits"])],
                   [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
                   [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4, SIZE, SIZE])],
                   {"W": w, "B": b})
    path = Path(root) / "segmentation.onnx"
    onnx.save(model, str(path))

    def edit(d):
        d["networks"]["segmentation"] = {
            "file": path.name, "sha256": sha256_file(path), "batch": "candidate",
            "classes": ["background", "head", "identity", "body"],
            "inputs": [{"name": "image", "shape": ["batch", 3, SIZE, SIZE], "dtype": "float32"}],
            "outputs": [{"name": "logits", "shape": ["batch", 4, SIZE, SIZE], "dtype": "float32"}]}
        d["defaults"]["blend_region"] = region

    edit_manifest(root, edit)
    return b


def add_context_synthesis(root: Path, seed: int = 0) -> None:
    """Replace the synthesis by a three-way one (inputs latent and context [batch, 4, S, S]):
    image = hole * reshape(tanh(latent @ Ws)) + (1 - hole) * context[:, :3], hole = context[:, 3:4] — the new
    head inside the hole, the original's background copied outside it. Needs add_segmentation() (region head)."""
    import onnx
    from onnx import TensorProto, helper

    from pridss_rt.pack import sha256_file

    w = weights(seed)
    n = helper.make_node
    model = _model([n("MatMul", ["latent", "Ws"], ["pre"]), n("Tanh", ["pre"], ["act"]),
                    n("Reshape", ["act", "shape"], ["gen"]),
                    n("Slice", ["context", "s0", "s3", "ax"], ["bg"]), n("Slice", ["context", "s3", "s4", "ax"], ["hole"]),
                    n("Mul", ["gen", "hole"], ["a"]), n("Sub", ["one", "hole"], ["keep"]), n("Mul", ["bg", "keep"], ["b"]),
                    n("Add", ["a", "b"], ["image"])],
                   [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", LATENT]),
                    helper.make_tensor_value_info("context", TensorProto.FLOAT, ["batch", 4, SIZE, SIZE])],
                   [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
                   {"Ws": w["Ws"], "shape": np.array([-1, 3, SIZE, SIZE], np.int64), "s0": np.array([0], np.int64),
                    "s3": np.array([3], np.int64), "s4": np.array([4], np.int64), "ax": np.array([1], np.int64),
                    "one": np.array(1.0, np.float32)})
    path = Path(root) / "synthesis_ctx.onnx"
    onnx.save(model, str(path))

    def edit(d):
        d["networks"]["synthesis"] = {
            "file": path.name, "sha256": sha256_file(path), "batch": "candidate",
            "inputs": [{"name": "latent", "shape": ["batch", LATENT], "dtype": "float32"},
                       {"name": "context", "shape": ["batch", 4, SIZE, SIZE], "dtype": "float32"}],
            "outputs": [{"name": "image", "shape": ["batch", 3, SIZE, SIZE], "dtype": "float32"}]}

    edit_manifest(root, edit)


def context_synthesis_reference(latent: np.ndarray, context: np.ndarray, seed: int = 0) -> np.ndarray:
    gen = np.tanh(latent @ weights(seed)["Ws"]).reshape(-1, 3, SIZE, SIZE)
    hole = context[:, 3:4]
    return gen * hole + context[:, :3] * (1 - hole)


def sample_clip(path: Path, frames: int = 8) -> Path:
    """A short MJPG AVI of the bundled sample image, shifted by one pixel per frame (a face that moves a little)."""
    import cv2

    from pridss_rt.media import SAMPLE, read_image

    frame = read_image(SAMPLE)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (frame.shape[1], frame.shape[0]))
    for i in range(frames):
        w.write(np.roll(frame, i, axis=1))
    w.release()
    return Path(path)
