"""Attackers that learn (``pridss-rt eval --adaptive N``): gender classifiers fitted during the run, on faces of
the manifest's *train* split (identity-disjoint from the evaluated split), and tested on the evaluated faces.

- **adaptive**: per method, a logistic regression on the matcher's embeddings of that method's *outputs* of the
  train faces, with the originals' gender labels: an attacker who can run the anonymizer on labelled faces of
  their own and learns whatever consistent mapping it applies (e.g. "always the opposite gender"). Tested on the
  same method's outputs of the evaluated faces.
- **kept segments**: one logistic regression on the matcher's embeddings of the *original* train faces with
  everything but the inner face (the hull of the 5 landmarks grown by :data:`KEPT_GROW`: eyes, brows, nose,
  mouth) set to mid-grey, tested on every method's outputs under the same mask: what the segments PriDSS keeps
  from the original carry by design.

Both are linear probes on a fixed embedding (no network is trained here, numpy only), so they are a lower bound on
what a learning attacker reaches: a CNN fine-tuned on the outputs (``research/training/train_adaptive.py``) is
stronger. The embedding is the matcher's (the pack's identity embedder, or ``--matcher``); face embeddings carry
gender linearly (the probe reads the originals at AUC ~0.98 with the demo pack's embedder)."""

from __future__ import annotations

import numpy as np

from pridss_rt.eval.data import INNER_GROW, inner_face_mask

KEPT_GROW = INNER_GROW  # the kept segments: the inner face of the audit (5-point hull grown 30 %)
L2 = 1.0  # ridge penalty of the probes (on standardized features; the bias is not penalized)


def kept_only(faces: np.ndarray, lms: np.ndarray, grow: float = KEPT_GROW) -> np.ndarray:
    """Copies of ``faces`` (N, H, W, 3) with everything outside each face's inner-face hull set to 127."""
    out = np.full_like(faces, 127)
    for k, (f, lm) in enumerate(zip(faces, lms)):
        if not np.all(np.isfinite(lm)):
            continue
        m = inner_face_mask(f.shape[:2], lm, grow)
        out[k][m] = f[m]
    return out


class LinearProbe:
    """L2-regularized logistic regression fitted by Newton's method on standardized features."""

    def __init__(self, l2: float = L2, iters: int = 30):
        self.l2, self.iters = float(l2), int(iters)
        self.w = self.mu = self.sd = None
        self.b = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearProbe":
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        if x.ndim != 2 or len(x) != len(y) or len(x) < 2 or len(np.unique(y)) < 2:
            raise ValueError(f"a probe needs features (N, D) and labels of both classes, got {x.shape}, {np.unique(y)}")
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        z = np.concatenate([(x - self.mu) / self.sd, np.ones((len(x), 1))], 1)
        w = np.zeros(z.shape[1])
        pen = np.full(z.shape[1], self.l2)
        pen[-1] = 0.0
        for _ in range(self.iters):
            p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
            g = z.T @ (p - y) + pen * w
            h = (z * (p * (1 - p))[:, None]).T @ z + np.diag(pen + 1e-9)
            step = np.linalg.solve(h, g)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        self.w, self.b = w[:-1], float(w[-1])
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(class 1) of each row."""
        z = (np.asarray(x, np.float64) - self.mu) / self.sd
        return 1.0 / (1.0 + np.exp(-np.clip(z @ self.w + self.b, -30, 30)))
