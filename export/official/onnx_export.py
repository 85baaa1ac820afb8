"""ONNX export of the official networks with a dynamic ``batch`` axis (TorchScript exporter, opset 17).

Every exported graph takes/returns float32 NCHW (images, normalized space mean=std=0.5, RGB) or flat S
codes ``[batch, D]``. After export the file is checked with ``onnx.checker`` (by path, so external
data is fine) and its batch axis is verified to be symbolic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

OPSET = 17


def export(module: torch.nn.Module, example: tuple[torch.Tensor, ...], path: str | Path, input_names: list[str],
           output_names: list[str], opset: int = OPSET) -> Path:
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    axes = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    with torch.no_grad():
        outs = module(*example)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    m = onnx.load(str(path), load_external_data=False)
    changed = False
    for v, t in zip(m.graph.output, outs):  # pin the non-batch dims the exporter left symbolic
        for d, n in zip(list(v.type.tensor_type.shape.dim)[1:], t.shape[1:]):
            if not d.HasField("dim_value"):
                d.Clear()
                d.dim_value = int(n)
                changed = True
    if changed:
        m = onnx.load(str(path))
        for v, t in zip(m.graph.output, outs):
            for d, n in zip(list(v.type.tensor_type.shape.dim)[1:], t.shape[1:]):
                if not d.HasField("dim_value"):
                    d.Clear()
                    d.dim_value = int(n)
        onnx.save_model(m, str(path))
    onnx.checker.check_model(str(path))
    m = onnx.load(str(path), load_external_data=False)
    for v in list(m.graph.input) + list(m.graph.output):
        d0 = v.type.tensor_type.shape.dim[0]
        if d0.dim_param != "batch":
            raise RuntimeError(f"{path.name}: {v.name} has no symbolic 'batch' axis ({d0})")
    return path


def export_synthesis(synth: torch.nn.Module, dim: int, path, batch: int = 2) -> Path:
    """SSynthesis: latent [batch, D] -> image [batch, 3, S, S]."""
    return export(synth, (torch.zeros(batch, dim),), path, ["latent"], ["image"])


def export_encoder(enc: torch.nn.Module, input_size: int, path, batch: int = 2) -> Path:
    """E4EToS: image [batch, 3, S, S] -> latent [batch, D]."""
    return export(enc, (torch.zeros(batch, 3, input_size, input_size),), path, ["image"], ["latent"])


def export_identity(idnet: torch.nn.Module, crop_size: int, path, batch: int = 2) -> Path:
    """IdentityNet: image [batch, 3, S, S] -> embedding [batch, 512]."""
    return export(idnet, (torch.zeros(batch, 3, crop_size, crop_size),), path, ["image"], ["embedding"])


def export_fusion(fusion: torch.nn.Module, dim: int, path, batch: int = 2) -> Path:
    """StyleFusionS: (latent_orig, latent_ref) [batch, D] each -> latent [batch, D]."""
    z = torch.zeros(batch, dim)
    return export(fusion, (z, z), path, ["latent_orig", "latent_ref"], ["latent"])


def export_gender(net: torch.nn.Module, crop_size: int, path, output_name: str = "p_male", batch: int = 2) -> Path:
    return export(net, (torch.zeros(batch, 3, crop_size, crop_size),), path, ["image"], [output_name])
