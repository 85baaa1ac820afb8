"""cuda-python helpers: clear errors without a GPU; the real stream/event/pinned-memory/graph path
runs wherever a GPU is present (skips here with the reason)."""

import numpy as np
import pytest

from pridss_rt.backends.trt import cuda
from pridss_rt.errors import CudaError

pytest.importorskip("cuda.bindings", reason="cuda-python not installed")
N_GPUS, WHY = cuda.probe_devices()
needs_gpu = pytest.mark.skipif(N_GPUS == 0, reason=f"no CUDA device here ({WHY})")


@pytest.mark.skipif(N_GPUS > 0, reason="a GPU is present")
def test_without_gpu_errors_are_clear():
    assert cuda.device_count() == 0 and WHY.startswith("cudaGetDeviceCount: cuda")
    with pytest.raises(CudaError, match=r"cudaStreamCreateWithFlags failed: cuda\w+"):
        cuda.Stream()
    with pytest.raises(CudaError, match=r"cudaMalloc\(1024\) failed"):
        cuda.DeviceBuffer(1024)


def test_check_unpacks_results():
    rt = cuda.cudart()
    assert cuda.check((rt.cudaError_t.cudaSuccess, 7)) == 7
    assert cuda.check((rt.cudaError_t.cudaSuccess, 1, 2)) == (1, 2)
    assert cuda.check((rt.cudaError_t.cudaSuccess,)) is None
    with pytest.raises(CudaError, match=r"myCall failed: cudaErrorMemoryAllocation"):
        cuda.check((rt.cudaError_t.cudaErrorMemoryAllocation, None), "myCall")


@needs_gpu
@pytest.mark.gpu
def test_pinned_roundtrip_on_nonblocking_stream_with_events():
    n = 1 << 20
    src = cuda.PinnedBuffer((n,), np.float32)
    dst = cuda.PinnedBuffer((n,), np.float32)
    src.view((n,))[:] = np.arange(n, dtype=np.float32)
    dev = cuda.DeviceBuffer(n * 4)
    with cuda.Stream() as s:
        start, done = cuda.Event(timing=True), cuda.Event(timing=True)
        start.record(s)
        cuda.copy_htod_async(dev.ptr, src.view((n,)), s)
        cuda.copy_dtoh_async(dst.view((n,)), dev.ptr, s)
        done.record(s)
        done.synchronize()
        assert done.is_done()
        assert done.elapsed_ms(start) >= 0
    np.testing.assert_array_equal(dst.view((n,)), np.arange(n, dtype=np.float32))
    for b in (src, dst, dev):
        b.free()


@needs_gpu
@pytest.mark.gpu
def test_cuda_graph_replays_captured_copies():
    n = 4096
    host_in = cuda.PinnedBuffer((n,), np.float32)
    host_out = cuda.PinnedBuffer((n,), np.float32)
    dev = cuda.DeviceBuffer(n * 4)
    with cuda.Stream() as s:
        graph = cuda.CudaGraph(s, lambda: (cuda.copy_htod_async(dev.ptr, host_in.view((n,)), s),
                                           cuda.copy_dtoh_async(host_out.view((n,)), dev.ptr, s)))
        for k in range(3):  # same addresses, new contents each replay
            host_in.view((n,))[:] = k
            graph.launch()
            s.synchronize()
            assert (host_out.view((n,)) == k).all()
        graph.close()
    for b in (host_in, host_out, dev):
        b.free()
