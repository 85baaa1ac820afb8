"""StyleFusion (``OmerKafri/StyleFusion``): FusionNet and the FFHQ hierarchy, in S-space, batched.

:class:`FusionNet` is key-exact with the official per-node files
(``blender_{segments,common}.disentangle_net.{0..4}.{weight,bias}``). Two forwards:

- :meth:`FusionNet.forward_original` is a line-by-line port of ``stylefusion/fusion_net.py`` (batch 1,
  one MLP call per layer) minus the hard-coded ``cuda:0``: the oracle;
- :meth:`FusionNet.forward` is the rewrite for batch B on any device: every layer of a stage goes
  through the MLP as one (L*B, in) GEMM; same maths.

:class:`StyleFusionS` is the 5-node FFHQ tree as one network (S_orig, S_ref) -> S_fused: each of the
11 ``s_dict`` entries is taken from the original or from the reference (configuration).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .ops import EqualLinear
from .stylegan2 import SLayout

MAX_LAYERS = 18
DEFAULT_COMMON_LAYERS = 5
DEFAULT_INDEX_BITS = 10

#: FFHQ hierarchy (source: stylefusion/sf_hierarchy.py): node -> (child1, child2)
FFHQ_TREE = {
    "skin_mouth": ("mouth", "skin"),
    "face": ("skin_mouth", "eyes"),
    "bg_clothes": ("clothes", "bg"),
    "bg_hair_clothes": ("bg_clothes", "hair"),
    "all": ("face", "bg_hair_clothes"),
}
FFHQ_NODES = tuple(FFHQ_TREE)  # the 5 fusion nets, one weight file each
FFHQ_PARTS = ("all", "face", "skin_mouth", "mouth", "skin", "eyes", "bg_hair_clothes", "bg_clothes", "clothes", "bg",
              "hair")

#: PriDSS default (inferred, see docs/official.md): identity from the original = eyes and mouth, via the
#: codes StyleFusion's own API swaps for them (swap(eyes) -> eyes, face; swap(mouth) -> skin_mouth, face)
#: plus the mouth leaf; everything else (skin - which holds the nose -, hair, bg, clothes, the global
#: code) from the opposite-gender reference.
PRIDSS_ORIGINAL_PARTS = ("eyes", "mouth", "skin_mouth", "face")
#: with keep_nose=True, skin is taken from the original too (StyleFusion has no nose leaf)
NOSE_PARTS = ("skin",)
#: head-level re-render (head_level=True): background and clothes from the original too, i.e. the leaves bg and
#: clothes and their node's code bg_clothes (for FFHQ StyleFusion's swap(background) sets only bg; clothes has
#: no swap of its own). Hair (with bg_hair_clothes, as swap(hair) does), skin and the global code (all) stay
#: the reference's. The runtime pastes the result at head level (docs/official.md, "Head-level routing").
HEAD_LEVEL_ORIGINAL_PARTS = PRIDSS_ORIGINAL_PARTS + ("bg", "clothes", "bg_clothes")


def pridss_sources(keep_nose: bool = False, original_parts=None, head_level: bool = False) -> dict[str, str]:
    if head_level and original_parts is not None:
        raise ValueError("head_level=True and original_parts are exclusive")
    if original_parts is None:
        original_parts = HEAD_LEVEL_ORIGINAL_PARTS if head_level else PRIDSS_ORIGINAL_PARTS
    orig = set(original_parts)
    if keep_nose:
        orig |= set(NOSE_PARTS)
    unknown = orig - set(FFHQ_PARTS)
    if unknown:
        raise ValueError(f"unknown StyleFusion parts {sorted(unknown)} (parts: {FFHQ_PARTS})")
    return {p: ("original" if p in orig else "reference") for p in FFHQ_PARTS}


class LatentBlender(nn.Module):
    def __init__(self, size, index_bits=DEFAULT_INDEX_BITS, extras=0):
        super().__init__()
        self.size = size
        self.index_bits = index_bits
        sizes = [size * 2 + index_bits * (MAX_LAYERS + 1) + extras * size, size * 5, size * 5, size * 5, size, size]
        self.disentangle_net = nn.Sequential(*[EqualLinear(sizes[i], sizes[i + 1], lr_mul=0.01, activation="fused_lrelu")
                                               for i in range(len(sizes) - 1)])

    def indicator(self, i, rgb=False, device=None, dtype=None):
        ind = torch.zeros(MAX_LAYERS + 1, device=device, dtype=dtype)
        ind[i] = 1
        if rgb:
            ind[-1] = 1
        return ind.repeat(self.index_bits)

    def forward_original(self, a, b, i=None, rgb=False, extra=None):
        """Port of ``LatentBlender.forward`` (a, b: (1, size))."""
        x = torch.cat((a[0], b[0]))
        if extra is not None:
            x = torch.cat((x, extra))
        if i is not None:
            x = torch.cat([x, self.indicator(i, rgb, a.device, a.dtype)])
        # the original ran the MLP on a 1-D vector with the CUDA fused op (shape kept); a 2-D row here
        x = torch.sigmoid(self.disentangle_net(x[None])[0])
        x = x.unsqueeze(0)
        return a[0] + x * (b[0] - a[0])

    def blend(self, a, b, onehots, extra=None):
        """Batched: a, b (B, L, size); onehots (L, 19*bits); extra (B, L, size) or None -> (B, L, size)."""
        B, L, S = a.shape
        parts = [a, b] + ([extra] if extra is not None else []) + [onehots[None].expand(B, L, onehots.shape[1])]
        x = torch.cat(parts, dim=2).reshape(B * L, -1)
        m = torch.sigmoid(self.disentangle_net(x)).reshape(B, L, S)
        return a + m * (b - a)


class FusionNet(nn.Module):
    def __init__(self, index_bits=DEFAULT_INDEX_BITS, common_layers=DEFAULT_COMMON_LAYERS, size=512):
        super().__init__()
        self.size = size
        self.blender_segments = LatentBlender(size, index_bits=index_bits, extras=1)
        self.blender_common = LatentBlender(size, index_bits=index_bits)
        self.common_layers = common_layers

    # helpers matching nn.Upsample(size=512, mode='nearest') and MaxPool1d(512 // C)
    def up(self, x):  # (..., C) -> (..., size)
        f = self.size // x.shape[-1]
        return x.unsqueeze(-1).expand(*x.shape, f).reshape(*x.shape[:-1], self.size)

    def pool(self, x, c):  # (..., size) -> (..., c)
        f = self.size // c
        return x.reshape(*x.shape[:-1], c, f).amax(-1)

    def forward_original(self, s0, s1, s2):
        """Port of ``FusionNet.forward`` (default path) for batch 1: s* = [[conv (1,C)...], [rgb (1,C)...]]."""
        up = nn.Upsample(size=self.size, mode="nearest")
        upf = lambda x: up(x.unsqueeze(0)).squeeze(0)  # noqa: E731
        poolf = lambda x, c: nn.MaxPool1d(self.size // c)(x.unsqueeze(0)).squeeze(0)  # noqa: E731
        res = [[], []]
        for rgb in (0, 1):
            for i in range(len(s0[rgb])):
                c = s0[rgb][i].size()[1]
                s0_up, s1_up, s2_up = upf(s0[rgb][i]), upf(s1[rgb][i]), upf(s2[rgb][i])
                skip_common = self.common_layers is not None and i >= self.common_layers
                if skip_common:
                    x = self.blender_segments.forward_original(s0_up, s1_up, i=i, rgb=False,
                                                               extra=torch.zeros_like(s1_up[0]))
                    res[rgb].append(poolf(x, c))
                else:
                    x0 = poolf(self.blender_common.forward_original(s0_up, s2_up, i=i, rgb=False), c)
                    x1 = poolf(self.blender_common.forward_original(s1_up, s2_up, i=i, rgb=False), c)
                    x = self.blender_segments.forward_original(upf(x0), upf(x1), i=i, rgb=False, extra=s2_up[0])
                    res[rgb].append(poolf(x, c))
        return res

    def forward(self, s0, s1, s2, plan: "FlatPlan"):
        """Batched default path on flat S codes (B, D) -> (B, D); ``plan`` holds the layout's index tables.

        Per layer exactly the original maths (nearest upsample to ``size``, common blends for layers
        < common_layers with the node code, max-pool back, segment blend), but every layer of a stage
        goes through the MLP as one (L*B, in) GEMM and the up/pool steps are single Gathers.
        """
        b = s0.shape[0]
        L, S = plan.n_layers, self.size
        up = lambda s: s[:, plan.up_index].reshape(b, L, S)  # noqa: E731
        a, bb, g = up(s0), up(s1), up(s2)
        ys = []
        if plan.n_common:
            ac, bc, gc = a[:, plan.common], bb[:, plan.common], g[:, plan.common]
            oh = plan.onehot[plan.common]
            x01 = self.blender_common.blend(torch.cat([ac, bc], 1), torch.cat([gc, gc], 1), torch.cat([oh, oh]))
            # pool to C_i and upsample back (the original's pool(...) then up(...)) as one gather + max
            x01 = x01.reshape(b, -1)[:, plan.roundtrip_index].amax(-1).reshape(b, 2 * plan.n_common, S)
            x0, x1 = x01[:, :plan.n_common], x01[:, plan.n_common:]
            ys.append(self.blender_segments.blend(x0, x1, oh, extra=gc))
        if plan.n_seg:
            a_s, b_s = a[:, plan.seg], bb[:, plan.seg]
            ys.append(self.blender_segments.blend(a_s, b_s, plan.onehot[plan.seg], extra=torch.zeros_like(a_s)))
        y = torch.cat(ys, 1).reshape(b, -1)
        return y[:, plan.final_index].amax(-1)


class FlatPlan(nn.Module):
    """Index tables that turn a flat S layout into the per-layer ``size``-wide vectors and back."""

    def __init__(self, layout: SLayout, size: int, common_layers: int | None = DEFAULT_COMMON_LAYERS,
                 index_bits: int = DEFAULT_INDEX_BITS):
        super().__init__()
        dims = list(layout.dims)
        pos = list(range(len(layout.conv_dims))) + list(range(len(layout.rgb_dims)))  # index inside its list
        if any(size % c or c > size for c in dims):
            raise ValueError(f"fusion width {size} cannot blend S layers of widths {sorted(set(dims))}")
        offs = [o for o, _ in layout.offsets()]
        L = len(dims)
        fmax = size // min(dims)
        self.n_layers = L
        common = [k for k in range(L) if common_layers is None or pos[k] < common_layers]
        seg = [k for k in range(L) if k not in common]
        self.n_common, self.n_seg = len(common), len(seg)
        self.register_buffer("common", torch.tensor(common, dtype=torch.long))
        self.register_buffer("seg", torch.tensor(seg, dtype=torch.long))
        up = [offs[k] + j // (size // dims[k]) for k in range(L) for j in range(size)]
        self.register_buffer("up_index", torch.tensor(up, dtype=torch.long))
        rt = []
        for rep in range(2):
            for q, k in enumerate(common):
                f = size // dims[k]
                base = (rep * len(common) + q) * size
                rt += [[base + (j // f) * f + t % f for t in range(fmax)] for j in range(size)]
        self.register_buffer("roundtrip_index", torch.tensor(rt, dtype=torch.long).reshape(-1, fmax) if rt
                             else torch.zeros(0, fmax, dtype=torch.long))
        order = common + seg  # layer order of the concatenated stage outputs
        where = {k: p for p, k in enumerate(order)}
        fin = []
        for k in range(L):
            f = size // dims[k]
            fin += [[where[k] * size + c * f + t % f for t in range(fmax)] for c in range(dims[k])]
        self.register_buffer("final_index", torch.tensor(fin, dtype=torch.long))
        oh = torch.zeros(L, MAX_LAYERS + 1)
        for k in range(L):
            oh[k, pos[k]] = 1  # the default path never sets the rgb bit
        self.register_buffer("onehot", oh.repeat(1, index_bits))


class StyleFusionS(nn.Module):
    """The FFHQ hierarchy as one network: (S_orig, S_ref) flat (B, D) -> S_fused (B, D)."""

    def __init__(self, nets: dict[str, FusionNet], layout: SLayout, sources: dict[str, str] | None = None,
                 tree: dict[str, tuple[str, str]] | None = None):
        super().__init__()
        self.tree = dict(tree or FFHQ_TREE)
        missing = set(self.tree) - set(nets)
        if missing:
            raise ValueError(f"fusion nets missing for nodes {sorted(missing)}")
        self.nets = nn.ModuleDict({k: nets[k] for k in self.tree})
        self.layout = layout
        parts = set(self.tree) | {c for pair in self.tree.values() for c in pair}
        self.sources = dict(sources or pridss_sources())
        bad = {p: v for p, v in self.sources.items() if v not in ("original", "reference")}
        if bad or set(self.sources) != parts:
            raise ValueError(f"sources must map each of {sorted(parts)} to 'original' or 'reference', got {self.sources}")
        children = {c for pair in self.tree.values() for c in pair}
        roots = [n for n in self.tree if n not in children]
        assert len(roots) == 1, roots
        self.root = roots[0]
        first = next(iter(self.nets.values()))
        self.plan = FlatPlan(layout, first.size, first.common_layers, first.blender_common.index_bits)

    def _node(self, name, sd, original: bool):
        if name not in self.tree:
            return sd[name]
        c1, c2 = self.tree[name]
        a = self._node(c1, sd, original)
        b = self._node(c2, sd, original)
        net = self.nets[name]
        return net.forward_original(a, b, sd[name]) if original else net(a, b, sd[name], self.plan)

    def _run(self, s_orig, s_ref, original: bool):
        if original:
            o, r = self.layout.split(s_orig), self.layout.split(s_ref)
            o, r = [list(o[0]), list(o[1])], [list(r[0]), list(r[1])]
        else:
            o, r = s_orig, s_ref
        sd = {p: (o if src == "original" else r) for p, src in self.sources.items()}
        res = self._node(self.root, sd, original)
        return self.layout.join(res[0], res[1]) if original else res

    def forward(self, s_orig, s_ref):
        return self._run(s_orig, s_ref, original=False)

    @torch.no_grad()
    def forward_original(self, s_orig, s_ref):
        """Per-sample loop over the ported original (batch-1) code: the oracle for :meth:`forward`."""
        return torch.cat([self._run(s_orig[b:b + 1], s_ref[b:b + 1], original=True) for b in range(s_orig.shape[0])])


def fusion_params(size=512, index_bits=DEFAULT_INDEX_BITS) -> int:
    seg = [size * 2 + index_bits * (MAX_LAYERS + 1) + size, size * 5, size * 5, size * 5, size, size]
    com = [size * 2 + index_bits * (MAX_LAYERS + 1), size * 5, size * 5, size * 5, size, size]
    return sum(a * b + b for sizes in (seg, com) for a, b in zip(sizes[:-1], sizes[1:]))


assert math.isclose(fusion_params() / 1e6, 36.9, abs_tol=0.05)
