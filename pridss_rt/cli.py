"""The ``pridss-rt`` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .errors import PridssError


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
            from .doctor import main as doctor_main
            return doctor_main(args.pack, args.engines, args.json)
    except PridssError as exc:
        print(f"pridss-rt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
