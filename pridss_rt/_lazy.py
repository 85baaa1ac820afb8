"""Lazy imports of optional dependencies, so ``import pridss_rt`` and ``--help`` never need a GPU."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from pridss_rt.errors import BackendError

_HINTS = {
    "onnxruntime": "pip install onnxruntime (or onnxruntime-gpu: pip install 'pridss-rt[gpu]')",
    "tensorrt": "pip install 'pridss-rt[trt]' on a machine with an NVIDIA GPU and driver",
    "cuda.bindings": "pip install 'pridss-rt[trt]' (cuda-python)",
    "cuda.bindings.runtime": "pip install 'pridss-rt[trt]' (cuda-python)",
    "onnx": "pip install 'pridss-rt[export]'",
    "ray": "pip install 'pridss-rt[ray]'",
}


def has_module(name: str) -> bool:
    """True when ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def lazy_import(name: str, purpose: str = "") -> ModuleType:
    """Import ``name`` now, or raise :class:`BackendError` saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # also catches missing shared libraries behind the module
        hint = _HINTS.get(name, f"pip install {name.split('.')[0]}")
        why = f" (needed for {purpose})" if purpose else ""
        raise BackendError(f"cannot import '{name}'{why}: {exc}. Install it with: {hint}") from exc
