"""Curate a pack's reference bank by how its faces fuse (measured for pack 1.6.0, not adopted; see
research/records/log.md, "Curated bank").

Train-split originals (never val) go through the runtime's own choice: `pridss_rt.stages.fuse.ReferenceBank.choose`
(latent similarity and head pose), K candidates synthesized, each scored by the pack's coherence critic. A bank
face's *excess* is its candidates' P(composite) minus the mean P(composite) of the K candidates of the same
original (so hard originals do not count against their references), averaged over every time it is a
candidate. The --drop share of bank faces with the highest mean excess (among those that were a candidate at
least --min_uses times) is left out of the variant; everything else of the pack is copied unchanged.

    python research/experiments/curate_bank.py --pack pridss_rt/packs/demo --n 4000 --seed 1 --drop 0.2 --out runs/pack_161_cur20

Prints how reliable the per-face excess is (correlation between two halves of the originals), how often the
dropped faces were candidates and chosen, and how many of them are among the darkest faces of the bank (mean
luminance of the decoded inner face), since a critic trained on CelebA-HQ may see darker faces as composites.
The pack.json sha256 of bank.npz is rewritten; re-run report.py to measure the variant.
"""
import argparse, json, os, shutil, sys, time
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import load_cache  # noqa: E402
from research.pack.export_pack import sha  # noqa: E402
from research.experiments.paired_packs import Loop  # noqa: E402
from research.analysis.report import sess, norm, to_u8  # noqa: E402
from pridss_rt.pack import load_pack  # noqa: E402


def reference_excess(refs, pc, n_bank):
    """Per bank face: (times it was a candidate, mean excess P(composite) over those times). refs, pc: [N, K]
    candidate bank indices and their P(composite); excess = pc minus the mean of the same original's K."""
    ex = pc - pc.mean(1, keepdims=True)
    cnt = np.bincount(refs.ravel(), minlength=n_bank)
    return cnt, np.bincount(refs.ravel(), ex.ravel(), minlength=n_bank) / np.maximum(cnt, 1)


def drop_order(cnt, mex, min_uses):
    """Bank indices, worst first: faces used >= min_uses times by descending mean excess, then the rest."""
    key = np.where(cnt >= min_uses, mex, -np.inf)
    return np.argsort(-key, kind='stable')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--n', type=int, default=4000, help='train originals, half men, half women')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--k', type=int, default=None, help='candidates per original (default: the pack\'s)')
    ap.add_argument('--min_uses', type=int, default=5)
    ap.add_argument('--drop', type=float, default=0.2, help='share of the bank to leave out')
    ap.add_argument('--landmarks', default='runs/landmarks_train.npy', help='research/data/crop_landmarks.py --split train')
    ap.add_argument('--scores', default='', help='npz to save (or, if it exists, reuse) the candidates and scores')
    ap.add_argument('--out', required=True, help='folder of the variant pack')
    a = ap.parse_args()
    P = lambda f: os.path.join(a.pack, f)
    pack = load_pack(a.pack)
    if 'coherence' not in pack.networks:
        sys.exit(f'{a.pack}: no coherence network to score candidates with')
    k = a.k or pack.candidates
    blat, bmale = pack.bank()
    nb = len(blat)
    syn = sess(P('synthesis.onnx'))
    if a.scores and os.path.exists(a.scores):
        d = np.load(a.scores, allow_pickle=False)
        refs, pc = d['refs'], d['pc']
        chosen = d['chosen'] if 'chosen' in d.files else None
    else:
        loop = Loop(a.pack, k)  # the runtime's choice and scores, as the paired looks make them
        imgs, meta = load_cache('train')
        lm = np.load(a.landmarks, allow_pickle=False)
        male = meta['male'].astype(bool)
        rng = np.random.default_rng(a.seed)
        sel = np.concatenate([rng.choice(np.where(male)[0], a.n // 2, replace=False),
                              rng.choice(np.where(~male)[0], a.n - a.n // 2, replace=False)])
        refs, pc, chosen = np.zeros((len(sel), k), np.int64), np.zeros((len(sel), k)), np.zeros(len(sel), np.int64)
        t0 = time.time()
        for s in range(0, len(sel), 32):
            ix = sel[s:s + 32]
            _, pm, sim, pc[s:s + 32], refs[s:s + 32] = loop.candidates_batch(norm(imgs[ix]), lm[ix])
            chosen[s:s + 32] = np.argmin(loop.score(pm, sim, pc[s:s + 32]), 1)  # the runtime's choice
        print(f'{len(sel)} originals x {k} candidates scored in {time.time() - t0:.0f} s')
        if a.scores:
            np.savez(a.scores, sel=sel, refs=refs, pc=pc, chosen=chosen)
    cnt, mex = reference_excess(refs, pc, nb)
    half = np.arange(len(refs)) % 2 == 0
    (ca, ea), (cb, eb) = reference_excess(refs[half], pc[half], nb), reference_excess(refs[~half], pc[~half], nb)
    both = (ca >= 4) & (cb >= 4)
    print(f'bank faces never a candidate: {(cnt == 0).sum()} of {nb}; split-half correlation of the mean excess '
          f'(faces used >= 4 times in each half, {both.sum()}): {np.corrcoef(ea[both], eb[both])[0, 1]:.3f}')
    drop = drop_order(cnt, mex, a.min_uses)[:int(round(a.drop * nb))]
    keep = np.setdiff1d(np.arange(nb), drop)
    lum = np.concatenate([to_u8(syn(blat[i:i + 64]))[:, 56:104, 40:88].mean((1, 2, 3)) for i in range(0, nb, 64)])
    share = '' if chosen is None else f', {np.isin(refs[np.arange(len(refs)), chosen], drop).mean():.1%} of the chosen'
    print(f'dropped {len(drop)} ({bmale[drop].mean():.0%} men): {np.isin(refs, drop).mean():.1%} of the candidate '
          f'slots{share}, mean P(composite) there {pc[np.isin(refs, drop)].mean():.3f} (all: {pc.mean():.3f}); among the '
          f'darkest 10 % / 25 % of the bank by inner-face luminance: {(lum[drop] < np.percentile(lum, 10)).mean():.1%}'
          f' / {(lum[drop] < np.percentile(lum, 25)).mean():.1%}')
    shutil.rmtree(a.out, ignore_errors=True)
    shutil.copytree(a.pack, a.out)
    src = np.load(pack.bank_path, allow_pickle=False)
    arrays = {n: (src[n][keep] if src[n].shape[:1] == (nb,) else src[n]) for n in src.files}
    bank_file = os.path.join(a.out, os.path.basename(pack.bank_path))
    np.savez_compressed(bank_file, **arrays)
    pj = json.load(open(os.path.join(a.out, 'pack.json')))
    pj['bank']['sha256'] = sha(bank_file)
    pj['bank']['note'] = (pj['bank'].get('note', '') + f' Curated by research/experiments/curate_bank.py: {len(drop)} of {nb} '
                          f'faces left out (--drop {a.drop} --n {a.n} --seed {a.seed}).').strip()
    json.dump(pj, open(os.path.join(a.out, 'pack.json'), 'w'), indent=2)
    print(f'{a.out}: bank of {len(load_pack(a.out).bank()[0])} faces')


if __name__ == '__main__':
    main()
