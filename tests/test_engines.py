"""Engine manifests: only engines pridss-rt built for this pack, GPU and TensorRT version are used."""

import copy
import json

import pytest

from pridss_rt import load_pack
from pridss_rt.backends.trt.engines import (
    SCHEMA,
    SCHEMA_VERSION,
    engine_dir,
    engine_dir_name,
    find_engines,
    manifest_problems,
    read_manifest,
    write_manifest,
)
from pridss_rt.pack import sha256_file

GPU, CC, TRT = "NVIDIA GeForce RTX 4090", "8.9", "10.13.0.35"


def make_engines(pack, root):
    folder = engine_dir(root, pack.name, GPU, CC, TRT)
    folder.mkdir(parents=True)
    nets = {}
    for role, spec in pack.networks.items():
        eng = folder / f"{role}.engine"
        eng.write_bytes(f"fake engine {role}".encode())
        nets[role] = {"engine": eng.name, "engine_sha256": sha256_file(eng), "source_onnx_sha256": spec.sha256}
    manifest = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "pack": pack.name, "precision": "fp16",
                "gpu": {"name": GPU, "compute_capability": CC}, "tensorrt": {"version": TRT}, "networks": nets}
    write_manifest(folder, manifest)
    return folder, manifest


def here(**kw):
    d = dict(gpu_name=GPU, compute_capability=CC, trt_version=TRT)
    d.update(kw)
    return d


def test_dir_name():
    assert engine_dir_name(GPU, CC, TRT) == "nvidia-geforce-rtx-4090-sm89-trt10.13.0.35"


def test_matching_manifest_is_accepted(shared_tiny_pack, tmp_path):
    pack = load_pack(shared_tiny_pack)
    folder, manifest = make_engines(pack, tmp_path)
    assert manifest_problems(manifest, pack, folder=folder, **here()) == []
    found, reasons = find_engines(pack, tmp_path, **here())
    assert found == folder and reasons == []


@pytest.mark.parametrize("change, expect", [
    (lambda m: m.update(schema="something-else"), "not a pridss-rt engine manifest"),
    (lambda m: m.update(pack="other"), "built for pack 'other'"),
    (lambda m: m["gpu"].update(name="Tesla T4"), "built on GPU 'Tesla T4'"),
    (lambda m: m["gpu"].update(compute_capability="7.5"), "built for sm7.5"),
    (lambda m: m["tensorrt"].update(version="11.4.0.106"), "built with TensorRT 11.4.0.106, this is TensorRT 10.13.0.35"),
    (lambda m: m["networks"]["synthesis"].update(source_onnx_sha256="0" * 64), "synthesis: engine was built from another ONNX"),
    (lambda m: m["networks"].pop("gender"), "no engine for network 'gender'"),
])
def test_mismatching_manifest_is_refused(shared_tiny_pack, tmp_path, change, expect):
    pack = load_pack(shared_tiny_pack)
    folder, manifest = make_engines(pack, tmp_path)
    bad = copy.deepcopy(manifest)
    change(bad)
    problems = manifest_problems(bad, pack, folder=folder, **here())
    assert any(expect in p for p in problems), problems
    write_manifest(folder, bad)
    found, reasons = find_engines(pack, tmp_path, **here())
    assert found is None and any(expect in r for r in reasons)


def test_tampered_engine_file_is_refused(shared_tiny_pack, tmp_path):
    pack = load_pack(shared_tiny_pack)
    folder, manifest = make_engines(pack, tmp_path)
    (folder / "encoder.engine").write_bytes(b"something else")
    problems = manifest_problems(manifest, pack, folder=folder, **here())
    assert problems == ["encoder: engine file encoder.engine does not match its manifest hash (modified or corrupt)"]


def test_other_machine_is_refused(shared_tiny_pack, tmp_path):
    pack = load_pack(shared_tiny_pack)
    folder, manifest = make_engines(pack, tmp_path)
    problems = manifest_problems(manifest, pack, folder=folder, **here(gpu_name=None, compute_capability=None, trt_version=None))
    assert "no GPU detected here" in problems and "TensorRT is not installed here" in problems


def test_no_engines_reasons(shared_tiny_pack, tmp_path):
    pack = load_pack(shared_tiny_pack)
    found, reasons = find_engines(pack, tmp_path, **here())
    assert found is None and "no engines built for pack 'tiny'" in reasons[0]


def test_unreadable_manifest(shared_tiny_pack, tmp_path):
    pack = load_pack(shared_tiny_pack)
    folder, _ = make_engines(pack, tmp_path)
    (folder / "manifest.json").write_text("{")
    from pridss_rt.errors import EngineError

    with pytest.raises(EngineError, match="unreadable manifest"):
        read_manifest(folder)
    found, reasons = find_engines(pack, tmp_path, **here())
    assert found is None and "unreadable manifest" in reasons[0]


def test_trt_backend_refuses_without_matching_engines(shared_tiny_pack, tmp_path):
    """On this machine (no TensorRT) and on any machine without matching engines, 'trt' says why."""
    from pridss_rt.backends import backend_available

    ok, why = backend_available("trt", load_pack(shared_tiny_pack), tmp_path)
    assert not ok
    assert ("TensorRT not importable" in why) or ("no NVIDIA GPU" in why) or ("no matching engines" in why)
    assert json.dumps(why)  # a plain string
