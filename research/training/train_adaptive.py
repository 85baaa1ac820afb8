"""Attackers that learn (issue #21 item 6): an *adaptive* gender attacker trained on anonymized outputs, and a
*kept-segments* attacker that sees the eyes, nose and mouth only; next to the fixed independent attacker.

Input: the faces `pridss-rt eval --save-faces` writes (OUT/faces/METHOD.npz: 128-px face squares cut from the
frames, as every attacker of the eval sees them), once on train-split faces and once on val faces:

    pridss-rt eval --data ../shared/data/celebahq/manifest.csv --split train --limit 2000 --save-faces \\
        --out runs/eval_train_160 ...
    pridss-rt eval --data ../shared/data/celebahq/manifest.csv --split val --limit 600 --save-faces \\
        --out runs/eval_val_160 ...
    python research/training/train_adaptive.py --train runs/eval_train_160 --test runs/eval_val_160 \\
        --init runs/attacker/ckpt.pt --out runs/adaptive_160

Per method found in both folders:
- adaptive: the independent attacker (research/training/train_attacker.py, --init) fine-tuned on that method's
  anonymized train faces with the originals' labels (what an attacker who can run the anonymizer on labelled
  faces of their own would do; it learns any consistent mapping, e.g. "always the opposite gender"), tested on the
  same method's val outputs;
- kept-segments: one attacker trained (from --init too) on the original train faces with everything but the
  eyes, nose and mouth set to grey (a fixed mask: where the segmentation labels put the identity class in at
  least 30 % of the train crops, grown 3 px), tested on each method's val outputs under the same mask: what the
  kept segments carry by design;
- independent: --init as it is.
Each gives AUC and flip-aware AUC (max(AUC, 1 - AUC)); OUT gets report.json, report.md, roc_<attacker>.png and
hist_<attacker>.png (P(male) of men and women per method). Identities of train and val are disjoint (the split).
CelebA-HQ licence applies (non-commercial research).
"""
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from research.models.common import seed_all
from research.training.train_attacker import Attacker, augment, SIZE
from pridss_rt.eval import metrics
from pridss_rt.eval.figures import plot_curves, plot_histograms


def load(folder, method):
    d = np.load(Path(folder) / 'faces' / f'{method}.npz', allow_pickle=False)
    return d['faces'][..., ::-1].copy(), d['male'].astype(np.int64)  # BGR -> RGB (the attacker's order)


def prep(u8, mask=None):
    x = torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if mask is not None:
        x = x * mask
    return F.interpolate(x, size=(SIZE, SIZE), mode='bilinear', align_corners=False, antialias=True)


def kept_mask(labels_path, share=0.3, grow=3):
    if not labels_path:  # no segment labels: the inner face of the pack template's 5 points (as pridss-rt eval)
        from pridss_rt.eval.learners import kept_only
        from pridss_rt.pack import load_pack
        pre = load_pack('demo').preprocess
        tpl = np.asarray(pre.template, np.float64) * (128 / pre.crop_size)
        m = kept_only(np.full((1, 128, 128, 3), 255, np.uint8), tpl[None])[0, :, :, 0] == 255
        return torch.from_numpy(m.astype(np.float32))[None]
    m = (lab == 2).mean(0) >= share  # class 2 = identity (eyes, nose, lips) in label_segments.CLASSES
    t = torch.from_numpy(m.astype(np.float32))[None, None]
    return F.max_pool2d(t, 2 * grow + 1, 1, grow)[0]  # [1, 128, 128]


def predict(net, u8, mask=None):
    net.eval()
    with torch.no_grad():
        return np.concatenate([torch.softmax(net(prep(u8[i:i + 128], mask)), 1)[:, 1].numpy()
                               for i in range(0, len(u8), 128)])


def fine_tune(init, faces, y, epochs, lr, seed, bf16, mask=None):
    seed_all(seed)
    net = Attacker()
    net.load_state_dict(torch.load(init, weights_only=True)['net'])
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    rng = np.random.default_rng(seed)
    bs = 64
    per = max(1, len(faces) // bs)
    steps = epochs * per
    yt = torch.from_numpy(y)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(faces))
        for b in range(per):
            for g in opt.param_groups:
                g['lr'] = float(lr * 0.5 * (1 + np.cos(np.pi * step / steps)))
            bi = np.sort(order[b * bs:(b + 1) * bs])
            x = augment(prep(faces[bi], mask), rng)
            if mask is not None:  # augmentation must not bring back what the mask took away
                x = x * F.interpolate(mask[None], size=(SIZE, SIZE), mode='bilinear', align_corners=False)[0]
            net.train()
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bool(bf16)):
                out = net(x.contiguous(memory_format=torch.channels_last)).float()
            loss = F.cross_entropy(out, yt[bi], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            step += 1
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--train', required=True, help='eval output folder (with faces/) on train-split faces')
    ap.add_argument('--test', required=True, help='eval output folder (with faces/) on val faces')
    ap.add_argument('--init', required=True, help='train_attacker.py checkpoint (ckpt.pt)')
    ap.add_argument('--labels', default='runs/segments_train.npz', help="label_segments.py labels (kept-segments mask); '' = the template's 5-point inner face (pridss-rt eval's)")
    ap.add_argument('--methods', default='', help='comma-separated (default: every method in both folders)')
    ap.add_argument('--epochs', type=int, default=6)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--seed', type=int, default=13)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bf16', type=int, default=1)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    have = lambda d: {p.stem for p in (Path(d) / 'faces').glob('*.npz')}
    methods = [m for m in a.methods.split(',') if m] or sorted(have(a.train) & have(a.test), key=lambda m: (m != 'original', m))
    t0 = time.time()
    indep = Attacker(); indep.load_state_dict(torch.load(a.init, weights_only=True)['net'])
    mask = kept_mask(a.labels)
    xtr_o, ytr_o = load(a.train, 'original')
    kept = fine_tune(a.init, xtr_o, ytr_o, a.epochs, a.lr, a.seed, a.bf16, mask)
    rows, p_all = {}, {'adaptive': {}, 'kept_segments': {}, 'independent': {}}
    for m in methods:
        xtr, ytr = load(a.train, m)
        xte, yte = load(a.test, m)
        adaptive = fine_tune(a.init, xtr, ytr, a.epochs, a.lr, a.seed, a.bf16)
        ps = {'adaptive': predict(adaptive, xte), 'kept_segments': predict(kept, xte, mask),
              'independent': predict(indep, xte)}
        rows[m] = {'train_faces': int(len(xtr)), 'test_faces': int(len(xte))}
        for k, p in ps.items():
            auc = metrics.roc_auc(p, yte)
            rows[m][k] = {'auc': round(float(auc), 4), 'flip_aware_auc': round(float(max(auc, 1 - auc)), 4)}
            p_all[k][m] = (p, yte)
        print(m, json.dumps(rows[m]), f'{(time.time() - t0) / 60:.1f} min', flush=True)
    for k, per in p_all.items():
        curves = []
        for m, (p, y) in per.items():
            fpr, tpr, _ = metrics.roc_curve(p, y)
            curves.append((f'{m} {rows[m][k]["auc"]:.3f}', fpr, tpr))
        plot_curves(out / f'roc_{k}.png', curves, f'{k} attacker: gender ROC (legend: AUC)', 'false-positive rate',
                    'true-positive rate', diagonal=True)
        plot_histograms(out / f'hist_{k}.png', [(m, p[y == 1], p[y == 0]) for m, (p, y) in per.items()],
                        f'{k} attacker: P(male) of men (blue) and women (red)')
    rep = {'methods': rows, 'train': a.train, 'test': a.test, 'init': a.init, 'epochs': a.epochs, 'lr': a.lr,
           'seed': a.seed, 'kept_mask_share': round(float(mask.mean()), 4), 'minutes': round((time.time() - t0) / 60, 2)}
    json.dump(rep, open(out / 'report.json', 'w'), indent=1)
    lines = ['| method | adaptive AUC (flip-aware) | kept-segments AUC (flip-aware) | independent AUC (flip-aware) |',
             '|---|---|---|---|']
    for m, r in rows.items():
        lines.append(f'| {m} | ' + ' | '.join(f'{r[k]["auc"]:.3f} ({r[k]["flip_aware_auc"]:.3f})'
                                                for k in ('adaptive', 'kept_segments', 'independent')) + ' |')
    (out / 'report.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
