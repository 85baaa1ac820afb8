#!/usr/bin/env python
"""Build a pridss-rt model pack from the official PriDSS checkpoints and a folder of reference faces.

    python export/make_pack.py --e4e e4e_ffhq_encode.pt --stylegan stylegan2-ffhq-config-f.pt \\
        --arcface model_ir_se50.pth --stylefusion StyleFusion/weights/ffhq_weights.json \\
        --gender gender.onnx --gender-output-kind softmax2 --male-index 1 --apply-softmax \\
        --references refs/ --labels refs/labels.csv --out packs/official

Networks written (all with a dynamic ``batch`` axis; shapes computed from the checkpoints):

    encoder    image [batch,3,S,S] -> latent [batch,D]   e4e + latent_avg + W+ -> S affines
    fusion     latent_orig, latent_ref -> latent           StyleFusion FFHQ hierarchy (5 nets)
    synthesis  latent [batch,D] -> image [batch,3,S,S]     StyleGAN2 driven by S, face_pool to S
    identity   image -> embedding [batch,512]              ArcFace IR-SE50 + e4e id-loss crop/pool
    gender     image -> P(male) (or logit / softmax2)      the user's ONNX (see export/official/gender.py)

S = the e4e input size (256 for the official e4e), D = the S-space size (9088 for FFHQ 1024).
Reference images must already be FFHQ-aligned crops (e.g. e4e's utils/alignment.py, or the runtime's
aligner with this pack's template); other sizes are resized to S with area interpolation. labels.csv
has a header and columns ``file`` and ``male`` (1/0, or ``gender`` = male/female/m/f).

Exit codes: 0 pack written and loaded by the runtime; 1 failure; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# FFHQ-aligned 5-point template at 512 px (image-left eye, image-right eye, nose tip, image-left mouth
# corner, image-right mouth corner). Source: xinntao/facexlib facexlib/utils/face_restoration_helper.py
# (FaceRestoreHelper.face_template, the template GFPGAN/CodeFormer use for FFHQ-aligned crops).
FFHQ_TEMPLATE_512 = [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]]


def template(crop_size: int) -> list[list[float]]:
    return [[round(x * crop_size / 512.0, 4), round(y * crop_size / 512.0, 4)] for x, y in FFHQ_TEMPLATE_512]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--e4e", required=True, help="e4e checkpoint (state_dict with encoder.*, latent_avg, opts)")
    p.add_argument("--stylegan", help="rosinality StyleGAN2 checkpoint (g_ema); default: the e4e checkpoint's decoder")
    p.add_argument("--arcface", required=True, help="model_ir_se50.pth")
    p.add_argument("--stylefusion", required=True, help="ffhq_weights.json or a folder with <node>.pt")
    p.add_argument("--gender", required=True, help="gender classifier ONNX (contract: export/official/gender.py)")
    p.add_argument("--gender-output-kind", default="probability", choices=("probability", "logit", "softmax2"))
    p.add_argument("--male-index", type=int, default=1, choices=(0, 1))
    p.add_argument("--apply-softmax", action="store_true", help="softmax2 outputs are logits")
    p.add_argument("--keep-softmax2", action="store_true",
                   help="ship a softmax2 classifier as is (default: bake the adapter -> probability [batch,1])")
    p.add_argument("--references", required=True, help="folder of FFHQ-aligned reference face images")
    p.add_argument("--labels", help="CSV file,male (default: <references>/labels.csv)")
    p.add_argument("--out", required=True, help="pack folder to create")
    p.add_argument("--name", help="pack name (default: the folder name)")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--candidates", type=int, default=5)
    p.add_argument("--keep-nose", action="store_true",
                   help="take StyleFusion's skin (which holds the nose) from the original too")
    p.add_argument("--original-parts", nargs="*", help="override the StyleFusion parts taken from the original")
    p.add_argument("--rgb-index", default="stylefusion", choices=("stylefusion", "rosinality"),
                   help="which W+ row feeds ToRGB j>=1 when converting W+ to S")
    p.add_argument("--force", action="store_true", help="overwrite an existing pack folder")
    return p.parse_args(argv)


def say(msg):
    print(f"[make_pack] {msg}", flush=True)


def read_labels(path: Path, folder: Path) -> list[tuple[Path, bool]]:
    rows = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            name = row.get("file") or row.get("filename") or row.get("image")
            if not name:
                raise ValueError(f"{path}: row {i + 2}: no 'file' column")
            if "male" in row and row["male"] != "":
                male = row["male"].strip().lower() in ("1", "true", "yes", "m", "male")
            elif "gender" in row:
                g = row["gender"].strip().lower()
                if g not in ("m", "male", "f", "female"):
                    raise ValueError(f"{path}: row {i + 2}: gender must be male/female, got {row['gender']!r}")
                male = g in ("m", "male")
            else:
                raise ValueError(f"{path}: row {i + 2}: needs a 'male' or 'gender' column")
            p = folder / name
            if not p.is_file():
                raise ValueError(f"{path}: row {i + 2}: image not found: {p}")
            rows.append((p, male))
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def load_faces(paths: list[Path], size: int) -> np.ndarray:
    import cv2

    out = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{p}: cannot read image")
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        rgb = img[:, :, ::-1].astype(np.float32) / 255.0
        out.append(((rgb - 0.5) / 0.5).transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def _onnx_data_files(path: Path) -> list[str]:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    locs = set()
    for t in m.graph.initializer:
        for kv in t.external_data:
            if kv.key == "location":
                locs.add(kv.value)
    return sorted(locs)


def build_pack(args) -> Path:
    import torch

    from export.official import checkpoints as ck
    from export.official import onnx_export as ox
    from export.official.arcface import IdentityNet
    from export.official.e4e import E4EToS
    from export.official.gender import adapt_softmax2, describe
    from export.official.stylefusion import StyleFusionS, pridss_sources
    from export.official.stylegan2 import SSynthesis, WPlusToS
    from pridss_rt.pack import sha256_file, write_pack_json

    torch.set_grad_enabled(False)
    out = Path(args.out)
    if out.exists():
        if not args.force and any(out.iterdir()):
            raise SystemExit(f"make_pack: error: {out} exists and is not empty (use --force)")
        if args.force:
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or out.name

    t0 = time.perf_counter()
    e4e = ck.load_e4e(args.e4e)
    enc, latent_avg = e4e["encoder"], e4e["latent_avg"]
    if args.stylegan:
        gen, _ = ck.load_stylegan2(args.stylegan)
    elif e4e["decoder"] is not None:
        gen = e4e["decoder"]
    else:
        raise SystemExit("make_pack: error: --stylegan is required (the e4e checkpoint has no decoder)")
    if gen.n_latent != enc.style_count:
        raise SystemExit(f"make_pack: error: e4e predicts {enc.style_count} latents but the generator needs {gen.n_latent}")
    backbone = ck.load_arcface(args.arcface)
    nets = ck.load_stylefusion(args.stylefusion)
    crop = enc.styles[0].spatial * 16
    layout = gen.s_layout()
    D = layout.size
    fsize = next(iter(nets.values())).size
    if any(fsize % c for c in layout.dims) or max(layout.dims) > fsize:
        raise SystemExit(f"make_pack: error: StyleFusion nets of width {fsize} cannot blend S layers {sorted(set(layout.dims))}")
    say(f"checkpoints loaded in {time.perf_counter() - t0:.1f} s: generator {gen.size}px ({D}-d S), e4e "
        f"{enc.style_count} styles at {crop}px, fusion width {fsize}")

    import onnx

    gmodel = onnx.load(args.gender)
    info = describe(gmodel)
    if len(info["inputs"]) != 1 or info["inputs"][0][1][1:] != [3, crop, crop]:
        raise SystemExit(f"make_pack: error: gender network input must be [batch, 3, {crop}, {crop}], got {info['inputs']}")
    kind = args.gender_output_kind
    if kind not in info["possible_kinds"]:
        raise SystemExit(f"make_pack: error: gender output {info['output']} does not fit output_kind {kind}")
    gspec: dict = {"output_kind": kind}
    if kind == "softmax2" and not args.keep_softmax2:
        gmodel = adapt_softmax2(gmodel, args.male_index, args.apply_softmax)
        kind, gspec = "probability", {"output_kind": "probability"}
        say("gender: softmax2 adapter baked in (output p_male [batch,1])")
    elif kind == "softmax2":
        gspec.update(male_index=args.male_index, apply_softmax=bool(args.apply_softmax))
    ref_dir = Path(args.references)
    rows = read_labels(Path(args.labels) if args.labels else ref_dir / "labels.csv", ref_dir)
    male = np.array([m for _, m in rows], np.uint8)
    if male.all() or not male.any():
        raise SystemExit("make_pack: error: the reference bank needs faces of both genders")
    sources = pridss_sources(args.keep_nose, args.original_parts)
    encoder = E4EToS(enc, latent_avg, WPlusToS(gen, args.rgb_index)).eval()
    fusion = StyleFusionS(nets, layout, sources).eval()
    synthesis = SSynthesis(gen, crop).eval()
    identity = IdentityNet(backbone, crop).eval()

    files = {}
    for role, fn in (("encoder", lambda p: ox.export_encoder(encoder, crop, p)),
                     ("fusion", lambda p: ox.export_fusion(fusion, D, p)),
                     ("synthesis", lambda p: ox.export_synthesis(synthesis, D, p)),
                     ("identity", lambda p: ox.export_identity(identity, crop, p))):
        t = time.perf_counter()
        files[role] = fn(out / f"{role}.onnx")
        say(f"{role}.onnx exported in {time.perf_counter() - t:.1f} s ({files[role].stat().st_size / 1e6:.1f} MB)")

    gin = info["inputs"][0][0]
    gout = gmodel.graph.output[0]
    gdims = [d.dim_value if d.HasField("dim_value") else "batch" for d in gout.type.tensor_type.shape.dim]
    gdims[0] = "batch"
    onnx.save(gmodel, str(out / "gender.onnx"))
    files["gender"] = out / "gender.onnx"

    # bank: reference faces -> e4e -> S (the same module that was exported)
    faces = load_faces([p for p, _ in rows], crop)
    lat = np.concatenate([encoder(torch.from_numpy(faces[i:i + 8])).numpy() for i in range(0, len(faces), 8)])
    np.savez(out / "bank.npz", latents=lat.astype(np.float32), male=male)
    say(f"bank: {len(lat)} references ({int(male.sum())} male, {int(len(male) - male.sum())} female), S-dim {D}")

    img = lambda n: {"name": n, "shape": ["batch", 3, crop, crop], "dtype": "float32"}  # noqa: E731
    lat_t = lambda n: {"name": n, "shape": ["batch", D], "dtype": "float32"}  # noqa: E731
    io = {"encoder": ("face", [img("image")], [lat_t("latent")]),
          "fusion": ("candidate", [lat_t("latent_orig"), lat_t("latent_ref")], [lat_t("latent")]),
          "synthesis": ("candidate", [lat_t("latent")], [img("image")]),
          "identity": ("candidate", [img("image")], [{"name": "embedding", "shape": ["batch", 512], "dtype": "float32"}]),
          "gender": ("candidate", [img(gin)], [{"name": gout.name, "shape": gdims, "dtype": "float32"}])}
    networks = {}
    for role, (batch, ins, outs) in io.items():
        path = files[role]
        spec = {"file": path.name, "sha256": sha256_file(path), "batch": batch, "inputs": ins, "outputs": outs}
        data = _onnx_data_files(path)
        if data:
            spec["data_files"] = [{"file": d, "sha256": sha256_file(out / d)} for d in data]
        if role == "gender":
            spec.update(gspec)
        networks[role] = spec
    segments = {"eyes": "identity", "mouth": "identity", "nose": "identity" if sources["skin"] == "original" else "context",
                "skin": sources["skin"].replace("original", "identity").replace("reference", "context"),
                "hair": "context", "background": "context", "clothes": "context"}
    card = out / "MODEL_CARD.md"
    card.write_text(_model_card(name, gen, enc, D, crop, sources, args), encoding="utf-8")
    manifest = {
        "schema": "pridss-rt.pack", "schema_version": 1, "name": name, "version": args.version,
        "description": f"PriDSS official stack: e4e -> S ({D}-d) -> StyleFusion FFHQ -> StyleGAN2 {gen.size}px "
                       f"(face_pool to {crop}) -> ArcFace IR-SE50 + user gender classifier",
        "license": "code Apache-2.0; weights: see the licences of StyleGAN2 (NVIDIA), e4e, StyleFusion, "
                   "InsightFace/TreB1eN and the gender classifier (MODEL_CARD.md)",
        "model_card": card.name,
        "preprocess": {"crop_size": crop, "template": template(crop), "channel_order": "rgb",
                       "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "networks": networks,
        "fusion": {"type": "network", "segments": segments, "stylefusion_sources": sources},
        "bank": {"file": "bank.npz", "sha256": sha256_file(out / "bank.npz")},
        "defaults": {"candidates": args.candidates},
        "official": {"generator_size": gen.size, "s_dim": D, "rgb_index": args.rgb_index,
                     "s_layout": {"conv": list(layout.conv_dims), "rgb": list(layout.rgb_dims)}},
    }
    write_pack_json(out, manifest)
    return out


def _model_card(name, gen, enc, D, crop, sources, args) -> str:
    orig = sorted(p for p, s in sources.items() if s == "original")
    return f"""# {name}: PriDSS official stack

Built by export/make_pack.py from official-layout checkpoints.

- Encoder: e4e ({enc.style_count} W+ rows, input {crop} px) + latent_avg, W+ -> S with the generator's affines
  (ToRGB rows: {args.rgb_index} convention); output S, {D} values.
- Fusion: StyleFusion FFHQ hierarchy (all, face, skin_mouth, bg_hair_clothes, bg_clothes). Parts taken from
  the original face: {', '.join(orig)}; everything else from the opposite-gender reference. StyleFusion has no
  nose part: the nose belongs to `skin` ({'original' if sources['skin'] == 'original' else 'reference'} here).
- Synthesis: StyleGAN2 {gen.size} px driven by S, fixed noise, averaged down to {crop} px (e4e face_pool).
- Identity: ArcFace IR-SE50 with e4e's id-loss crop (35:223, 32:220 at 256 px) and 112-px pooling.
- Gender: user-supplied classifier ({args.gender}).
- Bank: references from {args.references}.

Licences: StyleGAN2 FFHQ weights (NVIDIA Source Code License-NC), e4e (MIT), StyleFusion (MIT),
ArcFace IR-SE50 (InsightFace_Pytorch, MIT), FFHQ images (CC BY-NC-SA 4.0): check each before any use.
"""


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        out = build_pack(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise
    except Exception as exc:
        print(f"make_pack: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    from pridss_rt.backends import open_networks
    from pridss_rt.pack import load_pack

    try:
        pack = load_pack(out)
        with open_networks(pack, "ort-cpu") as nets:
            say(f"pack '{pack.name}' loads and runs on {nets.backend}: networks {sorted(nets)}, latent {pack.latent_shape}")
    except Exception as exc:
        print(f"make_pack: error: the written pack does not load/run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    say(f"pack written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
