"""Stage 5 — synthesize: latents -> face crops in the networks' image space (one batched call).

A pack's synthesis may take a second input, the *context* (three-way fusion, head-level packs): the original
crop with its head blanked and the hole mask (:func:`pridss_rt.stages.blend.head_context`), one row per latent, so
the reference's head is rendered over the original's own background and the hole filled where the new head does
not reach."""

from __future__ import annotations

import numpy as np

from pridss_rt.backends import Networks
from pridss_rt.errors import InputError


def takes_context(nets: Networks) -> bool:
    return len(nets["synthesis"].inputs) == 2


def synthesize(nets: Networks, latents: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
    syn = nets["synthesis"]
    feeds = {syn.inputs[0].name: np.ascontiguousarray(latents, np.float32)}
    if len(syn.inputs) == 2:
        if context is None or len(context) != len(latents):
            raise InputError(f"this pack's synthesis needs a context row per latent ({len(latents)}), "
                             f"got {None if context is None else len(context)}")
        feeds[syn.inputs[1].name] = np.ascontiguousarray(context, np.float32)
    elif context is not None:
        raise InputError("this pack's synthesis takes no context input")
    return syn.run(feeds)[syn.outputs[0].name]
