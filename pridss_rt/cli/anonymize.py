"""``pridss-rt anonymize``: images, folders (mirrored), videos (audio kept with ffmpeg) and webcams."""

from __future__ import annotations

import json
import sys
import time

from pridss_rt import media
from pridss_rt.cli.options import add_runtime_options, runtime_kwargs
from pridss_rt.errors import InputError


def add_parser(sub):
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
    add_runtime_options(a)
    return a


def _anonymizer(args):
    from pridss_rt.anonymizer import Anonymizer

    anon = Anonymizer(**runtime_kwargs(args))
    print(f"pridss-rt: pack '{anon.pack.name}' on {anon.backend} ({anon.nets.reason}), K={anon.candidates}",
          file=sys.stderr)
    return anon


class JsonLog:
    def __init__(self, path: str | None):
        self.f = open(path, "w", encoding="utf-8") if path else None

    def write(self, source: str, frame: int | None, faces, frame_status=None) -> None:
        if self.f:
            rec = {"source": source, "frame": frame, "faces": [f.to_json() for f in faces]}
            if frame_status is not None and frame_status.whole_frame_pixelated:
                rec["whole_frame_pixelated"], rec["reason"] = True, frame_status.reason
            self.f.write(json.dumps(rec, allow_nan=False) + "\n")  # always valid JSON (to_json: NaN -> null)

    def close(self) -> None:
        if self.f:
            self.f.close()


def main(args) -> int:
    from tqdm import tqdm

    if args.sample:
        args.inputs = [str(media.SAMPLE)]
        args.output = args.output or "anonymized.jpg"
    if args.source is None and not args.inputs:
        raise InputError("give INPUT files/folders, --source CAMERA or --sample (see pridss-rt anonymize --help)")
    if args.source is None and not args.output:
        raise InputError("-o/--output is required for files and folders")
    if args.preview:
        import cv2

        if "GUI" not in cv2.getBuildInformation() or "NONE" in cv2.getBuildInformation().split("GUI:")[-1][:40]:
            raise InputError("--preview needs an OpenCV build with a GUI (opencv-python-headless has none)")
    jobs = media.plan(args.inputs, args.output) if args.source is None else []  # bad paths/extensions: before any work
    log = JsonLog(args.json)
    failed = 0
    with _anonymizer(args) as anon:
        try:
            if args.source is not None:
                return _stream(anon, args, log)
            images = [j for j in jobs if j.kind == "image"]
            bar = tqdm(images, desc="images", unit="img", disable=args.no_progress or len(images) < 2)
            for job in bar:
                try:
                    img = media.read_image(job.src)
                    anon.reset()  # unrelated images: no tracking across them
                    out, faces = anon.process(img)
                    media.write_image(job.dst, out)
                    log.write(str(job.src), None, faces, anon.last_frame)
                    n_pix = sum(f.status != "anonymized" for f in faces)
                    if anon.last_frame.whole_frame_pixelated:
                        print(f"pridss-rt: {job.src}: whole image pixelated ({anon.last_frame.reason})", file=sys.stderr)
                    elif len(images) < 2:
                        print(f"{job.src} -> {job.dst}: {len(faces)} face(s), {len(faces) - n_pix} anonymized, "
                              f"{n_pix} pixelated", file=sys.stderr)
                except InputError as exc:
                    failed += 1
                    print(f"pridss-rt: skipped {job.src}: {exc}", file=sys.stderr)
            for job in (j for j in jobs if j.kind == "video"):
                try:
                    _video(anon, job, args, log)
                except InputError as exc:
                    failed += 1
                    print(f"pridss-rt: skipped {job.src}: {exc}", file=sys.stderr)
        finally:
            log.close()
    if len(jobs) > 1 or failed:
        print(f"pridss-rt: {len(jobs) - failed} of {len(jobs)} file(s) done, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _video(anon, job, args, log) -> None:
    from tqdm import tqdm

    reader = media.VideoReader(str(job.src))
    anon.reset()
    writer = None
    n = 0
    try:
        bar = tqdm(total=reader.frames or None, desc=job.src.name, unit="frame", disable=args.no_progress)
        for frame in reader:
            out, faces = anon.process(frame)
            if writer is None:
                writer = media.VideoWriter(job.dst, reader.fps, (out.shape[1], out.shape[0]), audio_from=job.src)
            writer.write(out)
            log.write(str(job.src), n, faces, anon.last_frame)
            n += 1
            bar.update(1)
            if args.max_frames and n >= args.max_frames:
                break
        bar.close()
    finally:
        reader.close()
        if writer is not None:
            writer.close()
    if n == 0:
        raise InputError(f"{job.src}: no frames could be decoded")
    print(f"{job.src} -> {job.dst}: {n} frames ({writer.audio_note})", file=sys.stderr)
    expected = min(reader.frames, args.max_frames) if args.max_frames else reader.frames
    if expected and n < expected:  # a garbled stream: what was decoded is written (anonymized), the loss is named
        raise InputError(f"{job.src}: only {n} of {expected} frames could be decoded; {job.dst} holds those {n}")


def _stream(anon, args, log) -> int:
    """Webcam/stream: process live; optional preview with an FPS overlay; optional output file."""
    import cv2

    src = int(args.source) if str(args.source).isdigit() else args.source
    reader = media.VideoReader(src)
    writer = None
    n, t0 = 0, time.perf_counter()
    try:
        for frame in reader:
            out, faces = anon.process(frame)
            n += 1
            log.write(str(args.source), n - 1, faces, anon.last_frame)
            if args.output:
                if writer is None:
                    writer = media.VideoWriter(args.output, reader.fps, (out.shape[1], out.shape[0]))
                writer.write(out)
            if args.preview:
                fps = n / (time.perf_counter() - t0)
                cv2.putText(out, f"{fps:.1f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 255, 0), 2)
                cv2.imshow("pridss-rt", out)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            if args.max_frames and n >= args.max_frames:
                break
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
        if writer is not None:
            writer.close()
    print(f"pridss-rt: {n} frames, {n / max(time.perf_counter() - t0, 1e-9):.1f} FPS", file=sys.stderr)
    return 0
