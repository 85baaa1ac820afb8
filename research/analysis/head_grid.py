"""Fresh val faces side by side through several packs, in the eval's frames (issue #21 item 7: the look).

    python research/analysis/head_grid.py --packs pridss_rt/packs/demo,runs/pack_170h,runs/pack_170 --seed 31 \\
        --out runs/head_grid_s31.png
    python research/analysis/head_grid.py --packs demo,demo:head:opposite,demo:head --seed 51 --out runs/head_grid_s51.png

Draws 12 men and 12 women of the val split with np.random.default_rng(SEED) (faces never judged before: pick a
seed no earlier look used; records/log.md names the ones used), places each in a 288x288 mid-grey frame (the
`pridss-rt eval` geometry), runs each pack's Anonymizer (no tracking) and writes one row per face: original | each
pack's output. Prints the cache indices and statuses. Made of CelebA-HQ faces: not for the repo.
"""
import argparse, os, sys
import numpy as np, cv2
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from research.models.common import load_cache  # noqa: E402
from pridss_rt import Anonymizer, BlendConfig, SearchConfig  # noqa: E402
from pridss_rt.eval.data import Placement  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--packs', required=True,
                    help='comma-separated PACK[:REGION[:REFERENCE_GENDER]] (pack name or folder; region face|head; '
                         'opposite|random|both; default: the pack\'s)')
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--per_gender', type=int, default=12)
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    imgs, meta = load_cache('val')
    male = meta['male'].astype(bool)
    rng = np.random.default_rng(a.seed)
    sel = np.concatenate([rng.choice(np.where(male)[0], a.per_gender, replace=False),
                          rng.choice(np.where(~male)[0], a.per_gender, replace=False)])
    pl = Placement.make(288, 1.5)
    faces = [np.ascontiguousarray(imgs[i][:, :, ::-1]) for i in sel]  # RGB cache -> BGR
    cols = [faces]
    for spec in a.packs.split(','):
        p, region, gender = (spec.split(':') + [None, None])[:3]
        with Anonymizer(p, tracking=False, threads=a.threads, blend=BlendConfig(region=region or None),
                        search=SearchConfig(reference_gender=gender or None)) as an:
            outs, st = [], []
            for f in faces:
                o, res = an.process(pl.frame(f))
                outs.append(pl.crop(o)); st.append(res[0].status if res else 'none')
        cols.append(outs)
        print(spec, ' '.join(st))
    sep = lambda t: np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255)  # noqa: E731
    rows = [np.concatenate([sep(c[r]) for c in cols], 1) for r in range(len(faces))]
    half = len(rows) // 2
    grid = np.concatenate([np.concatenate(rows[:half], 0), np.full((half * 132, 12, 3), 255, np.uint8),
                           np.concatenate(rows[half:], 0)], 1)
    cv2.imwrite(a.out, grid)
    print('indices', sel.tolist())
    print('grid (not for the repo: CelebA-HQ faces):', a.out)


if __name__ == '__main__':
    main()
