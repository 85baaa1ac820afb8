"""The host executor: frames and crops in numpy arrays, OpenCV warps and paste-back, the networks on whatever
backend the pack was opened on (ONNX Runtime, or TensorRT sessions fed from host memory).

Blend region ``face``: the chosen crop is pasted through the pack's inner-face mask. Region ``head`` (packs with a
segmentation network): the crop shown is the new head over the original's background, pasted through the union of
both heads; the K candidates are scored on that crop, what the frame will show. With a three-way synthesis (a
``context`` input) the network renders the new head over the original's background itself (the original crop with
its head blanked is its second input) and fills the hole; without one, the original's head is inpainted away
(OpenCV Telea) and the synthesized head composited over that with its own P(head)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pridss_rt.backends import Networks
from pridss_rt.executors.base import Executor
from pridss_rt.pack import ModelPack
from pridss_rt.pack.spec import REGION_CLASSES
from pridss_rt.stages import align, blend, score
from pridss_rt.stages.encode import encode
from pridss_rt.stages.segment import head_probability
from pridss_rt.stages.synthesize import synthesize, takes_context


@dataclass
class HostFrame:
    frame: np.ndarray  # the input (never written)
    out: np.ndarray  # the output being built
    crops: np.ndarray | None = None  # network-space crops of the encoded faces
    crops_u8: np.ndarray | None = field(default=None, repr=False)  # the same as uint8 BGR (colour match, head)
    images: np.ndarray | None = field(default=None, repr=False)  # synthesized rows, network space
    owners: list[int] = field(default_factory=list)  # face position of each synthesized row
    head_orig: np.ndarray | None = field(default=None, repr=False)  # region "head": P(head) of the crops
    background: list[np.ndarray] = field(default_factory=list)  # region "head": each crop without its head
    context: np.ndarray | None = field(default=None, repr=False)  # three-way synthesis: context row per face
    head_new: np.ndarray | None = field(default=None, repr=False)  # region "head": P(head) of each row
    regions: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # region "head": blend mask per row


class HostExecutor(Executor):
    name = "host"

    def __init__(self, nets: Networks, pack: ModelPack, mask: np.ndarray, color_match: bool = True, region: str = "face"):
        self.nets, self.pack, self.mask = nets, pack, mask
        self.head = region in REGION_CLASSES  # "head" or "person": re-render what the segmentation marks
        self.parts = REGION_CLASSES.get(region, ())
        self.three_way = self.head and takes_context(nets)
        # the three-way synthesis sees the original's surroundings; a mean-colour shift would move its copy of them
        self.color_match = color_match and not self.three_way

    def begin(self, frame: np.ndarray) -> HostFrame:
        return HostFrame(frame, frame.copy())

    def encode(self, fr: HostFrame, mats):
        fr.crops = align.warp_crops(fr.frame, mats, self.pack.preprocess)
        if self.color_match or self.head:  # colour match, inpainting, and the head candidates' scoring mix
            fr.crops_u8 = align.to_uint8(fr.crops, self.pack.preprocess)
        if self.head:
            fr.head_orig = head_probability(self.nets, fr.crops, self.parts)
            if self.three_way:
                fr.context = np.stack([blend.head_context(c, h) for c, h in zip(fr.crops, fr.head_orig)])
            else:
                fr.background = [blend.background_under(o, h) for o, h in zip(fr.crops_u8, fr.head_orig)]
        return encode(self.nets, fr.crops), score.embed(self.nets, fr.crops)

    def p_male_of_crops(self, fr: HostFrame, positions):
        return score.p_male(self.nets, fr.crops[positions])

    def synthesize(self, fr: HostFrame, latents, owners):
        ctx = fr.context[list(owners)] if self.three_way else None
        fr.images, fr.owners = synthesize(self.nets, latents, ctx), list(owners)
        if not np.all(np.isfinite(fr.images)):  # a NaN would be pasted as a flat blob: fail closed instead
            raise FloatingPointError("non-finite network output: synthesis")
        if self.head:
            fr.head_new = head_probability(self.nets, fr.images, self.parts)
            fr.regions = {}

    def _region(self, fr: HostFrame, r: int) -> np.ndarray:
        """Head-level blend mask of synthesized row ``r`` (computed once per row: scoring and paste share it)."""
        if r not in fr.regions:
            fr.regions[r] = blend.head_region(fr.head_orig[fr.owners[r]], fr.head_new[r])
        return fr.regions[r]

    def _shown(self, fr: HostFrame, rows: list[int]) -> np.ndarray:
        """uint8 BGR crops of synthesized ``rows`` as the frame will show them (colour match, head composite)."""
        out = []
        for g, r in zip(align.to_uint8(fr.images[rows], self.pack.preprocess), rows):
            j = fr.owners[r]
            if self.color_match:
                g = blend.color_match(g, fr.crops_u8[j], self.mask)
            if self.head and not self.three_way:
                g = blend.composite_head(g, fr.background[j], fr.head_new[r])
            out.append(g)
        return np.stack(out)

    def score(self, fr: HostFrame, n, coherence):
        imgs = fr.images[:n]
        if self.head:  # score what the frame will show: the shown crop through its blend mask over the original
            shown = []
            for r, g in enumerate(self._shown(fr, list(range(n)))):
                j = fr.owners[r]
                m = self._region(fr, r)[..., None]
                shown.append((g * m + fr.crops_u8[j] * (1 - m) + 0.5).astype(np.uint8))
            imgs = align.from_uint8(np.stack(shown), self.pack.preprocess)
        comp = score.p_composite(self.nets, imgs) if coherence else None
        return score.p_male(self.nets, imgs), score.embed(self.nets, imgs), comp

    def paste(self, fr: HostFrame, rows, mats):
        shown = self._shown(fr, rows)
        for j, (g, m) in enumerate(zip(shown, mats)):
            mask = self._region(fr, rows[j]) if self.head else self.mask
            blend.paste(fr.out, g, mask, m)

    def result(self, fr: HostFrame) -> np.ndarray:
        return fr.out
