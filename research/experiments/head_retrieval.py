"""Experiment (issue #21): retrieve references whose head fits the original's, over the whole bank.

The K candidates of head-level packs come from the references closest in latent and head pose; their heads'
shapes are not looked at, and a head that is not this body's is where the head-level FID goes (records/log.md).
This runs `pridss-rt eval` with the bank's ranking patched: score - WEIGHT x (1 - IoU(original's head mask,
reference's head mask)), masks at 32x32 (P(head) > 0.5 of the pack's segmentation network; the references' from
their decoded latents with the 1.6.0 decoder). Not product code: if it helps, head masks belong in the bank and
the term in ReferenceBank.

    python research/experiments/head_retrieval.py --weight 3 --seg runs/seg/segmentation.onnx -- \\
        --data ../shared/data/celebahq/manifest.csv --split val --limit 600 --seed 0 --pack runs/pack_170 \\
        --baselines none --ablation none --out runs/eval/v170_hr
One face per frame (the eval's frames): the original's head is the last one the host executor segmented.
"""
import argparse, os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
import onnxruntime as ort  # noqa: E402
from pridss_rt.cli import main as cli_main  # noqa: E402
from pridss_rt.executors.host import HostExecutor  # noqa: E402
from pridss_rt.pack import load_pack  # noqa: E402
from pridss_rt.stages.fuse import ReferenceBank  # noqa: E402
from pridss_rt.stages.segment import head_from_logits  # noqa: E402


def small(p_head):  # (N, 128, 128) P(head) -> (N, 32*32) bool
    return (p_head.reshape(len(p_head), 32, 4, 32, 4).mean((2, 4)) > 0.5).reshape(len(p_head), -1)


def bank_heads(pack_dir, seg_path, decoder='pridss_rt/packs/demo/synthesis.onnx'):
    lat, _ = load_pack(pack_dir).bank()
    dec = ort.InferenceSession(decoder, providers=['CPUExecutionProvider'])
    seg = ort.InferenceSession(seg_path, providers=['CPUExecutionProvider'])
    out = []
    for i in range(0, len(lat), 64):
        img = dec.run(None, {dec.get_inputs()[0].name: lat[i:i + 64].reshape(-1, lat.shape[1])})[0]
        logits = seg.run(None, {seg.get_inputs()[0].name: img})[0]
        out.append(small(head_from_logits(logits, ['background', 'head', 'identity', 'body'])))
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--weight', type=float, required=True)
    ap.add_argument('--seg', required=True)
    ap.add_argument('rest', nargs=argparse.REMAINDER)
    a = ap.parse_args()
    rest = a.rest[1:] if a.rest[:1] == ['--'] else a.rest
    pack_dir = rest[rest.index('--pack') + 1]
    heads = bank_heads(pack_dir, a.seg)
    print(f'bank head masks: {heads.shape}, mean area {heads.mean():.3f}', flush=True)
    state = {}
    real_encode, real_scores = HostExecutor.encode, ReferenceBank.scores

    def encode(self, fr, mats):
        r = real_encode(self, fr, mats)
        state['head'] = small(fr.head_orig[:1])[0]
        return r

    def scores(self, z, want_male, landmarks=None):
        s = real_scores(self, z, want_male, landmarks)
        h = heads[self.pool_of(want_male)]
        o = state['head']
        iou = (h & o).sum(1) / np.maximum((h | o).sum(1), 1)
        return s - a.weight * (1.0 - iou)

    HostExecutor.encode, ReferenceBank.scores = encode, scores
    return cli_main(['eval'] + rest)


if __name__ == '__main__':
    sys.exit(main())
