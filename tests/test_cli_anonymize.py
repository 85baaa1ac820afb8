"""`pridss-rt anonymize` and `pridss-rt bench` from the command line (tiny pack)."""

import json
import shutil

import numpy as np
import pytest
import tinypack

from pridss_rt.cli import main
from pridss_rt.eval.audit import jpeg_with_orientation
from pridss_rt.media import SAMPLE, read_image


def run(*argv):
    return main(list(argv))


def test_sample_image_and_json_log(shared_tiny_pack, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    log = tmp_path / "faces.jsonl"
    assert run("anonymize", "--sample", "-o", str(out), "--pack", str(shared_tiny_pack), "--json", str(log),
               "--backend", "ort-cpu") == 0
    img = read_image(out)
    assert img.shape == read_image(SAMPLE).shape
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(recs) == 1 and recs[0]["faces"][0]["status"] == "anonymized"
    err = capsys.readouterr().err
    assert "1 face(s), 1 anonymized, 0 pixelated" in err and "pack 'tiny' on ort-cpu" in err


def test_folder_is_mirrored_and_bad_files_are_reported(shared_tiny_pack, tmp_path, capsys):
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    shutil.copy(SAMPLE, src / "one.jpg")
    shutil.copy(SAMPLE, src / "a" / "b" / "two.jpg")
    (src / "a" / "broken.png").write_bytes(b"not an image")
    (src / "notes.txt").write_text("ignored")
    rc = run("anonymize", str(src), "-o", str(tmp_path / "out"), "--pack", str(shared_tiny_pack), "--no-progress")
    assert rc == 1  # one input failed ...
    assert (tmp_path / "out" / "one.jpg").is_file() and (tmp_path / "out" / "a" / "b" / "two.jpg").is_file()
    err = capsys.readouterr().err
    assert "skipped" in err and "2 of 3 file(s) done, 1 failed" in err  # ... and was named, the others written
    assert not (tmp_path / "out" / "notes.txt").exists()


def test_an_unwritable_output_is_named_and_the_batch_goes_on(shared_tiny_pack, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(SAMPLE, src / name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.jpg").mkdir()  # b's output path is a folder: it cannot be written
    rc = run("anonymize", str(src), "-o", str(out), "--pack", str(shared_tiny_pack), "--no-progress")
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert f"skipped {src / 'b.jpg'}: {out / 'b.jpg'}: cannot write the output" in err
    assert (out / "a.jpg").is_file() and (out / "c.jpg").is_file() and "2 of 3 file(s) done, 1 failed" in err


def test_video_roundtrip(shared_tiny_pack, tmp_path):
    import cv2

    src = _clip(tmp_path / "clip.avi", 6)
    log = tmp_path / "v.jsonl"
    assert run("anonymize", str(src), "-o", str(tmp_path / "out"), "--pack", str(shared_tiny_pack),
               "--json", str(log), "--no-progress") == 0
    cap = cv2.VideoCapture(str(tmp_path / "out" / "clip.avi"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 6
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["frame"] for r in recs] == list(range(6))
    searched = [r["faces"][0]["searched"] for r in recs]
    assert searched[0] and not any(searched[1:])  # one search per track


@pytest.mark.parametrize("argv, pattern", [
    (["anonymize"], "give INPUT files/folders, --source CAMERA or --sample"),
    (["anonymize", "x.jpg"], "-o/--output is required"),
    (["anonymize", "/nonexistent/x.jpg", "-o", "y.jpg"], "no such file or folder"),
    (["anonymize", str(SAMPLE), "-o", "out.xyz"], "output out.xyz must end in one of"),
    (["anonymize", str(SAMPLE), "-o", "out.mp4"], "for an image (got '.mp4')"),
])
def test_usage_errors(shared_tiny_pack, capsys, argv, pattern):
    assert run(*argv, "--pack", str(shared_tiny_pack)) == 2
    assert pattern in capsys.readouterr().err


def test_missing_pack_is_a_clear_error(capsys, tmp_path):
    assert run("anonymize", "--sample", "-o", str(tmp_path / "o.jpg"), "--pack", str(tmp_path / "nopack")) == 2
    assert "nopack: pack folder not found" in capsys.readouterr().err


def test_bench_reports_stages(shared_tiny_pack, capsys):
    assert run("bench", "--pack", str(shared_tiny_pack), "--frames", "5", "--warmup", "2", "--rounds", "1",
               "--json", "--no-reference", "--resolution", "320x240") == 0
    r = json.loads(capsys.readouterr().out)
    s = r["pridss_rt"]
    assert s["backend"] == "ort-cpu" and s["fps_steady"] > 0 and s["candidate_search_ms"] > 0
    assert {"detect", "align", "encode", "synthesize", "blend", "total"} <= set(s["stages"])
    assert s["stages"]["total"]["n"] == 5 and s["faces_per_frame"] == 1
    assert r["pytorch_reference"] is None


def test_coherence_weight_option(shared_tiny_pack, tmp_path, capsys):
    import tinypack

    out, log = tmp_path / "o.jpg", tmp_path / "faces.jsonl"
    # a pack without a critic: a weight > 0 is a clear usage error, 0 runs PIC alone
    assert run("anonymize", "--sample", "-o", str(out), "--pack", str(shared_tiny_pack), "--coherence-weight", "1") == 2
    assert "coherence_weight 1 needs a pack with a 'coherence' network" in capsys.readouterr().err
    pack = tinypack.make_pack(tmp_path / "packs")
    tinypack.add_coherence(pack, weight=2.0)
    for w, want in (("0", None), ("3", 3.0)):
        assert run("anonymize", "--sample", "-o", str(out), "--pack", str(pack), "--backend", "ort-cpu",
                   "--coherence-weight", w, "--json", str(log)) == 0
        f = json.loads(log.read_text().splitlines()[-1])["faces"][0]
        if want is None:
            assert f["p_composite"] is None
        else:
            assert 0 <= f["p_composite"] <= 1
            assert f["pic"] == pytest.approx(abs(2 * f["p_male_after"] - 1) - f["sim"] + want * f["p_composite"], abs=1e-3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_on_read(tmp_path, orientation):
    # what OpenCV's own EXIF-aware read (IMREAD_COLOR) shows is what read_image returns, for all 8 orientations and
    # both byte orders; the output is written without EXIF, so it is upright pixels without a tag
    import cv2

    from pridss_rt.media import exif_orientation, write_image

    img = np.zeros((40, 64, 3), np.uint8)
    img[:10, :20] = (255, 255, 255)  # a bright corner, top left: every orientation moves it elsewhere
    img[30:, 50:, 2] = 200
    for big in (False, True):
        path = tmp_path / f"o{orientation}{int(big)}.jpg"
        path.write_bytes(jpeg_with_orientation(img, orientation, big))
        assert exif_orientation(path.read_bytes()) == orientation
        got = read_image(path)
        want = cv2.imread(str(path), cv2.IMREAD_COLOR)  # applies EXIF orientation
        assert got.shape == want.shape and np.array_equal(got, want)
    if orientation in (5, 6, 7, 8):
        assert got.shape[:2] == (64, 40)
    out = tmp_path / "out.jpg"
    write_image(out, got)
    assert exif_orientation(out.read_bytes()) == 1 and read_image(out).shape == got.shape


def _clip(path, frames=6):
    return tinypack.sample_clip(path, frames)


def test_a_truncated_video_is_reported_not_silent(shared_tiny_pack, tmp_path, capsys):
    import cv2

    src = _clip(tmp_path / "clip.avi", 12)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])  # the header still says 12 frames; about half can be decoded
    cap = cv2.VideoCapture(str(src))
    declared, decodable = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0
    while cap.read()[0]:
        decodable += 1
    cap.release()
    assert declared == 12 and 0 < decodable < 12
    rc = run("anonymize", str(src), "-o", str(tmp_path / "out.avi"), "--pack", str(shared_tiny_pack), "--no-progress")
    err = capsys.readouterr().err
    assert rc == 1 and f"only {decodable} of 12 frames could be decoded" in err and "Traceback" not in err


def test_a_video_to_an_image_extension_is_refused_before_work(shared_tiny_pack, tmp_path, capsys):
    src = _clip(tmp_path / "clip.avi")
    assert run("anonymize", str(src), "-o", str(tmp_path / "out.jpg"), "--pack", str(shared_tiny_pack)) == 2
    err = capsys.readouterr().err
    assert "for a video (got '.jpg')" in err and "pack 'tiny'" not in err and not (tmp_path / "out.jpg").exists()


def test_json_log_says_when_the_whole_frame_was_pixelated(shared_tiny_pack, tmp_path, monkeypatch, capsys):
    from pridss_rt.stages import detect

    def broken(self, frame):
        raise RuntimeError("detector down")

    for cls in {type(d) for d in (detect.make_detector("mtcnn"),)}:
        monkeypatch.setattr(cls, "detect", broken)
    log = tmp_path / "l.jsonl"
    assert run("anonymize", str(SAMPLE), "-o", str(tmp_path / "o.jpg"), "--pack", str(shared_tiny_pack),
               "--json", str(log), "--no-progress") == 0
    rec = json.loads(log.read_text())
    assert rec["faces"] == [] and rec["whole_frame_pixelated"] is True and "detector down" in rec["reason"]
    assert "whole image pixelated (detection failed: detector down)" in capsys.readouterr().err
