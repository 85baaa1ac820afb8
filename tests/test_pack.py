"""Pack loading: a valid pack loads; every kind of corruption fails with the file and field named."""

import json

import numpy as np
import pytest
from tinypack import LATENT, edit_manifest

from pridss_rt import PackError, list_packs, load_pack


def test_valid_pack_loads(tiny_pack):
    pack = load_pack(tiny_pack)
    assert pack.name == "tiny"
    assert pack.latent_shape == (LATENT,)
    assert set(pack.networks) == {"encoder", "synthesis", "gender", "identity"}
    assert pack.preprocess.template.shape == (5, 2)
    assert pack.candidates == 3
    latents, male = pack.bank()
    assert latents.shape == (6, LATENT) and male.dtype == bool and male.sum() == 3
    mask = pack.fusion_mask()
    assert mask.shape == (LATENT,) and mask.sum() == 12
    assert pack.network("gender").options["output_kind"] == "probability"


def test_found_by_name_on_search_path(tiny_pack, monkeypatch):
    monkeypatch.setenv("PRIDSS_RT_PACK_PATH", str(tiny_pack.parent))
    assert "tiny" in list_packs()
    assert load_pack("tiny").root == tiny_pack.resolve()
    assert load_pack(tiny_pack / "pack.json").name == "tiny"


def test_unknown_name_lists_what_exists(monkeypatch, tmp_path):
    monkeypatch.setenv("PRIDSS_RT_PACK_PATH", str(tmp_path))
    with pytest.raises(PackError, match=r"pack 'nope': not found by name \(packs available"):
        load_pack("nope")


def test_folder_without_manifest(tmp_path):
    with pytest.raises(PackError, match=r"pack\.json: file not found"):
        load_pack(tmp_path)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: d.update(schema_version=99), r"pack\.json: schema_version: unknown schema version 99"),
    (lambda d: d.update(schema="other"), r"pack\.json: schema: expected 'pridss-rt.pack'"),
    (lambda d: d["networks"].pop("identity"), r"pack\.json: networks\.identity: missing required network"),
    (lambda d: d["networks"]["encoder"].pop("sha256"), r"networks\.encoder\.sha256: missing required field"),
    (lambda d: d["networks"]["encoder"].update(file="gone.onnx"), r"networks\.encoder\.file: file not found"),
    (lambda d: d["networks"]["encoder"]["inputs"][0].update(dtype="float64"), r"inputs\[0\]\.dtype: unsupported dtype"),
    (lambda d: d["networks"]["encoder"]["inputs"][0].update(shape=[1, 3, 16, 16]), r"first dim must be the symbolic batch"),
    (lambda d: d["networks"]["synthesis"]["inputs"][0].update(shape=["batch", 31]), r"networks\.synthesis\.inputs: must be a latent of shape"),
    (lambda d: d["networks"]["gender"]["inputs"][0].update(shape=["batch", 3, 32, 32]), r"networks\.gender\.inputs\[0\]\.shape"),
    (lambda d: d["networks"]["gender"].update(output_kind="odds"), r"networks\.gender\.output_kind"),
    (lambda d: d["preprocess"].update(template=[[1, 2]]), r"preprocess\.template: must be 5"),
    (lambda d: d["preprocess"].update(std=[0.5, 0, 0.5]), r"preprocess\.std: must be > 0"),
    (lambda d: d["fusion"].update(type="magic"), r"fusion\.type: must be 'mask' or 'network'"),
    (lambda d: d["defaults"].update(candidates=0), r"defaults\.candidates: must be a positive integer"),
    (lambda d: d["networks"].update(extra={}), r"networks\.extra: unknown network role"),
    (lambda d: d["bank"].update(file="../../etc/passwd"), r"bank\.file: '\.\./\.\./etc/passwd' must be a path inside"),
])
def test_manifest_errors_name_field(tiny_pack, mutate, pattern):
    edit_manifest(tiny_pack, mutate)
    with pytest.raises(PackError, match=pattern) as info:
        load_pack(tiny_pack)
    assert str(tiny_pack) in str(info.value)  # the message names the file


def test_hash_mismatch(tiny_pack):
    with open(tiny_pack / "synthesis.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(PackError, match=r"networks\.synthesis\.sha256: hash mismatch for synthesis\.onnx"):
        load_pack(tiny_pack)


def test_invalid_json(tiny_pack):
    (tiny_pack / "pack.json").write_text("{not json")
    with pytest.raises(PackError, match=r"pack\.json: not valid JSON"):
        load_pack(tiny_pack)


def _rewrite(tiny_pack, rel, writer, field):
    from pridss_rt.pack import sha256_file

    writer(tiny_pack / rel)
    edit_manifest(tiny_pack, lambda d: d[field].update(sha256=sha256_file(tiny_pack / rel)))


def test_bank_shape_mismatch(tiny_pack):
    _rewrite(tiny_pack, "bank.npz", lambda p: np.savez(p, latents=np.zeros((4, 7), np.float32),
                                                        male=np.array([1, 0, 1, 0], np.uint8)), "bank")
    with pytest.raises(PackError, match=r"bank\.npz: latents: shape \[4, 7\] does not match \[N, 32\]"):
        load_pack(tiny_pack)


def test_bank_dtype_mismatch(tiny_pack):
    _rewrite(tiny_pack, "bank.npz", lambda p: np.savez(p, latents=np.zeros((2, LATENT), np.float64),
                                                        male=np.array([1, 0], np.uint8)), "bank")
    with pytest.raises(PackError, match=r"latents: dtype must be float32, float16 or int8, got float64"):
        load_pack(tiny_pack)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "deflated"])
def test_float16_bank_is_upcast(tiny_pack, save):
    lat = (np.arange(2 * LATENT, dtype=np.float32).reshape(2, LATENT) / 7.0).astype(np.float16)
    _rewrite(tiny_pack, "bank.npz", lambda p: save(p, latents=lat, male=np.array([1, 0], np.uint8)), "bank")
    got, male = load_pack(tiny_pack).bank()
    assert got.dtype == np.float32 and got.shape == (2, LATENT)
    np.testing.assert_array_equal(got, lat.astype(np.float32))
    assert male.tolist() == [True, False]


def test_bank_needs_both_genders(tiny_pack):
    _rewrite(tiny_pack, "bank.npz", lambda p: np.savez(p, latents=np.zeros((2, LATENT), np.float32),
                                                        male=np.array([1, 1], np.uint8)), "bank")
    with pytest.raises(PackError, match=r"male: bank needs references of both genders"):
        load_pack(tiny_pack)


def test_bank_with_pickled_objects_is_refused(tiny_pack):
    def write(p):
        np.savez(p, latents=np.array([{"x": 1}], dtype=object), male=np.array([1], np.uint8))

    _rewrite(tiny_pack, "bank.npz", write, "bank")
    with pytest.raises(PackError, match=r"bank\.npz: cannot read bank .*needs pickle to load, which pridss-rt never does") as e:
        load_pack(tiny_pack)
    assert "allow_pickle" not in str(e.value)  # numpy's advice to load it unsafely is not passed on


def _truncate(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _break_crc(p):
    data = bytearray(p.read_bytes())
    data[300] ^= 0xFF  # inside the first member's array data (stored archive): its CRC no longer matches
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _break_crc, lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096))],
                         ids=["truncated", "crc", "random-bytes"])
def test_damaged_bank_is_a_clear_pack_error(tiny_pack, damage):
    # zipfile.BadZipFile, EOFError and numpy's pickle advice all become one PackError naming the file
    def write(p):
        np.savez(p, latents=np.zeros((2, LATENT), np.float32), male=np.array([1, 0], np.uint8))
        damage(p)

    _rewrite(tiny_pack, "bank.npz", write, "bank")
    with pytest.raises(PackError, match=r"bank\.npz: cannot read bank \(not a valid \.npz archive") as e:
        load_pack(tiny_pack).bank()
    assert "allow_pickle" not in str(e.value)


def test_mask_shape_and_range(tiny_pack):
    _rewrite(tiny_pack, "fusion_mask.npy", lambda p: np.save(p, np.zeros(5, np.float32)), "fusion")
    with pytest.raises(PackError, match=r"fusion_mask\.npy: shape: fusion mask has shape \[5\], latent has \[32\]"):
        load_pack(tiny_pack)
    _rewrite(tiny_pack, "fusion_mask.npy", lambda p: np.save(p, np.full(LATENT, 2, np.float32)), "fusion")
    with pytest.raises(PackError, match=r"fusion mask must lie in \[0, 1\]"):
        load_pack(tiny_pack)


def test_pack_json_roundtrip_is_plain_json(tiny_pack):
    data = json.loads((tiny_pack / "pack.json").read_text())
    assert data["schema"] == "pridss-rt.pack" and data["schema_version"] == 1


@pytest.mark.parametrize("bad", [-1, 2.5, True, "16"])
def test_reference_pool_must_be_a_non_negative_integer(tiny_pack, bad):
    edit_manifest(tiny_pack, lambda d: d.setdefault("defaults", {}).update(reference_pool=bad))
    with pytest.raises(PackError, match=r"defaults\.reference_pool: must be a non-negative integer"):
        load_pack(tiny_pack)


def test_reference_pool_default_and_value(tiny_pack):
    assert load_pack(tiny_pack).reference_pool == 0
    edit_manifest(tiny_pack, lambda d: d.setdefault("defaults", {}).update(reference_pool=16))
    assert load_pack(tiny_pack).reference_pool == 16


def _bank_with_landmarks(tiny_pack, lms):
    def write(p):
        z = np.load(p)
        np.savez(p, latents=z["latents"], male=z["male"], landmarks=lms)
    _rewrite(tiny_pack, "bank.npz", write, "bank")


def test_bank_landmarks_and_pose_weight(tiny_pack):
    pack = load_pack(tiny_pack)
    assert pack.bank_landmarks() is None and pack.pose_weight == 0.0
    lms = np.tile(np.asarray(pack.preprocess.template, np.float32), (6, 1, 1))
    lms[2] = np.nan  # a bank face the detector missed
    _bank_with_landmarks(tiny_pack, lms.astype(np.float16))
    edit_manifest(tiny_pack, lambda d: d.setdefault("defaults", {}).update(pose_weight=0.5))
    pack = load_pack(tiny_pack)
    got = pack.bank_landmarks()
    assert got.dtype == np.float32 and got.shape == (6, 5, 2) and np.isnan(got[2]).all()
    np.testing.assert_allclose(got[0], pack.preprocess.template, atol=0.05)
    assert pack.pose_weight == 0.5 and len(pack.bank()) == 2


@pytest.mark.parametrize("lms, pattern", [
    (np.zeros((6, 4, 2), np.float32), r"landmarks: must be float \[N=6, 5, 2\], got float32\[6, 4, 2\]"),
    (np.zeros((6, 5, 2), np.int64), r"landmarks: must be float \[N=6, 5, 2\], got int64"),
    (np.full((6, 5, 2), np.inf, np.float32), r"landmarks: contains inf"),
    (np.full((6, 5, 2), np.nan, np.float32), r"landmarks: no face has landmarks"),
])
def test_bad_bank_landmarks(tiny_pack, lms, pattern):
    _bank_with_landmarks(tiny_pack, lms)
    with pytest.raises(PackError, match=r"bank\.npz: " + pattern):
        load_pack(tiny_pack)


@pytest.mark.parametrize("bad", [-0.5, "1", True, float("nan")])
def test_pose_weight_must_be_a_non_negative_number(tiny_pack, bad):
    edit_manifest(tiny_pack, lambda d: d.setdefault("defaults", {}).update(pose_weight=bad))
    with pytest.raises(PackError, match=r"defaults\.pose_weight: must be a non-negative number"):
        load_pack(tiny_pack)


def test_pose_weight_needs_bank_landmarks(tiny_pack):
    edit_manifest(tiny_pack, lambda d: d.setdefault("defaults", {}).update(pose_weight=1.0))
    with pytest.raises(PackError, match=r"defaults\.pose_weight: is 1 but bank\.npz has no 'landmarks' array"):
        load_pack(tiny_pack)


def test_int8_bank_is_dequantized_with_its_scale(tiny_pack):
    want, male = load_pack(tiny_pack).bank()
    scale = (np.abs(want).max(0) / 127.0).astype(np.float32)
    q = np.clip(np.round(want / np.where(scale > 0, scale, 1)), -127, 127).astype(np.int8)
    _rewrite(tiny_pack, "bank.npz", lambda p: np.savez_compressed(p, latents=q, male=male, scale=scale), "bank")
    got, male2 = load_pack(tiny_pack).bank()
    assert got.dtype == np.float32 and (male2 == male).all()
    np.testing.assert_allclose(got, q.astype(np.float32) * scale, rtol=0, atol=0)
    assert np.abs(got - want).max() <= scale.max() / 2 + 1e-7  # symmetric rounding: at most half a step


@pytest.mark.parametrize("arrays, pattern", [
    (lambda q, s: dict(latents=q), r"scale: int8 latents need a 'scale' array"),
    (lambda q, s: dict(latents=q, scale=s[:5]), r"scale: must be float \[32\], got float32\[5\]"),
    (lambda q, s: dict(latents=q, scale=-s), r"scale: must be finite and non-negative"),
    (lambda q, s: dict(latents=q.astype(np.float32), scale=s), r"scale: only int8 latents take a scale"),
    (lambda q, s: dict(latents=q.astype(np.int16), scale=s), r"latents: dtype must be float32, float16 or int8"),
])
def test_bad_int8_bank(tiny_pack, arrays, pattern):
    male = np.array([1, 0, 1, 0, 1, 0], np.uint8)
    q = np.ones((6, LATENT), np.int8)
    s = np.full(LATENT, 0.01, np.float32)
    _rewrite(tiny_pack, "bank.npz", lambda p: np.savez(p, male=male, **arrays(q, s)), "bank")
    with pytest.raises(PackError, match=r"bank\.npz: " + pattern):
        load_pack(tiny_pack)


def test_coherence_critic_is_an_optional_network(tiny_pack):
    from tinypack import add_coherence

    assert load_pack(tiny_pack).coherence_weight == 0.0 and "coherence" not in load_pack(tiny_pack).networks
    add_coherence(tiny_pack, weight=0.75)
    pack = load_pack(tiny_pack)
    assert pack.coherence_weight == 0.75 and pack.networks["coherence"].batch == "candidate"
    assert "coherence" in {role for role, _, _ in pack.files()}  # engine manifests and doctor see it


@pytest.mark.parametrize("bad", [-0.5, "1", True, float("nan")])
def test_coherence_weight_must_be_a_non_negative_number(tiny_pack, bad):
    from tinypack import add_coherence

    add_coherence(tiny_pack)
    edit_manifest(tiny_pack, lambda d: d["defaults"].update(coherence_weight=bad))
    with pytest.raises(PackError, match=r"defaults\.coherence_weight: must be a non-negative number"):
        load_pack(tiny_pack)


def test_coherence_weight_needs_the_critic(tiny_pack):
    edit_manifest(tiny_pack, lambda d: d["defaults"].update(coherence_weight=0.5))
    with pytest.raises(PackError, match=r"defaults\.coherence_weight: is 0\.5 but the pack has no 'coherence' network"):
        load_pack(tiny_pack)


def test_coherence_critic_must_output_one_probability_per_image(tiny_pack):
    from tinypack import add_coherence

    add_coherence(tiny_pack)
    edit_manifest(tiny_pack, lambda d: d["networks"]["coherence"]["outputs"][0].update(shape=["batch", 2]))
    with pytest.raises(PackError, match=r"networks\.coherence\.outputs\[0\]\.shape: P\(composite\) must be \[batch\]"):
        load_pack(tiny_pack)
