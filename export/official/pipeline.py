"""PyTorch reference of the whole PriDSS loop: the oracle for parity and the baseline for benchmarks.

    invert (e4e -> W+ -> S) -> pick K opposite-gender references from the bank -> fuse (StyleFusion)
    -> synthesize -> score (P(male), SIM to the original) -> keep argmin PIC = |2 P(male) - 1| - SIM

:func:`run_loop` is the loop itself over five callables on numpy arrays, so the same selection logic
runs on the PyTorch reference (:class:`PriDSSReference`) and on ONNX Runtime sessions
(:func:`ort_callables`). The reference uses the *original* formulations: the fused grouped modulated
conv and ``upfirdn2d``, the ported batch-1 StyleFusion code, W+ -> S via the generator's own affines,
e4e's literal id-loss pooling; the exported graphs use the batch-friendly rewrites.

Reference choice (inferred; the paper gives none): the input's gender is the classifier's
P(male) >= 0.5 on the input crop; the K references are the first K bank entries of the other gender
(cycling if the bank has fewer), in bank order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Fn = Callable[..., np.ndarray]


@dataclass
class LoopResult:
    refs: np.ndarray  # (B, K) bank indices
    input_male: np.ndarray  # (B,) bool
    s_orig: np.ndarray  # (B, D)
    s_fused: np.ndarray  # (B, K, D)
    images: np.ndarray  # (B, K, 3, S, S)
    p_male: np.ndarray  # (B, K)
    sim: np.ndarray  # (B, K)
    pic: np.ndarray  # (B, K)
    best: np.ndarray  # (B,)

    @property
    def output(self) -> np.ndarray:
        return self.images[np.arange(len(self.best)), self.best]

    def margin(self) -> np.ndarray:
        """PIC gap between the best and the second-best candidate (B,): how robust argmin is."""
        s = np.sort(self.pic, axis=1)
        return s[:, 1] - s[:, 0] if s.shape[1] > 1 else np.full(len(s), np.inf)


def select_references(bank_male: np.ndarray, input_male: np.ndarray, k: int) -> np.ndarray:
    bank_male = np.asarray(bank_male, bool)
    out = []
    for male in np.asarray(input_male, bool):
        pool = np.flatnonzero(bank_male != male)
        if pool.size == 0:
            raise ValueError("bank has no reference of the opposite gender")
        out.append(pool[np.arange(k) % pool.size])
    return np.stack(out)


def pic_score(p_male: np.ndarray, sim: np.ndarray) -> np.ndarray:
    return np.abs(2.0 * p_male - 1.0) - sim


def _l2n(e: np.ndarray) -> np.ndarray:
    e = np.asarray(e, np.float64)
    return e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


def run_loop(images: np.ndarray, encode: Fn, fuse: Fn, synthesize: Fn, embed: Fn, gender_p: Fn,
             bank_latents: np.ndarray, bank_male: np.ndarray, k: int = 5) -> LoopResult:
    images = np.asarray(images, np.float32)
    b = images.shape[0]
    s = np.asarray(encode(images), np.float32)
    p_in = np.asarray(gender_p(images), np.float64).reshape(b)
    e_in = _l2n(embed(images))
    input_male = p_in >= 0.5
    refs = select_references(bank_male, input_male, k)
    s_o = np.repeat(s, k, axis=0)
    s_r = np.asarray(bank_latents, np.float32)[refs.reshape(-1)]
    s_f = np.asarray(fuse(s_o, s_r), np.float32)
    img = np.asarray(synthesize(s_f), np.float32)
    p = np.asarray(gender_p(img), np.float64).reshape(b, k)
    e = _l2n(embed(img)).reshape(b, k, -1)
    sim = np.einsum("bkd,bd->bk", e, e_in)
    pic = pic_score(p, sim)
    return LoopResult(refs, input_male, s, s_f.reshape(b, k, -1), img.reshape(b, k, *img.shape[1:]), p, sim, pic,
                      pic.argmin(axis=1))


class PriDSSReference:
    """The PyTorch reference: holds the official modules, exposes the five loop callables."""

    def __init__(self, generator, encoder, latent_avg, fusion, backbone, gender, crop_size: int,
                 rgb_index: str = "stylefusion"):
        import torch

        self.torch = torch
        self.gen = generator.eval()
        self.encoder = encoder.eval()
        n, d = encoder.style_count, encoder.styles[0].out_c
        self.latent_avg = (torch.zeros(n, d) if latent_avg is None else latent_avg.reshape(-1, d).expand(n, d))
        self.fusion = fusion.eval()
        self.backbone = backbone.eval()
        self.gender = gender.eval()
        self.crop_size = crop_size
        self.rgb_index = rgb_index

    def _np(self, fn, *arrays):
        with self.torch.no_grad():
            out = fn(*[self.torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in arrays])
        return out.numpy()

    def encode(self, images):
        return self._np(lambda x: self.gen.w_plus_to_s(self.encoder(x) + self.latent_avg[None], self.rgb_index), images)

    def fuse(self, s_orig, s_ref):
        return self._np(self.fusion.forward_original, s_orig, s_ref)

    def synthesize(self, s):
        import torch.nn.functional as F

        def f(z):
            img = self.gen.synthesis_s(z)
            return F.adaptive_avg_pool2d(img, (self.crop_size, self.crop_size)) if img.shape[-1] != self.crop_size else img
        return self._np(f, s)

    def embed(self, images):
        from .arcface import reference_preprocess
        return self._np(lambda x: self.backbone(reference_preprocess(x)), images)

    def gender_p(self, images):
        return self._np(self.gender, images)

    def run(self, images, bank_latents, bank_male, k=5) -> LoopResult:
        return run_loop(images, self.encode, self.fuse, self.synthesize, self.embed, self.gender_p, bank_latents,
                        bank_male, k)


def ort_callables(networks) -> dict[str, Fn]:
    """The five loop callables over a :class:`pridss_rt.backends.Networks` (any backend)."""
    from .gender import p_male

    def one(role, **feeds):
        return next(iter(networks[role].run(feeds).values()))

    g = networks.pack.network("gender")
    enc_in = networks.pack.network("encoder").inputs[0].name
    syn_in = networks.pack.network("synthesis").inputs[0].name
    fz = networks.pack.network("fusion").inputs
    return {
        "encode": lambda x: one("encoder", **{enc_in: x}),
        "fuse": lambda a, b: one("fusion", **{fz[0].name: a, fz[1].name: b}),
        "synthesize": lambda s: one("synthesis", **{syn_in: s}),
        "embed": lambda x: one("identity", **{networks.pack.network("identity").inputs[0].name: x}),
        "gender_p": lambda x: p_male(one("gender", **{g.inputs[0].name: x}), g.options.get("output_kind", "probability"),
                                     g.options.get("male_index", 1), g.options.get("apply_softmax", False)),
    }
