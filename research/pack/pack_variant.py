"""Write a variant of an exported demo pack: a larger or smaller reference bank (optionally stored in
float16), a soft fusion boundary, another reference-match key or identity region, and optionally a
fine-tuned encoder + synthesis (--ae), another identity embedder (--identity), a coherence critic
(--coherence, --coherence_weight). The gender classifier is copied unchanged.

Usage:
  python research/pack/pack_variant.py --pack pridss_rt/packs/demo --out runs/pack_b800 \
      --bank_per_gender 400 --bank_dtype float16 [--soft_ring 0.5] [--match core] [--seed 3]

- Bank: `--bank_per_gender` train-split faces of each gender (labels from the manifest), drawn with
  `--seed`, encoded with the pack's own encoder.onnx (ONNX Runtime), so no checkpoint is needed.
  float16 halves the bank's size (the runtime upcasts to float32 at load); the largest latent error it
  adds is reported.
- Soft ring: the fusion mask becomes 1 on the identity cells, `--soft_ring` on the context cells that
  touch them (8-neighbourhood, all map channels) and 0 elsewhere and on the style vector, so the latent
  blends original and reference across one 8-px cell instead of switching at the region edge.
- Match: which latent elements the recommended reference choice compares (pack extra reference_match).
The sha256 fields of pack.json are rewritten; the model card is copied as is (re-run report.py and
install_pack.py to refresh it).
"""
import argparse, json, os, shutil, sys
import numpy as np, onnxruntime as ort
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import load_cache, identity_cells, ring_cells, REGIONS, MEAN, STD
from research.pack.export_pack import export, sha
from research.models.models import latent_mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--out', required=True)
    ap.add_argument('--ae', default='', help='train_ae.py checkpoint: export its encoder and synthesis into the '
                                             'variant (parity-checked) instead of copying the pack\'s; needs a new '
                                             'bank (--bank_per_gender)')
    ap.add_argument('--identity', default='', help='train_cls.py --task identity checkpoint: export it as the '
                    'pack\'s identity embedder (its width/size come from the checkpoint)')
    ap.add_argument('--coherence', default='', help='train_critic.py checkpoint (critic.pt, its critic.json beside '
                    'it): export it as the pack\'s coherence network (a candidate\'s P(composite))')
    ap.add_argument('--coherence_weight', type=float, default=None, help='defaults.coherence_weight of the pack: '
                    'weight of P(composite) added to PIC in the choice among the K candidates (0 = PIC alone)')
    ap.add_argument('--bank_per_gender', type=int, default=0, help='0: keep the pack\'s bank')
    ap.add_argument('--bank_dtype', default='float32', choices=['float32', 'float16', 'int8'],
                    help='int8: symmetric quantization with one float32 scale per latent element (max |value| '
                         'over the bank / 127), stored as bank.npz "scale"; a quarter of float32\'s size')
    ap.add_argument('--bank_compress', type=int, default=0, help='1: write bank.npz zip-deflated '
                    '(np.savez_compressed; float16 latents shrink ~7 %%, the loader reads both)')
    ap.add_argument('--bank_landmarks', type=int, default=0, help='1: store the bank faces\' 5 landmarks in '
                    'crop pixels (found by the runtime\'s MTCNN, research/data/crop_landmarks.py) as bank.npz '
                    '"landmarks", for head-pose-aware reference choice (needs --bank_per_gender)')
    ap.add_argument('--pose_weight', type=float, default=None, help='defaults.pose_weight of the pack: weight '
                    'of the landmark distance in the reference choice (pridss_rt.stages.fuse.ReferenceBank; 0 = off)')
    ap.add_argument('--soft_ring', type=float, default=None, help='fusion-mask value on the cells touching the identity region')
    ap.add_argument('--match', default=None, choices=['ring', 'core', 'map'],
                    help='reference_match extra: ring = context cells within 2 cells of the identity region '
                         '(as exported); core = those plus the identity cells; map = every map cell')
    ap.add_argument('--region', default=None, choices=sorted(REGIONS),
                    help='identity region (research/models/common.py REGIONS): rewrites the fusion mask and the '
                         'identity_region extra (the decoder was trained with v3; other regions need '
                         'train_ae.py --region to be seamless)')
    ap.add_argument('--reference_pool', type=int, default=None,
                    help='defaults.reference_pool of the pack: K candidates spread over the ranks of this many '
                         'closest references (pridss_rt.stages.fuse.ReferenceBank); 0 = the K closest')
    ap.add_argument('--version', default=None, help='pack version to write into pack.json')
    ap.add_argument('--description', default=None, help='pack description to write into pack.json')
    ap.add_argument('--seed', type=int, default=3)
    a = ap.parse_args()
    if a.bank_landmarks and not a.bank_per_gender:
        sys.exit('--bank_landmarks needs --bank_per_gender (the bank faces are re-drawn and re-encoded)')
    if os.path.abspath(a.out) == os.path.abspath(a.pack):
        sys.exit('--out must differ from --pack')
    os.makedirs(a.out, exist_ok=True)
    man = json.load(open(os.path.join(a.pack, 'pack.json')))
    for f in os.listdir(a.pack):
        if os.path.isfile(os.path.join(a.pack, f)):
            shutil.copy2(os.path.join(a.pack, f), os.path.join(a.out, f))
    P = lambda f: os.path.join(a.out, f)

    def put(entry, arr):  # write an array file of the pack and its manifest hash
        np.save(P(entry['file']), arr.astype(np.float32))
        entry['sha256'] = sha(P(entry['file']))

    info = {}
    if a.ae or a.bank_per_gender:
        imgs, meta = load_cache('train')  # ~1 GB: loaded once for both uses
    if a.ae:
        if not a.bank_per_gender:
            sys.exit('--ae changes the encoder: pass --bank_per_gender to re-encode the bank')
        import torch
        from research.models.models import Encoder, Synthesis
        from research.models.common import to_tensor
        torch.set_num_threads(2)
        ck = torch.load(a.ae, map_location='cpu', weights_only=True)
        E, S = Encoder(), Synthesis()
        E.load_state_dict(ck['E']); S.load_state_dict(ck['S']); E.eval(); S.eval()
        x = to_tensor(imgs[np.random.default_rng(a.seed).choice(len(imgs), 4, replace=False)])
        with torch.no_grad():
            z = E(x)
        for key, net, inp, iname in (('encoder', E, x, 'image'), ('synthesis', S, z, 'latent')):
            nd = man['networks'][key]
            info[f'{key}_parity'] = export(net, inp, P(nd['file']), iname, nd['outputs'][0]['name'])
            nd['sha256'] = sha(P(nd['file']))
        info['ae'] = a.ae
    if a.identity:
        import torch
        from research.pack.export_pack import load_identity
        torch.set_num_threads(2)
        net = load_identity(a.identity)
        g = torch.Generator().manual_seed(a.seed)  # parity inputs: no data needed
        x = torch.rand(4, 3, 128, 128, generator=g) * 2 - 1
        nd = man['networks']['identity']
        info['identity_parity'] = export(net, x, P(nd['file']), nd['inputs'][0]['name'], nd['outputs'][0]['name'])
        nd['sha256'] = sha(P(nd['file']))
        info['identity'] = a.identity
    if a.coherence:
        import torch
        from research.training.train_critic import Critic
        torch.set_num_threads(2)
        cfg = json.load(open(os.path.join(os.path.dirname(a.coherence), 'critic.json')))
        net = Critic(cfg['width'], cfg['size'])
        net.load_state_dict(torch.load(a.coherence, map_location='cpu', weights_only=True)); net.eval()
        g = torch.Generator().manual_seed(a.seed)
        x = torch.rand(4, 3, 128, 128, generator=g) * 2 - 1
        info['coherence_parity'] = export(net, x, P('coherence.onnx'), 'image', 'p_composite')
        s = man['preprocess']['crop_size']
        man['networks']['coherence'] = {
            'file': 'coherence.onnx', 'sha256': sha(P('coherence.onnx')), 'batch': 'candidate',
            'inputs': [{'name': 'image', 'shape': ['batch', 3, s, s], 'dtype': 'float32'}],
            'outputs': [{'name': 'p_composite', 'shape': ['batch', 1], 'dtype': 'float32'}],
            'note': (f"coherence critic (research/training/train_critic.py --mode {cfg.get('mode', 'composite')}, {cfg['params']} "
                     f"parameters): P(composite) of a synthesized face; held-out AUC {cfg['val_auc']:.3f}")}
        info['coherence'] = a.coherence
    if a.bank_per_gender:
        so = ort.SessionOptions(); so.intra_op_num_threads = 2
        enc = ort.InferenceSession(P(man['networks']['encoder']['file']), so, providers=['CPUExecutionProvider'])
        iname = enc.get_inputs()[0].name
        male = meta['male'].astype(bool)
        rng = np.random.default_rng(a.seed)
        sel = np.concatenate([rng.choice(np.where(male)[0], a.bank_per_gender, replace=False),
                              rng.choice(np.where(~male)[0], a.bank_per_gender, replace=False)])
        lat = []
        for i in range(0, len(sel), 64):
            x = ((imgs[sel[i:i + 64]].astype(np.float32) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2)
            lat.append(enc.run(None, {iname: np.ascontiguousarray(x)})[0])
        lat = np.concatenate(lat).astype(np.float32)
        arrays = dict(male=male[sel].astype(np.uint8))
        if a.bank_dtype == 'int8':
            scale = (np.abs(lat).max(0) / 127.0).astype(np.float32)
            store = np.clip(np.round(lat / np.where(scale > 0, scale, 1.0)), -127, 127).astype(np.int8)
            arrays['scale'] = scale
            back = store.astype(np.float32) * scale
        else:
            store = lat.astype(a.bank_dtype)
            back = store.astype(np.float32)
        arrays['latents'] = store
        info['bank_max_abs_rounding'] = float(np.abs(back - lat).max())
        info['bank_mean_abs_rounding'] = float(np.abs(back - lat).mean())
        info['bank_max_abs_latent'] = float(np.abs(lat).max())
        if a.bank_landmarks:
            from research.data.crop_landmarks import crop_landmarks
            lm = crop_landmarks(imgs[sel])
            arrays['landmarks'] = lm
            info['bank_landmarks_found'] = f'{int(np.isfinite(lm[:, 0, 0]).sum())} / {len(lm)}'
        (np.savez_compressed if a.bank_compress else np.savez)(P(man['bank']['file']), **arrays)
        man['bank']['sha256'] = sha(P(man['bank']['file']))
        info['bank'] = f'{len(sel)} references ({a.bank_per_gender} per gender), {a.bank_dtype}, seed {a.seed}'
    region = 'v3'
    if a.region is not None:
        region = a.region
        cells = identity_cells(region)
        put(man['fusion'], latent_mask(cells))
        man['fusion']['identity_cells'] = {k: [list(r) for r in v] for k, v in REGIONS[region].items()}
        put(man['extras']['identity_region'], cells)
        info['region'] = region
    else:
        cur = np.load(P(man['extras']['identity_region']['file']), allow_pickle=False)
        region = next((r for r in REGIONS if np.array_equal(identity_cells(r), cur)), None)
        if region is None:
            sys.exit('the pack\'s identity region is none of research/models/common.py REGIONS')
    if a.soft_ring is not None:
        if not 0.0 <= a.soft_ring <= 1.0:
            sys.exit('--soft_ring must lie in [0, 1]')
        cells = identity_cells(region) + a.soft_ring * ring_cells(1, region)
        put(man['fusion'], latent_mask(cells))
        man['fusion']['layout'] += f'; {a.soft_ring:g} on the cells touching the identity region (soft boundary)'
        info['soft_ring'] = a.soft_ring
    if a.match is None and a.region is not None:
        a.match = 'ring'
    if a.match is not None:
        m, ring = identity_cells(region), ring_cells(2, region)
        cells = {'ring': ring, 'core': m + ring, 'map': np.ones_like(m)}[a.match]
        ext = man['extras']['reference_match']
        put(ext, latent_mask(cells))
        what = {'ring': 'the context cells within 2 cells of the identity region',
                'core': 'the identity cells and the context cells within 2 cells of them',
                'map': 'every cell of the spatial map'}[a.match]
        ext['note'] = (f'mask over the latent ({what}, all channels; not the style vector). Reference choice '
                       '(pridss_rt.stages.fuse.ReferenceBank): cosine similarity of the original\'s and the bank '
                       'latents on these elements; the candidates are the K most similar references of the '
                       'opposite gender, or K spread over the ranks of the defaults.reference_pool most similar.')
        info['match'] = a.match
    if a.version:
        man['version'] = a.version
    if a.description:
        man['description'] = a.description
    if a.pose_weight is not None:
        man.setdefault('defaults', {})['pose_weight'] = a.pose_weight
        info['pose_weight'] = a.pose_weight
    if a.coherence_weight is not None:
        if 'coherence' not in man['networks'] and a.coherence_weight > 0:
            sys.exit('--coherence_weight > 0 needs a coherence network (--coherence)')
        man.setdefault('defaults', {})['coherence_weight'] = a.coherence_weight
        info['coherence_weight'] = a.coherence_weight
    if a.reference_pool is not None:
        man.setdefault('defaults', {})['reference_pool'] = a.reference_pool
        info['reference_pool'] = a.reference_pool
    json.dump(man, open(P('pack.json'), 'w'), indent=2)
    tot = sum(os.path.getsize(P(f)) for f in os.listdir(a.out))
    info['size_mb'] = round(tot / 1e6, 2)
    print(json.dumps(info, indent=1))


if __name__ == '__main__':
    main()
