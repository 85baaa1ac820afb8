"""The demo pack shipped inside the package: loads by default, really anonymizes, stays small, runs the
same on ONNX Runtime and eager PyTorch, and converts to FP16 cleanly."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pridss_rt import Anonymizer, list_packs, load_pack
from pridss_rt.media import SAMPLE, read_image
from pridss_rt.pack import BUILTIN_PACKS

ROOT = Path(__file__).resolve().parents[1]
DEMO = BUILTIN_PACKS / "demo"


@pytest.fixture(scope="module")
def anon():
    with Anonymizer(threads=1) as a:  # every default: demo pack, auto backend, the pack's K
        yield a


def test_demo_is_the_default_pack_and_small():
    assert "demo" in list_packs()
    pack = load_pack()
    assert pack.name == "demo" and pack.root == DEMO.resolve()
    size = sum(f.stat().st_size for f in DEMO.iterdir())
    assert size <= 30e6, size  # the pack-size bar: 30 MB
    assert "non-commercial" in pack.license.lower()
    card = pack.model_card.read_text()
    assert "CelebA-HQ" in card and "non-commercial" in card.lower()
    latents, male = pack.bank()
    assert male.sum() >= 50 and (~male).sum() >= 50
    assert pack.preprocess.crop_size >= 96


def test_sample_face_is_replaced_recognizably(anon):
    frame = read_image(SAMPLE)
    anon.reset()
    out, faces = anon.process(frame)
    assert len(faces) == 1 and faces[0].status == "anonymized"
    f = faces[0]
    assert 0 <= f.p_male_before <= 1 and 0 <= f.p_male_after <= 1
    # PIC picked a candidate the pack's embedder still matches to the original
    assert f.sim > 0.3, f.sim
    w = anon.coherence_weight  # the pack's critic term (defaults.coherence_weight), if it ships one
    assert w == anon.pack.coherence_weight and (w == 0) == (f.p_composite is None)
    assert f.pic == pytest.approx(abs(2 * f.p_male_after - 1) - f.sim + (w * f.p_composite if w else 0), abs=1e-6)
    x1, y1, x2, y2 = (int(v) for v in f.box)
    inside = np.abs(out[y1:y2, x1:x2].astype(int) - frame[y1:y2, x1:x2]).mean()
    assert inside > 3  # a different face, not a copy
    mask = np.ones(frame.shape[:2], bool)
    mask[max(0, y1 - 40):y2 + 40, max(0, x1 - 40):x2 + 40] = False
    assert (out[mask] == frame[mask]).all()


@pytest.mark.parametrize("region", ["head", "person"])
def test_head_region_re_renders_the_head_inside_the_crop_only(region):
    # the demo pack ships a segmentation network (1.8.0): --region head re-renders head and hair, --region person
    # neck and clothes too; every pixel outside the face's aligned crop stays bit-identical, and more of the frame
    # changes than with the inner face
    from pridss_rt import BlendConfig
    from pridss_rt.stages import align, segment

    frame = read_image(SAMPLE)
    with Anonymizer(threads=1, blend=BlendConfig(region=region)) as a, Anonymizer(threads=1) as f:
        assert a.pack.blend_region == "face" and "segmentation" in a.nets
        out, faces = a.process(frame)
        out_f, _ = f.process(frame)
        det = a.detector.detect(frame)[0]
        m = align.similarity_transform(det.landmarks, a.pack.preprocess.template)
        crop = align.warp_crops(frame, [m], a.pack.preprocess)
        head = segment.head_probability(a.nets, crop)[0]
    assert faces[0].status == "anonymized"
    s = a.pack.preprocess.crop_size
    inside = cv2.warpAffine(np.ones((s, s), np.uint8), cv2.invertAffineTransform(m), frame.shape[1::-1],
                            flags=cv2.INTER_NEAREST) > 0
    inside = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    changed = np.abs(out.astype(int) - frame).sum(-1) > 0
    assert not changed[~inside].any()
    assert changed.sum() > 1.5 * (np.abs(out_f.astype(int) - frame).sum(-1) > 0).sum()
    # the segmentation network finds the head: the 5 landmarks of the template sit in it
    tpl = np.round(a.pack.preprocess.template).astype(int)
    assert all(head[y, x] > 0.5 for x, y in tpl) and 0.2 < (head > 0.5).mean() < 0.9


def test_demo_bank_landmarks_drive_a_pose_aware_choice(anon):
    pack = anon.pack
    lms = pack.bank_landmarks()
    found = np.isfinite(lms[:, 0, 0])
    assert pack.pose_weight > 0 and found.mean() >= 0.98
    # measured on the bank crops like the template on 2,000 train crops: their mean is the template
    assert np.abs(lms[found].mean(0) - pack.preprocess.template).max() < 1.5
    # on the sample face, weighing pose brings the candidates' landmarks closer than latent similarity alone
    from pridss_rt.stages import align
    from pridss_rt.stages.encode import encode

    frame = read_image(SAMPLE)
    det = anon.detector.detect(frame)[0]
    m = align.similarity_transform(det.landmarks, pack.preprocess.template)
    crop = align.warp_crops(frame, [m], pack.preprocess)
    z = encode(anon.nets, crop)[0]
    face = align.transform_points(m, det.landmarks)
    bank = anon.bank
    with_pose = bank.choose(z, 0.9, 5, face)
    w, bank.pose_weight = bank.pose_weight, 0.0
    try:
        latent_only = bank.choose(z, 0.9, 5, face)
    finally:
        bank.pose_weight = w
    d_pose, d_lat = bank.pose_distance(face, with_pose).mean(), bank.pose_distance(face, latent_only).mean()
    assert d_pose < d_lat, (d_pose, d_lat)


def test_steady_state_one_synthesis_per_face(anon):
    frame = read_image(SAMPLE)
    anon.reset()
    s0 = anon.stats["syntheses"]
    for _ in range(4):
        anon.process(frame)
    assert anon.stats["syntheses"] - s0 == anon.candidates + 3


def test_onnxruntime_and_pytorch_agree():
    pytest.importorskip("torch")
    from export.torch_backend import open_torch_networks
    from pridss_rt.backends import open_networks

    pack = load_pack()
    latents, _ = pack.bank()
    z = latents[:3]
    with open_networks(pack, "ort-cpu", threads=1) as o, open_torch_networks(pack, threads=1) as t:
        syn = o["synthesis"]
        img_o = syn.run({syn.inputs[0].name: z})[syn.outputs[0].name]
        img_t = t["synthesis"].run({syn.inputs[0].name: z})[syn.outputs[0].name]
        np.testing.assert_allclose(img_t, img_o, atol=2e-4)
        for role in ("encoder", "gender", "identity", "segmentation"):
            s = o[role]
            a = s.run({s.inputs[0].name: img_o})[s.outputs[0].name]
            b = t[role].run({s.inputs[0].name: img_o})[s.outputs[0].name]
            np.testing.assert_allclose(b, a, atol=2e-4, err_msg=role)


def test_fp16_build_checks_pass_without_gpu(tmp_path):
    from pridss_rt.backends.probe import machine

    if machine().tensorrt and machine().gpu:
        pytest.skip("this machine builds real engines")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, str(ROOT / "export" / "build_engines.py"), "--fp16", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 3, out
    from pridss_rt import load_pack

    assert out.count("— ok") == len(load_pack("demo").networks) and "Traceback" not in out  # every network passes
