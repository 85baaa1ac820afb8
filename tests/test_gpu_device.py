"""Checks that need a real NVIDIA GPU (marked ``gpu``; each skips with its reason on a machine without one).

(a) The native CUDA kernels (``libpridss_ops_cuda``) against the CPU library on the same inputs: the same
    per-pixel code, built without FMA contraction on both sides, so the results are expected identical.
(b) The GPU frame path (:mod:`pridss_rt.executors.device`) with real cuda-python streams, events, pinned and device memory
    and the real kernels; TensorRT is replaced by ONNX Runtime reading and writing the bindings' device
    memory (TensorRT itself is not installed on the machines this was run on). Compared with the host path.
(c) The demo pack's networks on the GPU through PyTorch (``export/torch_backend.py``) against ONNX Runtime.
"""

import ctypes
import sys

import numpy as np
import pytest

from pridss_rt import native
from pridss_rt.backends.trt import cuda

cv2 = pytest.importorskip("cv2")
pytest.importorskip("cuda.bindings", reason="cuda-python not installed")
N_GPUS, WHY = cuda.probe_devices()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(N_GPUS == 0, reason=f"no CUDA device here ({WHY})")]

from test_native import MEAN, STD, feather_mask, random_matrices, smooth_frame  # noqa: E402


@pytest.fixture(scope="module")
def cuda_lib(native_build):
    build_dir, cache = native_build
    compiler = cache.get("CMAKE_CUDA_COMPILER", "")
    if not compiler or compiler.endswith("NOTFOUND"):
        pytest.skip("CMake found no CUDA compiler (nvcc): the CUDA library is not built")
    return native.load_native("cuda"), native.load_native("cpu")


def _f3(values):
    return (ctypes.c_float * 3)(*values)


def _padded(frame, pad):
    """The same pixels in rows of 3*W + pad bytes (a row-pitched view, like a cropped video buffer)."""
    h, w, _ = frame.shape
    buf = np.zeros((h, 3 * w + pad), np.uint8)
    buf[:, :3 * w] = frame.reshape(h, -1)
    return buf, buf[:, :3 * w].reshape(h, w, 3)


def _h2d(ptr: int, host: np.ndarray) -> None:
    """Synchronous copy (the legacy stream: callers synchronize their own streams first)."""
    rt = cuda.cudart()
    cuda.check(rt.cudaMemcpy(ptr, host.ctypes.data, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice), "H2D")


def _d2h(ptr: int, shape, dtype) -> np.ndarray:
    out = np.empty(shape, dtype)
    rt = cuda.cudart()
    cuda.check(rt.cudaMemcpy(out.ctypes.data, ptr, out.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost), "D2H")
    return out


class Dev:
    """Device copy of a host array (synchronous helpers for tests)."""

    def __init__(self, host: np.ndarray):
        self.shape, self.dtype = host.shape, host.dtype
        self.buf = cuda.DeviceBuffer(max(1, host.nbytes))
        _h2d(self.buf.ptr, host)

    def get(self) -> np.ndarray:
        return _d2h(self.buf.ptr, self.shape, self.dtype)

    @property
    def ptr(self):
        return ctypes.c_void_p(self.buf.ptr)


# (h, w, crop S, faces, partly outside, rgb, row padding in bytes)
CASES = [
    (301, 417, 112, 1, False, True, 0),
    (301, 417, 112, 3, True, True, 5),
    (97, 131, 64, 3, True, False, 0),
    (1080, 1920, 128, 8, False, True, 64),
    (480, 641, 128, 3, True, False, 3),
]


@pytest.mark.parametrize("h,w,size,n,outside,rgb,pad", CASES)
def test_cuda_warp_normalize_equals_cpu(cuda_lib, h, w, size, n, outside, rgb, pad):
    lib, cpu = cuda_lib
    rng = np.random.default_rng(h + w + n)
    buf, frame = _padded(smooth_frame(rng, h, w), pad)
    mats = random_matrices(rng, n, h, w, size, outside=outside)
    want = np.empty((n, 3, size, size), np.float32)
    assert cpu.pridss_warp_normalize_cpu(frame.ctypes.data, h, w, buf.strides[0], mats.ctypes.data, n, size,
                                         _f3(MEAN), _f3(STD), int(rgb), want.ctypes.data) == 0
    d_frame, d_mats = Dev(buf), Dev(mats)
    d_out = Dev(np.full((n, 3, size, size), np.nan, np.float32))
    with cuda.Stream() as s:
        rc = lib.pridss_warp_normalize(d_frame.ptr, h, w, buf.strides[0], d_mats.ptr, n, size, _f3(MEAN),
                                       _f3(STD), int(rgb), d_out.ptr, ctypes.c_void_p(s.ptr))
        assert rc == 0, lib.pridss_status_string(rc)
        s.synchronize()
    got = d_out.get()
    assert np.isfinite(got).all(), "the kernel left output elements unwritten"
    diff = np.abs(got - want)
    # identical math (no FMA contraction either side); allow 1 float32 ulp of the normalized value
    assert diff.max() <= 1e-6 * max(1.0, np.abs(want).max()), f"max |cuda - cpu| = {diff.max()}"
    for d in (d_frame, d_mats, d_out):
        d.buf.free()


@pytest.mark.parametrize("h,w,size,n,outside,rgb,pad", CASES)
def test_cuda_paste_back_equals_cpu(cuda_lib, h, w, size, n, outside, rgb, pad):
    lib, cpu = cuda_lib
    rng = np.random.default_rng(7 * h + w + n)
    buf, frame = _padded(smooth_frame(rng, h, w), pad)
    buf[:, 3 * w:] = 211  # row padding must survive untouched
    mats = random_matrices(rng, n, h, w, size, outside=outside)
    crops = rng.standard_normal((n, 3, size, size)).astype(np.float32)
    mask = feather_mask(size, size // 6)
    want_buf = buf.copy()
    want = want_buf[:, :3 * w].reshape(h, w, 3)
    assert cpu.pridss_paste_back_cpu(want.ctypes.data, h, w, buf.strides[0], crops.ctypes.data, mats.ctypes.data,
                                     n, size, mask.ctypes.data, _f3(MEAN), _f3(STD), int(rgb)) == 0
    d_frame, d_crops, d_mats, d_mask = Dev(buf), Dev(crops), Dev(mats), Dev(mask)
    with cuda.Stream() as s:
        rc = lib.pridss_paste_back(d_frame.ptr, h, w, buf.strides[0], d_crops.ptr, d_mats.ptr, n, size, d_mask.ptr,
                                   _f3(MEAN), _f3(STD), int(rgb), ctypes.c_void_p(s.ptr))
        assert rc == 0, lib.pridss_status_string(rc)
        s.synchronize()
    got_buf = d_frame.get()
    assert (got_buf[:, 3 * w:] == 211).all(), "row padding was written"
    d = np.abs(got_buf.astype(int) - want_buf.astype(int))
    assert (want_buf != buf).sum() > 100, "test case pasted nothing"
    assert d.max() <= 1 and (d > 0).mean() < 1e-3, f"max {d.max()}, {(d > 0).sum()} bytes differ"
    for x in (d_frame, d_crops, d_mats, d_mask):
        x.buf.free()


def test_cuda_kernels_report_bad_arguments(cuda_lib):
    lib, _ = cuda_lib
    null = ctypes.c_void_p(0)
    rc = lib.pridss_warp_normalize(null, 10, 10, 30, null, 1, 1, _f3(MEAN), _f3(STD), 1, null, null)
    assert rc != 0 and lib.pridss_status_string(rc)


def test_cuda_graphs_per_batch_size_replay_like_eager_launches_in_alternation(cuda_lib):
    # the CUDA-graph path of the TensorRT sessions (backends/trt/cuda.CudaGraph: capture after a warm-up launch,
    # one graph per batch size, replay on the same stream) with real CUDA, on the native warp kernel instead of a
    # TensorRT engine (TensorRT is not installed on the machines this runs on): batch sizes in alternation, new
    # inputs written into the captured buffers before each replay, every result equal to an eager launch's
    lib, _ = cuda_lib
    rng = np.random.default_rng(11)
    h, w, size = 240, 320, 64
    frame = smooth_frame(rng, h, w)
    d_frame = Dev(frame)
    sizes = (1, 3, 5)
    mats = {n: Dev(random_matrices(rng, n, h, w, size, outside=True)) for n in sizes}
    outs = {n: Dev(np.zeros((n, 3, size, size), np.float32)) for n in sizes}
    eager_out = Dev(np.zeros((5, 3, size, size), np.float32))
    with cuda.Stream() as s:
        def launch(n, out):
            rc = lib.pridss_warp_normalize(d_frame.ptr, h, w, frame.strides[0], mats[n].ptr, n, size, _f3(MEAN),
                                           _f3(STD), 1, out, ctypes.c_void_p(s.ptr))
            assert rc == 0, lib.pridss_status_string(rc)

        graphs = {}
        for n in sizes:
            launch(n, outs[n].ptr)  # warm-up on this shape, outside the capture
            graphs[n] = cuda.CudaGraph(s, lambda n=n: launch(n, outs[n].ptr))
        s.synchronize()
        try:
            for step, n in enumerate((3, 1, 5, 3, 5, 1, 3)):
                m = random_matrices(np.random.default_rng(100 + step), n, h, w, size, outside=True)
                _h2d(mats[n].buf.ptr, m)  # new data at the captured address
                graphs[n].launch()
                launch(n, eager_out.ptr)
                s.synchronize()
                got = _d2h(outs[n].buf.ptr, (n, 3, size, size), np.float32)
                want = _d2h(eager_out.buf.ptr, (n, 3, size, size), np.float32)
                assert np.array_equal(got, want), f"step {step}, batch {n}: graph replay differs from eager launch"
        finally:
            for g in graphs.values():
                g.close()
    for d in [d_frame, eager_out, *mats.values(), *outs.values()]:
        d.buf.free()


# ---------------------------------------------------------------------------------------------------------
# (b) the GPU frame path with real CUDA and real kernels
# ---------------------------------------------------------------------------------------------------------


class DeviceMemory:
    """Lets the ONNX Runtime stand-in for TensorRT read and write real device bindings (synchronously)."""

    def read(self, ptr, dtype, shape):
        cuda.check(cuda.cudart().cudaDeviceSynchronize(), "cudaDeviceSynchronize")
        return _d2h(ptr, shape, dtype)

    def write(self, ptr, arr):
        _h2d(ptr, arr)
        cuda.check(cuda.cudart().cudaDeviceSynchronize(), "cudaDeviceSynchronize")


@pytest.fixture
def real_gpu_path(monkeypatch, tmp_path, shared_tiny_pack, cuda_lib):
    from test_backend_trt_fake import fake_engines, make_fake_trt

    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(DeviceMemory(), calls))
    info = cuda.device_info(0)
    pack, root, _ = fake_engines(monkeypatch, tmp_path, shared_tiny_pack, info)
    return pack, root, calls


@pytest.mark.parametrize("color_match", [False, True])
def test_real_gpu_frame_path_matches_host_path(real_gpu_path, color_match):
    from pridss_rt import Anonymizer, BlendConfig
    from pridss_rt.media import SAMPLE, read_image

    pack, root, calls = real_gpu_path
    frame = read_image(SAMPLE)
    cfg = BlendConfig(color_match=color_match)  # colour matching: the same function on both executors
    with Anonymizer(pack, "trt", engines_root=root, blend=cfg, threads=1) as g, \
            Anonymizer(pack, "ort-cpu", blend=cfg, threads=1) as h:
        assert g.backend == "trt" and g.device is not None
        assert type(g.device.s_main).__module__ == "pridss_rt.backends.trt.cuda"  # real streams, not stand-ins
        for k in range(3):
            og, fg = g.process(frame)
            oh, fh = h.process(frame)
            assert [f.status for f in fg] == [f.status for f in fh] == ["anonymized"]
            assert fg[0].reference == fh[0].reference
            assert fg[0].sim == pytest.approx(fh[0].sim, abs=5e-3)
            d = np.abs(og.astype(int) - oh.astype(int))
            assert d.max() <= 6 and d.mean() < 0.05, (d.max(), d.mean())
            outside = ~np.any(oh != frame, axis=2)
            assert (og[outside] == frame[outside]).mean() > 0.999, "pixels outside the face changed on the GPU"
        assert g.stats["syntheses"] == h.stats["syntheses"]


def test_real_gpu_frame_path_scores_with_the_coherence_critic(monkeypatch, tmp_path, cuda_lib):
    # a pack with a critic: the device path feeds the synthesized crops to it device-to-device, on real memory
    import tinypack
    from test_backend_trt_fake import fake_engines, make_fake_trt

    from pridss_rt import Anonymizer, BlendConfig
    from pridss_rt.media import SAMPLE, read_image

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(DeviceMemory(), []))
    pack_dir = tinypack.make_pack(tmp_path / "packs")
    tinypack.add_coherence(pack_dir, weight=50.0)
    pack, root, _ = fake_engines(monkeypatch, tmp_path, pack_dir, cuda.device_info(0))
    frame = read_image(SAMPLE)
    with Anonymizer(pack, "trt", engines_root=root, blend=BlendConfig(color_match=False), threads=1) as g, \
            Anonymizer(pack, "ort-cpu", blend=BlendConfig(color_match=False), threads=1) as h:
        assert g.device is not None and "coherence" in g.device.io
        (og, fg), (oh, fh) = g.process(frame), h.process(frame)
    assert fg[0].reference == fh[0].reference and fg[0].p_composite == pytest.approx(fh[0].p_composite, abs=1e-3)
    assert np.abs(og.astype(int) - oh.astype(int)).max() <= 6


# ---------------------------------------------------------------------------------------------------------
# (c) the demo pack's networks on the GPU (PyTorch) against ONNX Runtime
# ---------------------------------------------------------------------------------------------------------


def test_demo_pack_on_gpu_matches_onnxruntime():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch has no CUDA here")
    from export.torch_backend import open_torch_networks
    from pridss_rt import load_pack
    from pridss_rt.backends import open_networks

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    pack = load_pack()
    z = pack.bank()[0][:5]
    with open_networks(pack, "ort-cpu", threads=2) as o, open_torch_networks(pack, device="cuda") as t, \
            open_torch_networks(pack, device="cuda", half=True) as th:
        syn = o["synthesis"]
        img = syn.run({syn.inputs[0].name: z})[syn.outputs[0].name]
        np.testing.assert_allclose(t["synthesis"].run({syn.inputs[0].name: z})[syn.outputs[0].name], img, atol=1e-3)
        img16 = th["synthesis"].run({syn.inputs[0].name: z})[syn.outputs[0].name]
        assert np.abs(img16 - img).mean() < 0.01, "float16 synthesis drifts from float32"
        for role in ("encoder", "gender", "identity") + (("coherence",) if "coherence" in pack.networks else ()):
            s = o[role]
            a = s.run({s.inputs[0].name: img})[s.outputs[0].name]
            b = t[role].run({s.inputs[0].name: img})[s.outputs[0].name]
            np.testing.assert_allclose(b, a, atol=1e-3, err_msg=role)
