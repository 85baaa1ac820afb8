"""Representative inputs for the FP16 range audit, derived from a pack (no external data needed).

- latent networks (synthesis, fusion): bank latents, their mean ("latent_avg"), the mean ± 1σ
  (typical) and ± 3σ (extreme) per element, as issue #3 asks;
- image networks (encoder, gender, identity): faces the pack's own synthesis network makes from those
  latents (realistic crops), plus black and white frames (the normalization's extreme values).
"""

from __future__ import annotations

import numpy as np

from pridss_rt.pack import ModelPack


def latent_batches(pack: ModelPack, batch: int = 4, max_bank: int = 16, seed: int = 0) -> list[np.ndarray]:
    latents, _ = pack.bank()
    rng = np.random.default_rng(seed)
    mu = latents.mean(0)
    sd = latents.std(0) if len(latents) > 1 else np.ones_like(mu)
    pick = latents[rng.permutation(len(latents))[:max_bank]]
    rows = list(pick) + [mu, mu + sd, mu - sd, mu + 3 * sd, mu - 3 * sd]
    rows = np.stack(rows).astype(np.float32)
    return [rows[i:i + batch] for i in range(0, len(rows), batch)]


def image_batches(pack: ModelPack, latents: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    pre = pack.preprocess
    spec = pack.network("synthesis")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(spec.path), so, providers=["CPUExecutionProvider"])
    faces = [sess.run(None, {spec.inputs[0].name: z})[0].astype(np.float32) for z in latents]
    mean = np.asarray(pre.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(1, 3, 1, 1)
    s = pre.crop_size
    black = np.broadcast_to((0.0 - mean) / std, (1, 3, s, s)).astype(np.float32)
    white = np.broadcast_to((1.0 - mean) / std, (1, 3, s, s)).astype(np.float32)
    return faces + [np.concatenate([black, white])]


def feeds_for(pack: ModelPack, role: str, batch: int = 4) -> list[dict[str, np.ndarray]]:
    """Input dicts for network ``role`` of ``pack``."""
    spec = pack.network(role)
    lat = latent_batches(pack, batch)
    if role in ("synthesis",):
        return [{spec.inputs[0].name: z} for z in lat]
    if role == "fusion":
        return [{spec.inputs[0].name: z, spec.inputs[1].name: z[::-1].copy()} for z in lat]
    imgs = image_batches(pack, lat)
    return [{spec.inputs[0].name: x} for x in imgs]
