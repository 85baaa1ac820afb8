"""pridss-rt: real-time gender-private face anonymization (PriDSS) on TensorRT and ONNX Runtime.

``import pridss_rt`` is light: it never imports torch, tensorrt or cuda-python; backends load them on
demand. See README.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from pridss_rt.errors import (
    BackendError,
    CudaError,
    EngineError,
    InputError,
    PackError,
    PridssError,
)
from pridss_rt.pack import ModelPack, list_packs, load_pack

__all__ = [
    "__version__", "Anonymizer", "FaceResult", "FrameStatus", "DetectorConfig", "AlignConfig", "SearchConfig", "TrackingConfig",
    "BlendConfig", "load_pack", "list_packs", "ModelPack", "open_networks",
    "PridssError", "PackError", "BackendError", "EngineError", "CudaError", "InputError",
]


def __getattr__(name: str):
    # heavier entry points are imported on first use
    if name in ("Anonymizer", "FaceResult", "FrameStatus", "DetectorConfig", "AlignConfig", "SearchConfig", "TrackingConfig",
                "BlendConfig"):
        from pridss_rt import anonymizer
        return getattr(anonymizer, name)
    if name == "open_networks":
        from pridss_rt.backends import open_networks
        return open_networks
    raise AttributeError(f"module 'pridss_rt' has no attribute '{name}'")
