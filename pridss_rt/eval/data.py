"""The faces of an evaluation: manifest rows (:class:`Item`), loading, their :class:`Placement` in a larger
frame (as a face in a live frame would appear), the detector cache shared by every method on one frame,
and which detection is the placed face (:func:`main_face`)."""

from __future__ import annotations

import csv
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pridss_rt.errors import InputError

FACE_SIZE = 128  # side of every face image (inputs are resized to it, outputs cut back to it)


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
    def make(cls, canvas: int, scale: float) -> Placement:
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


INNER_GROW = 1.3  # the inner face: the hull of the 5 landmarks grown by this factor about their centroid


def inner_face_mask(shape: tuple[int, int], landmarks: np.ndarray, grow: float = INNER_GROW) -> np.ndarray:
    """Boolean (H, W) mask of the inner face (eyes, brows, nose, mouth): the convex hull of the 5 landmarks grown by
    ``grow`` about their centroid, clipped to the image (the audit's and the kept-segments attacker's)."""
    import cv2

    lm = np.asarray(landmarks, np.float64)
    c = lm.mean(0)
    hull = cv2.convexHull(((lm - c) * grow + c).astype(np.float32)).astype(np.int32)
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, hull, 1)
    return m.astype(bool)


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
