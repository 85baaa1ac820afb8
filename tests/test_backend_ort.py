"""ONNX Runtime backend on a small pack: exact numbers, strict I/O checks, honest provider reporting."""

import numpy as np
import pytest
import tinypack

from pridss_rt import BackendError, InputError, load_pack
from pridss_rt.backends import open_networks
from pridss_rt.backends.ort import OrtSession


@pytest.fixture(scope="module")
def nets(shared_tiny_pack):
    with open_networks(shared_tiny_pack, "ort-cpu", threads=1) as n:
        yield n


def test_all_networks_match_hand_computed_values(nets):
    ref = tinypack.reference(tinypack.weights(0))
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (5, 3, tinypack.SIZE, tinypack.SIZE)).astype(np.float32)
    z = nets["encoder"].run({"image": x})["latent"]
    np.testing.assert_allclose(z, ref["encoder"](x), atol=1e-5)
    img = nets["synthesis"].run({"latent": z})["image"]
    np.testing.assert_allclose(img, ref["synthesis"](z), atol=1e-5)
    p = nets["gender"].run({"image": img})["p_male"]
    np.testing.assert_allclose(p, ref["gender"](img), atol=1e-5)
    e = nets["identity"].run({"image": img})["embedding"]
    np.testing.assert_allclose(e, ref["identity"](img), atol=1e-5)
    assert nets.backend == "ort-cpu" and nets["encoder"].providers[0] == "CPUExecutionProvider"


@pytest.mark.parametrize("batch", [1, 2, 7])
def test_dynamic_batch(nets, batch):
    out = nets["synthesis"].run({"latent": np.zeros((batch, tinypack.LATENT), np.float32)})
    assert out["image"].shape == (batch, 3, tinypack.SIZE, tinypack.SIZE)


@pytest.mark.parametrize("feeds, pattern", [
    ({}, r"encoder: inputs must be \['image'\] \(missing \['image'\]"),
    ({"image": np.zeros((1, 3, 16, 16), np.float64)}, r"input 'image' must be float32, got float64"),
    ({"image": np.zeros((1, 3, 16), np.float32)}, r"input 'image' must have shape \['batch', 3, 16, 16\]"),
    ({"image": np.zeros((1, 3, 16, 15), np.float32)}, r"input 'image' dim 3 must be 16"),
    ({"image": np.zeros((0, 3, 16, 16), np.float32)}, r"empty batch"),
    ({"image": [[0.0]]}, r"must be a numpy array"),
    ({"image": np.zeros((1, 3, 16, 16), np.float32), "x": np.zeros(1)}, r"unexpected \['x'\]"),
])
def test_bad_feeds_raise_clear_errors(nets, feeds, pattern):
    with pytest.raises(InputError, match=pattern):
        nets["encoder"].run(feeds)


def test_auto_picks_a_working_backend_and_says_which(shared_tiny_pack):
    with open_networks(shared_tiny_pack, "auto", threads=1) as n:
        assert n.backend in ("trt", "ort-cuda", "ort-cpu")
        assert n.reason.startswith(f"auto picked {n.backend}")
        if n.backend == "ort-cpu":  # this machine: say why the faster ones were skipped
            assert "skipped" in n.reason and "trt:" in n.reason


def test_unavailable_provider_is_refused_not_faked(shared_tiny_pack):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(BackendError, match=r"backend 'ort-cuda' is not usable here: .*has no CUDAExecutionProvider"):
        open_networks(shared_tiny_pack, "ort-cuda")


def test_silently_dropped_provider_is_detected(shared_tiny_pack, monkeypatch):
    """ORT falls back to the CPU when a provider's libraries fail to load; we must notice."""
    import onnxruntime

    real = onnxruntime.InferenceSession

    def fake_session(path, sess_options=None, providers=None):
        return real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(onnxruntime, "InferenceSession", fake_session)
    spec = load_pack(shared_tiny_pack).network("encoder")
    with pytest.raises(BackendError, match=r"asked ONNX Runtime for CUDAExecutionProvider, it loaded \['CPUExecutionProvider'\]"):
        OrtSession(spec, "ort-cuda")


def test_pack_declaring_wrong_dtype_is_caught_at_load(tiny_pack):
    from pridss_rt.pack import load_pack as lp

    tinypack.edit_manifest(tiny_pack, lambda d: d["networks"]["identity"]["outputs"][0].update(dtype="float16"))
    with pytest.raises(BackendError, match=r"identity output 'embedding': pack.json says float16, network has float32"):
        OrtSession(lp(tiny_pack).network("identity"), "ort-cpu")


def test_pack_declaring_wrong_tensor_name_is_caught_at_load(tiny_pack):
    tinypack.edit_manifest(tiny_pack, lambda d: d["networks"]["gender"]["outputs"][0].update(name="prob"))
    with pytest.raises(BackendError, match=r"gender output 'prob' declared in pack.json is not in the network"):
        OrtSession(load_pack(tiny_pack).network("gender"), "ort-cpu")


def test_unknown_backend_name(shared_tiny_pack):
    with pytest.raises(BackendError, match=r"unknown backend 'cuda' \(choose from auto, trt, ort-trt, ort-cuda, ort-cpu\)"):
        open_networks(shared_tiny_pack, "cuda")


def test_tensorrt_provider_version_rule():
    from pridss_rt.backends.ort import trt_provider_mismatch

    assert trt_provider_mismatch("1.26.1", "11.1.0").startswith("onnxruntime 1.26.1's TensorRT execution provider")
    assert "needs onnxruntime >= 1.27" in trt_provider_mismatch("1.20.0", "11.0.0.post1")
    assert trt_provider_mismatch("1.27.0", "11.1.0") == ""
    assert trt_provider_mismatch("1.26.1", "10.16.1") == ""
    assert trt_provider_mismatch("1.26.1", None) == ""
