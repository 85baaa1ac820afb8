"""Export the trained demo networks to ONNX and write a pridss-rt pack (docs/pack-format.md).

Usage: python research/pack/export_pack.py --ae runs/ae/ckpt.pt --gender runs/gender/ckpt.pt \
           --identity runs/identity/ckpt.pt --template runs/template_mtcnn.json --out runs/pack_demo
The pack is written to --out (default runs/pack_demo). It is copied into pridss_rt/packs/demo only by
hand (or with --install) after research/analysis/report.py showed it meets the quality bars.
"""
import argparse, hashlib, json, os, shutil, sys
import numpy as np, torch
import onnxruntime as ort
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import seed_all, load_cache, to_tensor, identity_cells, SEGMENTS, MEAN, STD
from research.models.models import Encoder, Synthesis, Gender, Identity, latent_mask, LATENT_DIM

HERE = os.path.dirname(os.path.abspath(__file__))


def sha(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        for blk in iter(lambda: f.read(1 << 20), b''):
            h.update(blk)
    return h.hexdigest()


def export(net, x, path, iname, oname):
    net.eval()
    torch.onnx.export(net, x, path, input_names=[iname], output_names=[oname],
                      dynamic_axes={iname: {0: 'batch'}, oname: {0: 'batch'}}, opset_version=17,
                      dynamo=False)
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    worst = 0.0
    for b in (1, 10):
        xb = x[:1].repeat(b, *[1] * (x.dim() - 1)) + 0.1 * torch.randn(b, *x.shape[1:])
        with torch.no_grad():
            ref = net(xb).numpy()
        got = s.run(None, {iname: xb.numpy()})[0]
        assert got.shape == ref.shape, (path, got.shape, ref.shape)
        worst = max(worst, float(np.abs(got - ref).max()))
    print(f'{os.path.basename(path)}: max |ORT - torch| = {worst:.2e} (batch 1 and 10)')
    assert worst < 1e-3, worst
    return worst


def load_identity(path):
    """The identity embedder of a train_cls.py checkpoint, built with the width/size it was trained with."""
    ck = torch.load(path, map_location='cpu', weights_only=True)
    args = ck.get('args', {})
    net = Identity(width=int(args.get('width', 24)), size=int(args.get('size', 48)))
    net.load_state_dict(ck['net'])
    return net.eval()


class GenderOut(torch.nn.Module):
    def __init__(self, g):
        super().__init__(); self.g = g

    def forward(self, x):
        return self.g(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ae', default='runs/ae/ckpt.pt')
    ap.add_argument('--gender', default='runs/gender/ckpt.pt')
    ap.add_argument('--identity', default='runs/identity/ckpt.pt')
    ap.add_argument('--template', default='runs/template_mtcnn.json')
    ap.add_argument('--bank_per_gender', type=int, default=180)
    ap.add_argument('--out', default='runs/pack_demo')
    ap.add_argument('--version', default='1.0.0')
    ap.add_argument('--seed', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    seed_all(a.seed)
    os.makedirs(a.out, exist_ok=True)
    ck = torch.load(a.ae, map_location='cpu', weights_only=True)
    E, S = Encoder(), Synthesis()
    E.load_state_dict(ck['E']); S.load_state_dict(ck['S']); E.eval(); S.eval()
    G = Gender()
    G.load_state_dict(torch.load(a.gender, map_location='cpu', weights_only=True)['net']); G.eval()
    I = load_identity(a.identity)
    imgs, meta = load_cache('train')
    rng = np.random.default_rng(a.seed)
    x = to_tensor(imgs[rng.choice(len(imgs), 4, replace=False)])
    with torch.no_grad():
        z = E(x)
    p = lambda n: os.path.join(a.out, n)
    parity = {
        'encoder': export(E, x, p('encoder.onnx'), 'image', 'latent'),
        'synthesis': export(S, z, p('synthesis.onnx'), 'latent', 'image'),
        'gender': export(G, x, p('gender.onnx'), 'image', 'p_male'),
        'identity': export(I, x, p('identity.onnx'), 'image', 'embedding'),
    }
    # fusion mask and bank
    fm = latent_mask(identity_cells())
    np.save(p('fusion_mask.npy'), fm)
    np.save(p('identity_region.npy'), identity_cells())
    from research.models.common import ring_cells
    np.save(p('reference_match.npy'), latent_mask(ring_cells(2)))
    male = meta['male'].astype(bool)
    sel = np.concatenate([rng.choice(np.where(male)[0], a.bank_per_gender, replace=False),
                          rng.choice(np.where(~male)[0], a.bank_per_gender, replace=False)])
    lat = []
    with torch.no_grad():
        for i in range(0, len(sel), 64):
            lat.append(E(to_tensor(imgs[sel[i:i + 64]])).numpy())
    lat = np.concatenate(lat).astype(np.float32)
    np.savez(p('bank.npz'), latents=lat, male=male[sel].astype(np.uint8))
    tmpl = json.load(open(a.template))
    img_t = lambda: {'name': 'image', 'shape': ['batch', 3, 128, 128], 'dtype': 'float32'}
    lat_t = lambda: {'name': 'latent', 'shape': ['batch', LATENT_DIM], 'dtype': 'float32'}
    nets = {
        'encoder': {'file': 'encoder.onnx', 'batch': 'face', 'inputs': [img_t()], 'outputs': [lat_t()]},
        'synthesis': {'file': 'synthesis.onnx', 'batch': 'candidate', 'inputs': [lat_t()],
                      'outputs': [dict(img_t())]},
        'gender': {'file': 'gender.onnx', 'batch': 'candidate', 'output_kind': 'probability',
                   'inputs': [img_t()], 'outputs': [{'name': 'p_male', 'shape': ['batch', 1], 'dtype': 'float32'}]},
        'identity': {'file': 'identity.onnx', 'batch': 'candidate', 'inputs': [img_t()],
                     'outputs': [{'name': 'embedding', 'shape': ['batch', 128], 'dtype': 'float32'}]},
    }
    for k, v in nets.items():
        v['sha256'] = sha(p(v['file']))
    manifest = {
        'schema': 'pridss-rt.pack', 'schema_version': 1, 'name': 'demo', 'version': a.version,
        'description': ('Small demo PriDSS pack trained in this repo (research/): spatial-latent autoencoder '
                        '(48x16x16 map + 64-d style = 12352 values), identity cells (eyes+brows, nose, '
                        'mouth) kept from the original, context cells + style from an opposite-gender '
                        'reference; small CNN gender classifier and identity embedder.'),
        'license': ('Code: the project licence. Weights: trained on CelebA-HQ, which is licensed for '
                    'non-commercial research only; the weights inherit that restriction.'),
        'model_card': 'MODEL_CARD.md',
        'preprocess': {'crop_size': 128, 'template': [[round(v, 2) for v in pt] for pt in tmpl['template']],
                       'channel_order': 'rgb', 'mean': [MEAN] * 3, 'std': [STD] * 3,
                       'template_detector': tmpl['detector']},
        'networks': nets,
        'fusion': {'type': 'mask', 'file': 'fusion_mask.npy', 'sha256': sha(p('fusion_mask.npy')),
                   'segments': {'eyes': 'identity', 'nose': 'identity', 'mouth': 'identity',
                                'skin': 'context', 'hair': 'context', 'background': 'context'},
                   'layout': ('latent = concat(map[48,16,16].flatten(), style[64]); mask = 1 on the '
                              'identity cells of every map channel, 0 elsewhere and on the style'),
                   'identity_cells': {k: v for k, v in SEGMENTS.items()}},
        'bank': {'file': 'bank.npz', 'sha256': sha(p('bank.npz'))},
        'defaults': {'candidates': 5},
        'extras': {'identity_region': {'file': 'identity_region.npy', 'sha256': sha(p('identity_region.npy')),
                                       'note': '16x16 cell mask over the 128-px crop (8 px per cell)'},
                   'reference_match': {'file': 'reference_match.npy', 'sha256': sha(p('reference_match.npy')),
                                       'note': ('mask over the latent (context cells within 2 cells of the identity '
                                                'region, all channels). Recommended reference choice: cosine '
                                                'similarity of original and bank latents on these elements, keep '
                                                'the 16 best of the opposite gender, draw K from them.')}},
    }
    card_src = os.path.join(a.out, 'MODEL_CARD.md')
    if not os.path.exists(card_src):
        open(card_src, 'w').write('# demo pack\n\nModel card pending: run research/analysis/report.py and research/pack/install_pack.py (it writes the card).\n')
    json.dump(manifest, open(p('pack.json'), 'w'), indent=2)
    json.dump(parity, open(os.path.join(os.path.dirname(os.path.abspath(a.out)), os.path.basename(os.path.abspath(a.out)) + '_parity.json'), 'w'), indent=1)
    tot = sum(os.path.getsize(p(f)) for f in os.listdir(a.out) if not f.endswith('.json') or f == 'pack.json')
    print('pack written to', a.out, f'{tot / 1e6:.1f} MB')


if __name__ == '__main__':
    main()
