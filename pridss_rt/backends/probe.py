"""What this machine offers: GPU, driver, CUDA, TensorRT, ONNX Runtime providers, cuda-python.

Every probe is cheap, never raises, and never imports a GPU library at ``import pridss_rt`` time.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import shutil
import subprocess
from dataclasses import dataclass, field


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


@dataclass
class MachineInfo:
    gpus: list[dict] = field(default_factory=list)
    gpu_error: str | None = None
    driver: str | None = None
    tensorrt: str | None = None
    tensorrt_error: str | None = None
    onnxruntime: str | None = None
    ort_providers: list[str] = field(default_factory=list)
    cuda_python: str | None = None

    @property
    def gpu(self) -> dict | None:
        return self.gpus[0] if self.gpus else None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _nvidia_smi() -> tuple[list[dict], str | None]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return [], None
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap,memory.total,driver_version", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return [], None
    gpus, driver = [], None
    for i, line in enumerate(l for l in out.splitlines() if l.strip()):
        name, cc, mem, driver = [p.strip() for p in line.split(",")]
        gpus.append({"index": i, "name": name, "compute_capability": cc, "memory_mb": int(float(mem))})
    return gpus, driver


@functools.lru_cache(maxsize=1)
def machine() -> MachineInfo:
    info = MachineInfo()
    info.cuda_python = _version("cuda-python") or _version("cuda-bindings")
    # GPU: cuda-python first (exact compute capability and CUDA versions), nvidia-smi as fallback
    try:
        from pridss_rt.backends.trt import cuda
        n, why = cuda.probe_devices()
        info.gpus = [cuda.device_info(i) for i in range(n)]
        if not n:
            info.gpu_error = why
    except Exception as exc:  # cuda-python missing or broken
        info.gpu_error = str(exc)
    smi, driver = _nvidia_smi()
    info.driver = driver
    if not info.gpus and smi:
        info.gpus, info.gpu_error = smi, None
    # TensorRT
    try:
        import tensorrt  # noqa: F401  (only imported when probing)
        info.tensorrt = str(tensorrt.__version__)
    except Exception as exc:
        info.tensorrt_error = f"{type(exc).__name__}: {exc}"
    # ONNX Runtime
    try:
        import onnxruntime
        info.onnxruntime = onnxruntime.__version__
        info.ort_providers = list(onnxruntime.get_available_providers())
    except Exception:
        pass
    return info
