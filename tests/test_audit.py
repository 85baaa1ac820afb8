"""The leak audit (``pridss-rt audit``): its geometry and judgement against hand-computed values, a short run that
must show no raw face, and the same run failing when the defaults that protect are turned off; the detector's
frame-edge margin and its NMS."""

import json
import math

import numpy as np
import pytest

from pridss_rt.eval import audit
from pridss_rt.media import SAMPLE
from pridss_rt.pipeline.results import FaceResult


def _source(side=40.0):
    img = np.zeros((100, 100, 3), np.uint8)
    box = np.array([30.0, 30.0, 30.0 + side, 30.0 + side])
    lm = np.array([[40, 45], [60, 45], [50, 55], [42, 62], [58, 62]], np.float64)
    return audit.SourceFace("s", img, box, lm)


def test_paste_puts_the_face_where_asked():
    src = _source()
    frame = np.zeros((300, 400, 3), np.uint8)
    p = audit.paste(frame, src, 80, (200, 150), 0.0)
    np.testing.assert_allclose(p.box, [160, 110, 240, 190], atol=1e-6)  # side 80 centred on (200, 150)
    np.testing.assert_allclose(p.landmarks[0], [180, 140], atol=1e-6)  # (40, 45) -> centre + 2 x (40-50, 45-50)
    # 90 degrees counter-clockwise on screen: the eye line (to image-right) turns to point up (y decreasing)
    q = audit.paste(np.zeros((300, 400, 3), np.uint8), src, 80, (200, 150), 90.0)
    eye = q.landmarks[1] - q.landmarks[0]
    np.testing.assert_allclose(eye / np.hypot(*eye), [0, -1], atol=1e-6)
    # the inner face is the landmarks' hull grown by 30 %: it holds every landmark, lies inside the face box
    ys, xs = np.nonzero(p.inner)
    assert p.inner[p.landmarks[:, 1].astype(int), p.landmarks[:, 0].astype(int)].all()
    assert xs.min() >= 160 and xs.max() <= 240 and ys.min() >= 110 and ys.max() <= 190
    # cut by the frame edge: the mask is clipped, the box is not
    r = audit.paste(np.zeros((300, 400, 3), np.uint8), src, 80, (0, 150), 0.0)
    assert r.box[0] == pytest.approx(-40) and r.inner[:, 0].any() and r.inner.shape == (300, 400)


def _case(frame, inner):
    box = np.array([10.0, 10.0, 30.0, 30.0])
    return audit.Case("g", "p", frame, [audit.Pasted(box, np.zeros((5, 2)), inner)], "s")


def test_judge_raw_barely_missed_and_pixelated():
    frame = np.full((40, 40, 3), 100, np.uint8)
    inner = np.zeros((40, 40), bool)
    inner[10:30, 10:30] = True  # 400 pixels
    case = _case(frame, inner)
    hit = FaceResult(box=[11.0, 11.0, 31.0, 31.0], track_id=0, status="anonymized")
    # half the inner face unchanged (200 px), the other half moved by 3 levels (> UNCHANGED): raw, not barely
    out = frame.copy()
    out[10:20, 10:30] += 3
    (o,) = audit.judge(case, out, [hit], False)
    assert (o.unchanged, o.raw, o.barely, o.detected, o.status) == (0.5, True, False, True, "anonymized")
    assert o.mean_change == pytest.approx(1.5)
    # three quarters of the inner face moved by 3 levels, a quarter by 2 (unchanged): not raw, but barely touched
    # (mean 2.75 < BARELY); moved by 5 everywhere: neither
    out = frame + 3
    out[10:15, 10:30] -= 1
    (o,) = audit.judge(case, out, [hit], False)
    assert (o.unchanged, o.raw, o.barely, o.mean_change) == (0.25, False, True, 2.75)
    (o,) = audit.judge(case, frame + 5, [hit], False)
    assert (o.raw, o.barely) == (False, False)
    # 2 levels count as unchanged (JPEG-level noise), 20 levels as changed
    (o,) = audit.judge(case, frame + 2, [hit], False)
    assert o.raw and o.unchanged == 1.0
    (o,) = audit.judge(case, frame + 20, [], False)
    assert (o.detected, o.status, o.raw, o.barely) == (False, "missed", False, False)
    # a reported box that does not overlap (IoU < 0.25) is not this face; a whole-frame fallback is said as such
    far = FaceResult(box=[0.0, 0.0, 8.0, 8.0], track_id=0, status="pixelated")
    (o,) = audit.judge(case, frame, [far], False)
    assert (o.detected, o.status, o.raw) == (False, "missed", True)
    (o,) = audit.judge(case, frame + 30, [], True)
    assert o.status == "frame pixelated" and not o.raw
    # gray frames: the same judgement on the one channel
    g = _case(frame[..., 0].copy(), inner)
    (o,) = audit.judge(g, g.frame + 9, [hit], False)
    assert (o.raw, o.mean_change) == (False, 9.0)


def test_report_counts_and_json():
    rep = audit.AuditReport()
    mk = lambda group, raw, status, counted=True: audit.FaceOutcome(  # noqa: E731
        group, "p", "s", 50.0, status != "missed", status, 1.0 if raw else 0.0, 0.0 if raw else 12.0, raw, False,
        counted=counted)
    rep.outcomes = [mk("a", False, "anonymized"), mk("a", False, "pixelated"), mk("b", True, "missed"),
                    mk("size", True, "missed", counted=False)]
    assert rep.raw == 1  # the uncounted face (under the detector's limit) is reported, not counted
    rows = {r["group"]: r for r in rep.rows()}
    assert (rows["a"]["faces"], rows["a"]["anonymized"], rows["a"]["pixelated"], rows["a"]["min_change"]) == (2, 1, 1, 12.0)
    assert rows["b"]["missed"] == 1 and rows["size"]["counted"] is False
    md = rep.markdown()
    assert "| **all counted** | 3 | 1 | **1** |" in md and "not counted" in md
    json.dumps(rep.to_json(), allow_nan=False)  # a row whose least change is inf would not be valid JSON
    rep.outcomes = []
    assert rep.raw == 0 and rep.markdown().count("\n") == 2


def test_exif_cases_are_read_upright():
    src = audit.load_sources([SAMPLE], _detector())
    exif = [c for c in audit.cases(src, sizes=(), below=(), angles=(), cuts=(), crowd=False, layouts=(),
                                   video_frames=0, leaving=False) if c.group == "exif"]
    assert [c.param for c in exif] == [f"orientation {o}" for o in range(1, 9)]
    ref = exif[0].frame.astype(int)
    for c in exif:  # every orientation reads back to the same upright frame (JPEG noise apart)
        assert c.frame.shape == (480, 640, 3) and np.abs(c.frame.astype(int) - ref).mean() < 2


def _detector():
    from pridss_rt.stages.detect import make_detector

    return make_detector("mtcnn", threads=1)


@pytest.fixture(scope="module")
def sources():
    return audit.load_sources([SAMPLE], _detector())


def _quick(shared_tiny_pack, sources, **detector):
    from pridss_rt import Anonymizer, DetectorConfig

    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, detector=DetectorConfig(**detector)) as a:
        return audit.run_audit(a, audit.cases(sources, **audit.QUICK))


def test_quick_audit_shows_no_raw_face(shared_tiny_pack, sources):
    rep = _quick(shared_tiny_pack, sources)
    groups = {o.group for o in rep.outcomes}
    assert groups == {"size", "rotation", "border", "crowd", "layout", "exif", "video"}
    assert rep.raw == 0 and rep.barely == 0, rep.markdown()
    assert all(o.detected for o in rep.counted), rep.markdown()
    below = [o for o in rep.outcomes if not o.counted and o.group == "size"]
    assert below and all(o.size < audit.LIMIT for o in below)
    gone = [o for o in rep.outcomes if not o.counted and o.group != "size"]
    assert all(o.param == "leaving the frame" and o.unchanged == 0 for o in gone)  # inner face outside the frame
    leaving = [o for o in rep.counted if o.param == "leaving the frame"]
    assert len(leaving) >= 6 and all(o.status in ("anonymized", "pixelated") for o in leaving), rep.markdown()


def test_audit_fails_without_the_protections(shared_tiny_pack, sources):
    # the same cases without the rotation passes: faces come out raw, and the audit says so
    rep = _quick(shared_tiny_pack, sources, rotations=False)
    raw = {(o.group, o.param) for o in rep.counted if o.raw}
    assert ("rotation", "180 deg") in raw and rep.raw >= 2, rep.markdown()


def test_audit_cli(shared_tiny_pack, tmp_path, capsys):
    from pridss_rt.cli import main

    out = tmp_path / "audit"
    rc = main(["audit", str(SAMPLE), "--quick", "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
               "--threads", "1", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["raw"] == 0 and summary["faces"] > 20
    full = json.loads((out / "audit.json").read_text())
    assert sum(o["counted"] for o in full["outcomes"]) == summary["faces"] and "| **all counted** |" in (out / "audit.md").read_text()
    assert [o["size"] for o in full["outcomes"] if not o["counted"] and o["group"] == "size"] == [16.0]
    # --upright: the 180-degree face is missed and shown raw; exit status 1
    assert main(["audit", str(SAMPLE), "--quick", "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
                 "--threads", "1", "--upright"]) == 1
    assert "counted face(s) shown raw" in capsys.readouterr().out
    assert main(["audit", str(tmp_path / "none.jpg"), "--quick", "--pack", str(shared_tiny_pack)]) == 2
    assert "none.jpg: no such file or folder" in capsys.readouterr().err


# ---- the detector at the frame edge ----------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["right", "top"])
def test_mirrored_edge_margin_finds_half_faces(sources, side):
    from pridss_rt.stages.detect import MTCNNDetector, iou

    (case,) = [c for c in audit.cases(sources, sizes=(), below=(), angles=(), cuts=(0.5,), sides=(side,), crowd=False,
                                      layouts=(), orientations=(), video_frames=0, leaving=False)]
    truth = case.faces[0].box
    assert MTCNNDetector(threads=1, edge_pad=0).detect(case.frame) == []  # ipazc/mtcnn's black edge misses it
    dets = MTCNNDetector(threads=1).detect(case.frame)
    assert len(dets) == 1 and iou(dets[0].box.astype(np.float64), truth) > 0.5
    assert dets[0].box[2] > 640 if side == "right" else dets[0].box[1] < 0  # the box goes on past the edge


def test_edge_thresholds_apply_to_cut_boxes_only(sources):
    from pridss_rt.errors import InputError
    from pridss_rt.stages.detect import MTCNNDetector, iou

    (case,) = [c for c in audit.cases(sources, sizes=(), below=(), angles=(), cuts=(0.55,), sides=("top",), crowd=False,
                                      layouts=(), orientations=(), video_frames=0, leaving=False)]
    truth = case.faces[0].box
    assert MTCNNDetector(threads=1).detect(case.frame) == []  # 55 % above the frame: the usual thresholds miss it
    same = MTCNNDetector(threads=1, edge_thresholds=(0.6, 0.7, 0.7)).detect(case.frame)
    assert same == []  # the usual thresholds given as edge ones: the same detector
    dets = MTCNNDetector(threads=1, edge_thresholds=(0.4, 0.2, 0.2)).detect(case.frame)
    assert len(dets) == 1 and iou(dets[0].box.astype(np.float64), truth) > 0.8
    # a face inside the frame: edge thresholds change nothing
    (inside,) = [c for c in audit.cases(sources, sizes=(96,), below=(), angles=(), cuts=(), crowd=False, layouts=(),
                                        orientations=(), video_frames=0, leaving=False)]
    a = MTCNNDetector(threads=1).detect(inside.frame)
    b = MTCNNDetector(threads=1, edge_thresholds=(0.4, 0.2, 0.2)).detect(inside.frame)
    assert len(a) == len(b) == 1 and np.array_equal(a[0].box, b[0].box) and a[0].score == b[0].score
    with pytest.raises(InputError, match="edge_thresholds"):
        MTCNNDetector(threads=1, edge_thresholds=(0.4, 0.2))


def test_edge_crops_are_mirrored():
    from pridss_rt.stages.detect import MTCNNDetector

    det = MTCNNDetector(threads=1)
    img = np.arange(20 * 20 * 3, dtype=np.uint8).reshape(20, 20, 3)
    box = np.array([[-3.0, 1.0, 8.0, 12.0]])  # 12 x 12, 4 columns left of the frame (1-based inclusive)
    mirrored = det._crops(img, box, 12, pad=9)[0].transpose(1, 0, 2) / 0.0078125 + 127.5  # back to pixels, (H, W)
    want = np.concatenate([img[:12, 3::-1], img[:12, :8]], 1)  # columns 3, 2, 1, 0 | 0..7
    np.testing.assert_allclose(mirrored, want, atol=1e-3)
    black = det._crops(img, box, 12, pad=0)[0].transpose(1, 0, 2) / 0.0078125 + 127.5
    np.testing.assert_allclose(black[:, :4], 0, atol=1e-3)
    np.testing.assert_allclose(black[:, 4:], img[:12, :8], atol=1e-3)


def test_nms_is_the_greedy_reference():
    from pridss_rt.stages.detect import _nms

    rng = np.random.default_rng(3)
    for t in range(50):
        n = int(rng.integers(1, 120))
        xy = rng.uniform(0, 200, (n, 2))
        b = np.concatenate([xy, xy + rng.uniform(4, 50, (n, 2))], 1)
        b = b.round() if t % 2 else b
        s = rng.permutation(n).astype(np.float64) / n  # distinct scores: one greedy order
        x1, y1, x2, y2 = b.T
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        order, keep = np.argsort(s)[::-1], []
        while order.size:  # MTCNN's greedy NMS with its +1 pixel areas, written out
            i, rest = order[0], order[1:]
            keep.append(i)
            w = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
            h = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
            order = rest[w * h / (area[i] + area[rest] - w * h) <= 0.5]
        assert _nms(b, s, 0.5).tolist() == keep
    assert math.isclose(len(_nms(np.zeros((0, 4)), np.zeros(0), 0.5)), 0)


def test_faces_cut_by_the_edge_are_pixelated(shared_tiny_pack, sources):
    # a quarter of the face box outside the frame: found, and pixelated (AlignConfig.min_inside 0.8), with the
    # reason; a lower min_inside lets it through to synthesis
    from pridss_rt import AlignConfig, Anonymizer

    (case,) = audit.cases(sources, sizes=(), below=(), angles=(), cuts=(0.25,), sides=("left",), crowd=False,
                          layouts=(), orientations=(), video_frames=0, leaving=False)
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, tracking=False) as a:
        out, faces = a.process(case.frame)
    (o,) = audit.judge(case, out, faces, False)
    assert len(faces) == 1 and faces[0].status == "pixelated" and not o.raw
    assert faces[0].reason.startswith("cut by the frame edge (7") and "< 80%)" in faces[0].reason
    with Anonymizer(shared_tiny_pack, "ort-cpu", threads=1, tracking=False, align=AlignConfig(min_inside=0.5)) as a:
        _, faces = a.process(case.frame)
    assert faces[0].status == "anonymized"
