"""The faces of a report.py grid as the product shows them: each val crop placed in a frame (the geometry of
`pridss-rt eval`: upscaled 1.5x into a 288x288 mid-grey canvas), run through `pridss_rt.Anonymizer` (detector,
alignment, K-candidate search, colour match, face-mask blend; no tracking), and cut back out.

    python research/analysis/frame_grid.py --pack pridss_rt/packs/demo --seed 8 --out runs/frames_160_s8.png

Same faces, in the same order, as `research/analysis/report.py --n 48 --seed S --grid ...` (12 men, then 12 women); each tile
is original | frame output. Prints each face's status ('none': the detector found no face, the frame is
unchanged). Made of CelebA-HQ faces: not for the repo.
"""
import argparse, os, sys
import numpy as np, cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import load_cache, verification_scores  # noqa: E402
from research.analysis.report import sess, norm, l2n  # noqa: E402
from pridss_rt import Anonymizer  # noqa: E402
from pridss_rt.eval.data import Placement  # noqa: E402  (the eval protocol's frame geometry)


def report_selection(n, seed, imgs, meta, identity_onnx):
    """The val indices research/analysis/report.py --n n --seed seed draws (its generator first feeds the embedder's
    verification pairs, then draws n/2 men and n/2 women)."""
    male = meta['male'].astype(bool)
    rng = np.random.default_rng(seed)
    idn = sess(identity_onnx)
    emb = np.concatenate([l2n(idn(norm(imgs[i:i + 256]))) for i in range(0, len(imgs), 256)])
    verification_scores(emb, meta['identity'], rng)
    return np.concatenate([rng.choice(np.where(male)[0], n // 2, replace=False),
                           rng.choice(np.where(~male)[0], n - n // 2, replace=False)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--n', type=int, default=48, help='report.py --n of the grid to match')
    ap.add_argument('--seed', type=int, default=8)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    imgs, meta = load_cache('val')
    with Anonymizer(a.pack, tracking=False) as an:
        sel = report_selection(a.n, a.seed, imgs, meta, str(an.pack.root / an.pack.network('identity').file))
        h = a.n // 2
        pl, tiles, status = Placement.make(288, 1.5), [], []
        for i in list(range(12)) + list(range(h, h + 12)):
            face = np.ascontiguousarray(imgs[sel[i]][:, :, ::-1])  # RGB cache -> BGR
            out, faces = an.process(pl.frame(face))
            status.append(faces[0].status if faces else 'none')
            tiles.append(np.concatenate([face, pl.crop(out)], 1))
    sep = lambda t: np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255)
    rows = [np.concatenate([sep(t) for t in tiles[r:r + 6]], 1) for r in range(0, len(tiles), 6)]
    cv2.imwrite(a.out, np.concatenate(rows, 0))
    print(' '.join(status))
    print('grid (not for the repo: CelebA-HQ faces):', a.out)


if __name__ == '__main__':
    main()
