"""Networks of the demo pack (small, CPU-friendly, ONNX-exportable)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

LAT_C, GRID, STYLE = 48, 16, 64
LATENT_DIM = LAT_C * GRID * GRID + STYLE  # 12352


def conv(i, o, k=3, s=1):
    return nn.Conv2d(i, o, k, s, k // 2)


class Res(nn.Module):
    def __init__(self, c, style=0):
        super().__init__()
        self.c1, self.c2 = conv(c, c), conv(c, c)
        self.film = nn.Linear(style, 2 * c) if style else None

    def forward(self, x, s=None):
        h = F.leaky_relu(self.c1(x), 0.2)
        if self.film is not None:
            g, b = self.film(s).unsqueeze(-1).unsqueeze(-1).chunk(2, 1)
            h = h * (1 + g) + b
        return x + self.c2(h)


class Encoder(nn.Module):
    """image [B,3,128,128] -> latent [B, 48*16*16 + 64] (spatial map flattened, then style)."""
    def __init__(self):
        super().__init__()
        self.l1 = nn.Conv2d(3, 32, 3, 2, 1)    # 64
        self.l2 = nn.Conv2d(32, 64, 3, 2, 1)   # 32
        self.r2 = Res(64)
        self.l3 = nn.Conv2d(64, 96, 3, 2, 1)   # 16
        self.r3 = Res(96)
        self.r3b = Res(96)
        self.to_map = conv(96, LAT_C, 1)
        self.to_style = nn.Linear(96, STYLE)

    def forward(self, x):
        h = F.leaky_relu(self.l1(x), 0.2)
        h = F.leaky_relu(self.l2(h), 0.2)
        h = self.r2(h)
        h = F.leaky_relu(self.l3(h), 0.2)
        h = self.r3b(self.r3(h))
        m = self.to_map(h)
        s = self.to_style(h.mean((2, 3)))
        return torch.cat([m.flatten(1), s], 1)


class Synthesis(nn.Module):
    """latent [B, 12352] -> image [B,3,128,128] in [-1,1]."""
    def __init__(self):
        super().__init__()
        self.inp = conv(LAT_C, 96)
        self.r16a, self.r16b, self.r16c = Res(96, STYLE), Res(96, STYLE), Res(96, STYLE)
        self.u32 = conv(96, 64)
        self.r32 = Res(64, STYLE)
        self.u64 = conv(64, 32)
        self.r64 = Res(32, STYLE)
        self.u128 = conv(32, 16)
        self.out = conv(16, 3)

    def forward(self, z):
        m = z[:, :LAT_C * GRID * GRID].reshape(-1, LAT_C, GRID, GRID)
        s = z[:, LAT_C * GRID * GRID:]
        h = F.leaky_relu(self.inp(m), 0.2)
        h = self.r16c(self.r16b(self.r16a(h, s), s), s)
        h = F.leaky_relu(self.u32(F.interpolate(h, scale_factor=2.0, mode='nearest')), 0.2)
        h = self.r32(h, s)
        h = F.leaky_relu(self.u64(F.interpolate(h, scale_factor=2.0, mode='nearest')), 0.2)
        h = self.r64(h, s)
        h = F.leaky_relu(self.u128(F.interpolate(h, scale_factor=2.0, mode='nearest')), 0.2)
        return torch.tanh(self.out(h))


def latent_mask(cells):
    """Fusion mask over the flat latent: identity cells of every channel = 1, style = 0."""
    import numpy as np
    m = np.repeat(cells[None], LAT_C, 0).reshape(-1)
    return np.concatenate([m, np.zeros(STYLE, np.float32)]).astype(np.float32)


class SmallCNN(nn.Module):
    """Backbone for gender and identity: takes a 128 crop, optional fixed centre crop, resized to `size` px."""
    def __init__(self, out, crop=None, width=32, size=48):
        super().__init__()
        self.crop, self.size = crop, size  # (y0, y1, x0, x1) in 128-px crop coordinates
        w = width
        self.f = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),          # 32
            nn.Conv2d(w, 2 * w, 3, 1, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, 2, 1), nn.BatchNorm2d(2 * w), nn.ReLU(),  # 16
            nn.Conv2d(2 * w, 4 * w, 3, 1, 1), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.Conv2d(4 * w, 4 * w, 3, 2, 1), nn.BatchNorm2d(4 * w), nn.ReLU(),  # 8
            nn.Conv2d(4 * w, 8 * w, 3, 1, 1), nn.BatchNorm2d(8 * w), nn.ReLU(),
        )
        self.head = nn.Linear(8 * w * (size // 16) ** 2, out)  # size/8 -> size/16 pooled, flattened
        self.drop = nn.Dropout(0.2)

    def features(self, x):
        if self.crop is not None:
            y0, y1, x0, x1 = self.crop
            x = x[:, :, y0:y1, x0:x1]
        x = F.interpolate(x, size=(self.size, self.size), mode='bilinear', align_corners=False)
        h = self.f(x)
        h = F.avg_pool2d(h, 2)
        return self.head(self.drop(h.flatten(1)))


class Gender(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = SmallCNN(1, crop=None, width=24)

    def forward(self, x):  # -> P(male) [B,1]
        return torch.sigmoid(self.net.features(x))

    def logit(self, x):
        return self.net.features(x)


class Identity(nn.Module):
    """Embedding of the central face (eyes..mouth); trained with a CosFace head on train identities.
    width/size: backbone width and the side the inner face is resized to (pack 1.x: 24 / 48)."""
    def __init__(self, dim=128, width=24, size=48):
        super().__init__()
        self.net = SmallCNN(dim, crop=(32, 112, 24, 104), width=width, size=size)
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x):
        return F.normalize(self.bn(self.net.features(x)), dim=1)


class CondSynthesis(nn.Module):
    """Three-way synthesis (issue #21): the pack's decoder, conditioned on the original's background.

    latent [B, 12352] (identity cells from the original, head context + style from the reference) and
    context [B, 4, 128, 128] = the original crop in network space with its head (grown) set to 0, and the hole
    mask (1 where the head was) -> image [B,3,128,128] in [-1,1]: the reference's head over the original's
    background, the hole filled where the new head does not reach. The context branch (a small strided encoder,
    128 -> 16 px) adds its features at every scale through 1x1 convolutions initialized to zero, so a fresh
    CondSynthesis with the weights of a Synthesis renders exactly what that Synthesis renders."""
    def __init__(self, cw=(16, 32, 64, 96)):
        super().__init__()
        self.base = Synthesis()
        c1, c2, c3, c4 = cw
        self.c128 = nn.Sequential(conv(4, c1), nn.LeakyReLU(0.2), conv(c1, c1), nn.LeakyReLU(0.2))
        self.c64 = nn.Sequential(conv(c1, c2, 3, 2), nn.LeakyReLU(0.2), conv(c2, c2), nn.LeakyReLU(0.2))
        self.c32 = nn.Sequential(conv(c2, c3, 3, 2), nn.LeakyReLU(0.2), conv(c3, c3), nn.LeakyReLU(0.2))
        self.c16 = nn.Sequential(conv(c3, c4, 3, 2), nn.LeakyReLU(0.2), conv(c4, c4), nn.LeakyReLU(0.2))
        self.j16, self.j32, self.j64, self.j128 = conv(c4, 96, 1), conv(c3, 64, 1), conv(c2, 32, 1), conv(c1, 16, 1)
        for j in (self.j16, self.j32, self.j64, self.j128):
            nn.init.zeros_(j.weight); nn.init.zeros_(j.bias)

    def forward(self, z, context):
        b = self.base
        f128 = self.c128(context); f64 = self.c64(f128); f32 = self.c32(f64); f16 = self.c16(f32)
        m = z[:, :LAT_C * GRID * GRID].reshape(-1, LAT_C, GRID, GRID)
        s = z[:, LAT_C * GRID * GRID:]
        h = F.leaky_relu(b.inp(m), 0.2) + self.j16(f16)
        h = b.r16c(b.r16b(b.r16a(h, s), s), s)
        h = F.leaky_relu(b.u32(F.interpolate(h, scale_factor=2.0, mode='nearest')), 0.2) + self.j32(f32)
        h = b.r32(h, s)
        h = F.leaky_relu(b.u64(F.interpolate(h, scale_factor=2.0, mode='nearest')), 0.2) + self.j64(f64)
        h = b.r64(h, s)
        h = F.leaky_relu(b.u128(F.interpolate(h, scale_factor=2.0, mode='nearest')), 0.2) + self.j128(f128)
        return torch.tanh(b.out(h))


def head_context(x, p_head, grow=4):
    """The context input of CondSynthesis: x [B,3,H,W] network space, p_head [B,1,H,W] P(head) -> [B,4,H,W]
    (x with the head grown by ``grow`` px set to 0, and that hole mask). Mirrors pridss_rt.stages.blend.head_context."""
    hole = F.max_pool2d((p_head > 0.5).float(), 2 * grow + 1, 1, grow)
    return torch.cat([x * (1 - hole), hole], 1)
