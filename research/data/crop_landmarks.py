"""5 landmarks of CelebA-HQ crops, in crop pixels, found by the runtime's own detector.

Each 128-px crop is pasted (upscaled by --scale) into the middle of a grey canvas, as a face in a live
frame would appear (the same procedure as measure_template.py), `pridss_rt.stages.detect.MTCNNDetector` is run
on it and the 5 points are mapped back to crop pixels. A crop without exactly one confident face gets NaN.

Used for head-pose-aware reference choice: the bank stores its references' landmarks
(pack_variant.py --bank_landmarks 1) and report.py compares them with the val faces' landmarks
(cached by this script: `python research/data/crop_landmarks.py --split val --out runs/landmarks_val.npy`).
Point order: image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
"""
import argparse, os, sys, time
import numpy as np, cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file


def crop_landmarks(imgs_rgb, scale=1.5, canvas=480, min_score=0.9, log_every=0):
    """(N, 128, 128, 3) uint8 RGB crops -> (N, 5, 2) float32 crop-pixel landmarks (NaN where missed)."""
    from pridss_rt.stages.detect import MTCNNDetector
    det = MTCNNDetector(threads=2)
    size = imgs_rgb.shape[1]
    s = int(round(size * scale))
    off = (canvas - s) // 2
    out = np.full((len(imgs_rgb), 5, 2), np.nan, np.float32)
    t0 = time.time()
    for n, img in enumerate(imgs_rgb):
        c = np.full((canvas, canvas, 3), 127, np.uint8)
        c[off:off + s, off:off + s] = cv2.resize(np.asarray(img)[:, :, ::-1], (s, s), interpolation=cv2.INTER_LINEAR)
        dets = [d for d in det.detect(c) if d.score >= min_score]
        if len(dets) == 1:
            p = (dets[0].landmarks.astype(np.float64) - off) / scale
            if p[0, 0] > p[1, 0]:
                p[[0, 1]] = p[[1, 0]]; p[[3, 4]] = p[[4, 3]]
            out[n] = p
        if log_every and (n + 1) % log_every == 0:
            print(f'{n + 1}/{len(imgs_rgb)} {time.time() - t0:.0f} s', flush=True)
    return out


def main():
    from research.models.common import load_cache
    ap = argparse.ArgumentParser()
    ap.add_argument('--split', default='val', choices=['train', 'val'])
    ap.add_argument('--out', required=True)
    ap.add_argument('--limit', type=int, default=0, help='first N faces of the split only (0: all)')
    a = ap.parse_args()
    imgs, _ = load_cache(a.split)
    if a.limit:
        imgs = imgs[:a.limit]
    lm = crop_landmarks(imgs, log_every=500)
    np.save(a.out, lm)
    ok = np.isfinite(lm[:, 0, 0])
    print(f'{a.split}: {ok.sum()} / {len(lm)} faces with landmarks; mean {np.round(np.nanmean(lm, 0), 2).tolist()}')


if __name__ == '__main__':
    main()
