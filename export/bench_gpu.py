"""GPU timings that need no TensorRT; prints tables (medians of --reps runs, CUDA events or synchronized timers).

1. ``ops``:      the native CUDA kernels (crop warp + normalize, feathered paste-back) against the native CPU
                 library and OpenCV on 1920x1080 frames, plus a pinned 1080p frame's upload + download.
2. ``demo``:     the demo pack's four networks in eager PyTorch on the GPU (float32 / float16) and in ONNX
                 Runtime on 2 CPU threads, at the batches the loop uses (1 face; 1 + K candidates; 16 rows).
3. ``pipeline``: ``pridss_rt.Anonymizer`` on the sample frame with the demo pack's networks in PyTorch on the
                 GPU vs ONNX Runtime on 2 CPU threads (the host path: detection, alignment, blending on CPU).
4. ``official``: the official-size stack (e4e IR-SE50 at 256 px, StyleGAN2 FFHQ-1024 S-space synthesis,
                 ArcFace IR-SE50, StyleFusion's fusion networks) with random weights: per-network time per
                 face for one anonymization with K candidates, eager PyTorch float32 / float16 (autocast).

Usage (GPU machine, repo root):  python export/bench_gpu.py --native-dir BUILD [--parts ops,demo,pipeline,official]
Export side only (torch); the runtime never imports it. Eager PyTorch is not TensorRT: an upper bound.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


DEV = "cuda"  # --device cpu: a smoke run of the PyTorch parts on a machine without a GPU


def _sync(torch):
    return torch.cuda.synchronize if DEV == "cuda" else None


def _devname(torch):
    return torch.cuda.get_device_name() if DEV == "cuda" else "CPU (smoke run)"


def med(ts):
    return float(np.median(ts))


def timed(fn, reps, sync=None):
    for _ in range(3):
        fn()
    if sync:
        sync()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return med(out)


def table(title, header, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")


# ---------------------------------------------------------------------------------------------------------
def bench_ops(reps):
    import cv2

    from pridss_rt import native
    from pridss_rt.backends.trt import cuda

    lib, cpu = native.load_native("cuda"), native.load_native("cpu")
    mean, std = (ctypes.c_float * 3)(0.5, 0.5, 0.5), (ctypes.c_float * 3)(0.5, 0.5, 0.5)
    h, w, S = 1080, 1920, 128
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), np.uint8)
    rows = []
    s = cuda.Stream()
    e0, e1 = cuda.Event(timing=True), cuda.Event(timing=True)
    hin = cuda.PinnedBuffer((h, w, 3), np.uint8)
    hin.view((h, w, 3))[...] = frame
    d_frame = cuda.DeviceBuffer(frame.nbytes)
    cuda.copy_htod_async(d_frame.ptr, hin.view((h, w, 3)), s)

    def ev(fn):
        ts = []
        for i in range(reps + 3):
            e0.record(s)
            fn()
            e1.record(s)
            e1.synchronize()
            if i >= 3:
                ts.append(e1.elapsed_ms(e0))
        return med(ts)

    up = ev(lambda: cuda.copy_htod_async(d_frame.ptr, hin.view((h, w, 3)), s))
    down = ev(lambda: cuda.copy_dtoh_async(hin.view((h, w, 3)), d_frame.ptr, s))
    for n in (1, 4, 16):
        mats = []
        for i in range(n):  # faces of 220 px spread over the frame, each mapped onto the crop's centre
            c = (200.0 + 100 * i, 300.0 + 30 * (i % 8))
            m = cv2.getRotationMatrix2D(c, 10.0 * i, S / 220.0)
            m[:, 2] += (S - 1) / 2 - np.asarray(c)
            mats.append(m)
        mats = np.stack(mats).astype(np.float32)
        d_mats = cuda.DeviceBuffer(mats.nbytes)
        cuda.copy_htod_async(d_mats.ptr, mats, s)
        d_crops = cuda.DeviceBuffer(n * 3 * S * S * 4)
        crops = np.zeros((n, 3, S, S), np.float32)
        mask = np.ones((S, S), np.float32)
        d_mask = cuda.DeviceBuffer(mask.nbytes)
        cuda.copy_htod_async(d_mask.ptr, mask, s)
        s.synchronize()
        P = ctypes.c_void_p
        g_warp = ev(lambda: lib.pridss_warp_normalize(P(d_frame.ptr), h, w, w * 3, P(d_mats.ptr), n, S, mean, std, 1,
                                                      P(d_crops.ptr), P(s.ptr)))
        g_paste = ev(lambda: lib.pridss_paste_back(P(d_frame.ptr), h, w, w * 3, P(d_crops.ptr), P(d_mats.ptr), n, S,
                                                   P(d_mask.ptr), mean, std, 1, P(s.ptr)))
        out = np.empty((n, 3, S, S), np.float32)
        f2 = frame.copy()
        c_warp = timed(lambda: cpu.pridss_warp_normalize_cpu(frame.ctypes.data, h, w, w * 3, mats.ctypes.data, n, S,
                                                             mean, std, 1, out.ctypes.data), reps)
        c_paste = timed(lambda: cpu.pridss_paste_back_cpu(f2.ctypes.data, h, w, w * 3, crops.ctypes.data,
                                                          mats.ctypes.data, n, S, mask.ctypes.data, mean, std, 1), reps)
        cv = timed(lambda: [cv2.warpAffine(frame, m, (S, S), flags=cv2.INTER_LINEAR) for m in mats], reps)
        rows.append((n, g_warp, c_warp, cv, g_paste, c_paste))
        for b in (d_mats, d_crops, d_mask):
            b.free()
    info = cuda.device_info(0)
    table(f"native ops, 1920x1080 frame, {S}x{S} crops, ms (median of {reps}); {info['name']}, "
          f"cv2 threads {cv2.getNumThreads()}",
          ["faces", "CUDA warp+normalize", "CPU lib warp+normalize", "cv2.warpAffine (uint8 only)",
           "CUDA paste-back", "CPU lib paste-back"], rows)
    print(f"\npinned 1080p frame (6.2 MB): upload {up:.3f} ms, download {down:.3f} ms")
    hin.free()
    d_frame.free()
    s.close()
    return {"ops": rows, "upload_ms": up, "download_ms": down}


# ---------------------------------------------------------------------------------------------------------
def _no_tf32(torch):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True


def bench_demo(reps):
    import onnxruntime as ort
    import torch

    from export.torch_backend import TorchGraph
    from pridss_rt import load_pack

    _no_tf32(torch)
    pack = load_pack()
    K = pack.candidates
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    rows = []
    for role, spec in pack.networks.items():
        shape = [d for d in spec.inputs[0].shape[1:]]
        sess = ort.InferenceSession(str(spec.path), so, providers=["CPUExecutionProvider"])
        g32, g16 = TorchGraph(str(spec.path), DEV), TorchGraph(str(spec.path), DEV, half=True)
        name = spec.inputs[0].name
        for b in (1, 1 + K, 16):
            x = np.random.default_rng(0).standard_normal([b] + shape).astype(np.float32)
            t_ort = timed(lambda: sess.run(None, {name: x}), max(5, reps // 4))
            t32 = timed(lambda: g32({name: x}), reps, _sync(torch))
            t16 = timed(lambda: g16({name: x}), reps, _sync(torch))
            rows.append((role, b, t_ort, t32, t16))
    table(f"demo pack networks, ms per call incl. host<->device copies (median); {_devname(torch)}",
          ["network", "batch", "ONNX Runtime CPU, 2 threads", f"PyTorch {DEV} fp32", f"PyTorch {DEV} fp16"], rows)
    return {"demo": rows}


def bench_pipeline(reps):
    import torch

    from export.torch_backend import open_torch_networks
    from pridss_rt import Anonymizer, load_pack
    from pridss_rt.backends import open_networks
    from pridss_rt.media import SAMPLE, read_image

    _no_tf32(torch)
    pack = load_pack()
    frame = read_image(SAMPLE)
    rows = []
    for label, nets in (("ONNX Runtime CPU, 2 threads", lambda: open_networks(pack, "ort-cpu", threads=2)),
                        (f"PyTorch {DEV} fp32", lambda: open_torch_networks(pack, device=DEV)),
                        (f"PyTorch {DEV} fp16", lambda: open_torch_networks(pack, device=DEV, half=True))):
        with Anonymizer(pack, networks=nets()) as a:
            def search():
                a.reset()
                a.process(frame)
            t_search = timed(search, max(5, reps // 4))
            a.reset()
            a.process(frame)
            t_track = timed(lambda: a.process(frame), reps)
            _, faces = a.process(frame)
            rows.append((label, t_search, t_track, faces[0].status if faces else "-"))
    table(f"Anonymizer.process on the sample frame ({frame.shape[1]}x{frame.shape[0]}, 1 face), ms (median)",
          ["networks", "first frame (K-candidate search)", "tracked frame", "status"], rows)
    return {"pipeline": rows}


def _graphed(torch, fn):
    """Capture ``fn`` (static inputs) once as a CUDA graph; returns a replay callable (no launch overhead)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def bench_official(reps, k=5):
    import torch
    import torch.nn.functional as F

    from export.official import fixtures
    from export.official.stylefusion import StyleFusionS, pridss_sources

    _no_tf32(torch)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    nets = fixtures.build(fixtures.FULL)
    print(f"\n(official-size random networks built in {time.perf_counter() - t0:.0f} s)")
    gen, enc, arc = nets["generator"].to(DEV), nets["encoder"].to(DEV), nets["arcface"].to(DEV)
    fusion = StyleFusionS(nets["fusion"], gen.s_layout(), pridss_sources()).to(DEV).eval()
    avg = nets["latent_avg"].to(DEV)
    crop = nets["config"].crop_size
    rows = []
    modes = [("fp32", False, False), ("fp16 autocast", True, False)]
    if DEV == "cuda":
        modes += [("fp32, CUDA graph", False, True), ("fp16 autocast, CUDA graph", True, True)]
    for label, ac, graph in modes:
        with torch.inference_mode(), torch.autocast(DEV, torch.float16 if DEV == "cuda" else torch.bfloat16, enabled=ac):
            x1 = torch.randn(1, 3, crop, crop, device=DEV)
            s1 = gen.w_plus_to_s(enc(x1) + avg.reshape(1, -1, avg.shape[-1]), "stylefusion")
            sk = s1.float().repeat(k, 1)
            refs = torch.randn_like(sk) * 0.1 + sk
            xk = torch.randn(k + 1, 3, 112, 112, device=DEV)
            stages = [lambda: gen.w_plus_to_s(enc(x1) + avg.reshape(1, -1, avg.shape[-1]), "stylefusion"),
                      lambda: fusion(sk, refs),
                      lambda: F.adaptive_avg_pool2d(gen.synthesis_s(sk), (crop, crop)),
                      lambda: arc(xk)]
            ts = []
            for f in stages:
                try:
                    ts.append(timed(_graphed(torch, f) if graph else f, reps, _sync(torch)))
                except Exception as exc:  # e.g. a host sync inside the stage: not capturable
                    print(f"{label}: stage not timed ({type(exc).__name__}: {str(exc)[:200]})")
                    ts.append(float("nan"))
            total = sum(ts)
            rows.append((label, *ts, total, 1000.0 / total))
    table(f"official-size stack, one face, K={k} candidates, PyTorch (eager, or replayed as CUDA graphs), ms (median of {reps}); "
          f"{_devname(torch)}",
          ["precision", "e4e encode + W+->S (1)", f"fusion ({k})", f"StyleGAN2-1024 synthesis ({k})",
           f"ArcFace ({k + 1})", "sum", "faces/s"], rows)
    return {"official": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="ops,demo,pipeline,official")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--native-dir", help="folder with libpridss_ops_{cpu,cuda} (sets PRIDSS_NATIVE_DIR)")
    ap.add_argument("--json", help="write the numbers here too")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run of the PyTorch parts")
    a = ap.parse_args(argv)
    global DEV
    DEV = a.device
    if a.native_dir:
        from pridss_rt import native
        os.environ[native.ENV_VAR] = a.native_dir
    res = {}
    for part in a.parts.split(","):
        fn = {"ops": bench_ops, "demo": bench_demo, "pipeline": bench_pipeline, "official": bench_official}[part]
        try:
            res.update(fn(a.reps))
        except Exception as exc:  # keep the other tables
            import traceback
            traceback.print_exc()
            print(f"\n{part}: FAILED ({type(exc).__name__}: {exc})")
            res[part] = f"failed: {exc}"
        sys.stdout.flush()
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
