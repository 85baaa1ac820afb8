"""Coherence critic: face -> P(composite), trained on a pack's own decoder outputs.

PIC (|2 P(male) - 1| - SIM) rewards an ambiguous gender and a high similarity to the original, and a
composite (the original's inner face pasted into a context that does not fit it) is both: so among K
candidates PIC tends to pick the composite when there is one. The runtime adds `coherence_weight *
P(composite)` to PIC for packs that ship this critic (pack network role `coherence`; pack 1.6.0: weight 1).

--mode rank (pack 1.6.0): every training image is a fused face from the pack's encoder and synthesis, a train
  face fused with one of its 16 runtime-style opposite-gender references (runs/pairs_train.npz from
  research/data/runtime_pairs.py; label 0) or with a random opposite-gender train face (label 1). Both have an
  opposite-gender context, so gender is no cue; the critic learns how well pose, lighting and face shape fit,
  on the kind of faces it has to rank. Held-out figures on 1,000 other train faces.
--mode composite (tried, not shipped: it calls nearly every fused face a composite): reconstructions
  syn(enc(x)) (label 0) vs fused latents mask * z_a + (1 - mask) * z_b with b drawn at random (label 1),
  held out on val; --matched: a share of the composites fused with runtime-style neighbours instead;
  --degraded: a share of the reconstructions per batch blurred or washed out and counted as bad.

    python research/training/train_critic.py --pack pridss_rt/packs/demo --mode rank --width 16 --out runs/critic_rank
writes runs/critic_rank/coherence.onnx (input (N,3,128,128) normalized like the pack's other networks, output
(N,1) P(composite)), critic.pt (for research/pack/pack_variant.py --coherence) and critic.json (held-out accuracy, AUC).
"""
import argparse, json, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import load_cache, roc_auc  # noqa: E402
from research.pack.export_pack import export  # noqa: E402
from research.models.models import SmallCNN  # noqa: E402
from research.analysis.report import sess, batched, norm, to_u8  # noqa: E402


class Critic(nn.Module):
    """The gender classifier's backbone (models.SmallCNN: BatchNorm convolutions, a position-aware linear head)
    on the whole 128-px face resized to `size`: whether the inner face fits its head is a question of layout."""

    def __init__(self, width=24, size=64):
        super().__init__()
        self.net = SmallCNN(1, crop=None, width=width, size=size)

    def logits(self, x):
        return self.net.features(x)

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


def degrade(x):
    """Blurred (Gaussian sigma 1-2.5 px) and/or washed-out (contrast x0.4-0.8, lighter) copies of normalized
    images: the critic must not prefer a soft, pale candidate because it shows fewer composite edges."""
    out = []
    for im in x:
        r = torch.rand(3)
        if r[0] < 0.7:
            sig = 1.0 + 1.5 * float(r[1])
            t = torch.arange(-4, 5, dtype=torch.float32)
            k = torch.exp(-t ** 2 / (2 * sig ** 2)); k = k / k.sum()
            im = F.conv2d(F.pad(im[None], (4, 4, 0, 0), mode='reflect'), k.view(1, 1, 1, 9).repeat(3, 1, 1, 1), groups=3)
            im = F.conv2d(F.pad(im, (0, 0, 4, 4), mode='reflect'), k.view(1, 1, 9, 1).repeat(3, 1, 1, 1), groups=3)[0]
        if r[0] >= 0.4:
            m = im.mean((1, 2), keepdim=True)
            c = 0.4 + 0.4 * float(r[2])
            im = (m + c * (im - m) + 0.3 * (1 - c)).clamp(-1, 1)
        out.append(im)
    return torch.stack(out)


def make_set(enc, syn, mask, u8, rng):
    """(uint8 images [2n,128,128,3], labels [2n]): n reconstructions, n random-reference composites."""
    z = batched(enc, norm(u8))
    other = (np.arange(len(z)) + rng.integers(1, len(z), len(z))) % len(z)  # never the face itself
    zf = mask[None] * z + (1 - mask[None]) * z[other]
    x = np.concatenate([to_u8(batched(syn, z)), to_u8(batched(syn, zf))])
    return x, np.r_[np.zeros(len(z)), np.ones(len(z))].astype(np.float32)


def make_set_subset(enc, syn, mask, u8, n, rng, neighbours, matched):
    """make_set for the first n of ``u8`` (n reconstructions, n composites); a composite's reference is another
    of the n drawn at random or, with probability ``matched``, one of the face's runtime-style opposite-gender
    neighbours (``neighbours``: [n, 16] indices into ``u8``), as the runtime would fuse it."""
    z = batched(enc, norm(u8))
    other = rng.integers(0, n - 1, n); other += other >= np.arange(n)  # a random other base face
    pick = rng.random(n) < matched
    other[pick] = neighbours[pick, rng.integers(0, neighbours.shape[1], int(pick.sum()))]
    zf = mask[None] * z[:n] + (1 - mask[None]) * z[other]
    x = np.concatenate([to_u8(batched(syn, z[:n])), to_u8(batched(syn, zf))])
    return x, np.r_[np.zeros(n), np.ones(n)].astype(np.float32)


def load_neighbours(path, n_train):
    """The runtime-style opposite-gender neighbours of every train face (research/data/runtime_pairs.py)."""
    nb = np.load(path, allow_pickle=False)['neighbours']
    if len(nb) != n_train:
        sys.exit(f'{path}: not the neighbours of this train split')
    return nb


def make_rank_set(enc, syn, mask, tr, male, neighbours, n, n_val, rng):
    """--mode rank: every image is a fused face. Label 0: the face fused with one of its runtime-style
    opposite-gender neighbours (``neighbours`` [len(tr), 16], research/data/runtime_pairs.py), as the runtime fuses;
    label 1: fused with a random opposite-gender train face. Both have an opposite-gender context, so gender
    is no cue; what differs is how well pose, lighting and face shape fit. Returns train and held-out sets
    (the last n_val faces; other train faces, not val: the neighbours exist for the train split only)."""
    base = rng.choice(len(tr), n + n_val, replace=False)
    nb = neighbours[base, rng.integers(0, neighbours.shape[1], len(base))]
    pm, pf = np.where(male)[0], np.where(~male)[0]
    rnd = np.array([rng.choice(pf if male[f] else pm) for f in base])
    faces = np.unique(np.concatenate([base, nb, rnd]))
    pos = np.full(len(tr), -1); pos[faces] = np.arange(len(faces))
    z = batched(enc, norm(tr[faces]))
    zb = z[pos[base]]
    xm = to_u8(batched(syn, mask[None] * zb + (1 - mask[None]) * z[pos[nb]]))
    xr = to_u8(batched(syn, mask[None] * zb + (1 - mask[None]) * z[pos[rnd]]))
    lab = lambda k: np.r_[np.zeros(k), np.ones(k)].astype(np.float32)  # noqa: E731
    return (np.concatenate([xm[:n], xr[:n]]), lab(n), np.concatenate([xm[n:], xr[n:]]), lab(n_val))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--n', type=int, default=8000, help='train faces (each gives one coherent, one composite)')
    ap.add_argument('--n_val', type=int, default=1000, help='val faces for the held-out figures')
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--width', type=int, default=24)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--data', default=None, help='cache the generated images here (.npz) and reuse them (not '
                    'checked against --n/--matched/--seed: one file per setting)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--mode', default='composite', choices=['composite', 'rank'],
                    help='composite: reconstructions vs fused faces (see above); rank: fused faces with the '
                         'runtime\'s own references vs fused faces with random opposite-gender ones (make_rank_set)')
    ap.add_argument('--matched', type=float, default=0.0,
                    help='share of composites fused with one of the face\'s 16 runtime-style opposite-gender '
                         'neighbours (research/data/runtime_pairs.py) instead of a random face')
    ap.add_argument('--pairs_file', default='runs/pairs_train.npz')
    ap.add_argument('--degraded', type=float, default=0.0,
                    help='share of reconstructions per batch turned into bad examples by blur or washing out')
    ap.add_argument('--out', default='runs/critic')
    a = ap.parse_args()
    t0 = time.time()
    torch.manual_seed(a.seed); rng = np.random.default_rng(a.seed)
    torch.set_num_threads(2)
    os.makedirs(a.out, exist_ok=True)
    P = lambda f: os.path.join(a.pack, f)
    enc, syn = sess(P('encoder.onnx')), sess(P('synthesis.onnx'))
    mask = np.load(P('fusion_mask.npy'), allow_pickle=False).astype(np.float32)
    if a.data and os.path.isfile(a.data):
        d = np.load(a.data, allow_pickle=False)
        xt, yt, xv, yv = d['xt'], d['yt'], d['xv'], d['yv']
    elif a.mode == 'rank':
        tr, meta = load_cache('train')
        xt, yt, xv, yv = make_rank_set(enc, syn, mask, tr, meta['male'].astype(bool), load_neighbours(a.pairs_file, len(tr)),
                                       a.n, a.n_val, rng)
        if a.data:
            np.savez(a.data, xt=xt, yt=yt, xv=xv, yv=yv)
    else:
        tr, _ = load_cache('train'); va, _ = load_cache('val')
        if a.matched > 0:
            # the n faces plus all their neighbours, so that a neighbour is always among the encoded faces
            allnb = load_neighbours(a.pairs_file, len(tr))
            base = rng.choice(len(tr), a.n, replace=False)
            nb = allnb[base]
            faces = np.concatenate([base, np.setdiff1d(nb.ravel(), base)])  # the n base faces first
            pos = np.full(len(tr), -1); pos[faces] = np.arange(len(faces))
            nbr = pos[nb]
            xt, yt = make_set_subset(enc, syn, mask, tr[faces], a.n, rng, nbr, a.matched)
        else:
            xt, yt = make_set(enc, syn, mask, tr[rng.choice(len(tr), a.n, replace=False)], rng)
        xv, yv = make_set(enc, syn, mask, va[rng.choice(len(va), a.n_val, replace=False)], rng)
        if a.data:
            np.savez(a.data, xt=xt, yt=yt, xv=xv, yv=yv)
    xv = norm(xv)
    print(f'data: {len(xt)} train / {len(xv)} val images, {time.time() - t0:.0f} s', flush=True)
    net = Critic(a.width, a.size)
    opt = torch.optim.Adam(net.parameters(), a.lr, betas=(0.5, 0.999))
    yt_t = torch.from_numpy(yt)
    for ep in range(a.epochs):
        net.train(); perm = torch.randperm(len(xt)); tot = 0.0
        for s in range(0, len(perm) - a.bs + 1, a.bs):
            b = perm[s:s + a.bs]
            x = torch.from_numpy(norm(xt[b.numpy()]))
            y = yt_t[b].clone()
            flip = torch.rand(len(b)) < 0.5
            x[flip] = x[flip].flip(3)
            if a.degraded > 0:  # some reconstructions, blurred or washed out, count as bad faces too
                d = (y == 0) & (torch.rand(len(b)) < a.degraded)
                if d.any():
                    x[d] = degrade(x[d]); y[d] = 1.0
            loss = F.binary_cross_entropy_with_logits(net.logits(x)[:, 0], y)
            opt.zero_grad(); loss.backward(); opt.step(); tot += float(loss.detach()) * len(b)
        net.eval()
        with torch.no_grad():
            pv = torch.cat([net(torch.from_numpy(xv[i:i + 256]))[:, 0] for i in range(0, len(xv), 256)]).numpy()
        print(f'epoch {ep}: train loss {tot / len(perm):.4f}, val acc {((pv >= 0.5) == yv).mean():.3f}, '
              f'val auc {roc_auc(pv, yv):.3f}, {time.time() - t0:.0f} s', flush=True)
    net.eval()
    R = {'pack': a.pack, 'n': a.n, 'n_val': a.n_val, 'epochs': a.epochs, 'seed': a.seed, 'width': a.width,
         'size': a.size, 'mode': a.mode, 'matched': a.matched, 'degraded': a.degraded,
         'params': sum(p.numel() for p in net.parameters()),
         'val_acc': float(((pv >= 0.5) == yv).mean()), 'val_auc': roc_auc(pv, yv),
         'val_mean_p_good': float(pv[yv == 0].mean()), 'val_mean_p_bad': float(pv[yv == 1].mean()),
         'seconds': round(time.time() - t0, 1)}
    torch.save(net.state_dict(), os.path.join(a.out, 'critic.pt'))
    export(net, torch.from_numpy(xv[:4]), os.path.join(a.out, 'coherence.onnx'), 'image', 'p_composite')  # parity-checked
    json.dump(R, open(os.path.join(a.out, 'critic.json'), 'w'), indent=1)
    print(json.dumps(R, indent=1))


if __name__ == '__main__':
    main()
