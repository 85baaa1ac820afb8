"""Pipeline stages in isolation, against hand-computed values."""

import numpy as np
import pytest

from pridss_rt.errors import InputError
from pridss_rt.media import SAMPLE, read_image
from pridss_rt.stages import align, score
from pridss_rt.stages.detect import MTCNNDetector, make_detector

# MTCNN landmarks of the sample photo (ipazc/mtcnn reference implementation on the same networks,
# checked by hand: eyes, nose, mouth corners of the astronaut)
ASTRONAUT_LM = np.array([[203.8, 101.3], [246.4, 103.2], [224.3, 128.9], [201.8, 139.8], [244.9, 142.0]])


@pytest.fixture(scope="module")
def sample():
    return read_image(SAMPLE)


def test_mtcnn_landmarks_match_reference(sample):
    dets = MTCNNDetector(min_face_size=20, max_side=4000, threads=1, edge_pad=0).detect(sample)  # as ipazc/mtcnn
    assert len(dets) == 1 and dets[0].score > 0.99
    np.testing.assert_allclose(dets[0].landmarks, ASTRONAUT_LM, atol=1.5)
    # the mirrored edge margin (default) finds the same face; the photo's corner, mirrored twice, is no face
    dets = MTCNNDetector(min_face_size=20, max_side=4000, threads=1).detect(sample)
    assert len(dets) == 1 and dets[0].score > 0.99
    np.testing.assert_allclose(dets[0].landmarks, ASTRONAUT_LM, atol=1.5)
    x1, y1, x2, y2 = dets[0].box
    assert x1 < 201 and x2 > 247 and y1 < 100 and y2 > 143


def test_mtcnn_downscaled_detection_maps_back(sample):
    import cv2

    big = cv2.resize(sample, (1536, 1536))
    dets = MTCNNDetector(min_face_size=20, max_side=512, threads=1).detect(big)
    assert len(dets) == 1
    np.testing.assert_allclose(dets[0].landmarks / 3, ASTRONAUT_LM, atol=2.0)


def test_no_face_no_detection():
    rng = np.random.default_rng(0)
    assert MTCNNDetector(threads=1).detect(np.full((240, 320, 3), 127, np.uint8)) == []
    assert isinstance(MTCNNDetector(threads=1).detect(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)), list)


def test_yunet_user_detector_agrees(sample):
    from pathlib import Path

    model = Path(__file__).resolve().parents[2] / "shared" / "models" / "face_detection_yunet_2026may.onnx"
    if not model.is_file():
        pytest.skip(f"user-supplied YuNet model not found at {model}")
    dets = make_detector(str(model)).detect(sample)
    assert len(dets) == 1
    # same landmark order and nearly the same points as MTCNN
    assert np.abs(dets[0].landmarks - ASTRONAUT_LM).max() < 6


def test_detector_spec_errors(tmp_path):
    with pytest.raises(InputError, match="unknown detector 'haar'"):
        make_detector("haar")
    with pytest.raises(InputError, match="file not found"):
        make_detector(str(tmp_path / "missing.onnx"))


def test_similarity_transform_recovers_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    ang, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ rot.T + t
    m = align.similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)
    assert align.alignment_error(m, src, dst) < 1e-9
    inv = align.invert_affine(m)
    np.testing.assert_allclose(align.transform_points(inv, dst), src, atol=1e-9)


def test_pic_and_selection_hand_computed():
    p = np.array([0.9, 0.5, 0.3, 0.55])
    sim = np.array([0.8, 0.2, 0.6, 0.4])
    # |2p-1| - sim = 0.8-0.8, 0-0.2, 0.4-0.6, 0.1-0.4
    np.testing.assert_allclose(score.pic(p, sim), [0.0, -0.2, -0.2, -0.3])
    assert score.select(p, sim) == 3
    assert score.select(np.array([0.5, 0.5]), np.array([0.1, 0.1])) == 0  # ties: first
    # with a coherence critic: + w * P(composite); candidate 3 is the composite, 1 wins at w = 0.5
    comp = np.array([0.1, 0.2, 0.9, 0.8])
    np.testing.assert_allclose(score.pic(p, sim, comp, 0.5), [0.05, -0.1, 0.25, 0.1])
    assert score.select(p, sim, comp, 0.5) == 1
    assert score.select(p, sim, comp, 0.0) == 3  # weight 0 = PIC alone


def test_gender_output_adapters():
    class FakeSession:
        def __init__(self, out, options):
            self.inputs = [type("T", (), {"name": "image"})()]
            self.outputs = [type("T", (), {"name": "y"})()]
            self.spec = type("S", (), {"options": options})()
            self.out = out

        def run(self, feeds):
            return {"y": self.out}

    x = np.zeros((2, 3, 4, 4), np.float32)
    cases = [
        (np.array([[0.2], [0.9]]), {"output_kind": "probability"}, [0.2, 0.9]),
        (np.array([[0.0], [np.log(3.0)]]), {"output_kind": "logit"}, [0.5, 0.75]),
        (np.array([[0.7, 0.3], [0.1, 0.9]]), {"output_kind": "softmax2", "male_index": 1}, [0.3, 0.9]),
        (np.array([[0.7, 0.3], [0.1, 0.9]]), {"output_kind": "softmax2", "male_index": 0}, [0.7, 0.1]),
        (np.array([[0.0, np.log(3.0)], [0.0, 0.0]]), {"output_kind": "softmax2", "apply_softmax": True}, [0.75, 0.5]),
    ]
    for out, opts, want in cases:
        np.testing.assert_allclose(score.p_male({"gender": FakeSession(out, opts)}, x), want, atol=1e-9)


def test_reference_choice_is_opposite_gender_and_nearest(shared_tiny_pack):
    from pridss_rt import load_pack
    from pridss_rt.stages.fuse import ReferenceBank

    pack = load_pack(shared_tiny_pack)
    bank = ReferenceBank(pack)
    latents, male = pack.bank()
    z = latents[0] + 0.01  # bank[0] is male -> candidates must be female, nearest first
    idx = bank.choose(z, p_male=0.9, k=2)
    assert not male[idx].any() and len(idx) == 2
    sims = [(latents[i] @ z) / np.linalg.norm(latents[i]) / np.linalg.norm(z) for i in np.flatnonzero(~male)]
    assert idx[0] == np.flatnonzero(~male)[int(np.argmax(sims))]
    assert male[bank.choose(z, p_male=0.1, k=5)].all()  # female original -> male references (all 3)


def test_reference_pool_spreads_candidates_over_the_closest_ranks():
    from types import SimpleNamespace

    from pridss_rt.stages.fuse import ReferenceBank

    # 30 female references at growing angles from z (rank r = angle r), 10 male ones
    ang = np.deg2rad(np.arange(30) * 2.0)
    fem = np.stack([np.cos(ang), np.sin(ang), np.zeros(30)], 1)
    latents = np.concatenate([np.tile([[0.0, 0.0, 1.0]], (10, 1)), fem[::-1]]).astype(np.float32)
    male = np.r_[np.ones(10, bool), np.zeros(30, bool)]
    rank_of = {10 + 29 - r: r for r in range(30)}  # bank index -> similarity rank
    z = np.array([1.0, 0.0, 0.0], np.float32)

    def bank(pool):
        return ReferenceBank(SimpleNamespace(bank=lambda: (latents, male), extras={}, reference_pool=pool,
                                             pose_weight=0.0, preprocess=SimpleNamespace(template=TPL)))

    assert [rank_of[i] for i in bank(0).choose(z, 0.9, 5)] == [0, 1, 2, 3, 4]
    assert [rank_of[i] for i in bank(16).choose(z, 0.9, 5)] == [0, 4, 8, 11, 15]
    assert [rank_of[i] for i in bank(4).choose(z, 0.9, 5)] == [0, 1, 2, 3, 4]  # pool <= K: the K closest
    assert [rank_of[i] for i in bank(100).choose(z, 0.9, 3)] == [0, 14, 29]  # pool capped at the 30 there are
    assert male[bank(16).choose(z, 0.1, 5)].all() and len(bank(16).choose(z, 0.1, 5)) == 5


TPL = np.array([[48.0, 60.0], [80.0, 60.0], [64.0, 80.0], [50.0, 94.0], [78.0, 94.0]], np.float32)  # eye distance 32


def test_pose_weight_prefers_references_with_the_same_landmarks():
    from types import SimpleNamespace

    from pridss_rt.stages.fuse import ReferenceBank

    # 4 female references, latent similarity falling with the bank index: cos 1.00, 0.99, 0.98, 0.60
    ang = np.arccos([1.0, 0.99, 0.98, 0.60])
    latents = np.concatenate([np.stack([np.cos(ang), np.sin(ang), np.zeros(4)], 1), [[0.0, 0.0, 1.0]]]).astype(np.float32)
    male = np.array([0, 0, 0, 0, 1], bool)
    face = TPL + np.array([1.0, -2.0], np.float32)  # the original's landmarks in its crop
    lms = np.stack([face + [8.0, 0.0],  # all 5 points 8 px off: 0.25 eye distances
                    face + [0.0, 3.2],  # 0.1
                    face,  # 0
                    face]).astype(np.float32)
    lms = np.concatenate([lms, np.full((1, 5, 2), np.nan, np.float32)])  # the male face: not found
    z = np.array([1.0, 0.0, 0.0], np.float32)

    def bank(w):
        pk = SimpleNamespace(bank=lambda: (latents, male), bank_landmarks=lambda: lms, extras={}, reference_pool=0,
                             pose_weight=w, preprocess=SimpleNamespace(template=TPL))
        return ReferenceBank(pk)

    np.testing.assert_allclose(bank(1.0).pose_distance(face, np.arange(4)), [0.25, 0.1, 0.0, 0.0], atol=1e-6)
    assert list(bank(0.0).choose(z, 0.9, 4, face)) == [0, 1, 2, 3]  # weight 0: similarity only
    # score = cos - w * d: w = 1 -> 0.75, 0.89, 0.98, 0.60; w = 0.1 -> 0.975, 0.98, 0.98, 0.60 (stable tie)
    assert list(bank(1.0).choose(z, 0.9, 4, face)) == [2, 1, 0, 3]
    assert list(bank(0.1).choose(z, 0.9, 4, face)) == [1, 2, 0, 3]
    assert list(bank(1.0).choose(z, 0.9, 4, None)) == [0, 1, 2, 3]  # no landmarks for this face
    assert list(bank(1.0).choose(z, 0.9, 4, np.full((5, 2), np.nan))) == [0, 1, 2, 3]
    # a bank face without landmarks gets the largest distance of the pool
    both = np.array([0, 4])
    np.testing.assert_allclose(bank(1.0).pose_distance(face, both), [0.25, 0.25], atol=1e-6)


def test_mask_fusion_keeps_identity_elements(shared_tiny_pack):
    from pridss_rt import load_pack
    from pridss_rt.stages.fuse import fuse

    pack = load_pack(shared_tiny_pack)
    a = np.ones((2, 32), np.float32)
    b = np.zeros((2, 32), np.float32)
    f = fuse(None, pack, a, b)
    np.testing.assert_array_equal(f[:, :12], 1)
    np.testing.assert_array_equal(f[:, 12:], 0)


def _with_nullspace(root, arr):
    import json

    from pridss_rt.pack import sha256_file, write_pack_json

    np.save(root / "identity_nullspace.npy", np.asarray(arr, np.float32), allow_pickle=False)
    m = json.loads((root / "pack.json").read_text())
    m.setdefault("extras", {})["identity_nullspace"] = {"file": "identity_nullspace.npy",
                                                         "sha256": sha256_file(root / "identity_nullspace.npy")}
    write_pack_json(root, m)


def test_identity_nullspace_removes_the_kept_gender_directions(tiny_pack):
    from pridss_rt import load_pack
    from pridss_rt.errors import PackError
    from pridss_rt.stages.fuse import fuse

    rng = np.random.default_rng(0)
    u = np.linalg.qr(rng.normal(size=(12, 3)))[0].T  # 3 orthonormal directions over the 12 kept elements
    mean = rng.normal(size=12)
    _with_nullspace(tiny_pack, np.concatenate([mean[None], u]))
    pack = load_pack(tiny_pack)
    kept, m, d = pack.identity_nullspace()
    assert kept.tolist() == list(range(12)) and d.shape == (3, 12)
    a, b = rng.normal(size=(4, 32)).astype(np.float32), rng.normal(size=(4, 32)).astype(np.float32)
    f = fuse(None, pack, a, b)
    x = a[:, :12].astype(np.float64) - mean
    want = mean + x - (x @ u.T) @ u  # by hand: the kept elements without their component along u
    np.testing.assert_allclose(f[:, :12], want, atol=1e-5)
    np.testing.assert_allclose((f[:, :12] - mean) @ u.T, 0, atol=1e-5)  # nothing left along the directions
    np.testing.assert_array_equal(f[:, 12:], b[:, 12:])  # the context is the reference's, untouched
    # the swap-only copy (no kept element) drops the extra; a plain pack fuses as before
    swap = pack.with_fusion_mask(np.zeros(pack.latent_shape, np.float32), "zeros")
    assert swap.identity_nullspace() is None and np.array_equal(fuse(None, swap, a, b), b)
    # SearchConfig(identity_nullspace=False) (CLI --keep-identity-gender): the original's segments as they are
    from pridss_rt import Anonymizer, SearchConfig
    from pridss_rt.media import SAMPLE, read_image

    img = read_image(SAMPLE)
    outs = {}
    for on in (True, False):
        with Anonymizer(tiny_pack, "ort-cpu", threads=1, search=SearchConfig(identity_nullspace=on)) as an:
            assert (an.pack.identity_nullspace() is not None) == on
            outs[on], faces = an.process(img)
            assert [f.status for f in faces] == ["anonymized"]
    assert not np.array_equal(outs[True], outs[False])
    # wrong shapes, directions that are not orthonormal: PackError naming the file
    for bad, why in ((np.zeros((1, 12)), "must be a finite"), (np.zeros((3, 11)), "must be a finite"),
                     (np.concatenate([mean[None], 2 * u]), "orthonormal")):
        _with_nullspace(tiny_pack, bad)
        with pytest.raises(PackError, match=f"identity_nullspace.npy: identity_nullspace.*{why}"):
            load_pack(tiny_pack).identity_nullspace()


# ---- in-plane rotation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("angle, code", [(90, "ROTATE_90_CLOCKWISE"), (180, "ROTATE_180"), (270, "ROTATE_90_COUNTERCLOCKWISE")])
def test_unrotate_maps_pixels_of_a_rotated_copy_back(angle, code):
    import cv2

    from pridss_rt.stages.detect import _unrotate

    img = np.zeros((7, 11), np.uint8)
    img[2, 9] = 255  # x 9, y 2
    r = cv2.rotate(img, getattr(cv2, code))
    y, x = np.argwhere(r == 255)[0]
    np.testing.assert_array_equal(_unrotate(np.array([[x, y]], float), angle, 11, 7), [[9, 2]])


def test_plausible_landmarks_by_hand():
    from pridss_rt.stages.detect import plausible

    box = np.array([0, 0, 100, 100], np.float32)
    up = np.array([[30, 40], [70, 40], [50, 60], [35, 78], [65, 78]], np.float32)
    assert plausible(box, up) == ""
    rot = np.array([[50 + (y - 50), 50 - (x - 50)] for x, y in up], np.float32)  # the same face turned 90 degrees
    assert plausible(box, rot) == ""  # any in-plane angle is a face: the eye line decides "down"
    assert "above the eye line" in plausible(box, up[[1, 0, 2, 3, 4]])  # mirrored: chin up
    cheek = np.array([[45, 45], [65, 48], [55, 55], [44, 62], [60, 64]], np.float32)  # 20 px apart in 100
    assert "eyes 20 px apart" in plausible(box, cheek)
    assert "outside the face box" in plausible(box, up + 60)
    far = up.copy()
    far[3:, 1] += 60
    assert "eye distances from the eyes" in plausible(box, np.clip(far, 0, 124))


@pytest.mark.parametrize("code", ["ROTATE_90_CLOCKWISE", "ROTATE_180", "ROTATE_90_COUNTERCLOCKWISE"])
def test_rotated_faces_are_found_and_anonymized(shared_tiny_pack, code):
    # by default the extra passes find the sample's face at every quarter turn, at the place the upright face
    # turns to; with rotations off the face is missed (180, 270) or, at 90, its points land on a cheek and it is
    # pixelated as implausible, never reported anonymized
    import cv2

    from pridss_rt import Anonymizer, DetectorConfig
    from pridss_rt.media import SAMPLE, read_image
    from pridss_rt.stages.detect import _unrotate, iou

    img = read_image(SAMPLE)
    h, w = img.shape[:2]
    rot = np.ascontiguousarray(cv2.rotate(img, getattr(cv2, code)))
    angle = {"ROTATE_90_CLOCKWISE": 90, "ROTATE_180": 180, "ROTATE_90_COUNTERCLOCKWISE": 270}[code]
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, tracking=False) as a:
        _, up = a.process(img)
        _, faces = a.process(rot)
    assert len(up) == 1 and len(faces) == 1 and faces[0].status == "anonymized"
    # where the upright box goes under the rotation (forward map = inverse of _unrotate for the other direction)
    inv = {90: 270, 180: 180, 270: 90}[angle]
    x1, y1, x2, y2 = up[0].box
    c = _unrotate(np.array([[x1, y1], [x2, y2]], float), inv, *rot.shape[1::-1])
    want = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])
    assert iou(np.array(faces[0].box), want) > 0.5
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, tracking=False, detector=DetectorConfig(rotations=False)) as a:
        _, faces = a.process(rot)
    assert all(f.status == "pixelated" and "implausible landmarks" in f.reason for f in faces)
    assert faces if angle == 90 else not faces


@pytest.mark.parametrize("threads", [1, 2])  # 2: the rotated passes run on a worker thread beside the upright faces
def test_upright_and_rotated_faces_in_one_stream(shared_tiny_pack, threads):
    # an upright face and one turned 90 degrees side by side: the upright one goes through the pipeline first, the
    # turned one (found by the upright pass with its points on a cheek, then by the rotated pass) second; both are
    # anonymized on every frame, keep their tracks, and run the K-candidate search once each
    import cv2

    from pridss_rt import Anonymizer
    from pridss_rt.media import SAMPLE, read_image

    img = read_image(SAMPLE)
    side = min(img.shape[:2])
    img = np.ascontiguousarray(img[:side, :side])
    frame = np.hstack([img, cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)])
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=threads) as a:
        assert (a.detector.second is not None) == (threads == 2)
        ids = []
        for k in range(3):
            out, faces = a.process(np.roll(frame, k, axis=1))
            assert sorted(f.status for f in faces) == ["anonymized", "anonymized"], faces
            assert sorted(f.box[0] < side for f in faces) == [False, True]  # one in each half
            ids.append(sorted(f.track_id for f in faces))
        assert ids[0] == ids[1] == ids[2] and a.stats["searches"] == 2
        assert a.stats["faces_pixelated"] == 0


def test_tracker_takes_a_frame_in_two_parts():
    from pridss_rt.stages.detect import Detection
    from pridss_rt.stages.track import Tracker

    def det(x):
        return Detection(np.array([x, 0, x + 50, 50], np.float32), 0.9, np.zeros((5, 2), np.float32))

    t = Tracker(max_missed=0)
    a, b = t.update([det(0), det(200)])
    # next frame: the first part matches a, the second part cannot take a again and matches b; nothing ages
    (a1,) = t.update([det(2)], final=False)
    (b1,) = t.update([det(201)], final=True)
    assert a1 is a and b1 is b and len(t.tracks) == 2
    # a frame whose second part is empty: b is unmatched and (max_missed 0) dropped at the final part only
    t.update([det(4)], final=False)
    assert len(t.tracks) == 2
    t.update([], final=True)
    assert [x.id for x in t.tracks] == [a.id]
    # a detection in the second part overlapping a track matched in the first part starts a new track
    (a2,) = t.update([det(5)], final=False)
    (c,) = t.update([det(6)], final=True)
    assert a2 is a and c is not a and c.id not in (a.id, b.id)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_rotated_passes_work_in_a_forked_child(shared_tiny_pack):
    # the worker thread of the rotated passes does not survive fork(): the child starts its own instead of waiting
    # forever on the parent's
    import os

    from pridss_rt import Anonymizer
    from pridss_rt.media import SAMPLE, read_image

    img = read_image(SAMPLE)
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=2, tracking=False) as a:
        assert a.detector.second is not None
        a.process(img)  # the parent's pool and thread exist now
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            try:
                _, faces = a.process(img)
                os.write(w, b"ok" if [f.status for f in faces] == ["anonymized"] else b"bad")
            finally:
                os._exit(0)
        os.close(w)
        got = b""
        import select

        if select.select([r], [], [], 60)[0]:
            got = os.read(r, 16)
        os.waitpid(pid, 0) if got else os.kill(pid, 9)
        assert got == b"ok"
