"""Gender classifier contract (issue #3 item 5) and the 2-class softmax adapter.

Contract: any ONNX network with

- one input ``[batch, 3, S, S]`` float32, S = the pack's ``crop_size``, RGB, values in the pack's
  normalized space ``(pixel/255 - 0.5) / 0.5`` = [-1, 1] (exactly what the synthesis network outputs);
- one output, one of (pack.json ``networks.gender.output_kind``):
  ``probability`` P(male) in [0, 1], ``[batch]`` or ``[batch, 1]``;
  ``logit`` a real number, P(male) = sigmoid(x), same shapes;
  ``softmax2`` ``[batch, 2]`` scores, ``male_index`` (default 1) is the male column; with
  ``apply_softmax: true`` the runtime applies a softmax first (logits), otherwise they are probabilities.

A classifier with other input sizes or normalization must be wrapped by its owner (the pack format
fixes the image space). :func:`adapt_softmax2` turns a ``softmax2`` network into a ``probability`` one
(``[batch, 1]`` output named ``p_male``) by appending Softmax and a column Slice to the graph, so that
the runtime and TensorRT see one scalar per face.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

OUTPUT_KINDS = ("probability", "logit", "softmax2")


def p_male(out: np.ndarray, kind: str, male_index: int = 1, apply_softmax: bool = False) -> np.ndarray:
    """Network output -> P(male) ``[batch]`` (numpy): the runtime's own rule,
    :func:`pridss_rt.stages.score.p_male_from_raw` (an unknown ``kind`` raises a ValueError)."""
    from pridss_rt.stages.score import p_male_from_raw

    return p_male_from_raw(out, kind, male_index=male_index, apply_softmax=apply_softmax)


def adapt_softmax2(model, male_index: int = 1, apply_softmax: bool = True, output_name: str = "p_male"):
    """ONNX ``softmax2`` classifier -> ``probability`` classifier with output ``[batch, 1]``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if male_index not in (0, 1):
        raise ValueError("male_index must be 0 or 1")
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    if len(g.output) != 1:
        raise ValueError(f"gender network must have one output, has {[o.name for o in g.output]}")
    src = g.output[0].name
    dims = g.output[0].type.tensor_type.shape.dim
    if len(dims) != 2 or (dims[1].HasField("dim_value") and dims[1].dim_value != 2):
        raise ValueError(f"softmax2 output must be [batch, 2], got {[d.dim_value or d.dim_param for d in dims]}")
    cur = src
    if apply_softmax:
        g.node.append(helper.make_node("Softmax", [cur], ["gender_adapter_softmax"], axis=1, name="gender_adapter_softmax"))
        cur = "gender_adapter_softmax"
    for n, v in (("gender_adapter_starts", [male_index]), ("gender_adapter_ends", [male_index + 1]),
                 ("gender_adapter_axes", [1])):
        g.initializer.append(numpy_helper.from_array(np.array(v, np.int64), n))
    g.node.append(helper.make_node("Slice", [cur, "gender_adapter_starts", "gender_adapter_ends", "gender_adapter_axes"],
                                   [output_name], name="gender_adapter_slice"))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", 1]))
    onnx.checker.check_model(m)
    return m


def describe(model) -> dict:
    """Input/output names and shapes of a gender ONNX, plus the output kinds its shape allows."""
    inits = {i.name for i in model.graph.initializer}
    ins = [i for i in model.graph.input if i.name not in inits]
    dim = lambda d: d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")  # noqa: E731
    shape = lambda v: [dim(d) for d in v.type.tensor_type.shape.dim]  # noqa: E731
    out = model.graph.output[0]
    oshape = shape(out)
    kinds = ["softmax2"] if len(oshape) == 2 and oshape[1] == 2 else ["probability", "logit"]
    return {"inputs": [(i.name, shape(i)) for i in ins], "output": (out.name, oshape), "possible_kinds": kinds}


class TinyGenderNet(nn.Module):
    """A small random 2-class classifier for test packs (NOT a gender classifier): logits [B, 2]."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 3, 2, 1),
                                      nn.LeakyReLU(0.2))
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


class GenderProbability(nn.Module):
    """Torch side of the contract: wraps a classifier and returns P(male) ``[B]``."""

    def __init__(self, net: nn.Module, kind: str = "softmax2", male_index: int = 1, apply_softmax: bool = True):
        super().__init__()
        self.net, self.kind, self.male_index, self.apply_softmax = net, kind, male_index, apply_softmax

    def forward(self, x):
        out = self.net(x)
        if self.kind == "probability":
            return out.reshape(out.shape[0])
        if self.kind == "logit":
            return torch.sigmoid(out.reshape(out.shape[0]))
        if self.apply_softmax:
            out = torch.softmax(out, dim=1)
        return out[:, self.male_index]
