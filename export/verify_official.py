#!/usr/bin/env python
"""Verify the official PriDSS networks without their weights; exits non-zero on any failure.

    python export/verify_official.py [--full] [--keep DIR] [--skip-fp16]

(a) key-exactness: every network is built at full official size on the meta device; its state_dict
    has exactly the official key names and shapes (export/official/keyspec.py, written from the
    documented layouts) and a state_dict with those keys/shapes loads strictly into it;
(b) parity at reduced size with random weights: official-layout checkpoints are written, a pack is
    built from them with export/make_pack.py, and PyTorch (original formulations) is compared with
    ONNX Runtime (exported batch-friendly graphs) at batch 1 and 5 for synthesis, fusion, encoder,
    identity, gender and the whole loop (same selected candidate);
(c) FP16 audit: the FP32 synthesis and fusion graphs run on realistic S codes (S(latent_avg) and
    +-1 sigma / +-3 sigma of S over mapped z samples, plus the bank) with per-node ranges recorded;
    then export/build_engines.py --fp16 applies its block list to the pack (exit 3 = no GPU here);
(d) with --full: the full-size (1024 px) networks with random weights are exported to ONNX and pass
    onnx.checker (slow: minutes, ~3 GB of files).

The table of results is printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# tolerances (max abs error, ORT-CPU FP32 vs PyTorch FP32); relative ones scale by max(1, max|ref|)
TOL = {"synthesis": 1e-4, "fusion": 1e-4, "encoder": 1e-4, "identity": 1e-4, "gender": 1e-5, "pic": 1e-4}
BATCHES = (1, 5)
KEEP_FILES = False
THREADS = 1  # the reduced networks are tiny: more threads only add contention (see --threads)


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str]] = []

    def add(self, check: str, ok: bool | None, detail: str) -> bool:
        self.rows.append((check, "PASS" if ok else ("SKIP" if ok is None else "FAIL"), detail))
        print(f"[verify] {check}: {'PASS' if ok else ('SKIP' if ok is None else 'FAIL')} {detail}", flush=True)
        return bool(ok)

    @property
    def failed(self) -> bool:
        return any(r[1] == "FAIL" for r in self.rows)

    def render(self) -> str:
        w0 = max(len(r[0]) for r in self.rows)
        lines = [f"{'check':<{w0}}  result  detail", f"{'-' * w0}  ------  {'-' * 40}"]
        lines += [f"{c:<{w0}}  {r:<6}  {d}" for c, r, d in self.rows]
        return "\n".join(lines)


def guarded(table: Table, name: str):
    def deco(fn):
        def run(*a, **k):
            try:
                return fn(*a, **k)
            except Exception as exc:
                traceback.print_exc()
                table.add(name, False, f"{type(exc).__name__}: {exc}"[:300])
                return None
        return run
    return deco


# ---- (a) key-exactness -----------------------------------------------------------------------------

def check_keys(table: Table) -> None:
    import torch

    from export.official import keyspec as ks
    from export.official.arcface import Backbone
    from export.official.e4e import Encoder4Editing
    from export.official.stylefusion import FusionNet
    from export.official.stylegan2 import Generator, s_layout

    cases = [
        ("stylegan2 g_ema 1024 (cm 2)", lambda: Generator(1024, 512, 8, 2), ks.stylegan2_g_ema(1024, 2), 33.17),
        ("stylegan2 g_ema 512 (cm 2)", lambda: Generator(512, 512, 8, 2), ks.stylegan2_g_ema(512, 2), None),
        ("stylegan2 g_ema 256 (cm 2)", lambda: Generator(256, 512, 8, 2), ks.stylegan2_g_ema(256, 2), None),
        ("stylegan2 g_ema 512 (cm 1)", lambda: Generator(512, 512, 8, 1), ks.stylegan2_g_ema(512, 1), None),
        ("e4e encoder (FFHQ 1024)", lambda: Encoder4Editing(50, "ir_se", 1024), ks.e4e_encoder(1024), 267.2),
        ("e4e encoder (256 generator)", lambda: Encoder4Editing(50, "ir_se", 256), ks.e4e_encoder(256), None),
        ("arcface model_ir_se50", lambda: Backbone(112, 50, "ir_se", 0.6), ks.arcface_ir_se50(), 43.8),
        ("stylefusion FusionNet", lambda: FusionNet(), ks.fusion_net(), 36.9),
    ]
    for name, make, spec, mparams in cases:
        with torch.device("meta"):
            m = make()
        have = {k: tuple(v.shape) for k, v in m.state_dict().items()}
        missing, extra = sorted(set(spec) - set(have)), sorted(set(have) - set(spec))
        wrong = sorted(k for k in set(spec) & set(have) if spec[k] != have[k])
        ok = not (missing or extra or wrong)
        try:  # official-shaped state dict -> module, strictly
            m.load_state_dict({k: torch.empty(s, device="meta") for k, s in spec.items()}, strict=True, assign=True)
        except RuntimeError as exc:
            ok = False
            wrong.append(str(exc)[:120])
        n = ks.count(spec) / 1e6
        pcount = "" if mparams is None else f", {n:.2f} M params (method.md: {mparams})"
        if mparams is not None and abs(n - mparams) > 0.1:
            ok = False
        table.add(f"keys: {name}", ok, f"{len(spec)} keys, strict both ways{pcount}"
                  + ("" if ok else f"; missing {missing[:3]} extra {extra[:3]} wrong {wrong[:3]}"))
    d256, d1024 = s_layout(256).size, s_layout(1024).size
    table.add("S size from config", (d256, d1024) == (8704, 9088), f"256 px: {d256}, 1024 px: {d1024} (StyleSpace: 8704, 9088)")


# ---- (b) parity ------------------------------------------------------------------------------------

def _err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def build_small(work: Path, table: Table):
    import torch

    from export import make_pack
    from export.official import fixtures as fx

    nets = fx.build(fx.SMALL, seed=0)
    paths = fx.write_checkpoints(nets, work / "checkpoints")
    gender_onnx = fx.export_gender(nets, work / "checkpoints" / "gender.onnx")
    faces = fx.sample_faces(nets, 12, seed=3)  # 6 per gender: K=5 distinct references
    refs, labels = fx.write_reference_images(faces, work / "references", np.array([1, 0] * 6))
    # loaders: the checkpoints read back strictly and equal what was written
    from export.official import checkpoints as ck
    g2, _ = ck.load_stylegan2(paths["stylegan"])
    e = ck.load_e4e(paths["e4e"])
    a2 = ck.load_arcface(paths["arcface"])
    f2 = ck.load_stylefusion(paths["stylefusion"])
    same = all(torch.equal(x, y) for x, y in zip(g2.state_dict().values(), nets["generator"].state_dict().values()))
    same &= all(torch.equal(x, y) for x, y in zip(e["encoder"].state_dict().values(), nets["encoder"].state_dict().values()))
    same &= all(torch.equal(x, y) for x, y in zip(a2.state_dict().values(), nets["arcface"].state_dict().values()))
    same &= all(torch.equal(x, y) for n in f2 for x, y in zip(f2[n].state_dict().values(), nets["fusion"][n].state_dict().values()))
    same &= e["decoder"] is not None and e["latent_avg"].shape == (nets["encoder"].style_count, fx.SMALL.style_dim)
    table.add("loaders: official containers, strict", same, "g_ema+latent_avg, e4e state_dict/opts/latent_avg, "
              "model_ir_se50.pth, ffhq_weights.json + 5 node files; weights_only=True")
    pack_dir = work / "pack"
    t = time.perf_counter()
    rc = make_pack.main(["--e4e", str(paths["e4e"]), "--stylegan", str(paths["stylegan"]), "--arcface", str(paths["arcface"]),
                         "--stylefusion", str(paths["stylefusion"]), "--gender", str(gender_onnx),
                         "--gender-output-kind", "softmax2", "--apply-softmax", "--references", str(refs),
                         "--labels", str(labels), "--out", str(pack_dir), "--force"])
    table.add("make_pack: pack loads + runs (ort-cpu)", rc == 0, f"exit {rc}, {time.perf_counter() - t:.0f} s, {pack_dir}")
    return nets, pack_dir if rc == 0 else None


def check_parity(table: Table, nets: dict, pack_dir: Path) -> None:
    import torch

    from export.official import fixtures as fx
    from export.official.gender import GenderProbability
    from export.official.pipeline import PriDSSReference, ort_callables, run_loop
    from export.official.stylefusion import StyleFusionS, pridss_sources
    from pridss_rt.backends import open_networks
    from pridss_rt.pack import load_pack

    cfg = nets["config"]
    gen = nets["generator"]
    fusion = StyleFusionS(nets["fusion"], gen.s_layout(), pridss_sources())
    ref = PriDSSReference(gen, nets["encoder"], nets["latent_avg"], fusion, nets["arcface"],
                          GenderProbability(nets["gender"], "softmax2", 1, True), cfg.crop_size)
    pack = load_pack(pack_dir)
    with open_networks(pack, "ort-cpu", threads=THREADS) as onets:
        f = ort_callables(onets)
        rng = np.random.default_rng(0)
        bank, male = pack.bank()
        g = torch.Generator().manual_seed(5)
        with torch.no_grad():
            w = gen.mapping(torch.randn(8, gen.style_dim, generator=g), 0.7, nets["latent_avg"][None])
            s_all = gen.w_plus_to_s(w[:, None].repeat(1, gen.n_latent, 1)).numpy()
        faces = fx.sample_faces(nets, 5, seed=11)
        for b in BATCHES:
            s = s_all[:b]
            r, o = ref.synthesize(s), f["synthesize"](s)
            e = _err(r, o)
            table.add(f"parity: synthesis B={b}", e <= TOL["synthesis"] * max(1, np.abs(r).max()),
                      f"max|err| {e:.2e} (tol {TOL['synthesis']:g}*max(1,|ref|max={np.abs(r).max():.2f})), out {list(o.shape)}")
            s2 = bank[rng.integers(0, len(bank), b)]
            r, o = ref.fuse(s, s2), f["fuse"](s, s2)
            e = _err(r, o)
            table.add(f"parity: fusion B={b}", e <= TOL["fusion"] * max(1, np.abs(r).max()),
                      f"max|err| {e:.2e} vs the ported batch-1 original (per-sample loop)")
            x = faces[:b]
            r, o = ref.encode(x), f["encode"](x)
            e = _err(r, o)
            table.add(f"parity: encoder B={b}", e <= TOL["encoder"] * max(1, np.abs(r).max()),
                      f"max|err| {e:.2e} (e4e + latent_avg + W+->S), out {list(o.shape)}")
            r, o = ref.embed(x), f["embed"](x)
            e = _err(r, o)
            table.add(f"parity: identity B={b}", e <= TOL["identity"],
                      f"max|err| {e:.2e} (e4e id-loss pooling vs fixed matrices), out {list(o.shape)}")
            r, o = ref.gender_p(x), f["gender_p"](x)
            e = _err(r, o)
            table.add(f"parity: gender B={b}", e <= TOL["gender"], f"max|err| {e:.2e} (softmax2 adapter -> P(male))")
        k = 5
        for b in BATCHES:
            x = faces[:b]
            r = ref.run(x, bank, male, k)
            o = run_loop(x, f["encode"], f["fuse"], f["synthesize"], f["embed"], f["gender_p"], bank, male, k)
            e = _err(r.pic, o.pic)
            same = np.array_equal(r.best, o.best) and np.array_equal(r.refs, o.refs)
            margin = float(r.margin().min())
            table.add(f"parity: whole loop B={b}, K={k}", same and e <= TOL["pic"],
                      f"same candidate {r.best.tolist()}, max|dPIC| {e:.2e}, min PIC margin {margin:.3g}")


# ---- (c) FP16 audit --------------------------------------------------------------------------------

def check_fp16(table: Table, nets: dict, pack_dir: Path, work: Path) -> None:
    import torch

    from export import fp16 as fp16mod
    from export import onnx_tools
    from pridss_rt.pack import load_pack

    gen = nets["generator"]
    pack = load_pack(pack_dir)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        n = gen.n_latent
        w = gen.mapping(torch.randn(512, gen.style_dim, generator=g))
        s = gen.w_plus_to_s(w[:, None].repeat(1, n, 1)).numpy()
        s_avg = gen.w_plus_to_s(nets["latent_avg"].reshape(1, 1, -1).repeat(1, n, 1)).numpy()[0]
    sd = s.std(0)
    rows = np.stack([s_avg, s_avg + sd, s_avg - sd, s_avg + 3 * sd, s_avg - 3 * sd]).astype(np.float32)
    bank, _ = pack.bank()
    report = {}
    for role in ("synthesis", "fusion"):
        spec = pack.network(role)
        model = onnx_tools.sanitize(onnx_tools.load(spec.path))
        if role == "synthesis":
            feeds = [{spec.inputs[0].name: rows}, {spec.inputs[0].name: bank[:4].copy()}]
        else:
            feeds = [{spec.inputs[0].name: rows, spec.inputs[1].name: rows[::-1].copy()},
                     {spec.inputs[0].name: bank[:4].copy(), spec.inputs[1].name: bank[4:8].copy()}]
        audit = fp16mod.audit_ranges(model, feeds)
        summ = audit.summary()
        report[role] = summ
        top = max(audit.ranges.values(), key=lambda r: r.absmax)
        nonfinite = summ["nonfinite"]
        table.add(f"fp16 audit: {role}", not nonfinite,
                  f"{len(audit.ranges)} tensors ranged on latent_avg +-1/3 sigma + bank; largest |x| {top.absmax:.3g}; "
                  f"{len(audit.blocked)}/{audit.num_nodes} nodes blocked (FP32)")
    (work / "fp16_audit_official.json").write_text(json.dumps(report, indent=1, default=str))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = work / "engines"
    res = subprocess.run([sys.executable, str(ROOT / "export" / "build_engines.py"), "--fp16", "--pack", str(pack_dir),
                          "--out", str(out), "--no-progress"], capture_output=True, text=True, env=env, timeout=1800)
    audit_json = out / pack.name / "onnx-fp16" / "audit.json"
    ok = res.returncode in (0, 3) and audit_json.is_file()
    detail = f"exit {res.returncode} ({'engines built' if res.returncode == 0 else 'no GPU/TensorRT here: FP16 ONNX only'})"
    if audit_json.is_file():
        aj = json.loads(audit_json.read_text())
        probs = {r: v.get("problems") for r, v in aj.items() if v.get("problems")}
        ok &= not probs and set(aj) == set(pack.networks)
        detail += "; " + ", ".join(f"{r}: {len(v['audit']['blocked'])} kept FP32, {v['fp16_nodes']}/{v['nodes']} FP16, "
                                   f"err {v['max_abs_err']:.1e}" for r, v in sorted(aj.items()))
        if probs:
            detail += f"; problems {probs}"
    else:
        detail += "; " + (res.stdout + res.stderr)[-300:]
    table.add("fp16: build_engines.py applies the block list", ok, detail)


# ---- (d) full-size export --------------------------------------------------------------------------

def check_full_export(table: Table, work: Path) -> None:
    import torch

    t0 = time.perf_counter()
    prev = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))  # full size: real work, use the cores
    try:
        _full_export(table, work, t0)
    finally:
        torch.set_num_threads(prev)


def _full_export(table: Table, work: Path, t0: float) -> None:
    import onnx
    import onnxruntime as ort
    import torch

    from export.official import fixtures as fx
    from export.official import onnx_export as ox
    from export.official.arcface import IdentityNet, reference_preprocess
    from export.official.e4e import E4EToS
    from export.official.stylefusion import StyleFusionS, pridss_sources
    from export.official.stylegan2 import ReferenceSynthesis, SSynthesis, WPlusToS

    nets = fx.build(fx.FULL, seed=0)
    gen = nets["generator"]
    D = gen.s_layout().size
    crop = fx.FULL.crop_size
    sf = StyleFusionS(nets["fusion"], gen.s_layout(), pridss_sources())
    enc = E4EToS(nets["encoder"], nets["latent_avg"], WPlusToS(gen))
    g = torch.Generator().manual_seed(3)
    w = gen.mapping(torch.randn(2, gen.style_dim, generator=g), 0.7, nets["latent_avg"][None])
    s = gen.w_plus_to_s(w[:, None].repeat(1, gen.n_latent, 1))
    img = ReferenceSynthesis(gen, crop)(s[:1])
    x = torch.tanh(img)
    refs = {  # PyTorch reference (original formulations) at batch 1
        "synthesis": (lambda: img, {"latent": s[:1]}),
        "encoder": (lambda: gen.w_plus_to_s(nets["encoder"](x) + nets["latent_avg"][None, None]), {"image": x}),
        "fusion": (lambda: sf.forward_original(s[:1], s[1:]), {"latent_orig": s[:1], "latent_ref": s[1:]}),
        "identity": (lambda: nets["arcface"](reference_preprocess(x)), {"image": x}),
    }
    mods = {
        "synthesis": lambda p: ox.export_synthesis(SSynthesis(gen, crop), D, p, batch=1),
        "encoder": lambda p: ox.export_encoder(enc, crop, p, batch=1),
        "fusion": lambda p: ox.export_fusion(sf, D, p, batch=1),
        "identity": lambda p: ox.export_identity(IdentityNet(nets["arcface"], crop), crop, p, batch=1),
    }
    so = ort.SessionOptions()
    so.log_severity_level = 3
    for role, fn in mods.items():
        t = time.perf_counter()
        path = fn(work / "full" / f"{role}.onnx")
        onnx.checker.check_model(str(path))
        size = sum(f.stat().st_size for f in path.parent.iterdir() if f.name.startswith(role))
        m = onnx.load(str(path), load_external_data=False)
        dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in
                list(m.graph.input) + list(m.graph.output)}
        del m
        ref_fn, feeds = refs[role]
        ref = ref_fn().numpy()
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        out = sess.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
        del sess
        err = float(np.abs(out.astype(np.float64) - ref).max())
        tol = TOL[role] * (1.0 if role == "identity" else max(1.0, float(np.abs(ref).max())))
        table.add(f"full-size export: {role}", err <= tol and out.shape == ref.shape,
                  f"{size / 1e6:.0f} MB, {dims}, onnx.checker ok; ORT vs PyTorch B=1 max|err| {err:.2e} "
                  f"(tol {tol:.1e}), {time.perf_counter() - t:.0f} s")
        if FULL_FP16:
            fp16_row(table, role, path, {k: v.numpy() for k, v in feeds.items()})
        if not KEEP_FILES:
            path.unlink()  # ~2 GB in all
    table.add("full-size export: total", True, f"{time.perf_counter() - t0:.0f} s, S = {D}")


FULL_FP16 = True  # the full-size export also converts each network to FP16 (export/fp16.py) and checks it


def fp16_row(table: Table, role: str, path: Path, feed: dict) -> None:
    """FP16 conversion of one full-size network: share of compute nodes in FP16 (of those no range forces to
    FP32), graph I/O types, ORT-CPU parity against the FP32 graph, the reasons for every node kept FP32."""
    from export import fp16 as fp16mod
    from export import onnx_tools

    t = time.perf_counter()
    model = onnx_tools.sanitize(onnx_tools.load(path))
    audit, conv, chk = fp16mod.convert_checked(model, [feed], rtol=2e-2, atol=2e-2)
    why = sorted({r.split(":")[-1].strip() for r in conv.kept.values()})
    table.add(f"full-size FP16: {role}", chk.ok and conv.fp16_share_unforced >= 0.95,
              f"{conv.compute_nodes - len(conv.kept)}/{conv.compute_nodes} compute nodes FP16 "
              f"({conv.fp16_share_unforced:.1%} of those no range forces FP32), I/O FP32 {chk.io_fp32}, "
              f"max|err| {chk.max_abs_err:.2e}, {sum(conv.flushed.values())} weights rounded to 0; kept: {why[:4]}; "
              f"{time.perf_counter() - t:.0f} s" + ("" if chk.ok else f"; {chk.problems}"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="also export the full-size 1024 networks (slow)")
    p.add_argument("--skip-fp16", action="store_true")
    p.add_argument("--keep", help="work folder to keep (default: a temporary folder)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch/ORT threads for the reduced-size checks (default 1; --full uses all cores)")
    a = p.parse_args(argv)
    try:
        import onnx  # noqa: F401
        import torch
    except ImportError as exc:
        print(f"verify_official: error: {exc.name} is missing: pip install -e '.[export]'", file=sys.stderr)
        return 2
    global THREADS, KEEP_FILES
    THREADS = max(1, a.threads)
    KEEP_FILES = bool(a.keep)
    torch.set_num_threads(THREADS)
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    torch.set_grad_enabled(False)
    table = Table()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="verify_official_") as tmp:
        work = Path(a.keep) if a.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        guarded(table, "keys")(check_keys)(table)
        built = guarded(table, "build reduced-size pack")(build_small)(work, table)
        if built and built[1] is not None:
            nets, pack_dir = built
            guarded(table, "parity")(check_parity)(table, nets, pack_dir)
            if a.skip_fp16:
                table.add("fp16 audit", None, "skipped (--skip-fp16)")
            else:
                guarded(table, "fp16")(check_fp16)(table, nets, pack_dir, work)
        if a.full:
            guarded(table, "full-size export")(check_full_export)(table, work)
        else:
            table.add("full-size export (1024)", None, "not run (pass --full, or pytest -m slow)")
    print()
    print(f"verify_official: {len(table.rows)} checks in {time.perf_counter() - t0:.0f} s — "
          + ("FAILED" if table.failed else "all passed"))
    print(table.render())
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
