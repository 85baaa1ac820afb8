"""Can the pack's segmentation network tell faces cut by the frame edge from false edge faces?

MTCNN with low thresholds for boxes cut by the edge (``edge_thresholds``) finds every face half outside the frame,
but also false faces along the edges of face-free frames (research/experiments/edge_thresholds.py). This measures
a check on such boxes: the box's crop aligned by its landmarks, the pack's segmentation network run on it, and
from its classes a score of "face parts where a face has them", computed over the part of the crop that lies
inside the frame only (outside it the crop is the detector's completion, not evidence):

- ``parts``: mean P(identity) (eyes, nose, lips) in discs around the template's five points that are inside;
- ``head``: mean P(head) + P(identity) over the template's inner-face ellipse, inside part;
- ``both``: the smaller of the two.

Prints, per score, the scores of the true cut faces (matched to the pasted faces of the audit's border cases) and
of the false ones (face-free frames), and for thresholds that keep every true face, how many false ones pass.

    python research/experiments/edge_verifier.py /tmp/designfaces --free /tmp/facefree --edge 0.4,0.2,0.2
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # repository root


def scores(nets, pack, frame: np.ndarray, det) -> dict[str, float]:
    import cv2

    from pridss_rt.stages import align
    from pridss_rt.stages.segment import head_from_logits

    pre = pack.preprocess
    s = pre.crop_size
    m = align.similarity_transform(det.landmarks, pre.template)
    crop = align.warp_crops(frame, [m], pre)
    inside = cv2.warpAffine(np.ones(frame.shape[:2], np.float32), m, (s, s), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
    seg = nets["segmentation"]
    logits = np.asarray(seg.run({seg.inputs[0].name: crop})[seg.outputs[0].name], np.float32)
    classes = seg.spec.options["classes"]
    p_id = head_from_logits(logits, classes, ("identity",))[0]
    p_face = head_from_logits(logits, classes, ("head", "identity"))[0]
    t = pre.template
    r = 0.12 * np.linalg.norm(t[1] - t[0])
    yy, xx = np.mgrid[0:s, 0:s]
    vals = []
    for (x, y) in t:
        disc = ((xx - x) ** 2 + (yy - y) ** 2 <= (2 * r) ** 2) & inside
        if disc.sum() >= 0.5 * np.pi * (2 * r) ** 2:  # at least half the disc inside the frame
            vals.append(float(p_id[disc].mean()))
    eyes, mouth = t[:2].mean(0), t[3:].mean(0)
    em = mouth[1] - eyes[1]
    ell = np.zeros((s, s), np.uint8)
    cv2.ellipse(ell, ((float(eyes[0] + mouth[0]) / 2, float(eyes[1] + mouth[1]) / 2),
                      (float(1.8 * np.linalg.norm(t[1] - t[0])), float(2.6 * em)), 0.0), 1, -1)
    region = (ell > 0) & inside
    parts = float(np.mean(vals)) if vals else 0.0
    head = float(p_face[region].mean()) if region.any() else 0.0
    return {"parts": parts, "head": head, "both": min(parts, head)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("faces", type=Path)
    ap.add_argument("--free", type=Path, required=True)
    ap.add_argument("--edge", default="0.4,0.2,0.2")
    ap.add_argument("--pack", default="demo")
    args = ap.parse_args()

    from pridss_rt.backends import open_networks
    from pridss_rt.eval.audit import MATCH_IOU, cases, load_sources
    from pridss_rt.pack import load_pack
    from pridss_rt.stages.detect import EDGE_SHARE, MTCNNDetector, RotationRobustDetector, _inside, iou
    from research.experiments.edge_thresholds import free_frames

    pack = load_pack(args.pack)
    nets = open_networks(pack, "ort-cpu")
    sources = load_sources(sorted(args.faces.iterdir()), MTCNNDetector(threads=2))
    border = list(cases(sources, sizes=(), below=(), angles=(), crowd=False, layouts=(), orientations=(),
                        video_frames=0, leaving=False))
    et = tuple(float(v) for v in args.edge.split(","))
    det = RotationRobustDetector(MTCNNDetector(threads=1, edge_thresholds=et), 0.5, MTCNNDetector(threads=1, edge_thresholds=et))
    base = RotationRobustDetector(MTCNNDetector(threads=1), 0.5, MTCNNDetector(threads=1))
    true, false, missed_base = [], [], []
    for c in border:
        h, w = c.frame.shape[:2]
        found_base = any(iou(d.box.astype(np.float64), c.faces[0].box.astype(np.float64)) >= MATCH_IOU
                         for d in base.detect(c.frame))
        hits = []
        for d in det.detect(c.frame):
            if iou(d.box.astype(np.float64), c.faces[0].box.astype(np.float64)) >= MATCH_IOU:
                hits.append(scores(nets, pack, c.frame, d))
        if hits:
            best = {k: max(hh[k] for hh in hits) for k in hits[0]}
            true.append((c.param, found_base, best))
        else:
            true.append((c.param, found_base, None))
    n_free = 0
    for name, fr in free_frames(args.free):
        n_free += 1
        for d in det.detect(fr):
            b = d.box[None].astype(np.float64) + np.array([1, 1, 0, 0])
            if _inside(b, fr.shape[1], fr.shape[0])[0] < EDGE_SHARE:
                false.append((name, scores(nets, pack, fr, d)))
    det.close(); base.close()
    found = [t for t in true if t[2] is not None]
    print(f"{len(sources)} faces, {len(true)} border frames: found with edge thresholds {len(found)}, "
          f"with the usual ones {sum(t[1] for t in true)}; {n_free} face-free frames, {len(false)} false edge faces")
    extra = [t for t in found if not t[1]]
    print(f"found only with the edge thresholds: {len(extra)}: " + ", ".join(t[0] for t in extra))
    for k in ("parts", "head", "both"):
        tv = np.array([t[2][k] for t in found])
        ev = np.array([t[2][k] for t in extra]) if extra else np.array([1.0])
        fv = np.array([f[1][k] for f in false]) if false else np.array([0.0])
        print(f"\n{k}: true cut faces p0/p5/p25/p50 {np.percentile(tv, (0, 5, 25, 50)).round(3)}; "
              f"the extra ones min {ev.min():.3f}; false p50/p90/p99/max {np.percentile(fv, (50, 90, 99, 100)).round(3)}")
        for thr in sorted(set(np.round([ev.min() - 1e-3, np.percentile(tv, 5), 0.3, 0.4, 0.5], 3))):
            print(f"  >= {thr:.3f}: true kept {int((tv >= thr).sum())} of {len(tv)}, extra kept {int((ev >= thr).sum())}"
                  f" of {len(extra)}, false kept {int((fv >= thr).sum())} of {len(false)}")


if __name__ == "__main__":
    main()
