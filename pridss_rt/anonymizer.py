"""``pridss_rt.Anonymizer``: every face in a frame comes out gender-private, recognizable and realistic,
and no face that was detected is ever shown raw.

The Anonymizer opens a pack on a backend, builds the detector and the executors, and hands every frame to
the one frame loop (:class:`~pridss_rt.pipeline.orchestrator.FramePipeline`). Its options are grouped by the
stage they steer (:mod:`pridss_rt.pipeline.config`), as insightface's ``FaceAnalysis`` and DeepPrivacy2's
``Anonymizer(detector, ...)`` group theirs.

Thread-safety: one ``Anonymizer`` holds per-stream state (tracks) and is not thread-safe: use one
instance per stream/thread (each Anonymizer loads its own sessions).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from pridss_rt.backends import Networks, open_networks
from pridss_rt.errors import InputError, PridssError
from pridss_rt.executors.host import HostExecutor
from pridss_rt.pack import ModelPack, load_pack, weight_problem
from pridss_rt.pack.spec import region_problem
from pridss_rt.pipeline.config import (
    MAX_HOLD,
    REFERENCE_GENDERS,
    default_reference_gender,
    AlignConfig,
    BlendConfig,
    DetectorConfig,
    SearchConfig,
    TrackingConfig,
)
from pridss_rt.pipeline.frames import as_bgr, from_bgr  # noqa: F401  (public names of this module)
from pridss_rt.pipeline.orchestrator import STAGES, FramePipeline  # noqa: F401
from pridss_rt.pipeline.results import FaceResult, FrameStatus
from pridss_rt.stages import blend
from pridss_rt.stages.detect import RotationRobustDetector, make_detector

log = logging.getLogger("pridss_rt")

__all__ = ["Anonymizer", "FaceResult", "FrameStatus", "DetectorConfig", "AlignConfig", "SearchConfig", "TrackingConfig",
           "BlendConfig"]

# keyword arguments of 0.1.0, accepted for one release: old name -> (group, field)
_LEGACY = {"candidates": ("search", "candidates"), "coherence_weight": ("search", "coherence_weight"),
           "min_face": ("detector", "min_face"), "min_anonymize": ("align", "min_size"),
           "max_align_error": ("align", "max_error"), "color_match": ("blend", "color_match"),
           "track": ("tracking", "enabled"), "reid_threshold": ("tracking", "reid_threshold"),
           "gpu_frames": (None, "device_frames")}


def _as(cls, value, name: str):
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise InputError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
    return value


class Anonymizer:
    """Gender-private face anonymization for frames and streams.

    >>> with Anonymizer() as anon:                       # demo pack, fastest backend here
    ...     out, faces = anon.process(frame_bgr)
    >>> Anonymizer("demo", "ort-cpu", search=SearchConfig(candidates=8), tracking=False)
    """

    def __init__(self, pack: str | os.PathLike | ModelPack = "demo", backend: str = "auto", *,
                 detector: str | os.PathLike | DetectorConfig | Any = "mtcnn", search: SearchConfig | None = None,
                 tracking: TrackingConfig | bool | None = None, align: AlignConfig | None = None,
                 blend: BlendConfig | None = None, engines_root: str | os.PathLike | None = None,
                 threads: int | None = None, networks: Networks | None = None, device_frames: bool | None = None,
                 **legacy: Any):
        """
        pack: pack name or folder (default: the demo pack shipped in the package), or a loaded ModelPack.
        backend: auto | trt | ort-trt | ort-cuda | ort-cpu (auto picks the fastest that works, see ``.backend``).
        detector: "mtcnn" (default), a YuNet .onnx path, an object with ``detect(frame)``, or a DetectorConfig.
        search: K candidates and the coherence critic's weight (SearchConfig; default: the pack's).
        tracking: reuse each track's chosen reference across frames (TrackingConfig; False = search every frame).
        align: which faces are fit for synthesis (AlignConfig: minimum size, maximum landmark misfit).
        blend: how the chosen face goes back into the frame (BlendConfig: colour matching).
        engines_root, threads, networks: where TensorRT engines live, ONNX Runtime CPU threads, or networks
            already opened (they are then owned by this Anonymizer).
        device_frames: keep frames on the GPU (device executor). None = when the backend is ``trt`` and the
            native CUDA library loads; True = require it.
        """
        if isinstance(tracking, bool):
            tracking = TrackingConfig(enabled=tracking)
        if not isinstance(detector, DetectorConfig):
            detector = DetectorConfig(model=detector)
        groups = {"search": _as(SearchConfig, search, "search"), "tracking": _as(TrackingConfig, tracking, "tracking"),
                  "align": _as(AlignConfig, align, "align"), "blend": _as(BlendConfig, blend, "blend"),
                  "detector": detector}
        groups, device_frames = self._legacy(legacy, groups, device_frames)
        self.pack = load_pack(pack)
        self.nets: Networks | None = None
        self.device = None
        self.nets = networks or open_networks(self.pack, backend, engines_root=engines_root, threads=threads)
        try:
            self._build(groups, threads, device_frames)
        except BaseException:
            self.close()
            raise
        log.info("pridss-rt: pack %s, backend %s, K=%d", self.pack.name, self.backend, self.candidates)

    @staticmethod
    def _legacy(legacy: dict, groups: dict, device_frames):
        unknown = sorted(set(legacy) - set(_LEGACY))
        if unknown:
            raise TypeError(f"Anonymizer() got unexpected keyword argument(s) {', '.join(unknown)}")
        uses = []
        for name, value in legacy.items():
            group, fld = _LEGACY[name]
            uses.append(f"{fld}=" if group is None else f"{group}={type(groups[group]).__name__}({fld}=...)")
            if group is None:
                device_frames = value
            else:
                groups[group] = replace(groups[group], **{fld: value})
        if uses:
            warnings.warn(f"Anonymizer({'=..., '.join(legacy)}=...) is deprecated and goes in the next release; "
                          f"use {', '.join(uses)}", DeprecationWarning, stacklevel=3)
        return groups, device_frames

    def _build(self, groups: dict, threads: int | None, device_frames: bool | None) -> None:
        search: SearchConfig = groups["search"]
        self.backend = self.nets.backend
        hold = groups["tracking"].hold
        if not isinstance(hold, int) or isinstance(hold, bool) or not 0 <= hold <= MAX_HOLD:
            raise InputError(f"TrackingConfig.hold must be a whole number of frames 0-{MAX_HOLD}, got {hold!r}")
        k = self.pack.candidates if search.candidates is None else search.candidates
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"candidates must be an integer >= 1, got {k!r}")
        cw = self.pack.coherence_weight if search.coherence_weight is None else search.coherence_weight
        why = weight_problem(cw)  # the rule the pack's own value obeys
        if why:
            raise InputError(f"coherence_weight {why}")
        if cw > 0 and "coherence" not in self.nets:
            raise InputError(f"coherence_weight {cw:g} needs a pack with a 'coherence' network; pack "
                             f"'{self.pack.name}' has none (pass SearchConfig(coherence_weight=0))")
        if not isinstance(search.identity_nullspace, bool):
            raise InputError(f"identity_nullspace must be True or False, got {search.identity_nullspace!r}")
        if not search.identity_nullspace and "identity_nullspace" in self.pack.extras:
            self.pack = self.pack.without_identity_nullspace()
        if self.pack.fusion.type == "mask":
            self.pack.identity_nullspace()  # a broken extra is a PackError here, not a pixelated frame later
        bcfg: BlendConfig = groups["blend"]
        region = self.pack.blend_region if bcfg.region is None else bcfg.region
        seg = self.pack.networks.get("segmentation")
        why = region_problem(region, seg.options["classes"] if seg is not None and "segmentation" in self.nets else None)
        if why:
            raise InputError(f"blend region {why} (pack '{self.pack.name}'; BlendConfig(region='face'), --region face, "
                             "works with every pack)")
        bcfg = replace(bcfg, region=region)
        gender = default_reference_gender(region) if search.reference_gender is None else search.reference_gender
        if gender not in REFERENCE_GENDERS:
            raise InputError(f"reference_gender must be one of {list(REFERENCE_GENDERS)}, got {gender!r}")
        det: DetectorConfig = groups["detector"]
        from pridss_rt.backends.ort import default_threads

        rotations = det.rotations and isinstance(det.model, (str, os.PathLike))  # callers' objects: as they are
        n = threads or default_threads()
        split = rotations and n >= 2  # the rotated passes on a worker thread, each half with half the threads

        def new_detector(t):
            return make_detector(det.model, min_face_size=det.min_face, threads=t) \
                if det.model == "mtcnn" else make_detector(det.model)

        detector = new_detector(n - n // 2 if split else threads)
        if rotations:
            detector = RotationRobustDetector(detector, det.rotation_scale, new_detector(n // 2) if split else None)
        mask = blend.face_mask(self.pack)
        if device_frames and bcfg.region != "face":
            raise InputError(f"device_frames=True: the {bcfg.region}-level blend (segmentation, inpainting) runs on the "
                             "host executor only; use BlendConfig(region='face') or device_frames=None")
        if bcfg.region != "face":  # nothing for a device executor to do: frames stay on the host
            log.info("pridss-rt: %s-level blend: frames go through the host executor", bcfg.region)
        elif device_frames or (device_frames is None and self.backend == "trt"):
            try:
                from pridss_rt.executors.device import DeviceExecutor

                self.device = DeviceExecutor(self.nets, self.pack, mask, bcfg.color_match)
            except Exception as exc:
                if device_frames:
                    raise
                log.warning("pridss-rt: device executor unavailable, frames go through the host: %s", exc)
        self.pipeline = FramePipeline(
            self.pack, self.nets, detector, candidates=int(k), coherence_weight=float(cw), align_cfg=groups["align"],
            tracking=groups["tracking"], blend_cfg=bcfg, host=HostExecutor(self.nets, self.pack, mask, bcfg.color_match, bcfg.region),
            device=self.device, reference_gender=gender, seed=int(search.seed))

    # ---- what it was built with ---------------------------------------------------------------------
    @property
    def region(self) -> str:
        """What the blend re-renders: ``"face"`` (the inner face), ``"head"`` (head and hair) or ``"person"``
        (head, hair, neck and clothes inside the crop)."""
        return self.pipeline.blend_cfg.region

    @property
    def reference_gender(self) -> str:
        """The references' gender rule in use: ``"opposite"``, ``"random"`` or ``"both"``."""
        return self.pipeline.reference_gender

    @property
    def candidates(self) -> int:
        """K, the opposite-gender references tried per face."""
        return self.pipeline.candidates

    @property
    def coherence_weight(self) -> float:
        return self.pipeline.coherence_weight

    @property
    def detector(self) -> Any:
        return self.pipeline.detector

    @property
    def bank(self):
        """The pack's reference bank (:class:`~pridss_rt.stages.fuse.ReferenceBank`)."""
        return self.pipeline.bank

    @property
    def last_frame(self) -> FrameStatus:
        """What happened to the last frame as a whole: ``whole_frame_pixelated`` (detection failed, so every pixel
        was pixelated and ``process`` returned no faces) and its ``reason``."""
        return self.pipeline.last_frame

    @property
    def stats(self) -> dict[str, int]:
        """Counters: frames, faces_anonymized, faces_pixelated, searches, researches, syntheses, ..."""
        return self.pipeline.stats

    @property
    def timings(self):
        """Per-stage latencies (ms) of the last 2,000 frames, by stage name and ``total``."""
        return self.pipeline.timings

    @property
    def max_align_error(self) -> float:
        return self.pipeline.max_align_error

    # ---- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the backend's resources (device buffers, sessions)."""
        if getattr(self, "device", None) is not None:
            self.device.close()
            self.device = None
            if getattr(self, "pipeline", None) is not None:
                self.pipeline.device = None
        if getattr(self, "nets", None) is not None:
            self.nets.close()
            self.nets = None
        if callable(getattr(getattr(self, "detector", None), "close", None)):
            self.detector.close()  # the rotated passes' worker thread

    def __repr__(self) -> str:
        if getattr(self, "nets", None) is None:
            return f"<Anonymizer pack {self.pack.name} {self.pack.version}, closed>"
        return (f"<Anonymizer pack {self.pack.name} {self.pack.version} on {self.backend}, K={self.candidates}, "
                f"region {self.region}, references {self.reference_gender}, coherence weight {self.coherence_weight:g}, "
                f"detector {getattr(self.detector, 'name', type(self.detector).__name__)}, "
                f"frames on {'GPU' if self.device is not None else 'host'}>")

    def __enter__(self) -> "Anonymizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Forget all tracks (call between unrelated images or videos)."""
        self.pipeline.tracker.reset()

    def process(self, frame: np.ndarray) -> tuple[np.ndarray, list[FaceResult]]:
        """Anonymize every face of ``frame`` (uint8 BGR (H, W, 3); gray and BGRA are accepted and returned in
        the same layout). Returns ``(new_frame, faces)``; the input array is not modified. Pixels are taken as
        given: no EXIF or other orientation is applied here (``pridss_rt.media.read_image`` and the CLI apply a
        JPEG's EXIF orientation on read)."""
        if self.nets is None:
            raise PridssError("this Anonymizer was closed")
        return self.pipeline.process(frame)
