"""``pridss-rt audit``: the leak audit of :mod:`pridss_rt.eval.audit` from the command line: known faces pasted
into frames and a video (sizes, rotations, frame edges, crowds, gray/BGRA, EXIF, motion), anonymized with the
given settings, and a table of the faces shown raw. Exit status 1 when any counted face was shown raw."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pridss_rt.cli.options import add_runtime_options, runtime_kwargs


def add_parser(sub):
    a = sub.add_parser(
        "audit", help="count the faces shown raw over pasted test faces: sizes, rotations, frame edges, crowds, "
                      "gray/BGRA, EXIF orientations, a moving face",
        description="Paste known faces into synthetic frames and a video, anonymize them with the given settings and "
                    "count, per case, the faces the output shows raw (most inner-face pixels unchanged), barely "
                    "touched, pixelated or anonymized, and the detector's misses. Exit status 1 when a counted face "
                    "was shown raw.")
    a.add_argument("sources", nargs="*", metavar="FACES",
                   help="images or folders of images with one face each (default: the bundled sample photo)")
    a.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N source faces found")
    a.add_argument("--quick", action="store_true", help="a few cases of each kind (seconds instead of minutes)")
    a.add_argument("--out", metavar="DIR", help="also write DIR/audit.md and DIR/audit.json (every face's outcome)")
    a.add_argument("--json", action="store_true", help="print the summary as JSON instead of the table")
    add_runtime_options(a)
    return a


def main(args) -> int:
    from pridss_rt.anonymizer import Anonymizer
    from pridss_rt.errors import InputError
    from pridss_rt.eval import audit
    from pridss_rt.media import SAMPLE
    from pridss_rt.stages.detect import make_detector

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    kw = runtime_kwargs(args)
    t0 = time.perf_counter()
    with Anonymizer(**kw) as anon:
        finder = make_detector("mtcnn", threads=args.threads)  # the truth of each source face: upright, on its own
        sources = audit.load_sources(args.sources or [SAMPLE], finder, args.limit)
        opts = audit.QUICK if args.quick else {}
        done = [0]

        def progress(case):
            done[0] += 1
            if sys.stderr.isatty():
                print(f"\raudit: {done[0]} frames", end="", file=sys.stderr, flush=True)

        rep = audit.run_audit(anon, audit.cases(sources, **opts), progress)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        settings = repr(anon)
    took = time.perf_counter() - t0
    head = (f"pridss-rt audit: {len(sources)} source face(s), {len(rep.outcomes)} pasted faces in {done[0]} frames, "
            f"{took:.0f} s; {settings}")
    if args.out:
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "audit.md").write_text(head + "\n\n" + rep.markdown() + "\n")
            (out / "audit.json").write_text(json.dumps({"settings": settings, **rep.to_json()}, indent=1, allow_nan=False))
        except OSError as exc:
            raise InputError(f"{out}: cannot write the audit: {exc.strerror or exc}") from None
    if args.json:
        summary = rep.to_json()
        summary.pop("outcomes")
        print(json.dumps({"settings": settings, **summary}, allow_nan=False))
    else:
        print(head)
        print(rep.markdown())
        print(f"{rep.raw} counted face(s) shown raw, {rep.barely} barely touched")
    return 1 if rep.raw else 0
