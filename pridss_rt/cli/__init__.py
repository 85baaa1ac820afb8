"""The ``pridss-rt`` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from pridss_rt import __version__
from pridss_rt.errors import PridssError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pridss-rt", description="Gender-private, recognizable face anonymization "
                                "for images and video streams (PriDSS) on TensorRT or ONNX Runtime.")
    p.add_argument("--version", action="version", version=f"pridss-rt {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the runtime decides (backend choice, ...)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("doctor", help="show GPU/driver/TensorRT/ONNX Runtime, packs and engines, and what to do next")
    d.add_argument("--pack", action="append", metavar="NAME|PATH", help="check this pack (repeatable; default: all installed)")
    d.add_argument("--engines", metavar="DIR", help="engines root (default: $PRIDSS_RT_ENGINES, ./engines, ~/.cache/pridss-rt/engines)")
    d.add_argument("--json", action="store_true", help="machine-readable output")

    def common(q):
        q.add_argument("--pack", default="demo", metavar="NAME|PATH", help="model pack (default: demo, shipped in the package)")
        q.add_argument("--backend", default="auto", choices=["auto", "trt", "ort-trt", "ort-cuda", "ort-cpu"],
                       help="inference backend (auto: fastest that really works here; it says which)")
        q.add_argument("--candidates", "-k", type=int, default=None, help="K opposite-gender references per face (default: the pack's)")
        q.add_argument("--coherence-weight", type=float, default=None, metavar="W",
                       help="weight of the pack's coherence critic added to PIC (default: the pack's; 0 = PIC alone)")
        q.add_argument("--detector", default="mtcnn", metavar="mtcnn|PATH.onnx", help="face detector: mtcnn (default) or a YuNet .onnx file")
        q.add_argument("--min-face", type=int, default=32, help="smallest face to detect, in pixels (default 32)")
        q.add_argument("--engines", metavar="DIR", help="TensorRT engines root")
        q.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")

    a = sub.add_parser("anonymize", help="anonymize images, folders (mirrored), videos or a webcam",
                       description="Every detected face becomes gender-private; faces that cannot be anonymized are pixelated.")
    a.add_argument("inputs", nargs="*", metavar="INPUT", help="image/video files or folders")
    a.add_argument("-o", "--output", help="output file (one input) or folder")
    a.add_argument("--source", metavar="CAMERA", help="webcam index (e.g. 0) or stream URL instead of INPUTs")
    a.add_argument("--sample", action="store_true", help="anonymize the bundled sample photo (public domain)")
    a.add_argument("--preview", action="store_true", help="show a live window (needs an OpenCV build with GUI)")
    a.add_argument("--max-frames", type=int, default=None, help="stop videos/webcam after N frames")
    a.add_argument("--json", metavar="FILE", help="write one JSON line per image/frame with every face's record")
    a.add_argument("--no-progress", action="store_true")
    common(a)

    b = sub.add_parser("bench", help="per-stage latency, steady-state FPS and candidate-search time on synthetic frames")
    b.add_argument("--resolution", default="640x480", metavar="WxH")
    b.add_argument("--faces", type=int, default=1)
    b.add_argument("--frames", type=int, default=200)
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--json", action="store_true", help="print the results as JSON")
    b.add_argument("--no-reference", action="store_true", help="skip the PyTorch reference run")
    b.add_argument("--rounds", type=int, default=2, help="alternating rounds of each engine (own process each)")
    common(b)

    from pridss_rt.eval.evaluate import (
        add_eval_parser,  # the evaluation command's options live with its code
    )

    add_eval_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="pridss-rt: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "doctor":
            from pridss_rt.cli.doctor import main as doctor_main
            return doctor_main(args.pack, args.engines, args.json)
        if args.command == "anonymize":
            from pridss_rt.cli.anonymize import anonymize_main
            return anonymize_main(args)
        if args.command == "eval":
            from pridss_rt.eval.evaluate import eval_main
            return eval_main(args)
        if args.command == "bench":
            from pridss_rt.cli.bench import bench_main
            return bench_main(args)
    except PridssError as exc:
        print(f"pridss-rt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
