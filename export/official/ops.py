"""Pure-PyTorch versions of rosinality's custom ops (no CUDA extension, no JIT build at import).

``fused_leaky_relu`` and ``upfirdn2d_native`` follow rosinality/stylegan2-pytorch ``op/fused_act.py``
and ``op/upfirdn2d.py`` (their CPU fallbacks); module classes keep the original parameter/buffer
names so that checkpoints load strictly. ``Upsample2x``/``Blur4`` below are the export forms: fixed
depthwise (transposed) convolutions that equal ``upfirdn2d`` for the [1,3,3,1] kernels StyleGAN2 uses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2, scale: float = SQRT2):
    rest = [1] * (x.ndim - bias.ndim - 1)
    return F.leaky_relu(x + bias.view(1, bias.shape[0], *rest), negative_slope=negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int, negative_slope: float = 0.2, scale: float = SQRT2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


def upfirdn2d_native(x, kernel, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
    _, channel, in_h, in_w = x.shape
    x = x.reshape(-1, in_h, in_w, 1)
    _, in_h, in_w, minor = x.shape
    kernel_h, kernel_w = kernel.shape
    out = x.view(-1, in_h, 1, in_w, 1, minor)
    out = F.pad(out, [0, 0, 0, up_x - 1, 0, 0, 0, up_y - 1])
    out = out.view(-1, in_h * up_y, in_w * up_x, minor)
    out = F.pad(out, [0, 0, max(pad_x0, 0), max(pad_x1, 0), max(pad_y0, 0), max(pad_y1, 0)])
    out = out[:, max(-pad_y0, 0): out.shape[1] - max(-pad_y1, 0), max(-pad_x0, 0): out.shape[2] - max(-pad_x1, 0), :]
    out = out.permute(0, 3, 1, 2)
    out = out.reshape([-1, 1, in_h * up_y + pad_y0 + pad_y1, in_w * up_x + pad_x0 + pad_x1])
    w = torch.flip(kernel, [0, 1]).view(1, 1, kernel_h, kernel_w)
    out = F.conv2d(out, w)
    out = out.reshape(-1, minor, in_h * up_y + pad_y0 + pad_y1 - kernel_h + 1,
                      in_w * up_x + pad_x0 + pad_x1 - kernel_w + 1)
    out = out.permute(0, 2, 3, 1)
    out = out[:, ::down_y, ::down_x, :]
    out_h = (in_h * up_y + pad_y0 + pad_y1 - kernel_h) // down_y + 1
    out_w = (in_w * up_x + pad_x0 + pad_x1 - kernel_w) // down_x + 1
    return out.view(-1, channel, out_h, out_w)


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    return upfirdn2d_native(x, kernel, up, up, down, down, pad[0], pad[1], pad[0], pad[1])


def make_kernel(k):
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    k /= k.sum()
    return k


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class Upsample(nn.Module):
    """rosinality ``Upsample`` (buffer ``kernel``): upfirdn2d(up=2, pad=(2, 1)) for a 4-tap kernel."""

    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        kernel = make_kernel(kernel) * (factor ** 2)
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, down=1, pad=self.pad)


class Blur(nn.Module):
    """rosinality ``Blur`` (buffer ``kernel``)."""

    def __init__(self, kernel, pad, upsample_factor=1):
        super().__init__()
        kernel = make_kernel(kernel)
        if upsample_factor > 1:
            kernel = kernel * (upsample_factor ** 2)
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualLinear(nn.Module):
    """rosinality ``EqualLinear``: stores W/lr_mul, applies W*(lr_mul/sqrt(in)) and bias*lr_mul."""

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul if self.bias is not None else None)


# ---- export forms ---------------------------------------------------------------------------------

def upsample2x_weight(kernel: torch.Tensor, channels: int) -> torch.Tensor:
    """Depthwise ConvTranspose weight (C, 1, 4, 4) for :func:`depthwise_upsample2x`.

    upfirdn2d correlates the zero-inserted input with flip(kernel); as a transposed conv (stride 2,
    pad 1) that is the kernel itself (checked with an asymmetric kernel in tests/test_official.py).
    """
    return kernel.view(1, 1, 4, 4).repeat(channels, 1, 1, 1).contiguous()


def depthwise_upsample2x(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """== upfirdn2d(x, kernel, up=2, pad=(2, 1)) for a 4x4 kernel (weight from :func:`upsample2x_weight`)."""
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=weight.shape[0])


def blur_weight(kernel: torch.Tensor, channels: int) -> torch.Tensor:
    """Depthwise Conv weight (C, 1, kh, kw) for :func:`depthwise_blur`: the flipped kernel."""
    kh, kw = kernel.shape
    return torch.flip(kernel, [0, 1]).view(1, 1, kh, kw).repeat(channels, 1, 1, 1).contiguous()


def depthwise_blur(x: torch.Tensor, weight: torch.Tensor, pad: int) -> torch.Tensor:
    """== upfirdn2d(x, kernel, pad=(pad, pad)): zero padding + depthwise conv (weight from :func:`blur_weight`)."""
    return F.conv2d(x, weight, padding=pad, groups=weight.shape[0])


def adaptive_pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix P with P @ v == AdaptiveAvgPool1d(n_out)(v) (PyTorch's window rule).

    Used as two MatMuls for AdaptiveAvgPool2d with sizes that do not divide (188 -> 112), which the
    ONNX exporters cannot express as a pooling op.
    """
    p = torch.zeros(n_out, n_in)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = -((-(i + 1) * n_in) // n_out)
        p[i, start:end] = 1.0 / (end - start)
    return p
