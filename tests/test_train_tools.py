"""Tools of research/ that work from the shipped pack alone: recovering trainable weights from its ONNX
files, and writing pack variants (fusion boundary, reference-match key, identity region)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pridss_rt import load_pack
from pridss_rt.pack import BUILTIN_PACKS

torch = pytest.importorskip("torch", reason="research/ tools need the export extra (torch)")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
DEMO = BUILTIN_PACKS / "demo"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # research.* (conftest.py does the same)


def run(*args):
    r = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_ckpt_from_pack_reproduces_the_onnx_networks(tmp_path):
    from research.models.models import Encoder, Synthesis

    out = tmp_path / "ckpt.pt"
    run("research/pack/ckpt_from_pack.py", "--pack", DEMO, "--out", out)
    ck = torch.load(out, weights_only=True)
    E, S = Encoder().eval(), Synthesis().eval()
    E.load_state_dict(ck["E"]), S.load_state_dict(ck["S"])
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32)
    enc = ort.InferenceSession(str(DEMO / "encoder.onnx"), providers=["CPUExecutionProvider"])
    syn = ort.InferenceSession(str(DEMO / "synthesis.onnx"), providers=["CPUExecutionProvider"])
    z = enc.run(None, {"image": x})[0]
    with torch.no_grad():
        zt = E(torch.from_numpy(x)).numpy()
        yt = S(torch.from_numpy(z)).numpy()
    assert np.abs(zt - z).max() < 1e-4
    assert np.abs(yt - syn.run(None, {"latent": z})[0]).max() < 1e-4


def test_pack_variant_rewrites_masks_and_hashes(tmp_path):
    from research.models.common import REGIONS, identity_cells

    out = tmp_path / "variant"
    run("research/pack/pack_variant.py", "--pack", DEMO, "--out", out, "--region", "nofore", "--soft_ring", "0.5",
        "--match", "core")
    pack = load_pack(out)  # every sha256 of the rewritten manifest verified
    assert (out / "bank.npz").read_bytes() == (DEMO / "bank.npz").read_bytes()
    cells = identity_cells("nofore")
    np.testing.assert_array_equal(np.load(out / "identity_region.npy"), cells)
    m = pack.fusion_mask().reshape(-1)
    grid = m[:-64].reshape(48, 16, 16)
    assert np.all(grid == grid[0]) and np.all(m[-64:] == 0)  # same on every channel; style from the reference
    assert np.all(grid[0][cells == 1] == 1)
    # the cells touching the region (8-neighbourhood) get 0.5, the rest 0
    assert grid[0][5, 4] == 0.5 and grid[0][4, 4] == 0 and grid[0][9, 5] == 0.5 and grid[0][9, 3] == 0
    assert sorted(set(grid[0].ravel().tolist())) == [0.0, 0.5, 1.0]
    rm = np.load(out / "reference_match.npy")[:-64].reshape(48, 16, 16)[0]
    assert rm[cells == 1].min() == 1 and rm[3, 2] == 0 and rm[4, 2] == 1  # identity + 2 cells around it
    man = json.loads((out / "pack.json").read_text())
    assert man["fusion"]["identity_cells"] == {k: [list(r) for r in v] for k, v in REGIONS["nofore"].items()}


def test_pack_variant_rederives_the_shipped_match_key(tmp_path):
    out = tmp_path / "core"
    run("research/pack/pack_variant.py", "--pack", DEMO, "--out", out, "--match", "ring")
    run("research/pack/pack_variant.py", "--pack", out, "--out", tmp_path / "back", "--match", "core")
    assert (out / "reference_match.npy").read_bytes() != (DEMO / "reference_match.npy").read_bytes()
    assert (tmp_path / "back" / "reference_match.npy").read_bytes() == (DEMO / "reference_match.npy").read_bytes()


def test_pack_variant_exports_another_identity_embedder(tmp_path):
    from research.models.models import Identity

    torch.manual_seed(0)
    net = Identity(width=8, size=32).eval()  # another width/size than the shipped one: read from the checkpoint
    ck = tmp_path / "identity.pt"
    torch.save({"net": net.state_dict(), "epoch": 1, "args": {"task": "identity", "width": 8, "size": 32}}, ck)
    out = tmp_path / "variant"
    run("research/pack/pack_variant.py", "--pack", DEMO, "--out", out, "--identity", ck)
    pack = load_pack(out)  # sha256 of the new identity.onnx verified
    assert (out / "encoder.onnx").read_bytes() == (DEMO / "encoder.onnx").read_bytes()
    assert (out / "identity.onnx").read_bytes() != (DEMO / "identity.onnx").read_bytes()
    x = np.random.default_rng(2).uniform(-1, 1, (3, 3, 128, 128)).astype(np.float32)
    sess = ort.InferenceSession(str(pack.networks["identity"].path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = sess.run(None, {"image": x})[0]
    assert got.shape == (3, 128) and np.abs(got - want).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_pack_variant_sets_the_pose_weight(tmp_path):
    out = tmp_path / "pose"
    run("research/pack/pack_variant.py", "--pack", DEMO, "--out", out, "--pose_weight", "2.5", "--description", "d")
    pack = load_pack(out)
    assert pack.pose_weight == 2.5 and pack.description == "d"
    assert (out / "bank.npz").read_bytes() == (DEMO / "bank.npz").read_bytes()
    r = subprocess.run([sys.executable, "research/pack/pack_variant.py", "--pack", DEMO, "--out", tmp_path / "x",
                        "--bank_landmarks", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "--bank_landmarks needs --bank_per_gender" in r.stderr


def test_crop_landmarks_maps_the_detector_back_to_crop_pixels():
    # a synthetic crop whose face we know: the package's sample face, aligned to the demo template
    from research.data.crop_landmarks import crop_landmarks

    from pridss_rt.media import SAMPLE, read_image
    from pridss_rt.stages import align
    from pridss_rt.stages.detect import MTCNNDetector

    pack = load_pack(DEMO)
    frame = read_image(SAMPLE)
    det = MTCNNDetector(threads=1).detect(frame)[0]
    m = align.similarity_transform(det.landmarks, pack.preprocess.template)
    crop = align.warp_crops(frame, [m], pack.preprocess)
    rgb = align.to_uint8(crop, pack.preprocess)[..., ::-1]  # (1, 128, 128, 3) BGR -> RGB
    got = crop_landmarks(rgb)[0]
    want = align.transform_points(m, det.landmarks)  # where the frame's landmarks land in the crop
    assert np.all(np.isfinite(got)) and np.abs(got - want).max() < 1.5, (got, want)  # 0.77 px measured
    blank = crop_landmarks(np.full((1, 128, 128, 3), 127, np.uint8))
    assert np.isnan(blank).all()  # no face: NaN, never a guess


def test_runtime_pairs_rank_references_like_the_runtime():
    # stage G trains on the pairs the runtime would choose: the bank's own faces, ranked by
    # research/data/runtime_pairs.rank_pairs, must come out in ReferenceBank.choose's order (pose term included,
    # faces without landmarks included)
    from research.data.runtime_pairs import pose_distance, rank_pairs

    from pridss_rt.stages.fuse import ReferenceBank

    pack = load_pack(DEMO)
    bank = ReferenceBank(pack)
    assert bank.landmarks is not None and bank.pose_weight > 0 and bank.pool == 16
    keys = bank._key(bank.latents)
    keys = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    lm = bank.landmarks
    eye = float(np.linalg.norm(pack.preprocess.template[1] - pack.preprocess.template[0]))
    nbr, score = rank_pairs(keys, bank.male, lm, bank.pose_weight, eye, 16, chunk=300)
    assert (bank.male[nbr] != bank.male[:, None]).all() and np.all(np.diff(score, axis=1) <= 0)
    missing = np.flatnonzero(~np.isfinite(lm[:, 0, 0]))
    assert len(missing) > 0
    rng = np.random.default_rng(0)
    for i in np.r_[missing[:3], rng.choice(len(lm), 12, replace=False)]:
        got = bank.choose(bank.latents[i], 1.0 if bank.male[i] else 0.0, 16, lm[i])
        assert list(got) == list(nbr[i]), i
    # pose distance by hand: one point moved by 3 eye distances -> RMS = 3 / sqrt(5)
    a = np.tile(np.asarray(pack.preprocess.template, np.float32), (1, 1, 1))
    b = a.copy(); b[0, 2, 0] += 3 * eye
    c = np.full_like(a, np.nan)
    d = pose_distance(np.r_[a, c], np.r_[a, b, c], eye)
    assert np.allclose(d[0], [0, 3 / np.sqrt(5), 3 / np.sqrt(5)], atol=1e-6)  # no landmarks: the row's max
    assert np.all(d[1] == 0)  # a query without landmarks is ranked by similarity alone


def test_mirrored_choice_ranks_the_bank_and_its_mirror_image_together():
    # research/experiments/mirror.py (measured, not shipped): the flipped crop's latent is ranked against the same bank;
    # a pick made in the mirror is flagged so its synthesized face can be flipped back
    from types import SimpleNamespace

    from research.experiments.mirror import choose_mirrored, mirror_landmarks

    from pridss_rt.stages.fuse import ReferenceBank

    ang = np.deg2rad(np.arange(30) * 2.0)  # 30 female references at 0, 2, ..., 58 degrees from z; 1 male
    latents = np.concatenate([[[0.0, 0.0, 1.0]], np.stack([np.cos(ang), np.sin(ang), np.zeros(30)], 1)]).astype(np.float32)
    male = np.r_[True, np.zeros(30, bool)]
    bank = ReferenceBank(SimpleNamespace(bank=lambda: (latents, male), extras={}, reference_pool=0, pose_weight=0.0,
                                         preprocess=SimpleNamespace(template=np.zeros((5, 2), np.float32))))
    z = np.array([1.0, 0.0, 0.0], np.float32)
    zm = np.array([np.cos(np.deg2rad(40.5)), np.sin(np.deg2rad(40.5)), 0.0], np.float32)  # between faces 20 and 21
    # cos: face 0 unmirrored 1.0 > face 20 mirrored cos 0.5 deg > face 21 mirrored cos 1.5 deg > face 1 cos 2 deg
    idx, mir = choose_mirrored(bank, z, zm, 0.9, 4, None, 128)
    assert list(idx) == [1, 21, 22, 2] and list(mir) == [False, True, True, False]
    assert list(choose_mirrored(bank, z, z, 0.9, 2, None, 128)[1]) == [False, True]  # a tie: the bank as it is first
    # landmarks: x -> 127 - x with the sides swapped; twice gives them back
    lm = np.array([[40, 60], [80, 61], [60, 80], [45, 95], [77, 94]], np.float32)
    m = mirror_landmarks(lm, 128)
    assert m.tolist() == [[47, 61], [87, 60], [67, 80], [50, 94], [82, 95]]
    assert np.array_equal(mirror_landmarks(m, 128), lm)


def test_fused_target_gives_a_face_back_and_moves_only_the_blurred_part():
    from research.models.common import identity_pixel_mask
    from research.training.train_ae import blur, dilate, fused_target

    g = torch.Generator().manual_seed(0)
    xo, xr = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1, torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    hard = torch.from_numpy(identity_pixel_mask(region="nobrow"))[None, None]
    feather = blur(hard, 4).clamp(0, 1)
    ring = (dilate(hard, 10) - hard).clamp(0, 1)
    for lp in (0.0, 3.0):
        assert torch.allclose(fused_target(xo, xo, feather, ring, lp), xo, atol=1e-5)  # a face with itself
    t0, t1 = fused_target(xo, xr, feather, ring), fused_target(xo, xr, feather, ring, 3.0, 1.0)
    outside = feather[0, 0] == 0
    assert torch.equal(t0[:, :, outside], xr[:, :, outside]) and torch.equal(t1[:, :, outside], xr[:, :, outside])
    # an original = the reference + a broad dark blob over one eye (like make-up, sigma 6 px) + fine stripes
    # (1-px period detail): the low-pass target drops most of the blob and keeps the stripes
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    blob = -0.5 * torch.exp(-((yy - 64) ** 2 + (xx - 48) ** 2) / (2 * 6.0 ** 2))
    stripes = 0.2 * (xx % 2 * 2 - 1) * (hard[0, 0] > 0)
    base = blur(torch.rand(1, 1, 128, 128, generator=g), 8).expand(1, 3, 128, 128)
    tb0 = fused_target(base + blob, base, feather, ring) - base
    tb1 = fused_target(base + blob, base, feather, ring, 3.0, 1.0) - base
    assert tb1.abs().sum() < 0.3 * tb0.abs().sum(), (tb1.abs().sum(), tb0.abs().sum())
    ts0 = fused_target(base + stripes, base, feather, ring) - base
    ts1 = fused_target(base + stripes, base, feather, ring, 3.0, 1.0) - base
    assert ts1.abs().sum() > 0.9 * ts0.abs().sum(), (ts1.abs().sum(), ts0.abs().sum())
    tm = fused_target(xo, xr, feather, ring, 3.0, 0.5)
    assert torch.allclose(tm, 0.5 * (t0 + t1), atol=1e-5)  # mix is linear


def test_male_bands_hand_the_boxes_to_the_reference_in_the_target():
    from research.training.train_ae import band_mask, fused_target, region_masks

    hard = band_mask("82:90:42:86,100:104:48:80", 0)
    assert hard.shape == (1, 128, 128) and hard.sum() == 8 * 44 + 4 * 32
    assert hard[0, 82, 42] == 1 and hard[0, 89, 85] == 1 and hard[0, 90, 64] == 0 and hard[0, 81, 64] == 0
    soft = band_mask("82:90:42:86", 2.0)
    assert 0.9 < soft[0, 86, 64] < 1 and soft[0, 70, 64] == 0 and torch.isclose(soft.sum(), torch.tensor(8.0 * 44), rtol=0.02)
    for bad in ("90:82:42:86", "82:90:42:129", "82:90:42"):
        with pytest.raises(ValueError):
            band_mask(bad, 0)
    # the masks of male originals (index 0) lose the boxes, those of female originals keep them; inside a box the
    # target of a male original is the reference, just outside it the colour-matched original as before
    _, feathers, rings, _ = region_masks(["nobrow", "nobrow"], 4.0)
    banded = feathers.clone()
    banded[0] = banded[0] * (1 - hard)
    assert torch.equal(banded[1], feathers[1]) and banded[0, 0, 86, 64] == 0 and banded[0, 0, 95, 64] == feathers[0, 0, 95, 64]
    g = torch.Generator().manual_seed(3)
    xo, xr = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1, torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    t_band, t_plain = fused_target(xo, xr, banded[:1], rings[:1]), fused_target(xo, xr, feathers[:1], rings[:1])
    assert torch.equal(t_band[..., 82:90, 42:86], xr[..., 82:90, 42:86])
    assert torch.equal(t_band[..., 95, :], t_plain[..., 95, :])


def test_region_masks_per_face_match_each_face_on_its_own():
    from research.training.train_ae import fused_target, region_masks

    lms, feathers, rings, wmaps = region_masks(["nobrow", "jaw"], 4.0)
    assert lms.shape[0] == feathers.shape[0] == rings.shape[0] == wmaps.shape[0] == 2
    # jaw = nobrow + the two cell rows under the mouth (y 104-120, x 40-88), in every latent channel
    diff = (feathers[1, 0] - feathers[0, 0]).abs() > 1e-3
    ys, xs = np.nonzero(diff.numpy())
    assert ys.min() >= 104 - 12 and ys.max() <= 127 and xs.min() >= 40 - 12 and xs.max() <= 88 + 12
    grid = (lms[1] - lms[0])[:48 * 256].reshape(48, 16, 16)
    assert torch.equal(grid, grid[:1].expand(48, 16, 16)) and grid[0].sum() == 12
    assert grid[0, 13:15, 5:11].all() and not torch.any(lms[1][48 * 256:] - lms[0][48 * 256:])
    # a batch whose faces use different regions: each face's target as if computed alone (the skin
    # statistics are measured per face, in its own ring)
    g = torch.Generator().manual_seed(1)
    xo, xr = torch.rand(3, 3, 128, 128, generator=g) * 2 - 1, torch.rand(3, 3, 128, 128, generator=g) * 2 - 1
    which = torch.tensor([0, 1, 1])
    t = fused_target(xo, xr, feathers[which], rings[which], 3.0, 0.5)
    for i, r in enumerate(which.tolist()):
        ti = fused_target(xo[i:i + 1], xr[i:i + 1], feathers[r:r + 1], rings[r:r + 1], 3.0, 0.5)
        assert torch.allclose(t[i:i + 1], ti, atol=1e-6)
    assert not torch.allclose(t[1:2], fused_target(xo[1:2], xr[1:2], feathers[:1], rings[:1], 3.0, 0.5), atol=1e-3)


def test_critic_training_data_and_degradations():
    # research/training/train_critic.py: composites mix exactly the mask's elements of the face with its reference (a random
    # other face or, with `matched`, one of its listed neighbours); degraded copies are blurred or washed out
    from research.training.train_critic import degrade, make_set_subset

    rng = np.random.default_rng(0)
    n, extra = 6, 4
    u8 = rng.integers(0, 256, (n + extra, 2, 2, 3), dtype=np.uint8)
    enc = lambda x: x.reshape(len(x), -1).copy()  # noqa: E731  latent = the normalized pixels
    syn = lambda z: z.reshape(len(z), 3, 2, 2)  # noqa: E731
    mask = np.zeros(12, np.float32)
    mask[:5] = 1
    nbr = np.tile(np.arange(n, n + extra), (n, 1))  # every face's neighbours: the extra faces
    for matched, allowed in ((0.0, range(n)), (1.0, range(n, n + extra))):
        x, y = make_set_subset(enc, syn, mask, u8, n, np.random.default_rng(1), nbr, matched)
        assert x.shape == (2 * n, 2, 2, 3) and y.tolist() == [0] * n + [1] * n
        z = ((u8.astype(np.float32) / 255 - 0.5) / 0.5).transpose(0, 3, 1, 2).reshape(n + extra, -1)
        rec = lambda v: np.clip(np.round((v.reshape(-1, 3, 2, 2).transpose(0, 2, 3, 1) * 0.5 + 0.5) * 255), 0, 255)  # noqa: E731
        assert (x[:n] == rec(z[:n])).all()  # reconstructions
        comp = x[n:].transpose(0, 3, 1, 2).reshape(n, -1).astype(np.float32)
        keep = rec(z[:n]).transpose(0, 3, 1, 2).reshape(n, -1)
        assert (comp[:, :5] == keep[:, :5]).all()  # the identity elements are the face's own
        for i in range(n):  # the rest is one reference's: another face (or a neighbour when matched)
            refs = [j for j in allowed if j != i and (comp[i, 5:] == rec(z[j:j + 1]).transpose(0, 3, 1, 2).reshape(-1)[5:]).all()]
            assert refs, i
    img = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (16, 3, 32, 32)).astype(np.float32))
    torch.manual_seed(0)
    d = degrade(img)
    assert d.shape == img.shape and d.abs().max() <= 1
    # every copy lost detail or contrast: less pixel-to-pixel variation than its original
    var = lambda t: (t[:, :, :, 1:] - t[:, :, :, :-1]).abs().mean((1, 2, 3))  # noqa: E731
    assert (var(d) < 0.9 * var(img)).all()


def test_bn_realism_critic_judges_both_sets_in_one_batch():
    # research/training/train_ae.py --adv_critic bn: the generator's term and the critic's own step see the fused outputs
    # with the same BatchNorm statistics (those of reconstructions + fused together), never a fused-only batch
    from research.models.models import SmallCNN
    from research.training.train_ae import PatchCritic, critic_logits

    g = torch.Generator().manual_seed(0)
    yr = torch.rand(6, 3, 128, 128, generator=g) * 2 - 1
    yf = torch.rand(3, 3, 128, 128, generator=g) * 0.5  # another distribution: fused-only statistics differ
    D = SmallCNN(1, width=16, size=64).train()
    D.drop.p = 0.0  # dropout off, so that calls compare exactly
    dr, df = critic_logits(D, "bn", yr, yf)
    assert dr.shape == (6, 1) and df.shape == (3, 1)
    only = critic_logits(D, "bn", yr, yf, fused_only=True)
    torch.testing.assert_close(only, df)
    joint = D.features(torch.cat([yr, yf]))
    torch.testing.assert_close(torch.cat([dr, df]), joint)
    assert (D.features(yf) - df).abs().max() > 1e-3  # a fused-only batch would be judged differently
    P = PatchCritic().eval()
    pr, pf = critic_logits(P, "patch", yr, yf)
    torch.testing.assert_close(critic_logits(P, "patch", yr, yf, fused_only=True), pf)
    torch.testing.assert_close(pr, P(yr))


def test_bank_curation_scores_references_against_their_originals_and_drops_the_worst(tmp_path):
    from research.experiments.curate_bank import drop_order, reference_excess

    # by hand: excess = P(composite) minus the mean of the same original's candidates
    refs = np.array([[0, 1], [1, 2], [0, 2]])
    pc = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.6]])
    cnt, mex = reference_excess(refs, pc, 4)
    assert cnt.tolist() == [2, 2, 2, 0]
    assert np.allclose(mex, [(0.4 - 0.2) / 2, (-0.4 + 0.0) / 2, (0.0 + 0.2) / 2, 0.0])
    assert drop_order(cnt, mex, 2).tolist() == [0, 2, 1, 3]  # ties keep bank order; unused faces last
    assert drop_order(cnt, mex, 3).tolist() == [0, 1, 2, 3]  # none used often enough: bank order

    # the variant writer, from saved scores: 16 references always worse than their co-candidates are dropped
    pack = load_pack(DEMO)
    lat, male = pack.bank()
    rng = np.random.default_rng(0)
    bad = rng.choice(len(lat), 16, replace=False)
    others = np.setdiff1d(np.arange(len(lat)), bad)
    refs = np.stack([np.r_[bad[i % 16], rng.choice(others, 4, replace=False)] for i in range(160)])
    pc = np.where(np.isin(refs, bad), 0.9, 0.1)
    np.savez(tmp_path / "scores.npz", refs=refs, pc=pc)
    out = tmp_path / "variant"
    log = run("research/experiments/curate_bank.py", "--pack", DEMO, "--scores", tmp_path / "scores.npz", "--drop", "0.01",
              "--out", out)
    assert "dropped 16" in log
    v = load_pack(out)  # the rewritten sha256 validates
    vlat, vmale = v.bank()
    keep = np.setdiff1d(np.arange(len(lat)), bad)
    assert len(vlat) == len(lat) - 16
    assert np.array_equal(vlat, lat[keep]) and np.array_equal(vmale, male[keep])
    assert np.array_equal(v.bank_landmarks(), pack.bank_landmarks()[keep], equal_nan=True)
    assert v.fusion_mask().tobytes() == pack.fusion_mask().tobytes()


def test_the_runtime_never_imports_research_code_and_the_wheel_leaves_it_out():
    import re

    pattern = re.compile(r"^\s*(from|import)\s+(research|train)\b", re.M)
    for path in (ROOT / "pridss_rt").rglob("*.py"):
        assert not pattern.search(path.read_text()), path
    toml = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:
        assert re.search(r'^\[tool\.setuptools\.packages\.find\]\ninclude = \["pridss_rt\*"\]$', toml, re.M)
    else:
        assert tomllib.loads(toml)["tool"]["setuptools"]["packages"]["find"] == {"include": ["pridss_rt*"]}
    assert not (ROOT / "train").exists()  # the research code lives in research/ only
