"""Experiment (issue #21): choose among the K candidates by how well the new head fits the original's.

The measured cause of the head-level variants' FID is not the decoder (each face's own latent pasted at head level:
FID 19.6) nor the identity/context composite (the reference's whole head, swap-only: 57.6, as the fused 57.9) but
a head that is not the body's: the reference's head shape, pose and hair over the original's background and neck.
This runs `pridss-rt eval` with the host executor's candidate scores patched so that the coherence term gets
``--weight`` x (1 - IoU(original head, candidate head)) (P(head) > 0.5 masks the head-level blend computes anyway)
added, and the coherence weight of the pack (1.0) on: the candidate whose head overlaps the original's most wins
when PIC ties. Not product code: if it helps, the term belongs in SearchConfig.

    python research/experiments/head_fit.py --weight 2 -- --data ../shared/data/celebahq/manifest.csv \\
        --split val --limit 600 --seed 0 --pack runs/pack_170 --baselines none --ablation none --out runs/eval/v170_fit
"""
import argparse, os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from pridss_rt.executors.host import HostExecutor  # noqa: E402
from pridss_rt.cli import main as cli_main  # noqa: E402


def misfit(head_a, head_b):
    a, b = head_a > 0.5, head_b > 0.5
    return 1.0 - (a & b).sum() / max((a | b).sum(), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--weight', type=float, required=True)
    ap.add_argument('rest', nargs=argparse.REMAINDER, help='-- then the pridss-rt eval arguments')
    a = ap.parse_args()
    real = HostExecutor.score

    def score(self, fr, n, coherence):
        p, e, comp = real(self, fr, n, True)
        m = np.array([misfit(fr.head_orig[fr.owners[r]], fr.head_new[r]) for r in range(n)], np.float32)
        return p, e, comp + a.weight * m

    HostExecutor.score = score
    rest = a.rest[1:] if a.rest[:1] == ['--'] else a.rest
    return cli_main(['eval'] + rest)


if __name__ == '__main__':
    sys.exit(main())
