"""The pictures of an evaluation, drawn with OpenCV only: ROC/DET curves (:func:`plot_curves`,
:func:`roc_points`) and the before/after picture grid (:func:`make_grid`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pridss_rt.eval import metrics
from pridss_rt.eval.data import FACE_SIZE

_COLORS = [(40, 40, 40), (200, 60, 20), (30, 140, 30), (20, 20, 200), (160, 30, 160), (20, 150, 200),
           (120, 120, 0), (0, 90, 160), (90, 0, 200), (150, 150, 150), (0, 200, 120), (200, 120, 0)]


def plot_curves(path: Path, curves: list[tuple[str, np.ndarray, np.ndarray]], title: str, xlabel: str,
                ylabel: str, logx: bool = False, xmin: float = 1e-4, diagonal: bool = False) -> None:
    import cv2

    W, H, L, R, T, B = 760, 560, 70, 230, 30, 60
    img = np.full((H, W, 3), 255, np.uint8)
    pw, ph = W - L - R, H - T - B

    def tx(x):
        x = np.asarray(x, np.float64)
        if logx:
            x = (np.log10(np.clip(x, xmin, 1.0)) - np.log10(xmin)) / -np.log10(xmin)
        return L + np.clip(x, 0, 1) * pw

    def ty(y):
        return T + (1 - np.clip(np.asarray(y, np.float64), 0, 1)) * ph

    font = cv2.FONT_HERSHEY_SIMPLEX
    ticks = [10.0 ** e for e in range(int(np.log10(xmin)), 1)] if logx else [i / 5 for i in range(6)]
    for t in ticks:
        x = int(tx(t))
        cv2.line(img, (x, T), (x, T + ph), (225, 225, 225), 1)
        cv2.putText(img, (f"1e{int(np.log10(t))}" if logx else f"{t:.1f}"), (x - 14, T + ph + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for t in [i / 5 for i in range(6)]:
        y = int(ty(t))
        cv2.line(img, (L, y), (L + pw, y), (225, 225, 225), 1)
        cv2.putText(img, f"{t:.1f}", (L - 32, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (L, T), (L + pw, T + ph), (0, 0, 0), 1)
    if diagonal:
        xs = np.linspace(xmin if logx else 0, 1, 100)
        pts = np.stack([tx(xs), ty(xs)], 1).astype(np.int32)
        cv2.polylines(img, [pts], False, (180, 180, 180), 1, cv2.LINE_AA)
    for n, (label, x, y) in enumerate(curves):
        c = _COLORS[n % len(_COLORS)]
        pts = np.stack([tx(x), ty(y)], 1).astype(np.int32)
        cv2.polylines(img, [pts], False, c, 2, cv2.LINE_AA)
        ly = T + 14 + 20 * n
        cv2.line(img, (L + pw + 12, ly - 4), (L + pw + 36, ly - 4), c, 2)
        cv2.putText(img, label[:24], (L + pw + 42, ly), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (L, 18), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (L + pw // 2 - 60, H - 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (L + 6, T + 16), font, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def plot_histograms(path: Path, groups: list[tuple[str, np.ndarray, np.ndarray]], title: str, bins: int = 20) -> None:
    """One panel per ``(label, p_men, p_women)``: the share of each gender's P(male) per bin of [0, 1] (men blue,
    women red), side by side, so before/after shows whether an attacker still separates them."""
    import cv2

    pw, ph, L, T, B, gap = 220, 160, 40, 34, 40, 16
    W = L + len(groups) * (pw + gap)
    img = np.full((T + ph + B, W, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    edges = np.linspace(0, 1, bins + 1)
    for g, (label, men, women) in enumerate(groups):
        x0 = L + g * (pw + gap)
        hs = [np.histogram(np.clip(np.asarray(v, np.float64), 0, 1), edges)[0] / max(len(v), 1) for v in (men, women)]
        top = max(max(h.max() for h in hs), 1e-6)
        cv2.rectangle(img, (x0, T), (x0 + pw, T + ph), (0, 0, 0), 1)
        for h, c, off in ((hs[0], (200, 80, 20), 0), (hs[1], (30, 30, 210), 1)):
            for b in range(bins):
                bx = x0 + int(b * pw / bins) + off * (pw // bins // 2)
                by = T + ph - int(h[b] / top * (ph - 4))
                cv2.rectangle(img, (bx + 1, by), (bx + pw // bins // 2, T + ph - 1), c, -1)
        for t in (0.0, 0.5, 1.0):
            cv2.putText(img, f"{t:.1f}", (x0 + int(t * pw) - 10, T + ph + 14), font, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, label[:28], (x0, T + ph + 32), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (L, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def roc_points(genuine: np.ndarray, impostor: np.ndarray, n: int = 300, xmin: float = 1e-4):
    """(FMR, 1 - FNMR) sampled on a log grid of FMR (interpolated like metrics.fnmr_at_fmr)."""
    fmr, fnmr, _ = metrics.det_curve(genuine, impostor)
    grid = np.logspace(np.log10(xmin), 0, n)
    # fmr descends with the threshold; np.interp needs ascending x
    return grid, 1.0 - np.interp(grid, fmr[::-1], fnmr[::-1])


def make_grid(path: Path, columns: list[tuple[str, list[np.ndarray]]]) -> None:
    import cv2

    rows = min(len(c[1]) for c in columns)
    if rows == 0:
        return
    s, head = FACE_SIZE, 22
    img = np.full((head + rows * s, len(columns) * s, 3), 255, np.uint8)
    for j, (label, tiles) in enumerate(columns):
        cv2.putText(img, label[:16], (j * s + 4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(rows):
            img[head + i * s:head + (i + 1) * s, j * s:(j + 1) * s] = tiles[i]
    cv2.imwrite(str(path), img)
