"""The bank as seen in a mirror (measured, not shipped; research/records/log.md, "Mirrored references").

The flipped crop is encoded too and ranked against the same bank, so every bank face also stands for its
mirror image: the head poses (yaw) the bank covers double without storing a face more. A reference chosen
in the mirror is fused with the flipped crop's latent and its synthesized face is flipped back.
"""
import numpy as np


def mirror_landmarks(landmarks, crop_size):
    """5 landmarks (crop pixels) of a crop flipped horizontally: x -> size - 1 - x; the eyes and the mouth
    corners swap places, so the order stays (left eye, right eye, nose, left and right mouth corner) in the image."""
    m = np.asarray(landmarks, np.float32).reshape(5, 2)[[1, 0, 2, 4, 3]].copy()
    m[:, 0] = crop_size - 1 - m[:, 0]
    return m


def choose_mirrored(bank, z, z_mirror, p_male, k, landmarks, crop_size):
    """pridss_rt.stages.fuse.ReferenceBank.choose over the bank and its mirror image: (bank indices, mirrored flags).
    z_mirror: the latent of the horizontally flipped crop; landmarks: the crop's 5 points (or None), crop_size its side."""
    want_male = bool(p_male < 0.5)
    pool = bank.pool_of(want_male)
    lm_m = None if landmarks is None else mirror_landmarks(landmarks, crop_size)
    s = np.concatenate([bank.scores(z, want_male, landmarks), bank.scores(z_mirror, want_male, lm_m)])
    order = np.argsort(-s, kind='stable')[bank.pick_ranks(len(s), k)]
    return pool[order % len(pool)], order >= len(pool)
