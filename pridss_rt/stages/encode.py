"""Stage 3 — encode: aligned crops -> latent codes (the pack's encoder)."""

from __future__ import annotations

import numpy as np

from pridss_rt.backends import Networks


def encode(nets: Networks, crops: np.ndarray) -> np.ndarray:
    """(F, 3, S, S) network-space crops -> (F, *latent_shape) float32 latents."""
    enc = nets["encoder"]
    return enc.run({enc.inputs[0].name: crops})[enc.outputs[0].name]
