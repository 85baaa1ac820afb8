"""Evaluate a demo pack on the val split with ONNX Runtime (the shipped files, not the checkpoints).

Usage: python research/analysis/report.py --pack runs/pack_demo --n 1000 --out runs/report.json --grid runs/grid.png
Prints a table and writes JSON. All numbers are on val identities (disjoint from train).

Definitions
- Reconstruction: PSNR (dB) and SSIM (Gaussian 11x11, sigma 1.5, RGB mean) of synthesis(encoder(x)) vs x
  on 8-bit images.
- Identity SIM: cosine of the pack's identity embeddings.
- Embedder verification: genuine = all same-identity pairs of val, impostor = 50,000 random
  different-identity pairs; AUC and EER.
- PriDSS loop, K candidates: P(male) of the original by the pack's classifier; K references drawn at
  random (seeded) from the bank's faces of the opposite predicted gender (--refs random), or from the
  --pool (16) of those whose latents are closest (cosine on the reference_match.npy elements: the
  context cells within 2 cells of the identity region, all channels) to the original's (--refs nearest,
  the default: similar pose, face size and skin around the identity region give coherent fusions), or the K
  closest ones as the runtime chooses them (--refs top, pridss_rt.stages.fuse.ReferenceBank); fused latent =
  mask*z_orig + (1-mask)*z_ref; candidate with the lowest PIC = |2 P(male) - 1| - SIM(candidate, original).
- EER anonymized vs originals: genuine = (anonymized_i, original_i); impostor = (anonymized_i,
  original_j) for every j of another identity. Also 'other images': genuine = anonymized_i vs other
  val images of the same identity.
- Seam ratio: band = pixels within 2 px of the identity-mask boundary (dilate(M,5x5) - erode(M,5x5));
  gradient magnitude = Sobel 3x3 on the 8-bit luminance; ratio = mean band gradient of the anonymized
  faces / mean band gradient of the plain reconstructions of the same faces (<= 1.2 required).
- Colour step (coherence): blur (Gaussian sigma 2 px), then mean RGB distance between pixel pairs 3 px
  inside / 4 px outside the identity-mask boundary along its normal; anonymized vs reconstruction. Catches
  low-frequency skin-tone blotches that the gradient band misses.
- Coherence FID (when the Inception ONNX of export/export_inception.py exists): FID between the anonymized
  faces and the plain reconstructions of the same faces (both 128 px RGB, bilinear to 299). Both come out
  of the same decoder, so texture and sharpness cancel out and what is left is composite-ness (seams,
  patches, proportions); 'swap' variant: the context-swapped faces. Lower is better. Because references close
  to the original also lower it, it is repeated against the reconstructions of as many *other* val faces
  (coherence_fid_anonymized_vs_other_recon; fid_recon_vs_other_recon is the floor for two such sets).
- Head pose (packs whose bank stores landmarks): the val faces' 5 landmarks in crop pixels, found by the
  runtime's MTCNN (--landmarks, made by research/data/crop_landmarks.py), are passed to the runtime's reference
  choice like the Anonymizer passes a live face's; reference_pose_distance = mean RMS landmark distance
  (in template eye distances) between each face and its chosen reference. --pose_weight overrides the
  pack's defaults.pose_weight (experiments; --refs top only).
- Independent attacker (--attacker, default runs/attacker/attacker_gender.onnx of research/training/train_attacker.py
  when it exists): gender AUC on the originals and on the anonymized crops; it did not take part in the
  candidate selection, unlike the pack's own classifier.
- Disentanglement: context swap (mask fusion with one opposite-gender bank reference) vs the plain
  reconstruction; per-pixel change |dRGB| (0-255, channel mean); share of the total change inside the
  identity region M, and mean change per pixel inside vs outside.
"""
import argparse, json, os, sys, time
import numpy as np, cv2, onnxruntime as ort, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.common import RUNS, load_cache, ssim, psnr_u8, roc_auc, eer, verification_scores, identity_cells, REGIONS, MEAN, STD
from research.models.models import latent_mask
from research.experiments.mirror import choose_mirrored, mirror_landmarks


def sess(path):
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]


def fid_extractor(path, batch=8):
    """BGR uint8 faces [N,H,W,3] -> float64 Inception pool features [N, 2048]: `pridss-rt eval`'s own extractor."""
    from pridss_rt.eval.judges import FidExtractor
    fx = FidExtractor(path, 2)
    return lambda faces_bgr: fx(faces_bgr, batch)


def batched(f, x, bs=64):
    return np.concatenate([f(x[i:i + bs]) for i in range(0, len(x), bs)])


def norm(u8):
    return ((u8.astype(np.float32) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2)


def to_u8(x):
    return np.clip(np.round((x.transpose(0, 2, 3, 1) * STD + MEAN) * 255.0), 0, 255).astype(np.uint8)


def ssim_u8(a, b):
    ta = torch.from_numpy(norm(a)); tb = torch.from_numpy(norm(b))
    return np.concatenate([ssim(ta[i:i + 64], tb[i:i + 64], per_image=True).numpy() for i in range(0, len(a), 64)])


def l2n(e):
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def grad_mag(u8):
    g = (u8.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    out = np.empty_like(g)
    for i in range(len(g)):
        gx = cv2.Sobel(g[i], cv2.CV_32F, 1, 0, ksize=3); gy = cv2.Sobel(g[i], cv2.CV_32F, 0, 1, ksize=3)
        out[i] = np.sqrt(gx ** 2 + gy ** 2) / 8.0
    return out


def boundary_pairs(M, d_in=3, d_out=4):
    """Pixel pairs straddling the identity-mask boundary along its (axis-aligned) normal:
    p_in = p - d_in*n inside the mask, p_out = p + d_out*n outside, for boundary pixels p."""
    H, W = M.shape
    pin, pout = [], []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        for y, x in zip(*np.where(M > 0)):
            yo, xo = y + dy, x + dx
            if not (0 <= yo < H and 0 <= xo < W) or M[yo, xo] > 0:
                continue
            yi, xi = y - (d_in - 1) * dy, x - (d_in - 1) * dx
            yq, xq = y + d_out * dy, x + d_out * dx
            if 0 <= yi < H and 0 <= xi < W and 0 <= yq < H and 0 <= xq < W and M[yi, xi] > 0 and M[yq, xq] == 0:
                pin.append((yi, xi)); pout.append((yq, xq))
    return np.array(pin), np.array(pout)


def colour_step(u8, pin, pout, sigma=2.0):
    """Mean RGB distance (0-255) between Gaussian-blurred pixels just inside and just outside the
    identity-mask boundary: large when the identity region has another skin tone than its surround."""
    out = []
    for im in u8:
        b = cv2.GaussianBlur(im.astype(np.float32), (0, 0), sigma)
        out.append(np.linalg.norm(b[pin[:, 0], pin[:, 1]] - b[pout[:, 0], pout[:, 1]], axis=1).mean())
    return np.array(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pack', default='runs/pack_demo')
    ap.add_argument('--n', type=int, default=1000, help='val faces for reconstruction and the K loop')
    ap.add_argument('--k', type=int, default=5)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='runs/report.json')
    ap.add_argument('--grid', default='runs/grid.png')
    ap.add_argument('--grid_per_gender', type=int, default=12, help='faces of each gender in the grid (the first of '
                    'the drawn men and women; rows of 4 triplets); --n 48 --grid_per_gender 24 shows every face')
    ap.add_argument('--faces_out', default='', help='also write one JSON record per drawn face (position, CelebA-HQ file, '
                    'label, the chosen reference and its P(male), SIM and P(composite)): what research/records/*.json pairs '
                    'with the verdicts')
    ap.add_argument('--refs', default='top', choices=['nearest', 'top', 'random'],
                    help='top (default): the runtime\'s own choice; nearest: K drawn from the --pool opposite-gender bank faces whose latents are most '
                         'similar (cosine) on the reference-match cells around the identity region; top: the K '
                         'most similar ones, chosen by the runtime itself (pridss_rt.stages.fuse.ReferenceBank, what '
                         'Anonymizer does); random: K drawn from all opposite-gender bank faces')
    ap.add_argument('--pool', type=int, default=16)
    ap.add_argument('--landmarks', default=os.path.join(RUNS, 'landmarks_val.npy'),
                    help='val crops\' landmarks (research/data/crop_landmarks.py --split val); used when the bank has landmarks')
    ap.add_argument('--pose_weight', type=float, default=None, help='override the pack\'s defaults.pose_weight')
    ap.add_argument('--coherence', default=None, help='coherence critic ONNX (research/training/train_critic.py): adds '
                    '--coherence_weight x P(composite) to PIC when choosing among the K candidates (default: '
                    'the pack\'s own coherence network and defaults.coherence_weight, if it has them)')
    ap.add_argument('--coherence_weight', type=float, default=None)
    ap.add_argument('--region_female', default='', choices=[''] + sorted(REGIONS), help='identity region (common.REGIONS) of the fusion mask for '
                    'originals the pack classifies female (stage K, measured, not shipped; default: the pack\'s mask)')
    ap.add_argument('--mirror', action='store_true', help='choose among the bank as it is and as seen in a '
                    'mirror (research/experiments/mirror.py; the flipped crop is encoded too)')
    ap.add_argument('--fid_model', default=os.path.expanduser('~/.cache/pridss-rt/inception_fid.onnx'))
    ap.add_argument('--attacker', default=os.path.join(RUNS, 'attacker', 'attacker_gender.onnx'))
    a = ap.parse_args()
    if a.grid and (not 0 < a.grid_per_gender <= a.n // 2 or a.grid_per_gender % 4):
        sys.exit(f'--grid_per_gender {a.grid_per_gender}: must be a multiple of 4 and at most {a.n // 2} (half of --n)')
    if a.mirror and a.refs != 'top':
        ap.error('--mirror ranks the bank as the runtime does: it needs --refs top')
    t0 = time.time()
    P = lambda f: os.path.join(a.pack, f)
    man = json.load(open(P('pack.json')))
    enc, syn = sess(P('encoder.onnx')), sess(P('synthesis.onnx'))
    gen, idn = sess(P('gender.onnx')), sess(P('identity.onnx'))
    mask = np.load(P('fusion_mask.npy'))
    mask_f = mask
    if a.region_female:
        mask_f = latent_mask(identity_cells(a.region_female)).reshape(mask.shape)
    from pridss_rt.stages.fuse import ReferenceBank
    from pridss_rt.pack import load_pack
    rpack = load_pack(a.pack)  # the bank as the runtime reads it: validated, float16/int8 -> float32
    blat, bmale = rpack.bank()
    blat = blat.reshape(len(blat), -1)
    blm = rpack.bank_landmarks()
    imgs, meta = load_cache('val')
    male, ident = meta['male'].astype(bool), meta['identity']
    rng = np.random.default_rng(a.seed)
    R = {'refs': a.refs, 'pool': a.pool if a.refs == 'nearest' else None, 'pack': a.pack, 'pack_version': man.get('version'), 'n_val_total': int(len(imgs)), 'n_loop': a.n, 'k': a.k}
    if a.region_female:
        R['region_female'] = a.region_female
    if a.mirror:
        R['mirror'] = True

    # gender classifier and identity embedder on all val
    X = norm(imgs)
    pm = batched(gen, X).reshape(-1)
    R['gender_acc'] = float(((pm >= 0.5) == male).mean()); R['gender_auc'] = roc_auc(pm, male)
    emb = l2n(batched(idn, X))
    gen_s, imp_s, by = verification_scores(emb, ident, rng)
    R['embedder_pairs'] = {'genuine': len(gen_s), 'impostor': int(len(imp_s))}
    R['embedder_auc'] = roc_auc(np.concatenate([gen_s, imp_s]), np.r_[np.ones(len(gen_s)), np.zeros(len(imp_s))])
    R['embedder_eer'] = eer(gen_s, imp_s)

    # subset for reconstruction and the PriDSS loop (half male, half female)
    sel = np.concatenate([rng.choice(np.where(male)[0], a.n // 2, replace=False),
                          rng.choice(np.where(~male)[0], a.n - a.n // 2, replace=False)])
    x_u8 = imgs[sel]; x = X[sel]
    z = batched(enc, x)
    rec_u8 = to_u8(batched(syn, z))
    R['recon_psnr'] = float(psnr_u8(rec_u8, x_u8).mean()); R['recon_ssim'] = float(ssim_u8(rec_u8, x_u8).mean())
    e_orig = emb[sel]
    e_rec = l2n(batched(idn, norm(rec_u8)))
    R['sim_recon_orig'] = float((e_rec * e_orig).sum(1).mean())
    p_orig = pm[sel]
    # PriDSS loop
    chosen_u8 = np.empty_like(x_u8); chosen_ref = np.zeros(len(sel), np.int64); chosen_mir = np.zeros(len(sel), bool)
    p_anon = np.zeros(len(sel)); sim_anon = np.zeros(len(sel))
    if a.coherence is None and 'coherence' in man['networks']:
        a.coherence = P(man['networks']['coherence']['file'])
    if a.coherence_weight is None:
        a.coherence_weight = float(man.get('defaults', {}).get('coherence_weight', 0.0)) if a.coherence else 0.0
    crit = sess(a.coherence) if a.coherence and a.coherence_weight > 0 else None
    p_comp = np.zeros(len(sel))
    if crit is not None:
        R['coherence'] = a.coherence; R['coherence_weight'] = a.coherence_weight
    swap_u8 = np.empty_like(x_u8)
    bidx_m, bidx_f = np.where(bmale)[0], np.where(~bmale)[0]
    if a.refs == 'nearest':
        rm = np.load(P('reference_match.npy')).astype(bool)
        bd = blat[:, rm]; bd = bd / np.linalg.norm(bd, axis=1, keepdims=True)
        zd = z[:, rm]; zd = zd / np.linalg.norm(zd, axis=1, keepdims=True)
    if a.refs == 'top':
        if a.pose_weight is not None:
            rpack.defaults['pose_weight'] = a.pose_weight
        rbank = ReferenceBank(rpack)
        R['pool'] = rbank.pool  # defaults.reference_pool of the pack (0: the K closest)
        R['pose_weight'] = rbank.pose_weight
    lm_val = None
    if blm is not None:
        if not os.path.isfile(a.landmarks):
            sys.exit(f'{a.landmarks}: missing; the pack\'s bank has landmarks, make the val faces\' with '
                     f'python research/data/crop_landmarks.py --split val --out {a.landmarks}')
        lm_val = np.load(a.landmarks)[sel]
        if a.refs == 'top' and rbank.landmarks is None:
            rbank.landmarks = blm  # for reference_pose_distance only (pose_weight 0 does not use it)
        R['landmarks_found'] = int(np.isfinite(lm_val[:, 0, 0]).sum())
    for i in range(len(sel)):
        pool = bidx_f if p_orig[i] >= 0.5 else bidx_m
        mir = np.zeros(a.k, bool)
        if a.refs == 'top' and a.mirror:
            zm = enc(x[i:i + 1, :, :, ::-1].copy())
            refs, mir = choose_mirrored(rbank, z[i], zm[0], float(p_orig[i]), a.k,
                                        None if lm_val is None else lm_val[i], x.shape[-1])
        elif a.refs == 'top':
            refs = rbank.choose(z[i], float(p_orig[i]), a.k, None if lm_val is None else lm_val[i])
        else:
            if a.refs == 'nearest':
                pool = pool[np.argsort(-(bd[pool] @ zd[i]))[:a.pool]]
            refs = rng.choice(pool, a.k, replace=False)
        m = mask_f if p_orig[i] < 0.5 else mask
        zo = np.where(mir[:, None], zm, z[i:i + 1]) if mir.any() else z[i:i + 1]
        zf = m[None] * zo + (1 - m[None]) * blat[refs]
        c = syn(zf); cu8 = to_u8(c)
        cu8[mir] = cu8[mir][:, :, ::-1]
        cn = norm(cu8)
        pc = gen(cn).reshape(-1); ec = l2n(idn(cn)); s = ec @ e_orig[i]
        pic = np.abs(2 * pc - 1) - s
        if crit is not None:
            pk = crit(cn).reshape(-1)
            pic = pic + a.coherence_weight * pk
        j = int(np.argmin(pic))
        if crit is not None:
            p_comp[i] = pk[j]
        chosen_mir[i] = mir[j]
        chosen_u8[i] = cu8[j]; chosen_ref[i] = refs[j]; p_anon[i] = pc[j]; sim_anon[i] = s[j]
        swap_u8[i] = cu8[0]  # first reference (drawn at random; the closest with --refs top): context swap
    lab = male[sel]
    if a.faces_out:
        json.dump([{'position': q, 'file': str(meta['files'][i]), 'male': bool(male[i]), 'reference': int(chosen_ref[q]),
                    'p_male_after': round(float(p_anon[q]), 4), 'sim': round(float(sim_anon[q]), 4),
                    'p_composite': round(float(p_comp[q]), 4) if crit is not None else None}
                   for q, i in enumerate(sel)], open(a.faces_out, 'w'), indent=1)
    if a.mirror:
        R['chosen_mirrored_share'] = float(chosen_mir.mean())
    if lm_val is not None and a.refs == 'top':
        ok = np.isfinite(lm_val[:, 0, 0])
        lm_of = lambda i: mirror_landmarks(lm_val[i], x.shape[-1]) if chosen_mir[i] else lm_val[i]  # as ranked
        R['reference_pose_distance'] = float(np.mean([rbank.pose_distance(lm_of(i), chosen_ref[i:i + 1])[0]
                                                      for i in np.flatnonzero(ok)]))
    R['swap_reference'] = 'closest' if a.refs == 'top' else 'first drawn'
    R['gender_auc_original_subset'] = roc_auc(p_orig, lab)
    R['gender_auc_anonymized'] = roc_auc(p_anon, lab)
    R['gender_acc_anonymized'] = float(((p_anon >= 0.5) == lab).mean())
    R['sim_anonymized_orig'] = float(sim_anon.mean())
    if crit is not None:
        R['coherence_p_composite_chosen'] = float(p_comp.mean())
    e_anon = l2n(batched(idn, norm(chosen_u8)))
    S_ = e_anon @ e_orig.T
    same = ident[sel][:, None] == ident[sel][None, :]
    R['eer_anon_vs_own_original'] = eer(np.diag(S_), S_[~same])
    R['auc_anon_vs_own_original'] = roc_auc(np.r_[np.diag(S_), S_[~same]], np.r_[np.ones(len(sel)), np.zeros(int((~same).sum()))])
    # other images of the same identity (all val)
    Sa = e_anon @ emb.T
    gi, im_ = [], []
    for r, i in enumerate(sel):
        others = [j for j in by[ident[i]] if j != i]
        gi += [Sa[r, j] for j in others]
    diff = ident[sel][:, None] != ident[None, :]
    im_ = Sa[diff]
    R['eer_anon_vs_other_images_same_identity'] = eer(gi, im_) if gi else None
    Sr = e_rec @ e_orig.T
    R['eer_recon_vs_own_original'] = eer(np.diag(Sr), Sr[~same])
    # seam
    M = np.kron(np.load(P(man['extras']['identity_region']['file']), allow_pickle=False),
                np.ones((8, 8), np.float32))  # the pack's own identity region (16x16 cells) at 128 px
    k5 = np.ones((5, 5), np.uint8)
    band = (cv2.dilate(M.astype(np.uint8), k5) - cv2.erode(M.astype(np.uint8), k5)).astype(bool)
    g_an, g_rec, g_orig = grad_mag(chosen_u8), grad_mag(rec_u8), grad_mag(x_u8)
    R['seam_band_grad_anonymized'] = float(g_an[:, band].mean())
    R['seam_band_grad_recon'] = float(g_rec[:, band].mean())
    R['seam_band_grad_original'] = float(g_orig[:, band].mean())
    R['seam_ratio'] = R['seam_band_grad_anonymized'] / R['seam_band_grad_recon']
    pin, pout = boundary_pairs(M)
    cs_an, cs_rec, cs_orig = colour_step(chosen_u8, pin, pout), colour_step(rec_u8, pin, pout), colour_step(x_u8, pin, pout)
    R['colour_step_anonymized'] = float(cs_an.mean()); R['colour_step_recon'] = float(cs_rec.mean())
    R['colour_step_original'] = float(cs_orig.mean()); R['colour_step_ratio'] = float(cs_an.mean() / cs_rec.mean())
    R['seam_ratio_offband_anon_over_recon'] = float(g_an[:, ~band].mean() / g_rec[:, ~band].mean())
    # disentanglement (context swap, first random reference)
    d = np.abs(swap_u8.astype(np.float32) - rec_u8.astype(np.float32)).mean(3)
    Mb = M.astype(bool)
    R['swap_change_share_inside'] = float(d[:, Mb].sum() / d.sum())
    R['identity_area_share'] = float(Mb.mean())
    R['swap_change_mean_inside'] = float(d[:, Mb].mean()); R['swap_change_mean_outside'] = float(d[:, ~Mb].mean())
    R['swap_inside_outside_ratio'] = R['swap_change_mean_inside'] / R['swap_change_mean_outside']
    if os.path.isfile(a.attacker):  # (N,3,112,112) RGB, [-1, 1], softmax (N, 2), column 1 = male
        att = sess(a.attacker)
        small = lambda u8: norm(np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_AREA) for f in u8]))
        pa_o = batched(att, small(x_u8))[:, 1]; pa_a = batched(att, small(chosen_u8))[:, 1]
        R['independent_attacker'] = os.path.relpath(a.attacker)
        R['independent_gender_auc_original'] = roc_auc(pa_o, lab)
        R['independent_gender_auc_anonymized'] = roc_auc(pa_a, lab)
    if os.path.isfile(a.fid_model):
        from pridss_rt.eval.metrics import fid_from_features
        fx = fid_extractor(a.fid_model)
        bgr = lambda u8: np.ascontiguousarray(u8[:, :, :, ::-1])
        f_rec = fx(bgr(rec_u8))
        f_an = fx(bgr(chosen_u8))
        R['coherence_fid_anonymized_vs_recon'] = fid_from_features(f_an, f_rec)
        R['coherence_fid_swap_vs_recon'] = fid_from_features(fx(bgr(swap_u8)), f_rec)
        # the same against reconstructions of *other* val faces (as many, half men, half women): closer
        # references alone (same pose, background) cannot lower this one
        rest_m = np.setdiff1d(np.where(male)[0], sel); rest_f = np.setdiff1d(np.where(~male)[0], sel)
        oth = np.concatenate([rng.choice(rest_m, min(a.n // 2, len(rest_m)), replace=False),
                              rng.choice(rest_f, min(a.n - a.n // 2, len(rest_f)), replace=False)])
        f_oth = fx(bgr(to_u8(batched(syn, batched(enc, X[oth])))))
        R['coherence_fid_anonymized_vs_other_recon'] = fid_from_features(f_an, f_oth)
        R['fid_recon_vs_other_recon'] = fid_from_features(f_rec, f_oth)
    R['seconds'] = round(time.time() - t0, 1)
    bars = {'recon_ssim>=0.88': R['recon_ssim'] >= 0.88, 'recon_psnr>=28': R['recon_psnr'] >= 28,
            'eer_anon_vs_original<=0.10': R['eer_anon_vs_own_original'] <= 0.10, 'seam_ratio<=1.2': R['seam_ratio'] <= 1.2}
    R['bars'] = bars
    json.dump(R, open(a.out, 'w'), indent=1, default=float)
    for k, v in R.items():
        print(f'{k:45s} {v:.4f}' if isinstance(v, float) else f'{k:45s} {v}')
    # grid: the first --grid_per_gender men, then as many women, triplets original | reconstruction | anonymized
    if a.grid:
        h, g = a.n // 2, a.grid_per_gender
        pick = list(range(g)) + list(range(h, h + g))
        tiles = [np.concatenate([x_u8[i], rec_u8[i], chosen_u8[i]], 1) for i in pick]
        sep = lambda t: np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255)
        rows = [np.concatenate([sep(t) for t in tiles[r:r + 4]], 1) for r in range(0, len(tiles), 4)]
        cv2.imwrite(a.grid, np.concatenate(rows, 0)[:, :, ::-1])
        print('grid (not for the repo: CelebA-HQ faces):', a.grid)


if __name__ == '__main__':
    main()
