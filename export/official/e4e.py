"""e4e encoder (``omertov/encoder4editing:models/encoders/psp_encoders.py``, ``helpers.py``), key-exact.

``Encoder4Editing(50, 'ir_se', stylegan_size=1024)`` matches the ``encoder.*`` keys of the official
``e4e_ffhq_encode.pt``. ``width`` (default 512) and ``input_size`` (default 256) exist only for
reduced-size parity tests: ``width`` scales every IR-SE channel count (64/128/256/512 at 512) and the
style width; ``input_size`` sets the style heads' spatial sizes (16/32/64 at 256 = input/16, /8, /4).
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, MaxPool2d, Module, PReLU, ReLU, Sequential, Sigmoid

from .ops import EqualLinear


class Flatten(Module):
    def forward(self, x):
        return x.reshape(x.size(0), -1)


def l2_norm(x, axis=1):
    return torch.div(x, torch.norm(x, 2, axis, True))


class Bottleneck(namedtuple("Block", ["in_channel", "depth", "stride"])):
    """A ResNet unit description."""


def get_block(in_channel, depth, num_units, stride=2):
    return [Bottleneck(in_channel, depth, stride)] + [Bottleneck(depth, depth, 1) for _ in range(num_units - 1)]


def get_blocks(num_layers, width=512):
    c = [width // 8, width // 4, width // 2, width]
    units = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}[num_layers]
    ins = [c[0], c[0], c[1], c[2]]
    return [get_block(ins[k], c[k], units[k]) for k in range(4)]


class SEModule(Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.avg_pool = AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(channels, channels // reduction, kernel_size=1, padding=0, bias=False)
        self.relu = ReLU(inplace=True)
        self.fc2 = Conv2d(channels // reduction, channels, kernel_size=1, padding=0, bias=False)
        self.sigmoid = Sigmoid()

    def forward(self, x):
        m = self.sigmoid(self.fc2(self.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * m


class bottleneck_IR(Module):  # noqa: N801 (official class name)
    def __init__(self, in_channel, depth, stride, se=False):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = MaxPool2d(1, stride)
        else:
            self.shortcut_layer = Sequential(Conv2d(in_channel, depth, (1, 1), stride, bias=False), BatchNorm2d(depth))
        layers = [BatchNorm2d(in_channel), Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
                  PReLU(depth), Conv2d(depth, depth, (3, 3), stride, 1, bias=False), BatchNorm2d(depth)]
        if se:  # the SE variant appends the squeeze-excitation block as res_layer.5 (official key layout)
            layers.append(SEModule(depth, 16))
        self.res_layer = Sequential(*layers)

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class bottleneck_IR_SE(bottleneck_IR):  # noqa: N801
    def __init__(self, in_channel, depth, stride):
        super().__init__(in_channel, depth, stride, se=True)


def _upsample_add(x, y):
    _, _, h, w = y.size()
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True) + y


class GradualStyleBlock(Module):
    def __init__(self, in_c, out_c, spatial):
        super().__init__()
        self.out_c = out_c
        self.spatial = spatial
        num_pools = int(np.log2(spatial))
        modules = [Conv2d(in_c, out_c, kernel_size=3, stride=2, padding=1), nn.LeakyReLU()]
        for _ in range(num_pools - 1):
            modules += [Conv2d(out_c, out_c, kernel_size=3, stride=2, padding=1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*modules)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x):
        x = self.convs(x)
        return self.linear(x.reshape(-1, self.out_c))


class Encoder4Editing(Module):
    def __init__(self, num_layers=50, mode="ir_se", stylegan_size=1024, width=512, input_size=256):
        super().__init__()
        unit = {"ir": bottleneck_IR, "ir_se": bottleneck_IR_SE}[mode]
        blocks = get_blocks(num_layers, width)
        self.input_layer = Sequential(Conv2d(3, width // 8, (3, 3), 1, 1, bias=False), BatchNorm2d(width // 8),
                                      PReLU(width // 8))
        self.body = Sequential(*[unit(b.in_channel, b.depth, b.stride) for block in blocks for b in block])
        self.styles = nn.ModuleList()
        log_size = int(math.log(stylegan_size, 2))
        self.style_count = 2 * log_size - 2
        self.coarse_ind = 3
        self.middle_ind = 7
        sp = input_size // 16
        for i in range(self.style_count):
            spatial = sp if i < self.coarse_ind else (2 * sp if i < self.middle_ind else 4 * sp)
            self.styles.append(GradualStyleBlock(width, width, spatial))
        self.latlayer1 = nn.Conv2d(width // 2, width, kernel_size=1, stride=1, padding=0)
        self.latlayer2 = nn.Conv2d(width // 4, width, kernel_size=1, stride=1, padding=0)
        # body unit indices of the taps (units 6, 20, 23 for IR-SE50)
        units = [len(b) for b in blocks]
        self.taps = (units[0] + units[1] - 1, units[0] + units[1] + units[2] - 1, sum(units) - 1)

    def forward(self, x):
        x = self.input_layer(x)
        c1 = c2 = c3 = None
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i == self.taps[0]:
                c1 = x
            elif i == self.taps[1]:
                c2 = x
            elif i == self.taps[2]:
                c3 = x
        w0 = self.styles[0](c3)
        rows = [w0]
        features = c3
        p2 = None
        for i in range(1, self.style_count):
            if i == self.coarse_ind:
                p2 = _upsample_add(c3, self.latlayer1(c2))
                features = p2
            elif i == self.middle_ind:
                features = _upsample_add(p2, self.latlayer2(c1))
            rows.append(w0 + self.styles[i](features))
        return torch.stack(rows, dim=1)  # (B, style_count, width): w0 repeated + deltas


class E4EToS(Module):
    """Exported encoder: image (B,3,H,W) in [-1,1] -> W+ (+ latent_avg) -> S (B, D)."""

    def __init__(self, encoder: Encoder4Editing, latent_avg: torch.Tensor | None, w_to_s: Module):
        super().__init__()
        self.encoder = encoder
        n, d = encoder.style_count, encoder.styles[0].out_c
        avg = torch.zeros(n, d) if latent_avg is None else latent_avg.detach().reshape(-1, d).expand(n, d).clone()
        self.register_buffer("latent_avg", avg)
        self.w_to_s = w_to_s

    def w_plus(self, x):
        return self.encoder(x) + self.latent_avg[None]

    def forward(self, x):
        return self.w_to_s(self.w_plus(x))
