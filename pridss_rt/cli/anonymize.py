"""``pridss-rt anonymize``: images, folders (mirrored), videos (audio kept with ffmpeg) and webcams."""

from __future__ import annotations

import sys
import time

from pridss_rt import media
from pridss_rt.archive.items import JsonLog, process_image, process_video
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
    a.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Ray: 'local' (default when given without a value) starts a local Ray instance, "
                        "otherwise a cluster address; outputs are written under temporary names, a ledger in the "
                        "output folder lets a re-run skip what is done (pip install 'pridss-rt[ray]')")
    a.add_argument("--workers", type=int, default=None, metavar="N",
                   help="Ray actors, each holding one Anonymizer (default: one per GPU with a GPU backend, "
                        "else one per CPU)")
    add_runtime_options(a)
    return a


def _anonymizer(args):
    from pridss_rt.anonymizer import Anonymizer

    anon = Anonymizer(**runtime_kwargs(args))
    print(f"pridss-rt: pack '{anon.pack.name}' on {anon.backend} ({anon.nets.reason}), K={anon.candidates}, "
          f"region {anon.region}, references {anon.reference_gender}",
          file=sys.stderr)
    return anon


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
    if args.ray is not None:
        return _ray(args)
    if args.workers is not None:
        raise InputError("--workers is an option of the Ray path: add --ray (or --ray ADDRESS)")
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
                r = process_image(anon, job)  # the Ray workers run the same function
                if not r.ok:
                    failed += 1
                    print(f"pridss-rt: skipped {job.src}: {r.error}", file=sys.stderr)
                    continue
                for rec in r.records:
                    log.write_record(rec)
                if r.note:
                    print(f"pridss-rt: {job.src}: {r.note}", file=sys.stderr)
                elif len(images) < 2:
                    print(f"{job.src} -> {job.dst}: {r.faces} face(s), {r.faces - r.pixelated} anonymized, "
                          f"{r.pixelated} pixelated", file=sys.stderr)
            for job in (j for j in jobs if j.kind == "video"):
                if not _video(anon, job, args, log):
                    failed += 1
        finally:
            log.close()
    if len(jobs) > 1 or failed:
        print(f"pridss-rt: {len(jobs) - failed} of {len(jobs)} file(s) done, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _video(anon, job, args, log) -> bool:
    from tqdm import tqdm

    bar = tqdm(desc=job.src.name, unit="frame", disable=args.no_progress)

    def opened(total: int) -> None:
        bar.total = total or None
        bar.refresh()

    def frame_done(rec) -> None:
        log.write_record(rec)
        bar.update(1)

    try:
        r = process_video(anon, job, args.max_frames, on_frame=frame_done, keep_records=False, on_open=opened)
    finally:
        bar.close()
    if r.frames:
        print(f"{job.src} -> {job.dst}: {r.frames} frames ({r.note})", file=sys.stderr)
    if not r.ok:
        print(f"pridss-rt: skipped {job.src}: {r.error}", file=sys.stderr)
    return r.ok


def _ray(args) -> int:
    from pridss_rt.archive.ray_runner import anonymize_on_ray

    if args.source is not None or args.preview:
        raise InputError("--ray anonymizes files and folders; --source/--preview run in one process")
    kw = runtime_kwargs(args)
    threads = kw.pop("threads")
    summary = anonymize_on_ray(args.inputs, args.output, address=args.ray, workers=args.workers, anonymizer=kw,
                               max_frames=args.max_frames, json_log=args.json, progress=not args.no_progress,
                               threads=threads)
    print(f"pridss-rt: {summary.line()}", file=sys.stderr)
    return 1 if summary.failed else 0


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
