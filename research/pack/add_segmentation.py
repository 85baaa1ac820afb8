"""A pack variant with the segmentation network of research/training/train_seg.py and the head-level blend.

    python research/pack/add_segmentation.py --pack pridss_rt/packs/demo --seg runs/seg/segmentation.onnx \\
        --out runs/pack_170h --version 1.7.0-head
    python research/pack/add_segmentation.py --pack pridss_rt/packs/demo --seg runs/seg/segmentation.onnx \\
        --head_ckpt runs/head/final.pt --out runs/pack_170 --version 1.7.0

Copies the pack, adds `segmentation.onnx` (classes background, head, identity, body), sets
`defaults.blend_region = "head"` and the version, and rehashes; the result loads with `pridss_rt.load_pack`.
With --head_ckpt (research/training/train_head.py), the synthesis is replaced by the three-way one
(research.models.models.CondSynthesis: inputs latent and context), exported here with a parity check.
"""
import argparse, json, os, shutil, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from pridss_rt.pack import load_pack, sha256_file, write_pack_json  # noqa: E402

CLASSES = ['background', 'head', 'identity', 'body']


def export_cond_synthesis(ckpt, path, size, old):
    """CondSynthesis of ``ckpt`` -> ONNX at ``path`` (dynamic batch); parity vs PyTorch at batch 1 and 5; the
    pack.json entry."""
    import numpy as np, onnxruntime as ort, torch
    from research.models.models import CondSynthesis
    net = CondSynthesis()
    net.load_state_dict(torch.load(ckpt, weights_only=True)['S'])
    net.eval()
    dim = old['inputs'][0]['shape'][1]
    g = torch.Generator().manual_seed(0)
    z, c = torch.randn(5, dim, generator=g), torch.rand(5, 4, size, size, generator=g)
    c[:, 3] = (c[:, 3] > 0.5).float()
    torch.onnx.export(net, (z[:1], c[:1]), path, input_names=['latent', 'context'], output_names=['image'],
                      dynamo=False, opset_version=17,
                      dynamic_axes={'latent': {0: 'batch'}, 'context': {0: 'batch'}, 'image': {0: 'batch'}})
    s = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        for n in (1, 5):
            err = float(np.abs(s.run(None, {'latent': z[:n].numpy(), 'context': c[:n].numpy()})[0] - net(z[:n], c[:n]).numpy()).max())
            print(f'{path}: batch {n}: max |torch - ORT| = {err:.2e}')
            if err > 1e-3:
                sys.exit(f'{path}: parity check failed ({err:.2e})')
    return {'file': 'synthesis.onnx', 'sha256': sha256_file(path), 'batch': 'candidate',
            'inputs': [old['inputs'][0], {'name': 'context', 'shape': ['batch', 4, size, size], 'dtype': 'float32'}],
            'outputs': old['outputs'],
            'note': 'three-way synthesis (research/training/train_head.py): context = the original crop with its head '
                    '(grown 4 px) set to 0, and that hole mask'}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--seg', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--version', default=None)
    ap.add_argument('--region', default='head', choices=['head', 'face'])
    ap.add_argument('--note', default='')
    ap.add_argument('--head_ckpt', default='', help='train_head.py checkpoint: replace the synthesis by the three-way one')
    a = ap.parse_args()
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    shutil.copytree(a.pack, a.out)
    dst = os.path.join(a.out, 'segmentation.onnx')
    shutil.copyfile(a.seg, dst)
    m = json.load(open(os.path.join(a.out, 'pack.json')))
    size = m['preprocess']['crop_size']
    m['networks']['segmentation'] = {
        'file': 'segmentation.onnx', 'sha256': sha256_file(dst), 'batch': 'candidate', 'classes': CLASSES,
        'inputs': [{'name': 'image', 'shape': ['batch', 3, size, size], 'dtype': 'float32'}],
        'outputs': [{'name': 'logits', 'shape': ['batch', len(CLASSES), size, size], 'dtype': 'float32'}],
        'note': a.note or 'research/training/train_seg.py on mediapipe-derived labels (research/data/label_segments.py)'}
    if a.head_ckpt:
        m['networks']['synthesis'] = export_cond_synthesis(a.head_ckpt, os.path.join(a.out, 'synthesis.onnx'), size,
                                                           m['networks']['synthesis'])
    m['defaults']['blend_region'] = a.region
    if a.version:
        m['version'] = a.version
    write_pack_json(a.out, m)
    p = load_pack(a.out)
    print(f'{a.out}: pack {p.name} {p.version}, blend region {p.blend_region}, networks {sorted(p.networks)}')


if __name__ == '__main__':
    main()
