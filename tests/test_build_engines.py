"""export/build_engines.py end to end on a CPU machine: FP16 ONNX written and checked, then a clear
"no engine built" with its own exit code and no traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("polygraphy")
import onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "export" / "build_engines.py"


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_fp16_without_gpu(shared_tiny_pack, tmp_path):
    from pridss_rt.backends.probe import machine

    if machine().tensorrt and machine().gpu:
        pytest.skip("this machine can build engines; covered by the GPU tests")
    res = run("--fp16", "--pack", str(shared_tiny_pack), "--out", str(tmp_path))
    out = res.stdout + res.stderr
    assert res.returncode == 3, out
    assert "no engine built:" in out and "Traceback" not in out
    onnx_dir = tmp_path / "tiny" / "onnx-fp16"
    for role in ("encoder", "synthesis", "gender", "identity"):
        m = onnx.load(str(onnx_dir / f"{role}.onnx"))
        onnx.checker.check_model(m)
        assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in list(m.graph.input) + list(m.graph.output))
        assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in m.graph.initializer), role
    audit = json.loads((onnx_dir / "audit.json").read_text())
    assert set(audit) == {"encoder", "synthesis", "gender", "identity"}
    assert all(r["problems"] == [] and r["max_abs_err"] < 1e-2 for r in audit.values())


def test_bad_pack_exit_code(tmp_path):
    res = run("--pack", str(tmp_path / "missing"), "--out", str(tmp_path))
    assert res.returncode == 2
    assert "build_engines: error:" in res.stderr and "Traceback" not in res.stderr


def test_help_needs_no_gpu():
    res = run("--help")
    assert res.returncode == 0 and "--fp16" in res.stdout and "Exit codes" in res.stdout


def test_batch_profile_and_half_layer_count():
    from export.trt_build import batch_profile, count_half_layers
    from pridss_rt.pack import TensorSpec

    prof = batch_profile([TensorSpec("latent", ("batch", 32), "float32")], 1, 5, 20)
    assert prof == {"latent": ((1, 32), (5, 32), (20, 32))}
    info = {"Layers": [{"Name": "a", "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]},
                       {"Name": "b", "Outputs": [{"Format/Datatype": "Row major linear FP32"}]},
                       {"Name": "c", "Outputs": [{"Format/Datatype": "Half"}]}]}
    assert count_half_layers(info) == (3, 2)
