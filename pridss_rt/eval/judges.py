"""The judges of an evaluation: the gender attacker (:class:`GenderAttacker`) and identity matcher
(:class:`Matcher`), either the pack's own networks or user ONNX files (:class:`ExternalNet`), fed crops
aligned from the original frame's landmarks (:func:`align_faces`), and the FID feature extractor
(:class:`FidExtractor`). The raw-output -> P(male) rule is :func:`pridss_rt.stages.score.p_male_from_raw`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from pridss_rt.errors import InputError


def _last_op(path: str | os.PathLike, output: str) -> str | None:
    try:
        import onnx

        m = onnx.load(str(path), load_external_data=False)
        for node in reversed(m.graph.node):
            if output in node.output:
                return node.op_type
    except Exception:  # onnx not installed or unreadable: fall back to the output shape
        return None
    return None


def _parse_preprocess(text: str, pre):
    if text == "pack":
        return pre
    try:
        mean, std, order = text.split(",")
        mean_f, std_f = float(mean), float(std)
    except ValueError:
        raise InputError(f"--external-preprocess: expected 'pack' or MEAN,STD,ORDER (e.g. 0.5,0.5,rgb), got '{text}'") from None
    if order not in ("rgb", "bgr") or std_f <= 0:
        raise InputError(f"--external-preprocess: ORDER must be rgb or bgr and STD > 0, got '{text}'")
    return dataclasses.replace(pre, mean=(mean_f,) * 3, std=(std_f,) * 3, channel_order=order)


class ExternalNet:
    """A user-supplied ONNX attacker/matcher on ONNX Runtime (CPU), fed crops aligned to the pack's template
    scaled to the network's input size."""

    def __init__(self, path: str | os.PathLike, pre, threads: int | None, preprocess: str = "pack"):
        from pridss_rt.backends.ort import cpu_session

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: ONNX file not found")
        self.sess = cpu_session(self.path, threads)
        inp = self.sess.get_inputs()[0]
        self.input = inp.name
        self.output = self.sess.get_outputs()[0].name
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise InputError(f"{self.path}: input must be (N, 3, H, W), got {shape}")
        h, w = shape[2], shape[3]
        size = h if isinstance(h, int) and isinstance(w, int) and h == w else pre.crop_size
        base = _parse_preprocess(preprocess, pre)
        self.pre = dataclasses.replace(base, crop_size=int(size),
                                       template=(np.asarray(pre.template, np.float32) * (size / pre.crop_size)).astype(np.float32))

    def run(self, crops: np.ndarray) -> np.ndarray:
        return self.sess.run([self.output], {self.input: crops.astype(np.float32)})[0]


def align_faces(faces: np.ndarray, lms: np.ndarray, pre) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR face images + (N, 5, 2) landmarks -> (N, 3, S, S) network-space crops."""
    from pridss_rt.stages.align import similarity_transform, warp_crops

    out = np.empty((len(faces), 3, pre.crop_size, pre.crop_size), np.float32)
    for i, (f, lm) in enumerate(zip(faces, lms)):
        out[i] = warp_crops(f, [similarity_transform(lm, pre.template)], pre)[0]
    return out


class GenderAttacker:
    def __init__(self, nets, pack, path: str | None, threads, output_kind: str = "auto", male_index: int = 1,
                 preprocess: str = "pack"):
        self.nets, self.pack = nets, pack
        self.ext = ExternalNet(path, pack.preprocess, threads, preprocess) if path else None
        if self.ext is None:
            spec = pack.network("gender")
            self.kind = spec.options.get("output_kind", "probability")
            self.describe = {"source": "pack", "pack": pack.name, "network": spec.file, "output_kind": self.kind,
                             "note": "the pack's own gender classifier: it also scored the K candidates, so it is the "
                                     "classifier the selection optimized against (flatters the anonymized AUC)"}
            return
        self.male_index = male_index
        self.apply_softmax = True  # external 2-class outputs are taken as logits unless the graph ends in Softmax
        kind = output_kind
        last = _last_op(self.ext.path, self.ext.output)
        width = self.ext.sess.get_outputs()[0].shape
        w = width[-1] if len(width) > 1 and isinstance(width[-1], int) else 1
        if kind == "auto":
            if w == 2:
                kind = "softmax2"
            else:
                kind = "probability" if last == "Sigmoid" else "logit"
        if kind == "softmax2":
            self.apply_softmax = last != "Softmax"
        self.kind = kind
        self.describe = {"source": "onnx", "path": str(self.ext.path), "output_kind": kind, "last_op": last,
                         "male_index": male_index if kind == "softmax2" else None,
                         "input_size": self.ext.pre.crop_size, "preprocess": preprocess,
                         "note": "independent attacker given with --attacker-gender"}

    @property
    def name(self) -> str:
        return "pack" if self.ext is None else self.ext.path.stem

    def __call__(self, faces: np.ndarray, lms: np.ndarray) -> np.ndarray:
        from pridss_rt.stages import score

        if self.ext is None:
            return score.p_male(self.nets, align_faces(faces, lms, self.pack.preprocess))
        return score.p_male_from_raw(self.ext.run(align_faces(faces, lms, self.ext.pre)), self.kind,
                                     male_index=self.male_index, apply_softmax=self.apply_softmax)


class Matcher:
    def __init__(self, nets, pack, path: str | None, threads, preprocess: str = "pack"):
        self.nets, self.pack = nets, pack
        self.ext = ExternalNet(path, pack.preprocess, threads, preprocess) if path else None
        self.describe = ({"source": "pack", "pack": pack.name, "network": pack.network("identity").file,
                          "note": "the pack's own identity embedder (also used to pick the candidate): flatters SIM"}
                         if self.ext is None else
                         {"source": "onnx", "path": str(self.ext.path), "input_size": self.ext.pre.crop_size,
                          "preprocess": preprocess, "note": "independent matcher given with --matcher"})

    def __call__(self, faces: np.ndarray, lms: np.ndarray) -> np.ndarray:
        from pridss_rt.stages import score

        if self.ext is None:
            return score.embed(self.nets, align_faces(faces, lms, self.pack.preprocess))
        return score.l2_normalize(self.ext.run(align_faces(faces, lms, self.ext.pre)).reshape(len(faces), -1))


class FidExtractor:
    def __init__(self, path: str | os.PathLike, threads: int | None):
        from pridss_rt.backends.ort import cpu_session

        self.path = Path(path).expanduser()
        self.sess = cpu_session(self.path, threads)
        inp = self.sess.get_inputs()[0]
        self.input = inp.name
        h = inp.shape[2] if len(inp.shape) == 4 else None
        self.size = h if isinstance(h, int) else 299

    def __call__(self, faces_bgr: np.ndarray, batch: int = 8) -> np.ndarray:
        import cv2

        out = []
        for s in range(0, len(faces_bgr), batch):
            x = np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
                          for f in faces_bgr[s:s + batch]]).transpose(0, 3, 1, 2).astype(np.float32)
            out.append(self.sess.run(None, {self.input: x})[0].reshape(len(x), -1))
        return np.concatenate(out).astype(np.float64)
