"""Blind paired look at two packs' anonymized faces (e.g. two decoders): the same val faces through each pack's
own PriDSS choice (the runtime's references, K candidates, PIC + the pack's coherence term unless --weight),
each pair in random order, no labels; the order goes to a key file to read after the judging.

    python research/experiments/paired_packs.py --a runs/pack_160 --b runs/pack_170 --n 24 --seed 11 \
        --out runs/paired_packs.png --key runs/paired_packs_key.json

Writes rows of 4 tiles (original | one pack's face | the other's); 12 men then 12 women for --n 24 (fewer with
--skip_alike, which leaves out the faces both draw alike; --mirror_a/--mirror_b: research/experiments/mirror.py). Made of
CelebA-HQ faces: not for the repo. Judge each pair by eye (more coherent / less / alike), then read the key
(1 = pack --a is on the left).
"""
import argparse, json, os, sys
import numpy as np, cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import load_cache  # noqa: E402
from research.analysis.report import sess, norm, to_u8, l2n  # noqa: E402
from research.experiments.mirror import choose_mirrored  # noqa: E402
from pridss_rt.stages.fuse import ReferenceBank  # noqa: E402
from pridss_rt.pack import load_pack  # noqa: E402


class Loop:
    """One pack's K candidates and its choice among them, as research/analysis/report.py and the runtime make them.
    critic: a coherence critic ONNX to score with instead of the pack's own; weight: its weight in the choice
    (default: the pack's defaults.coherence_weight); mirror: choose among the bank as it is and as seen in a
    mirror (research/experiments/mirror.py)."""

    def __init__(self, path, k, weight=None, critic=None, mirror=False):
        P = lambda f: os.path.join(path, f)
        self.enc, self.syn, self.gen, self.idn = (sess(P(f)) for f in ('encoder.onnx', 'synthesis.onnx',
                                                                        'gender.onnx', 'identity.onnx'))
        pack = load_pack(path)
        self.w = pack.coherence_weight if weight is None else weight
        if critic is None and 'coherence' in pack.networks:
            critic = P(pack.network('coherence').file)
        self.crit = sess(critic) if critic else None
        if self.w > 0 and self.crit is None:
            sys.exit(f'{path}: coherence weight {self.w:g} but no critic')
        self.blat = pack.bank()[0].reshape(len(pack.bank()[0]), -1)
        self.bank, self.mask, self.k = ReferenceBank(pack), pack.fusion_mask()[None], k
        self.pose = pack.pose_weight > 0
        self.mirror = mirror

    def candidates(self, x, lm):
        """(K uint8 crops, P(male), SIM to the original, P(composite) or None, the K bank indices) of one
        normalized face x (1,3,S,S) with landmarks lm (5,2)."""
        cu8, pm, sim, pc, refs = self.candidates_batch(x, lm[None])
        return cu8[0], pm[0], sim[0], (None if pc is None else pc[0]), refs[0]

    def candidates_batch(self, x, lms):
        """:meth:`candidates` of B faces x (B,3,S,S), landmarks lms (B,5,2), each network run once on the
        whole batch: arrays of B rows ([B,K,S,S,3] crops, [B,K] scores and bank indices)."""
        n, k = len(x), self.k
        z, pm0 = self.enc(x), self.gen(x).reshape(-1)
        zm = self.enc(x[:, :, :, ::-1].copy()) if self.mirror else None
        refs, mir, zz = np.zeros((n, k), np.int64), np.zeros((n, k), bool), np.repeat(z[:, None], k, 1)
        for b in range(n):
            lm = lms[b] if self.pose else None
            if self.mirror:
                refs[b], mir[b] = choose_mirrored(self.bank, z[b], zm[b], float(pm0[b]), k, lm, x.shape[-1])
                zz[b, mir[b]] = zm[b]
            else:
                refs[b] = self.bank.choose(z[b], float(pm0[b]), k, lm)
        zz, mir = zz.reshape((n * k,) + z.shape[1:]), mir.reshape(-1)
        cu8 = to_u8(self.syn(self.mask * zz + (1 - self.mask) * self.blat[refs.reshape(-1)]))
        cu8[mir] = cu8[mir][:, :, ::-1]
        cn = norm(cu8)
        pm = self.gen(cn).reshape(n, k)
        sim = np.einsum('bkd,bd->bk', l2n(self.idn(cn)).reshape(n, k, -1), l2n(self.idn(x)))
        pc = None if self.crit is None else self.crit(cn).reshape(n, k)
        return cu8.reshape((n, k) + cu8.shape[1:]), pm, sim, pc, refs

    def score(self, pm, sim, pc, weight=None):
        """PIC + weight x P(composite) (weight: the loop's own by default)."""
        w = self.w if weight is None else weight
        return np.abs(2 * pm - 1) - sim + (w * pc if w > 0 else 0.0)

    def __call__(self, x, lm):
        cu8, pm, sim, pc, _ = self.candidates(x, lm)
        return cu8[int(np.argmin(self.score(pm, sim, pc)))]


def val_faces(n, seed, landmarks):
    """Val crops, their labels and landmarks, and n of them (half men, half women) drawn with a generator
    seeded by seed, which is returned for the caller's further draws: (imgs, male, landmarks, rng, sel)."""
    imgs, meta = load_cache('val')
    male = meta['male'].astype(bool)
    lm = np.load(landmarks, allow_pickle=False)
    rng = np.random.default_rng(seed)
    sel = np.concatenate([rng.choice(np.where(male)[0], n // 2, replace=False),
                          rng.choice(np.where(~male)[0], n - n // 2, replace=False)])
    return imgs, male, lm, rng, sel


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--a', required=True)
    ap.add_argument('--b', required=True)
    ap.add_argument('--weight_a', type=float, default=None, help='coherence weight for --a (default: the pack\'s)')
    ap.add_argument('--weight_b', type=float, default=None)
    ap.add_argument('--mirror_a', action='store_true', help='pack --a chooses among the bank and its mirror image')
    ap.add_argument('--mirror_b', action='store_true')
    ap.add_argument('--n', type=int, default=24)
    ap.add_argument('--skip_alike', action='store_true', help='leave out (and count) the faces both packs draw '
                    'alike, byte for byte')
    ap.add_argument('--k', type=int, default=5, help='candidates per face for both packs')
    ap.add_argument('--k_a', type=int, default=None, help='candidates for --a (default: --k)')
    ap.add_argument('--k_b', type=int, default=None, help='candidates for --b (default: --k)')
    ap.add_argument('--seed', type=int, default=11)
    ap.add_argument('--landmarks', default='runs/landmarks_val.npy', help='research/data/crop_landmarks.py --split val')
    ap.add_argument('--out', default='runs/paired_packs.png')
    ap.add_argument('--key', default='runs/paired_packs_key.json')
    a = ap.parse_args()
    k_a, k_b = a.k_a or a.k, a.k_b or a.k
    A, B = Loop(a.a, k_a, a.weight_a, mirror=a.mirror_a), Loop(a.b, k_b, a.weight_b, mirror=a.mirror_b)
    imgs, male, lm, rng, sel = val_faces(a.n, a.seed, a.landmarks)
    tiles, key, alike = [], [], 0
    for i in sel:
        x = norm(imgs[i][None])
        fa, fb = A(x, lm[i]), B(x, lm[i])
        if a.skip_alike and np.array_equal(fa, fb):
            alike += 1
            continue
        a_left = bool(rng.random() < 0.5)
        tiles.append(np.concatenate([imgs[i]] + ([fa, fb] if a_left else [fb, fa]), 1))
        key.append(int(a_left))
    json.dump({'a': a.a, 'b': a.b, 'k_a': k_a, 'k_b': k_b, 'weight_a': A.w, 'weight_b': B.w,
               'mirror_a': a.mirror_a, 'mirror_b': a.mirror_b, 'a_on_left': key,
               'faces': len(sel), 'alike': alike, 'note': 'tile order: rows of 4, left to right'}, open(a.key, 'w'))
    if a.skip_alike:
        print(f'{len(sel) - alike} of {len(sel)} faces differ; {len(tiles)} shown')
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    sep = lambda t: np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255)
    rows = [np.concatenate([sep(t) for t in tiles[r:r + 4]], 1) for r in range(0, len(tiles), 4)]
    cv2.imwrite(a.out, np.concatenate(rows, 0)[:, :, ::-1])
    print('grid (not for the repo: CelebA-HQ faces):', a.out, '- key:', a.key)


if __name__ == '__main__':
    main()
