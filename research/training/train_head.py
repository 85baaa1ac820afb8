"""Train the three-way synthesis (issue #21 item 2): the reference's head over the original's background.

The encoder stays the pack's (frozen: the bank's latents stay valid); the decoder becomes
research.models.models.CondSynthesis, which takes, besides the fused latent, the original crop with its head (grown
4 px) blanked and that hole mask. It starts from the pack's decoder (the context branch is zero-initialized, so
step 0 renders what the pack renders) and learns, per step, on B originals and B opposite-gender references (with
prob. --nn_prob one of the 32 most similar around the identity region, else random):

- reconstruction: S(E(x), context(x)) -> x (L1 + (1 - SSIM)): the face back, and the background copied from the
  context outside the hole;
- fusion: S(fused latent, context(original)) -> target
      P_ref(head) * T + (1 - P_ref(head)) * B
  where T is the pack's fused target (the original's identity features, colour-matched, on the reference's head;
  train_ae.fused_target with the 1.6.0 settings) and B the original outside the hole and, inside it, the original
  with the hole inpainted (OpenCV Telea) -- the fill where the original's hair was and the new head is not. B has no
  true pixels inside the hole, so there the loss is on blurred images only (sigma 3 px) at weight --fill_weight:
  colour and shading of the fill are taught, its texture is not; elsewhere L1 + image-gradient L1 + 0.5 (1 - SSIM).
P(head) comes from the pack's segmentation network (research/training/train_seg.py checkpoint), as at run time.

    python research/pack/ckpt_from_pack.py --pack pridss_rt/packs/demo --out runs/ae_from_pack/ckpt.pt
    nice -n 10 python research/training/train_head.py --init runs/ae_from_pack/ckpt.pt --seg runs/seg/seg.pt \\
        --steps 700 --out runs/head

Checkpoints every 100 steps to OUT/ckpt.pt and resumes from it (fixed seed; CPU training is not bit-reproducible).
"""
import argparse, json, os, sys, time
import numpy as np, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from research.models.common import start_training, opposite_references, to_tensor, ssim, pixel_ring_descriptor, \
    opposite_gender_neighbours
from research.models.models import Encoder, CondSynthesis, head_context
from research.training.train_ae import region_masks, fused_target, grads, blur
from research.training.train_seg import SegNet


def p_head(seg, x):
    with torch.no_grad():
        return torch.softmax(seg(x).float(), 1)[:, 1:3].sum(1, keepdim=True)


def telea_fill(x, hole):
    """x [B,3,H,W] network space, hole [B,1,H,W] -> x with the hole inpainted (OpenCV Telea, radius 4)."""
    import cv2
    u8 = ((x.permute(0, 2, 3, 1).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    m = (hole[:, 0].numpy() > 0.5).astype(np.uint8)
    out = np.stack([cv2.inpaint(a, b, 4, cv2.INPAINT_TELEA) if b.any() and not b.all() else a for a, b in zip(u8, m)])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--init', required=True, help='train_ae.py checkpoint (E, S) to start from')
    ap.add_argument('--seg', required=True, help='train_seg.py checkpoint (seg.pt)')
    ap.add_argument('--steps', type=int, default=700)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--region', default='nobrow', help='identity region of the pack (1.6.0: nobrow)')
    ap.add_argument('--feather', type=float, default=4.0)
    ap.add_argument('--fused_weight', type=float, default=1.5)
    ap.add_argument('--target_lowpass', type=float, default=3.0)
    ap.add_argument('--target_lowpass_mix', type=float, default=0.5)
    ap.add_argument('--fill_weight', type=float, default=0.5)
    ap.add_argument('--nn_prob', type=float, default=0.9)
    ap.add_argument('--grow', type=int, default=4, help='px the head hole is grown by (the runtime uses the same)')
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bf16', type=int, default=1)
    ap.add_argument('--out', default='runs/head')
    a = ap.parse_args()
    imgs, meta, male, idx_m, idx_f = start_training(a)
    ck = torch.load(a.init, weights_only=True)
    E = Encoder(); E.load_state_dict(ck['E']); E.eval()
    for p in E.parameters():
        p.requires_grad_(False)
    S = CondSynthesis(); S.base.load_state_dict(ck['S'])
    seg = SegNet(); seg.load_state_dict(torch.load(a.seg, weights_only=True)['net']); seg.eval()
    opt = torch.optim.Adam([p for p in S.parameters()], lr=a.lr, betas=(0.9, 0.99))
    ckpt, start = os.path.join(a.out, 'ckpt.pt'), 0
    if os.path.isfile(ckpt):
        st = torch.load(ckpt, weights_only=True)
        S.load_state_dict(st['S']); opt.load_state_dict(st['opt']); start = st['step']
        print('resumed at step', start, flush=True)
    lms, feathers, rings, wmaps = region_masks([a.region], a.feather)
    lm, feather, ring, wmap = lms[:1], feathers[:1], rings[:1], wmaps[:1]
    rng = np.random.default_rng(a.seed + start)
    nbr = opposite_gender_neighbours(pixel_ring_descriptor(imgs, region=a.region), male, k=32)
    log = open(os.path.join(a.out, 'log.txt'), 'a')
    t0 = time.time()
    for step in range(start, a.steps):
        lr = a.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * step / a.steps))
        for g in opt.param_groups:
            g['lr'] = float(lr)
        B, h = a.batch, a.batch // 2
        io = np.concatenate([rng.choice(idx_m, h), rng.choice(idx_f, h)])
        ir = opposite_references(rng, io, male, idx_m, idx_f, nbr, a.nn_prob)
        x = to_tensor(imgs[np.concatenate([io, ir])])
        flip = torch.from_numpy(rng.random(B) < 0.5).repeat(2)
        x[flip] = x[flip].flip(3)
        xo, xr = x[:B], x[B:]
        ph = p_head(seg, x)
        ho, hr = ph[:B], ph[B:]
        ctx = head_context(xo, ho, a.grow)
        hole = ctx[:, 3:]
        with torch.no_grad():
            z = E(x)
            zf = lm * z[:B] + (1 - lm) * z[B:]
            T = fused_target(xo, xr, feather, ring, a.target_lowpass, a.target_lowpass_mix)
            fill = xo * (1 - hole) + telea_fill(xo, hole) * hole
            tgt = hr * T + (1 - hr) * fill
            known = 1 - hole * (1 - hr)  # 0 where only the inpainted fill is a target
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bool(a.bf16)):
            y = S(torch.cat([z[:B], zf], 0), torch.cat([ctx, ctx], 0))
        y = y.float()
        yr, yf = y[:B], y[B:]
        l_rec = (yr - xo).abs().mean() + (1 - ssim(yr, xo))
        gx, gy = grads(yf); tx, ty = grads(tgt)
        l_fus = ((yf - tgt).abs() * wmap * known).mean() \
            + ((gx - tx).abs() * known[..., :, 1:]).mean() + ((gy - ty).abs() * known[..., 1:, :]).mean() \
            + 0.5 * (1 - ssim(yf * known + tgt * (1 - known), tgt)) \
            + a.fill_weight * ((blur(yf.reshape(-1, 1, 128, 128), 3) - blur(tgt.reshape(-1, 1, 128, 128), 3)).abs()
                               * (1 - known).repeat_interleave(3, 0)).mean() * 4
        loss = l_rec + a.fused_weight * l_fus
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == a.steps - 1:
            msg = json.dumps({'step': step, 'lr': round(lr, 6), 'rec': round(l_rec.item(), 4),
                              'fus': round(l_fus.item(), 4), 'min': round((time.time() - t0) / 60, 2)})
            print(msg, flush=True); log.write(msg + '\n'); log.flush()
        if (step + 1) % 100 == 0 or step == a.steps - 1:
            torch.save({'S': S.state_dict(), 'opt': opt.state_dict(), 'step': step + 1, 'args': vars(a)}, ckpt)
    torch.save({'E': E.state_dict(), 'S': S.state_dict(), 'step': a.steps, 'args': vars(a)},
               os.path.join(a.out, 'final.pt'))
    print('done', round((time.time() - t0) / 60, 2), 'min', flush=True)


if __name__ == '__main__':
    main()
