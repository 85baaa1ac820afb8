"""Small RAII helpers over cuda-python (``cuda.bindings.runtime``): streams, events, device and pinned
host buffers, async copies and CUDA graphs. No pycuda (no wheels), no torch.

Every call goes through :func:`check`, which turns a non-success ``cudaError_t`` into a
:class:`~pridss_rt.errors.CudaError` naming the call and the error. The module imports cuda-python
lazily, so importing it on a machine without CUDA is fine; the first call raises a clear error.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from pridss_rt._lazy import lazy_import
from pridss_rt.errors import CudaError


def cudart():
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6
        return runtime
    except ImportError:
        try:  # older cuda-python layout
            return lazy_import("cuda.cudart", "CUDA streams and buffers")
        except Exception as exc:
            raise CudaError(f"cuda-python is not installed ({exc}); pip install 'pridss-rt[trt]'") from None


def check(result: Any, what: str = "CUDA call") -> Any:
    """Unpack cuda-python's ``(err, *values)`` tuples, raising :class:`CudaError` on failure."""
    rt = cudart()
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if err != rt.cudaError_t.cudaSuccess:
        ok, name = rt.cudaGetErrorName(err)
        label = name.decode() if isinstance(name, bytes) else str(err)
        raise CudaError(f"{what} failed: {label}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_count() -> int:
    """Number of CUDA devices; 0 (never an exception) when there is no driver or no cuda-python."""
    return probe_devices()[0]


def probe_devices() -> tuple[int, str]:
    """(number of CUDA devices, why 0 when it is 0). Never raises."""
    try:
        rt = cudart()
        err, n = rt.cudaGetDeviceCount()
    except Exception as exc:  # cuda-python missing or its libraries broken
        return 0, f"cuda-python unusable: {exc}"
    if err == rt.cudaError_t.cudaSuccess:
        return int(n), "" if n else "CUDA reports 0 devices"
    _, name = rt.cudaGetErrorName(err)
    label = name.decode() if isinstance(name, bytes) else str(err)
    hint = " (no NVIDIA driver)" if "InsufficientDriver" in label or "NoDevice" in label else ""
    return 0, f"cudaGetDeviceCount: {label}{hint}"


def device_info(index: int = 0) -> dict:
    """name, compute capability, memory, driver and runtime versions of one GPU."""
    rt = cudart()
    prop = check(rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
    drv = check(rt.cudaDriverGetVersion(), "cudaDriverGetVersion")
    rtv = check(rt.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion")
    return {
        "index": index, "name": name, "compute_capability": f"{prop.major}.{prop.minor}",
        "memory_mb": int(prop.totalGlobalMem) // (1 << 20),
        "driver_cuda": f"{drv // 1000}.{drv % 1000 // 10}", "runtime_cuda": f"{rtv // 1000}.{rtv % 1000 // 10}",
    }


def set_device(index: int) -> None:
    check(cudart().cudaSetDevice(index), f"cudaSetDevice({index})")


class Stream:
    """A non-blocking CUDA stream (does not synchronize with the legacy default stream)."""

    def __init__(self):
        rt = cudart()
        self.handle = check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def wait(self, event: "Event") -> None:
        check(cudart().cudaStreamWaitEvent(self.handle, event.handle, 0), "cudaStreamWaitEvent")

    def close(self) -> None:
        if getattr(self, "handle", None) is not None:
            check(cudart().cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Event:
    """A CUDA event; timing disabled unless asked (cheaper for pure synchronization)."""

    def __init__(self, timing: bool = False):
        rt = cudart()
        flags = rt.cudaEventDefault if timing else rt.cudaEventDisableTiming
        self.handle = check(rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")

    def record(self, stream: Stream) -> "Event":
        check(cudart().cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")
        return self

    def is_done(self) -> bool:
        rt = cudart()
        (err,) = rt.cudaEventQuery(self.handle)
        if err == rt.cudaError_t.cudaErrorNotReady:
            return False
        check((err,), "cudaEventQuery")
        return True

    def synchronize(self) -> None:
        check(cudart().cudaEventSynchronize(self.handle), "cudaEventSynchronize")

    def elapsed_ms(self, start: "Event") -> float:
        """Milliseconds from ``start`` to this event (both created with timing=True)."""
        return float(check(cudart().cudaEventElapsedTime(start.handle, self.handle), "cudaEventElapsedTime"))

    def close(self) -> None:
        if getattr(self, "handle", None) is not None:
            check(cudart().cudaEventDestroy(self.handle), "cudaEventDestroy")
            self.handle = None


class DeviceBuffer:
    """Device memory that only grows: ``ensure(nbytes)`` reallocates when a bigger size is needed."""

    def __init__(self, nbytes: int = 0):
        self.ptr = 0
        self.nbytes = 0
        if nbytes:
            self.ensure(nbytes)

    def ensure(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(check(cudart().cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))
            self.nbytes = nbytes
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr), "cudaFree")
            self.ptr, self.nbytes = 0, 0


class PinnedBuffer:
    """Page-locked host memory viewed as a numpy array (fast, truly async H2D/D2H copies)."""

    def __init__(self, shape: tuple[int, ...], dtype: Any):
        rt = cudart()
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.nbytes = max(1, int(np.prod(self.shape)) * self.dtype.itemsize)
        self.ptr = int(check(rt.cudaHostAlloc(self.nbytes, rt.cudaHostAllocDefault), "cudaHostAlloc"))
        raw = (ctypes.c_byte * self.nbytes).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=np.uint8, count=self.nbytes)

    def view(self, shape: tuple[int, ...], dtype: Any | None = None) -> np.ndarray:
        """A view of the first bytes as ``shape``/``dtype`` (no copy)."""
        dt = np.dtype(dtype) if dtype is not None else self.dtype
        n = int(np.prod(shape)) * dt.itemsize
        if n > self.nbytes:
            raise CudaError(f"pinned buffer of {self.nbytes} bytes cannot hold {shape} {dt}")
        return self.array[:n].view(dt).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            self.array = None  # type: ignore[assignment]
            check(cudart().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


def copy_htod_async(dst_ptr: int, src: np.ndarray, stream: Stream) -> None:
    rt = cudart()
    check(rt.cudaMemcpyAsync(dst_ptr, src.ctypes.data, src.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                             stream.handle), "cudaMemcpyAsync(H2D)")


def copy_dtoh_async(dst: np.ndarray, src_ptr: int, stream: Stream) -> None:
    rt = cudart()
    check(rt.cudaMemcpyAsync(dst.ctypes.data, src_ptr, dst.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                             stream.handle), "cudaMemcpyAsync(D2H)")


def copy_dtod_async(dst_ptr: int, src_ptr: int, nbytes: int, stream: Stream) -> None:
    rt = cudart()
    check(rt.cudaMemcpyAsync(dst_ptr, src_ptr, nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream.handle),
          "cudaMemcpyAsync(D2D)")


class CudaGraph:
    """Capture the work a callable enqueues on ``stream`` once, then replay it with one launch."""

    def __init__(self, stream: Stream, enqueue) -> None:
        rt = cudart()
        self.stream = stream
        check(rt.cudaStreamBeginCapture(stream.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture")
        try:
            enqueue()
        finally:
            graph = check(rt.cudaStreamEndCapture(stream.handle), "cudaStreamEndCapture")
        self._graph = graph
        self._exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def launch(self) -> None:
        check(cudart().cudaGraphLaunch(self._exec, self.stream.handle), "cudaGraphLaunch")

    def close(self) -> None:
        rt = cudart()
        if getattr(self, "_exec", None) is not None:
            check(rt.cudaGraphExecDestroy(self._exec), "cudaGraphExecDestroy")
            check(rt.cudaGraphDestroy(self._graph), "cudaGraphDestroy")
            self._exec = None
