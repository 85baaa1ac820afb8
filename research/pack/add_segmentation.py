"""A pack variant with the segmentation network of research/training/train_seg.py and the head-level blend.

    python research/pack/add_segmentation.py --pack pridss_rt/packs/demo --seg runs/seg/segmentation.onnx \\
        --out runs/pack_170h --version 1.7.0-head

Copies the pack, adds `segmentation.onnx` (classes background, head, identity, body), sets
`defaults.blend_region = "head"` and the version, and rehashes; the result loads with `pridss_rt.load_pack`.
"""
import argparse, json, os, shutil, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
from pridss_rt.pack import load_pack, sha256_file, write_pack_json  # noqa: E402

CLASSES = ['background', 'head', 'identity', 'body']


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--seg', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--version', default=None)
    ap.add_argument('--region', default='head', choices=['head', 'face'])
    ap.add_argument('--note', default='')
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
    m['defaults']['blend_region'] = a.region
    if a.version:
        m['version'] = a.version
    write_pack_json(a.out, m)
    p = load_pack(a.out)
    print(f'{a.out}: pack {p.name} {p.version}, blend region {p.blend_region}, networks {sorted(p.networks)}')


if __name__ == '__main__':
    main()
