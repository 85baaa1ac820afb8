"""Tests of the native operations (CMakeLists.txt, native/, pridss_rt/native.py).

A session fixture builds the CMake project into a temporary directory
(Release; CUDA, when CMake finds nvcc, for sm_75 only to keep it fast) and
points PRIDSS_RT_NATIVE_LIB at it.

Measured tolerances (opencv-python-headless 4.x, smooth synthetic frames):
cv2.warpAffine quantizes source coordinates to 1/32 pixel and rounds its
output to uint8, while warp_normalize samples in float and does not round.
Where all 4 bilinear neighbours lie inside the frame the difference was
<= 0.75 pixel levels (of 255); in the 1-pixel band along the frame border,
where a neighbour is the constant 0, the 1/32-pixel quantization of the
weights shows up as up to ~4.6 levels (bound 255/32 + 0.5 ~ 8.5).  Against
an exact float64 reference the op agrees within 0.01 levels everywhere.
paste_back differs from its float64 reference by at most 1 level (rounding
of values within float32 error of .5).
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from pridss_rt import native  # noqa: E402  (imported on demand, numpy/ctypes only)

REPO_ROOT = Path(__file__).resolve().parents[1]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------
# Build fixture
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cpu_lib(native_build):
    return native.load_native("cpu")


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def smooth_frame(rng, h, w):
    """Face-like smooth content: random 3-channel image upsampled bicubically."""
    small = rng.uniform(0, 255, (max(2, h // 24), max(2, w // 24), 3)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.rint(big), 0, 255).astype(np.uint8)


def similarity(center, face_px, angle, size):
    """frame -> crop matrix mapping a face of `face_px` pixels at `center` onto the crop."""
    scale = size / face_px
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = np.array([(size - 1) / 2, (size - 1) / 2]) - m[:, :2] @ np.asarray(center, float)
    return m.astype(np.float32)


def random_matrices(rng, n, h, w, size, outside=False):
    mats = []
    for _ in range(n):
        if outside:  # centre near/over the frame border: the face is partly outside
            center = (rng.choice([rng.uniform(-0.1, 0.1), rng.uniform(0.9, 1.1)]) * w,
                      rng.uniform(-0.1, 1.1) * h)
        else:
            center = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h)
        face_px = rng.uniform(0.25, 0.6) * min(h, w)
        mats.append(similarity(center, face_px, rng.uniform(-np.pi, np.pi), size))
    return np.stack(mats)


def to_pixels(normalized, rgb):
    """(3, S, S) normalized -> (S, S, 3) float64 BGR pixel units."""
    mean = np.asarray(MEAN)[:, None, None]
    std = np.asarray(STD)[:, None, None]
    px = (normalized.astype(np.float64) * std + mean) * 255.0
    px = px.transpose(1, 2, 0)
    return px[:, :, ::-1] if rgb else px


def warp_reference(frame, m, size):
    """Exact float64 warp: bilinear, zero outside the frame, (S, S, 3) BGR."""
    h, w = frame.shape[:2]
    inv = cv2.invertAffineTransform(m.astype(np.float64))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx), np.floor(sy)
    wx, wy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    src = frame.astype(np.float64)

    def tap(xi, yi):
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        v = src[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        return np.where(ok[..., None], v, 0.0)

    top = (1 - wx) * tap(x0, y0) + wx * tap(x0 + 1, y0)
    bottom = (1 - wx) * tap(x0, y0 + 1) + wx * tap(x0 + 1, y0 + 1)
    return (1 - wy) * top + wy * bottom


def crop_points(m, h, w):
    """q = M p for every frame pixel, in float32 with the op's operation order."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    qx = (m[0, 0] * xs + m[0, 1] * ys) + m[0, 2]
    qy = (m[1, 0] * xs + m[1, 1] * ys) + m[1, 2]
    return qx, qy


def paste_reference(frame, crops, mats, mask, rgb):
    """Straightforward float64 paste-back, faces in order, rounding after each."""
    out = frame.astype(np.float64)
    h, w = frame.shape[:2]
    s = mask.shape[0]
    for crop, m in zip(crops, mats):
        qx, qy = crop_points(m, h, w)
        inside = (qx >= 0) & (qx <= s - 1) & (qy >= 0) & (qy <= s - 1)
        qx = qx[inside].astype(np.float64)
        qy = qy[inside].astype(np.float64)
        x0 = np.minimum(np.floor(qx), s - 2).astype(np.int64)
        y0 = np.minimum(np.floor(qy), s - 2).astype(np.int64)
        wx, wy = qx - x0, qy - y0

        def sample(img):  # img (S, S, ...) float64
            wxe = wx.reshape(wx.shape + (1,) * (img.ndim - 2))
            wye = wy.reshape(wy.shape + (1,) * (img.ndim - 2))
            top = (1 - wxe) * img[y0, x0] + wxe * img[y0, x0 + 1]
            bottom = (1 - wxe) * img[y0 + 1, x0] + wxe * img[y0 + 1, x0 + 1]
            return (1 - wye) * top + wye * bottom

        gen = sample(to_pixels(crop, rgb))
        a = np.clip(sample(mask.astype(np.float64)), 0, 1)[:, None]
        blended = a * gen + (1 - a) * out[inside]
        out[inside] = np.floor(np.clip(blended, 0, 255) + 0.5)
    return out.astype(np.uint8)


def feather_mask(size, border):
    ramp = np.clip(np.minimum(np.arange(size), np.arange(size)[::-1]) / border, 0, 1)
    return np.ascontiguousarray(np.minimum.outer(ramp, ramp), dtype=np.float32)


# ---------------------------------------------------------------------------
# (a) warp_normalize vs cv2.warpAffine
# ---------------------------------------------------------------------------

WARP_CASES = [
    # (frame h, w, crop S, faces, partly outside, rgb)
    (301, 417, 112, 1, False, True),
    (301, 417, 112, 3, True, True),
    (97, 131, 64, 3, True, False),
    (240, 181, 97, 1, True, True),
    (480, 641, 128, 3, False, False),
]


@pytest.mark.parametrize("h,w,size,n,outside,rgb", WARP_CASES)
def test_warp_normalize_matches_cv2(cpu_lib, h, w, size, n, outside, rgb):
    rng = np.random.default_rng(h * 1000 + w + n)
    frame = smooth_frame(rng, h, w)
    mats = random_matrices(rng, n, h, w, size, outside=outside)
    out = native.warp_normalize_cpu(frame, mats, size, MEAN, STD, rgb=rgb)
    assert out.shape == (n, 3, size, size) and out.dtype == np.float32

    any_border = False
    for i in range(n):
        ref = cv2.warpAffine(frame, mats[i], (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        diff3 = np.abs(to_pixels(out[i], rgb) - ref.astype(np.float64))
        diff = diff3.max(axis=2)

        inv = cv2.invertAffineTransform(mats[i].astype(np.float64))
        ys, xs = np.mgrid[0:size, 0:size]
        sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        far = (sx < -1.01) | (sx > w + 0.01) | (sy < -1.01) | (sy > h + 0.01)
        interior = (sx >= 0.01) & (sx <= w - 1.01) & (sy >= 0.01) & (sy <= h - 1.01)
        border = ~far & ~interior
        any_border |= bool(border.any())

        assert diff[interior].max(initial=0) <= 1.0, "interior differs from cv2 by > 1 level"
        assert diff[border].max(initial=0) <= 8.5, "frame-border band differs from cv2 by > 8.5"
        assert diff[far].max(initial=0) <= 1e-3, "pixels mapped outside the frame must be 0"
        assert diff3.mean() <= 0.35
        if outside:
            assert far.any(), "test case should put part of the face outside the frame"
    if outside:
        assert any_border


@pytest.mark.parametrize("rgb", [True, False])
def test_warp_normalize_matches_float64_reference(cpu_lib, rgb):
    """Noise frame (worst case for interpolation), faces partly outside, padded rows."""
    rng = np.random.default_rng(7)
    h, w, size = 123, 157, 80
    padded = rng.integers(0, 256, (h, w + 5, 3), dtype=np.uint8)
    frame = padded[:, :w]  # row pitch (w + 5) * 3 bytes
    assert not frame.flags.c_contiguous
    mats = np.concatenate([random_matrices(rng, 2, h, w, size, outside=True),
                           random_matrices(rng, 1, h, w, size)])
    out = native.warp_normalize_cpu(frame, mats, size, MEAN, STD, rgb=rgb)
    for i in range(len(mats)):
        ref = warp_reference(frame, mats[i], size)
        assert np.abs(to_pixels(out[i], rgb) - ref).max() <= 0.01


def test_warp_normalize_values_and_channel_order(cpu_lib):
    """Identity warp of a frame with distinct channel values: exact normalization."""
    frame = np.empty((16, 16, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 120, 250  # B, G, R
    eye = np.array([[[1, 0, 0], [0, 1, 0]]], np.float32)
    out = native.warp_normalize_cpu(frame, eye, 16, MEAN, STD, rgb=True)
    expected = (np.array([250, 120, 10]) / 255.0 - MEAN) / STD
    np.testing.assert_allclose(out[0, :, 5, 7], expected, rtol=0, atol=1e-5)
    out_bgr = native.warp_normalize_cpu(frame, eye, 16, MEAN, STD, rgb=False)
    expected_bgr = (np.array([10, 120, 250]) / 255.0 - MEAN) / STD
    np.testing.assert_allclose(out_bgr[0, :, 5, 7], expected_bgr, rtol=0, atol=1e-5)
    # Half the crop beyond the frame (crop 32 > frame 16) reads as pixel 0.
    out_big = native.warp_normalize_cpu(frame, eye, 32, MEAN, STD, rgb=True)
    np.testing.assert_allclose(out_big[0, :, 20, 25], -np.asarray(MEAN) / STD, atol=1e-6)
    assert native.warp_normalize_cpu(frame, eye[:0], 16, MEAN, STD).shape == (0, 3, 16, 16)


# ---------------------------------------------------------------------------
# (b) paste_back vs float64 reference
# ---------------------------------------------------------------------------

PASTE_CASES = [
    # (frame h, w, crop S, faces, partly outside, rgb, padded rows)
    (211, 303, 96, 1, False, True, False),
    (211, 303, 96, 3, True, True, False),
    (157, 129, 64, 3, False, False, True),
    (90, 75, 112, 2, True, True, True),
]


@pytest.mark.parametrize("h,w,size,n,outside,rgb,padded", PASTE_CASES)
def test_paste_back_matches_reference(cpu_lib, h, w, size, n, outside, rgb, padded):
    rng = np.random.default_rng(h + w * 7 + n)
    base = rng.integers(0, 256, (h, w + (3 if padded else 0), 3), dtype=np.uint8)
    pristine = base.copy()
    frame = base[:, :w]
    mats = random_matrices(rng, n, h, w, size, outside=outside)
    if n > 1 and not outside:  # make faces overlap to exercise the paste order
        mats[1:, :, 2] += rng.uniform(-5, 5, (n - 1, 2)).astype(np.float32)
        mats[1:, :, :2] = mats[0, :, :2]
    crops = rng.normal(0, 1.2, (n, 3, size, size)).astype(np.float32)  # some clip at 0/255
    mask = feather_mask(size, size // 6)

    before = frame.copy()
    expected = paste_reference(before, crops, mats, mask, rgb)
    native.paste_back_cpu(frame, crops, mats, mask, MEAN, STD, rgb=rgb)

    diff = np.abs(frame.astype(np.int16) - expected.astype(np.int16))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 1e-3

    # Pixels mapped outside every crop (float64 geometry, 0.01 px margin): untouched.
    covered = np.zeros((h, w), bool)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    for m in mats.astype(np.float64):
        qx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        qy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        covered |= (qx > -0.01) & (qx < size - 0.99) & (qy > -0.01) & (qy < size - 0.99)
    assert covered.any() and not covered.all()
    np.testing.assert_array_equal(frame[~covered], before[~covered])
    np.testing.assert_array_equal(base[:, w:], pristine[:, w:])  # row padding untouched


def test_paste_back_does_not_write_row_padding(cpu_lib):
    rng = np.random.default_rng(3)
    h, w, size = 64, 50, 48
    base = rng.integers(0, 256, (h, w + 4, 3), dtype=np.uint8)
    pristine = base.copy()
    # A face covering the whole frame and beyond.
    mats = similarity((w / 2, h / 2), 1.5 * max(h, w), 0.3, size)[None]
    crops = rng.normal(0, 1, (1, 3, size, size)).astype(np.float32)
    native.paste_back_cpu(base[:, :w], crops, mats, np.ones((size, size), np.float32), MEAN, STD)
    np.testing.assert_array_equal(base[:, w:], pristine[:, w:])
    assert (base[:, :w] != pristine[:, :w]).any()


def test_paste_back_order_and_mask(cpu_lib):
    """Same M twice with mask 1: the second face wins; mask 0: frame unchanged."""
    h, w, size = 40, 40, 16
    frame = np.full((h, w, 3), 77, np.uint8)
    m = similarity((20, 20), 16, 0.0, size)
    mats = np.stack([m, m])
    crops = np.empty((2, 3, size, size), np.float32)
    for i, px in enumerate((30.0, 200.0)):
        crops[i] = ((px / 255 - np.asarray(MEAN)) / np.asarray(STD))[:, None, None]
    native.paste_back_cpu(frame, crops, mats, np.ones((size, size), np.float32), MEAN, STD)
    qx, qy = crop_points(m, h, w)
    inside = (qx >= 0) & (qx <= size - 1) & (qy >= 0) & (qy <= size - 1)
    assert inside.sum() > 100
    assert (frame[inside] == 200).all() and (frame[~inside] == 77).all()

    before = frame.copy()
    native.paste_back_cpu(frame, crops, mats, np.zeros((size, size), np.float32), MEAN, STD)
    np.testing.assert_array_equal(frame, before)


def test_warp_then_paste_roundtrip(cpu_lib):
    """Pasting the unmodified crop back (mask 1) leaves a smooth frame nearly unchanged."""
    rng = np.random.default_rng(11)
    h, w, size = 200, 260, 128
    frame = smooth_frame(rng, h, w)
    mats = similarity((130, 100), 110, 0.4, size)[None]
    crops = native.warp_normalize_cpu(frame, mats, size, MEAN, STD)
    out = frame.copy()
    native.paste_back_cpu(out, crops, mats, np.ones((size, size), np.float32), MEAN, STD)
    assert np.abs(out.astype(int) - frame.astype(int)).max() <= 3


# ---------------------------------------------------------------------------
# C API status codes (CPU library, called directly through ctypes)
# ---------------------------------------------------------------------------


def test_c_api_rejects_bad_arguments(cpu_lib):
    frame = np.zeros((8, 8, 3), np.uint8)
    mats = np.array([[[1, 0, 0], [0, 1, 0]]], np.float32)
    mean = np.asarray(MEAN, np.float32)
    std = np.asarray(STD, np.float32)
    out = np.empty((1, 3, 4, 4), np.float32)

    def warp(frame_ptr=frame.ctypes.data, h=8, w=8, pitch=24, n=1, s=4, std_ptr=std.ctypes.data):
        return cpu_lib.pridss_warp_normalize_cpu(frame_ptr, h, w, pitch, mats.ctypes.data, n, s,
                                                 mean.ctypes.data, std_ptr, 1, out.ctypes.data)

    assert warp() == 0
    assert warp(frame_ptr=None) == -1
    assert warp(pitch=23) == -2
    assert warp(h=0) == -2
    assert warp(s=1) == -3
    assert warp(n=-1) == -4
    zero_std = np.array([0.2, 0.0, 0.2], np.float32)
    assert warp(std_ptr=zero_std.ctypes.data) == -5
    assert b"pitch" in cpu_lib.pridss_status_string_cpu(-2)
    assert cpu_lib.pridss_status_string_cpu(12345) == b"unknown pridss status code"
    mask = np.ones((4, 4), np.float32)
    assert cpu_lib.pridss_paste_back_cpu(frame.ctypes.data, 8, 8, 24, None, mats.ctypes.data, 1,
                                         4, mask.ctypes.data, mean.ctypes.data,
                                         std.ctypes.data, 1) == -1


# ---------------------------------------------------------------------------
# (c) CUDA library: built and exporting its symbols (not run: no GPU needed)
# ---------------------------------------------------------------------------


def test_cuda_library_built_and_exports_symbols(native_build):
    build_dir, cache = native_build
    compiler = cache.get("CMAKE_CUDA_COMPILER", "")
    if not compiler or compiler.endswith("NOTFOUND"):
        pytest.skip("CMake found no CUDA compiler (nvcc): the CUDA library is not built")
    path = build_dir / native.library_filename("cuda")
    assert path.is_file(), f"nvcc found ({compiler}) but {path} was not built"
    data = path.read_bytes()
    assert b"sm_75" in data, "no sm_75 device code embedded"

    lib = ctypes.CDLL(str(path))  # static cudart: loads without a CUDA driver
    for name in ("pridss_warp_normalize", "pridss_paste_back", "pridss_status_string"):
        assert hasattr(lib, name), f"{name} not exported"
    for name in ("pridss_warp_normalize_cpu", "warp_normalize_kernel"):
        assert not hasattr(lib, name), f"{name} must not be exported by the CUDA library"

    cuda = native.load_native("cuda")  # argtypes declared; the ops are NOT called
    assert cuda.pridss_status_string(-3) == b"crop_size out of [2, 8192]"


# ---------------------------------------------------------------------------
# (d) Python wrapper validation
# ---------------------------------------------------------------------------

_F = np.zeros((20, 24, 3), np.uint8)
_M = np.array([[[1, 0, 0], [0, 1, 0]]], np.float32)
_S = 8
_C = np.zeros((1, 3, _S, _S), np.float32)
_K = np.ones((_S, _S), np.float32)

WARP_BAD = [
    ("frame", dict(frame=_F.astype(np.float32))),
    ("frame", dict(frame=_F[..., 0])),
    ("frame", dict(frame=_F[:, ::2])),
    ("frame", dict(frame=np.ascontiguousarray(_F.transpose(1, 0, 2)).transpose(1, 0, 2))),
    ("frame", dict(frame=[[0, 0, 0]])),
    ("matrices", dict(matrices=_M[0])),
    ("matrices", dict(matrices=_M.astype(np.int32))),
    ("matrices", dict(matrices=np.full((1, 2, 3), np.nan, np.float32))),
    (r"matrices\[1\]", dict(matrices=np.stack([_M[0], np.zeros((2, 3), np.float32)]))),
    ("size", dict(size=1)),
    ("size", dict(size=8.0)),
    ("mean", dict(mean=(0.5, 0.5))),
    ("std", dict(std=(0.2, 0.0, 0.2))),
    ("std", dict(std=(0.2, float("inf"), 0.2))),
]


@pytest.mark.parametrize("arg,override", WARP_BAD)
def test_warp_normalize_rejects_bad_input(native_build, arg, override):
    kwargs = dict(frame=_F, matrices=_M, size=_S, mean=MEAN, std=STD)
    kwargs.update(override)
    with pytest.raises(ValueError, match=rf"^{arg}"):
        native.warp_normalize_cpu(**kwargs)


_READ_ONLY = _F.copy()
_READ_ONLY.flags.writeable = False

PASTE_BAD = [
    ("frame", dict(frame=_READ_ONLY)),
    ("frame", dict(frame=np.zeros((20, 24, 4), np.uint8))),
    ("crops", dict(crops=_C.astype(np.float64))),
    ("crops", dict(crops=_C[:, :2])),
    ("crops", dict(crops=np.zeros((1, 3, 8, 9), np.float32))),
    ("crops", dict(crops=np.zeros((1, 3, 8, 16), np.float32)[..., ::2])),
    ("matrices", dict(matrices=np.concatenate([_M, _M]))),
    ("mask", dict(mask=np.ones((_S, _S + 1), np.float32))),
    ("mask", dict(mask=_K.astype(np.float64))),
    ("mask", dict(mask=np.ones((_S, 2 * _S), np.float32)[:, ::2])),
    ("mean", dict(mean="abc")),
    ("std", dict(std=(0.0, 0.0, 0.0))),
]


@pytest.mark.parametrize("arg,override", PASTE_BAD)
def test_paste_back_rejects_bad_input(native_build, arg, override):
    kwargs = dict(frame=_F.copy(), crops=_C, matrices=_M, mask=_K, mean=MEAN, std=STD)
    kwargs.update(override)
    with pytest.raises(ValueError, match=rf"^{arg}"):
        native.paste_back_cpu(**kwargs)


def test_load_native_reports_tried_paths(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(native.ENV_VAR, str(empty))
    monkeypatch.setattr(native, "_PACKAGE_DIR", tmp_path / "pkg" / "pridss_rt")
    with pytest.raises(native.NativeLibraryNotFoundError) as info:
        native.load_native("cpu")
    msg = str(info.value)
    assert str(empty / native.library_filename("cpu")) in msg
    assert str(tmp_path / "pkg" / "build" / native.library_filename("cpu")) in msg
    with pytest.raises(ValueError, match="kind"):
        native.load_native("gpu")


def test_import_pridss_rt_does_not_load_native():
    code = "import sys, pridss_rt; assert 'pridss_rt.native' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout
