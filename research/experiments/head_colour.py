"""Experiment (issue #21): the colour match for the three-way synthesis, inside the new head only.

The three-way packs skip the colour match (the network copies the original's surroundings; a shift of the whole
crop would move them), and by eye their faces are often paler than the neck. This runs `pridss-rt eval` with the
host executor's shown crops patched: the pack's mean-colour match (blend.color_match, the inner-face mask) applied
with the new head's P(head) as alpha, background untouched. Not product code.

    python research/experiments/head_colour.py -- --data ../shared/data/celebahq/manifest.csv --split val \\
        --limit 600 --seed 0 --pack runs/pack_170 --baselines none --ablation none --out runs/eval/v170_cm
"""
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from pridss_rt.cli import main as cli_main  # noqa: E402
from pridss_rt.executors.host import HostExecutor  # noqa: E402
from pridss_rt.stages import align, blend  # noqa: E402


def shown(self, fr, rows):
    orig = align.to_uint8(fr.crops, self.pack.preprocess)
    out = []
    for g, r in zip(align.to_uint8(fr.images[rows], self.pack.preprocess), rows):
        j = fr.owners[r]
        a = np.clip(fr.head_new[r], 0, 1)[..., None]
        m = blend.color_match(g, orig[j], self.mask).astype(np.float32)
        out.append((m * a + g.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8))
    return np.stack(out)


if __name__ == '__main__':
    HostExecutor._shown = shown
    rest = sys.argv[1:]
    sys.exit(cli_main(['eval'] + (rest[1:] if rest[:1] == ['--'] else rest)))
