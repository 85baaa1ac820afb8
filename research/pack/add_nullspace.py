"""A pack variant whose fusion removes the kept segments' gender directions (the ``identity_nullspace`` extra).

    python research/pack/add_nullspace.py --pack pridss_rt/packs/demo --rank 10 --out runs/pack_170n --version 1.7.0

The directions are fitted on the pack's own reference bank (train-split faces): iterative nullspace projection
(Ravfogel et al. 2020, INLP) over the latent elements the fusion mask keeps from the original — fit a ridge
regression of gender on the kept elements (centred on the bank mean), take its direction, project it out, refit,
``--rank`` times. The runtime (``pridss_rt.stages.fuse.fuse``) then sets every fused latent's kept elements to
mean + P (kept - mean), P the projection onto the orthogonal complement of the k directions. Nothing is trained;
the result loads with ``pridss_rt.load_pack``.
"""
import argparse, json, os, shutil, sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from pridss_rt.pack import load_pack, sha256_file, write_pack_json  # noqa: E402

LAMBDA = 1e3  # ridge penalty of each direction's fit (the bank's 1,600 faces over 1,824 kept elements)


def nullspace(pack, rank: int, lam: float = LAMBDA):
    """(kept element indices, their bank mean, ``rank`` orthonormal gender directions as rows)."""
    latents, male = pack.bank()
    kept = np.flatnonzero(pack.fusion_mask().reshape(-1) > 0)
    x = latents.reshape(len(latents), -1)[:, kept].astype(np.float64)
    mu = x.mean(0)
    x = x - mu
    y = male.astype(np.float64) - male.mean()
    u = np.zeros((0, len(kept)))
    for _ in range(rank):
        xp = x - (x @ u.T) @ u
        w = np.linalg.solve(xp.T @ xp + lam * np.eye(len(kept)), xp.T @ y)
        w = w - u.T @ (u @ w)
        u = np.concatenate([u, (w / np.linalg.norm(w))[None]])
    return kept, mu, u


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--rank', type=int, default=10)
    ap.add_argument('--out', required=True)
    ap.add_argument('--version', default=None)
    a = ap.parse_args()
    if os.path.realpath(a.out) == os.path.realpath(a.pack):
        sys.exit('--out must not be --pack (the output folder is replaced); build elsewhere, then copy pack.json and '
                 'identity_nullspace.npy over')
    src = load_pack(a.pack)
    kept, mu, u = nullspace(src, a.rank)
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    shutil.copytree(a.pack, a.out)
    dst = os.path.join(a.out, 'identity_nullspace.npy')
    np.save(dst, np.concatenate([mu[None], u]).astype(np.float32), allow_pickle=False)
    m = json.load(open(os.path.join(a.out, 'pack.json')))
    m.setdefault('extras', {})['identity_nullspace'] = {
        'file': 'identity_nullspace.npy', 'sha256': sha256_file(dst),
        'note': f'[{a.rank + 1}, {len(kept)}] float32: the bank mean of the {len(kept)} latent elements the fusion mask '
                f'keeps from the original, then {a.rank} orthonormal directions along which a linear classifier reads '
                'gender from them (iterative nullspace projection on the bank, research/pack/add_nullspace.py); the '
                'fusion removes the kept elements\' component along them (pridss_rt.stages.fuse.fuse)'}
    if a.version:
        m['version'] = a.version
    write_pack_json(a.out, m)
    p = load_pack(a.out)
    k, mean, dirs = p.identity_nullspace()
    print(f'{a.out}: pack {p.name} {p.version}, identity nullspace rank {len(dirs)} over {len(k)} kept elements')


if __name__ == '__main__':
    main()
