#!/usr/bin/env python
"""Live webcam anonymization with an FPS overlay.

    python samples/webcam_anonymize.py [--camera 0] [--backend auto] [--out live.mp4]

Shows a window when OpenCV has a GUI (opencv-python; the headless build has none: then use --out).
Press q or Esc to stop.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2

from pridss_rt import Anonymizer


def has_gui() -> bool:
    info = cv2.getBuildInformation()
    gui = info.split("GUI:")[-1].splitlines()[0] if "GUI:" in info else "NONE"
    return "NONE" not in gui.upper()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--camera", default="0", help="camera index or stream URL")
    ap.add_argument("--pack", default="demo")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", help="also record the anonymized stream to this file")
    ap.add_argument("--frames", type=int, default=0, help="stop after N frames (0 = until q/Esc)")
    args = ap.parse_args()

    cap = cv2.VideoCapture(int(args.camera) if args.camera.isdigit() else args.camera)
    if not cap.isOpened():
        print(f"cannot open camera {args.camera!r}", file=sys.stderr)
        return 2
    show = has_gui()
    if not show and not args.out:
        print("OpenCV has no GUI here (headless build): pass --out FILE to record instead", file=sys.stderr)
        return 2
    writer = None
    fps_avg, n = 0.0, 0
    with Anonymizer(args.pack, args.backend) as anon:
        print(f"backend: {anon.backend} ({anon.nets.reason})", file=sys.stderr)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = time.perf_counter()
            out, faces = anon.process(frame)
            dt = time.perf_counter() - t
            fps_avg = 0.9 * fps_avg + 0.1 * (1.0 / max(dt, 1e-6)) if n else 1.0 / max(dt, 1e-6)
            n += 1
            label = f"{fps_avg:5.1f} FPS  {len(faces)} face(s)  {anon.backend}"
            cv2.putText(out, label, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 0), 2, cv2.LINE_AA)
            if args.out:
                if writer is None:
                    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), 25, (out.shape[1], out.shape[0]))
                writer.write(out)
            if show:
                cv2.imshow("pridss-rt", out)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            if args.frames and n >= args.frames:
                break
    cap.release()
    if writer is not None:
        writer.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
