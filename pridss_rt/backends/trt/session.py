"""TensorRT backend through cuda-python: deserialize an engine pridss-rt built (manifest checked by the
caller, see :mod:`pridss_rt.backends.trt.engines`), keep one execution context, one non-blocking stream and
persistent device + pinned host buffers sized for the engine's largest profile shape, and run with
``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``. Optionally each batch size is
captured once as a CUDA graph, on an execution context of its own, and replayed.

Works with TensorRT 10 and 11 (only APIs present in both are used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pridss_rt._lazy import lazy_import
from pridss_rt.backends.base import Session, check_signature
from pridss_rt.backends.trt import cuda
from pridss_rt.errors import BackendError, EngineError
from pridss_rt.pack import NetworkSpec

_LOGGER = None


def tensorrt():
    return lazy_import("tensorrt", "the TensorRT backend")


def trt_logger():
    global _LOGGER
    if _LOGGER is None:
        trt = tensorrt()
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


class TrtSession(Session):
    backend = "trt"
    supports_device_io = True

    def __init__(self, spec: NetworkSpec, engine_path: str | Path, *, stream: cuda.Stream | None = None,
                 cuda_graphs: bool = False):
        super().__init__(spec)
        trt = tensorrt()
        self._trt = trt
        self.engine_path = Path(engine_path)
        runtime = trt.Runtime(trt_logger())
        engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:
            raise EngineError(f"{self.engine_path}: TensorRT could not deserialize the engine (see the log above)")
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineError(f"{self.engine_path}: could not create an execution context (out of GPU memory?)")
        self._own_stream = stream is None
        self.stream = stream or cuda.Stream()
        self.cuda_graphs = cuda_graphs

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        shapes = {n: [d if d >= 0 else "?" for d in engine.get_tensor_shape(n)] for n in names}
        check_signature(spec, [(n, dtypes[n], shapes[n]) for n in names if is_input[n]],
                        [(n, dtypes[n], shapes[n]) for n in names if not is_input[n]], str(self.engine_path))
        self._inputs = [n for n in names if is_input[n]]
        self._outputs = [n for n in names if not is_input[n]]
        self._dtypes = dtypes

        # size every buffer for the largest shape of profile 0, then bind addresses once
        max_shapes: dict[str, tuple[int, ...]] = {}
        for n in self._inputs:
            _, _, mx = engine.get_tensor_profile_shape(n, 0)
            max_shapes[n] = tuple(mx)
            self.context.set_input_shape(n, tuple(mx))
        for n in self._outputs:
            max_shapes[n] = tuple(self.context.get_tensor_shape(n))
        self.max_batch = min(max_shapes[n][0] for n in self._inputs)
        self._max_shapes = max_shapes
        self._device: dict[str, cuda.DeviceBuffer] = {}
        self._host: dict[str, cuda.PinnedBuffer] = {}
        for n in names:
            nbytes = int(np.prod(max_shapes[n])) * dtypes[n].itemsize
            self._device[n] = cuda.DeviceBuffer(nbytes)
            self._host[n] = cuda.PinnedBuffer(max_shapes[n], dtypes[n])
            if not self.context.set_tensor_address(n, self._device[n].ptr):
                raise EngineError(f"{self.engine_path}: set_tensor_address('{n}') failed")
        self._batch: int | None = None
        self._graphs: dict[int, cuda.CudaGraph] = {}
        # CUDA graphs: one execution context per captured batch size. A graph fixes the shapes and the internal
        # memory of the context it was captured on; reshaping that context for another batch (and running it) may
        # make TensorRT move that memory under the graph. The eager path keeps one context and reshapes it.
        self._graph_contexts: dict[int, object] = {}
        self._active = self.context  # the context whose output shapes the last enqueue produced

    # device path ----------------------------------------------------------------------------------
    def device_io(self) -> dict[str, tuple[int, np.dtype, tuple[int, ...]]]:
        """name -> (device pointer, dtype, max shape) of the persistent I/O buffers."""
        return {n: (self._device[n].ptr, self._dtypes[n], self._max_shapes[n]) for n in self._device}

    def output_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._active.get_tensor_shape(name))

    def _check_batch(self, batch: int) -> None:
        if not 1 <= batch <= self.max_batch:
            raise BackendError(f"{self.spec.role}: batch {batch} outside the engine profile [1, {self.max_batch}]")

    def _shape(self, context, batch: int) -> None:
        for t in self.spec.inputs:
            if not context.set_input_shape(t.name, t.concrete(batch)):
                raise EngineError(f"{self.engine_path}: set_input_shape({t.name}, {t.concrete(batch)}) rejected")

    def set_batch(self, batch: int) -> None:
        """Shape the eager context for ``batch`` rows (only when the batch changes)."""
        self._check_batch(batch)
        if batch != self._batch:
            self._shape(self.context, batch)
            self._batch = batch

    def _graph_context(self, batch: int):
        ctx = self._graph_contexts.get(batch)
        if ctx is None:
            ctx = self.engine.create_execution_context()
            if ctx is None:
                raise EngineError(f"{self.engine_path}: could not create an execution context for batch {batch} "
                                  "(out of GPU memory?)")
            self._shape(ctx, batch)
            for n, buf in self._device.items():
                if not ctx.set_tensor_address(n, buf.ptr):
                    raise EngineError(f"{self.engine_path}: set_tensor_address('{n}') failed")
            self._graph_contexts[batch] = ctx
        return ctx

    def enqueue(self, batch: int) -> None:
        """Enqueue one inference of ``batch`` rows on the session's stream (inputs already on device)."""
        if self.cuda_graphs:
            self._check_batch(batch)
            graph = self._graphs.get(batch)
            ctx = self._graph_context(batch)
            if graph is None:
                self._execute(ctx)  # TensorRT must run once on a new shape before capture (lazy allocations)
                graph = self._graphs[batch] = cuda.CudaGraph(self.stream, lambda: self._execute(ctx))
            graph.launch()
            self._active = ctx
        else:
            self.set_batch(batch)
            self._execute(self.context)
            self._active = self.context

    def _execute(self, context) -> None:
        if not context.execute_async_v3(self.stream.ptr):
            raise BackendError(f"{self.spec.role}: execute_async_v3 failed (see the TensorRT log)")

    # host path ------------------------------------------------------------------------------------
    def _run(self, feeds: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        if batch > self.max_batch:  # larger than the profile: run in chunks
            parts = [self._run({k: v[i:i + self.max_batch] for k, v in feeds.items()}, min(self.max_batch, batch - i))
                     for i in range(0, batch, self.max_batch)]
            return {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}
        for n in self._inputs:
            host = self._host[n].view(feeds[n].shape)
            np.copyto(host, feeds[n])
            cuda.copy_htod_async(self._device[n].ptr, host, self.stream)
        self.enqueue(batch)
        views = {}
        for n in self._outputs:
            views[n] = self._host[n].view(self.output_shape(n))
            cuda.copy_dtoh_async(views[n], self._device[n].ptr, self.stream)
        self.stream.synchronize()
        return {n: views[n].copy() for n in self._outputs}

    def close(self) -> None:
        for g in getattr(self, "_graphs", {}).values():
            g.close()
        self._graphs = {}
        self._graph_contexts = {}
        self._active = None
        for buf in list(getattr(self, "_device", {}).values()) + list(getattr(self, "_host", {}).values()):
            buf.free()
        self._device, self._host = {}, {}
        self.context = None
        self.engine = None
        if getattr(self, "_own_stream", False) and getattr(self, "stream", None) is not None:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
