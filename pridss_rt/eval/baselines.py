"""The rows of an evaluation (:class:`Method`): PriDSS with the main K and the K ablation, and the
baselines — Gaussian blur and pixelation of the detected face boxes (:func:`cover_boxes`, also used by
``samples/compare_methods.py``) and "gender swap only" (:func:`swap_only_pack`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pridss_rt.eval.config import EvalConfig


@dataclass
class Method:
    """One row: how it turns a frame into an output frame, and what was measured on its outputs."""

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
    emb_kept: list = field(default_factory=list)  # --adaptive: embeddings of the outputs' inner face only
    boundary: list = field(default_factory=list)  # per face: metrics.boundary_ratio against the original row
    feats: list = field(default_factory=list)
    status: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def cover_boxes(frame: np.ndarray, boxes, kind: str = "blur") -> np.ndarray:
    """A copy of ``frame`` with every face box (x1, y1, x2, y2 in frame pixels) expanded by 20 % and covered:
    ``blur`` = Gaussian blur with sigma = 0.1 x the box side (max of width and height; at least 1),
    ``pixelate`` = 8x8 blocks (the pipeline's fail-closed output)."""
    import cv2

    from pridss_rt.stages.blend import expand_box, pixelate

    if kind not in ("blur", "pixelate"):
        raise ValueError(f"kind must be blur or pixelate, got {kind!r}")
    out = frame.copy()
    for b in boxes:
        b = np.asarray(b)
        box = expand_box(b, out.shape)
        if kind == "pixelate":
            pixelate(out, box)
        else:
            x1, y1, x2, y2 = box
            if x2 > x1 and y2 > y1:
                side = float(max(b[2] - b[0], b[3] - b[1]))
                out[y1:y2, x1:x2] = cv2.GaussianBlur(out[y1:y2, x1:x2], (0, 0), sigmaX=max(1.0, 0.1 * side))
    return out


def swap_only_pack(pack):
    """A copy of ``pack`` whose fusion takes every latent segment from the reference (mask of zeros)."""
    return pack.with_fusion_mask(np.zeros(pack.latent_shape, np.float32), "zeros: gender swap only")


def anonymizer(pack, k: int, detector, nets, coherence_weight: float | None = None, reference_gender: str | None = None,
               seed: int = 0, identity_nullspace: bool = True, region: str | None = None):
    """An :class:`~pridss_rt.Anonymizer` on shared networks and detector, searching every frame."""
    from pridss_rt.anonymizer import Anonymizer, BlendConfig, SearchConfig

    return Anonymizer(pack, detector=detector, search=SearchConfig(candidates=k, coherence_weight=coherence_weight,
                                                                   reference_gender=reference_gender, seed=seed,
                                                                   identity_nullspace=identity_nullspace),
                      blend=BlendConfig(region=region), tracking=False, networks=nets)


def anon_runner(anon):
    def run(frame, det_index):
        anon.reset()
        out, faces = anon.process(frame)
        if det_index < 0:
            return out, "missed"
        if det_index >= len(faces):
            return out, "missing-result"
        return out, faces[det_index].status
    return run


def box_runner(detector, kind: str):
    """``blur``/``pixelate`` of every box the (cached) detector finds on the frame."""
    def run(frame, det_index):
        out = cover_boxes(frame, [d.box for d in detector.detect(frame)], kind)
        return out, ("missed" if det_index < 0 else ("pixelated" if kind == "pixelate" else "blurred"))
    return run


def make_methods(config: EvalConfig, pack, nets, detector, k_main: int) -> tuple[list[Method], str]:
    """The rows in report order (original, main PriDSS, baselines, K ablation) and the main row's name."""
    methods: list[Method] = [Method("original", "original", None, lambda f, d: (f, "original"), fid=False)]
    main_name = f"pridss_k{k_main}"
    methods.append(Method(main_name, f"PriDSS (K={k_main})", k_main,
                          anon_runner(anonymizer(pack, k_main, detector, nets, config.coherence_weight,
                                                 config.reference_gender, config.seed, config.identity_nullspace, config.region))))
    if "swap_only" in config.baselines:
        methods.append(Method("swap_only", f"gender swap only (K={k_main})", k_main,
                              anon_runner(anonymizer(swap_only_pack(pack), k_main, detector, nets))))
    if "blur" in config.baselines:
        methods.append(Method("blur", "Gaussian blur", None, box_runner(detector, "blur")))
    if "pixelate" in config.baselines:
        methods.append(Method("pixelate", "pixelate (8 blocks)", None, box_runner(detector, "pixelate")))
    for k in config.ablation:
        if k == k_main:
            continue
        methods.append(Method(f"pridss_k{k}", f"PriDSS (K={k})", k,
                              anon_runner(anonymizer(pack, k, detector, nets, config.coherence_weight,
                                                 config.reference_gender, config.seed, config.identity_nullspace, config.region))))
    if config.fid_methods == "main":
        for m in methods:
            m.fid = m.name == main_name
    elif config.fid_methods == "none":
        for m in methods:
            m.fid = False
    return methods, main_name
