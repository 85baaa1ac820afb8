"""Frames in and out: what the pipeline accepts (uint8 BGR, gray, BGRA) and how it hands them back."""

from __future__ import annotations

from typing import Any

import numpy as np

from pridss_rt.errors import InputError

MAX_PIXELS = 8192 * 8192  # larger frames are refused with a clear error


def as_bgr(frame: Any) -> tuple[np.ndarray, str]:
    """Validate a frame; return a BGR uint8 view/copy and its layout ('bgr', 'gray', 'gray1', 'bgra')."""
    import cv2

    if frame is None:
        raise InputError("frame is None (a failed read? check the file/camera)")
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array (H, W, 3) uint8 BGR, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame must be uint8, got {frame.dtype} ({_conversion_hint(frame)})")
    if frame.size == 0:
        raise InputError(f"frame is empty (shape {frame.shape})")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise InputError(f"frame must be (H, W, 3) BGR, (H, W) gray or (H, W, 4) BGRA, got shape {frame.shape}")
    if frame.shape[0] * frame.shape[1] > MAX_PIXELS:  # gray frames too
        raise InputError(f"frame {frame.shape[1]}x{frame.shape[0]} is larger than {MAX_PIXELS} pixels")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), "gray"
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR), "gray1"
    if frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3]), "bgra"
    return np.ascontiguousarray(frame), "bgr"


def _conversion_hint(frame: np.ndarray) -> str:
    """How to convert a non-uint8 frame: floats in [0, 1] are scaled by 255 first, other values are clipped."""
    if frame.dtype.kind == "f" and frame.size:
        finite = frame[np.isfinite(frame)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            return "values in [0, 1]: convert with (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)"
    return "convert with np.clip(x, 0, 255).astype(np.uint8)"


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
