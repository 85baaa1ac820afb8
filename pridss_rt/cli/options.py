"""Options shared by the subcommands that build an :class:`~pridss_rt.Anonymizer`, and the one place that
turns them into one."""

from __future__ import annotations

import argparse

from pridss_rt.pack.spec import BLEND_REGIONS
from pridss_rt.pipeline.config import REFERENCE_GENDERS

BACKEND_CHOICES = ["auto", "trt", "ort-trt", "ort-cuda", "ort-cpu"]


def add_runtime_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--pack", default="demo", metavar="NAME|PATH", help="model pack (default: demo, shipped in the package)")
    q.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                   help="inference backend (auto: fastest that really works here; it says which)")
    q.add_argument("--candidates", "-k", type=int, default=None, help="K opposite-gender references per face (default: the pack's)")
    q.add_argument("--coherence-weight", type=float, default=None, metavar="W",
                   help="weight of the pack's coherence critic added to PIC (default: the pack's; 0 = PIC alone)")
    q.add_argument("--reference-gender", default=None, choices=list(REFERENCE_GENDERS),
                   help="gender of the K references: the opposite of the face's, drawn at random per search, "
                        "independent of the face (--seed), or both (ceil(K/2) opposite, the rest the face's own; the "
                        "most ambiguous result wins); default: both with --region head or person, opposite with the inner face")
    q.add_argument("--seed", type=int, default=0, help="seed of --reference-gender random (default 0)")
    q.add_argument("--keep-identity-gender", action="store_true",
                   help="keep the eyes, nose and mouth exactly as the original's (packs with an identity_nullspace, "
                        "such as the demo pack, remove their gender directions by default: more privacy against "
                        "attackers that learn, a little less identity)")
    q.add_argument("--region", default=None, choices=list(BLEND_REGIONS),
                   help="what is re-rendered: the inner face (eyes, nose, mouth and the skin around them; the demo "
                        "pack's default), the whole head and hair over the original's background, or the person "
                        "(head, hair, neck and clothes inside the face's crop); head and person need a pack with a "
                        "segmentation network, such as the demo pack: far more privacy, less identity and realism")
    q.add_argument("--detector", default="mtcnn", metavar="mtcnn|PATH.onnx", help="face detector: mtcnn (default) or a YuNet .onnx file")
    q.add_argument("--min-face", type=int, default=32, help="smallest face to detect, in pixels (default 32)")
    q.add_argument("--upright", action="store_true",
                   help="the stream is known to be upright: skip the detection passes on copies rotated by 90/180/270 "
                        "degrees that find faces of people lying down (faster)")
    q.add_argument("--engines", metavar="DIR", help="TensorRT engines root")
    q.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")


def runtime_kwargs(args) -> dict:
    """The :class:`~pridss_rt.Anonymizer` arguments of :func:`add_runtime_options`' options."""
    from pridss_rt.anonymizer import BlendConfig, DetectorConfig, SearchConfig

    return dict(pack=args.pack, backend=args.backend, engines_root=args.engines, threads=args.threads,
                detector=DetectorConfig(args.detector, min_face=args.min_face, rotations=not getattr(args, "upright", False)),
                search=SearchConfig(candidates=args.candidates, coherence_weight=args.coherence_weight,
                                    reference_gender=args.reference_gender, seed=args.seed,
                                    identity_nullspace=not getattr(args, "keep_identity_gender", False)),
                blend=BlendConfig(region=getattr(args, "region", None)))
