"""Stage 5 — synthesize: latents -> face crops in the networks' image space (one batched call)."""

from __future__ import annotations

import numpy as np

from pridss_rt.backends import Networks


def synthesize(nets: Networks, latents: np.ndarray) -> np.ndarray:
    syn = nets["synthesis"]
    return syn.run({syn.inputs[0].name: np.ascontiguousarray(latents, np.float32)})[syn.outputs[0].name]
