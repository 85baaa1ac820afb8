"""Train the restoration autoencoder ("A" of the PrivacyProber-style attacks in ``pridss-rt eval``).

A small fully-convolutional denoising autoencoder (3 stride-2 convolutions down to a 16x16x32
bottleneck at 128 px, three upsample+conv blocks back) trained on **clean train-split faces** of
CelebA-HQ only (the eval runs on the val split; identities are disjoint). Projecting an anonymized
face through a model of clean faces removes perturbations a privacy method may rely on; the eval then
measures the gender AUC again.

Recipe: random 64x64 crops of the 128-px images (the network is fully convolutional and runs on the
whole 128-px face at eval time), random horizontal flips, Gaussian noise of sigma ~ U(0, 0.08) on
the input (a denoising AE), L1 loss to the clean crop, Adam 2e-3 with cosine decay, fixed seed, time-limited (``--minutes``). CPU, 1 thread (another training shares the
machine): run it with ``nice -n 15``.

Output: ``--out`` (default ``pridss_rt/assets/restorer_ae.onnx``): input ``image`` float32
(N, 3, H, W) RGB in [0, 1] with H, W multiples of 8; output ``restored`` of the same shape.
Licence: trained on CelebA-HQ, the weights inherit its non-commercial research licence.

Usage::

    nice -n 15 python research/training/train_restorer.py --manifest ../shared/data/celebahq/manifest.csv \
        --minutes 9 --out pridss_rt/assets/restorer_ae.onnx
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def load_faces(manifest: Path, split: str, n: int, seed: int) -> np.ndarray:
    rows = [r for r in csv.DictReader(open(manifest, newline="")) if r.get("split", split) == split]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    out = []
    for i in pick:
        img = cv2.imread(str(manifest.parent / rows[i]["file"]), cv2.IMREAD_COLOR)
        if img is None:
            continue
        if img.shape[:2] != (128, 128):
            img = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
        out.append(img[:, :, ::-1])  # RGB
    return np.stack(out)


def build_model():
    import torch.nn as nn

    def down(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True))

    def up(i, o):
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(i, o, 3, 1, 1),
                             nn.LeakyReLU(0.2, inplace=True))

    class RestorerAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(down(3, 32), down(32, 64), down(64, 128), nn.Conv2d(128, 32, 1))
            self.dec = nn.Sequential(nn.Conv2d(32, 128, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                                     up(128, 64), up(64, 32), up(32, 32), nn.Conv2d(32, 3, 3, 1, 1), nn.Sigmoid())

        def forward(self, image):
            return self.dec(self.enc(image))

    return RestorerAE()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="train the eval's restoration autoencoder on clean train faces")
    ap.add_argument("--manifest", type=Path, default=Path("../shared/data/celebahq/manifest.csv"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--n", type=int, default=8000, help="train images loaded")
    ap.add_argument("--minutes", type=float, default=9.0, help="wall-clock training budget")
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("pridss_rt/assets/restorer_ae.onnx"))
    ap.add_argument("--log", type=Path, default=Path("runs/restorer/log.jsonl"))
    a = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t_load = time.time()
    faces = load_faces(a.manifest, a.split, a.n, a.seed)
    hold = faces[-256:]  # held-out train images for the log (never val)
    faces = faces[:-256]
    print(f"loaded {len(faces)} + {len(hold)} held-out {a.split} faces in {time.time() - t_load:.0f} s", flush=True)
    data = torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    held = torch.from_numpy(np.ascontiguousarray(hold)).permute(0, 3, 1, 2).float() / 255.0

    model = build_model()
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    a.log.parent.mkdir(parents=True, exist_ok=True)
    logf = open(a.log, "w")
    budget = a.minutes * 60.0
    t0 = time.time()
    step = 0
    while step < a.max_steps and time.time() - t0 < budget:
        frac = min(1.0, (time.time() - t0) / budget)
        for gp in opt.param_groups:
            gp["lr"] = a.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac))) * min(1.0, (step + 1) / 50)
        idx = torch.from_numpy(rng.integers(0, len(data), a.batch))
        y0, x0 = (int(v) for v in rng.integers(0, 128 - a.crop + 1, 2))
        clean = data[idx, :, y0:y0 + a.crop, x0:x0 + a.crop].float() / 255.0
        if rng.random() < 0.5:
            clean = clean.flip(3)
        sigma = torch.from_numpy(rng.uniform(0, 0.08, (a.batch, 1, 1, 1)).astype(np.float32))
        noisy = (clean + sigma * torch.randn_like(clean)).clamp(0, 1)
        loss = F.l1_loss(model(noisy), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            model.eval()
            with torch.no_grad():
                rec = model(held[:64])
                psnr = float((-10 * torch.log10(((rec - held[:64]) ** 2).mean((1, 2, 3)))).mean())
            model.train()
            rec_line = {"step": step, "loss": round(float(loss), 4), "heldout_psnr": round(psnr, 2),
                        "s": round(time.time() - t0)}
            print(json.dumps(rec_line), flush=True)
            logf.write(json.dumps(rec_line) + "\n")
            logf.flush()
        step += 1
    model.eval()
    with torch.no_grad():
        rec = model(held)
        psnr = float((-10 * torch.log10(((rec - held) ** 2).mean((1, 2, 3)))).mean())
    print(f"trained {step} steps in {time.time() - t0:.0f} s; {nparams} parameters; held-out PSNR {psnr:.2f} dB", flush=True)

    a.out.parent.mkdir(parents=True, exist_ok=True)
    x = held[:2]
    torch.onnx.export(model, (x,), str(a.out), input_names=["image"], output_names=["restored"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                    "restored": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=17, dynamo=False)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(a.out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": held[:4].numpy()})[0]
    with torch.no_grad():
        ref = model(held[:4]).numpy()
    err = float(np.abs(got - ref).max())
    meta = {"steps": step, "seconds": round(time.time() - t0), "parameters": nparams, "heldout_psnr_db": round(psnr, 2),
            "train_images": len(faces), "split": a.split, "crop": a.crop, "batch": a.batch, "seed": a.seed,
            "onnx_parity_max_abs_err": err, "bytes": os.path.getsize(a.out)}
    print(json.dumps(meta), flush=True)
    logf.write(json.dumps({"final": meta}) + "\n")
    if err > 1e-4:
        print("ONNX parity check failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
