"""The ``pridss-rt`` command line: one module per subcommand, each owning its parser (``add_parser``) and
its entry point (``main``). Parsing imports nothing heavy, so ``pridss-rt --help`` works anywhere."""

from __future__ import annotations

import argparse
import logging
import sys

from pridss_rt import __version__
from pridss_rt.cli import anonymize, audit, bench, doctor
from pridss_rt.cli import eval as eval_cmd
from pridss_rt.errors import PridssError

SUBCOMMANDS = (doctor, anonymize, bench, eval_cmd, audit)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pridss-rt", description="Gender-private, recognizable face anonymization "
                                "for images and video streams (PriDSS) on TensorRT or ONNX Runtime.")
    p.add_argument("--version", action="version", version=f"pridss-rt {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the runtime decides (backend choice, ...)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in SUBCOMMANDS:
        cmd.add_parser(sub).set_defaults(run=cmd.main)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="pridss-rt: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except PridssError as exc:
        print(f"pridss-rt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
