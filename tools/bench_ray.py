"""Throughput of the Ray path on this machine: images/s and video frames/s with 1 and 2 workers (CPU actors,
one ONNX Runtime thread each), next to the single-process CLI path with 1 and 2 threads. Prints a table.

    python tools/bench_ray.py --images 40 --videos 2 --frames 60

Synthetic archive: 640x480 frames with one copy of the bundled sample face (images at several places, videos
with the face moving). Each configuration runs once per round, rounds alternate the order; medians over rounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_archive(root: Path, images: int, videos: int, frames: int) -> tuple[Path, Path]:
    import cv2

    from pridss_rt import media
    from pridss_rt.cli.bench import make_frame

    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "vid").mkdir(parents=True)
    base = make_frame(640, 480, 1)
    for i in range(images):
        media.write_image(root / "img" / f"{i:04d}.jpg", np.roll(base, int(rng.integers(-150, 150)), axis=1))
    for v in range(videos):
        w = cv2.VideoWriter(str(root / "vid" / f"{v}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 480))
        for t in range(frames):
            w.write(np.roll(base, 3 * t - 90, axis=1))
        w.release()
    return root / "img", root / "vid"


def one_process(src: Path, out: Path, threads: int) -> float:
    from pridss_rt.cli import main

    t0 = time.perf_counter()
    main(["anonymize", str(src), "-o", str(out), "--threads", str(threads), "--no-progress", "--backend", "ort-cpu"])
    return time.perf_counter() - t0


def on_ray(src: Path, out: Path, workers: int) -> float:
    from pridss_rt.archive import anonymize_on_ray

    t0 = time.perf_counter()
    s = anonymize_on_ray([src], out, workers=workers, anonymizer={"backend": "ort-cpu"}, progress=False, threads=1)
    assert not s.failed, [r.error for r in s.failed]
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--videos", type=int, default=2)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        img, vid = make_archive(Path(tmp) / "in", a.images, a.videos, a.frames)
        ray.init(include_dashboard=False, log_to_driver=False)  # started once: its start-up is not in the times
        try:
            configs = {"one process, 1 thread": lambda s, o: one_process(s, o, 1),
                       "one process, 2 threads": lambda s, o: one_process(s, o, 2),
                       "Ray, 1 worker": lambda s, o: on_ray(s, o, 1),
                       "Ray, 2 workers": lambda s, o: on_ray(s, o, 2)}
            times: dict[tuple[str, str], list[float]] = {}
            k = 0
            for r in range(a.rounds):
                order = list(configs) if r % 2 == 0 else list(configs)[::-1]
                for name in order:
                    for kind, src in (("images", img), ("video", vid)):
                        k += 1
                        times.setdefault((name, kind), []).append(configs[name](src, Path(tmp) / f"out{k}"))
        finally:
            ray.shutdown()
    n_frames = a.videos * a.frames
    print(f"\n{a.images} images and {a.videos} videos x {a.frames} frames, 640x480, one face, demo pack, ort-cpu; "
          f"medians of {a.rounds} rounds (each Ray run starts its actors, which load the pack; Ray itself was started once)")
    print("| configuration | images/s | video frames/s |")
    print("|---|---|---|")
    for name in configs:
        ti, tv = np.median(times[(name, "images")]), np.median(times[(name, "video")])
        print(f"| {name} | {a.images / ti:.1f} | {n_frames / tv:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
