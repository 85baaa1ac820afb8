"""The frame loop, written once: detect → align → encode → fuse → synthesize → score/select → blend.

:class:`FramePipeline` decides everything that depends on the data — which faces are fit for synthesis,
which run the K-candidate search and which reuse their track's reference, which candidate wins, how a
failure turns into pixelation, and what goes into each :class:`~pridss_rt.pipeline.results.FaceResult`.
The pixel and network work is done by an executor (:mod:`pridss_rt.executors`): the host executor, or the
device executor when the frame's faces fit its buffers. Both run the same stage operations, so every
stage (colour matching included) behaves the same on both.

Fail-closed: a detected face that could not be anonymized — too small, extreme pose, any stage error —
is pixelated; when detection itself fails the whole frame is pixelated.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import Any

import numpy as np

from pridss_rt.backends import Networks
from pridss_rt.executors.base import Executor
from pridss_rt.pack import ModelPack
from pridss_rt.pipeline.config import AlignConfig, BlendConfig, TrackingConfig
from pridss_rt.pipeline.frames import as_bgr, from_bgr
from pridss_rt.pipeline.results import FaceResult, FrameStatus
from pridss_rt.stages import align, blend, score
from pridss_rt.stages.detect import Detection, inside_share, merge_detections, plausible
from pridss_rt.stages.fuse import ReferenceBank, fuse
from pridss_rt.stages.track import Track, Tracker

log = logging.getLogger("pridss_rt")

STAGES = ("detect", "align", "encode", "search", "synthesize", "blend")


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of boxes ``a`` and ``b`` (x1, y1, x2, y2) over the smaller one's area."""
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    area = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / max(area, 1e-9))


class FramePipeline:
    """Per-stream state (tracks, counters, stage timings) and the frame loop over one or two executors."""

    def __init__(self, pack: ModelPack, nets: Networks, detector: Any, *, candidates: int, coherence_weight: float,
                 align_cfg: AlignConfig, tracking: TrackingConfig, blend_cfg: BlendConfig, host: Executor,
                 device: Executor | None = None, reference_gender: str = "opposite", seed: int = 0):
        self.pack, self.nets, self.detector = pack, nets, detector
        self.candidates, self.coherence_weight = candidates, coherence_weight
        self.align_cfg, self.tracking, self.blend_cfg = align_cfg, tracking, blend_cfg
        s = pack.preprocess.crop_size
        self.max_align_error = align_cfg.max_error if align_cfg.max_error is not None else 0.10 * s
        self.host, self.device = host, device
        self.reference_gender = reference_gender
        self._draw = np.random.default_rng(seed)  # reference_gender "random": one draw per search
        self.bank = ReferenceBank(pack)
        self.tracker = Tracker()
        self.stats: dict[str, int] = defaultdict(int)
        self.last_frame = FrameStatus()
        self.timings: dict[str, deque] = {k: deque(maxlen=2000) for k in STAGES + ("total",)}

    def _t(self, name: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.timings[name].append((t1 - t0) * 1000.0)
        return t1

    # ------------------------------------------------------------------------------------------------
    def process(self, frame: np.ndarray) -> tuple[np.ndarray, list[FaceResult]]:
        bgr, layout = as_bgr(frame)
        t_start = t0 = time.perf_counter()
        self.stats["frames"] += 1
        self.last_frame = FrameStatus()
        on_device = None
        if self.device is not None:
            try:  # the upload runs on its own stream while the host detects
                on_device = self.device.begin(bgr)
            except Exception as exc:
                log.warning("pridss-rt: frame upload failed, host executor for this frame: %s", exc)
        split = getattr(self.detector, "detect_split", None)
        try:
            dets, late = split(bgr) if split else (self.detector.detect(bgr), None)
        except Exception as exc:  # cannot know where the faces are: hide everything
            return self._fail_frame(bgr, layout, frame, exc, t_start)
        t_detect = time.perf_counter() - t0
        if late is not None:  # the rotated passes run on while the upright faces with plausible points go first
            ok = [plausible(d.box, d.landmarks) == "" for d in dets]
            first = [d for d, g in zip(dets, ok) if g]
            held = [d for d, g in zip(dets, ok) if not g]
        else:
            first, held = dets, []
        out, results = self._round(bgr, bgr, first, on_device, final=late is None)
        dets = first
        if late is not None:
            t1 = time.perf_counter()
            try:
                extra = late()
            except Exception as exc:
                if self.tracking.enabled:
                    self.tracker.update([], final=True)  # close the frame the first part opened
                return self._fail_frame(bgr, layout, frame, exc, t_start)
            t_detect += time.perf_counter() - t1
            rest = merge_detections(held + extra, keep=first)  # a face the upright pass found well stays its own
            if rest or self.tracking.enabled:
                out2, results2 = self._round(bgr, bgr if out is None else out, rest, None, final=True)
                out = out2 if out2 is not None else out
                dets, results = first + rest, results + results2
        self.timings["detect"].append(t_detect * 1000.0)
        if out is None:
            out = bgr.copy()
        for r, d in zip(results, dets):
            if r.status != "anonymized":
                blend.pixelate_face(out, d.box)
                self.stats["faces_pixelated"] += 1
            else:
                self.stats["faces_anonymized"] += 1
        if self.tracking.enabled and self.tracking.hold:
            results = results + self._hold(out)
        self.timings["total"].append((time.perf_counter() - t_start) * 1000.0)
        return from_bgr(out, layout, frame), results

    def _hold(self, out: np.ndarray) -> list[FaceResult]:
        """Pixelate, in ``out``, where each track lost in the last ``hold`` frames is expected (fail closed: a face
        the detector stopped finding, e.g. more than half outside the frame, is not shown raw); their results. A
        lost track whose place a face of this frame mostly covers (a face that grew or jumped past the tracker's
        IoU match and got a new track) is not held: that face is there, handled."""
        held = []
        found = [t.box for t in self.tracker.tracks if t.missed == 0]
        for t in self.tracker.lost(self.tracking.hold):
            box = t.predicted_box()
            if any(_overlap_of_smaller(b, box) >= 0.5 for b in found):  # found again here under a new track (it jumped)
                continue
            x1, y1, x2, y2 = blend.pixelate_face(out, box)
            if x2 <= x1 or y2 <= y1:  # gone past the frame edge: nothing was pixelated
                continue
            self.stats["faces_held"] += 1
            held.append(FaceResult([round(float(v), 1) for v in box], t.id, "pixelated",
                                   f"not detected in this frame: held where its track was heading ({t.missed} of "
                                   f"{self.tracking.hold} frames)", held=True))
        return held

    def _fail_frame(self, bgr, layout, frame, exc: Exception, t_start: float):
        log.warning("pridss-rt: detection failed, whole frame pixelated: %s", exc)
        self.last_frame = FrameStatus(True, f"detection failed: {exc}")
        out = bgr.copy()
        blend.pixelate(out)
        self.stats["frames_failed_closed"] += 1
        self.timings["total"].append((time.perf_counter() - t_start) * 1000.0)
        return from_bgr(out, layout, frame), []

    def _round(self, bgr: np.ndarray, src: np.ndarray, dets: list[Detection], on_device: Any,
               final: bool) -> tuple[np.ndarray | None, list[FaceResult]]:
        """Stages 2-7 for ``dets`` on ``src`` (``bgr``, or a frame whose other faces are already done): tracks,
        results, and the frame with the anonymized faces (None when none was; not yet pixelated)."""
        t0 = time.perf_counter()
        track = self.tracking.enabled
        tracks = self.tracker.update(dets, final=final) if track else \
            [Track(i + 1, d.box, d.landmarks) for i, d in enumerate(dets)]
        results = [FaceResult([round(float(v), 1) for v in d.box], t.id, "pixelated") for d, t in zip(dets, tracks)]
        todo = self._align(dets, tracks, results, bgr.shape)
        if dets or final:  # one entry per frame unless both parts have faces
            t0 = self._t("align", t0)
        out = None
        if todo:
            n_search = sum(1 for i, _ in todo if not (track and tracks[i].searched))
            rows = n_search * self.candidates + (len(todo) - n_search)
            try:
                if on_device is not None and self.device.fits(len(todo), rows):
                    ex, state = self.device, on_device
                else:
                    ex, state = self.host, self.host.begin(src)
                t0 = self._anonymize(ex, state, todo, tracks, results, t0)
                out = ex.result(state)
            except Exception as exc:
                out = None  # nothing half-done reaches the caller: start from the input again
                log.warning("pridss-rt: anonymization failed, %d face(s) pixelated: %s", len(todo), exc)
                for i, _ in todo:
                    results[i].status, results[i].reason = "pixelated", f"stage error: {exc}"
        return out, results

    # ---- stage 2: which faces are fit for synthesis -------------------------------------------------
    def _align(self, dets: list[Detection], tracks: list[Track], results: list[FaceResult],
               shape: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
        """(index, matrix) of the faces fit for synthesis; the others get their reason."""
        tpl = self.pack.preprocess.template
        min_size = self.align_cfg.min_size
        todo = []
        for i, (d, t) in enumerate(zip(dets, tracks)):
            try:
                if d.size < min_size:
                    results[i].reason = f"face too small ({d.size:.0f} px < {min_size})"
                    continue
                share = inside_share(d.box, shape[1], shape[0])
                if share < self.align_cfg.min_inside:
                    results[i].reason = (f"cut by the frame edge ({share:.0%} of the face box inside < "
                                         f"{self.align_cfg.min_inside:.0%})")
                    continue
                lm = t.landmarks if self.tracking.enabled else d.landmarks
                if not np.all(np.isfinite(lm)):
                    results[i].reason = "invalid landmarks"
                    continue
                why = plausible(d.box, lm)
                if why:  # e.g. a face rotated 90 degrees with its points on a cheek: never "anonymized"
                    results[i].reason = f"implausible landmarks ({why})"
                    continue
                m = align.similarity_transform(lm, tpl)
                err = align.alignment_error(m, lm, tpl)
                if err > self.max_align_error:
                    results[i].reason = f"extreme pose (landmark misfit {err:.1f} px)"
                    continue
                todo.append((i, m))
            except Exception as exc:
                results[i].reason = f"stage error: {exc}"
        return todo

    # ---- stages 3-7 on an executor ------------------------------------------------------------------
    def _anonymize(self, ex: Executor, state: Any, todo: list[tuple[int, np.ndarray]], tracks: list[Track],
                   results: list[FaceResult], t0: float) -> float:
        idx = [i for i, _ in todo]
        mats = [m for _, m in todo]
        z, emb = ex.encode(state, mats)
        t0 = self._t("encode", t0)
        need = self._needs_search(idx, tracks, emb)
        reuse = [j for j in range(len(idx)) if j not in need]
        parts, refs, p0 = [], [], None
        if need:
            p0 = ex.p_male_of_crops(state, need)
            refs, fused = self._candidates(need, z, p0, idx, mats, tracks)
            parts.append(fused)
        if reuse:
            ref_idx = np.array([tracks[idx[j]].reference for j in reuse])
            parts.append(fuse(self.nets, self.pack, z[reuse], self.bank.get(ref_idx)))
        latents = np.concatenate(parts)
        owners = [j for n, j in enumerate(need) for _ in refs[n]] + reuse
        ex.synthesize(state, latents, owners)  # the candidates first, then one row per tracked face: one call
        self.stats["syntheses"] += len(latents)
        n_cand = len(parts[0]) if need else 0
        rows: dict[int, int] = {}
        if need:
            p, e, comp = ex.score(state, n_cand, self.coherence_weight > 0)
            if not (np.all(np.isfinite(p)) and np.all(np.isfinite(e)) and (comp is None or np.all(np.isfinite(comp)))):
                raise FloatingPointError("non-finite network output: candidate scores")  # -> every face pixelated
            rows = self._choose(need, refs, p0, p, e, emb, idx, tracks, results, comp)
            t0 = self._t("search", t0)
        else:
            t0 = self._t("synthesize", t0)
        rows.update({j: n_cand + n for n, j in enumerate(reuse)})
        ex.paste(state, [rows[j] for j in range(len(idx))], mats)
        self._record(todo, tracks, results)
        return self._t("blend", t0)

    def _needs_search(self, idx: list[int], tracks: list[Track], emb: np.ndarray) -> list[int]:
        """Positions (into ``idx``) of the faces whose K-candidate search must run on this frame."""
        need = []
        for j, i in enumerate(idx):
            t = tracks[i]
            if not self.tracking.enabled or not t.searched:
                need.append(j)
            elif float(emb[j] @ t.embedding) < self.tracking.reid_threshold:  # a different face at this place
                self.stats["researches"] += 1
                t.reset_search()
                need.append(j)
        return need

    def _candidates(self, need: list[int], z: np.ndarray, p0: np.ndarray, idx: list[int], mats: list[np.ndarray],
                    tracks: list[Track]) -> tuple[list[np.ndarray], np.ndarray]:
        """References per searched face and the fused latents of all candidates (face-major). The faces'
        landmarks in their aligned crops let the bank weigh head pose (packs with ``pose_weight``)."""
        refs = [self.bank.choose(z[j], p0[n], self.candidates, align.transform_points(mats[j], tracks[idx[j]].landmarks),
                                 want_male=(bool(self._draw.random() < 0.5) if self.reference_gender == "random" else None),
                                 both=self.reference_gender == "both")
                for n, j in enumerate(need)]
        orig = np.concatenate([np.repeat(z[j][None], len(r), 0) for j, r in zip(need, refs)])
        return refs, fuse(self.nets, self.pack, orig, self.bank.get(np.concatenate(refs)))

    def _choose(self, need: list[int], refs: list[np.ndarray], p0: np.ndarray, p: np.ndarray, e: np.ndarray,
                emb: np.ndarray, idx: list[int], tracks: list[Track], results: list[FaceResult],
                comp: np.ndarray | None = None) -> dict[int, int]:
        """Argmin-PIC (plus the coherence term when ``comp`` is given) per searched face; records it on the
        track. Returns position -> candidate row."""
        rows, start = {}, 0
        w = self.coherence_weight
        for n, j in enumerate(need):
            sl = slice(start, start + len(refs[n]))
            sims = e[sl] @ emb[j]
            c = None if comp is None else comp[sl]
            best = score.select(p[sl], sims, c, w)
            t = tracks[idx[j]]
            t.reference, t.embedding = int(refs[n][best]), emb[j].copy()
            t.p_male_before, t.p_male_after = float(p0[n]), float(p[sl][best])
            t.sim = float(sims[best])
            t.pic = float(score.pic(p[sl][best], sims[best], None if c is None else c[best], w))
            t.p_composite = None if c is None else float(c[best])
            rows[j] = start + best
            results[idx[j]].searched = True
            start += len(refs[n])
        self.stats["searches"] += len(need)
        return rows

    def _record(self, todo, tracks: list[Track], results: list[FaceResult]) -> None:
        for i, _ in todo:
            t, r = tracks[i], results[i]
            r.status, r.reference = "anonymized", t.reference
            r.p_male_before, r.p_male_after, r.sim, r.pic = t.p_male_before, t.p_male_after, t.sim, t.pic
            r.p_composite = t.p_composite
