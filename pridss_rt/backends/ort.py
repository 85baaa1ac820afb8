"""ONNX Runtime backend: CPU, CUDA execution provider, TensorRT execution provider.

ONNX Runtime silently drops an execution provider whose libraries fail to load and runs on the CPU
instead; every session here checks ``get_providers()`` and refuses to pretend.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pridss_rt._lazy import lazy_import
from pridss_rt.backends.base import Session, check_signature
from pridss_rt.errors import BackendError
from pridss_rt.pack import NetworkSpec

#: backend name -> the execution provider it must get (first in get_providers())
PROVIDERS = {
    "ort-cpu": "CPUExecutionProvider",
    "ort-cuda": "CUDAExecutionProvider",
    "ort-trt": "TensorrtExecutionProvider",
}

_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


def ort():
    return lazy_import("onnxruntime", "the ONNX Runtime backend")


def available(backend: str) -> tuple[bool, str]:
    """Whether ONNX Runtime here offers the provider ``backend`` needs (not yet proof it loads)."""
    try:
        rt = ort()
    except BackendError as exc:
        return False, str(exc)
    want = PROVIDERS[backend]
    have = rt.get_available_providers()
    if want not in have:
        return False, f"onnxruntime {rt.__version__} has no {want} (has {', '.join(have)})"
    if backend == "ort-trt":
        why = trt_provider_mismatch(rt.__version__, _tensorrt_version())
        if why:
            return False, why
    return True, f"onnxruntime {rt.__version__} offers {want}"


ORT_FOR_TRT11 = (1, 27)  # the first ONNX Runtime whose TensorRT execution provider is built against TensorRT 11


def _version(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def _tensorrt_version() -> str | None:
    from importlib import metadata

    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def trt_provider_mismatch(ort_version: str, trt_version: str | None) -> str:
    """Why ONNX Runtime's TensorRT provider cannot work with the TensorRT installed ('' when it can): TensorRT 11
    needs onnxruntime >= 1.27 (older providers are built against TensorRT 10 and fail to load its libraries)."""
    if trt_version and _version(trt_version)[0] >= 11 and _version(ort_version) < ORT_FOR_TRT11:
        return (f"onnxruntime {ort_version}'s TensorRT execution provider is built for TensorRT 10; TensorRT "
                f"{trt_version} needs onnxruntime >= {'.'.join(map(str, ORT_FOR_TRT11))}")
    return ""


def configure(so, threads: int | None) -> None:
    """Thread settings shared by every ONNX Runtime session of the pipeline.

    A pipeline holds several sessions (detector stages, encoder, synthesis, classifiers). With
    ONNX Runtime's default spin-waiting, the idle pools of the other sessions keep burning the cores the
    running one needs (measured on 2 cores: detection 2x, synthesis 2.8x slower). Spinning is therefore
    off unless PRIDSS_RT_ORT_SPIN=1.
    """
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", os.environ.get("PRIDSS_RT_ORT_SPIN", "0"))
    so.add_session_config_entry("session.inter_op.allow_spinning", os.environ.get("PRIDSS_RT_ORT_SPIN", "0"))


def cpu_session(path, threads: int | None = None):
    """A plain CPU InferenceSession for an auxiliary network (detector stages, attackers, FID, restorers)
    with the pipeline's thread settings (:func:`configure`)."""
    rt = ort()
    so = rt.SessionOptions()
    configure(so, threads)
    so.log_severity_level = 3
    return rt.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def default_threads() -> int:
    env = os.environ.get("PRIDSS_RT_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(os.cpu_count() or 1, 8))


class OrtSession(Session):
    def __init__(self, spec: NetworkSpec, backend: str = "ort-cpu", *, threads: int | None = None,
                 device_id: int = 0, cache_dir: str | os.PathLike | None = None,
                 model_path: str | os.PathLike | None = None):
        super().__init__(spec)
        if backend not in PROVIDERS:
            raise BackendError(f"unknown ONNX Runtime backend '{backend}' (known: {sorted(PROVIDERS)})")
        self.backend = backend
        rt = ort()
        so = rt.SessionOptions()
        so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
        configure(so, threads)
        so.log_severity_level = 3
        providers = self._providers(backend, device_id, cache_dir)
        path = Path(model_path) if model_path else spec.path
        where = f"{path}"
        try:
            self._sess = rt.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise BackendError(f"{where}: ONNX Runtime could not load the {spec.role} network: {exc}") from None
        got = self._sess.get_providers()
        want = PROVIDERS[backend]
        if not got or got[0] != want:
            raise BackendError(
                f"{where}: asked ONNX Runtime for {want}, it loaded {got} instead "
                "(the provider's libraries failed to load: check CUDA/cuDNN/TensorRT installs, `pridss-rt doctor`)"
            )
        self.providers = got
        check_signature(
            spec,
            [(i.name, _ORT_DTYPES.get(i.type), _dims(i.shape)) for i in self._sess.get_inputs()],
            [(o.name, _ORT_DTYPES.get(o.type), _dims(o.shape)) for o in self._sess.get_outputs()],
            where,
        )
        self._out_names = [t.name for t in spec.outputs]

    @staticmethod
    def _providers(backend: str, device_id: int, cache_dir) -> list[Any]:
        cpu = "CPUExecutionProvider"
        if backend == "ort-cpu":
            return [cpu]
        cuda = ("CUDAExecutionProvider", {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC"})
        if backend == "ort-cuda":
            return [cuda, cpu]
        trt_opts: dict[str, Any] = {"device_id": device_id}
        if cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            trt_opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir),
                            trt_timing_cache_enable=True, trt_timing_cache_path=str(cache_dir))
        return [("TensorrtExecutionProvider", trt_opts), cuda, cpu]

    def _run(self, feeds: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        try:
            outs = self._sess.run(self._out_names, feeds)
        except Exception as exc:
            raise BackendError(f"{self.spec.path}: {self.spec.role} failed on {self.backend}: {exc}") from None
        return dict(zip(self._out_names, outs))

    def close(self) -> None:
        self._sess = None  # type: ignore[assignment]


def _dims(shape) -> list[int | str] | None:
    if shape is None:
        return None
    return [d if isinstance(d, int) else str(d) for d in shape]
