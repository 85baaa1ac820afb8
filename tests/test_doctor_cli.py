"""`pridss-rt doctor` and the CLI entry points."""

import json
import os
import subprocess
import sys
from pathlib import Path

from pridss_rt.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_doctor_json_reports_pack_backends_and_next_steps(shared_tiny_pack, capsys, tmp_path):
    rc = main(["doctor", "--pack", str(shared_tiny_pack), "--engines", str(tmp_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    p = report["packs"]["tiny"]
    assert p["ok"] and p["bank"] == {"total": 6, "male": 3, "female": 3, "with_landmarks": 0} and p["pose_weight"] == 0.0 and p["latent_shape"] == [32]
    assert report["backends"]["ort-cpu"]["available"] is True
    assert set(report["backends"]) == {"trt", "ort-trt", "ort-cuda", "ort-cpu"}
    assert report["engines"] == [] and report["next"]
    for key in ("gpus", "tensorrt", "onnxruntime", "ort_providers", "cuda_python", "driver"):
        assert key in report["machine"]


def test_doctor_text_and_bad_pack(tiny_pack, capsys, tmp_path):
    (tiny_pack / "gender.onnx").write_bytes(b"corrupt")
    rc = main(["doctor", "--pack", str(tiny_pack), "--engines", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "Machine" in out and "Backends" in out and "Engines" in out and "Next" in out
    from importlib import metadata

    try:
        assert f"  Ray           {metadata.version('ray')}" in out
    except metadata.PackageNotFoundError:
        assert "  Ray           not installed (pip install 'pridss-rt[ray]'" in out
    assert "BAD" in out and "networks.gender.sha256: hash mismatch" in out


def test_doctor_lists_engines_and_why_unusable(shared_tiny_pack, capsys, tmp_path):
    from test_engines import make_engines

    from pridss_rt import load_pack

    make_engines(load_pack(shared_tiny_pack), tmp_path)
    main(["doctor", "--pack", str(shared_tiny_pack), "--engines", str(tmp_path), "--json"])
    eng = json.loads(capsys.readouterr().out)["engines"]
    assert len(eng) == 1 and eng[0]["pack"] == "tiny"
    from pridss_rt.backends.probe import machine

    if not machine().gpu:
        assert eng[0]["usable"] is False and "no GPU detected here" in eng[0]["problems"]


def test_console_help_and_version_without_gpu():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "pridss_rt", "--help"], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and "doctor" in res.stdout
    res = subprocess.run([sys.executable, "-m", "pridss_rt", "--version"], capture_output=True, text=True, env=env)
    assert res.stdout.strip().startswith("pridss-rt ")


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: pridss-rt" in capsys.readouterr().out
