"""ArcFace IR-SE50 (TreB1eN layout, ``model_ir_se50.pth``) with e4e/pSp's id-loss preprocessing.

``Backbone(112, 50, 'ir_se', drop_ratio=0.6)`` is what ``criteria/id_loss.py`` builds; its keys are
``input_layer.*``, ``body.{0..23}.*``, ``output_layer.{0,3,4}.*``. :class:`IdentityNet` adds the
preprocessing inside the graph: the crop (pack crop size) is averaged to 256 (== e4e's ``face_pool``
when the crop is a multiple of 256), cut to ``[35:223, 32:220]`` and adaptive-average-pooled to 112,
then the L2-normalised 512-d embedding.
"""

from __future__ import annotations

import torch
from torch.nn import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Linear, Module, PReLU, Sequential

from .e4e import Flatten, bottleneck_IR, bottleneck_IR_SE, get_blocks, l2_norm
from .ops import adaptive_pool_matrix

ID_CROP = (35, 223, 32, 220)  # rows y0:y1, cols x0:x1 on the 256 image (criteria/id_loss.py)


class Backbone(Module):
    def __init__(self, input_size=112, num_layers=50, mode="ir_se", drop_ratio=0.6, affine=True, width=512):
        super().__init__()
        unit = {"ir": bottleneck_IR, "ir_se": bottleneck_IR_SE}[mode]
        blocks = get_blocks(num_layers, width)
        self.input_layer = Sequential(Conv2d(3, width // 8, (3, 3), 1, 1, bias=False), BatchNorm2d(width // 8),
                                      PReLU(width // 8))
        side = input_size // 16
        self.output_layer = Sequential(BatchNorm2d(width), Dropout(drop_ratio), Flatten(),
                                       Linear(width * side * side, 512), BatchNorm1d(512, affine=affine))
        self.body = Sequential(*[unit(b.in_channel, b.depth, b.stride) for block in blocks for b in block])

    def forward(self, x):
        return l2_norm(self.output_layer(self.body(self.input_layer(x))))


class IdentityNet(Module):
    """Pack ``identity`` network: crop (B,3,S,S) in [-1,1] -> 512-d L2-normalised embedding."""

    def __init__(self, backbone: Backbone, crop_size: int, face_size: int = 256):
        super().__init__()
        self.backbone = backbone
        self.crop_size = crop_size
        y0, y1, x0, x1 = ID_CROP
        assert face_size == 256
        # one fixed matrix per axis: (crop -> 256 average) then the id crop then (188 -> 112 adaptive average)
        r = adaptive_pool_matrix(crop_size, 256) if crop_size != 256 else torch.eye(256)
        rows = adaptive_pool_matrix(y1 - y0, 112) @ r[y0:y1]
        cols = adaptive_pool_matrix(x1 - x0, 112) @ r[x0:x1]
        self.register_buffer("rows", rows)  # (112, S)
        self.register_buffer("cols_t", cols.t().contiguous())  # (S, 112)

    def preprocess(self, x):
        return torch.matmul(torch.matmul(self.rows, x), self.cols_t)

    def forward(self, x):
        return self.backbone(self.preprocess(x))


def reference_preprocess(x: torch.Tensor) -> torch.Tensor:
    """e4e's id-loss preprocessing, literally: (AdaptiveAvgPool2d(256) if needed), crop, AdaptiveAvgPool2d(112)."""
    if x.shape[-1] != 256:
        x = torch.nn.functional.adaptive_avg_pool2d(x, (256, 256))
    y0, y1, x0, x1 = ID_CROP
    return torch.nn.functional.adaptive_avg_pool2d(x[:, :, y0:y1, x0:x1], (112, 112))
