"""Shared pieces of the demo-pack training code: data cache, identity-region mask, metrics."""
import os, random
import numpy as np
import torch
import torch.nn.functional as F

from pridss_rt.eval.metrics import eer, roc_auc  # noqa: F401  (re-exported for the research scripts)

CACHE = os.environ.get('PRIDSS_CACHE', '/tmp/celebahq_cache.npz')
RUNS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'runs'))  # <repo>/runs
MEAN, STD = 0.5, 0.5  # (x/255 - 0.5) / 0.5 -> [-1, 1], RGB
GRID = 16  # spatial latent resolution (8 px per cell at 128 px)

# Identity segments as cell rectangles of the 16x16 latent grid (rows, cols inclusive-exclusive),
# placed around the measured 5-point template (eyes ~ (48,60), (80,60); nose ~ (64,79);
# mouth corners ~ (49,93), (79,93) in crop pixels). Symmetric under horizontal flip.
SEGMENTS = {
    'eyes':  [(5, 8, 4, 12)],              # brows + eyes: y 40-64, x 32-96
    'nose':  [(8, 10, 6, 10)],             # y 64-80, x 48-80
    'mouth': [(10, 13, 5, 11)],            # y 80-104, x 40-88
}
CONTEXT = ['skin', 'hair', 'background']  # everything else of the grid + the global style vector
# Alternative identity regions (--region of train_ae.py / pack_variant.py). 'v3' = SEGMENTS (shipped).
# 'nofore': the eyes segment without its top row (y 40-48, forehead above the brows, where fringes and
# hair lie): brows + eyes y 48-64.
REGIONS = {
    'v3': SEGMENTS,
    'nofore': {'eyes': [(6, 8, 4, 12)], 'nose': [(8, 10, 6, 10)], 'mouth': [(10, 13, 5, 11)]},
    # 'nobrow': eyes and the skin just under them (y 56-72) without brows and forehead; the brows (a
    # strong gender cue: shape, thickness, make-up) come from the reference
    'nobrow': {'eyes': [(7, 9, 4, 12)], 'nose': [(9, 10, 6, 10)], 'mouth': [(10, 13, 5, 11)]},
    # 'jaw': nobrow with the two cell rows under the mouth (y 104-120): an open mouth and the chin under it
    # stay with the original (meant for female originals only: a man's beard there would go to his candidates)
    'jaw': {'eyes': [(7, 9, 4, 12)], 'nose': [(9, 10, 6, 10)], 'mouth': [(10, 15, 5, 11)]},
}


def seed_all(seed):
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)


def identity_cells(region='v3'):
    m = np.zeros((GRID, GRID), np.float32)
    for rects in REGIONS[region].values():
        for r0, r1, c0, c1 in rects:
            m[r0:r1, c0:c1] = 1
    return m


def identity_pixel_mask(size=128, region='v3'):
    """Hard identity-region mask in crop pixels (the cell mask upsampled)."""
    m = identity_cells(region)
    k = size // GRID
    return np.kron(m, np.ones((k, k), np.float32))


def load_cache(split=None):
    meta = np.load(CACHE)
    imgs = np.load(CACHE.replace('.npz', '_images.npy'), mmap_mode='r')
    d = {k: meta[k] for k in meta.files}
    if split is not None:
        idx = np.where(d['split'] == (0 if split == 'train' else 1))[0]
        return np.ascontiguousarray(imgs[idx]), {k: v[idx] for k, v in d.items()}
    return np.asarray(imgs), d


def start_training(a):
    """The set-up the trainers share: threads, seeds and the output folder from their arguments (``threads``,
    ``seed``, ``out``), then the train split of the cache. Returns (images, meta, male, male indices, female indices)."""
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    os.makedirs(a.out, exist_ok=True)
    imgs, meta = load_cache('train')
    male = meta['male'].astype(bool)
    return imgs, meta, male, np.where(male)[0], np.where(~male)[0]


def opposite_references(rng, io, male, idx_m, idx_f, nbr, nn_prob):
    """One opposite-gender reference per original ``io``: with probability ``nn_prob`` one of its nearest
    opposite-gender faces (``nbr`` rows), else a random opposite-gender face."""
    B = len(io)
    near = rng.random(B) < nn_prob
    return np.where(near, nbr[io, rng.integers(0, nbr.shape[1], B)],
                    np.where(male[io], rng.choice(idx_f, B), rng.choice(idx_m, B)))


def to_tensor(u8):
    """uint8 [B,H,W,3] RGB -> float normalized [B,3,H,W]."""
    x = torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float()
    return (x / 255.0 - MEAN) / STD


def to_u8(x):
    y = (x.detach().float() * STD + MEAN).clamp(0, 1) * 255.0
    return y.round().byte().permute(0, 2, 3, 1).cpu().numpy()


def _gauss(win=11, sigma=1.5):
    g = torch.arange(win, dtype=torch.float32) - (win - 1) / 2
    g = torch.exp(-g ** 2 / (2 * sigma ** 2)); g = g / g.sum()
    return g


def ssim(x, y, data_range=2.0, per_image=False):
    """SSIM (Gaussian 11x11, sigma 1.5) on normalized tensors in [-1,1], averaged over RGB."""
    C = x.shape[1]
    g = _gauss().to(x)
    wx = g.view(1, 1, 1, -1).repeat(C, 1, 1, 1); wy = g.view(1, 1, -1, 1).repeat(C, 1, 1, 1)
    f = lambda t: F.conv2d(F.conv2d(t, wx, groups=C), wy, groups=C)
    C1, C2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = f(x), f(y)
    sxx = f(x * x) - mx * mx; syy = f(y * y) - my * my; sxy = f(x * y) - mx * my
    s = ((2 * mx * my + C1) * (2 * sxy + C2)) / ((mx * mx + my * my + C1) * (sxx + syy + C2))
    return s.flatten(1).mean(1) if per_image else s.mean()


def psnr_u8(a, b):
    """PSNR in dB per image between uint8 arrays [B,H,W,3]."""
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = d.reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))


# ROC AUC and EER: the runtime's (pridss_rt.eval.metrics), the one copy; imported above


def verification_scores(emb, ident, rng, n_impostor=50000):
    """Cosine scores of L2-normalized embeddings: every same-identity pair (genuine) and n_impostor random
    pairs of different identities (80,000 draws, then filtered). Returns (genuine, impostor, by) with
    by = identity -> indices. Draws from rng exactly as research/analysis/report.py always did."""
    by = {}
    for i, t in enumerate(ident):
        by.setdefault(t, []).append(i)
    gen = [float(emb[ii[u]] @ emb[ii[v]]) for ii in by.values() for u in range(len(ii)) for v in range(u + 1, len(ii))]
    ia, ib = rng.integers(0, len(emb), 80000), rng.integers(0, len(emb), 80000)
    ok = ident[ia] != ident[ib]
    ia, ib = ia[ok][:n_impostor], ib[ok][:n_impostor]
    return gen, (emb[ia] * emb[ib]).sum(1), by


def ring_cells(width=2, region='v3'):
    """Context cells around the identity region (identity cells dilated by `width` cells, minus them)."""
    import cv2
    m = identity_cells(region)
    k = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return (cv2.dilate(m.astype(np.uint8), k).astype(np.float32) - m).clip(0, 1)


def pixel_ring_descriptor(u8, width=2, region='v3'):
    """Pose/skin descriptor of faces for pairing: the 16x16 RGB thumbnail on the ring cells, centred and
    L2-normalised (uint8 [B,128,128,3] -> float32 [B, D])."""
    r = ring_cells(width, region).astype(bool)
    x = u8.reshape(len(u8), GRID, 128 // GRID, GRID, 128 // GRID, 3).mean((2, 4)).astype(np.float32) / 255.0
    d = x[:, r, :].reshape(len(u8), -1)
    d = d - d.mean(1, keepdims=True)
    return d / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-6)


def opposite_gender_neighbours(desc, male, k=32, chunk=2048):
    """For each row, indices of the k most similar rows of the opposite gender."""
    out = np.zeros((len(desc), k), np.int64)
    for g in (True, False):
        q = np.where(male == g)[0]; pool = np.where(male != g)[0]
        P = desc[pool].T
        for i in range(0, len(q), chunk):
            s = desc[q[i:i + chunk]] @ P
            top = np.argpartition(-s, k, axis=1)[:, :k]
            out[q[i:i + chunk]] = pool[top]
    return out
