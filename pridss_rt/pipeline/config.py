"""The options of :class:`~pridss_rt.Anonymizer`, grouped by the stage they steer. Every field has the
default a user would pick; ``None`` means "the pack's value" where a pack has one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DetectorConfig:
    """Stage 1, detect. ``model``: ``"mtcnn"`` (default, shipped), the path of a YuNet ``.onnx`` file, or an
    object with ``detect(frame) -> list[Detection]`` (used as given). ``min_face``: smallest face the MTCNN
    detector looks for (pixels). ``rotations``: extra passes on copies rotated by 90, 180 and 270 degrees at
    ``rotation_scale`` of the resolution (stages.detect.RotationRobustDetector), so that faces of people lying down
    are found; False for streams known to be upright (faster). With two or more CPU threads the rotated passes run
    on a worker thread of the Anonymizer, with their own sessions and half the threads, while the upright faces are
    anonymized."""

    model: str | os.PathLike | Any = "mtcnn"
    min_face: int = 32
    rotations: bool = True
    rotation_scale: float = 0.5


@dataclass(frozen=True)
class AlignConfig:
    """Stage 2, align: which detected faces are fit for synthesis (the others are pixelated).
    ``min_size``: faces smaller than this (pixels) are pixelated. ``max_error``: RMS landmark misfit (crop
    pixels) above which a face counts as an extreme pose (None: 10 % of the crop size). ``min_inside``: faces with
    less of their box inside the frame are pixelated: the networks never saw a face cut by the frame edge, and the
    detector's mirrored edge margin can find such a face as its mirror-completed twin, shifted past the edge."""

    min_size: int = 24
    max_error: float | None = None
    min_inside: float = 0.8


REFERENCE_GENDERS = ("opposite", "random", "both")  # SearchConfig.reference_gender


def default_reference_gender(region: str) -> str:
    """``SearchConfig.reference_gender=None``: "both" with the head- and person-level blends, "opposite" with the
    inner face (with the head, both genders beat always-opposite on every attacker measured, and with the inner
    face the other way round; the person blend, measured with both only, follows the head; docs/evaluation.md)."""
    return "opposite" if region == "face" else "both"


@dataclass(frozen=True)
class SearchConfig:
    """Stages 4-6, fuse and score/select. ``candidates``: K opposite-gender references tried per face.
    ``coherence_weight``: weight of the pack's coherence critic, P(composite), added to PIC (0 = PIC alone;
    > 0 needs a ``coherence`` network). None: the pack's value. ``reference_gender``: ``"opposite"`` (the
    references are of the other gender than the pack's classifier reads) or ``"random"`` (drawn per search
    with probability 1/2 from a generator seeded by ``seed``, independent of the input: the outputs' genders
    are then distributed the same for men and women, so an attacker who learns from outputs cannot read the
    mapping backwards) or ``"both"`` (ceil(K/2) references of the opposite gender and K // 2 of the face's own: the
    selection keeps whichever composite reads most ambiguous, so no fixed rule maps the input's gender to the
    output's); None (default): ``"both"`` with the head-level blend, ``"opposite"`` with the inner face
    (:func:`default_reference_gender`). ``identity_nullspace``: packs with an ``identity_nullspace`` extra (the demo pack) remove
    the gender directions from the segments kept from the original (eyes, brows, nose, mouth), where an attacker who
    learns from outputs reads gender otherwise; False keeps those segments exactly as the original's (a little more
    identity, less privacy; ``stages.fuse.fuse``)."""

    candidates: int | None = None
    coherence_weight: float | None = None
    reference_gender: str | None = None
    seed: int = 0
    identity_nullspace: bool = True


MAX_HOLD = 10  # frames: the tracker forgets a track missed longer than this (Tracker.max_missed)


@dataclass(frozen=True)
class TrackingConfig:
    """Streams: ``enabled`` reuses each track's chosen reference across frames (False: search every frame);
    the search reruns when the identity similarity to the track's searched face drops below
    ``reid_threshold``. ``hold``: for this many frames after the detector loses a tracked face, the place its track
    was heading stays pixelated (a face leaving through the frame edge is lost once more than about half of it is
    outside; a detector miss in one frame would otherwise show the face raw for that frame); 0 = off. Needs
    ``enabled``."""

    enabled: bool = True
    reid_threshold: float = 0.5
    hold: int = 5


@dataclass(frozen=True)
class BlendConfig:
    """Stage 7, blend. ``color_match``: shift the synthesized face's mean colour to the original's inside the
    face mask (hides seams); the same function on the host and the device executor. ``region``: ``"face"`` pastes
    the inner face through the pack's face mask; ``"head"`` (packs with a segmentation network) re-renders the
    head and hair over the original's background; ``"person"`` (a segmentation network with a ``body`` class, as
    the demo pack's) re-renders neck and clothes inside the crop as well, so only the background stays the
    original's; None: the pack's ``defaults.blend_region``."""

    color_match: bool = True
    region: str | None = None
