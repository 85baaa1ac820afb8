"""The samples run (video pipeline end to end on a small clip; webcam sample's CLI)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import tinypack

ROOT = Path(__file__).resolve().parents[1]


def _clip(path, n=8):
    return tinypack.sample_clip(path, n)


def test_video_pipeline_keeps_every_frame(shared_tiny_pack, tmp_path):
    sys.path.insert(0, str(ROOT / "samples"))
    try:
        import video_pipeline
    finally:
        sys.path.pop(0)
    _clip(tmp_path / "in.avi")
    stats = video_pipeline.run(str(tmp_path / "in.avi"), str(tmp_path / "out.avi"), queue_size=2,
                               pack=str(shared_tiny_pack), backend="ort-cpu", threads=1)
    assert stats["decoded"] == stats["processed"] == stats["written"] == 8 and stats["dropped"] == 0
    assert stats["faces"] == 8


def test_webcam_sample_help():
    res = subprocess.run([sys.executable, str(ROOT / "samples" / "webcam_anonymize.py"), "--help"],
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0 and "--camera" in res.stdout


def test_compare_methods_sample(tmp_path, capsys):
    """Five labelled columns of equal size around the face; the original column is the untouched view, and
    PriDSS, swap-only, blur and pixelate each change it."""
    import cv2

    sys.path.insert(0, str(ROOT / "samples"))
    try:
        import compare_methods
    finally:
        sys.path.pop(0)
    out = tmp_path / "cmp.png"
    assert compare_methods.main(["-o", str(out), "--backend", "ort-cpu", "--height", "128"]) == 0
    assert "anonymized" in capsys.readouterr().out
    img = cv2.imread(str(out))
    assert img.shape[0] == 24 + 128 and img.shape[1] % 5 == 0
    w = img.shape[1] // 5
    tiles = [img[24:, i * w:(i + 1) * w - 4].astype(int) for i in range(5)]
    for i in range(1, 5):
        assert np.abs(tiles[i] - tiles[0]).mean() > 1.0, i
    # the top rows of the view lie above the expanded face box: untouched by blur and pixelate
    assert np.abs(tiles[3][:5] - tiles[0][:5]).max() == 0 and np.abs(tiles[4][:5] - tiles[0][:5]).max() == 0
