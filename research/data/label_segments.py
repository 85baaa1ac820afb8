"""Per-pixel segment labels of CelebA-HQ crops, for training the pack's segmentation network (training time only).

Labels come from two networks that ship their weights inside the `mediapipe==0.10.21` wheel (Apache-2.0):
`selfie_segmentation.tflite` (person vs background) and `face_landmark.tflite` (the 468-point face mesh). The
runtime never uses mediapipe: it runs the small network trained on these labels (research/training/train_seg.py).

Classes (crop pixels):
  0 background
  1 head context: face skin, brows, forehead, ears, hair (the part of the head that carries gender and comes
    from the reference)
  2 identity features: eyes, nose, lips (kept from the original)
  3 body: neck, clothes, shoulders, and anything else the person mask holds below the jaw

Head = the mesh's face oval, plus every person pixel above the jaw line (the oval's lower boundary inside the
face's columns, the chin's height outside them): the oval stops mid-forehead, so forehead and hair come from the
person mask. Known limits: hair falling below the chin counts as body; dark hair on a dark background and hands
or hats follow the coarse person mask.

mediapipe pins numpy < 2, so this script runs in its own environment (it imports neither torch nor pridss_rt):
    python -m venv /tmp/mpenv && /tmp/mpenv/bin/pip install --no-deps mediapipe==0.10.21 && \\
        /tmp/mpenv/bin/pip install "numpy<2" "opencv-python-headless<4.11" protobuf==4.25.3 attrs flatbuffers \\
        absl-py matplotlib
    /tmp/mpenv/bin/python research/data/label_segments.py --split train --n 8000 --out runs/segments_train.npz
Reads the cache of research/data/make_cache.py; writes labels [N,128,128] uint8, the cache indices and an ok flag
(False where the mesh found no face: such crops are left out of training).
"""
import argparse, itertools, os, time
import numpy as np, cv2

CLASSES = ('background', 'head', 'identity', 'body')


def _cycle(conns):
    """The face-oval connections of the mesh as one ordered polygon of landmark indices."""
    nxt = {}
    for a, b in conns:
        nxt.setdefault(a, []).append(b)
        nxt.setdefault(b, []).append(a)
    start = min(nxt)
    order, prev = [start], None
    while True:
        cur = order[-1]
        cand = [v for v in nxt[cur] if v != prev]
        if not cand or cand[0] == start:
            break
        prev = cur
        order.append(cand[0])
    return order


def _hull(mask, pts, dilate=0):
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    if dilate:
        mask[...] = cv2.dilate(mask, np.ones((2 * dilate + 1,) * 2, np.uint8))


def label_crop(person, lm, fm):
    """person: float [S,S] in [0,1]; lm: [468,2] mesh points in pixels -> uint8 [S,S] labels."""
    s = person.shape[0]
    lab = np.zeros((s, s), np.uint8)
    lab[person > 0.5] = 3
    oval = lm[_cycle(fm.FACEMESH_FACE_OVAL)]
    face = np.zeros((s, s), np.uint8)
    cv2.fillPoly(face, [np.round(oval).astype(np.int32)], 1)
    ys, xs = np.nonzero(face)
    jaw = np.full(s, ys.max() if len(ys) else s, np.int64)  # outside the face's columns: the chin's height
    for x in np.unique(xs):
        jaw[x] = ys[xs == x].max()
    above = np.arange(s)[:, None] <= jaw[None, :]
    lab[(person > 0.5) & above] = 1
    lab[face > 0] = 1
    ident = np.zeros((s, s), np.uint8)
    for conns in (fm.FACEMESH_LEFT_EYE, fm.FACEMESH_RIGHT_EYE):
        _hull(ident, lm[sorted(set(itertools.chain.from_iterable(conns)))], dilate=2)
    _hull(ident, lm[sorted(set(itertools.chain.from_iterable(fm.FACEMESH_LIPS)))], dilate=1)
    _hull(ident, lm[sorted(set(itertools.chain.from_iterable(fm.FACEMESH_NOSE)))], dilate=1)
    lab[ident > 0] = 2
    return lab


def main():
    import mediapipe as mp
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cache', default='/tmp/celebahq_cache.npz')
    ap.add_argument('--split', choices=['train', 'val'], required=True)
    ap.add_argument('--n', type=int, default=0, help='label a seeded random N of the split (0: all)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    meta = np.load(a.cache)
    imgs = np.load(a.cache.replace('.npz', '_images.npy'), mmap_mode='r')
    idx = np.where(meta['split'] == (0 if a.split == 'train' else 1))[0]
    if a.n:
        idx = np.sort(np.random.default_rng(a.seed).choice(idx, min(a.n, len(idx)), replace=False))
    seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    fmesh = mp.solutions.face_mesh
    mesh = fmesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False)
    labels = np.zeros((len(idx), 128, 128), np.uint8)
    ok = np.zeros(len(idx), bool)
    t0 = time.time()
    for n, i in enumerate(idx):
        rgb = np.ascontiguousarray(imgs[i])
        person = seg.process(rgb).segmentation_mask
        r = mesh.process(rgb)
        if r.multi_face_landmarks:
            lm = np.array([(p.x, p.y) for p in r.multi_face_landmarks[0].landmark], np.float64) * 128
            labels[n] = label_crop(person, lm, fmesh)
            ok[n] = True
        if (n + 1) % 1000 == 0:
            print(f'{n + 1}/{len(idx)} {time.time() - t0:.0f} s, {ok[:n + 1].mean():.3f} with a mesh', flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    np.savez_compressed(a.out, labels=labels, index=idx, ok=ok, classes=np.array(CLASSES))
    frac = np.bincount(labels[ok].reshape(-1), minlength=4) / max(1, labels[ok].size)
    print(f'{a.out}: {len(idx)} crops, {ok.mean():.3f} labelled; pixel shares', dict(zip(CLASSES, frac.round(3))))


if __name__ == '__main__':
    main()
