#!/usr/bin/env python
"""pridss_rt.Anonymizer embedded in a decode -> process -> encode pipeline.

    python samples/video_pipeline.py INPUT OUTPUT [--live] [--queue 4] [--pack demo] [--backend auto]

Three threads joined by bounded queues:

    decoder --(queue, size N)--> anonymizer --(queue, size N)--> encoder

Frame-drop policy:
  * files (default): never drop. A full queue blocks the decoder (backpressure), so every input frame
    is anonymized and written, in order, and memory stays bounded by 2 x N frames.
  * --live (cameras, streams): latency matters more than completeness. When the anonymizer falls
    behind, the decoder drops the OLDEST queued frame to make room for the newest, so the output
    shows the present, never a growing backlog. Dropped frames are counted and reported. A dropped
    frame is never written raw: it is simply not in the output.

The Anonymizer is used from one thread only (it keeps per-stream tracks; see its thread-safety note).
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time

import cv2

from pridss_rt import Anonymizer

_END = object()


def decoder(cap: cv2.VideoCapture, q: queue.Queue, live: bool, stats: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        ok, frame = cap.read()
        if not ok:
            break
        stats["decoded"] += 1
        if live:
            while True:
                try:
                    q.put_nowait(frame)
                    break
                except queue.Full:
                    try:
                        q.get_nowait()  # drop the oldest queued frame
                        stats["dropped"] += 1
                    except queue.Empty:
                        pass
        else:
            q.put(frame)  # blocks when full: backpressure, nothing dropped
    q.put(_END)


def encoder(writer_args: tuple, q: queue.Queue, stats: dict) -> None:
    writer = None
    while True:
        item = q.get()
        if item is _END:
            break
        if writer is None:
            path, fps = writer_args
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.lower().endswith(".avi") else "mp4v"))
            writer = cv2.VideoWriter(path, fourcc, fps, (item.shape[1], item.shape[0]))
        writer.write(item)
        stats["written"] += 1
    if writer is not None:
        writer.release()


def run(src: str, dst: str, *, live: bool = False, queue_size: int = 4, pack: str = "demo",
        backend: str = "auto", threads: int | None = None) -> dict:
    cap = cv2.VideoCapture(int(src) if src.isdigit() else src)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {src!r}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    stats = {"decoded": 0, "dropped": 0, "processed": 0, "written": 0, "faces": 0}
    q_in: queue.Queue = queue.Queue(maxsize=queue_size)
    q_out: queue.Queue = queue.Queue(maxsize=queue_size)
    stop = threading.Event()
    t_dec = threading.Thread(target=decoder, args=(cap, q_in, live, stats, stop), daemon=True)
    t_enc = threading.Thread(target=encoder, args=((dst, fps), q_out, stats), daemon=True)
    t0 = time.perf_counter()
    with Anonymizer(pack, backend, threads=threads) as anon:
        t_dec.start()
        t_enc.start()
        try:
            while True:
                frame = q_in.get()
                if frame is _END:
                    break
                out, faces = anon.process(frame)
                stats["processed"] += 1
                stats["faces"] += len(faces)
                q_out.put(out)
        finally:
            stop.set()
            q_out.put(_END)
            t_enc.join()
            t_dec.join(timeout=5)
            cap.release()
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    stats["fps"] = round(stats["processed"] / max(stats["seconds"], 1e-9), 2)
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--live", action="store_true", help="drop the oldest frames when behind (cameras/streams)")
    ap.add_argument("--queue", type=int, default=4, help="queue size between stages (frames)")
    ap.add_argument("--pack", default="demo")
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    print(run(args.input, args.output, live=args.live, queue_size=args.queue, pack=args.pack, backend=args.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
