"""The options of one evaluation run: :class:`EvalConfig`, one field per ``pridss-rt eval`` option, with the
same defaults (``--no-progress`` is :func:`~pridss_rt.eval.evaluate`'s ``progress`` argument)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pridss_rt.errors import InputError
from pridss_rt.pack.spec import BLEND_REGIONS
from pridss_rt.pipeline.config import REFERENCE_GENDERS

DEFAULT_FID_MODEL = Path("~/.cache/pridss-rt/inception_fid.onnx")
BASELINES = ("swap_only", "blur", "pixelate")
OUTPUT_KINDS = ("auto", "probability", "logit", "softmax2")
FID_METHODS = ("all", "main", "none")
DEFAULT_ABLATION = (1, 3, 5, 10)
TRAIN_SPLIT = "train"  # the manifest's split the attackers that learn are fitted on (--adaptive; a split name, no path)


def parse_k_list(text: str) -> list[int]:
    """``"1,3,5"`` -> [1, 3, 5]; ``""`` / ``"none"`` -> []."""
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


def parse_baselines(text: str) -> list[str]:
    """``"blur,pixelate"`` -> ["blur", "pixelate"]; ``""`` / ``"none"`` -> []."""
    return [b.strip() for b in text.split(",") if b.strip() and b.strip() != "none"]


@dataclass
class EvalConfig:
    """Everything an evaluation run depends on. ``ablation`` and ``baselines`` take sequences or the
    CLI's comma-separated text (``"1,3"``, ``"none"``); they are stored as tuples."""

    data: str | os.PathLike  # manifest CSV: file (relative to the manifest), identity, male; optional split
    out: str | os.PathLike  # output folder (report.json, report.md, faces.jsonl, PNGs)
    split: str | None = "val"  # rows of this split when the manifest has a split column ('all': every row)
    limit: int | None = None  # N faces: whole identities in a seeded random order
    seed: int = 0  # seed of the limit's identity order and of the inpainting masks
    pack: str | os.PathLike = "demo"
    backend: str = "auto"
    candidates: int | None = None  # K of the main PriDSS row (None: the pack's)
    coherence_weight: float | None = None  # None: the pack's; 0 = PIC alone
    reference_gender: str | None = None  # opposite | random | both (SearchConfig.reference_gender; None: by region)
    identity_nullspace: bool = True  # SearchConfig.identity_nullspace (False: --keep-identity-gender)
    region: str | None = None  # BlendConfig.region of the PriDSS rows: face | head | person (None: the pack's)
    ablation: Sequence[int] | str = DEFAULT_ABLATION  # K values of the candidate ablation
    baselines: Sequence[str] | str = BASELINES
    attacker_gender: str | os.PathLike | None = None  # gender classifier ONNX (None: the pack's own)
    attacker_output_kind: str = "auto"  # auto | probability | logit | softmax2
    attacker_male_index: int = 1  # male column of a 2-class output
    extra_attackers: Sequence[str | os.PathLike] = ()  # more gender ONNX scored next to the main attacker
    matcher: str | os.PathLike | None = None  # identity embedder ONNX (None: the pack's own)
    external_preprocess: str = "pack"  # 'pack' or MEAN,STD,ORDER for the external networks
    fid_model: str | os.PathLike | None = str(DEFAULT_FID_MODEL)  # Inception ONNX; FID is null when missing
    fid_methods: str = "all"  # all | main | none
    restorer: str | os.PathLike | None = None  # restoration autoencoder (None: the shipped one)
    canvas: int = 288  # side of the frame each face is placed in
    scale: float = 1.5  # face upscale inside the frame
    grid: int = 6  # faces in the picture grid (0 = none)
    batch: int = 16  # faces per batch
    detector: str = "mtcnn"  # mtcnn | PATH.onnx
    min_face: int = 32
    engines: str | os.PathLike | None = None  # TensorRT engines root
    threads: int | None = None  # CPU threads for ONNX Runtime
    save_faces: bool = False  # also write every method's output faces to OUT/faces/<method>.npz (attackers that learn)
    adaptive: int = 0  # train-split faces for the attackers that learn (eval.learners; 0 = none)

    def __post_init__(self):
        ab = self.ablation
        ab = parse_k_list(ab) if isinstance(ab, str) else [int(k) for k in (ab or ())]
        if any(k < 1 for k in ab):
            raise InputError(f"K values must be >= 1, got {ab}")
        self.ablation = tuple(ab)
        bl = self.baselines
        bl = parse_baselines(bl) if isinstance(bl, str) else [str(b) for b in (bl or ())]
        bad = [b for b in bl if b not in BASELINES]
        if bad:
            raise InputError(f"--baselines: unknown {bad} (choose from {', '.join(BASELINES)})")
        self.baselines = tuple(bl)
        if isinstance(self.extra_attackers, (str, os.PathLike)):
            raise InputError("extra_attackers: expected a list of ONNX paths, got one path")
        self.extra_attackers = tuple(self.extra_attackers or ())
        if self.attacker_output_kind not in OUTPUT_KINDS:
            raise InputError(f"attacker_output_kind must be one of {list(OUTPUT_KINDS)}, got '{self.attacker_output_kind}'")
        if self.reference_gender not in (None,) + REFERENCE_GENDERS:
            raise InputError(f"reference_gender must be {' or '.join(repr(g) for g in REFERENCE_GENDERS)}, "
                             f"got '{self.reference_gender}'")
        if self.region not in (None,) + BLEND_REGIONS:
            raise InputError(f"region must be one of {list(BLEND_REGIONS)}, got {self.region!r}")
        if not isinstance(self.adaptive, int) or self.adaptive < 0 or self.adaptive == 1:
            raise InputError(f"adaptive must be 0 (off) or a number of train-split faces >= 2, got {self.adaptive!r}")
        if self.adaptive and self.split in (None, "all", TRAIN_SPLIT):
            raise InputError(f"adaptive needs an evaluated split other than the train split (got split {self.split!r}): "
                             "the attackers that learn are fitted on train-split faces")
        if self.fid_methods not in FID_METHODS:
            raise InputError(f"fid_methods must be one of {list(FID_METHODS)}, got '{self.fid_methods}'")
