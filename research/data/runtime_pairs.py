"""Training pairs chosen like the runtime chooses references (stages G-I of the demo pack; stage I = pack 1.5.0, see research/README.md).

For every train face, the --k opposite-gender train faces that `pridss_rt.stages.fuse.ReferenceBank` would rank
first if they were the bank: cosine similarity of the pack's encoder latents on the pack's
``reference_match`` elements, minus ``pose_weight`` x the RMS distance between the two faces' 5 landmarks
(in template eye distances; landmarks from research/data/crop_landmarks.py). The earlier stages paired faces by a
pixel descriptor around the identity region (common.pixel_ring_descriptor), which is not what the runtime
does; training on the runtime's own pairs puts the decoder's fused inputs where they will be at run time.

Usage:
  python research/data/crop_landmarks.py --split train --out runs/landmarks_train.npy
  python research/data/runtime_pairs.py --pack runs/pack_140 --landmarks runs/landmarks_train.npy --out runs/pairs_train.npz
Output: npz with `neighbours` [N_train, k] int64 (indices into the train split, best first) and `score`.
"""
import argparse, os, sys, time
import numpy as np, onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import load_cache, MEAN, STD


def pose_distance(q, pool, eye_dist):
    """RMS distance between landmark sets q [A,5,2] and pool [P,5,2] in eye distances -> [A,P]; a pool face
    without landmarks gets the largest finite distance of its row, a query without them a row of zeros
    (the runtime ranks such a face by similarity alone)."""
    d = np.sqrt(((q[:, None] - pool[None]) ** 2).sum(-1).mean(-1)) / eye_dist
    bad = ~np.isfinite(d)
    if bad.any():
        fill = np.where(np.isfinite(d), d, -np.inf).max(1, keepdims=True)
        d = np.where(bad, np.where(np.isfinite(fill), fill, 0.0), d)
        d[~np.isfinite(q[:, 0, 0])] = 0.0
    return d.astype(np.float32)


def rank_pairs(keys, male, lm, pose_weight, eye_dist, k, chunk=1024):
    """For each row of ``keys`` (unit-norm reference-match keys), the ``k`` rows of the opposite gender that
    ReferenceBank.choose ranks first (similarity - pose_weight * pose distance), best first.
    Returns (neighbours [N, k] int64, score [N, k] float32)."""
    nbr = np.zeros((len(keys), k), np.int64); score = np.zeros((len(keys), k), np.float32)
    for g in (True, False):
        q = np.flatnonzero(male == g); pool = np.flatnonzero(male != g)
        kp = np.ascontiguousarray(keys[pool].T)
        for i in range(0, len(q), chunk):
            rows = q[i:i + chunk]
            s = keys[rows] @ kp
            if pose_weight > 0:
                s -= pose_weight * pose_distance(lm[rows], lm[pool], eye_dist)
            top = np.argpartition(-s, k, axis=1)[:, :k] if k < s.shape[1] else np.tile(np.arange(s.shape[1]), (len(rows), 1))
            ts = np.take_along_axis(s, top, 1)
            o = np.argsort(-ts, axis=1, kind='stable')
            nbr[rows] = pool[np.take_along_axis(top, o, 1)]; score[rows] = np.take_along_axis(ts, o, 1)
    return nbr, score


def main():
    from pridss_rt.pack import load_pack
    ap = argparse.ArgumentParser()
    ap.add_argument('--pack', default='runs/pack_140', help='pack whose encoder, reference_match and template are used')
    ap.add_argument('--landmarks', default='runs/landmarks_train.npy')
    ap.add_argument('--pose_weight', type=float, default=None, help='default: the pack\'s defaults.pose_weight')
    ap.add_argument('--k', type=int, default=16, help='neighbours kept per face (the runtime\'s reference pool is 16)')
    ap.add_argument('--out', default='runs/pairs_train.npz')
    a = ap.parse_args()
    t0 = time.time()
    pack = load_pack(a.pack)
    w = pack.pose_weight if a.pose_weight is None else a.pose_weight
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    enc = ort.InferenceSession(os.path.join(a.pack, 'encoder.onnx'), so, providers=['CPUExecutionProvider'])
    name = enc.get_inputs()[0].name
    imgs, meta = load_cache('train')
    male = meta['male'].astype(bool)
    lm = np.load(a.landmarks, allow_pickle=False)
    if lm.shape != (len(imgs), 5, 2):
        sys.exit(f'{a.landmarks}: shape {lm.shape}, expected ({len(imgs)}, 5, 2) (train split)')
    match = np.asarray(pack.extra('reference_match'), np.float32).reshape(-1)
    cols = np.flatnonzero(match)
    keys = np.empty((len(imgs), len(cols)), np.float32)
    for i in range(0, len(imgs), 64):
        x = ((imgs[i:i + 64].astype(np.float32) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2)
        z = enc.run(None, {name: np.ascontiguousarray(x)})[0]
        keys[i:i + 64] = z[:, cols] * match[cols]
    keys /= np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    print(f'encoded {len(imgs)} train faces in {time.time() - t0:.0f} s', flush=True)
    tpl = pack.preprocess.template
    nbr, score = rank_pairs(keys, male, lm, w, float(np.linalg.norm(tpl[1] - tpl[0])), a.k)
    assert (male[nbr] != male[:, None]).all()
    np.savez(a.out, neighbours=nbr, score=score, pose_weight=np.float32(w), k=np.int64(a.k))
    print(f'{a.out}: {len(nbr)} faces x {a.k} opposite-gender neighbours (pose weight {w}), mean score of the '
          f'best {score[:, 0].mean():.3f}, of the {a.k}th {score[:, -1].mean():.3f}; {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
