"""The Anonymizer end to end (tiny pack with known weights; the demo pack's own tests check realism)."""

import os

import numpy as np
import pytest

from pridss_rt import AlignConfig, Anonymizer, DetectorConfig, InputError, SearchConfig, TrackingConfig
from pridss_rt.cli.bench import make_frame
from pridss_rt.media import SAMPLE, read_image
from pridss_rt.stages.blend import expand_box, pixelate


@pytest.fixture(scope="module")
def anon(shared_tiny_pack):
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1) as a:
        yield a


@pytest.fixture
def sample():
    return read_image(SAMPLE)


def changed(a, b):
    return np.any(a != b, axis=-1) if a.ndim == 3 else a != b


def test_face_replaced_and_pixels_outside_untouched(anon, sample):
    anon.reset()
    out, faces = anon.process(sample)
    assert len(faces) == 1
    f = faces[0]
    assert f.status == "anonymized" and f.searched and f.reason == ""
    diff = changed(out, sample)
    assert diff.sum() > 500  # the face really changed
    x1, y1, x2, y2 = expand_box(np.array(f.box), sample.shape, margin=0.35)
    outside = diff.copy()
    outside[y1:y2, x1:x2] = False
    assert not outside.any()  # bit-identical outside the face
    # the numbers come from the pack's networks and obey PIC's definition
    assert 0 <= f.p_male_before <= 1 and 0 <= f.p_male_after <= 1 and -1 <= f.sim <= 1
    assert f.pic == pytest.approx(abs(2 * f.p_male_after - 1) - f.sim, abs=1e-9)
    assert f.reference is not None and 0 <= f.reference < 6
    assert (sample == read_image(SAMPLE)).all()  # input not modified


def test_candidate_search_once_per_track(anon, sample):
    anon.reset()
    before = anon.stats["syntheses"]
    _, f1 = anon.process(sample)
    k = anon.candidates
    assert anon.stats["syntheses"] - before == k and f1[0].searched
    for _ in range(3):
        _, f = anon.process(sample)
        assert not f[0].searched and f[0].track_id == f1[0].track_id and f[0].reference == f1[0].reference
    assert anon.stats["syntheses"] - before == k + 3  # one synthesis per face per frame after the search


def test_reference_choice_gets_the_faces_landmarks_in_its_crop(shared_tiny_pack, sample):
    # packs that weigh head pose compare these with their bank faces' landmarks (pridss_rt.stages.fuse)
    from pridss_rt.stages import align

    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1) as a:
        seen, choose = [], a.bank.choose
        a.bank.choose = lambda z, p, k, landmarks=None, **kw: seen.append(landmarks) or choose(z, p, k, landmarks, **kw)
        dets = a.detector.detect(sample)
        _, faces = a.process(sample)
    assert faces[0].status == "anonymized" and len(seen) == 1 and seen[0].shape == (5, 2)
    tpl = a.pack.preprocess.template
    m = align.similarity_transform(dets[0].landmarks, tpl)
    np.testing.assert_allclose(seen[0], align.transform_points(m, dets[0].landmarks), atol=1e-4)
    assert 0 < np.sqrt(((seen[0] - tpl) ** 2).sum(1).mean()) < a.max_align_error  # near, not on, the template


def test_stable_output_on_a_static_scene(anon, sample):
    anon.reset()
    a, _ = anon.process(sample)
    b, _ = anon.process(sample)
    d = np.abs(a.astype(int) - b.astype(int))
    # the same reference every frame; only OpenCV's 1/32-pixel warp grid may flip a few edge pixels
    assert d.mean() < 0.01 and d.max() <= 8


def test_different_person_in_same_place_triggers_new_search(shared_tiny_pack, sample):
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, tracking=TrackingConfig(reid_threshold=0.999)) as a:
        a.process(sample)
        _, same = a.process(sample)
        assert not same[0].searched
        other = sample.copy()
        x1, y1, x2, y2 = expand_box(np.array(same[0].box), sample.shape, margin=0.0)
        other[y1:y2, x1:x2] = other[y1:y2, x1:x2][:, ::-1]  # another face (mirrored) at the same place
        _, new = a.process(other)
        assert new and new[0].track_id == same[0].track_id  # the IoU tracker alone keeps the track ...
        assert new[0].searched and a.stats["researches"] == 1  # ... the identity check does not


def test_several_faces(anon):
    frame = make_frame(960, 540, 3)
    anon.reset()
    out, faces = anon.process(frame)
    assert len(faces) == 3 and all(f.status == "anonymized" for f in faces)
    assert len({f.track_id for f in faces}) == 3
    assert anon.stats["syntheses"] >= 3 * anon.candidates


def _forced_failure(*args, **kwargs):
    raise RuntimeError("forced failure")


# a stage fails: alignment through the stage module, the others through the executor's operations
FAILURES = {"align": ("stage", "similarity_transform"), "encode": ("executor", "encode"),
            "search": ("executor", "score"), "synthesize": ("executor", "synthesize"), "blend": ("executor", "paste")}


@pytest.mark.parametrize("stage", ["align", "encode", "search", "synthesize", "blend"])
def test_fail_closed_face_is_pixelated(shared_tiny_pack, sample, stage, monkeypatch):
    from pridss_rt.stages import align

    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1) as a:
        where, op = FAILURES[stage]
        monkeypatch.setattr(align if where == "stage" else a.pipeline.host, op, _forced_failure)
        out, faces = a.process(sample)
        assert faces[0].status == "pixelated" and "forced failure" in faces[0].reason
        want = sample.copy()
        pixelate(want, expand_box(np.array(faces[0].box), sample.shape))
        assert (out == want).all()  # exactly the pixelated face, nothing raw


@pytest.mark.parametrize("threads", [1, 2])  # 2: the rotated passes run on a worker thread (RotationRobustDetector)
@pytest.mark.parametrize("which", ["upright", "rotated"])
def test_fail_closed_detection_failure_hides_whole_frame(shared_tiny_pack, sample, monkeypatch, which, threads):
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=threads) as a:
        assert (a.detector.second is not None) == (threads == 2)
        if which == "upright":
            monkeypatch.setattr(a.detector.inner, "detect", _forced_failure)
        else:  # the upright face is already anonymized when the rotated passes fail: the frame is still hidden
            monkeypatch.setattr(a.detector, "_rotated", lambda *_: _forced_failure())
        out, faces = a.process(sample)
        want = sample.copy()
        pixelate(want)
        assert faces == [] and (out == want).all() and a.stats["frames_failed_closed"] == 1
        assert a.last_frame.whole_frame_pixelated and "detection failed: forced failure" in a.last_frame.reason
        monkeypatch.undo()
        _, faces = a.process(sample)
        assert not a.last_frame.whole_frame_pixelated and a.last_frame.reason == ""
        assert [f.status for f in faces] == ["anonymized"] and faces[0].track_id == 1  # the failed frame closed its tracks


def test_small_face_is_pixelated_not_shown(shared_tiny_pack, sample):
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, align=AlignConfig(min_size=500)) as a:
        out, faces = a.process(sample)
        assert faces[0].status == "pixelated" and "too small" in faces[0].reason
        assert changed(out, sample).any()


def test_extreme_pose_is_pixelated(shared_tiny_pack, sample):
    class Skewed:
        name = "skewed"

        def detect(self, frame):
            from pridss_rt.stages.detect import Detection

            lm = np.array([[200, 100], [240, 100], [290, 112], [200, 140], [240, 141]], np.float32)  # plausible, nose far off
            return [Detection(np.array([180, 60, 270, 175], np.float32), 0.99, lm)]

    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, detector=Skewed()) as a:
        out, faces = a.process(sample)
        assert faces[0].status == "pixelated" and "extreme pose" in faces[0].reason


@pytest.mark.parametrize("bad, pattern", [
    (None, "frame is None"),
    ([[1, 2, 3]], "must be a numpy array"),
    (np.zeros((10, 10, 3), np.float32), r"must be uint8, got float32 \(values in \[0, 1\]: convert with \(np.clip\(x, 0, 1\) \* 255"),
    (np.full((10, 10, 3), 200.0), r"must be uint8, got float64 \(convert with np.clip\(x, 0, 255\)"),
    (np.zeros((0, 10, 3), np.uint8), "frame is empty"),
    (np.zeros((10, 10, 2), np.uint8), r"must be \(H, W, 3\) BGR"),
    (np.zeros((2, 10, 10, 3), np.uint8), r"must be \(H, W, 3\) BGR"),
])
def test_bad_frames_raise_clear_errors(anon, bad, pattern):
    with pytest.raises(InputError, match=pattern):
        anon.process(bad)


def test_too_large_frame_is_refused(anon, monkeypatch):
    import pridss_rt.pipeline.frames as mod

    monkeypatch.setattr(mod, "MAX_PIXELS", 100 * 100)
    for shape in ((101, 100, 3), (101, 100), (101, 100, 1), (101, 100, 4)):  # gray and BGRA frames too
        with pytest.raises(InputError, match="larger than 10000 pixels"):
            anon.process(np.zeros(shape, np.uint8))


def test_gray_and_bgra_keep_their_layout(anon, sample):
    import cv2

    gray = cv2.cvtColor(sample, cv2.COLOR_BGR2GRAY)
    anon.reset()
    out, faces = anon.process(gray)
    assert out.shape == gray.shape and out.dtype == np.uint8 and faces
    bgra = np.dstack([sample, np.arange(sample.size // 3, dtype=np.uint32).reshape(sample.shape[:2]).astype(np.uint8)])
    anon.reset()
    out, faces = anon.process(bgra)
    assert out.shape == bgra.shape and (out[:, :, 3] == bgra[:, :, 3]).all() and faces
    out, _ = anon.process(gray[:, :, None])
    assert out.shape == gray[:, :, None].shape


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5, 3), (17, 1, 3), (479, 641, 3)])
def test_odd_sizes(anon, shape):
    anon.reset()  # (a track lost by an earlier test would be held and reported)
    frame = np.full(shape, 100, np.uint8)
    out, faces = anon.process(frame)
    assert out.shape == shape and faces == [] and (out == frame).all()


def test_huge_frame(anon, sample):
    import cv2

    big = cv2.resize(sample, (3840, 3840))
    anon.reset()
    out, faces = anon.process(big)
    assert out.shape == big.shape and len(faces) == 1 and faces[0].status == "anonymized"


def test_closed_anonymizer_refuses(shared_tiny_pack, sample):
    a = Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search=SearchConfig(candidates=3, coherence_weight=0))
    pack = a.pack
    assert repr(a) == (f"<Anonymizer pack {pack.name} {pack.version} on ort-cpu, K=3, region face, references opposite, "
                       "coherence weight 0, "
                       f"detector mtcnn+rotations, frames on host>")
    a.close()
    assert repr(a) == f"<Anonymizer pack {pack.name} {pack.version}, closed>"
    a.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        a.process(sample)


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read memory use")
def test_thousand_frames_flat_memory(shared_tiny_pack, sample):
    import cv2

    small = cv2.resize(sample, (160, 160))
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, detector=DetectorConfig(min_face=24)) as a:
        rss = []
        for i in range(1000):
            frame = np.roll(small, i % 4, axis=1)
            if i % 100 == 50:  # the face leaves and comes back: tracks are created and dropped
                frame = np.zeros_like(small)
            out, faces = a.process(frame)
            if i in (200, 999):
                rss.append(_rss_mb())
        assert a.stats["frames"] == 1000 and a.stats["faces_anonymized"] > 900
        assert len(a.pipeline.tracker.tracks) <= 2 and all(len(q) <= 2000 for q in a.timings.values())
        assert rss[1] - rss[0] < 15, rss  # no growth after warm-up


def test_coherence_critic_term_in_the_candidate_choice(tmp_path, sample, monkeypatch):
    # a pack with a critic: the choice is argmin(PIC + w * P(composite)) over the very candidates scored,
    # FaceResult reports that sum and the critic's score; weight 0 gives PIC's own choice
    import tinypack

    from pridss_rt.stages import score

    root = tinypack.make_pack(tmp_path)
    tinypack.add_coherence(root, weight=2.0)
    seen = {}
    real_select = score.select

    def spy(p, sim, composite=None, weight=0.0):
        seen.update(p=p, sim=sim, composite=composite, weight=weight)
        return real_select(p, sim, composite, weight)

    monkeypatch.setattr(score, "select", spy)
    picks = {}
    for w in (0.0, 2.0, 50.0):
        with Anonymizer(root, "ort-cpu", threads=1, search=SearchConfig(coherence_weight=None if w == 2.0 else w)) as a:
            assert a.coherence_weight == w
            _, faces = a.process(sample)
        f = faces[0]
        assert f.status == "anonymized"
        p, sim, c = seen["p"], seen["sim"], seen["composite"]
        if w == 0.0:
            assert c is None and f.p_composite is None
            best = int(np.argmin(np.abs(2 * p - 1) - sim))
        else:
            assert c.shape == p.shape and ((0 <= c) & (c <= 1)).all()
            best = int(np.argmin(np.abs(2 * p - 1) - sim + w * c))
            assert f.p_composite == pytest.approx(c[best], abs=1e-12)
            assert f.pic == pytest.approx(abs(2 * f.p_male_after - 1) - f.sim + w * c[best], abs=1e-9)
        assert f.p_male_after == pytest.approx(p[best], abs=1e-12) and f.sim == pytest.approx(sim[best], abs=1e-12)
        picks[w] = (best, c)
    c = picks[50.0][1]
    assert picks[50.0][0] == int(np.argmin(c))  # a heavy weight picks the least composite candidate
    assert np.ptp(c) > 0.05  # the critic really tells these candidates apart: the test can fail
    assert picks[50.0][0] != picks[0.0][0]  # and the term changes the choice here
    with pytest.raises(InputError, match="coherence_weight 0.5 needs a pack with a 'coherence' network"):
        Anonymizer(tinypack.make_pack(tmp_path / "plain"), "ort-cpu", threads=1, search=SearchConfig(coherence_weight=0.5))


def test_old_keyword_arguments_still_work_for_one_release(shared_tiny_pack, sample):
    # 0.1.0's flat keywords map onto the grouped options, with a DeprecationWarning naming the new form
    with pytest.warns(DeprecationWarning, match=r"use search=SearchConfig\(candidates=...\)"):
        old = Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, candidates=2, track=False, min_anonymize=30,
                         reid_threshold=0.7, color_match=False, max_align_error=9.0)
    with old, Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search=SearchConfig(candidates=2), tracking=False,
                         align=AlignConfig(min_size=30, max_error=9.0)) as new:
        assert old.candidates == new.candidates == 2 and old.max_align_error == new.max_align_error == 9.0
        assert not old.pipeline.tracking.enabled and old.pipeline.tracking.reid_threshold == 0.7
        assert old.pipeline.blend_cfg.color_match is False and new.pipeline.blend_cfg.color_match is True
        assert old.pipeline.align_cfg.min_size == 30
    with pytest.raises(TypeError, match="unexpected keyword argument.*colour_match"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, colour_match=False)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_candidates_must_be_a_positive_integer(shared_tiny_pack, bad):
    # 0 is refused, not silently replaced by the pack's default
    with pytest.raises(InputError, match="candidates must be an integer >= 1"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search=SearchConfig(candidates=bad))


def test_grouped_options_are_checked(shared_tiny_pack):
    with pytest.raises(InputError, match="search must be a SearchConfig, got dict"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search={"candidates": 3})
    with pytest.raises(InputError, match="coherence_weight must be a non-negative number, got -1"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search=SearchConfig(coherence_weight=-1))


def test_reference_gender_both_offers_ceil_half_opposite_and_the_most_ambiguous_wins(shared_tiny_pack, sample,
                                                                                      monkeypatch):
    # "both": ceil(K/2) references of the opposite gender, K // 2 of the face's own, each the closest of its
    # gender as "opposite" would rank them, interleaved (opposite first); the choice is still argmin-PIC
    from pridss_rt.stages import score

    pics, select = [], score.select
    monkeypatch.setattr(score, "select", lambda p, s, c=None, w=0.0: pics.append(score.pic(p, s, c, w)) or select(p, s, c, w))
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search=SearchConfig(candidates=5, reference_gender="both"),
                    tracking=False) as a:
        male = a.pack.bank()[1]
        seen, choose = [], a.bank.choose
        a.bank.choose = lambda *x, **kw: seen.append((x, kw, choose(*x, **kw))) or seen[-1][2]
        f = a.process(sample)[1][0]
    (z, p0, k, lm), kw, refs = seen[0]
    assert kw["both"] and k == 5 and len(refs) == 5 and f.status == "anonymized"
    own = bool(p0 >= 0.5)
    assert [bool(male[r]) for r in refs] == [not own, own, not own, own, not own]
    assert refs[0::2].tolist() == choose(z, p0, 3, lm).tolist()  # the opposite ones: "opposite"'s first 3
    assert refs[1::2].tolist() == choose(z, p0, 2, lm, want_male=own).tolist()
    assert choose(z, p0, 1, lm, both=True).tolist() == choose(z, p0, 1, lm).tolist()  # K = 1: opposite only
    assert len(pics) == 1 and len(pics[0]) == 5
    assert f.reference == refs[int(np.argmin(pics[0]))] and f.pic == pytest.approx(float(np.min(pics[0])), abs=1e-6)


def test_reference_gender_random_is_independent_of_the_input(shared_tiny_pack, sample):
    # "opposite": every search takes references of the other gender than the classifier reads; "random": the
    # gender is drawn per search from a seeded generator (the same seed draws the same sequence)
    male = Anonymizer(shared_tiny_pack, "ort-cpu", threads=1).pack.bank()[1]

    def genders(cfg, n=24):
        with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search=cfg, tracking=False) as a:
            out = []
            for _ in range(n):
                f = a.process(sample)[1][0]
                assert f.status == "anonymized" and f.searched
                out.append((bool(male[f.reference]), f.p_male_before >= 0.5))
            return out

    opp = genders(SearchConfig())
    assert all(ref != orig for ref, orig in opp)
    rnd = genders(SearchConfig(reference_gender="random", seed=3))
    drawn = np.array([ref for ref, _ in rnd])
    assert 0 < drawn.sum() < len(drawn)  # both genders drawn for the same input
    assert rnd == genders(SearchConfig(reference_gender="random", seed=3))  # seeded: reproducible
    assert rnd != genders(SearchConfig(reference_gender="random", seed=4))
    with pytest.raises(InputError, match=r"reference_gender must be one of \['opposite', 'random', 'both'\]"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, search=SearchConfig(reference_gender="same"))


@pytest.mark.parametrize("where", ["synthesis", "scores"])
def test_non_finite_network_output_fails_closed(shared_tiny_pack, sample, where, monkeypatch):
    # a NaN from the synthesis (or in the candidates' scores) is a failure: the face is pixelated, the status
    # says why, and the JSON record is valid JSON
    import json

    from pridss_rt.executors import host as host_mod

    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1) as a:
        if where == "synthesis":
            real = host_mod.synthesize
            monkeypatch.setattr(host_mod, "synthesize", lambda *x, **k: real(*x, **k) * np.float32("nan"))
        else:
            real_score = a.pipeline.host.score
            monkeypatch.setattr(a.pipeline.host, "score",
                                lambda *x: (np.full_like(real_score(*x)[0], np.nan),) + tuple(real_score(*x)[1:]))
        out, faces = a.process(sample)
    assert faces[0].status == "pixelated" and "non-finite network output" in faces[0].reason
    want = sample.copy()
    pixelate(want, expand_box(np.array(faces[0].box), sample.shape))
    assert (out == want).all()
    faces[0].p_male_after = float("nan")
    rec = json.dumps(faces[0].to_json(), allow_nan=False)
    assert json.loads(rec)["p_male_after"] is None


def test_whole_frame_pixelation_scales_with_the_frame():
    # 1080p: 135-px blocks (1080 / 8), 15 x 8 of them; an 800-px face spans at most 7 whole blocks, never the
    # ~50 it did with fixed 16-px blocks
    yy, xx = np.mgrid[0:1080, 0:1920]
    frame = np.stack([xx * 255 // 1919, yy * 255 // 1079, (xx + yy) % 256], -1).astype(np.uint8)  # ramps: blocks differ
    out = frame.copy()
    pixelate(out)
    row = out[500, :, 0].astype(int)
    edges = np.flatnonzero(np.diff(row) != 0) + 1
    widths = np.diff(np.concatenate([[0], edges, [1920]]))
    assert len(widths) == 15 and widths.min() >= 120 and widths.max() <= 135 + 1
    col = out[:, 900, 1].astype(int)
    assert len(np.flatnonzero(np.diff(col) != 0)) + 1 == 8
    assert len(np.unique(out[100:900, 500:1300].reshape(-1, 3), axis=0)) <= 8 * 8  # an 800-px face: <= 8 x 8 flat blocks
    small = np.random.default_rng(0).integers(0, 256, (48, 64, 3)).astype(np.uint8)
    pixelate(small)
    assert len(np.unique(small.reshape(-1, 3), axis=0)) <= 8 * 11


def test_per_face_pixelation_strength():
    # the stated strength: a face box grown by 20 % on each side becomes 8 x 8 flat blocks, whatever its size
    yy, xx = np.mgrid[0:720, 0:1280]
    frame = np.stack([xx % 256, yy % 256, (xx * 3 + yy) % 256], -1).astype(np.uint8)
    box = np.array([400.0, 100.0, 900.0, 650.0])  # a 500 x 550 face
    x1, y1, x2, y2 = expand_box(box, frame.shape)
    assert (x1, y1, x2, y2) == (300, 0, 1000, 720)
    out = frame.copy()
    pixelate(out, (x1, y1, x2, y2))
    region = out[y1:y2, x1:x2]
    assert len(np.unique(region.reshape(-1, 3), axis=0)) <= 64
    assert len(np.flatnonzero(np.diff(region[300, :, 0].astype(int)) != 0)) <= 7  # 8 blocks across
    assert (out[:, :x1] == frame[:, :x1]).all() and (out[:, x2:] == frame[:, x2:]).all()  # nothing else changes


@pytest.mark.parametrize("side, want", [(16, "missed"), (21, "pixelated"), (28, "anonymized")])
def test_smallest_findable_and_anonymizable_face(shared_tiny_pack, side, want):
    # the stated limits of the defaults (README): MTCNN (min_face 32) finds the sample's face down to a ~20-px box;
    # found faces under AlignConfig.min_size (24 px) are pixelated; smaller ones are not found (--min-face 16 finds
    # them, at about 2x the detection time)
    import cv2

    from pridss_rt.media import SAMPLE, read_image
    from pridss_rt.stages.detect import make_detector

    img = read_image(SAMPLE)
    scale = side / make_detector("mtcnn", threads=1).detect(img)[0].size
    f = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 127, np.uint8)
    frame[100:100 + f.shape[0], 100:100 + f.shape[1]] = f[:380, :540]
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, tracking=False) as a:
        out, faces = a.process(frame)
    if want == "missed":
        assert faces == []
    else:
        assert len(faces) == 1 and faces[0].status == want
        if want == "pixelated":
            assert "face too small" in faces[0].reason


# ---- a tracked face the detector loses stays pixelated for TrackingConfig.hold frames ------------------------------
class _Flicker:
    """The real detector on the frames listed in ``seen`` (by call number), no face on the others."""

    name = "flicker"

    def __init__(self, seen):
        from pridss_rt.stages.detect import make_detector

        self.inner, self.seen, self.n = make_detector("mtcnn", threads=1), set(seen), 0

    def detect(self, frame):
        self.n += 1
        return self.inner.detect(frame) if self.n in self.seen else []


def test_lost_track_is_held_pixelated(shared_tiny_pack, sample):
    from pridss_rt.stages.blend import expand_box

    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, detector=_Flicker({1, 2})) as a:
        outs = [a.process(sample) for _ in range(8)]
        assert [r.status for r in outs[0][1]] == ["anonymized"] and not outs[0][1][0].held
        box = np.array(outs[1][1][0].box)
        for k in range(2, 7):  # lost for 1..5 frames: held where the (still) face was, pixelated
            out, faces = outs[k]
            assert len(faces) == 1 and faces[0].held and faces[0].status == "pixelated" and faces[0].track_id == 1
            assert f"({k - 1} of 5 frames)" in faces[0].reason
            x1, y1, x2, y2 = expand_box(np.array(faces[0].box), out.shape)
            side = max(box[2] - box[0], box[3] - box[1])
            assert np.allclose(faces[0].box, box + np.array([-1, -1, 1, 1]) * 0.1 * (k - 1) * side, atol=0.2)  # grows
            inner = changed(out, sample)[int(box[1]):int(box[3]), int(box[0]):int(box[2])]
            assert inner.mean() > 0.9  # the face is not shown
            outside = np.ones(out.shape[:2], bool)
            outside[y1:y2, x1:x2] = False
            assert (out[outside] == sample[outside]).all()  # only the held box changes
        out, faces = outs[7]  # lost for 6 frames > hold: nothing is held any more
        assert faces == [] and (out == sample).all()
        assert a.stats["faces_held"] == 5
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, detector=_Flicker({1}),
                    tracking=TrackingConfig(hold=0)) as a:
        a.process(sample)
        out, faces = a.process(sample)
        assert faces == [] and (out == sample).all()  # hold off: a missed frame shows the face raw
    with pytest.raises(InputError, match="hold must be a whole number of frames 0-10"):
        Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, tracking=TrackingConfig(hold=11))


def test_held_box_follows_the_track():
    from pridss_rt.stages.detect import Detection
    from pridss_rt.stages.track import Tracker

    lm = np.zeros((5, 2), np.float32)
    tr = Tracker()
    for x in (100.0, 110.0, 120.0):  # moving right by 10 px a frame
        (t,) = tr.update([Detection(np.array([x, 50, x + 100, 150], np.float32), 0.9, lm)])
    np.testing.assert_allclose(t.velocity, [10, 0, 10, 0])
    assert tr.lost(5) == []
    tr.update([])
    tr.update([])
    assert tr.lost(5) == [t] and t.missed == 2 and tr.lost(1) == []
    np.testing.assert_allclose(t.predicted_box(), [140 - 20, 50 - 20, 240 + 20, 150 + 20])  # 2 frames on, +10 %/frame


def test_cut_face_is_pixelated_in_whole_face_blocks():
    from pridss_rt.stages.blend import pixelate_face

    yy, xx = np.mgrid[0:480, 0:640]
    frame = np.stack([xx % 256, yy % 256, (xx * 3 + yy) % 256], -1).astype(np.uint8)
    out = frame.copy()
    x1, y1, x2, y2 = pixelate_face(out, np.array([-100.0, 100.0, 100.0, 300.0]))  # half outside on the left
    assert (x1, y1, x2, y2) == (0, 60, 140, 340)
    row = out[200, x1:x2, 0].astype(int)
    assert len(np.flatnonzero(np.diff(row) != 0)) + 1 == 4  # 35-px blocks (280 / 8): 4 across the 140 visible px
    col = out[y1:y2, 70, 1].astype(int)
    assert len(np.flatnonzero(np.diff(col) != 0)) + 1 == 8  # the uncut direction: 8 blocks
    assert (out[:, x2:] == frame[:, x2:]).all() and (out[:y1] == frame[:y1]).all()
    inside = frame.copy()
    pixelate_face(inside, np.array([200.0, 100.0, 400.0, 300.0]))
    assert len(np.unique(inside[60:340, 160:440].reshape(-1, 3), axis=0)) <= 64  # inside the frame: 8 x 8


def test_no_hold_where_the_face_is_found_again_under_a_new_track(shared_tiny_pack, sample):
    # the face grows past the tracker's IoU match (a new track); the old track is not held over it
    from pridss_rt.stages.detect import Detection, make_detector

    real = make_detector("mtcnn", threads=1).detect(sample)[0]

    class Growing:
        name = "growing"

        def __init__(self):
            self.n = 0

        def detect(self, frame):
            self.n += 1
            if self.n <= 2:
                return [real]
            c = (real.box[:2] + real.box[2:]) / 2
            box = np.concatenate([c - (c - real.box[:2]) * 2.2, c + (real.box[2:] - c) * 2.2]).astype(np.float32)
            return [Detection(box, real.score, real.landmarks)]  # IoU with the last box ~0.2

    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, detector=Growing()) as a:
        for _ in range(2):
            a.process(sample)
        out, faces = a.process(sample)
        assert [f.track_id for f in faces] == [2] and not any(f.held for f in faces)
        assert a.stats["faces_held"] == 0
