"""Kept segments without their gender component (issue #21, the adaptive attacker's bound).

The segments PriDSS keeps from the original (eyes, nose, mouth cells of the latent) carry gender: an attacker that
learns from outputs reads it there (kept-segments attacker ~0.93 on every PriDSS output). This experiment changes
the kept cells' component along the bank's gender direction (d = mean(male) - mean(female) of the bank latents
over the kept cells, unit length), after the fusion:

- ``neutral``: set it to the midpoint of the two gender means' projections (the same value for every face);
- ``reference``: take it from the reference (the candidate's gender, like its context);
- ``nullspace``: remove the ``--rank`` directions along which a linear classifier reads gender from the kept
  cells (iterative nullspace projection, Ravfogel et al. 2020: fit a ridge direction on the bank latents, project
  it out, refit, ``--rank`` times), about the bank mean: z_kept <- mu + P (z_kept - mu). The runtime does the
  same for packs with an ``identity_nullspace`` extra (research/pack/add_nullspace.py builds one).

``--strength`` scales the change (1 = all of it). Then `pridss-rt eval` runs as usual (the runtime's fuse is
wrapped in this process only), e.g. with ``--adaptive`` for the attackers that learn and ``--reference-gender
random`` so that the context does not follow the input's gender either:

    python research/experiments/neutral_identity.py --mode neutral -- --data ../shared/data/celebahq/manifest.csv \\
        --split val --limit 600 --seed 0 --ablation none --baselines none --adaptive 1200 --out runs/neutral
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from research.pack.add_nullspace import nullspace  # noqa: E402


def direction(pack) -> tuple[np.ndarray, float]:
    """Unit gender direction over the kept cells (flattened latent) and the midpoint of the gender means on it."""
    latents, male = pack.bank()
    z = latents.reshape(len(latents), -1).astype(np.float64)
    m = pack.fusion_mask().reshape(-1).astype(np.float64)
    d = (z[male].mean(0) - z[~male].mean(0)) * m
    d /= np.linalg.norm(d)
    s = z @ d
    return d.astype(np.float32), float(0.5 * (s[male].mean() + s[~male].mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("neutral", "reference", "nullspace"), default="neutral")
    ap.add_argument("--rank", type=int, default=10, help="directions removed (--mode nullspace)")
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("eval_args", nargs=argparse.REMAINDER, help="-- then the arguments of pridss-rt eval")
    args = ap.parse_args()
    rest = args.eval_args[1:] if args.eval_args[:1] == ["--"] else args.eval_args

    import pridss_rt.pipeline.orchestrator as orch
    from pridss_rt.cli import main as cli_main

    plain = orch.fuse
    cache: dict[int, tuple[np.ndarray, float]] = {}

    def fuse(nets, pack, original, references):
        z = plain(nets, pack, original, references)
        if pack.fusion.type != "mask" or not pack.fusion_mask().any():
            return z  # swap only: nothing kept
        if id(pack) not in cache:
            cache[id(pack)] = nullspace(pack, args.rank) if args.mode == "nullspace" else direction(pack)
        flat = z.reshape(len(z), -1)
        if args.mode == "nullspace":
            cols, mu, u = cache[id(pack)]
            kept = original.reshape(len(z), -1)[:, cols].astype(np.float64) - mu
            flat[:, cols] -= (args.strength * (kept @ u.T) @ u).astype(np.float32)
            return flat.reshape(z.shape).astype(np.float32)
        d, mid = cache[id(pack)]
        s = original.reshape(len(z), -1) @ d
        target = np.full_like(s, mid) if args.mode == "neutral" else references.reshape(len(z), -1) @ d
        flat += args.strength * (target - s)[:, None] * d[None]
        return flat.reshape(z.shape).astype(np.float32)

    orch.fuse = fuse
    print(f"neutral_identity: mode {args.mode}, strength {args.strength}, rank {args.rank}", file=sys.stderr)
    sys.exit(cli_main(["eval"] + rest))


if __name__ == "__main__":
    main()
