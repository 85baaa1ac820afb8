"""`import pridss_rt` must not pull in torch, TensorRT, cuda-python, ONNX or the export tools."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "tensorrt", "cuda", "onnx", "onnxruntime", "polygraphy", "export", "cv2", "ray")


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


def test_archive_package_does_not_import_ray():
    loaded = _loaded_after("import pridss_rt.archive, pridss_rt.archive.ray_runner")
    assert "ray" not in loaded


def test_backend_modules_import_without_gpu_libraries():
    loaded = _loaded_after("import pridss_rt.backends, pridss_rt.backends.trt.session, pridss_rt.backends.trt.cuda, pridss_rt.backends.trt.engines")
    assert not loaded & {"tensorrt", "torch", "cuda"}


def test_runtime_never_imports_export_code():
    for path in (ROOT / "pridss_rt").rglob("*.py"):
        text = path.read_text()
        assert "import export" not in text and "from export" not in text, path
        assert "import torch" not in text, path


def _runtime_imports():
    import ast

    for path in (ROOT / "pridss_rt").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    yield path, a.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.module


def test_runtime_never_imports_or_runs_the_source_tree():
    # no import of export/, research/ or train/ code (also not inside functions), and no path into the
    # checkout built from the package's location (the runtime must work from a wheel)
    for path, mod in _runtime_imports():
        assert mod.split(".")[0] not in ("export", "research", "train", "tests"), (path, mod)
    for path in (ROOT / "pridss_rt").rglob("*.py"):
        text = path.read_text()
        for part in ('"export"', '"research"', '"train"', "'export'", "'research'", "'train'"):
            # the exceptions: _hints.py looks for a checkout to *name* its commands, never to run them; the eval's
            # config names the manifest split its attackers that learn are fitted on (one constant, not a path)
            split_name = path.relative_to(ROOT).as_posix() == "pridss_rt/eval/config.py" and part == '"train"' \
                and text.count(part) == 1 and 'TRAIN_SPLIT = "train"' in text
            assert part not in text or path.name == "_hints.py" or split_name, (path, part)


def test_layers_import_one_way():
    # stages never import the pipeline, executors or entry points; executors never the pipeline; the pipeline
    # never the public API or the CLI; nothing below cli/ imports cli/
    above = {"stages": ("pridss_rt.pipeline", "pridss_rt.executors", "pridss_rt.anonymizer", "pridss_rt.cli",
                        "pridss_rt.eval"),
             "executors": ("pridss_rt.pipeline", "pridss_rt.anonymizer", "pridss_rt.cli", "pridss_rt.eval"),
             "pipeline": ("pridss_rt.anonymizer", "pridss_rt.cli", "pridss_rt.eval"),
             "backends": ("pridss_rt.stages", "pridss_rt.pipeline", "pridss_rt.executors", "pridss_rt.anonymizer",
                          "pridss_rt.cli", "pridss_rt.eval"),
             "pack": ("pridss_rt.backends", "pridss_rt.stages", "pridss_rt.pipeline", "pridss_rt.executors",
                      "pridss_rt.anonymizer", "pridss_rt.cli", "pridss_rt.eval"),
             "eval": ("pridss_rt.cli",)}
    for path, mod in _runtime_imports():
        layer = path.relative_to(ROOT / "pridss_rt").parts[0]
        for banned in above.get(layer, ()):
            assert not (mod == banned or mod.startswith(banned + ".")), f"{path} imports {mod}"
