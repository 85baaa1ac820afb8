#!/usr/bin/env python
"""Turn a model pack's ONNX networks into TensorRT engines (FP16 with ``--fp16``).

    python export/build_engines.py --fp16 [--pack NAME|PATH] [--out engines/] [--max-batch N]

For each network: fold constants; with ``--fp16``, audit the FP32 graph's value ranges on
representative inputs, convert to FP16 with graph I/O kept FP32 and the audited nodes kept FP32, check
the result (onnx.checker, I/O types, parity with FP32 on ONNX Runtime, no rewritten constants); then a
strongly-typed TensorRT build (TensorRT 10 and 11) with a batch profile, a shared timing cache and a
progress bar; finally the engine is inspected and a warning is printed if an FP16 engine has few FP16
layers. Output:

    <out>/<pack>/onnx-fp16/<role>.onnx + audit.json        (always, also without a GPU)
    <out>/<pack>/<gpu>-sm<cc>-trt<version>/<role>.engine + manifest.json
    <out>/timing-<gpu>-sm<cc>-trt<version>.cache

Exit codes: 0 engines built; 1 a check or build failed; 2 bad arguments or pack;
3 ONNX files written and checked, but no engine built because this machine has no NVIDIA GPU or no
TensorRT (the message says which).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_TRT = 0, 1, 2, 3
HALF_LAYER_WARN = 0.5


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit codes: 0 built, 1 check/build failed, 2 bad arguments/pack, "
                                       "3 no GPU/TensorRT here (ONNX files still written and checked).")
    p.add_argument("--pack", default="demo", help="pack name or folder (default: demo)")
    p.add_argument("--out", default=str(ROOT / "engines"), help="engines root (default: engines/)")
    p.add_argument("--fp16", action="store_true", help="FP16 engines via an FP16 ONNX graph (TensorRT 10 and 11)")
    p.add_argument("--max-batch", type=int, default=4, help="most faces per call (candidate networks get N*K)")
    p.add_argument("--candidates", type=int, default=None, help="K for the candidate profile (default: the pack's)")
    p.add_argument("--threshold", type=float, default=1e4, help="FP16 audit: keep nodes with |x| above this in FP32")
    p.add_argument("--networks", nargs="*", help="only these roles (default: all)")
    p.add_argument("--workspace-mb", type=int, default=2048)
    p.add_argument("--opt-level", type=int, default=3, choices=range(6))
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.max_batch < 1:
        p.error("--max-batch must be >= 1")
    return a


def say(msg: str) -> None:
    print(f"[build_engines] {msg}", flush=True)


def prepare_onnx(pack, role: str, fp16: bool, threshold: float, out_dir: Path) -> tuple[Path, dict]:
    """Sanitize (+ audit and convert) one network; returns the ONNX path to build and a report."""
    from export import calib, onnx_tools
    from export import fp16 as fp16mod

    spec = pack.network(role)
    model = onnx_tools.sanitize(onnx_tools.load(spec.path))
    report: dict = {"source": spec.file, "source_sha256": spec.sha256}
    if not fp16:
        path = onnx_tools.save(model, out_dir / f"{role}.onnx")
        return path, report
    feeds = calib.feeds_for(pack, role)
    audit, conv, check = fp16mod.convert_checked(model, feeds, threshold)
    report.update(audit=audit.summary(), compute_nodes=conv.compute_nodes, fp16_share=round(conv.fp16_share, 4),
                  kept_fp32=dict(sorted(conv.kept.items())), flushed_to_zero=conv.flushed, fp16_nodes=check.fp16_nodes,
                  nodes=check.nodes, max_abs_err=check.max_abs_err, max_rel_err=check.max_rel_err,
                  rewritten_constants=check.rewritten_constants, problems=check.problems)
    path = onnx_tools.save(conv.model, out_dir / f"{role}.onnx")
    status = "ok" if check.ok else "FAILED: " + "; ".join(check.problems)
    say(f"{role}: FP16 ONNX {path.name}: {conv.compute_nodes - len(conv.kept)}/{conv.compute_nodes} compute nodes FP16 "
        f"({conv.fp16_share:.0%}), {len(conv.kept)} kept FP32 (audit.json says why), max |err| vs FP32 "
        f"{check.max_abs_err:.2e} (ORT-CPU) — {status}")
    return path, report


def main(argv=None) -> int:
    args = parse_args(argv)
    from pridss_rt.backends.trt.engines import (
        SCHEMA,
        SCHEMA_VERSION,
        engine_dir,
        slug,
        write_manifest,
    )
    from pridss_rt.errors import PackError
    from pridss_rt.pack import load_pack, sha256_file

    try:
        pack = load_pack(args.pack)
    except PackError as exc:
        print(f"build_engines: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:  # FP32 and FP16 builds alike need only onnx (Polygraphy's constant folding is used when installed)
        import onnx  # noqa: F401
    except ImportError as exc:
        print(f"build_engines: error: {exc.name} is missing: pip install -e '.[export]'", file=sys.stderr)
        return EXIT_USAGE
    roles = args.networks or list(pack.networks)
    unknown = [r for r in roles if r not in pack.networks]
    if unknown:
        print(f"build_engines: error: pack '{pack.name}' has no networks {unknown} (has {list(pack.networks)})", file=sys.stderr)
        return EXIT_USAGE
    precision = "fp16" if args.fp16 else "fp32"
    out_root = Path(args.out)
    onnx_dir = out_root / pack.name / f"onnx-{precision}"
    onnx_dir.mkdir(parents=True, exist_ok=True)

    prepared: dict[str, tuple[Path, dict]] = {}
    failed = False
    for role in roles:
        try:
            prepared[role] = prepare_onnx(pack, role, args.fp16, args.threshold, onnx_dir)
        except Exception as exc:  # a broken graph must name the network, not dump a traceback
            say(f"{role}: FAILED to prepare ONNX: {type(exc).__name__}: {exc}")
            failed = True
            continue
        if prepared[role][1].get("problems"):
            failed = True
    (onnx_dir / "audit.json").write_text(json.dumps({r: rep for r, (_, rep) in prepared.items()}, indent=2) + "\n")
    say(f"wrote {len(prepared)} {precision.upper()} ONNX file(s) and audit.json to {onnx_dir}")
    if failed:
        say("not building engines: an ONNX check failed (see above)")
        return EXIT_FAILED

    # ---- TensorRT --------------------------------------------------------------------------------------
    from pridss_rt.backends.probe import machine

    m = machine()
    if m.tensorrt is None or not m.gpu:
        why = []
        if not m.gpu:
            why.append(f"no NVIDIA GPU ({m.gpu_error})")
        if m.tensorrt is None:
            why.append("TensorRT is not installed (pip install 'pridss-rt[trt]' on a GPU machine)")
        say("no engine built: " + " and ".join(why) + ". The checked ONNX files above are ready for a GPU machine.")
        return EXIT_NO_TRT
    from export import trt_build

    gpu = m.gpu
    k = args.candidates or pack.candidates
    folder = engine_dir(out_root, pack.name, gpu["name"], gpu["compute_capability"], m.tensorrt)
    folder.mkdir(parents=True, exist_ok=True)
    cache = out_root / f"timing-{slug(gpu['name'])}-sm{gpu['compute_capability'].replace('.', '')}-trt{m.tensorrt}.cache"
    manifest = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "built_by": "pridss-rt export/build_engines.py",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pack": pack.name, "pack_version": pack.version, "precision": precision,
        "gpu": {"name": gpu["name"], "compute_capability": gpu["compute_capability"]},
        "driver": m.driver or gpu.get("driver_cuda"), "cuda_runtime": gpu.get("runtime_cuda"),
        "tensorrt": {"version": m.tensorrt}, "networks": {},
    }
    for role, (onnx_path, rep) in prepared.items():
        spec = pack.network(role)
        mx = args.max_batch * (k if spec.batch == "candidate" else 1)
        opt = max(1, (k if spec.batch == "candidate" else 1))
        profile = trt_build.batch_profile(spec.inputs, 1, min(opt, mx), mx)
        t0 = time.perf_counter()
        try:
            res = trt_build.build_engine(onnx_path, profile, timing_cache=cache, workspace_mb=args.workspace_mb,
                                         opt_level=args.opt_level, progress=not args.no_progress, label=role)
        except Exception as exc:
            say(f"{role}: engine build FAILED: {exc}")
            return EXIT_FAILED
        eng = folder / f"{role}.engine"
        eng.write_bytes(res.engine)
        frac = res.half_layers / max(1, res.layers)
        say(f"{role}: {eng.name} {len(res.engine) / 1e6:.1f} MB in {time.perf_counter() - t0:.0f} s, "
            f"{res.half_layers}/{res.layers} layers FP16")
        if args.fp16 and frac < HALF_LAYER_WARN:
            say(f"WARNING: {role}: only {frac:.0%} of the engine's layers run in FP16 — check audit.json's "
                "blocked nodes; the engine may be little faster than FP32")
        manifest["networks"][role] = {
            "engine": eng.name, "engine_sha256": sha256_file(eng), "source_onnx": spec.file,
            "source_onnx_sha256": spec.sha256, "built_onnx": onnx_path.name, "built_onnx_sha256": sha256_file(onnx_path),
            "profile": {n: {"min": list(a), "opt": list(b), "max": list(c)} for n, (a, b, c) in profile.items()},
            "layers": res.layers, "half_layers": res.half_layers, "fp16_blocked_nodes": len(rep.get("audit", {}).get("blocked", {})),
        }
    write_manifest(folder, manifest)
    say(f"engines and manifest.json written to {folder}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
