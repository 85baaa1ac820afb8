"""Train an *independent* gender attacker for `pridss-rt eval --attacker-gender`.

The demo pack's own gender classifier also scores PriDSS's candidates, so measuring privacy with it
flatters the result. This attacker shares nothing with the pack but the training split: another
architecture (residual net with global pooling at 112 px instead of the pack's plain CNN at 48 px),
another seed, another loss (2-class softmax cross-entropy with label smoothing), stronger
augmentation (flip, shift, scale, colour, grey, blur and noise, so that it does not depend on the
sharpness of real photos), and a 2-class softmax output like many published gender nets.

It is never shipped in the pack; it is an evaluation tool. CelebA-HQ licence applies (non-commercial
research). Output: OUT/attacker_gender.onnx (input (N,3,112,112) RGB, (x/255-0.5)/0.5; output (N,2)
softmax, column 1 = male) and OUT/report.json (val accuracy and AUC on the original faces).

Usage: nice -n 10 python research/training/train_attacker.py --epochs 3 --out runs/attacker
       pridss-rt eval ... --attacker-gender runs/attacker/attacker_gender.onnx --external-preprocess 0.5,0.5,rgb
"""
import argparse, json, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import seed_all, load_cache, to_tensor, roc_auc

SIZE = 112


class Block(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.c1 = nn.Conv2d(i, o, 3, s, 1, bias=False); self.b1 = nn.BatchNorm2d(o)
        self.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); self.b2 = nn.BatchNorm2d(o)
        self.sk = None if (i == o and s == 1) else nn.Sequential(nn.Conv2d(i, o, 1, s, bias=False), nn.BatchNorm2d(o))

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = self.b2(self.c2(h))
        return F.relu(h + (x if self.sk is None else self.sk(x)))


class Attacker(nn.Module):
    """(N,3,112,112) -> (N,2) logits; ``forward_softmax`` ends in Softmax for the ONNX export."""
    def __init__(self, w=24):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, w, 5, 2, 2, bias=False), nn.BatchNorm2d(w), nn.ReLU())  # 56
        self.body = nn.Sequential(Block(w, w, 1), Block(w, 2 * w, 2), Block(2 * w, 2 * w, 1),          # 28
                                  Block(2 * w, 4 * w, 2), Block(4 * w, 4 * w, 1),                      # 14
                                  Block(4 * w, 8 * w, 2))                                              # 7
        self.fc = nn.Linear(8 * w, 2)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        h = self.body(self.stem(x))
        return self.fc(self.drop(h.mean((2, 3))))


class Exported(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), 1)


def augment(x, rng):
    B = len(x)
    flip = torch.from_numpy(rng.random(B) < 0.5)
    x[flip] = x[flip].flip(3)
    # random scale 0.9-1.1 and shift +-6 px (one affine per batch half keeps it cheap)
    theta = torch.zeros(B, 2, 3)
    sc = torch.from_numpy(rng.uniform(0.9, 1.1, B)).float()
    theta[:, 0, 0] = sc; theta[:, 1, 1] = sc
    theta[:, :, 2] = torch.from_numpy(rng.uniform(-0.1, 0.1, (B, 2))).float()
    x = F.grid_sample(x, F.affine_grid(theta, (B, 3, SIZE, SIZE), align_corners=False),
                      padding_mode='border', align_corners=False)
    b = torch.from_numpy(rng.uniform(-0.2, 0.2, (B, 1, 1, 1))).float()
    c = torch.from_numpy(rng.uniform(0.7, 1.3, (B, 1, 1, 1))).float()
    s = torch.from_numpy(rng.uniform(0.5, 1.4, (B, 1, 1, 1))).float()
    g = x.mean(1, keepdim=True)
    x = g + (x - g) * s
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * c + m + b
    grey = torch.from_numpy(rng.random(B) < 0.15)
    x[grey] = x[grey].mean(1, keepdim=True).expand(-1, 3, -1, -1)
    blur = torch.from_numpy(rng.random(B) < 0.3)
    if blur.any():
        k = torch.tensor([1., 4., 6., 4., 1.]); k = (k[:, None] * k[None]) / 256
        x[blur] = F.conv2d(F.pad(x[blur], (2, 2, 2, 2), mode='replicate'), k.expand(3, 1, 5, 5), groups=3)
    noise = torch.from_numpy(rng.random(B) < 0.3)
    if noise.any():
        x[noise] = x[noise] + 0.04 * torch.randn_like(x[noise])
    return x.clamp(-1, 1)


def prep(u8):
    return F.interpolate(to_tensor(u8), size=(SIZE, SIZE), mode='bilinear', align_corners=False, antialias=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch', type=int, default=96)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--seed', type=int, default=11)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bf16', type=int, default=1)
    ap.add_argument('--out', default='runs/attacker')
    ap.add_argument('--max_steps', type=int, default=0, help='stop early (smoke tests)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    os.makedirs(a.out, exist_ok=True)
    imgs, meta = load_cache('train')
    y_all = torch.from_numpy(meta['male'].astype(np.int64))
    rng = np.random.default_rng(a.seed)
    net = Attacker().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-3)
    n = len(imgs); per = n // a.batch; steps = a.epochs * per
    log = open(os.path.join(a.out, 'log.txt'), 'a')
    t0 = time.time(); step = 0
    for ep in range(a.epochs):
        order = rng.permutation(n)
        for b in range(per):
            lr = a.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * step / steps))
            for g in opt.param_groups:
                g['lr'] = float(lr)
            bi = np.sort(order[b * a.batch:(b + 1) * a.batch])
            x = augment(prep(imgs[bi]), rng).contiguous(memory_format=torch.channels_last)
            y = y_all[bi]
            net.train()
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bool(a.bf16)):
                out = net(x).float()
            loss = F.cross_entropy(out, y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            if step % 50 == 0:
                msg = json.dumps({'ep': ep, 'step': step, 'of': steps, 'loss': round(loss.item(), 4),
                                  'acc': round((out.argmax(1) == y).float().mean().item(), 3),
                                  'min': round((time.time() - t0) / 60, 2)})
                print(msg, flush=True); log.write(msg + '\n'); log.flush()
            step += 1
            if a.max_steps and step >= a.max_steps:
                break
        if a.max_steps and step >= a.max_steps:
            break
    net.eval()
    torch.save({'net': net.state_dict(), 'args': vars(a)}, os.path.join(a.out, 'ckpt.pt'))
    # val: accuracy and AUC on the original (untouched) val faces
    vimgs, vmeta = load_cache('val')
    ps = []
    with torch.no_grad():
        for i in range(0, len(vimgs), 256):
            ps.append(torch.softmax(net(prep(vimgs[i:i + 256])), 1)[:, 1].numpy())
    p = np.concatenate(ps); yv = vmeta['male'].astype(int)
    rep = {'val_faces': int(len(p)), 'accuracy': float(((p > 0.5) == yv).mean()), 'auc': float(roc_auc(p, yv)),
           'minutes': round((time.time() - t0) / 60, 2), 'args': vars(a)}
    # ONNX: dynamic batch, softmax at the end; parity vs PyTorch checked
    path = os.path.join(a.out, 'attacker_gender.onnx')
    ex = Exported(net).eval()
    x = prep(vimgs[:4])
    torch.onnx.export(ex, (x,), path, input_names=['image'], output_names=['p'], dynamo=False,
                      dynamic_axes={'image': {0: 'n'}, 'p': {0: 'n'}}, opset_version=17)
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = a.threads
    got = ort.InferenceSession(path, so, providers=['CPUExecutionProvider']).run(None, {'image': x.numpy()})[0]
    with torch.no_grad():
        want = ex(x).numpy()
    rep['onnx_max_abs_err'] = float(np.abs(got - want).max())
    assert rep['onnx_max_abs_err'] < 1e-4, rep
    json.dump(rep, open(os.path.join(a.out, 'report.json'), 'w'), indent=1)
    print(json.dumps(rep))


if __name__ == '__main__':
    main()
