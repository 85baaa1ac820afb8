"""``pridss_rt.Anonymizer``: every face in a frame comes out gender-private, recognizable and realistic,
and no face that was detected is ever shown raw.

The stages run in data-flow order, one module each: detect → align → encode → fuse → synthesize →
score/select → blend. Per face (and per track in a stream) the K-candidate search runs once; later
frames reuse the chosen reference.

Fail-closed: a detected face that could not be anonymized — too small, extreme pose, any stage error —
is pixelated; when detection itself fails the whole frame is pixelated. There is no option to turn
this off.

Thread-safety: one ``Anonymizer`` holds per-stream state (tracks) and is not thread-safe: use one
instance per stream/thread (sessions of the same pack may be shared read-only by ONNX Runtime, but
each Anonymizer loads its own).
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from pridss_rt.backends import Networks, open_networks
from pridss_rt.errors import InputError, PridssError
from pridss_rt.pack import ModelPack, _is_num, load_pack
from pridss_rt.stages import align, blend, score
from pridss_rt.stages.detect import Detection, make_detector
from pridss_rt.stages.encode import encode
from pridss_rt.stages.fuse import ReferenceBank, fuse
from pridss_rt.stages.synthesize import synthesize
from pridss_rt.stages.track import Track, Tracker

log = logging.getLogger("pridss_rt")

MAX_PIXELS = 8192 * 8192  # larger frames are refused with a clear error
STAGES = ("detect", "align", "encode", "search", "synthesize", "blend")


@dataclass
class FaceResult:
    """What happened to one detected face."""

    box: list[float]  # x1, y1, x2, y2
    track_id: int
    status: str  # "anonymized" | "pixelated"
    reason: str = ""  # why it was pixelated
    reference: int | None = None  # bank index of the chosen reference
    p_male_before: float | None = None
    p_male_after: float | None = None
    sim: float | None = None
    pic: float | None = None  # PIC of the chosen candidate (+ coherence_weight x p_composite when used)
    p_composite: float | None = None  # the coherence critic's P(composite) of it (packs with a critic)
    searched: bool = False  # the K-candidate search ran on this frame

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def as_bgr(frame: Any) -> tuple[np.ndarray, str]:
    """Validate a frame; return a BGR uint8 view/copy and its layout ('bgr', 'gray', 'gray1', 'bgra')."""
    import cv2

    if frame is None:
        raise InputError("frame is None (a failed read? check the file/camera)")
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array (H, W, 3) uint8 BGR, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame must be uint8, got {frame.dtype} (convert with np.clip(x, 0, 255).astype(np.uint8))")
    if frame.size == 0:
        raise InputError(f"frame is empty (shape {frame.shape})")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), "gray"
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise InputError(f"frame must be (H, W, 3) BGR, (H, W) gray or (H, W, 4) BGRA, got shape {frame.shape}")
    if frame.shape[0] * frame.shape[1] > MAX_PIXELS:
        raise InputError(f"frame {frame.shape[1]}x{frame.shape[0]} is larger than {MAX_PIXELS} pixels")
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR), "gray1"
    if frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3]), "bgra"
    return np.ascontiguousarray(frame), "bgr"


def from_bgr(out: np.ndarray, layout: str, original: np.ndarray) -> np.ndarray:
    """Back to the caller's layout (alpha channel kept)."""
    import cv2

    if layout == "gray":
        return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    if layout == "gray1":
        return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[:, :, None]
    if layout == "bgra":
        res = original.copy()
        res[:, :, :3] = out
        return res
    return out


class Anonymizer:
    """Gender-private face anonymization for frames and streams.

    >>> with Anonymizer() as anon:                       # demo pack, fastest backend here
    ...     out, faces = anon.process(frame_bgr)
    """

    def __init__(self, pack: str | os.PathLike | ModelPack = "demo", backend: str = "auto", candidates: int | None = None,
                 *, detector: Any = "mtcnn", min_face: int = 32, min_anonymize: int = 24,
                 max_align_error: float | None = None, color_match: bool = True, track: bool = True,
                 reid_threshold: float = 0.5, engines_root: str | os.PathLike | None = None,
                 threads: int | None = None, networks: Networks | None = None, gpu_frames: bool | None = None,
                 coherence_weight: float | None = None):
        """
        pack: pack name or folder (default: the demo pack shipped in the package).
        backend: auto | trt | ort-trt | ort-cuda | ort-cpu (auto picks the fastest that works, see ``.backend``).
        candidates: K opposite-gender references tried per face (default: the pack's).
        detector: "mtcnn" (default), the path of a YuNet .onnx file, or an object with ``detect(frame)``.
        min_face: smallest face the default detector looks for (pixels).
        min_anonymize: detected faces smaller than this are pixelated instead of synthesized.
        max_align_error: RMS landmark misfit (in crop pixels) above which a face counts as an extreme
            pose and is pixelated (default: 10 % of the crop size).
        color_match: shift the synthesized face's mean colour to the original's (hides seams).
        track: reuse each track's chosen reference across frames (streams); False = search every frame.
        reid_threshold: identity similarity to the track's searched face below which the search reruns.
        gpu_frames: keep frames on the GPU (upload once, warp and paste-back kernels; ``pridss_rt.executors.device``).
            None = when the backend is ``trt`` and the native CUDA library loads; True = require it.
        coherence_weight: weight of the pack's coherence critic, P(composite), added to PIC when choosing
            among the K candidates (default: the pack's; 0 = PIC alone; > 0 needs a ``coherence`` network).
        """
        self.pack = load_pack(pack)
        self.nets = networks or open_networks(self.pack, backend, engines_root=engines_root, threads=threads)
        self.backend = self.nets.backend
        self.candidates = int(candidates or self.pack.candidates)
        if self.candidates < 1:
            raise InputError(f"candidates must be >= 1, got {self.candidates}")
        cw = self.pack.coherence_weight if coherence_weight is None else coherence_weight
        if not _is_num(cw) or not np.isfinite(cw) or cw < 0:  # the rule the pack's own value obeys
            raise InputError(f"coherence_weight must be a non-negative number, got {cw!r}")
        if cw > 0 and "coherence" not in self.nets:
            raise InputError(f"coherence_weight {cw:g} needs a pack with a 'coherence' network; pack "
                             f"'{self.pack.name}' has none (pass coherence_weight=0)")
        self.coherence_weight = float(cw)
        self.detector = make_detector(detector, min_face_size=min_face, threads=threads) \
            if detector == "mtcnn" else make_detector(detector)
        self.min_anonymize = min_anonymize
        s = self.pack.preprocess.crop_size
        self.max_align_error = max_align_error if max_align_error is not None else 0.10 * s
        self.color_match = color_match
        self.track = track
        self.reid_threshold = reid_threshold
        self.bank = ReferenceBank(self.pack)
        self.mask = blend.face_mask(self.pack)
        self.tracker = Tracker()
        self.stats: dict[str, int] = defaultdict(int)
        self.timings: dict[str, deque] = {k: deque(maxlen=2000) for k in STAGES + ("total",)}
        self._fail_stage: str | None = None  # tests: force a stage to fail
        self.gpu = None
        if gpu_frames or (gpu_frames is None and self.backend == "trt"):
            try:
                from pridss_rt.executors.device import GpuFramePath

                self.gpu = GpuFramePath(self.nets, self.pack, self.mask)
            except Exception as exc:
                if gpu_frames:
                    self.close()
                    raise
                log.warning("pridss-rt: GPU frame path unavailable, frames go through the host: %s", exc)
        log.info("pridss-rt: pack %s, backend %s, K=%d", self.pack.name, self.backend, self.candidates)

    # ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the backend's resources (device buffers, sessions)."""
        if getattr(self, "gpu", None) is not None:
            self.gpu.close()
            self.gpu = None
        if getattr(self, "nets", None) is not None:
            self.nets.close()
            self.nets = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if getattr(self, "nets", None) is None:
            return f"<Anonymizer pack {self.pack.name} {self.pack.version}, closed>"
        return (f"<Anonymizer pack {self.pack.name} {self.pack.version} on {self.backend}, K={self.candidates}, "
                f"coherence weight {self.coherence_weight:g}, detector {type(self.detector).__name__}, "
                f"frames on {'GPU' if self.gpu is not None else 'host'}>")

    def __enter__(self) -> "Anonymizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Forget all tracks (call between unrelated images or videos)."""
        self.tracker.reset()

    def _stage(self, name: str) -> None:
        if self._fail_stage == name:
            raise RuntimeError(f"forced failure in stage '{name}'")

    def _t(self, name: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.timings[name].append((t1 - t0) * 1000.0)
        return t1

    # ------------------------------------------------------------------------------------------------
    def process(self, frame: np.ndarray) -> tuple[np.ndarray, list[FaceResult]]:
        """Anonymize every face of ``frame`` (uint8 BGR (H, W, 3); gray and BGRA are accepted and returned in
        the same layout). Returns ``(new_frame, faces)``; the input array is not modified."""
        if self.nets is None:
            raise PridssError("this Anonymizer was closed")
        bgr, layout = as_bgr(frame)
        out = bgr.copy()
        t_start = t0 = time.perf_counter()
        self.stats["frames"] += 1
        slot = None
        if self.gpu is not None:
            try:  # the upload runs on its own stream while the host detects
                slot = self.gpu.upload(bgr)
            except Exception as exc:
                log.warning("pridss-rt: frame upload failed, host path for this frame: %s", exc)
        try:
            self._stage("detect")
            dets = self.detector.detect(bgr)
        except Exception as exc:  # cannot know where the faces are: hide everything
            log.warning("pridss-rt: detection failed, whole frame pixelated: %s", exc)
            blend.pixelate(out)
            self.stats["frames_failed_closed"] += 1
            self.timings["total"].append((time.perf_counter() - t_start) * 1000.0)
            return from_bgr(out, layout, frame), []
        t0 = self._t("detect", t0)
        tracks = self.tracker.update(dets) if self.track else [Track(i + 1, d.box, d.landmarks) for i, d in enumerate(dets)]
        results = [FaceResult([round(float(v), 1) for v in d.box], t.id, "pixelated") for d, t in zip(dets, tracks)]
        todo = self._align(dets, tracks, results)
        t0 = self._t("align", t0)
        if todo:
            try:
                if slot is not None and self._fits_gpu(todo, tracks):
                    self._stage("encode")
                    out, t0 = self._anonymize_gpu(slot, todo, tracks, results, t0)
                else:
                    t0 = self._anonymize(bgr, out, todo, tracks, results, t0)
            except Exception as exc:
                out = bgr.copy()  # nothing half-done reaches the caller: start from the input again
                log.warning("pridss-rt: anonymization failed, %d face(s) pixelated: %s", len(todo), exc)
                for i, _ in todo:
                    results[i].status, results[i].reason = "pixelated", f"stage error: {exc}"
        for r, d in zip(results, dets):
            if r.status != "anonymized":
                blend.pixelate(out, blend.expand_box(d.box, out.shape))
                self.stats["faces_pixelated"] += 1
            else:
                self.stats["faces_anonymized"] += 1
        self.timings["total"].append((time.perf_counter() - t_start) * 1000.0)
        return from_bgr(out, layout, frame), results

    def _align(self, dets: list[Detection], tracks: list[Track], results: list[FaceResult]) -> list[tuple[int, np.ndarray]]:
        """(index, matrix) of the faces fit for synthesis; the others get their reason."""
        tpl = self.pack.preprocess.template
        todo = []
        for i, (d, t) in enumerate(zip(dets, tracks)):
            try:
                self._stage("align")
                if d.size < self.min_anonymize:
                    results[i].reason = f"face too small ({d.size:.0f} px < {self.min_anonymize})"
                    continue
                lm = t.landmarks if self.track else d.landmarks
                if not np.all(np.isfinite(lm)):
                    results[i].reason = "invalid landmarks"
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

    def _needs_search(self, idx: list[int], tracks: list[Track], emb: np.ndarray) -> list[int]:
        """Positions (into ``idx``) of the faces whose K-candidate search must run on this frame."""
        need = []
        for j, i in enumerate(idx):
            t = tracks[i]
            if not self.track or not t.searched:
                need.append(j)
            elif float(emb[j] @ t.embedding) < self.reid_threshold:  # a different face at this place
                self.stats["researches"] += 1
                t.reset_search()
                need.append(j)
        return need

    def _candidates(self, need: list[int], z: np.ndarray, p0: np.ndarray, idx: list[int], mats: list[np.ndarray],
                    tracks: list[Track]) -> tuple[list[np.ndarray], np.ndarray]:
        """References per searched face and the fused latents of all candidates (face-major). The faces'
        landmarks in their aligned crops let the bank weigh head pose (packs with ``pose_weight``)."""
        refs = [self.bank.choose(z[j], p0[n], self.candidates, align.transform_points(mats[j], tracks[idx[j]].landmarks))
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

    def _fits_gpu(self, todo, tracks: list[Track]) -> bool:
        """The device path runs whole batches within the engines' profiles; larger frames use the host path."""
        n_search = sum(1 for i, _ in todo if not (self.track and tracks[i].searched))
        rows = n_search * self.candidates + (len(todo) - n_search)
        return (len(todo) <= min(self.gpu.max_faces, self.nets["encoder"].max_batch)
                and rows <= min(self.nets["synthesis"].max_batch, 16 * self.gpu.max_faces))

    def _anonymize_gpu(self, slot, todo, tracks: list[Track], results: list[FaceResult], t0: float):
        """Same decisions as :meth:`_anonymize`, with the frame and crops kept on the GPU."""
        gpu = self.gpu
        idx = [i for i, _ in todo]
        mats = [m for _, m in todo]
        z, emb = gpu.encode(slot, mats)
        t0 = self._t("encode", t0)
        need = self._needs_search(idx, tracks, emb)
        reuse = [j for j in range(len(idx)) if j not in need]
        parts, refs, p0 = [], [], None
        if need:
            self._stage("search")
            p0 = score.p_male_from_output(gpu.gender_of_crops(len(idx)), self.nets["gender"].spec.options)[need]
            refs, fused = self._candidates(need, z, p0, idx, mats, tracks)
            parts.append(fused)
        if reuse:
            self._stage("synthesize")
            ref_idx = np.array([tracks[idx[j]].reference for j in reuse])
            parts.append(fuse(self.nets, self.pack, z[reuse], self.bank.get(ref_idx)))
        latents = np.concatenate(parts)
        gpu.synthesize(latents)  # candidates first, then one row per tracked face: one call
        self.stats["syntheses"] += len(latents)
        rows: dict[int, int] = {}
        if need:
            n_cand = len(parts[0])
            graw, e, comp = gpu.score_candidates(n_cand, coherence=self.coherence_weight > 0)
            p = score.p_male_from_output(graw, self.nets["gender"].spec.options)
            rows = self._choose(need, refs, p0, p, e, emb, idx, tracks, results, comp)
            t0 = self._t("search", t0)
        base = len(parts[0]) if need else 0
        rows.update({j: base + n for n, j in enumerate(reuse)})
        self._stage("blend")
        gpu.paste(slot, [rows[j] for j in range(len(idx))], mats)
        out = gpu.download(slot)
        self._record(todo, tracks, results)
        return out, self._t("blend", t0)

    def _anonymize(self, frame: np.ndarray, out: np.ndarray, todo: list[tuple[int, np.ndarray]],
                   tracks: list[Track], results: list[FaceResult], t0: float) -> float:
        pre = self.pack.preprocess
        idx = [i for i, _ in todo]
        mats = [m for _, m in todo]
        crops = align.warp_crops(frame, mats, pre)
        self._stage("encode")
        z = encode(self.nets, crops)
        emb = score.embed(self.nets, crops)
        t0 = self._t("encode", t0)
        need = self._needs_search(idx, tracks, emb)
        chosen_img: dict[int, np.ndarray] = {}
        if need:
            self._stage("search")
            p0 = score.p_male(self.nets, crops[need])
            refs, fused = self._candidates(need, z, p0, idx, mats, tracks)
            imgs = synthesize(self.nets, fused)
            self.stats["syntheses"] += len(imgs)
            comp = score.p_composite(self.nets, imgs) if self.coherence_weight > 0 else None
            rows = self._choose(need, refs, p0, score.p_male(self.nets, imgs), score.embed(self.nets, imgs), emb,
                                idx, tracks, results, comp)
            chosen_img.update({j: imgs[r] for j, r in rows.items()})
            t0 = self._t("search", t0)
        reuse = [j for j in range(len(idx)) if j not in chosen_img]
        if reuse:
            self._stage("synthesize")
            refs = np.array([tracks[idx[j]].reference for j in reuse])
            imgs = synthesize(self.nets, fuse(self.nets, self.pack, z[reuse], self.bank.get(refs)))
            self.stats["syntheses"] += len(imgs)
            chosen_img.update({j: imgs[n] for n, j in enumerate(reuse)})
            t0 = self._t("synthesize", t0)
        self._stage("blend")
        gen = align.to_uint8(np.stack([chosen_img[j] for j in range(len(idx))]), pre)
        orig = align.to_uint8(crops, pre) if self.color_match else None
        for j, m in enumerate(mats):
            g = blend.color_match(gen[j], orig[j], self.mask) if orig is not None else gen[j]
            blend.paste(out, g, self.mask, m)
        self._record(todo, tracks, results)
        return self._t("blend", t0)
