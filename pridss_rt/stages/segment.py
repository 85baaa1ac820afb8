"""Stage 2b — segment (packs with a ``segmentation`` network): per-pixel classes of an aligned crop — at least
the head (skin, brows, forehead, ears, hair) and the identity features (eyes, nose, lips); background and body
(neck, clothes) are the rest. The blend uses them to re-render the whole head (region ``"head"``: the original's
head and the new one are replaced, background and body stay the original's) or head and body inside the crop
(region ``"person"``: only the background stays)."""

from __future__ import annotations

import numpy as np

from pridss_rt.backends import Networks
from pridss_rt.pack.spec import HEAD_CLASSES


def head_probability(nets: Networks, images: np.ndarray, parts: tuple[str, ...] = HEAD_CLASSES) -> np.ndarray:
    """(N, 3, S, S) network-space crops -> (N, S, S) float32 P(head), the softmax mass of the head classes
    (``parts``: the classes summed; ``REGION_CLASSES["person"]`` adds the body)."""
    seg = nets["segmentation"]
    logits = np.asarray(seg.run({seg.inputs[0].name: images})[seg.outputs[0].name], np.float32)
    return head_from_logits(logits, seg.spec.options["classes"], parts)


def head_from_logits(logits: np.ndarray, classes: list[str], parts: tuple[str, ...] = HEAD_CLASSES) -> np.ndarray:
    """Per-class logits (N, C, S, S) -> P(head) (N, S, S): softmax over the classes, summed over ``parts``."""
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    keep = [i for i, c in enumerate(classes) if c in parts]
    return (e[:, keep].sum(1) / e.sum(1)).astype(np.float32)
