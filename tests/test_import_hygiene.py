"""`import pridss_rt` must not pull in torch, TensorRT, cuda-python, ONNX or the export tools."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "tensorrt", "cuda", "onnx", "onnxruntime", "polygraphy", "export", "cv2")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    return set(out.split())


def test_import_is_light():
    loaded = _loaded_after("import pridss_rt")
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)


def test_cli_parser_is_light():
    loaded = _loaded_after("from pridss_rt.cli import build_parser; build_parser()")
    assert not loaded & set(FORBIDDEN)


def test_backend_modules_import_without_gpu_libraries():
    loaded = _loaded_after("import pridss_rt.backends, pridss_rt.backends.trt.session, pridss_rt.backends.trt.cuda, pridss_rt.backends.trt.engines")
    assert not loaded & {"tensorrt", "torch", "cuda"}


def test_runtime_never_imports_export_code():
    for path in (ROOT / "pridss_rt").rglob("*.py"):
        text = path.read_text()
        assert "import export" not in text and "from export" not in text, path
        assert "import torch" not in text, path
