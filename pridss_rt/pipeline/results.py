"""What the pipeline says about each detected face."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


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
    held: bool = False  # not detected in this frame: where its track was heading, pixelated (TrackingConfig.hold)

    def to_json(self) -> dict[str, Any]:
        """A dict for JSON: floats rounded to 4 decimals, non-finite ones as None (JSON has no NaN)."""
        return {k: _json_value(v) for k, v in self.__dict__.items()}


@dataclass
class FrameStatus:
    """What happened to the last frame as a whole (``Anonymizer.last_frame``): ``whole_frame_pixelated`` is True
    when the faces' places could not be known (detection failed) and every pixel was pixelated; ``reason`` says why.
    The per-face results are then empty: there is no face to report, yet nothing of the frame is shown raw."""

    whole_frame_pixelated: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _json_value(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4) if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v
