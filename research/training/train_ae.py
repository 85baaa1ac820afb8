"""Train the demo pack's encoder + synthesis (spatial-latent autoencoder with coherent fusion).

Every step encodes B originals and B opposite-gender references, decodes both reconstructions and
the fused latent (identity cells from the original, context cells + style from the reference).
Reconstructions: L1 + (1 - SSIM). Fused outputs: no pixel collage target; the target is
  T = a * cm(orig) + (1 - a) * ref
where cm(orig) is the original colour-transferred (per-channel mean/std) to the reference's skin
statistics measured in a ring around the identity region, and a is the identity mask feathered with
a Gaussian (sigma --feather px). Loss on fused = weighted L1 (lower weight in the seam band) +
gradient L1 (image gradients of T) + 0.5 (1 - SSIM). The same rule applied to a face and itself gives
the face back, so reconstruction and fusion targets are consistent.

Optional realism term (--adv_weight, stage E): a small patch critic learns to tell the decoder's
reconstructions (coherent faces, same texture) from fused outputs, and the fused outputs get its
non-saturating GAN loss, which pushes them towards single coherent faces where the target T is still a
composite.

--adv_critic bn (stage J): the critic is the gender classifier's backbone (models.SmallCNN: BatchNorm
convolutions and a position-aware linear head, width 16, on the face at 64 px), which tells reconstructions
from fused faces apart (research/training/train_critic.py --mode composite: held-out AUC 0.96-0.98) where stage E's
normalization-free patch critic stayed near chance. Reconstructions and fused outputs go through it in one
batch (its BatchNorm statistics never tell the two apart by batch).

Usage (2-core CPU): nice -n 10 python research/training/train_ae.py --steps 2000 --out runs/ae
"""
import argparse, json, os, sys, time
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import start_training, opposite_references, to_tensor, ssim, identity_pixel_mask, \
    identity_cells, REGIONS
from research.models.models import Encoder, Synthesis, SmallCNN, latent_mask


def blur(m, sigma):
    k = int(3 * sigma) * 2 + 1
    g = torch.arange(k, dtype=torch.float32) - k // 2
    g = torch.exp(-g ** 2 / (2 * sigma ** 2)); g = (g / g.sum()).to(m)
    m = F.conv2d(F.pad(m, (k // 2, k // 2, 0, 0), mode='replicate'), g.view(1, 1, 1, -1))
    return F.conv2d(F.pad(m, (0, 0, k // 2, k // 2), mode='replicate'), g.view(1, 1, -1, 1))


def dilate(m, r):
    return F.max_pool2d(m, 2 * r + 1, 1, r)


def grads(x):
    return x[:, :, :, 1:] - x[:, :, :, :-1], x[:, :, 1:, :] - x[:, :, :-1, :]


def colour_match(orig, ref, ring):
    w = ring / ring.sum((2, 3), keepdim=True)  # per face when the ring differs by face
    mo = (orig * w).sum((2, 3), keepdim=True); mr = (ref * w).sum((2, 3), keepdim=True)
    so = (((orig - mo) ** 2 * w).sum((2, 3), keepdim=True) + 1e-4).sqrt()
    sr = (((ref - mr) ** 2 * w).sum((2, 3), keepdim=True) + 1e-4).sqrt()
    return (orig - mo) * (sr / so).clamp(0.6, 1.6) + mr


def region_masks(regions, feather):
    """Per identity region (stacked in the order given): the latent fusion mask [R, D], and at 128 px the
    identity mask feathered with a Gaussian of sigma `feather` px, the ring where the skin statistics are
    measured and the loss weight map (lower in a 3-px band along the region boundary), each [R, 1, H, W]."""
    lms = torch.stack([torch.from_numpy(latent_mask(identity_cells(r))) for r in regions])
    hard = torch.stack([torch.from_numpy(identity_pixel_mask(region=r))[None] for r in regions])
    band = (dilate(hard, 3) - (1 - dilate(1 - hard, 3))).clamp(0, 1)
    return lms, blur(hard, feather).clamp(0, 1), (dilate(hard, 10) - hard).clamp(0, 1), 1.0 - 0.7 * band


def band_mask(spec, sigma, size=128):
    """[1, size, size] mask of the boxes 'y0:y1:x0:x1,...' (crop pixels, end exclusive), blurred with a Gaussian of
    sigma px (0: hard)."""
    m = torch.zeros(1, 1, size, size)
    for box in spec.split(','):
        y0, y1, x0, x1 = (int(v) for v in box.split(':'))
        if not (0 <= y0 < y1 <= size and 0 <= x0 < x1 <= size):
            raise ValueError(f'band {box!r}: must be y0:y1:x0:x1 with 0 <= y0 < y1 <= {size} and 0 <= x0 < x1 <= {size}')
        m[..., y0:y1, x0:x1] = 1
    return (blur(m, sigma) if sigma > 0 else m).clamp(0, 1)[0]


def fused_target(xo, xr, feather, ring, lowpass=0.0, mix=1.0):
    """Target of the fused output of original xo and reference xr ([B,3,H,W], normalized): inside the
    feathered identity mask the original colour-matched to the reference's ring statistics (with lowpass > 0:
    its blurred part moved by `mix` towards the reference's), outside the reference. A face with itself
    gives the face back."""
    inner = colour_match(xo, xr, ring)
    if lowpass > 0:
        lp = lambda v: blur(v.reshape(-1, 1, *v.shape[2:]), lowpass).reshape(v.shape)
        inner = inner - mix * (lp(inner) - lp(xr))
    return feather * inner + (1 - feather) * xr


class PatchCritic(torch.nn.Module):
    """Small spectrally-normalized patch discriminator (receptive field ~46 px at 128 px; 16x16 logits)."""
    def __init__(self, w=32):
        super().__init__()
        sn = torch.nn.utils.parametrizations.spectral_norm
        self.f = torch.nn.Sequential(
            sn(torch.nn.Conv2d(3, w, 4, 2, 1)), torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(w, 2 * w, 4, 2, 1)), torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(2 * w, 3 * w, 4, 2, 1)), torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(3 * w, 3 * w, 3, 1, 1)), torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(3 * w, 1, 3, 1, 1)))

    def forward(self, x):
        return self.f(x)


def critic_logits(D, kind, yr, yf, fused_only=False):
    """The realism critic's logits of (reconstructions yr, fused outputs yf), or of yf only. kind 'patch': D
    (a PatchCritic) sees each set on its own; 'bn': D (a models.SmallCNN) sees both in one batch, also when
    only yf's logits are wanted, so that its BatchNorm statistics never tell the two sets apart by batch and
    the generator is judged with the statistics the critic is trained with."""
    if kind == 'patch':
        return D(yf) if fused_only else (D(yr), D(yf))
    lo = D.features(torch.cat([yr, yf], 0))
    return lo[len(yr):] if fused_only else (lo[:len(yr)], lo[len(yr):])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=2000)
    ap.add_argument('--batch', type=int, default=24)
    ap.add_argument('--bf16', type=int, default=1, help='bf16 autocast (fast on CPUs with AMX/AVX512-BF16)')
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--feather', type=float, default=3.0)
    ap.add_argument('--fused_weight', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', default='runs/ae')
    ap.add_argument('--resume', default='')
    ap.add_argument('--pairs', default='batch', choices=['batch', 'nn', 'runtime'],
                    help="batch: reference = random opposite-gender face of the batch; nn: with prob. "
                         "--nn_prob a random one of the 32 opposite-gender faces with the most similar "
                         "pose/skin around the identity region (common.pixel_ring_descriptor); runtime: the same "
                         "with the neighbours of --pairs_file (research/data/runtime_pairs.py: the runtime's own "
                         "reference ranking, latent similarity and head pose)")
    ap.add_argument('--pairs_file', default='runs/pairs_train.npz')
    ap.add_argument('--nn_prob', type=float, default=0.75)
    ap.add_argument('--init', default='', help='start from the weights of this checkpoint (fresh optimizer and schedule)')
    ap.add_argument('--stop_at', type=int, default=0, help='stop (and save) after this many steps of the schedule')
    ap.add_argument('--adv_weight', type=float, default=0.0,
                    help='realism term on fused outputs: non-saturating GAN loss of a patch critic that '
                         'sees real train faces vs fused outputs (0 = off, the stage A-D recipe)')
    ap.add_argument('--region', default='v3', choices=sorted(REGIONS),
                    help='identity region (common.REGIONS) used for the fused latents and targets')
    ap.add_argument('--region_female', default='', choices=[''] + sorted(REGIONS),
                    help='identity region for female originals (default: --region for all), e.g. jaw: their open '
                         'mouth and chin stay with them, while male originals\' beards do not go to their candidates')
    ap.add_argument('--target_lowpass', type=float, default=0.0,
                    help='sigma (px) > 0: inside the identity region the fused target keeps only the original\'s '
                         'detail above this scale (x - blur(x)) on the reference\'s blurred shading and colour, '
                         'so make-up, shadows and skin tone of the original are not drawn as patches (0 = off)')
    ap.add_argument('--target_lowpass_mix', type=float, default=1.0,
                    help='with --target_lowpass: how much of the original\'s blurred part is replaced by the '
                         'reference\'s (1 = all; 0.5 = half)')
    ap.add_argument('--male_bands', default='',
                    help='y0:y1:x0:x1[,...] crop-pixel boxes inside the identity region where, for male originals only, the '
                         'fused target takes the reference instead of the original (feathered with --band_sigma): the '
                         'moustache above the lips and the goatee under them, which a female context should not keep')
    ap.add_argument('--band_sigma', type=float, default=2.0)
    ap.add_argument('--adv_critic', default='patch', choices=['patch', 'bn'],
                    help='patch: spectrally-normalized patch critic (stage E); bn: the classifiers\' BatchNorm '
                         'backbone on the whole face at 64 px (stage J)')
    ap.add_argument('--d_lr', type=float, default=1e-3)
    ap.add_argument('--adv_warmup', type=int, default=100, help='critic-only steps before the term is applied')
    a = ap.parse_args()
    imgs, meta, male, idx_m, idx_f = start_training(a)
    E, S = Encoder().to(memory_format=torch.channels_last), Synthesis().to(memory_format=torch.channels_last)
    params = list(E.parameters()) + list(S.parameters())
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.99))
    start = 0
    if a.resume:
        ck = torch.load(a.resume, weights_only=True)
        E.load_state_dict(ck['E']); S.load_state_dict(ck['S']); opt.load_state_dict(ck['opt']); start = ck['step']
    if a.init:
        ck = torch.load(a.init, weights_only=True)
        E.load_state_dict(ck['E']); S.load_state_dict(ck['S'])
    D = None
    if a.adv_weight > 0:
        D = PatchCritic() if a.adv_critic == 'patch' else SmallCNN(1, width=16, size=64)

    if D is not None:
        opt_d = torch.optim.Adam(D.parameters(), lr=a.d_lr, betas=(0.5, 0.99))
    # index 0: the masks of male originals, 1: of female originals
    lms, feathers, rings, wmaps = region_masks([a.region, a.region_female or a.region], a.feather)
    if a.male_bands:
        feathers[0] = feathers[0] * (1 - band_mask(a.male_bands, a.band_sigma))
    rng = np.random.default_rng(a.seed)
    if a.pairs == 'nn':
        from research.models.common import pixel_ring_descriptor, opposite_gender_neighbours
        nbr = opposite_gender_neighbours(pixel_ring_descriptor(imgs, region=a.region), male, k=32)
    elif a.pairs == 'runtime':
        nbr = np.load(a.pairs_file, allow_pickle=False)['neighbours']
        if len(nbr) != len(imgs) or (male[nbr] == male[:, None]).any():
            sys.exit(f'{a.pairs_file}: not opposite-gender neighbours of this train split')
    log = open(os.path.join(a.out, 'log.txt'), 'a')
    t0 = time.time()
    for step in range(start, a.steps):
        lr = a.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + np.cos(np.pi * step / a.steps))
        for g in opt.param_groups:
            g['lr'] = float(lr)  # a numpy scalar would make the checkpoint need weights_only=False
        # half male, half female; each face's reference is an opposite-gender face of the batch
        B, h = a.batch, a.batch // 2
        io = np.concatenate([rng.choice(idx_m, h), rng.choice(idx_f, h)])
        perm = torch.from_numpy(np.concatenate([h + rng.permutation(h), rng.permutation(h)]))
        if a.pairs != 'batch':
            # B extra references: with prob. nn_prob one of the nearest opposite-gender faces,
            # else a random opposite-gender face; appended to the batch (same flip as their original)
            ir = opposite_references(rng, io, male, idx_m, idx_f, nbr, a.nn_prob)
            io = np.concatenate([io, ir])
            perm = torch.arange(B, 2 * B)
        x = to_tensor(imgs[io])
        g = torch.from_numpy((~male[io[:B]]).astype(np.int64))  # each original's region
        lm, feather, ring, wmap = lms[g], feathers[g], rings[g], wmaps[g]
        flip = torch.from_numpy(rng.random(B) < 0.5)
        flip = torch.cat([flip, flip[perm - B] if a.pairs != 'batch' else torch.from_numpy(rng.random(len(x) - B) < 0.5)])[:len(x)]
        x[flip] = x[flip].flip(3)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bool(a.bf16)):
            z = E(x)
            zf = lm * z[:B] + (1 - lm) * z[perm]
            y = S(torch.cat([z, zf], 0))
        y = y.float()
        yr, yf = y[:len(x)], y[len(x):]
        l_rec = (yr - x).abs().mean() + (1 - ssim(yr, x))
        xo, xr = x[:B], x[perm]
        with torch.no_grad():
            T = fused_target(xo, xr, feather, ring, a.target_lowpass, a.target_lowpass_mix)
        gx, gy = grads(yf); tx, ty = grads(T)
        l_fus = ((yf - T).abs() * wmap).mean() + (gx - tx).abs().mean() + (gy - ty).abs().mean() \
            + 0.5 * (1 - ssim(yf, T))
        loss = l_rec + a.fused_weight * l_fus
        l_adv = torch.zeros(())
        if D is not None and step - start >= a.adv_warmup:
            l_adv = F.softplus(-critic_logits(D, a.adv_critic, yr.detach(), yf, fused_only=True)).mean()
            loss = loss + a.adv_weight * l_adv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if D is not None:
            # critic: the decoder's own reconstructions (coherent faces with the same texture) vs fused
            # outputs, so it judges composite-ness (seams, patches, proportions), not photo sharpness
            dr, df = critic_logits(D, a.adv_critic, yr.detach(), yf.detach())
            l_d = F.softplus(-dr).mean() + F.softplus(df).mean()
            opt_d.zero_grad(set_to_none=True); l_d.backward(); opt_d.step()
            d_acc = 0.5 * ((dr > 0).float().mean().item() + (df < 0).float().mean().item())
        if step % 50 == 0 or step == a.steps - 1:
            with torch.no_grad():
                mse = ((yr - x) ** 2).mean().item() / 4
            msg = json.dumps({'step': step, 'lr': round(lr, 6), 'rec': round(l_rec.item(), 4),
                              'fus': round(l_fus.item(), 4), 'adv': round(float(l_adv.detach()), 4),
                              'd': round(l_d.item(), 4) if D is not None else None,
                              'd_acc': round(d_acc, 3) if D is not None else None, 'psnr~': round(10 * np.log10(1 / mse), 2),
                              'min': round((time.time() - t0) / 60, 2)})
            print(msg, flush=True); log.write(msg + '\n'); log.flush()
        last = step == a.steps - 1 or (a.stop_at and step + 1 >= a.stop_at)
        if (step + 1) % 500 == 0 or last:
            torch.save({'E': E.state_dict(), 'S': S.state_dict(), 'opt': opt.state_dict(), 'step': step + 1,
                        'D': D.state_dict() if D is not None else None,
                        'args': vars(a)}, os.path.join(a.out, 'ckpt.pt'))
        if last:
            break
    print('done', (time.time() - t0) / 60, 'min')


if __name__ == '__main__':
    main()
