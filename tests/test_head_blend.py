"""The head-level blend (packs with a segmentation network, defaults.blend_region = "head"): the new head over
the original's background, pasted through the union of both heads; candidates scored on that composite."""

import numpy as np
import pytest
import tinypack

from pridss_rt import Anonymizer, BlendConfig, InputError, PackError, load_pack
from pridss_rt.media import SAMPLE, read_image
from pridss_rt.stages import blend
from pridss_rt.stages.segment import head_from_logits


@pytest.fixture(scope="module")
def head_pack(tmp_path_factory):
    root = tinypack.make_pack(tmp_path_factory.mktemp("packs"))
    tinypack.add_segmentation(root)
    return root


def test_head_probability_is_the_softmax_mass_of_the_head_classes():
    logits = np.array([[[[0.0]], [[1.0]], [[2.0]], [[-1.0]]]], np.float32)  # background, head, identity, body
    e = np.exp([0.0, 1.0, 2.0, -1.0])
    got = head_from_logits(logits, ["background", "head", "identity", "body"])
    assert got.shape == (1, 1, 1) and got[0, 0, 0] == pytest.approx((e[1] + e[2]) / e.sum(), rel=1e-6)
    # class order comes from the pack, not from a convention
    got = head_from_logits(logits, ["head", "background", "body", "identity"])
    assert got[0, 0, 0] == pytest.approx((e[0] + e[3]) / e.sum(), rel=1e-6)


def test_head_region_fades_to_the_original_at_the_crop_edge():
    # a head that fills the crop (hair past its edge) must not end in a straight seam along the crop's square
    s = 100
    m = blend.head_region(np.ones((s, s), np.float32), np.ones((s, s), np.float32))
    r = blend.HEAD_BORDER * s  # 8 px
    assert (m[0] == 0).all() and (m[:, -1] == 0).all()
    assert m[50, 50] == pytest.approx(1, abs=1e-6) and m[50, int(r)] == pytest.approx(1, abs=1e-6)
    t = 4 / r  # smoothstep at half the fade: 0.5
    assert m[50, 4] == pytest.approx(t * t * (3 - 2 * t), abs=1e-6) and m[50, 4] == pytest.approx(0.5, abs=1e-6)
    row = m[50, :int(r) + 1]
    assert (np.diff(row) > 0).all()  # rises monotonically
    # the largest step between neighbours at the edge, against the 1-px cut it replaces
    assert np.abs(np.diff(m[50])).max() < 0.2


def test_head_region_background_and_composite_by_hand():
    s = 32
    old = np.zeros((s, s), np.float32)
    old[8:20, 8:20] = 1
    new = np.zeros((s, s), np.float32)
    new[12:26, 10:22] = 1
    m = blend.head_region(old, new)
    assert m.shape == (s, s) and m.dtype == np.float32
    assert (m[0] == 0).all() and (m[-1] == 0).all() and (m[:, 0] == 0).all() and (m[:, -1] == 0).all()
    assert m[14, 14] > 0.99 and m[24, 20] > 0.9  # inside either head
    assert m[2, 28] < 1e-3  # far from both
    rng = np.random.default_rng(0)
    orig = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
    bg = blend.background_under(orig, old)
    grown = np.zeros((s, s), bool)
    grown[7:21, 7:21] = True  # head grown by 1 px (0.03 x 32)
    assert (bg[~grown] == orig[~grown]).all()  # inpainting changes only the (grown) old head
    assert (bg[10:18, 10:18] != orig[10:18, 10:18]).any()
    gen = np.full((s, s, 3), 200, np.uint8)
    c = blend.composite_head(gen, bg, new)
    assert (c[new == 1] == 200).all() and (c[new == 0] == bg[new == 0]).all()


def test_pack_checks_the_segmentation_network(tmp_path):
    root = tinypack.make_pack(tmp_path / "a")
    tinypack.edit_manifest(root, lambda d: d["defaults"].update(blend_region="head"))
    with pytest.raises(PackError, match="blend_region: is 'head' but the pack has no 'segmentation' network"):
        load_pack(root)
    tinypack.edit_manifest(root, lambda d: d["defaults"].update(blend_region="hair"))
    with pytest.raises(PackError, match=r"blend_region: must be one of \['face', 'head', 'person'\], got 'hair'"):
        load_pack(root)
    root = tinypack.make_pack(tmp_path / "b")
    tinypack.add_segmentation(root)
    tinypack.edit_manifest(root, lambda d: d["networks"]["segmentation"].update(classes=["background", "face"]))
    with pytest.raises(PackError, match="segmentation.classes: must list .* 'head' among them"):
        load_pack(root)
    tinypack.edit_manifest(root, lambda d: d["networks"]["segmentation"].update(classes=["a", "head", "c"]))
    with pytest.raises(PackError, match=r"segmentation.outputs\[0\].shape: must be per-class logits \[batch, 3, 16, 16\]"):
        load_pack(root)


def _spy_state(monkeypatch, anon):
    """Capture the host executor's frame state (crops, synthesized rows) at paste time."""
    host, seen = anon.pipeline.host, {}
    real_paste, real_score = host.paste, host.score

    def paste(fr, rows, mats):
        seen.update(paste=(fr, list(rows), [m.copy() for m in mats]))
        return real_paste(fr, rows, mats)

    def score_(fr, n, coherence):
        out = real_score(fr, n, coherence)
        seen.update(score=(fr, n, out))
        return out

    monkeypatch.setattr(host, "paste", paste)
    monkeypatch.setattr(host, "score", score_)
    return seen


def test_head_blend_end_to_end(head_pack, monkeypatch):
    import cv2

    from pridss_rt.stages import align
    from pridss_rt.stages.segment import head_probability

    sample = read_image(SAMPLE)
    with Anonymizer(head_pack, "ort-cpu", threads=1) as head, \
            Anonymizer(head_pack, "ort-cpu", threads=1, blend=BlendConfig(region="face")) as face:
        assert head.pipeline.host.head and not face.pipeline.host.head
        seen = _spy_state(monkeypatch, head)
        oh, fh = head.process(sample)
        of, ff = face.process(sample)
        fr, rows, mats = seen["paste"]
        h_old = head_probability(head.nets, fr.crops)[0]
        h_new = head_probability(head.nets, fr.images[rows])[0]
    assert fh[0].status == ff[0].status == "anonymized"
    # the blend mask by hand: union of both heads, grown and feathered; outside it, every pixel is the input's
    mask = blend.head_region(h_old, h_new)
    inv = align.invert_affine(mats[0])
    h, w = sample.shape[:2]
    in_frame = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    changed = np.any(oh != sample, axis=2)
    near = cv2.dilate((in_frame > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # 1 px: the warp grid
    assert changed.sum() > 500 and not (changed & ~near).any()
    # the head blend reaches where the inner-face blend does not (hair, outline)
    face_mask = cv2.warpAffine(face.pipeline.host.mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    beyond = (in_frame > 0.9) & (face_mask < 0.2)
    d_head = np.abs(oh.astype(int) - sample.astype(int)).sum(2)[beyond].mean()
    d_face = np.abs(of.astype(int) - sample.astype(int)).sum(2)[beyond].mean()
    assert beyond.sum() > 200 and d_head > 3 * d_face + 5, (beyond.sum(), d_head, d_face)


def test_candidates_are_scored_on_what_the_frame_shows(head_pack, monkeypatch):
    # region head: P(male), SIM (and any critic) of each candidate are computed on what the frame shows — the
    # new head, colour-matched, over the original's background with its head inpainted away, through the blend
    # mask (union of both heads, faded at the crop edge) over the original crop — by hand here
    from pridss_rt.stages import align, score
    from pridss_rt.stages.segment import head_probability

    sample = read_image(SAMPLE)
    with Anonymizer(head_pack, "ort-cpu", threads=1) as a:
        seen = _spy_state(monkeypatch, a)
        _, faces = a.process(sample)
        fr, n, (p, e, comp) = seen["score"]
        pre = a.pack.preprocess
        raw = fr.images[:n]
        orig = align.to_uint8(fr.crops, pre)
        bg = blend.background_under(orig[0], head_probability(a.nets, fr.crops)[0])
        h_new = head_probability(a.nets, raw)
        gen = align.to_uint8(raw, pre)
        mask = a.pipeline.host.mask
        h_orig = head_probability(a.nets, fr.crops)[0]
        shown = []
        for r in range(n):
            c = blend.composite_head(blend.color_match(gen[r], orig[0], mask), bg, h_new[r]).astype(np.float64)
            m = blend.head_region(h_orig, h_new[r])[..., None]
            shown.append(np.floor(c * m + orig[0] * (1 - m) + 0.5).astype(np.uint8))
        x = align.from_uint8(np.stack(shown), pre)
        np.testing.assert_allclose(p, score.p_male(a.nets, x), atol=1e-6)
        np.testing.assert_allclose(e, score.embed(a.nets, x), atol=1e-6)
        assert not np.allclose(score.p_male(a.nets, raw), p, atol=1e-4)  # scoring the raw crops would differ
        best = int(np.argmin(np.abs(2 * p - 1) - e @ score.embed(a.nets, fr.crops)[0]))
    assert n == a.candidates and faces[0].status == "anonymized" and comp is None
    assert faces[0].p_male_after == pytest.approx(float(p[best]), abs=1e-9)


def test_device_executor_leaves_the_head_blend_to_the_host(monkeypatch, tmp_path, native_build):
    # the head-level blend (segmentation, inpainting) runs on the host executor: on the trt backend no device
    # executor is built for it (no frame is uploaded for nothing), and the frame goes through the host with the
    # same result as an ort-cpu run; asking for device frames with it is a clear error
    from test_gpu_path_fake import fake_device

    root = tinypack.make_pack(tmp_path / "packs")
    tinypack.add_segmentation(root)
    pack, engines, lib = fake_device(monkeypatch, tmp_path, root)
    sample = read_image(SAMPLE)
    with Anonymizer(pack, "trt", engines_root=engines, threads=1) as g, Anonymizer(pack, "ort-cpu", threads=1) as h:
        assert g.backend == "trt" and g.device is None and repr(g).endswith("frames on host>")
        (og, fg), (oh, fh) = g.process(sample), h.process(sample)
    with Anonymizer(pack, "trt", engines_root=engines, threads=1, blend=BlendConfig(region="face")) as f:
        assert f.device is not None  # the inner-face blend keeps its device executor
    with pytest.raises(InputError, match="device_frames=True: the head-level blend .* runs on the host executor only"):
        Anonymizer(pack, "trt", engines_root=engines, threads=1, device_frames=True)
    assert fg[0].status == fh[0].status == "anonymized" and fg[0].reference == fh[0].reference
    assert "warp_normalize" not in lib.calls and "paste_back" not in lib.calls
    assert np.abs(og.astype(int) - oh.astype(int)).max() <= 2


def test_head_region_needs_a_segmentation_network(shared_tiny_pack):
    with pytest.raises(InputError, match="blend region is 'head' but the pack has no 'segmentation' network"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, blend=BlendConfig(region="head"))
    with pytest.raises(InputError, match="blend region must be one of"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, blend=BlendConfig(region="hair"))


# ---- three-way synthesis (a context input: the original crop without its head, and the hole) ------------------
@pytest.fixture(scope="module")
def three_way_pack(tmp_path_factory):
    root = tinypack.make_pack(tmp_path_factory.mktemp("packs3"))
    tinypack.add_segmentation(root)
    tinypack.add_context_synthesis(root)
    return root


def test_head_context_by_hand():
    crop = np.arange(2 * 7 * 7, dtype=np.float32).reshape(2, 7, 7)[None].repeat(3, 0)[:, 0] / 100.0  # (3, 7, 7)
    p = np.zeros((7, 7), np.float32)
    p[3, 3] = 0.9
    p[0, 6] = 0.4  # below 0.5: not head
    ctx = blend.head_context(crop, p, grow=1)
    hole = np.zeros((7, 7), np.float32)
    hole[2:5, 2:5] = 1  # a square grown by 1 px, as the training's max filter
    assert ctx.shape == (4, 7, 7) and ctx.dtype == np.float32
    np.testing.assert_array_equal(ctx[3], hole)
    np.testing.assert_array_equal(ctx[:3], crop * (1 - hole))


def test_three_way_synthesis_gets_each_faces_context_and_needs_no_inpainting(three_way_pack, monkeypatch):
    import cv2

    from pridss_rt.stages import align, score
    from pridss_rt.stages.segment import head_probability

    sample = read_image(SAMPLE)
    with Anonymizer(three_way_pack, "ort-cpu", threads=1) as a:
        host = a.pipeline.host
        assert host.head and host.three_way and not host.color_match
        calls = {}
        real = blend.background_under
        monkeypatch.setattr(blend, "background_under", lambda *x, **k: calls.setdefault("telea", real(*x, **k)))
        seen = _spy_state(monkeypatch, a)
        out, faces = a.process(sample)
        fr, n, (p, e, _) = seen["score"]
        ctx = blend.head_context(fr.crops[0], head_probability(a.nets, fr.crops)[0])
        np.testing.assert_array_equal(fr.context[0], ctx)
        # every candidate row is rendered with its face's context: outside the hole the tiny network copies it
        hole = ctx[3] > 0.5
        assert 0 < hole.sum() < hole.size and all(o == 0 for o in fr.owners)
        got = fr.images[:, :, ~hole]
        np.testing.assert_allclose(got, np.broadcast_to(fr.crops[0][:, ~hole], got.shape), atol=1e-6)
        # scored on the decoder's own output (no composite over an inpainted background)
        g, o = align.to_uint8(fr.images[:n], a.pack.preprocess), align.to_uint8(fr.crops, a.pack.preprocess)[0]
        h_orig, h_new = head_probability(a.nets, fr.crops)[0], head_probability(a.nets, fr.images[:n])
        ms = [blend.head_region(h_orig, h_new[r])[..., None] for r in range(n)]
        x = align.from_uint8(np.stack([np.floor(g[r] * ms[r] + o * (1 - ms[r]) + 0.5).astype(np.uint8) for r in range(n)]),
                             a.pack.preprocess)
        np.testing.assert_allclose(p, score.p_male(a.nets, x), atol=1e-6)
        # outside the union of both heads (grown, feathered) every pixel is the input's
        frp, prow, mats = seen["paste"]
        mask = blend.head_region(head_probability(a.nets, frp.crops)[0], frp.head_new[prow[0]])
    assert "telea" not in calls and faces[0].status == "anonymized"
    inv = align.invert_affine(mats[0])
    in_frame = cv2.warpAffine(mask, inv, sample.shape[1::-1], flags=cv2.INTER_LINEAR, borderValue=0)
    near = cv2.dilate((in_frame > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    changed = np.any(out != sample, axis=2)
    assert changed.sum() > 100 and not (changed & ~near).any()


def test_three_way_synthesis_matches_the_reference_function(three_way_pack):
    from pridss_rt.backends import open_networks
    from pridss_rt.stages.synthesize import synthesize

    pack = load_pack(three_way_pack)
    nets = open_networks(pack, "ort-cpu", threads=1)
    try:
        rng = np.random.default_rng(0)
        z = rng.standard_normal((3, tinypack.LATENT)).astype(np.float32)
        ctx = rng.random((3, 4, tinypack.SIZE, tinypack.SIZE)).astype(np.float32)
        ctx[:, 3] = ctx[:, 3] > 0.5
        np.testing.assert_allclose(synthesize(nets, z, ctx), tinypack.context_synthesis_reference(z, ctx), atol=1e-6)
        with pytest.raises(InputError, match="context row per latent"):
            synthesize(nets, z)
        with pytest.raises(InputError, match="context row per latent"):
            synthesize(nets, z, ctx[:2])
    finally:
        nets.close()


def test_pack_checks_the_three_way_synthesis(tmp_path):
    root = tinypack.make_pack(tmp_path / "p")
    tinypack.add_segmentation(root, region="face")
    tinypack.add_context_synthesis(root)
    with pytest.raises(PackError, match="blend_region"):
        load_pack(root)
    tinypack.edit_manifest(root, lambda d: d["defaults"].update(blend_region="head"))
    load_pack(root)

    def bad(d):
        d["networks"]["synthesis"]["inputs"][1]["shape"] = ["batch", 3, tinypack.SIZE, tinypack.SIZE]
    tinypack.edit_manifest(root, bad)
    with pytest.raises(PackError, match=r"inputs\[1\]"):
        load_pack(root)


def test_cli_region_option_picks_the_blend(tmp_path, shared_tiny_pack, capsys):
    # `--region head` on a pack whose default is the inner face (as the demo pack): the head is re-rendered,
    # which changes pixels the inner-face mask never touches; `--region face` is the pack's default exactly;
    # a pack without a segmentation network gets a clear error naming the option
    from pridss_rt.cli import main

    root = tinypack.make_pack(tmp_path / "p")
    tinypack.add_segmentation(root, region="face")
    outs = {}
    for region in (None, "face", "head"):
        out = tmp_path / f"{region}.png"
        extra = [] if region is None else ["--region", region]
        assert main(["anonymize", str(SAMPLE), "-o", str(out), "--pack", str(root), "--backend", "ort-cpu",
                     "--threads", "1"] + extra) == 0
        outs[region] = read_image(out).astype(int)
    assert (outs[None] == outs["face"]).all()
    frame = read_image(SAMPLE).astype(int)
    untouched_by_face = np.abs(outs["face"] - frame).sum(-1) == 0
    assert (np.abs(outs["head"] - frame).sum(-1)[untouched_by_face] > 0).sum() > 50  # of the tiny pack's 16-px crop
    capsys.readouterr()
    assert main(["anonymize", str(SAMPLE), "-o", str(tmp_path / "x.png"), "--pack", str(shared_tiny_pack),
                 "--backend", "ort-cpu", "--threads", "1", "--region", "head"]) != 0
    err = capsys.readouterr().err
    assert "blend region is 'head' but the pack has no 'segmentation' network" in err and "--region face" in err
    assert "Traceback" not in err


def test_reference_gender_default_follows_the_region(head_pack, shared_tiny_pack):
    # SearchConfig(reference_gender=None): "both" with the head-level blend (on every attacker measured the
    # better rule there), "opposite" with the inner face; an explicit rule is kept as given
    from pridss_rt import SearchConfig

    with Anonymizer(head_pack, "ort-cpu", threads=1) as a:
        assert a.region == "head" and a.reference_gender == "both"
    with Anonymizer(head_pack, "ort-cpu", threads=1, blend=BlendConfig(region="face")) as a:
        assert a.region == "face" and a.reference_gender == "opposite"
    with Anonymizer(head_pack, "ort-cpu", threads=1, search=SearchConfig(reference_gender="opposite")) as a:
        assert a.region == "head" and a.reference_gender == "opposite"
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1) as a:
        assert a.reference_gender == "opposite" and "region face, references opposite" in repr(a)


def test_person_region_re_renders_the_body_too(head_pack, monkeypatch, tmp_path):
    # region "person": the re-rendered region is P(head + identity + body), the softmax mass of the three
    # classes; everything it does not cover stays bit-identical; packs without a 'body' class refuse it
    from pridss_rt import SearchConfig
    from pridss_rt.stages.segment import head_from_logits, head_probability

    logits = np.array([[[[0.5]], [[1.0]], [[2.0]], [[-1.0]]]], np.float32)
    e = np.exp([0.5, 1.0, 2.0, -1.0])
    got = head_from_logits(logits, ["background", "head", "identity", "body"], ("head", "identity", "body"))
    assert got[0, 0, 0] == pytest.approx((e[1] + e[2] + e[3]) / e.sum(), rel=1e-6)
    sample = read_image(SAMPLE)
    with Anonymizer(head_pack, "ort-cpu", threads=1, blend=BlendConfig(region="person")) as p:
        assert p.region == "person" and p.reference_gender == "both"
        seen = _spy_state(monkeypatch, p)
        out, faces = p.process(sample)
        fr, rows, mats = seen["paste"]
        seg = p.nets["segmentation"]
        lg = seg.run({seg.inputs[0].name: fr.crops})[seg.outputs[0].name]
        np.testing.assert_allclose(fr.head_orig, head_from_logits(lg, seg.spec.options["classes"],
                                                                  ("head", "identity", "body")), atol=1e-6)
        assert (fr.head_orig > head_probability(p.nets, fr.crops) + 0.1)[-2:].any()  # the bottom rows: body
        mask = blend.head_region(fr.head_orig[0], fr.head_new[rows[0]])
    assert faces[0].status == "anonymized"
    import cv2

    inside = cv2.warpAffine(mask, cv2.invertAffineTransform(mats[0]), sample.shape[1::-1], flags=cv2.INTER_LINEAR,
                            borderValue=0) > 0
    inside = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert not (out != sample).any(-1)[~inside].any()
    root = tinypack.make_pack(tmp_path / "nobody")
    tinypack.add_segmentation(root, region="face")
    tinypack.edit_manifest(root, lambda d: d["networks"]["segmentation"].update(classes=["background", "head", "identity", "x"]))
    with pytest.raises(InputError, match="blend region is 'person' but the segmentation network has no 'body' class"):
        Anonymizer(root, "ort-cpu", threads=1, blend=BlendConfig(region="person"))
    tinypack.edit_manifest(root, lambda d: d["defaults"].update(blend_region="person"))
    with pytest.raises(PackError, match="blend_region: is 'person' but the segmentation network has no 'body' class"):
        load_pack(root)
    with Anonymizer(head_pack, "ort-cpu", threads=1, blend=BlendConfig(region="person"),
                    search=SearchConfig(reference_gender="opposite")) as p:
        assert p.reference_gender == "opposite"


def test_background_fill_at_half_resolution_matches_full_resolution_telea():
    """The fill under the old head runs at FILL_SCALE of the crop's resolution: on a smooth background (what the
    fill can recover) it is as close to the true background as Telea at full resolution, and outside the grown
    head every pixel is the original's."""
    import cv2

    s = 128
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    truth = np.stack([40 + 1.2 * xx, 60 + 0.8 * yy, 200 - 0.6 * xx - 0.4 * yy], -1).clip(0, 255).astype(np.uint8)
    img = truth.copy()
    head = np.zeros((s, s), np.float32)
    cv2.ellipse(head, (64, 58), (34, 44), 0, 0, 360, 1.0, -1)
    img[head > 0.5] = (30, 200, 90)  # the old head: nothing like the background
    half = blend.background_under(img, head)
    full = blend.background_under(img, head, scale=1.0)
    r = max(1, round(0.03 * s))
    hole = cv2.dilate((head > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
    assert (half[~hole] == img[~hole]).all() and (full[~hole] == img[~hole]).all()
    err = lambda f: np.abs(f[hole].astype(np.float32) - truth[hole]).mean()
    assert err(half) < 12.0 and err(half) <= err(full) + 2.0, (err(half), err(full))
    old = head > 0.5
    assert (half[old] != img[old]).all(1).mean() > 0.99  # the old head is gone


def test_background_fill_falls_back_to_full_resolution_when_the_lower_one_has_no_background_left():
    """A head mask that leaves background only in single-pixel gaps is all hole at half resolution: the fill then
    runs at full resolution instead of keeping the old head."""
    s = 32
    rng = np.random.default_rng(1)
    orig = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
    head = np.ones((s, s), np.float32)
    head[:, (np.arange(s) % 8 >= 3) & (np.arange(s) % 8 <= 5)] = 0  # 3 background columns in 8: grown by 1 px, one column of each stays
    # background at full resolution, and none at 16 px (every low-resolution pixel takes in a hole pixel)
    bg = blend.background_under(orig, head, grow=0.0)
    hole = head > 0.5
    keep = np.arange(s) % 8 == 4
    assert (bg[:, keep] == orig[:, keep]).all()  # the background columns stay
    assert (bg[hole] != orig[hole]).any(1).mean() > 0.5  # the old head was inpainted, not kept
