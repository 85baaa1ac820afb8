"""Paired look at a change of the K-candidate choice: PIC + w0 * P(composite) (--base_weight, 0: PIC alone) vs
PIC + w * P(composite) of a coherence critic (research/training/train_critic.py), on the val faces whose chosen candidate changes.

    python research/experiments/paired_choice.py --critic runs/critic_w16/coherence.onnx --weight 1.0 --n 200 \
        --out runs/paired_w16.png

Prints how many of the n faces (half men, half women, drawn with --seed) change their choice and writes
up to 12 men and 12 women of them as original | the --base_weight choice | the --weight choice, each candidate labelled
"P(male) SIM P(composite)" (--blind: no labels, random order, the key in a file). Made of CelebA-HQ faces: not for the repo. Judge each pair by eye.
"""
import argparse, json, os, sys
import numpy as np, cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.experiments.paired_packs import Loop, val_faces  # noqa: E402
from research.analysis.report import norm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--critic', required=True)
    ap.add_argument('--weight', type=float, default=1.0)
    ap.add_argument('--base_weight', type=float, default=0.0,
                    help='the choice compared against: PIC + base_weight x P(composite) (0: PIC alone)')
    ap.add_argument('--n', type=int, default=200)
    ap.add_argument('--k', type=int, default=5)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--landmarks', default='runs/landmarks_val.npy', help='research/data/crop_landmarks.py --split val')
    ap.add_argument('--out', default='runs/paired.png')
    ap.add_argument('--blind', default='', help='write the grid without labels, each pair in random order, and '
                    'the order (1 = the critic\'s choice is on the left) to this JSON file for after the judging')
    a = ap.parse_args()
    loop = Loop(a.pack, a.k, weight=0.0, critic=a.critic)
    imgs, male, lm, rng, sel = val_faces(a.n, a.seed, a.landmarks)
    tiles, changed, order = [], 0, []
    for i in sel:
        cu8, pm, sim, pc, _ = loop.candidates(norm(imgs[i][None]), lm[i])
        j0 = int(np.argmin(loop.score(pm, sim, pc, a.base_weight)))
        j1 = int(np.argmin(loop.score(pm, sim, pc, a.weight)))
        if j0 == j1:
            continue
        changed += 1
        row = [imgs[i]]
        swap = bool(a.blind) and rng.random() < 0.5
        for j in ((j1, j0) if swap else (j0, j1)):
            t = cu8[j].copy()
            if not a.blind:
                cv2.putText(t, f'{pm[j]:.2f} {sim[j]:.2f} {pc[j]:.2f}', (2, 124), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                            (255, 255, 0), 1)
            row.append(t)
        order.append((bool(male[i]), int(swap)))
        tiles.append((male[i], np.concatenate(row, 1)))
    print(f'{changed} of {len(sel)} faces change their choice at weight {a.weight:g} (vs {a.base_weight:g})')
    tiles = [t for m, t in tiles if m][:12] + [t for m, t in tiles if not m][:12]  # men, then women
    if a.blind:
        key = [o for m, o in order if m][:12] + [o for m, o in order if not m][:12]
        json.dump({'critic_on_left': key, 'note': 'tile order: rows of 4, left to right'}, open(a.blind, 'w'))
    if not tiles:
        return
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    sep = lambda t: np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255)
    rows = [np.concatenate([sep(t) for t in tiles[r:r + 4]], 1) for r in range(0, len(tiles), 4)]
    cv2.imwrite(a.out, np.concatenate(rows, 0)[:, :, ::-1])
    print('grid (not for the repo: CelebA-HQ faces):', a.out)


if __name__ == '__main__':
    main()
