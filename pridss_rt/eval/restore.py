"""Restoration attacks for the evaluation (PrivacyProber-style): an attacker "cleans" an anonymized face
before classifying its gender. Three restorations, each on a uint8 BGR face image:

- **D — denoise**: OpenCV non-local means (``fastNlMeansDenoisingColored``, h = hColor = 10, template 7,
  search 21) followed by a 3×3 median filter.
- **I — inpaint**: a seeded random 40 % of the 4×4 blocks inside the inner face region (an ellipse
  fitted to the 5 landmarks: brows to chin, cheek to cheek) are masked and re-synthesized from their
  surroundings with ``cv2.inpaint`` (Telea, radius 3). Localized patterns that carry a gender cue are
  replaced by what the rest of the face predicts.
- **A — autoencoder**: a small convolutional denoising autoencoder trained on clean train-split faces
  (``research/training/train_restorer.py`` in a source checkout), shipped as ``pridss_rt/assets/restorer_ae.onnx`` (≈1.2 MB, CelebA-HQ
  non-commercial licence): the face is projected onto what a model of clean faces can represent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pridss_rt._hints import source_tool

ASSETS = Path(__file__).resolve().parent.parent / "assets"
RESTORER_AE = ASSETS / "restorer_ae.onnx"
RESTORATIONS = ("denoise", "inpaint", "autoencoder")


def denoise(face_bgr: np.ndarray) -> np.ndarray:
    import cv2

    out = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(face_bgr), None, 10, 10, 7, 21)
    return cv2.medianBlur(out, 3)


def inner_face_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """uint8 mask (255 inside) of the inner face: an ellipse from the brows to the chin and across the
    cheeks, fitted to the 5 landmarks (image-left eye, image-right eye, nose, mouth corners)."""
    import cv2

    lm = np.asarray(landmarks, np.float64)
    eyes, mouth = lm[:2].mean(0), lm[3:].mean(0)
    eye_dist = max(float(np.linalg.norm(lm[1] - lm[0])), 1.0)
    em = max(float(np.linalg.norm(mouth - eyes)), 1.0)
    axis = (mouth - eyes) / em
    top, bottom = eyes - 0.6 * em * axis, mouth + 0.6 * em * axis
    center = (top + bottom) / 2.0
    angle = float(np.degrees(np.arctan2(axis[1], axis[0]))) - 90.0
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, ((float(center[0]), float(center[1])), (2.0 * 1.0 * eye_dist, float(np.linalg.norm(bottom - top))),
                    angle), 255, -1)
    return m


def inpaint(face_bgr: np.ndarray, landmarks: np.ndarray, seed: int = 0, fraction: float = 0.4,
            block: int = 4) -> np.ndarray:
    import cv2

    h, w = face_bgr.shape[:2]
    region = inner_face_mask((h, w), landmarks) > 0
    rng = np.random.default_rng(seed)
    blocks = rng.random(((h + block - 1) // block, (w + block - 1) // block)) < fraction
    holes = np.kron(blocks, np.ones((block, block), bool))[:h, :w] & region
    mask = holes.astype(np.uint8) * 255
    return cv2.inpaint(np.ascontiguousarray(face_bgr), mask, 3, cv2.INPAINT_TELEA)


class AutoencoderRestorer:
    """The shipped restoration autoencoder (ONNX Runtime, CPU)."""

    def __init__(self, path: str | os.PathLike | None = None, threads: int | None = None):
        from pridss_rt.backends.ort import cpu_session

        self.path = Path(path) if path else RESTORER_AE
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: restoration autoencoder not found (pass --restorer ONNX, or train "
                                    f"one: {source_tool('research/training/train_restorer.py', '--help')})")
        self.sess = cpu_session(self.path, threads)
        self.input = self.sess.get_inputs()[0].name

    def __call__(self, faces_bgr: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 BGR (H, W multiples of 8) -> restored, same shape."""
        x = faces_bgr[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        y = self.sess.run(None, {self.input: np.ascontiguousarray(x)})[0]
        return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)[..., ::-1].copy()
