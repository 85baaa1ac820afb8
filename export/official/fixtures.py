"""Random-weight, official-layout checkpoints and face-like images for tests and verify_official.py.

Nothing here is a trained network. The files written by :func:`write_checkpoints` have exactly the
official containers and key names (``{"g_ema", "latent_avg"}``, e4e's ``{"state_dict": {encoder.*,
decoder.*}, "latent_avg", "opts"}``, ``model_ir_se50.pth``, ``ffhq_weights.json`` + ``<node>.pt``), at
full size or at the reduced ``SMALL`` configuration (same topology, fewer channels / pixels).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .arcface import Backbone
from .e4e import Encoder4Editing
from .gender import TinyGenderNet
from .stylefusion import FFHQ_NODES, FusionNet
from .stylegan2 import Generator


@dataclass(frozen=True)
class Config:
    gen_size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channels: dict | None = None  # None: official (channel_multiplier 2)
    crop_size: int = 256  # e4e input == pack crop
    width: int = 512  # IR-SE width (e4e body and ArcFace)
    fusion_size: int = 512
    extra: dict = field(default_factory=dict)


FULL = Config()
SMALL = Config(gen_size=64, style_dim=128, n_mlp=2, channels={4: 128, 8: 128, 16: 64, 32: 32, 64: 16}, crop_size=32,
               width=128, fusion_size=128)


def _randomize(module: torch.nn.Module, gen: torch.Generator, scale: float = 0.3) -> None:
    """Small random values for parameters that official init leaves at 0/1 (biases, noise strengths, BN)."""
    for name, p in module.named_parameters():
        if name.endswith("noise.weight") or name.endswith("activate.bias") or (name.endswith("bias") and p.ndim == 4):
            p.data.copy_(torch.randn(p.shape, generator=gen) * scale)
    for name, b in module.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn(b.shape, generator=gen) * 0.05)
        elif name.endswith("running_var"):
            b.copy_(1.0 + torch.rand(b.shape, generator=gen) * 0.5)


def build(cfg: Config = SMALL, seed: int = 0) -> dict:
    """Random networks of ``cfg`` (eval mode)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    gen = Generator(cfg.gen_size, cfg.style_dim, cfg.n_mlp, channels=cfg.channels).eval()
    _randomize(gen, g)
    enc = Encoder4Editing(50, "ir_se", cfg.gen_size, width=cfg.width, input_size=cfg.crop_size).eval()
    _randomize(enc, g)
    with torch.no_grad():  # keep the deltas small, like a trained e4e (codes near latent_avg)
        for st in enc.styles:
            st.linear.weight.mul_(0.1)
    if cfg.width != cfg.style_dim:
        raise ValueError("e4e width must equal the StyleGAN style_dim")
    arc = Backbone(112, 50, "ir_se", 0.6, width=cfg.width).eval()
    _randomize(arc, g)
    nets = {n: FusionNet(size=cfg.fusion_size).eval() for n in FFHQ_NODES}
    with torch.no_grad():
        latent_avg = gen.mean_latent(4096, generator=g)[0]
    gender = TinyGenderNet().eval()
    return {"generator": gen, "encoder": enc, "arcface": arc, "fusion": nets, "latent_avg": latent_avg,
            "gender": gender, "config": cfg}


def write_checkpoints(nets: dict, folder: str | Path) -> dict[str, Path]:
    """Write the networks in the official file layouts; returns the paths make_pack.py takes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen, enc = nets["generator"], nets["encoder"]
    sg = folder / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": gen.state_dict(), "latent_avg": nets["latent_avg"].clone()}, sg)
    e4e = folder / "e4e_ffhq_encode.pt"
    sd = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    sd.update({f"decoder.{k}": v for k, v in gen.state_dict().items()})
    opts = {"encoder_type": "Encoder4Editing", "stylegan_size": gen.size, "start_from_latent_avg": True,
            "checkpoint_path": None}
    torch.save({"state_dict": sd, "opts": opts,
                "latent_avg": nets["latent_avg"].reshape(1, -1).repeat(enc.style_count, 1)}, e4e)
    arc = folder / "model_ir_se50.pth"
    torch.save(nets["arcface"].state_dict(), arc)
    wdir = folder / "weights" / "ffhq"
    wdir.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for n, net in nets["fusion"].items():
        torch.save({"state_dict": net.state_dict()} if n == "all" else net.state_dict(), wdir / f"{n}.pt")
        mapping[n] = f"weights/ffhq/{n}.pt"
    js = folder / "weights" / "ffhq_weights.json"
    js.write_text(json.dumps(mapping, indent=1))
    return {"stylegan": sg, "e4e": e4e, "arcface": arc, "stylefusion": js}


def export_gender(nets: dict, path: str | Path) -> Path:
    from .onnx_export import export_gender as _exp

    return _exp(nets["gender"], nets["config"].crop_size, path, output_name="logits")


@torch.no_grad()
def sample_faces(nets: dict, n: int, seed: int = 1, truncation: float = 0.7) -> np.ndarray:
    """n generator samples at crop size, (n, 3, S, S) float32 in [-1, 1] (the normalized space)."""
    gen, cfg = nets["generator"], nets["config"]
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, gen.style_dim, generator=g)
    w = gen.mapping(z, truncation, nets["latent_avg"][None])
    img = gen(w, input_is_latent=True)
    img = torch.nn.functional.adaptive_avg_pool2d(img, cfg.crop_size)
    # random-weight outputs are not in [-1, 1]: squash like a display would
    return torch.tanh(img).numpy().astype(np.float32)


def write_reference_images(images: np.ndarray, folder: str | Path, male: np.ndarray) -> tuple[Path, Path]:
    """PNG files + labels.csv (columns ``file,male``) as make_pack.py reads them."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, m) in enumerate(zip(images, male)):
        rgb = np.clip((img.transpose(1, 2, 0) * 0.5 + 0.5) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        name = f"ref_{i:03d}.png"
        cv2.imwrite(str(folder / name), rgb[:, :, ::-1])
        rows.append((name, int(bool(m))))
    labels = folder / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "male"])
        w.writerows(rows)
    return folder, labels
