"""Stage 7 — blend: put the chosen face back into the frame through the inverse alignment, with a
feathered mask limited to the face (eyes, brows, nose, mouth, cheeks, chin; not hair or background) and
an optional colour match; and the fail-closed path: pixelation."""

from __future__ import annotations

import numpy as np

from pridss_rt.pack import ModelPack
from pridss_rt.stages.align import invert_affine


def face_mask(pack: ModelPack, feather: float = 0.05) -> np.ndarray:
    """Feathered face mask in crop coordinates, float32 (S, S) in [0, 1].

    Uses the pack's ``blend_mask`` extra when it ships one; otherwise an ellipse fitted to the alignment
    template: centred between the eyes' and the mouth's midpoints, reaching from the brows to the chin
    and across both cheeks; edges blurred by ``feather`` × crop size.
    """
    import cv2

    s = pack.preprocess.crop_size
    if "blend_mask" in pack.extras:
        m = np.asarray(pack.extra("blend_mask"), np.float32)
        if m.shape == (s, s):
            return np.clip(m, 0, 1)
    t = pack.preprocess.template.astype(np.float64)
    eyes, mouth = t[:2].mean(0), t[3:].mean(0)
    eye_dist = np.linalg.norm(t[1] - t[0])
    em = mouth[1] - eyes[1]
    # proportions of an average face: forehead ~0.8, chin ~0.7 eye-to-mouth distances away, cheeks ~0.95
    # eye distances from the centre line; the 0.5 level of the feathered mask follows this outline
    top, bottom = eyes[1] - 0.8 * em, mouth[1] + 0.7 * em
    center = ((eyes[0] + mouth[0]) / 2, (top + bottom) / 2)
    axes = (0.95 * eye_dist, (bottom - top) / 2)
    m = np.zeros((s, s), np.float32)
    cv2.ellipse(m, (center, (2 * axes[0], 2 * axes[1]), 0.0), 1.0, -1, cv2.LINE_AA)
    k = max(3, int(round(feather * s)) | 1)
    m = cv2.GaussianBlur(m, (0, 0), sigmaX=k / 2.0)
    # the blur must not push weight to the crop border (that would paste a visible square)
    m[:1, :] = m[-1:, :] = 0
    m[:, :1] = m[:, -1:] = 0
    return np.clip(m / max(m.max(), 1e-6), 0, 1)


def color_match(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the generated crop's mean colour inside the face mask to the original's (uint8 BGR crops)."""
    w = (mask > 0.5)[..., None]
    if not w.any():
        return generated
    g = generated.astype(np.float32)
    delta = (original.astype(np.float32) * w).sum((0, 1)) / w.sum() - (g * w).sum((0, 1)) / w.sum()
    return np.clip(g + delta, 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, crop_bgr: np.ndarray, mask: np.ndarray, m: np.ndarray) -> None:
    """Blend ``crop_bgr`` (S×S uint8, aligned by ``m``: frame -> crop) into ``frame`` in place.

    Only pixels whose mask weight is > 0 change; every other pixel stays bit-identical.
    """
    import cv2

    h, w = frame.shape[:2]
    s = crop_bgr.shape[0]
    inv = invert_affine(m)
    corners = np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    roi_m = inv.copy()
    roi_m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    gen = cv2.warpAffine(crop_bgr, roi_m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(mask, roi_m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    region = frame[y0:y1, x0:x1]
    a3 = a[..., None]
    mixed = (region.astype(np.float32) * (1.0 - a3) + gen.astype(np.float32) * a3 + 0.5).astype(np.uint8)
    sel = a > 0
    region[sel] = mixed[sel]


def expand_box(box: np.ndarray, frame_shape: tuple[int, ...], margin: float = 0.2) -> tuple[int, int, int, int]:
    h, w = frame_shape[:2]
    x1, y1, x2, y2 = [float(v) for v in box]
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return (max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my))),
            min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my))))


def pixelate_face(frame: np.ndarray, box: np.ndarray, blocks: int = 8, margin: float = 0.2) -> tuple[int, int, int, int]:
    """Pixelate a face box grown by ``margin`` (``expand_box``) in place: ``blocks`` x ``blocks`` blocks; where the
    grown box is cut by the frame edge, the visible part gets blocks as large as the whole face's (fewer of them),
    not ``blocks`` small ones. Returns the pixelated region (clipped)."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    gx1, gy1, gx2, gy2 = np.floor(x1 - mx), np.floor(y1 - my), np.ceil(x2 + mx), np.ceil(y2 + my)
    region = expand_box(box, frame.shape, margin)
    cut = gx1 < 0 or gy1 < 0 or gx2 > w or gy2 > h
    size = (max(1, int(np.ceil((gx2 - gx1) / blocks))), max(1, int(np.ceil((gy2 - gy1) / blocks))))
    pixelate(frame, region, blocks, block_px=size if cut else None)
    return region


def pixelate(frame: np.ndarray, box: tuple[int, int, int, int] | None = None, blocks: int = 8,
             block_px: tuple[int, int] | None = None) -> None:
    """Pixelate ``box`` (x1, y1, x2, y2; the whole frame when None) in place: the fail-closed output.

    A face box becomes ``blocks`` x ``blocks`` blocks (8: a face is 8 blocks across, whatever its size). The whole
    frame (detection failed: the faces' places are unknown) gets square blocks of ``ceil(min(h, w) / blocks)`` px,
    so even a face as tall as the frame is at most ``blocks`` blocks across (1080p: 135-px blocks, 15 x 8)."""
    import cv2

    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box if box is not None else (0, 0, w, h)
    region = frame[y1:y2, x1:x2]
    rh, rw = region.shape[:2]
    if rh == 0 or rw == 0:
        return
    if box is None:  # whole frame: blocks scaled to the frame, no face larger than `blocks` blocks
        side = max(1, -(-min(rh, rw) // max(1, blocks)))
        bw, bh = max(1, -(-rw // side)), max(1, -(-rh // side))
    elif block_px is not None:  # blocks of a given size (pixelate_face: the whole face's, also when cut)
        bw, bh = max(1, -(-rw // max(1, block_px[0]))), max(1, -(-rh // max(1, block_px[1])))
    else:
        bw, bh = max(1, min(blocks, rw)), max(1, min(blocks, rh))
    small = cv2.resize(region, (bw, bh), interpolation=cv2.INTER_AREA)
    region[...] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)


# ---- head-level blend (packs with a segmentation network, defaults.blend_region = "head") ---------------
HEAD_BORDER = 0.08  # head_region: the blend fades to the original over this share of the crop side at its border
FILL_SCALE = 0.5  # background_under: the inpainting under the old head runs at this share of the crop's resolution


def head_region(head_original: np.ndarray, head_new: np.ndarray, feather: float = 0.04, grow: float = 0.03,
                border: float = HEAD_BORDER) -> np.ndarray:
    """Blend mask (S×S float32 in [0, 1]) of a head-level paste: the union of the original's and the new head
    (P(head) > 0.5), grown by ``grow`` × crop size and feathered by ``feather`` × crop size, then faded to 0
    towards the crop's edge over ``border`` × crop size (a smoothstep of the distance to the edge; 0 on the
    border row and column). Hair reaches past the crop on many heads: without the fade, the crop's square edge
    would show as a straight seam through it. Nothing outside the crop changes."""
    import cv2

    s = head_original.shape[0]
    m = ((head_original > 0.5) | (head_new > 0.5)).astype(np.uint8)
    r = max(1, int(round(grow * s)))
    m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(np.float32)
    m = cv2.GaussianBlur(m, (0, 0), sigmaX=max(0.5, feather * s))
    return np.clip(m * border_fade(s, border), 0, 1)


def border_fade(s: int, border: float = HEAD_BORDER) -> np.ndarray:
    """S×S float32: smoothstep(d / (``border`` × S)) of each pixel's distance d to the crop's outer row or column
    (0 on it, 1 from ``border`` × S inwards)."""
    d = np.minimum(np.arange(s), np.arange(s)[::-1]).astype(np.float32)
    t = np.clip(d / max(1.0, border * s), 0, 1)
    t = t * t * (3 - 2 * t)
    return np.minimum(t[:, None], t[None, :])


def background_under(original_bgr: np.ndarray, head_original: np.ndarray, grow: float = 0.03,
                     scale: float = FILL_SCALE) -> np.ndarray:
    """The original crop with its head removed: the head (grown by ``grow`` × crop size) inpainted from the
    background and body around it (OpenCV Telea). Where the new head is smaller than the old one, this is
    what shows. The fill is smooth by nature, so it is computed at ``scale`` × the crop's resolution (a hole pixel
    at full resolution is a hole at the lower one) and resized back into the hole; every pixel outside the grown
    head is the original's, bit for bit. ``scale`` 1: Telea at full resolution."""
    import cv2

    s = original_bgr.shape[0]
    r = max(1, int(round(grow * s)))
    m = cv2.dilate((head_original > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    if m.all() or not m.any():  # nothing to inpaint from, or nothing to inpaint: keep the original
        return original_bgr.copy()
    small = max(8, int(round(s * scale)))
    lm = (cv2.resize(m.astype(np.float32), (small, small), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8) \
        if small < s else None
    if lm is None or lm.all():  # full resolution asked for, or nothing known left at the lower one
        return cv2.inpaint(original_bgr, m, max(3, s // 32), cv2.INPAINT_TELEA)
    lo = cv2.resize(original_bgr, (small, small), interpolation=cv2.INTER_AREA)
    fill = cv2.resize(cv2.inpaint(lo, lm, max(2, small // 32), cv2.INPAINT_TELEA), (s, s), interpolation=cv2.INTER_LINEAR)
    out = original_bgr.copy()
    hole = m.astype(bool)
    out[hole] = fill[hole]
    return out


HOLE_GROW = 4 / 128  # the original's head is grown by this share of the crop side in the context's hole (4 px at 128)


def head_context(crop_net: np.ndarray, head_original: np.ndarray, grow: int | None = None) -> np.ndarray:
    """Context input of a three-way synthesis: (3, S, S) network-space crop and its (S, S) P(head) ->
    (4, S, S) float32: the crop with its head (P > 0.5, grown by ``grow`` px, default ``HOLE_GROW`` x S, at least
    1: a square max filter, as in training) set to 0, and that hole mask as the fourth channel."""
    import cv2

    if grow is None:
        grow = max(1, int(round(HOLE_GROW * crop_net.shape[-1])))
    hole = cv2.dilate((head_original > 0.5).astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)).astype(np.float32)
    return np.concatenate([crop_net * (1.0 - hole)[None], hole[None]], 0).astype(np.float32)


def composite_head(generated_bgr: np.ndarray, background_bgr: np.ndarray, head_new: np.ndarray) -> np.ndarray:
    """The new head over the original's background: P(head) of the generated crop as alpha (uint8 BGR crops)."""
    a = np.clip(head_new, 0, 1)[..., None]
    return (generated_bgr.astype(np.float32) * a + background_bgr.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8)
