"""ctypes bindings for the pridss-rt native operations (``native/``).

The native libraries are built by CMake (see ``docs/native.md``):

* ``libpridss_ops_cpu``  - host implementation, wrapped here with numpy
  (:func:`warp_normalize_cpu`, :func:`paste_back_cpu`);
* ``libpridss_ops_cuda`` - CUDA kernels taking device pointers and a stream;
  :func:`load_native` ``("cuda")`` returns the library with its argument types
  declared, for callers that own device buffers.

Nothing is loaded at import time; the first call loads the library.  It is
looked up in this order:

1. ``$PRIDSS_RT_NATIVE_LIB``: a directory holding the library, or the path of
   the library file itself (used when its file name is the requested kind's);
2. ``pridss_rt/native/`` inside this package (where ``cmake --install`` puts
   it);
3. ``build/`` at the root of the source tree.

This module only needs numpy, ctypes and the standard library, and
``import pridss_rt`` does not import it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = [
    "ENV_VAR",
    "NativeLibraryNotFoundError",
    "NativeOpError",
    "library_filename",
    "candidate_paths",
    "load_native",
    "warp_normalize_cpu",
    "paste_back_cpu",
]

ENV_VAR = "PRIDSS_RT_NATIVE_LIB"
_KINDS = ("cpu", "cuda")
_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # pridss_rt/

_c_int = ctypes.c_int
_c_size_t = ctypes.c_size_t
_c_void_p = ctypes.c_void_p


class NativeLibraryNotFoundError(RuntimeError):
    """The native library of the requested kind was not found (or failed to load)."""


class NativeOpError(RuntimeError):
    """A native operation returned a non-zero status."""

    def __init__(self, op: str, status: int, message: str):
        super().__init__(f"{op} failed with status {status}: {message}")
        self.op = op
        self.status = status


def _check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    return kind


def library_filename(kind: str = "cpu") -> str:
    """Platform file name of the native library, e.g. ``libpridss_ops_cpu.so``."""
    name = f"pridss_ops_{_check_kind(kind)}"
    if sys.platform.startswith("win"):
        return f"{name}.dll"
    if sys.platform == "darwin":
        return f"lib{name}.dylib"
    return f"lib{name}.so"


def candidate_paths(kind: str = "cpu") -> List[Path]:
    """Library paths tried by :func:`load_native`, in order."""
    filename = library_filename(kind)
    paths: List[Path] = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        p = Path(env).expanduser()
        if p.is_dir():
            paths.append(p / filename)
        elif p.name == filename:
            paths.append(p)
        else:
            # A file for the other kind (or a missing path): look beside it.
            paths.append(p.parent / filename)
    paths.append(_PACKAGE_DIR / "native" / filename)
    paths.append(_PACKAGE_DIR.parent / "build" / filename)
    return paths


_SIGNATURES: Dict[str, Dict[str, Tuple[type, list]]] = {
    "cpu": {
        # frame, height, width, row_pitch, matrices, num_faces, crop_size,
        # mean, std, rgb, out
        "pridss_warp_normalize_cpu": (
            _c_int,
            [_c_void_p, _c_int, _c_int, _c_size_t, _c_void_p, _c_int, _c_int,
             _c_void_p, _c_void_p, _c_int, _c_void_p],
        ),
        # frame, height, width, row_pitch, crops, matrices, num_faces,
        # crop_size, mask, mean, std, rgb
        "pridss_paste_back_cpu": (
            _c_int,
            [_c_void_p, _c_int, _c_int, _c_size_t, _c_void_p, _c_void_p, _c_int,
             _c_int, _c_void_p, _c_void_p, _c_void_p, _c_int],
        ),
        "pridss_status_string_cpu": (ctypes.c_char_p, [_c_int]),
    },
    "cuda": {
        # Same as the CPU functions plus a trailing cudaStream_t (void*).
        "pridss_warp_normalize": (
            _c_int,
            [_c_void_p, _c_int, _c_int, _c_size_t, _c_void_p, _c_int, _c_int,
             _c_void_p, _c_void_p, _c_int, _c_void_p, _c_void_p],
        ),
        "pridss_paste_back": (
            _c_int,
            [_c_void_p, _c_int, _c_int, _c_size_t, _c_void_p, _c_void_p, _c_int,
             _c_int, _c_void_p, _c_void_p, _c_void_p, _c_int, _c_void_p],
        ),
        "pridss_status_string": (ctypes.c_char_p, [_c_int]),
    },
}

_cache: Dict[Tuple[str, str], ctypes.CDLL] = {}
_lock = threading.Lock()


def load_native(kind: str = "cpu") -> ctypes.CDLL:
    """Load (once) and return the native library of ``kind`` ("cpu" or "cuda").

    The returned CDLL has ``argtypes``/``restype`` set for every API function.
    Raises :class:`NativeLibraryNotFoundError` listing the paths tried.
    """
    _check_kind(kind)
    tried = candidate_paths(kind)
    errors: List[str] = []
    for path in tried:
        if not path.is_file():
            continue
        key = (kind, str(path.resolve()))
        with _lock:
            lib = _cache.get(key)
            if lib is not None:
                return lib
            try:
                lib = ctypes.CDLL(key[1])
                for name, (restype, argtypes) in _SIGNATURES[kind].items():
                    fn = getattr(lib, name)
                    fn.restype = restype
                    fn.argtypes = argtypes
            except (OSError, AttributeError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            _cache[key] = lib
            return lib
    detail = "\n  ".join(str(p) for p in tried)
    msg = (
        f"native library {library_filename(kind)!r} ({kind}) not found; tried:\n  {detail}\n"
        f"Build it with `cmake -S . -B build && cmake --build build -j2` or set "
        f"{ENV_VAR} to the directory holding it."
    )
    if errors:
        msg += "\nFound but could not load:\n  " + "\n  ".join(errors)
    raise NativeLibraryNotFoundError(msg)


# ---------------------------------------------------------------------------
# Argument validation
# ---------------------------------------------------------------------------


def _check_frame(frame, *, writeable: bool) -> Tuple[int, int, int]:
    """Returns (height, width, row_pitch) of a BGR uint8 frame."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy.ndarray, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must have dtype uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must have shape (H, W, 3), got {frame.shape}")
    h, w = int(frame.shape[0]), int(frame.shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"frame must be non-empty, got shape {frame.shape}")
    s0, s1, s2 = frame.strides
    # Interleaved pixels; rows may be padded (a row-pitched view is accepted).
    if s2 != 1 or s1 != 3 or (h > 1 and s0 < 3 * w):
        raise ValueError(
            "frame must have interleaved, contiguous rows (strides (pitch, 3, 1) "
            f"with pitch >= 3*W), got strides {frame.strides}; use np.ascontiguousarray"
        )
    if writeable and not frame.flags.writeable:
        raise ValueError("frame must be writeable (paste_back works in place)")
    pitch = s0 if h > 1 else 3 * w
    return h, w, pitch


def _check_matrices(matrices, *, invertible: bool) -> np.ndarray:
    """Returns a C-contiguous float32 (N, 2, 3) copy/view of ``matrices``."""
    if not isinstance(matrices, np.ndarray):
        raise ValueError(
            f"matrices must be a numpy.ndarray of shape (N, 2, 3), got {type(matrices).__name__}"
        )
    if matrices.dtype not in (np.float32, np.float64):
        raise ValueError(f"matrices must have dtype float32 or float64, got {matrices.dtype}")
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 3):
        raise ValueError(f"matrices must have shape (N, 2, 3), got {matrices.shape}")
    m = np.ascontiguousarray(matrices, dtype=np.float32)
    if not np.all(np.isfinite(m)):
        raise ValueError("matrices must contain only finite values")
    if invertible and m.shape[0]:
        det = m[:, 0, 0].astype(np.float64) * m[:, 1, 1] - m[:, 0, 1].astype(np.float64) * m[:, 1, 0]
        bad = np.flatnonzero(det == 0)
        if bad.size:
            raise ValueError(f"matrices[{int(bad[0])}] is singular (not invertible)")
    return m


def _check_size(size, name: str = "size") -> int:
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {type(size).__name__}")
    if not 2 <= int(size) <= 8192:
        raise ValueError(f"{name} must be in [2, 8192], got {size}")
    return int(size)


def _check_norm(name: str, values: Sequence[float], *, nonzero: bool) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 3 numbers, got {values!r}") from None
    if arr.shape != (3,):
        raise ValueError(f"{name} must be 3 numbers (one per channel), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    if nonzero and np.any(arr == 0):
        raise ValueError(f"{name} must not contain zeros, got {arr.tolist()}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_float32_array(name: str, arr, shape: Tuple[int, ...], shape_text: str) -> None:
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{name} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype != np.float32:
        raise ValueError(f"{name} must have dtype float32, got {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape_text}={shape}, got {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; use np.ascontiguousarray")


def _raise_status(lib: ctypes.CDLL, op: str, status: int) -> None:
    if status != 0:
        message = lib.pridss_status_string_cpu(status).decode("utf-8", "replace")
        raise NativeOpError(op, status, message)


# ---------------------------------------------------------------------------
# numpy wrappers of the CPU library
# ---------------------------------------------------------------------------


def warp_normalize_cpu(
    frame: np.ndarray,
    matrices: np.ndarray,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    rgb: bool = True,
) -> np.ndarray:
    """Warps N faces out of ``frame`` and normalizes them.

    frame:    (H, W, 3) uint8 BGR; rows may be padded (strides (pitch, 3, 1)).
    matrices: (N, 2, 3) float32/float64, frame -> crop (cv2.warpAffine's M).
    size:     crop side S.
    mean/std: 3 values each, in output channel order (RGB when ``rgb``).
    Returns float32 (N, 3, S, S) = (bilinear(frame)/255 - mean) / std, with
    pixels outside the frame sampled as 0.
    """
    h, w, pitch = _check_frame(frame, writeable=False)
    m = _check_matrices(matrices, invertible=True)
    s = _check_size(size)
    mean_a = _check_norm("mean", mean, nonzero=False)
    std_a = _check_norm("std", std, nonzero=True)
    n = int(m.shape[0])
    out = np.empty((n, 3, s, s), dtype=np.float32)
    if n == 0:
        return out
    lib = load_native("cpu")
    status = lib.pridss_warp_normalize_cpu(
        frame.ctypes.data, h, w, pitch, m.ctypes.data, n, s,
        mean_a.ctypes.data, std_a.ctypes.data, int(bool(rgb)), out.ctypes.data,
    )
    _raise_status(lib, "pridss_warp_normalize_cpu", status)
    return out


def paste_back_cpu(
    frame: np.ndarray,
    crops: np.ndarray,
    matrices: np.ndarray,
    mask: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    rgb: bool = True,
) -> None:
    """Blends N generated crops back into ``frame`` in place.

    frame:    (H, W, 3) uint8 BGR, writeable; rows may be padded.
    crops:    (N, 3, S, S) float32 C-contiguous, in the normalized space of
              :func:`warp_normalize_cpu` (same mean/std/rgb).
    matrices: (N, 2, 3) float32/float64, frame -> crop.
    mask:     (S, S) float32 C-contiguous feather mask in [0, 1].
    Faces are applied in order; only pixels mapping inside a crop change.
    """
    h, w, pitch = _check_frame(frame, writeable=True)
    if not isinstance(crops, np.ndarray):
        raise ValueError(f"crops must be a numpy.ndarray, got {type(crops).__name__}")
    if crops.ndim != 4 or crops.shape[1] != 3 or crops.shape[2] != crops.shape[3]:
        raise ValueError(f"crops must have shape (N, 3, S, S), got {crops.shape}")
    n, s = int(crops.shape[0]), int(crops.shape[2])
    _check_float32_array("crops", crops, (n, 3, s, s), "(N, 3, S, S)")
    _check_size(s, "crops crop size S")
    m = _check_matrices(matrices, invertible=False)
    if m.shape[0] != n:
        raise ValueError(
            f"matrices must have one matrix per crop: got {m.shape[0]} matrices for {n} crops"
        )
    _check_float32_array("mask", mask, (s, s), "(S, S)")
    mean_a = _check_norm("mean", mean, nonzero=False)
    std_a = _check_norm("std", std, nonzero=True)
    if n == 0:
        return
    lib = load_native("cpu")
    status = lib.pridss_paste_back_cpu(
        frame.ctypes.data, h, w, pitch, crops.ctypes.data, m.ctypes.data, n, s,
        mask.ctypes.data, mean_a.ctypes.data, std_a.ctypes.data, int(bool(rgb)),
    )
    _raise_status(lib, "pridss_paste_back_cpu", status)
