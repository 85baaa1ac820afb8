"""Stage 6 — score and select: P(male) from the pack's gender classifier, identity similarity from its
embedder, PIC = |2·P(male) − 1| − SIM, and the candidate with the lowest PIC."""

from __future__ import annotations

import numpy as np

from .backends import Networks


def p_male(nets: Networks, images: np.ndarray) -> np.ndarray:
    """P(male) per image, whatever the classifier's output kind (probability, logit, 2-class softmax)."""
    g = nets["gender"]
    return p_male_from_output(g.run({g.inputs[0].name: images})[g.outputs[0].name], g.spec.options)


def p_male_from_output(out: np.ndarray, opts) -> np.ndarray:
    """The gender classifier's raw output -> P(male), per the pack's ``output_kind``."""
    out = np.asarray(out, np.float64)
    kind = opts.get("output_kind", "probability")
    if kind == "softmax2":
        if opts.get("apply_softmax", False):
            e = np.exp(out - out.max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
        return out[:, int(opts.get("male_index", 1))]
    out = out.reshape(len(out))
    if kind == "logit":
        out = 1.0 / (1.0 + np.exp(-out))
    return np.clip(out, 0.0, 1.0)


def embed(nets: Networks, images: np.ndarray) -> np.ndarray:
    """L2-normalized identity embeddings."""
    e = nets["identity"]
    v = e.run({e.inputs[0].name: images})[e.outputs[0].name].astype(np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def pic(p: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """PIC = |2·P(male) − 1| − SIM (lower is better: gender-ambiguous and identity-preserving)."""
    return np.abs(2.0 * np.asarray(p) - 1.0) - np.asarray(sim)


def select(p: np.ndarray, sim: np.ndarray) -> int:
    """Index of the candidate with the lowest PIC (first one on ties)."""
    return int(np.argmin(pic(p, sim)))
