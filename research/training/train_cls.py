"""Train the demo pack's gender classifier (--task gender) or identity embedder (--task identity).

gender:   BCE on the CelebA 'Male' attribute, train split.
identity: CosFace (s=30, m=0.35) over the 4,635 train identities, 128-d embedding of the central face
          region; augmentations: flip, +-4 px shift, brightness/contrast/saturation jitter, 20% grey.
Usage: nice -n 10 python research/training/train_cls.py --task gender --epochs 4 --out runs/gender
       nice -n 10 python research/training/train_cls.py --task identity --epochs 12 --out runs/identity
"""
import argparse, json, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import seed_all, load_cache, to_tensor
from research.models.models import Gender, Identity


def augment(x, rng, colour=True):
    B = len(x)
    flip = torch.from_numpy(rng.random(B) < 0.5)
    x[flip] = x[flip].flip(3)
    dx, dy = rng.integers(-4, 5, 2)
    x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))
    if colour:
        b = torch.from_numpy(rng.uniform(-0.2, 0.2, (B, 1, 1, 1))).float()
        c = torch.from_numpy(rng.uniform(0.75, 1.25, (B, 1, 1, 1))).float()
        s = torch.from_numpy(rng.uniform(0.6, 1.3, (B, 1, 1, 1))).float()
        g = x.mean(1, keepdim=True)
        x = g + (x - g) * s
        m = x.mean((1, 2, 3), keepdim=True)
        x = (x - m) * c + m + b
        grey = torch.from_numpy(rng.random(B) < 0.2)
        x[grey] = x[grey].mean(1, keepdim=True).expand(-1, 3, -1, -1)
    return x.clamp(-1, 1)


def val_eer(net, seed=0):
    """Verification EER on val identities (all genuine pairs; random impostor pairs), as research/analysis/report.py."""
    from research.models.common import eer, verification_scores
    imgs, meta = load_cache('val')
    net.eval()
    with torch.no_grad():
        e = torch.cat([net(to_tensor(imgs[i:i + 256])) for i in range(0, len(imgs), 256)]).numpy()
    gen, imp, _ = verification_scores(e, meta['identity'], np.random.default_rng(seed))
    return float(eer(gen, imp))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--task', choices=['gender', 'identity'], required=True)
    ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bf16', type=int, default=1)
    ap.add_argument('--out', required=True)
    ap.add_argument('--max_steps', type=int, default=0, help='stop early (smoke tests)')
    ap.add_argument('--val_eer', type=int, default=1, help='identity: verification EER on val after each epoch')
    ap.add_argument('--width', type=int, default=24, help='identity: backbone width (pack 1.x: 24)')
    ap.add_argument('--size', type=int, default=48, help='identity: inner-face input side in px (pack 1.x: 48)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    os.makedirs(a.out, exist_ok=True)
    imgs, meta = load_cache('train')
    rng = np.random.default_rng(a.seed)
    if a.task == 'gender':
        net = Gender()
        y_all = torch.from_numpy(meta['male'].astype(np.float32))
        head = None
    else:
        net = Identity(width=a.width, size=a.size)
        ids, y_np = np.unique(meta['identity'], return_inverse=True)
        y_all = torch.from_numpy(y_np)
        head = nn.Parameter(torch.randn(len(ids), 128) * 0.01)
    net = net.to(memory_format=torch.channels_last)
    params = list(net.parameters()) + ([head] if head is not None else [])
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=5e-4)
    n = len(imgs)
    steps = a.epochs * (n // a.batch)
    log = open(os.path.join(a.out, 'log.txt'), 'a')
    t0 = time.time(); step = 0
    for ep in range(a.epochs):
        order = rng.permutation(n)
        for b in range(n // a.batch):
            lr = a.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * step / steps))
            for g in opt.param_groups:
                g['lr'] = float(lr)
            bi = np.sort(order[b * a.batch:(b + 1) * a.batch])
            x = augment(to_tensor(imgs[bi]), rng, colour=True).contiguous(memory_format=torch.channels_last)
            y = y_all[bi]
            net.train()
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bool(a.bf16)):
                if a.task == 'gender':
                    out = net.logit(x).float().squeeze(1)
                else:
                    out = net(x).float()
            if a.task == 'gender':
                loss = F.binary_cross_entropy_with_logits(out, y)
                acc = ((out > 0).float() == y).float().mean().item()
            else:
                cos = out @ F.normalize(head, dim=1).t()
                logits = 30.0 * (cos - 0.35 * F.one_hot(y, cos.shape[1]))
                loss = F.cross_entropy(logits, y)
                acc = (cos.argmax(1) == y).float().mean().item()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 50 == 0:
                msg = json.dumps({'ep': ep, 'step': step, 'of': steps, 'loss': round(loss.item(), 4),
                                  'acc': round(acc, 3), 'min': round((time.time() - t0) / 60, 2)})
                print(msg, flush=True); log.write(msg + '\n'); log.flush()
            step += 1
            if a.max_steps and step >= a.max_steps:
                break
        torch.save({'net': net.state_dict(), 'epoch': ep + 1, 'args': vars(a)}, os.path.join(a.out, 'ckpt.pt'))
        if a.task == 'identity' and a.val_eer:
            msg = json.dumps({'ep': ep, 'val_eer': round(val_eer(net), 4), 'min': round((time.time() - t0) / 60, 2)})
            print(msg, flush=True); log.write(msg + '\n'); log.flush()
    print('done', (time.time() - t0) / 60, 'min')


if __name__ == '__main__':
    main()
