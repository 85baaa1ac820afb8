"""The pack's segmentation network: aligned crop -> per-pixel logits of background / head / identity / body.

Trained on the labels of research/data/label_segments.py (mediapipe's selfie segmentation + face mesh, training
time only); the runtime runs this network, never mediapipe. Input: the pack's network space (RGB, (x/255 - 0.5) /
0.5, [B, 3, 128, 128]); output `logits` [B, 4, 128, 128] (classes in research/data/label_segments.CLASSES order).

    python research/training/train_seg.py --train runs/segments_train.npz --val runs/segments_val.npz \\
        --out runs/seg --steps 900

Checkpoints every 100 steps to OUT/seg.pt (resumes from it), fixed seed; writes OUT/segmentation.onnx and
OUT/seg_report.json (per-class IoU on the val labels, head-mask IoU = head + identity against the same union).
"""
import argparse, json, os, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from research.models.common import CACHE, seed_all  # noqa: E402

N_CLASSES = 4


def block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SegNet(nn.Module):
    """A small U-Net working at half resolution (64 -> 32 -> 16 with dilated context, and back), logits upsampled
    to the crop size at the end: the blend feathers the head mask anyway, and the runtime runs it on 1 + K crops
    per search and 2 per tracked frame."""

    def __init__(self, w=16):
        super().__init__()
        self.e1 = nn.Sequential(block(3, w, 2), block(w, w))                  # 64
        self.e2 = nn.Sequential(block(w, 2 * w, 2), block(2 * w, 2 * w))      # 32
        self.e3 = nn.Sequential(block(2 * w, 4 * w, 2),                       # 16, wide receptive field
                                nn.Conv2d(4 * w, 4 * w, 3, 1, 2, dilation=2, bias=False), nn.BatchNorm2d(4 * w),
                                nn.ReLU(inplace=True),
                                nn.Conv2d(4 * w, 4 * w, 3, 1, 4, dilation=4, bias=False), nn.BatchNorm2d(4 * w),
                                nn.ReLU(inplace=True))
        self.d2 = block(6 * w, 2 * w)
        self.d1 = block(3 * w, w)
        self.head = nn.Conv2d(w, N_CLASSES, 1)

    def forward(self, x):
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        d2 = self.d2(torch.cat([F.interpolate(e3, scale_factor=2.0, mode='nearest'), e2], 1))
        d1 = self.d1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode='nearest'), e1], 1))
        return F.interpolate(self.head(d1), scale_factor=2.0, mode='bilinear', align_corners=False)


def to_net(u8_rgb):
    return torch.from_numpy(np.ascontiguousarray(u8_rgb)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def iou_report(pred, lab):
    out = {}
    for c, name in enumerate(('background', 'head', 'identity', 'body')):
        inter = np.logical_and(pred == c, lab == c).sum()
        union = np.logical_or(pred == c, lab == c).sum()
        out[name] = float(inter / max(union, 1))
    hp, hl = np.isin(pred, (1, 2)), np.isin(lab, (1, 2))
    out['head_mask'] = float(np.logical_and(hp, hl).sum() / max(np.logical_or(hp, hl).sum(), 1))
    out['pixel_accuracy'] = float((pred == lab).mean())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--train', required=True)
    ap.add_argument('--val', required=True)
    ap.add_argument('--cache', default=CACHE)
    ap.add_argument('--out', required=True)
    ap.add_argument('--steps', type=int, default=900)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--width', type=int, default=16)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    os.makedirs(a.out, exist_ok=True)
    imgs = np.load(a.cache.replace('.npz', '_images.npy'), mmap_mode='r')
    tr, va = np.load(a.train), np.load(a.val)
    ti, tl = tr['index'][tr['ok']], tr['labels'][tr['ok']]
    vi, vl = va['index'][va['ok']], va['labels'][va['ok']]
    timgs, vimgs = np.asarray(imgs[ti]), np.asarray(imgs[vi])
    print(f'train {len(ti)} crops, val {len(vi)}', flush=True)
    net = SegNet(a.width)
    print(f'{sum(p.numel() for p in net.parameters())} parameters', flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.steps, pct_start=0.1)
    ckpt, step = os.path.join(a.out, 'seg.pt'), 0
    if os.path.isfile(ckpt):
        st = torch.load(ckpt, weights_only=True)
        net.load_state_dict(st['net']); opt.load_state_dict(st['opt']); sched.load_state_dict(st['sched'])
        step = int(st['step'])
        print(f'resumed at step {step}', flush=True)
    rng = np.random.default_rng(a.seed + step)
    t0 = time.time()
    net.train()
    while step < a.steps:
        b = rng.choice(len(ti), a.batch, replace=False)
        x, y = to_net(timgs[b]), torch.from_numpy(tl[b].astype(np.int64))
        flip = torch.from_numpy(rng.random(a.batch) < 0.5)
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        x = x * (0.8 + 0.4 * torch.rand(a.batch, 1, 1, 1)) + 0.2 * (torch.rand(a.batch, 3, 1, 1) - 0.5)  # light jitter
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        step += 1
        if step % 50 == 0:
            print(f'step {step} loss {loss.item():.4f} {time.time() - t0:.0f} s', flush=True)
        if step % 100 == 0 or step == a.steps:
            torch.save({'net': net.state_dict(), 'opt': opt.state_dict(), 'sched': sched.state_dict(), 'step': step}, ckpt)
    net.eval()
    with torch.no_grad():
        pred = np.concatenate([net(to_net(vimgs[i:i + 64])).argmax(1).numpy() for i in range(0, len(vi), 64)])
    rep = iou_report(pred, vl)
    rep.update(parameters=sum(p.numel() for p in net.parameters()), steps=a.steps, train_crops=int(len(ti)),
               val_crops=int(len(vi)))
    print(json.dumps(rep, indent=1), flush=True)
    json.dump(rep, open(os.path.join(a.out, 'seg_report.json'), 'w'), indent=1)
    onnx_path = os.path.join(a.out, 'segmentation.onnx')
    torch.onnx.export(net, torch.zeros(1, 3, 128, 128), onnx_path, input_names=['image'], output_names=['logits'],
                      dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=17, dynamo=False)
    import onnxruntime as ort
    s = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    x = to_net(vimgs[:8])
    with torch.no_grad():
        ref = net(x).numpy()
    got = s.run(None, {'image': x.numpy()})[0]
    print(f'{onnx_path}: ONNX vs PyTorch max |diff| {np.abs(got - ref).max():.2e}', flush=True)


if __name__ == '__main__':
    main()
