"""The arrays of a pack on disk (``.npy`` masks and extras, the ``.npz`` reference bank), read without
pickle and checked before anything uses them; and ``pack.json`` writing for the export tools."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from pridss_rt.errors import PackError


def load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:  # object arrays need pickle (refused), or not a .npy at all
        raise PackError(f"{path}: not a readable .npy array (pickled, truncated or not an array): {_why(exc)}") from None
    except OSError as exc:
        raise PackError(f"{path}: cannot read: {exc}") from None


def _why(exc: Exception) -> str:
    """numpy's error text without its advice to load with allow_pickle=True (never done here)."""
    text = str(exc)
    return "the file needs pickle to load, which pridss-rt never does" if "allow_pickle" in text else text


def load_mask(path: Path, latent_shape: tuple[int, ...]) -> np.ndarray:
    m = load_npy(path)
    if not isinstance(m, np.ndarray):
        raise PackError(f"{path}: expected a .npy array")
    if m.shape != latent_shape:
        raise PackError(f"{path}: shape: fusion mask has shape {list(m.shape)}, latent has {list(latent_shape)}")
    if m.dtype.kind not in "fb":
        raise PackError(f"{path}: dtype: fusion mask must be float or bool, got {m.dtype}")
    m = m.astype(np.float32)
    if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
        raise PackError(f"{path}: values: fusion mask must lie in [0, 1]")
    return m


def load_bank(path: Path, latent_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            for key in ("latents", "male"):
                if key not in keys:
                    raise PackError(f"{path}: {key}: missing array (bank needs 'latents' and 'male')")
            latents = z["latents"]
            male = z["male"]
            landmarks = z["landmarks"] if "landmarks" in keys else None
            scale = z["scale"] if "scale" in keys else None
    except PackError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # BadZipFile: truncated or CRC-broken archive
        raise PackError(f"{path}: cannot read bank (not a valid .npz archive: truncated, corrupted or pickled): "
                        f"{_why(exc)}") from None
    if latents.dtype not in (np.float32, np.float16, np.int8):
        raise PackError(f"{path}: latents: dtype must be float32, float16 or int8, got {latents.dtype}")
    if latents.ndim < 2 or tuple(latents.shape[1:]) != latent_shape:
        raise PackError(f"{path}: latents: shape {list(latents.shape)} does not match [N, {', '.join(map(str, latent_shape))}]")
    if latents.dtype == np.int8:  # symmetric quantization: value = int8 * scale (one scale per latent element)
        if scale is None:
            raise PackError(f"{path}: scale: int8 latents need a 'scale' array of the latent's shape")
        if tuple(scale.shape) != latent_shape or scale.dtype not in (np.float32, np.float16):
            raise PackError(f"{path}: scale: must be float {list(latent_shape)}, got {scale.dtype}{list(scale.shape)}")
        if not np.all(np.isfinite(scale)) or (scale < 0).any():
            raise PackError(f"{path}: scale: must be finite and non-negative")
        latents = latents.astype(np.float32) * scale.astype(np.float32)
    elif scale is not None:
        raise PackError(f"{path}: scale: only int8 latents take a scale (latents are {latents.dtype})")
    if male.shape != (latents.shape[0],) or male.dtype.kind not in "biu":
        raise PackError(f"{path}: male: must be a bool/int vector of length N={latents.shape[0]}, got {male.dtype}{list(male.shape)}")
    male = male.astype(bool)
    if male.all() or not male.any():
        raise PackError(f"{path}: male: bank needs references of both genders")
    if not np.all(np.isfinite(latents)):
        raise PackError(f"{path}: latents: contains NaN or inf")
    if landmarks is not None:
        if landmarks.shape != (latents.shape[0], 5, 2) or landmarks.dtype not in (np.float32, np.float16, np.float64):
            raise PackError(f"{path}: landmarks: must be float [N={latents.shape[0]}, 5, 2], got "
                            f"{landmarks.dtype}{list(landmarks.shape)}")
        landmarks = landmarks.astype(np.float32)
        if np.isinf(landmarks).any():
            raise PackError(f"{path}: landmarks: contains inf (NaN rows mark faces without landmarks)")
        if np.isnan(landmarks).all():
            raise PackError(f"{path}: landmarks: no face has landmarks")
    return latents.astype(np.float32, copy=False), male, landmarks


def write_pack_json(root: str | os.PathLike, manifest: dict) -> Path:
    """Write ``pack.json`` (sorted, indented) — used by the export tools and tests."""
    path = Path(root) / "pack.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path
