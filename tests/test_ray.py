"""The Ray path (``pridss-rt anonymize --ray``, :func:`pridss_rt.archive.anonymize_on_ray`) on a local Ray instance
with 2 CPUs: the same files as the single-process path, resume from the ledger, a killed worker, a bad file."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install 'pridss-rt[ray]')")

from pridss_rt import media  # noqa: E402
from pridss_rt.archive import Ledger, anonymize_on_ray  # noqa: E402
from pridss_rt.archive.ray_runner import Worker  # noqa: E402
from pridss_rt.cli import main as cli  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's worker class travels by value
    yield
    ray.shutdown()


def _face_frame(rng, x, y, size=(320, 240)):
    import cv2

    face = cv2.resize(media.read_image(media.SAMPLE)[30:230, 130:330], (120, 120), interpolation=cv2.INTER_AREA)
    frame = np.full((size[1], size[0], 3), 110, np.uint8)
    frame += rng.integers(0, 20, frame.shape, dtype=np.uint8)
    frame[y:y + 120, x:x + 120] = face
    return frame


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """3 images, a corrupt 'image', 2 short videos with a moving face."""
    import cv2

    root = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(0)
    for i in range(3):
        media.write_image(root / "photos" / f"p{i}.jpg", _face_frame(rng, 40 + 40 * i, 50))
    (root / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "clips").mkdir()
    for v in range(2):
        w = cv2.VideoWriter(str(root / "clips" / f"c{v}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
        for t in range(12):
            w.write(_face_frame(rng, 20 + 12 * t, 40 + 3 * v))
        w.release()
    return root


def _frames(path):
    r = media.VideoReader(str(path))
    try:
        return np.stack(list(r))
    finally:
        r.close()


def _run(archive, out, pack, **kw):
    return anonymize_on_ray([archive], out, address="local", anonymizer={"pack": str(pack), "backend": "ort-cpu"},
                            progress=False, **kw)


def test_same_files_as_one_process_and_a_bad_file_is_reported(local_ray, archive, shared_tiny_pack, tmp_path, capsys):
    one = tmp_path / "one"
    assert cli(["anonymize", str(archive), "-o", str(one), "--pack", str(shared_tiny_pack), "--backend", "ort-cpu",
                "--threads", "1", "--no-progress"]) == 1  # the broken file fails, the rest is written
    capsys.readouterr()
    out = tmp_path / "ray"
    s = _run(archive, out, shared_tiny_pack, json_log=tmp_path / "faces.jsonl", workers=2, batch_size=2)
    assert (len(s.done), len(s.skipped), len(s.failed), s.workers) == (5, 0, 1, 2)
    assert s.failed[0].src.endswith("broken.jpg") and "not a readable image" in s.failed[0].error
    assert s.frames == 3 + 24 and s.resources == {"num_cpus": 1.0}
    for i in range(3):  # images: byte-identical
        rel = Path("photos") / f"p{i}.jpg"
        assert (out / rel).read_bytes() == (one / rel).read_bytes()
    for v in range(2):  # videos: the same frames
        rel = Path("clips") / f"c{v}.mp4"
        a, b = _frames(out / rel), _frames(one / rel)
        assert a.shape == (12, 240, 320, 3) and np.array_equal(a, b)
    assert not list(out.rglob("*.part-*"))  # no temporary file left
    recs = [json.loads(line) for line in (tmp_path / "faces.jsonl").read_text().splitlines()]
    assert len(recs) == 27 and {r["frame"] for r in recs if r["source"].endswith("c0.mp4")} == set(range(12))
    assert all(f["status"] == "anonymized" for r in recs for f in r["faces"]) and all(r["faces"] for r in recs)


def test_resume_skips_what_the_ledger_has(local_ray, archive, shared_tiny_pack, tmp_path):
    out = tmp_path / "out"
    first = _run(archive, out, shared_tiny_pack)
    assert len(first.done) == 5
    # an interrupted run leaves at most a temporary file and a cut last ledger line: both are ignored
    (out / "photos" / ".p0.part-deadbeef.jpg").write_bytes(b"half")
    with open(out / ".pridss-ledger.jsonl", "a") as f:
        f.write('{"src": "/cut')
    again = _run(archive, out, shared_tiny_pack)
    assert (len(again.done), len(again.skipped), len(again.failed)) == (0, 5, 1)
    # a changed input (new hash), a deleted output and other settings are done again
    media.write_image(archive / "photos" / "p1.jpg", _face_frame(np.random.default_rng(9), 100, 60))
    (out / "clips" / "c1.mp4").unlink()
    third = _run(archive, out, shared_tiny_pack)
    assert sorted(Path(r.src).name for r in third.done) == ["c1.mp4", "p1.jpg"] and len(third.skipped) == 3
    other = anonymize_on_ray([archive], out, anonymizer={"pack": str(shared_tiny_pack), "backend": "ort-cpu",
                                                         "tracking": False}, progress=False)
    assert len(other.done) == 5 and not other.skipped
    ledger = Ledger(out, "x")
    assert ledger.done == {}  # another run key sees nothing


class DiesOnFirstVideo(Worker):
    """A worker whose process dies the first time it is given a video (a marker file makes it happen once)."""

    def video(self, job, max_frames):
        marker = Path(os.environ["PRIDSS_RT_TEST_MARKER"])
        try:  # O_EXCL: of two workers given a video at the same moment, exactly one creates the marker and dies
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().video(job, max_frames)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(1)  # like a SIGKILL or an out-of-memory kill: no exception, no cleanup


def test_a_killed_worker_is_replaced_and_its_video_retried(local_ray, archive, shared_tiny_pack, tmp_path,
                                                           monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv("PRIDSS_RT_TEST_MARKER", str(marker))
    os.environ["PRIDSS_RT_TEST_MARKER"] = str(marker)  # the local Ray workers inherit the driver's environment
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    out = tmp_path / "out"
    s = _run(archive, out, shared_tiny_pack, worker_class=DiesOnFirstVideo, workers=2)
    assert marker.exists() and s.retried == 1
    assert (len(s.done), len(s.failed)) == (5, 1)
    for v in range(2):
        assert _frames(out / "clips" / f"c{v}.mp4").shape[0] == 12  # complete, not partial
    assert not list(out.rglob("*.part-*"))


def test_cli_ray_path(local_ray, archive, shared_tiny_pack, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli(["anonymize", str(archive / "photos"), "-o", str(out), "--ray", "--workers", "1", "--pack",
              str(shared_tiny_pack), "--backend", "ort-cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "3 done, 0 skipped (already in the ledger), 1 failed" in err and "broken.jpg" in err
    assert cli(["anonymize", str(archive / "photos"), "-o", str(out), "--workers", "2", "--pack",
                str(shared_tiny_pack)]) == 2
    assert "--workers is an option of the Ray path" in capsys.readouterr().err
