"""Experiment (issue #21): what bounds the identity and realism bars; `pridss-rt eval` with the host executor patched.

--mode detail --sigma S: inside the original's identity features (the segmentation's identity class, feathered
    2 px), the shown crop's detail above a Gaussian of S px is replaced by the original's (S = 40: the original's
    eyes, nose and lips themselves, mean colour shifted to the synthesized face's). Works with every region.
--mode fill --fill F (with --region head / person): what shows where the old head was and the new one is not:
    ns (OpenCV Navier-Stokes), pyramid (push-pull), generated (the synthesized crop's own background), original
    (the original's pixels: its old hair; a bound, not a method), erode (Telea as shipped, the new head's alpha
    eroded 2 px against halos).
Not product code (the runtime keeps Telea at half resolution, without detail transfer).

    python research/experiments/head_bounds.py --mode detail --sigma 40 -- --data ../shared/data/celebahq/manifest.csv \\
        --split val --limit 600 --seed 0 --baselines none --ablation none --out runs/eval/d40
    python research/experiments/head_bounds.py --mode fill --fill original -- ... --region head --out runs/eval/nofill
"""
import argparse, os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from pridss_rt.cli import main as cli_main  # noqa: E402
from pridss_rt.executors.host import HostExecutor  # noqa: E402
from pridss_rt.stages import blend  # noqa: E402
from pridss_rt.stages.segment import head_probability  # noqa: E402


def detail(generated, original, identity, sigma):
    import cv2
    m = cv2.GaussianBlur((identity > 0.5).astype(np.float32), (0, 0), sigmaX=2.0)[..., None]
    g, o = generated.astype(np.float32), original.astype(np.float32)
    band = (o - cv2.GaussianBlur(o, (0, 0), sigmaX=sigma)) - (g - cv2.GaussianBlur(g, (0, 0), sigmaX=sigma))
    return np.clip(g + m * band + 0.5, 0, 255).astype(np.uint8)


def pyramid_fill(img, hole):
    """Push-pull: known pixels averaged down a pyramid, the hole filled from coarser levels on the way up."""
    import cv2
    known = (hole == 0).astype(np.float32)
    levels, a, w = [], img.astype(np.float32) * known[..., None], known.copy()
    while min(w.shape) > 2:
        levels.append((a, w))
        a = cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA) * 4
        w = cv2.resize(w, (w.shape[1] // 2, w.shape[0] // 2), interpolation=cv2.INTER_AREA) * 4
    est = a / np.maximum(w, 1e-6)[..., None]
    for a, w in reversed(levels):
        up = cv2.resize(est, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
        wc = np.clip(w, 0, 1)[..., None]
        est = np.where(w[..., None] > 1e-6, a / np.maximum(w, 1e-6)[..., None], up) * wc + up * (1 - wc)
    out = img.copy()
    out[hole > 0] = np.clip(est[hole > 0] + 0.5, 0, 255).astype(np.uint8)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mode', choices=['detail', 'fill'], required=True)
    ap.add_argument('--sigma', type=float, default=2.0)
    ap.add_argument('--fill', choices=['ns', 'pyramid', 'generated', 'original', 'erode'], default='ns')
    a, rest = ap.parse_known_args()
    rest = rest[1:] if rest[:1] == ['--'] else rest
    import cv2
    if a.mode == 'detail':
        encode = HostExecutor.encode

        def encode_with_identity(self, fr, mats):
            out = encode(self, fr, mats)
            fr.id_orig = head_probability(self.nets, fr.crops, ('identity',))
            if fr.crops_u8 is None:
                from pridss_rt.stages import align
                fr.crops_u8 = align.to_uint8(fr.crops, self.pack.preprocess)
            return out

        def shown_with_detail(self, fr, rows):  # HostExecutor._shown with the detail after the colour match
            from pridss_rt.stages import align
            out = []
            for g, r in zip(align.to_uint8(fr.images[rows], self.pack.preprocess), rows):
                j = fr.owners[r]
                if self.color_match:
                    g = blend.color_match(g, fr.crops_u8[j], self.mask)
                g = detail(g, fr.crops_u8[j], fr.id_orig[j], a.sigma)
                if self.head and not self.three_way:
                    g = blend.composite_head(g, fr.background[j], fr.head_new[r])
                out.append(g)
            return np.stack(out)

        HostExecutor.encode, HostExecutor._shown = encode_with_identity, shown_with_detail
    else:
        under, composite = blend.background_under, blend.composite_head
        if a.fill in ('ns', 'pyramid', 'original'):
            def background(original, head, grow=0.03, scale=1.0):
                s = original.shape[0]
                r = max(1, int(round(grow * s)))
                m = cv2.dilate((head > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
                if a.fill == 'original' or m.all():
                    return original.copy()
                if a.fill == 'ns':
                    return cv2.inpaint(original, m, max(3, s // 32), cv2.INPAINT_NS)
                return pyramid_fill(original, m)
            blend.background_under = background
        elif a.fill == 'generated':
            blend.composite_head = lambda g, bg, h: g.copy()
        else:
            blend.composite_head = lambda g, bg, h: composite(
                g, bg, cv2.erode(np.clip(h, 0, 1), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))))
    sys.exit(cli_main(['eval'] + rest))


if __name__ == '__main__':
    main()
