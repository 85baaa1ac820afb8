"""Edge thresholds of the MTCNN cascade: faces cut by the frame edge found against false faces on face-free frames.

For each setting of ``MTCNNDetector(edge_thresholds=...)`` (P/R/O-Net thresholds for boxes with less than
``EDGE_SHARE`` of their area inside the frame), with the default rotation passes:

- cut faces: the leak audit's border cases (``pridss_rt.eval.audit.cases``: 110-px faces a quarter and half outside
  each edge) for the given source faces; a face is found when a detection overlaps its box by ``MATCH_IOU``;
- false faces: detections on face-free frames, i.e. 640x480 windows of the given face-free photos (each at three
  scales, four random windows per scale, and their mirror images) and the audit's synthetic backgrounds.

    python research/experiments/edge_thresholds.py /tmp/valfaces --free /tmp/facefree \\
        --settings none 0.5,0.5,0.5 0.6,0.3,0.3 0.4,0.2,0.2

Prints one table row per setting (no timing assertions; a research measurement, not a test).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def skin_share(frame_bgr: np.ndarray, box: np.ndarray) -> float:
    """Share of the pixels of ``box`` (x1, y1, x2, y2; clipped to the frame) whose colour is skin-like (YCrCb
    133 <= Cr <= 173, 77 <= Cb <= 127, Chai & Ngan 1999); gray frames: 1 (no colour to judge)."""
    import cv2

    h, w = frame_bgr.shape[:2]
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    patch = frame_bgr[y1:y2, x1:x2]
    if patch.ndim == 2 or patch.shape[2] == 1:
        return 1.0
    ycc = cv2.cvtColor(np.ascontiguousarray(patch[..., :3]), cv2.COLOR_BGR2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return float(((cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)).mean())


def free_frames(folder: Path, seed: int = 0):
    import cv2

    from pridss_rt.eval.audit import background
    from pridss_rt.media import read_image

    rng = np.random.default_rng(seed)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    for p in paths:
        img = read_image(p)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        img = img[..., :3]
        for short in (480, 720, 960):
            f = short / min(img.shape[:2])
            big = cv2.resize(img, (max(640, round(img.shape[1] * f)), max(480, round(img.shape[0] * f))),
                             interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
            for _ in range(4):
                y = int(rng.integers(0, big.shape[0] - 480 + 1))
                x = int(rng.integers(0, big.shape[1] - 640 + 1))
                win = np.ascontiguousarray(big[y:y + 480, x:x + 640])
                yield f"{p.name}@{short}", win
                yield f"{p.name}@{short}/flip", np.ascontiguousarray(win[:, ::-1])
    for k in range(40):
        yield f"background {k}", background(480, 640, 10_000 + k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path, help="folder of source faces (one face each)")
    ap.add_argument("--free", type=Path, required=True, help="folder of face-free photos")
    ap.add_argument("--settings", nargs="+", default=["none", "0.6,0.3,0.3"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from pridss_rt.eval.audit import MATCH_IOU, cases, load_sources
    from pridss_rt.stages.detect import EDGE_SHARE, MTCNNDetector, RotationRobustDetector, _inside, iou, plausible

    src_det = MTCNNDetector(threads=args.threads)
    sources = load_sources(sorted(args.faces.iterdir()), src_det)
    border = list(cases(sources, sizes=(), below=(), angles=(), crowd=False, layouts=(), orientations=(),
                        video_frames=0, leaving=False))
    free = list(free_frames(args.free))
    print(f"{len(sources)} source faces, {len(border)} border frames, {len(free)} face-free frames")
    print("| edge thresholds | half out found | quarter out found | false faces (frames) | of them cut by the edge |"
          " largest false box |")
    print("|---|---|---|---|---|---|")
    skin_true, skin_false, plaus_true, plaus_false = [], [], [], []
    for spec in args.settings:
        et = None if spec == "none" else tuple(float(v) for v in spec.split(","))
        det = RotationRobustDetector(MTCNNDetector(threads=1, edge_thresholds=et), 0.5,
                                     MTCNNDetector(threads=1, edge_thresholds=et))
        found = {"50": [0, 0], "25": [0, 0]}
        for c in border:
            dets = det.detect(c.frame)
            key = "50" if "50 %" in c.param else "25"
            found[key][1] += 1
            hit = [d for d in dets if iou(d.box.astype(np.float64), c.faces[0].box.astype(np.float64)) >= MATCH_IOU]
            found[key][0] += bool(hit)
            skin_true += [skin_share(c.frame, d.box) for d in hit]
            plaus_true += [plausible(d.box, d.landmarks) == "" for d in hit]
        false, frames, edge, largest, where = 0, 0, 0, 0.0, []
        for name, fr in free:
            dets = det.detect(fr)
            if dets:
                frames += 1
                where.append(name)
            false += len(dets)
            for d in dets:
                b = d.box[None].astype(np.float64) + np.array([1, 1, 0, 0])
                cut = bool(_inside(b, fr.shape[1], fr.shape[0])[0] < EDGE_SHARE)
                edge += cut
                if cut:
                    skin_false.append(skin_share(fr, d.box))
                    plaus_false.append(plausible(d.box, d.landmarks) == "")
                largest = max(largest, float(d.box[2] - d.box[0]))
        det.close()
        print(f"| {spec} | {found['50'][0]} of {found['50'][1]} | {found['25'][0]} of {found['25'][1]} | "
              f"{false} ({frames} of {len(free)}) | {edge} | {largest:.0f} px |", flush=True)
        if where:
            print("    false faces in:", ", ".join(sorted(set(w.split("@")[0] for w in where))))
        qs = (0, 10, 25, 50)
        print("    skin share of the found cut faces, percentiles", qs, np.percentile(skin_true, qs).round(2) if skin_true else "-")
        print("    skin share of the false cut faces, percentiles (100, 90, 75, 50)",
              np.percentile(skin_false, (100, 90, 75, 50)).round(2) if skin_false else "-")
        for thr in (0.2, 0.3, 0.4, 0.5):
            print(f"    skin >= {thr}: true kept {np.mean(np.array(skin_true) >= thr):.3f}, "
                  f"false cut kept {int((np.array(skin_false) >= thr).sum())} of {len(skin_false)}")
        print(f"    plausible landmarks: found cut faces {np.mean(plaus_true):.3f}, false cut faces "
              f"{int(np.sum(plaus_false))} of {len(plaus_false)}")
        skin_true, skin_false, plaus_true, plaus_false = [], [], [], []


if __name__ == "__main__":
    main()
