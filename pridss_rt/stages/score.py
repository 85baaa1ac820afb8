"""Stage 6 — score and select: P(male) from the pack's gender classifier, identity similarity from its
embedder, PIC = |2·P(male) − 1| − SIM, and the candidate with the lowest PIC.

Packs that ship a coherence critic (network role ``coherence``: face -> P(composite)) add
``coherence_weight · P(composite)`` to PIC: PIC alone rewards an ambiguous gender and a high similarity to
the original, and a composite (the original's inner face in a context that does not fit it) is both, so
with a decoder weaker than StyleGAN2 PIC alone tends to pick the composite when one of the K is."""

from __future__ import annotations

import numpy as np

from pridss_rt.backends import Networks


def p_male(nets: Networks, images: np.ndarray) -> np.ndarray:
    """P(male) per image, whatever the classifier's output kind (probability, logit, 2-class softmax)."""
    g = nets["gender"]
    return p_male_from_output(g.run({g.inputs[0].name: images})[g.outputs[0].name], g.spec.options)


def p_male_from_output(out: np.ndarray, opts) -> np.ndarray:
    """The gender classifier's raw output -> P(male), per the pack's ``output_kind``."""
    return p_male_from_raw(out, opts.get("output_kind", "probability"), int(opts.get("male_index", 1)),
                           bool(opts.get("apply_softmax", False)))


def p_male_from_raw(out: np.ndarray, kind: str, male_index: int = 1, apply_softmax: bool = False) -> np.ndarray:
    """A gender network's raw output -> P(male) (N,): ``probability`` (N,) or (N, 1) in [0, 1] (clipped),
    ``logit`` (sigmoid applied), ``softmax2`` (N, 2) scores whose ``male_index`` column is male (softmax
    applied first when ``apply_softmax``). The one implementation of this rule (runtime, eval, export)."""
    from pridss_rt.errors import InputError

    out = np.asarray(out, np.float64).reshape(len(out), -1)
    if kind == "softmax2":
        if out.shape[1] != 2:
            raise InputError(f"softmax2 gender output must be (N, 2), got {out.shape}")
        if apply_softmax:
            e = np.exp(out - out.max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
        return out[:, male_index]
    if kind not in ("probability", "logit"):
        raise InputError(f"gender output_kind must be probability, logit or softmax2, got {kind!r}")
    if out.shape[1] != 1:
        raise InputError(f"{kind} gender output must be (N,) or (N, 1), got {out.shape} (a 2-class output is softmax2)")
    out = out[:, 0]
    if kind == "logit":
        out = 1.0 / (1.0 + np.exp(-out))
    return np.clip(out, 0.0, 1.0)


def l2_normalize(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` (embeddings, [N, D]) scaled to unit length, in float64."""
    v = np.asarray(v, np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def embed(nets: Networks, images: np.ndarray) -> np.ndarray:
    """L2-normalized identity embeddings."""
    e = nets["identity"]
    return l2_normalize(e.run({e.inputs[0].name: images})[e.outputs[0].name])


def p_composite_from_output(out: np.ndarray) -> np.ndarray:
    """The coherence critic's raw output ([N] or [N, 1] probability) -> P(composite) [N] in [0, 1]."""
    out = np.asarray(out, np.float64)
    return np.clip(out.reshape(len(out)), 0.0, 1.0)


def p_composite(nets: Networks, images: np.ndarray) -> np.ndarray:
    """P(composite) per image from the pack's coherence critic."""
    c = nets["coherence"]
    return p_composite_from_output(c.run({c.inputs[0].name: images})[c.outputs[0].name])


def pic(p: np.ndarray, sim: np.ndarray, composite: np.ndarray | None = None, weight: float = 0.0) -> np.ndarray:
    """PIC = |2·P(male) − 1| − SIM (lower is better: gender-ambiguous and identity-preserving), plus
    ``weight · composite`` when a coherence score is given."""
    out = np.abs(2.0 * np.asarray(p) - 1.0) - np.asarray(sim)
    if composite is not None and weight:
        out = out + weight * np.asarray(composite)
    return out


def select(p: np.ndarray, sim: np.ndarray, composite: np.ndarray | None = None, weight: float = 0.0) -> int:
    """Index of the candidate with the lowest PIC (first one on ties)."""
    return int(np.argmin(pic(p, sim, composite, weight)))
