"""``pridss-rt eval``: the evaluation protocol of :mod:`pridss_rt.eval` from the command line. Each option
is a field of :class:`~pridss_rt.eval.EvalConfig` (``--extra-attacker`` -> ``extra_attackers``;
``--no-progress`` -> ``evaluate(progress=False)``)."""

from __future__ import annotations

import dataclasses

from pridss_rt.cli.options import BACKEND_CHOICES
from pridss_rt.errors import PridssError
from pridss_rt.eval.config import (
    BASELINES,
    DEFAULT_FID_MODEL,
    FID_METHODS,
    OUTPUT_KINDS,
    EvalConfig,
)
from pridss_rt.pack.spec import BLEND_REGIONS
from pridss_rt.pipeline.config import REFERENCE_GENDERS


def add_parser(sub):
    """Define the ``eval`` subcommand on an argparse subparsers object; returns the parser."""
    e = sub.add_parser(
        "eval", help="measure gender privacy, verification, FID and restoration attacks on a labelled face set",
        description="Anonymize every face of MANIFEST through the full pipeline (faces are placed in a larger "
                    "frame first) and measure gender ROC AUC (also after denoise/inpaint/autoencoder restorations), "
                    "verification against the originals (EER, FNMR at FMR=0.1) and FID, next to blur, pixelate, "
                    "gender-swap-only baselines and a K ablation. Writes OUT/report.json and OUT/report.md.")
    e.add_argument("--data", required=True, metavar="MANIFEST.csv",
                   help="CSV with columns file (relative to the manifest), identity, male (1/0); optional split")
    e.add_argument("--split", default="val", help="rows of this split when the manifest has a split column "
                   "(default val; 'all' for every row)")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate N faces: whole identities in a seeded random order (keeps genuine pairs)")
    e.add_argument("--seed", type=int, default=0, help="seed of --limit's identity order and of the inpainting masks")
    e.add_argument("--out", required=True, metavar="DIR", help="output folder (report.json, report.md, PNGs)")
    e.add_argument("--pack", default="demo", metavar="NAME|PATH", help="model pack (default: demo)")
    e.add_argument("--backend", default="auto", choices=BACKEND_CHOICES)
    e.add_argument("--candidates", "-k", type=int, default=None, help="K of the main PriDSS row (default: the pack's)")
    e.add_argument("--coherence-weight", type=float, default=None, metavar="W",
                   help="weight of the pack's coherence critic added to PIC (default: the pack's; 0 = PIC alone)")
    e.add_argument("--keep-identity-gender", dest="identity_nullspace", action="store_false",
                   help="PriDSS rows keep the eyes, nose and mouth exactly as the original's (no identity_nullspace)")
    e.add_argument("--reference-gender", default=None, choices=list(REFERENCE_GENDERS),
                   help="gender of the references of the PriDSS rows: opposite, drawn at random per face with --seed "
                        "(independent of the input's gender), or both (ceil(K/2) opposite, the rest the face's own); "
                        "default: both with the head-level blend, opposite with the inner face")
    e.add_argument("--region", default=None, choices=list(BLEND_REGIONS),
                   help="what the PriDSS rows re-render: the inner face, the head or the person (default: the pack's)")
    e.add_argument("--ablation", default="1,3,5,10", metavar="K,K,...",
                   help="K values of the candidate ablation (default 1,3,5,10; 'none' to skip)")
    e.add_argument("--baselines", default=",".join(BASELINES), metavar="LIST",
                   help=f"baselines to run (default {','.join(BASELINES)}; 'none' to skip)")
    e.add_argument("--attacker-gender", metavar="ONNX", default=None,
                   help="gender classifier of the attacker (default: the pack's own, which also picked the candidates "
                        "and so flatters the result)")
    e.add_argument("--attacker-output-kind", default="auto", choices=list(OUTPUT_KINDS),
                   help="output of --attacker-gender (auto: from the graph's last operator and output width)")
    e.add_argument("--attacker-male-index", type=int, default=1, help="male column of a 2-class output (default 1)")
    e.add_argument("--extra-attacker", metavar="ONNX", action="append", default=[],
                   help="another gender classifier scored on every row next to the main attacker (repeatable; output "
                        "kind auto-detected, --attacker-male-index and --external-preprocess apply); "
                        "report.json: methods[*].extra_attackers")
    e.add_argument("--matcher", metavar="ONNX", default=None,
                   help="identity embedder for verification (default: the pack's own)")
    e.add_argument("--external-preprocess", default="pack", metavar="pack|MEAN,STD,ORDER",
                   help="input normalization of --attacker-gender/--matcher networks: 'pack' (the pack's) or e.g. "
                        "'0.5,0.5,rgb' for (pixel/255 - MEAN)/STD in RGB order; crops are aligned to the pack's "
                        "template scaled to the network's input size")
    e.add_argument("--fid-model", default=str(DEFAULT_FID_MODEL), metavar="ONNX",
                   help=f"Inception feature extractor in ONNX (default {DEFAULT_FID_MODEL}; create it with "
                        "python export/export_inception.py); FID is null when it is missing")
    e.add_argument("--fid-methods", default="all", choices=list(FID_METHODS),
                   help="rows that get an FID (Inception dominates the run time on CPU; default all)")
    e.add_argument("--restorer", default=None, metavar="ONNX",
                   help="restoration autoencoder (default: pridss_rt/assets/restorer_ae.onnx)")
    e.add_argument("--canvas", type=int, default=288, help="side of the frame each face is placed in (default 288)")
    e.add_argument("--scale", type=float, default=1.5, help="face upscale inside the frame (default 1.5)")
    e.add_argument("--grid", type=int, default=6, help="faces shown in the picture grid (default 6; 0 = none)")
    e.add_argument("--batch", type=int, default=16, help="faces per batch (default 16)")
    e.add_argument("--detector", default="mtcnn", metavar="mtcnn|PATH.onnx")
    e.add_argument("--min-face", type=int, default=32)
    e.add_argument("--engines", metavar="DIR", help="TensorRT engines root")
    e.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")
    e.add_argument("--save-faces", action="store_true",
                   help="also write each method's output faces (128 px, BGR uint8), labels, identities and landmarks "
                        "to OUT/faces/METHOD.npz: the training and test sets of an attacker that learns from "
                        "anonymized outputs (research/training/train_adaptive.py)")
    e.add_argument("--adaptive", type=int, default=0, metavar="N",
                   help="also fit attackers that learn on N faces of the manifest's train split (identity-disjoint "
                        "from --split): per method a gender probe on the matcher's embeddings of that method's "
                        "outputs (adaptive), and one on the originals' eyes, nose and mouth only (kept segments); "
                        "tested on the evaluated faces (default 0: off; runs every method on the N faces too)")
    e.add_argument("--no-progress", action="store_true")
    return e


def config_from_args(args) -> EvalConfig:
    """The :class:`~pridss_rt.eval.EvalConfig` of parsed ``eval`` arguments."""
    names = {f.name for f in dataclasses.fields(EvalConfig)} - {"extra_attackers"}
    return EvalConfig(**{n: getattr(args, n) for n in names},
                      extra_attackers=tuple(getattr(args, "extra_attacker", None) or ()))


def main(args) -> int:
    from pridss_rt.eval import evaluate

    cfg = config_from_args(args)
    try:
        rep = evaluate(cfg, progress=not args.no_progress)
    except FileNotFoundError as exc:
        raise PridssError(str(exc)) from None
    for line in rep.summary_lines():
        print(line)
    return 0
