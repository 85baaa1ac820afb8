"""The host executor: frames and crops in numpy arrays, OpenCV warps and paste-back, the networks on whatever
backend the pack was opened on (ONNX Runtime, or TensorRT sessions fed from host memory)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pridss_rt.backends import Networks
from pridss_rt.executors.base import Executor
from pridss_rt.pack import ModelPack
from pridss_rt.stages import align, blend, score
from pridss_rt.stages.encode import encode
from pridss_rt.stages.synthesize import synthesize


@dataclass
class HostFrame:
    frame: np.ndarray  # the input (never written)
    out: np.ndarray  # the output being built
    crops: np.ndarray | None = None  # network-space crops of the encoded faces
    images: np.ndarray | None = field(default=None, repr=False)  # synthesized rows, network space


class HostExecutor(Executor):
    name = "host"

    def __init__(self, nets: Networks, pack: ModelPack, mask: np.ndarray):
        self.nets, self.pack, self.mask = nets, pack, mask

    def begin(self, frame: np.ndarray) -> HostFrame:
        return HostFrame(frame, frame.copy())

    def encode(self, fr: HostFrame, mats):
        fr.crops = align.warp_crops(fr.frame, mats, self.pack.preprocess)
        return encode(self.nets, fr.crops), score.embed(self.nets, fr.crops)

    def p_male_of_crops(self, fr: HostFrame, positions):
        return score.p_male(self.nets, fr.crops[positions])

    def synthesize(self, fr: HostFrame, latents):
        fr.images = synthesize(self.nets, latents)

    def score(self, fr: HostFrame, n, coherence):
        imgs = fr.images[:n]
        comp = score.p_composite(self.nets, imgs) if coherence else None
        return score.p_male(self.nets, imgs), score.embed(self.nets, imgs), comp

    def paste(self, fr: HostFrame, rows, mats, color_match):
        pre = self.pack.preprocess
        gen = align.to_uint8(fr.images[rows], pre)
        orig = align.to_uint8(fr.crops, pre) if color_match else None
        for j, m in enumerate(mats):
            g = blend.color_match(gen[j], orig[j], self.mask) if orig is not None else gen[j]
            blend.paste(fr.out, g, self.mask, m)

    def result(self, fr: HostFrame) -> np.ndarray:
        return fr.out
