"""Loaders for the official checkpoint files. Every file is read with ``torch.load(weights_only=True)``.

- rosinality StyleGAN2: ``{"g_ema": state_dict, "latent_avg"?: (512,)}`` (convert_weight.py) or a
  train.py checkpoint ``{g, d, g_ema, ..., args}`` (``args`` is an argparse.Namespace: allowed as a safe
  global, nothing else is unpickled).
- e4e: ``{"state_dict": {encoder.*, decoder.*, ...}, "latent_avg": (18, 512), "opts": dict}``.
- ArcFace: ``model_ir_se50.pth``, a plain state dict of ``Backbone(112, 50, 'ir_se')``.
- StyleFusion: ``weights/ffhq_weights.json`` ({node: path}) or a folder with ``<node>.pt``; each file a
  FusionNet state dict, optionally under ``"state_dict"``.

Sizes are inferred from the tensors (size, channel multiplier, style count, ...), so 256/512/1024 and
any channel multiplier load without flags; every load is ``strict=True``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Mapping

import torch

from .arcface import Backbone
from .e4e import Encoder4Editing
from .stylefusion import FFHQ_NODES, FusionNet
from .stylegan2 import Generator, official_channels


class CheckpointError(RuntimeError):
    pass


def torch_load(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``; argparse.Namespace (rosinality train.py ``args``) is allowed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise CheckpointError(f"{path}: cannot load with weights_only=True: {exc}") from None


def _source(obj_or_path) -> tuple[Any, str]:
    if isinstance(obj_or_path, (str, Path)):
        return torch_load(obj_or_path), str(obj_or_path)
    return obj_or_path, "<in-memory checkpoint>"


def _strict_load(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], where: str) -> None:
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: state dict does not match the official layout: {exc}") from None


# ---- StyleGAN2 -------------------------------------------------------------------------------------

def stylegan2_config(sd: Mapping[str, torch.Tensor]) -> dict:
    """Generator kwargs inferred from a ``g_ema`` state dict."""
    try:
        n_rgbs = len({k.split(".")[1] for k in sd if k.startswith("to_rgbs.")})
        size = 2 ** (n_rgbs + 2)
        n_mlp = len({k.split(".")[1] for k in sd if k.startswith("style.") and k.endswith(".weight")})
        style_dim = int(sd["style.1.weight"].shape[0]) if n_mlp else int(sd["conv1.conv.modulation.weight"].shape[1])
        channels = {4: int(sd["input.input"].shape[1])}
        for k in range(n_rgbs):
            channels[2 ** (k + 3)] = int(sd[f"convs.{2 * k}.conv.weight"].shape[1])
    except KeyError as exc:
        raise CheckpointError(f"not a rosinality StyleGAN2 state dict (missing {exc})") from None
    cfg: dict = {"size": size, "style_dim": style_dim, "n_mlp": n_mlp}
    for cm in (1, 2, 4):
        off = official_channels(cm)
        if all(off[r] == c for r, c in channels.items()):
            cfg["channel_multiplier"] = cm
            break
    else:
        cfg["channels"] = channels
    return cfg


def load_stylegan2(ckpt, key: str = "g_ema") -> tuple[Generator, torch.Tensor | None]:
    """-> (Generator in eval mode, latent_avg (512,) or None)."""
    obj, where = _source(ckpt)
    if not isinstance(obj, Mapping) or key not in obj:
        have = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"{where}: no '{key}' entry (has {have}); expected a rosinality checkpoint")
    sd = obj[key]
    gen = Generator(**stylegan2_config(sd))
    _strict_load(gen, sd, f"{where}: {key}")
    latent_avg = obj.get("latent_avg")
    return gen.eval(), (latent_avg.float() if isinstance(latent_avg, torch.Tensor) else None)


# ---- e4e -------------------------------------------------------------------------------------------

def _prefixed(sd: Mapping[str, torch.Tensor], name: str) -> dict:
    return {k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")}


def e4e_config(sd: Mapping[str, torch.Tensor]) -> dict:
    width = int(sd["input_layer.0.weight"].shape[0]) * 8
    n_styles = len({k.split(".")[1] for k in sd if k.startswith("styles.")})
    n_convs0 = len({k.split(".")[3] for k in sd if k.startswith("styles.0.convs.")})
    n_units = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    num_layers = {24: 50, 49: 100, 50: 152}.get(n_units)
    if num_layers is None:
        raise CheckpointError(f"unexpected IR body with {n_units} units")
    mode = "ir_se" if any(".res_layer.5.fc1." in k for k in sd) else "ir"
    return {"num_layers": num_layers, "mode": mode, "stylegan_size": 2 ** ((n_styles + 2) // 2), "width": width,
            "input_size": 16 * 2 ** n_convs0}


def load_e4e(ckpt) -> dict:
    """-> {"encoder": Encoder4Editing, "latent_avg": (N,512) or None, "opts": dict, "decoder": Generator|None}."""
    obj, where = _source(ckpt)
    if not isinstance(obj, Mapping) or "state_dict" not in obj:
        raise CheckpointError(f"{where}: no 'state_dict' entry; expected an e4e/pSp checkpoint")
    sd = obj["state_dict"]
    enc_sd = _prefixed(sd, "encoder")
    if not enc_sd:
        raise CheckpointError(f"{where}: no 'encoder.*' keys in state_dict")
    cfg = e4e_config(enc_sd)
    opts = dict(obj.get("opts") or {})
    if opts.get("encoder_type", "Encoder4Editing") != "Encoder4Editing":
        raise CheckpointError(f"{where}: opts.encoder_type is {opts['encoder_type']!r}, not Encoder4Editing")
    if "stylegan_size" in opts and int(opts["stylegan_size"]) != cfg["stylegan_size"]:
        raise CheckpointError(f"{where}: opts.stylegan_size={opts['stylegan_size']} but the encoder has "
                              f"{2 * int(math.log2(cfg['stylegan_size'])) - 2} style heads")
    enc = Encoder4Editing(**cfg)
    _strict_load(enc, enc_sd, f"{where}: encoder")
    latent_avg = obj.get("latent_avg")
    if not opts.get("start_from_latent_avg", True):
        latent_avg = None
    dec_sd = _prefixed(sd, "decoder")
    decoder = None
    if dec_sd:
        decoder = Generator(**stylegan2_config(dec_sd))
        _strict_load(decoder, dec_sd, f"{where}: decoder")
        decoder.eval()
    return {"encoder": enc.eval(), "latent_avg": latent_avg.float() if isinstance(latent_avg, torch.Tensor) else None,
            "opts": opts, "decoder": decoder}


# ---- ArcFace ---------------------------------------------------------------------------------------

def load_arcface(ckpt) -> Backbone:
    obj, where = _source(ckpt)
    sd = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(sd, Mapping) or "input_layer.0.weight" not in sd:
        raise CheckpointError(f"{where}: not an IR-SE (model_ir_se50.pth) state dict")
    width = int(sd["input_layer.0.weight"].shape[0]) * 8
    side = int(round(math.sqrt(sd["output_layer.3.weight"].shape[1] / width)))
    n_units = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    num_layers = {24: 50, 49: 100, 50: 152}[n_units]
    mode = "ir_se" if any(".res_layer.5.fc1." in k for k in sd) else "ir"
    affine = "output_layer.4.weight" in sd
    net = Backbone(side * 16, num_layers, mode, drop_ratio=0.6, affine=affine, width=width)
    _strict_load(net, sd, where)
    return net.eval()


# ---- StyleFusion -----------------------------------------------------------------------------------

def _fusion_paths(spec: str | Path) -> dict[str, Path]:
    spec = Path(spec)
    if spec.is_dir():
        paths = {n: spec / f"{n}.pt" for n in FFHQ_NODES}
    else:
        raw = json.loads(spec.read_text())
        paths = {}
        for node, rel in raw.items():
            cands = [Path(rel), spec.parent / rel, spec.parent.parent / rel, spec.parent / Path(rel).name,
                     spec.parent / "ffhq" / Path(rel).name]
            paths[node] = next((c for c in cands if c.is_file()), Path(rel))
    missing = [f"{n} ({p})" for n, p in paths.items() if not p.is_file()]
    if missing:
        raise CheckpointError(f"{spec}: StyleFusion weight files not found: {', '.join(missing)}")
    return paths


def fusion_config(sd: Mapping[str, torch.Tensor]) -> dict:
    size = int(sd["blender_common.disentangle_net.4.weight"].shape[0])
    in_common = int(sd["blender_common.disentangle_net.0.weight"].shape[1])
    bits = (in_common - 2 * size) // 19
    return {"size": size, "index_bits": bits}


def load_fusion_net(ckpt) -> FusionNet:
    obj, where = _source(ckpt)
    sd = obj["state_dict"] if isinstance(obj, Mapping) and "state_dict" in obj else obj
    net = FusionNet(**fusion_config(sd))
    _strict_load(net, sd, where)
    return net.eval()


def load_stylefusion(spec: str | Path) -> dict[str, FusionNet]:
    """``ffhq_weights.json`` or a folder of ``<node>.pt`` -> {node: FusionNet} for the 5 FFHQ nodes."""
    paths = _fusion_paths(spec)
    nets = {n: load_fusion_net(p) for n, p in paths.items()}
    missing = set(FFHQ_NODES) - set(nets)
    if missing:
        raise CheckpointError(f"{spec}: no weights for FFHQ nodes {sorted(missing)}")
    return nets
