"""Evaluation metrics, pure numpy: ROC AUC, verification error rates (EER, FNMR at a fixed FMR) and the
Fréchet distance between two feature sets (FID when the features come from Inception).

Conventions
-----------
- Classification (gender): ``scores`` are P(male) (any monotone score works), ``labels`` are 1 = male.
  AUC is the Mann–Whitney statistic: the probability that a random positive scores higher than a random
  negative, ties counted one half. 0.5 = chance; well below 0.5 means the attacker is systematically
  wrong (a flipped gender), which a knowing attacker could invert: see :func:`flip_aware_auc`.
- Verification: similarity scores, higher = more likely the same identity; a pair is accepted when
  ``score >= threshold``. FMR(t) = share of impostor scores accepted, FNMR(t) = share of genuine scores
  rejected. The operating points are evaluated at every distinct score (plus +inf), which gives the
  empirical DET curve from (FMR, FNMR) = (1, 0) to (0, 1).
- Interpolation: EER and FNMR@FMR are read on the piecewise-linear curve through consecutive operating
  points (linear interpolation in (FMR, FNMR) between the two thresholds that bracket the target).
  ``fnmr_at_fmr(..., interpolate=False)`` instead returns the FNMR of the lowest threshold whose FMR is
  <= the target (the conservative, achievable operating point).
"""

from __future__ import annotations

import numpy as np

__all__ = ["roc_auc", "flip_aware_auc", "roc_curve", "det_curve", "eer", "fnmr_at_fmr",
           "feature_stats", "frechet_distance", "fid_from_features", "FrechetReference", "sqrtm_psd",
           "changed_band", "boundary_ratio"]


def _as_1d(x, name: str) -> np.ndarray:
    a = np.asarray(x, np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    return a


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve (Mann–Whitney U / (n_pos · n_neg)), ties counted 1/2."""
    s = _as_1d(scores, "scores")
    y = np.asarray(labels).reshape(-1).astype(bool)
    if len(s) != len(y):
        raise ValueError(f"scores ({len(s)}) and labels ({len(y)}) differ in length")
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    # average ranks (1-based) with ties sharing the mean rank
    uniq, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0
    ranks = avg_rank[inv]
    u = ranks[y].sum() - npos * (npos + 1) / 2.0
    return float(u / (npos * nneg))


def flip_aware_auc(auc: float) -> float:
    """max(AUC, 1 − AUC): what an attacker who knows the gender is flipped still gets."""
    return float(max(auc, 1.0 - auc)) if np.isfinite(auc) else float("nan")


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate, thresholds) with predictions ``score >= threshold``;
    thresholds descend from +inf (nothing positive) to the lowest score (everything positive)."""
    s = _as_1d(scores, "scores")
    y = np.asarray(labels).reshape(-1).astype(bool)
    thr = np.concatenate([[np.inf], np.unique(s)[::-1]])
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    tpr = (len(pos) - np.searchsorted(pos, thr, side="left")) / max(len(pos), 1)
    fpr = (len(neg) - np.searchsorted(neg, thr, side="left")) / max(len(neg), 1)
    return fpr, tpr, thr


def det_curve(genuine, impostor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FMR, FNMR, thresholds) at every distinct score and +inf, thresholds ascending (FMR falls from 1
    to 0, FNMR rises from 0 to 1). Accept when ``score >= threshold``."""
    g = np.sort(_as_1d(genuine, "genuine"))
    im = np.sort(_as_1d(impostor, "impostor"))
    if len(g) == 0 or len(im) == 0:
        raise ValueError("need at least one genuine and one impostor score")
    thr = np.concatenate([np.unique(np.concatenate([g, im])), [np.inf]])
    fnmr = np.searchsorted(g, thr, side="left") / len(g)
    fmr = 1.0 - np.searchsorted(im, thr, side="left") / len(im)
    return fmr, fnmr, thr


def eer(genuine, impostor) -> float:
    """Equal error rate: where FMR = FNMR on the piecewise-linear DET curve (linear interpolation
    between the two consecutive thresholds whose FNMR − FMR changes sign)."""
    fmr, fnmr, _ = det_curve(genuine, impostor)
    d = fnmr - fmr  # rises from -1 to +1
    k = int(np.argmax(d >= 0))
    if d[k] == 0 or k == 0:
        return float(fnmr[k])
    d0, d1 = d[k - 1], d[k]
    a = -d0 / (d1 - d0)
    return float(fmr[k - 1] + a * (fmr[k] - fmr[k - 1]))


def fnmr_at_fmr(genuine, impostor, target: float = 0.1, interpolate: bool = True) -> float:
    """FNMR at FMR = ``target``.

    interpolate=True: linear interpolation in (FMR, FNMR) between the last operating point with
    FMR > target and the first with FMR <= target (exact when an operating point has FMR = target).
    interpolate=False: FNMR of the lowest threshold with FMR <= target.
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target FMR must be in [0, 1], got {target}")
    fmr, fnmr, _ = det_curve(genuine, impostor)
    k = int(np.argmax(fmr <= target))  # first (lowest-threshold) point meeting the target; exists (last FMR = 0)
    if not interpolate or fmr[k] == target or k == 0:
        return float(fnmr[k])
    f0, f1 = fmr[k - 1], fmr[k]
    return float(fnmr[k - 1] + (target - f0) * (fnmr[k] - fnmr[k - 1]) / (f1 - f0))


# --------------------------------------------------------------------------------------------------
# Fréchet distance (FID)


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of a (N, D) feature matrix; covariance with N − 1 in the denominator
    (as numpy's ``np.cov`` and the reference FID code)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {x.shape}")
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (len(x) - 1)


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigendecomposition;
    eigenvalues below zero from round-off are clipped to 0)."""
    a = (np.asarray(a, np.float64) + np.asarray(a, np.float64).T) / 2.0
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 − mu2||² + Tr(S1) + Tr(S2) − 2 Tr((S1 S2)^½).

    Tr((S1 S2)^½) is computed as Tr((S1^½ S2 S1^½)^½): the matrix in the middle is symmetric PSD and
    has the same eigenvalues as S1 S2, so two symmetric eigendecompositions suffice (no scipy).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    r1 = sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    w = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(w, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(max(0.0, diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean))


class FrechetReference:
    """A reference feature set (e.g. the originals) against which many sets are compared.

    Computed from the centred feature matrices instead of the D×D covariances: with A, B centred
    (n1×D, n2×D) and S1 = AᵀA/(n1−1), S2 = BᵀB/(n2−1), the non-zero eigenvalues of S1·S2 are the squared
    singular values of A·Bᵀ/√((n1−1)(n2−1)), so Tr((S1 S2)^½) = ‖A Bᵀ‖_* / √((n1−1)(n2−1)) (nuclear
    norm). A tall matrix is first reduced to its R factor (QR keeps RᵀR = AᵀA), so the SVD is at most
    min(n, D)² — much cheaper than D×D eigendecompositions when n < D (e.g. 2048-d Inception features of
    a few hundred faces), and exact.
    """

    def __init__(self, features):
        self.mu, self.r, self.trace, self.n = self._prep(features)

    @staticmethod
    def _prep(features):
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"features must be (N >= 2, D), got shape {x.shape}")
        mu = x.mean(0)
        a = x - mu
        trace = float((a * a).sum()) / (len(x) - 1)
        if a.shape[0] > a.shape[1]:
            a = np.linalg.qr(a, mode="r")
        return mu, a, trace, len(x)

    def distance(self, features) -> float:
        mu, r, trace, n = self._prep(features)
        if mu.shape != self.mu.shape:
            raise ValueError(f"feature dimension {mu.shape[0]} != reference {self.mu.shape[0]}")
        sv = np.linalg.svd(r @ self.r.T, compute_uv=False)
        tr_covmean = float(sv.sum()) / np.sqrt((n - 1) * (self.n - 1))
        d = mu - self.mu
        return float(max(0.0, d @ d + trace + self.trace - 2.0 * tr_covmean))


def fid_from_features(a, b) -> float:
    """Fréchet distance between two (N, D) feature matrices (FID with Inception pool features); the same
    value as ``frechet_distance(*feature_stats(a), *feature_stats(b))``, computed via
    :class:`FrechetReference`."""
    return FrechetReference(b).distance(a)


# ---- seams --------------------------------------------------------------------------------------------------
def changed_band(output: np.ndarray, original: np.ndarray, width: int = 3, threshold: int = 8) -> np.ndarray:
    """(H, W) bool: the band of ``width`` px on both sides of the edge of the region an anonymizer changed
    (pixels whose summed |output - original| over the channels exceeds ``threshold`` levels, holes filled by a
    closing of ``width`` px), where a seam would show. Empty when nothing changed."""
    import cv2

    diff = np.abs(output.astype(np.int32) - original.astype(np.int32)).reshape(*output.shape[:2], -1).sum(-1)
    changed = (diff > threshold).astype(np.uint8)
    k = np.ones((2 * width + 1,) * 2, np.uint8)
    changed = cv2.morphologyEx(changed, cv2.MORPH_CLOSE, k)
    if not changed.any():
        return np.zeros(changed.shape, bool)
    return (cv2.dilate(changed, k) > 0) & ~(cv2.erode(changed, k, borderType=cv2.BORDER_REPLICATE) > 0)


def _gradient_energy(img: np.ndarray) -> np.ndarray:
    import cv2

    g = img.astype(np.float32)
    g = g.mean(-1) if g.ndim == 3 else g
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return gx * gx + gy * gy


def boundary_ratio(output: np.ndarray, original: np.ndarray, width: int = 3, threshold: int = 8) -> float | None:
    """Seam measure of one anonymized image against its original (uint8, same shape): the mean gradient energy
    (squared Sobel magnitude of the grey image) of ``output`` in :func:`changed_band` divided by the original's
    in the same band. 1 = the edge of the changed region is as busy as the original there (no visible seam);
    > 1 = an added edge (a seam, a halo, a block border); < 1 = the band was smoothed. None when nothing
    changed or the original's band has no gradient at all."""
    band = changed_band(output, original, width, threshold)
    if not band.any():
        return None
    e0 = float(_gradient_energy(original)[band].mean())
    if e0 <= 1e-6:
        return None
    return float(_gradient_energy(output)[band].mean()) / e0
