"""``pridss-rt bench``: per-stage p50/p99, steady-state FPS and candidate-search time on synthetic frames.

Each engine runs in its own process (on a 2-core machine two runtimes in one process distort each
other's timings), in alternating rounds; the table reports pooled percentiles and the median over
rounds. With ``--reference SCRIPT`` (a source checkout's ``export/torch_reference.py``, torch installed) the
same pipeline is also run by that PyTorch reference and the speed ratio is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pridss_rt.errors import InputError
from pridss_rt.pipeline.orchestrator import STAGES


def make_frame(width: int, height: int, faces: int, seed: int = 0) -> np.ndarray:
    """A frame with ``faces`` copies of the bundled sample face on a blurred background."""
    import cv2

    from pridss_rt.media import SAMPLE, read_image

    src = read_image(SAMPLE)
    frame = cv2.GaussianBlur(cv2.resize(src, (width, height)), (0, 0), 12)
    face = src[40:200, 150:300]  # the astronaut's head and shoulders region
    cols = int(np.ceil(np.sqrt(faces)))
    rows = int(np.ceil(faces / cols))
    cell_w, cell_h = width // cols, height // rows
    scale = min(cell_w / face.shape[1], cell_h / face.shape[0], height / 2.5 / face.shape[0]) * 0.9
    fw, fh = max(8, int(face.shape[1] * scale)), max(8, int(face.shape[0] * scale))
    f = cv2.resize(face, (fw, fh), interpolation=cv2.INTER_AREA)
    for i in range(faces):
        r, c = divmod(i, cols)
        x = c * cell_w + (cell_w - fw) // 2
        y = r * cell_h + (cell_h - fh) // 2
        frame[y:y + fh, x:x + fw] = f
    return frame


def run_worker(args: dict) -> dict:
    """One round of one engine in this process; returns raw timings (ms)."""
    from types import SimpleNamespace

    from pridss_rt.anonymizer import Anonymizer
    from pridss_rt.cli.options import runtime_kwargs

    w, h = args["resolution"]
    frame = make_frame(w, h, args["faces"])
    # the payload carries the runtime options under their CLI names: the same Anonymizer as `anonymize` builds
    anon = Anonymizer(**runtime_kwargs(SimpleNamespace(**args)), tracking=args.get("track", True),
                      networks=args.get("networks"))
    try:
        # candidate search: a fresh track each time
        first = []
        for _ in range(max(3, args["warmup"] // 2)):
            anon.reset()
            t = time.perf_counter()
            anon.process(frame)
            first.append((time.perf_counter() - t) * 1000)
        search = list(anon.timings["search"])
        faces_found = anon.stats["faces_anonymized"] + anon.stats["faces_pixelated"]
        anon.reset()
        for k in range(args["warmup"]):
            anon.process(np.roll(frame, k % 3, axis=1))
        for q in anon.timings.values():
            q.clear()
        t0 = time.perf_counter()
        for k in range(args["frames"]):
            anon.process(np.roll(frame, k % 3, axis=1))  # small motion, same faces: steady state
        wall = time.perf_counter() - t0
        return {"backend": anon.backend, "fps_steady": args["frames"] / wall, "first_frame_ms": first,
                "candidate_search_ms": search, "stages": {k: list(v) for k, v in anon.timings.items()},
                "faces_per_frame": faces_found / max(1, len(first)), "syntheses": anon.stats["syntheses"],
                "frames": args["frames"], "pack": anon.pack.name, "detector": getattr(anon.detector, "name", "?")}
    finally:
        anon.close()


def _spawn(cmd: list[str], payload: dict) -> dict:
    # the workers import the same pridss_rt as this process, wherever it is installed
    site = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=site + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd + [json.dumps(payload)], capture_output=True, text=True, env=env)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed ({' '.join(cmd[:3])}): {res.stderr.strip()[-800:]}")
    return json.loads(lines[-1])


def pct(vals, q) -> float | None:
    return float(np.percentile(vals, q)) if len(vals) else None


def summarize(rounds: list[dict]) -> dict:
    stages = {}
    for name in STAGES + ("total",):
        vals = [v for r in rounds for v in r["stages"].get(name, [])]
        if vals:
            stages[name] = {"p50_ms": pct(vals, 50), "p99_ms": pct(vals, 99), "n": len(vals)}
    search = [v for r in rounds for v in r["candidate_search_ms"]]
    first = [v for r in rounds for v in r["first_frame_ms"]]
    return {"backend": rounds[0]["backend"], "pack": rounds[0]["pack"], "detector": rounds[0].get("detector"),
            "fps_steady": float(np.median([r["fps_steady"] for r in rounds])),
            "fps_steady_rounds": [round(r["fps_steady"], 2) for r in rounds],
            "candidate_search_ms": pct(search, 50), "first_frame_ms": pct(first, 50),
            "faces_per_frame": rounds[0]["faces_per_frame"], "stages": stages}


def add_parser(sub):
    from pridss_rt.cli.options import add_runtime_options

    b = sub.add_parser("bench", help="per-stage latency, steady-state FPS and candidate-search time on synthetic frames")
    b.add_argument("--resolution", default="640x480", metavar="WxH")
    b.add_argument("--faces", type=int, default=1)
    b.add_argument("--frames", type=int, default=200)
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--json", action="store_true", help="print the results as JSON")
    b.add_argument("--reference", metavar="SCRIPT", default=None,
                   help="also time a PyTorch reference runner of the same pipeline, run as its own process (in a "
                        "source checkout with the export extra: export/torch_reference.py)")
    b.add_argument("--no-reference", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    b.add_argument("--rounds", type=int, default=2, help="alternating rounds of each engine (own process each)")
    add_runtime_options(b)
    return b


def parse_resolution(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480); anything else is a clear error."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"--resolution must be WIDTHxHEIGHT in pixels, e.g. 640x480; got '{text}'")
    return int(parts[0]), int(parts[1])


def main(args) -> int:
    w, h = parse_resolution(args.resolution)
    payload = {"resolution": [w, h], "faces": args.faces, "frames": args.frames, "warmup": args.warmup,
               "pack": args.pack, "backend": args.backend, "candidates": args.candidates, "detector": args.detector,
               "min_face": args.min_face, "upright": args.upright, "engines": args.engines, "threads": args.threads,
               "coherence_weight": args.coherence_weight, "reference_gender": args.reference_gender, "seed": args.seed,
               "keep_identity_gender": args.keep_identity_gender, "region": args.region}
    ref = None
    if args.reference and not args.no_reference:
        ref = Path(args.reference)
        if not ref.is_file():
            raise InputError(f"--reference {ref}: no such file (the PyTorch reference runner of a source checkout is "
                             "export/torch_reference.py)")
        if not _has_torch():
            raise InputError("--reference needs torch: pip install -e '.[export]' in a source checkout")
    have_torch = ref is not None
    rt_rounds, ref_rounds = [], []
    for _ in range(max(1, args.rounds)):
        rt_rounds.append(_spawn([sys.executable, "-m", "pridss_rt.cli.bench"], payload))
        if have_torch:
            ref_rounds.append(_spawn([sys.executable, str(ref)], payload))
    result = {"resolution": f"{w}x{h}", "faces": args.faces, "frames": args.frames, "rounds": args.rounds,
              "machine": _machine(), "pridss_rt": summarize(rt_rounds)}
    if ref_rounds:
        result["pytorch_reference"] = summarize(ref_rounds)
        result["speedup_vs_pytorch"] = result["pridss_rt"]["fps_steady"] / result["pytorch_reference"]["fps_steady"]
        result["search_speedup_vs_pytorch"] = (result["pytorch_reference"]["candidate_search_ms"] /
                                               result["pridss_rt"]["candidate_search_ms"])
    else:
        result["pytorch_reference"] = None
        result["pytorch_reference_note"] = ("not run (in a source checkout with the export extra, "
                                            "--reference export/torch_reference.py times the same pipeline in "
                                            "eager PyTorch)")
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _machine() -> str:
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def render(r: dict) -> str:
    def fmt(v):
        return "-" if v is None else f"{v:.1f}"

    lines = [f"pridss-rt bench: {r['resolution']}, {r['faces']} face(s), {r['frames']} frames x {r['rounds']} rounds; "
             f"{r['machine']}"]
    engines = [("pridss-rt", r["pridss_rt"])] + ([("PyTorch ref", r["pytorch_reference"])] if r["pytorch_reference"] else [])
    for label, s in engines:
        lines.append("")
        lines.append(f"{label} [{s['backend']}] pack {s['pack']}, detector {s.get('detector') or '?'}: fps_steady {s['fps_steady']:.1f} "
                     f"(rounds {s['fps_steady_rounds']}), candidate_search_ms {fmt(s['candidate_search_ms'])}, "
                     f"first frame {fmt(s['first_frame_ms'])} ms, faces/frame {s['faces_per_frame']:.1f}")
        lines.append(f"  {'stage':<11} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}")
        for name, st in s["stages"].items():
            lines.append(f"  {name:<11} {st['p50_ms']:>8.2f} {st['p99_ms']:>8.2f} {st['n']:>6}")
    if r.get("speedup_vs_pytorch"):
        lines.append("")
        lines.append(f"steady-state speed vs PyTorch reference: {r['speedup_vs_pytorch']:.2f}x; "
                     f"candidate search: {r['search_speedup_vs_pytorch']:.2f}x")
        lines.append("(reference: the PriDSS loop in eager PyTorch — detector and pack networks as PyTorch ops, the "
                     "full K-candidate search on every frame, no tracking — export/torch_reference.py)")
    elif r.get("pytorch_reference_note"):
        lines.append(f"\nPyTorch reference: {r['pytorch_reference_note']}")
    return "\n".join(lines)


if __name__ == "__main__":  # worker: python -m pridss_rt.cli.bench '<json payload>'
    print(json.dumps(run_worker(json.loads(sys.argv[1]))))
