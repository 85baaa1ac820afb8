"""Temporal behaviour: an IoU tracker with identity re-checks and landmark smoothing.

Per track the candidate search runs once; later frames reuse the chosen reference (one synthesis per
face per frame, stable output). The search runs again when the face changes a lot: its identity
embedding drifts from the one recorded at the search (a different person stepping into the same place
keeps the IoU match but not the identity), or it was lost for a while.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pridss_rt.stages.detect import Detection, iou  # noqa: F401  (iou: also this module's name for it)


@dataclass
class Track:
    id: int
    box: np.ndarray
    landmarks: np.ndarray
    missed: int = 0
    hits: int = 1
    velocity: np.ndarray | None = None  # box change per frame (x1, y1, x2, y2), smoothed; None until matched twice
    # set by the candidate search
    reference: int | None = None  # bank index of the chosen reference
    embedding: np.ndarray | None = None  # identity embedding of the original at search time
    p_male_before: float | None = None
    p_male_after: float | None = None
    sim: float | None = None
    pic: float | None = None
    p_composite: float | None = None  # the coherence critic's score of the chosen candidate (packs with one)
    extra: dict = field(default_factory=dict)

    @property
    def searched(self) -> bool:
        return self.reference is not None

    def predicted_box(self) -> np.ndarray:
        """Where the face is expected now, ``missed`` frames after it was last seen: the last box moved on by its
        velocity and grown by 10 % of its size per missed frame (the face may have sped up or turned)."""
        box = self.box.astype(np.float64)
        if self.velocity is not None:
            box = box + self.velocity * self.missed
        grow = 0.1 * self.missed * max(box[2] - box[0], box[3] - box[1], 1.0)
        return (box + np.array([-grow, -grow, grow, grow])).astype(np.float32)

    def reset_search(self) -> None:
        self.reference = self.embedding = self.p_male_before = self.p_male_after = self.sim = self.pic = None
        self.p_composite = None


class Tracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10, smoothing: float = 0.6,
                 jump: float = 0.08):
        """``smoothing``: weight of the previous landmarks (0 = none); a landmark jump larger than
        ``jump`` × face size resets the smoothing (real motion, not jitter)."""
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.smoothing = smoothing
        self.jump = jump
        self.tracks: list[Track] = []
        self._next = 1
        self._matched: list[Track] = []  # tracks matched earlier in the current frame (update(..., final=False))

    def reset(self) -> None:
        self.tracks, self._next, self._matched = [], 1, []

    def update(self, dets: list[Detection], final: bool = True) -> list[Track]:
        """Match detections to tracks (greedy by IoU); returns the track of each detection, in order.

        A frame's detections may come in two calls: ``final=False`` for the first part (no track ages yet), then
        the rest with ``final=True``, which matches only tracks the first part left unmatched and then ages the
        tracks no part of the frame matched."""
        free = [t for t in self.tracks if all(t is not m for m in self._matched)]
        pairs = sorted(((iou(t.box, d.box), ti, di) for ti, t in enumerate(free) for di, d in enumerate(dets)),
                       reverse=True)
        used_t, assigned = set(), {}
        for score, ti, di in pairs:
            if score < self.iou_threshold:
                break
            if ti in used_t or di in assigned:
                continue
            used_t.add(ti)
            assigned[di] = free[ti]
        out = []
        for di, d in enumerate(dets):
            t = assigned.get(di)
            if t is None:
                t = Track(self._next, d.box.copy(), d.landmarks.copy())
                self._next += 1
                self.tracks.append(t)
            else:
                size = max(d.size, 1.0)
                moved = np.abs(d.landmarks - t.landmarks).max() / size
                a = self.smoothing if moved < self.jump else 0.0
                t.landmarks = (a * t.landmarks + (1 - a) * d.landmarks).astype(np.float32)
                v = (d.box - t.box) / (t.missed + 1)
                t.velocity = v if t.velocity is None else 0.5 * t.velocity + 0.5 * v
                t.box = d.box.copy()
                t.missed = 0
                t.hits += 1
            out.append(t)
        if not final:
            self._matched += out
            return out
        seen, self._matched = self._matched + out, []
        for t in self.tracks:
            if all(t is not o for o in seen):
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def lost(self, frames: int) -> list[Track]:
        """Tracks not matched in the last 1..``frames`` frames (call after a frame's final update)."""
        return [t for t in self.tracks if 1 <= t.missed <= frames]
