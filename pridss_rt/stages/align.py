"""Stage 2 — align: a similarity transform from a face's 5 landmarks to the pack's template, the warped
and normalized crop the networks take, and the way back (crop -> frame)."""

from __future__ import annotations

import numpy as np

from pridss_rt.pack import Preprocess


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 matrix M of the least-squares similarity (rotation, uniform scale, translation) mapping
    ``src`` points onto ``dst`` points (Umeyama 1991, without reflection)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = len(src)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1
    rot = u @ np.diag(d) @ vt
    var_s = (s0 ** 2).sum() / n
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def invert_affine(m: np.ndarray) -> np.ndarray:
    a = np.vstack([m, [0, 0, 1]])
    return np.linalg.inv(a)[:2]


def transform_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def alignment_error(m: np.ndarray, landmarks: np.ndarray, template: np.ndarray) -> float:
    """RMS distance (crop pixels) between the mapped landmarks and the template: large = odd geometry
    (extreme pose, bad landmarks)."""
    d = transform_points(m, landmarks) - template
    return float(np.sqrt((d ** 2).sum(1).mean()))


def warp_crops(frame_bgr: np.ndarray, matrices: list[np.ndarray], pre: Preprocess) -> np.ndarray:
    """Aligned crops in the networks' input space: float32 NCHW, ``(pixel/255 - mean) / std``."""
    import cv2

    s = pre.crop_size
    out = np.empty((len(matrices), 3, s, s), np.float32)
    mean = np.asarray(pre.mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(3, 1, 1)
    for i, m in enumerate(matrices):
        crop = cv2.warpAffine(frame_bgr, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if pre.channel_order == "rgb":
            crop = crop[:, :, ::-1]
        out[i] = (crop.transpose(2, 0, 1).astype(np.float32) / 255.0 - mean) / std
    return out


def to_uint8(images: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Network-space NCHW images -> uint8 NHWC BGR crops."""
    mean = np.asarray(pre.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(1, 3, 1, 1)
    x = np.clip((images * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return x[..., ::-1].copy() if pre.channel_order == "rgb" else x


def from_uint8(crops_bgr: np.ndarray, pre: Preprocess) -> np.ndarray:
    """uint8 NHWC BGR crops -> network-space NCHW float32 images (the inverse of :func:`to_uint8` up to its
    rounding: ``to_uint8(from_uint8(x)) == x``)."""
    x = crops_bgr[..., ::-1] if pre.channel_order == "rgb" else crops_bgr
    mean = np.asarray(pre.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - mean) / std)
