"""StyleGAN2, rosinality layout (``rosinality/stylegan2-pytorch:model.py``), driven by W+ or by S.

Two implementations of the same maths share one set of parameters:

- :class:`Generator` is the *reference*: the original fused modulated conv (per-sample weights,
  grouped conv with ``groups=batch``), the original ``upfirdn2d`` blur/upsample and the StyleFusion
  ``style_vector`` hook (``stylefusion/sf_stylegan2.py``). Its ``state_dict`` is key-exact with
  ``g_ema``.
- :class:`SSynthesis` is the *export* form, built from a loaded Generator: S in, image out, with the
  batch-friendly modulated conv (scale the input by s, conv with the shared static weight, multiply
  by ``rsqrt(s^2 @ W2^T + 1e-8)`` with ``W2[o, i] = scale^2 * sum_k W[o, i, k]^2`` precomputed),
  fixed depthwise (transposed) convs for the FIR filters and the fixed noise folded into constants.

S layout (flat, per sample): the conv styles ``s_conv[0..n_conv-1]`` followed by the ToRGB styles
``s_rgb[0..n_rgb-1]`` (StyleFusion's ``[s, s_rgb]`` order). 8704 values at 256 px, 9088 at 1024.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .ops import (Blur, EqualLinear, FusedLeakyReLU, PixelNorm, Upsample, adaptive_pool_matrix, blur_weight,
                  depthwise_blur, depthwise_upsample2x, upsample2x_weight)

RGB_INDEX_MODES = ("stylefusion", "rosinality")


def official_channels(channel_multiplier: int = 2) -> dict[int, int]:
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}


@dataclass(frozen=True)
class SLayout:
    """Where each layer's style lives in the flat S vector."""

    conv_dims: tuple[int, ...]
    rgb_dims: tuple[int, ...]

    @property
    def dims(self) -> tuple[int, ...]:
        return self.conv_dims + self.rgb_dims

    @property
    def size(self) -> int:
        return sum(self.dims)

    def offsets(self) -> list[tuple[int, int]]:
        out, o = [], 0
        for d in self.dims:
            out.append((o, o + d))
            o += d
        return out

    def split(self, s: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Flat (B, D) -> ([conv styles], [rgb styles]), each (B, C_i)."""
        parts = [s[:, a:b] for a, b in self.offsets()]
        n = len(self.conv_dims)
        return parts[:n], parts[n:]

    def join(self, conv: list[torch.Tensor], rgb: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(list(conv) + list(rgb), dim=1)


def s_layout(size: int, channel_multiplier: int = 2, channels: dict[int, int] | None = None) -> SLayout:
    """S layout of a rosinality generator of ``size`` px (computed from the config, never hard-coded)."""
    ch = channels or official_channels(channel_multiplier)
    log_size = int(math.log2(size))
    conv = [ch[4]]
    rgb = [ch[4]]
    in_ch = ch[4]
    for i in range(3, log_size + 1):
        out = ch[2 ** i]
        conv += [in_ch, out]
        rgb.append(out)
        in_ch = out
    return SLayout(tuple(conv), tuple(rgb))


# ---- reference modules (key-exact with rosinality) -----------------------------------------------

class ModulatedConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False,
                 downsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(list(blur_kernel), pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(list(blur_kernel), pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate

    def forward(self, x, style, style_vector=None):
        """The original fused path (grouped conv, groups=batch). ``style_vector`` replaces modulation(style)."""
        batch, in_channel, height, width = x.shape
        s = self.modulation(style) if style_vector is None else style_vector
        s = s.view(batch, 1, in_channel, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        weight = weight.view(batch * self.out_channel, in_channel, self.kernel_size, self.kernel_size)
        if self.upsample:
            x = x.view(1, batch * in_channel, height, width)
            weight = weight.view(batch, self.out_channel, in_channel, self.kernel_size, self.kernel_size)
            weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, self.kernel_size,
                                                    self.kernel_size)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            _, _, height, width = out.shape
            out = out.view(batch, self.out_channel, height, width)
            return self.blur(out)
        if self.downsample:
            x = self.blur(x)
            _, _, height, width = x.shape
            x = x.view(1, batch * in_channel, height, width)
            out = F.conv2d(x, weight, padding=0, stride=2, groups=batch)
        else:
            x = x.view(1, batch * in_channel, height, width)
            out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        _, _, height, width = out.shape
        return out.view(batch, self.out_channel, height, width)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise=None):
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int):
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False, blur_kernel=(1, 3, 3, 1),
                 demodulate=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel, demodulate=demodulate)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style, noise=None, style_vector=None):
        out = self.conv(x, style, style_vector=style_vector)
        out = self.noise(out, noise=noise)
        return self.activate(out)


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(list(blur_kernel))
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None, style_vector=None):
        out = self.conv(x, style, style_vector=style_vector) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Generator(nn.Module):
    """rosinality ``Generator`` (keys of ``g_ema``), with StyleFusion's S hooks.

    ``channels`` overrides the official channel table (for reduced-size tests only; official
    checkpoints use ``channel_multiplier``).
    """

    def __init__(self, size, style_dim=512, n_mlp=8, channel_multiplier=2, blur_kernel=(1, 3, 3, 1), lr_mlp=0.01,
                 channels: dict[int, int] | None = None):
        super().__init__()
        self.size = size
        self.style_dim = style_dim
        self.channel_multiplier = channel_multiplier
        layers = [PixelNorm()]
        for _ in range(n_mlp):
            layers.append(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)
        self.channels = dict(channels) if channels else official_channels(channel_multiplier)
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.log_size = int(math.log(size, 2))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        in_channel = self.channels[4]
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2 ** res, 2 ** res))
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel
        self.n_latent = self.log_size * 2 - 2

    # ---- mapping ---------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor, truncation: float = 1.0, truncation_latent: torch.Tensor | None = None):
        w = self.style(z)
        if truncation < 1:
            w = truncation_latent + truncation * (w - truncation_latent)
        return w

    @torch.no_grad()
    def mean_latent(self, n: int, generator: torch.Generator | None = None):
        z = torch.randn(n, self.style_dim, device=self.input.input.device, generator=generator)
        return self.style(z).mean(0, keepdim=True)

    def s_layout(self) -> SLayout:
        return s_layout(self.size, channels=self.channels)

    # ---- W+ -> S (StyleFusion get_style_vector) ----------------------------------------------------
    def style_vectors(self, latent: torch.Tensor, rgb_index: str = "stylefusion"):
        """W+ (B, n_latent, 512) -> ([s_conv], [s_rgb]).

        ``rgb_index="stylefusion"``: ToRGB j>=1 reads w[2j] (StyleFusion's ``return_style_vector``);
        ``"rosinality"``: w[2j+1], what rosinality's own forward feeds ToRGB. Conv styles agree.
        """
        if rgb_index not in RGB_INDEX_MODES:
            raise ValueError(f"rgb_index must be one of {RGB_INDEX_MODES}")
        s = [self.conv1.conv.modulation(latent[:, 0])] + \
            [c.conv.modulation(latent[:, i + 1]) for i, c in enumerate(self.convs)]
        off = 2 if rgb_index == "stylefusion" else 3
        s_rgb = [self.to_rgb1.conv.modulation(latent[:, 1])] + \
                [t.conv.modulation(latent[:, i * 2 + off]) for i, t in enumerate(self.to_rgbs)]
        return s, s_rgb

    def w_plus_to_s(self, latent: torch.Tensor, rgb_index: str = "stylefusion") -> torch.Tensor:
        conv, rgb = self.style_vectors(latent, rgb_index)
        return torch.cat(conv + rgb, dim=1)

    # ---- synthesis (reference) ---------------------------------------------------------------------
    def fixed_noise(self):
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def synthesis_s(self, s: torch.Tensor) -> torch.Tensor:
        """Flat S (B, D) -> image (B, 3, size, size): StyleFusion ``s_to_image`` (fixed noise, fused path)."""
        conv_s, rgb_s = self.s_layout().split(s)
        noise = self.fixed_noise()
        batch = s.shape[0]
        dummy = s.new_zeros(batch, self.style_dim)
        out = self.input(batch)
        out = self.conv1(out, dummy, noise=noise[0], style_vector=conv_s[0])
        skip = self.to_rgb1(out, dummy, style_vector=rgb_s[0])
        i = 1
        for conv1, conv2, noise1, noise2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                        self.to_rgbs):
            out = conv1(out, dummy, noise=noise1, style_vector=conv_s[i])
            out = conv2(out, dummy, noise=noise2, style_vector=conv_s[i + 1])
            skip = to_rgb(out, dummy, skip, style_vector=rgb_s[i // 2 + 1])
            i += 2
        return skip

    def forward(self, styles, input_is_latent=False, truncation=1.0, truncation_latent=None, randomize_noise=False):
        """rosinality's forward for a single style input (no mixing): z or w (B,512) or W+ (B,N,512)."""
        s = styles if input_is_latent else self.style(styles)
        if truncation < 1:
            s = truncation_latent + truncation * (s - truncation_latent)
        latent = s.unsqueeze(1).repeat(1, self.n_latent, 1) if s.ndim < 3 else s
        noise = [None] * self.num_layers if randomize_noise else self.fixed_noise()
        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv1, conv2, noise1, noise2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                        self.to_rgbs):
            out = conv1(out, latent[:, i], noise=noise1)
            out = conv2(out, latent[:, i + 1], noise=noise2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


# ---- W+ -> S as a standalone module (part of the exported encoder) --------------------------------

class WPlusToS(nn.Module):
    """The per-layer affines W+ (B, n_latent, 512) -> flat S (B, D), holding copies of the weights."""

    def __init__(self, gen: Generator, rgb_index: str = "stylefusion"):
        super().__init__()
        if rgb_index not in RGB_INDEX_MODES:
            raise ValueError(f"rgb_index must be one of {RGB_INDEX_MODES}")
        mods = [gen.conv1.conv.modulation] + [c.conv.modulation for c in gen.convs] + \
               [gen.to_rgb1.conv.modulation] + [t.conv.modulation for t in gen.to_rgbs]
        n_conv = len(gen.convs) + 1
        off = 2 if rgb_index == "stylefusion" else 3
        rows = list(range(n_conv)) + [1] + [2 * j + off for j in range(len(gen.to_rgbs))]
        self.rows = rows
        # one (D, 512) weight and (D,) bias; gathered rows of W+ are matched per output block
        self.weight = nn.Parameter(torch.cat([m.weight.detach() * m.scale for m in mods], 0).clone(), requires_grad=False)
        self.bias = nn.Parameter(torch.cat([m.bias.detach() * m.lr_mul for m in mods], 0).clone(), requires_grad=False)
        self.dims = [m.weight.shape[0] for m in mods]

    def forward(self, w_plus: torch.Tensor) -> torch.Tensor:
        outs, o = [], 0
        for r, d in zip(self.rows, self.dims):
            outs.append(F.linear(w_plus[:, r], self.weight[o:o + d], self.bias[o:o + d]))
            o += d
        return torch.cat(outs, 1)


# ---- export form of the synthesis -----------------------------------------------------------------

class _SConv(nn.Module):
    def __init__(self, sc: StyledConv):
        super().__init__()
        mc = sc.conv
        w = (mc.scale * mc.weight.detach()[0]).clone()  # (O, I, k, k)
        self.upsample = mc.upsample
        self.padding = mc.padding
        self.register_buffer("weight", w.transpose(0, 1).contiguous() if self.upsample else w)
        self.register_buffer("w2t", w.pow(2).sum([2, 3]).t().contiguous())  # (I, O)
        if self.upsample:
            self.register_buffer("blur_w", blur_weight(mc.blur.kernel.detach(), mc.out_channel))
            self.blur_pad = mc.blur.pad
            assert self.blur_pad[0] == self.blur_pad[1], "export form needs a symmetric blur pad"
        self.register_buffer("act_bias", sc.activate.bias.detach().view(1, -1, 1, 1).clone())
        self.noise_weight = sc.noise.weight.detach().clone()
        self.negative_slope = sc.activate.negative_slope
        self.act_scale = sc.activate.scale

    def forward(self, x, s, noise):
        dcoef = torch.rsqrt(torch.matmul(s * s, self.w2t) + 1e-8)  # (B, O)
        x = x * s[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, self.weight, stride=2, padding=0)
            out = depthwise_blur(out, self.blur_w, self.blur_pad[0])
        else:
            out = F.conv2d(x, self.weight, padding=self.padding)
        out = out * dcoef[:, :, None, None]
        out = out + noise  # noise_weight * fixed noise, folded at build time
        return F.leaky_relu(out + self.act_bias, self.negative_slope) * self.act_scale


class _SToRGB(nn.Module):
    def __init__(self, tr: ToRGB):
        super().__init__()
        mc = tr.conv
        self.register_buffer("weight", (mc.scale * mc.weight.detach()[0]).clone())
        self.register_buffer("bias", tr.bias.detach().clone())
        self.has_up = hasattr(tr, "upsample")
        if self.has_up:
            self.register_buffer("up_w", upsample2x_weight(tr.upsample.kernel.detach(), 3))
            assert tr.upsample.pad == (2, 1) and tr.upsample.kernel.shape == (4, 4)

    def forward(self, x, s, skip=None):
        out = F.conv2d(x * s[:, :, None, None], self.weight) + self.bias
        if skip is not None:
            out = out + depthwise_upsample2x(skip, self.up_w)
        return out


class SSynthesis(nn.Module):
    """Export form: flat S (B, D) -> image (B, 3, out, out); batch-friendly, no runtime-weight convs.

    ``out_size`` < generator size averages down like e4e's ``face_pool`` (AdaptiveAvgPool2d), as
    fixed matrices when the sizes do not divide.
    """

    def __init__(self, gen: Generator, out_size: int | None = None):
        super().__init__()
        self.layout = gen.s_layout()
        self.register_buffer("const", gen.input.input.detach().clone())
        self.conv1 = _SConv(gen.conv1)
        self.to_rgb1 = _SToRGB(gen.to_rgb1)
        self.convs = nn.ModuleList(_SConv(c) for c in gen.convs)
        self.to_rgbs = nn.ModuleList(_SToRGB(t) for t in gen.to_rgbs)
        convs = [gen.conv1] + list(gen.convs)
        for i, (c, n) in enumerate(zip(convs, gen.fixed_noise())):
            self.register_buffer(f"noise_{i}", (c.noise.weight.detach() * n.detach()).clone())
        self.size = gen.size
        self.out_size = out_size or gen.size
        if self.out_size != self.size:
            if self.size % self.out_size == 0:
                self.pool_factor = self.size // self.out_size
            else:
                self.pool_factor = 0
                self.register_buffer("pool_m", adaptive_pool_matrix(self.size, self.out_size))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        conv_s, rgb_s = self.layout.split(s)
        batch = s.shape[0]
        out = self.const.expand(batch, -1, -1, -1)
        out = self.conv1(out, conv_s[0], self.noise_0)
        skip = self.to_rgb1(out, rgb_s[0])
        for k, to_rgb in enumerate(self.to_rgbs):
            c1, c2 = self.convs[2 * k], self.convs[2 * k + 1]
            out = c1(out, conv_s[2 * k + 1], getattr(self, f"noise_{2 * k + 1}"))
            out = c2(out, conv_s[2 * k + 2], getattr(self, f"noise_{2 * k + 2}"))
            skip = to_rgb(out, rgb_s[k + 1], skip)
        if self.out_size != self.size:
            if self.pool_factor:  # == avg_pool2d, written as reshape + mean so H, W stay static in ONNX
                f, o = self.pool_factor, self.out_size
                skip = skip.reshape(-1, 3, o, f, o, f).mean(dim=(3, 5))
            else:
                skip = torch.matmul(torch.matmul(self.pool_m, skip), self.pool_m.t())
        return skip


class ReferenceSynthesis(nn.Module):
    """Reference S -> image at the pack's crop size: Generator.synthesis_s + e4e's face_pool."""

    def __init__(self, gen: Generator, out_size: int | None = None):
        super().__init__()
        self.gen = gen
        self.out_size = out_size or gen.size

    def forward(self, s):
        img = self.gen.synthesis_s(s)
        if self.out_size != self.gen.size:
            img = F.adaptive_avg_pool2d(img, (self.out_size, self.out_size))
        return img
