"""Write MODEL_CARD.md from a report and install the pack into pridss_rt/packs/demo if it passes.

Usage: python research/pack/install_pack.py --pack runs/pack_demo --report runs/report.json [--force-card-only]
Refuses to install when a quality bar of the report fails (the card is still written into --pack).
"""
import argparse, json, os, shutil, sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEST = os.path.join(HERE, '..', '..', 'pridss_rt', 'packs', 'demo')
FILES = ['pack.json', 'encoder.onnx', 'synthesis.onnx', 'gender.onnx', 'identity.onnx', 'fusion_mask.npy',
         'identity_region.npy', 'reference_match.npy', 'bank.npz', 'MODEL_CARD.md']
OPTIONAL = ['coherence.onnx']  # installed when the pack has it


REFS = {
    'top': ('chosen by the runtime itself, as `Anonymizer` does: K spread evenly over the ranks of the {pool} '
            'opposite-gender bank faces closest to the original on the `reference_match` latent elements'),
    'nearest': 'K drawn from the {pool} opposite-gender bank faces closest to the original on the `reference_match` latent elements',
    'random': 'K drawn at random from the opposite-gender bank faces',
}


def region_text(man):
    """'eyes y 56-72/x 32-96, ...' from the manifest's identity cells (8 px per cell)."""
    parts = []
    for name, rects in man['fusion']['identity_cells'].items():
        for r0, r1, c0, c1 in rects:
            parts.append(f'{name} y {8 * r0}-{8 * r1}/x {8 * c0}-{8 * c1}')
    return ', '.join(parts)


def soft_text(man):
    return ('; the cells touching the region blend both' if 'soft boundary' in man['fusion'].get('layout', '')
            else '')


def pose_text(R):
    w = R.get('pose_weight') or 0
    if not w:
        return ''
    return (f'; closeness = latent similarity - {w:g} x the RMS distance between the 5 landmarks of the face and '
            f'of the reference in their crops, in template eye distances (head-pose-aware choice; mean distance '
            f'to the chosen reference {R["reference_pose_distance"]:.3f})')


def coherence_text(man, R):
    c = man['networks'].get('coherence')
    if not c:
        return ''
    w = man.get('defaults', {}).get('coherence_weight', 0)
    return (f"- `coherence.onnx`: crop -> P(composite) [B,1], a critic of the pack's own decoder outputs (small CNN on "
            f"a 64-px downscale; `research/training/train_critic.py --mode rank`): a train face fused with one of its runtime-style "
            f"references = good, fused with a random opposite-gender face = bad. The runtime chooses among the K "
            f"candidates by PIC + {w:g} x P(composite) (`defaults.coherence_weight`): PIC alone rewards an ambiguous "
            f"gender and a high similarity, which a composite has; mean P(composite) of the chosen faces "
            f"{R.get('coherence_p_composite_chosen', float('nan')):.3f}.\n")


def critic_limits(man):
    if 'coherence' not in man['networks']:
        return ''
    return ('- The coherence critic knows composites only as its training showed them (a random opposite-gender '
            'reference): it changes the chosen candidate for about a quarter of the faces; judged blind, pair by pair, '
            '18 of 21 changed faces with a visible difference looked more coherent (two looks of 24), and it cannot '
            'fix a composite whose five candidates are all composites (docs/demo-pack.md).\n')


def card(R, man, train_info, len_bank, grid_note):
    id_share = R['identity_area_share']
    f = lambda k, d=3: f'{R[k]:.{d}f}'
    extra = ''
    if 'independent_gender_auc_anonymized' in R:
        extra += (f"| PriDSS K={R['k']}: gender AUC of an independent attacker (research/training/train_attacker.py; did not pick "
                  f"candidates) | {f('independent_gender_auc_anonymized')} (originals: {f('independent_gender_auc_original')}) |\n")
    if 'coherence_fid_anonymized_vs_recon' in R:
        extra += (f"| coherence FID, anonymized vs reconstructions of the same faces (lower = less composite) | "
                  f"{f('coherence_fid_anonymized_vs_recon', 1)} |\n")
    if 'coherence_fid_anonymized_vs_other_recon' in R:
        extra += (f"| coherence FID, anonymized vs reconstructions of as many other val faces (floor: two such "
                  f"reconstruction sets, {f('fid_recon_vs_other_recon', 1)}) | {f('coherence_fid_anonymized_vs_other_recon', 1)} |\n")
    return f"""# PriDSS demo pack (`demo`, version {man['version']})

Small networks trained from scratch in this repository (`research/`) so that pridss-rt runs offline out of
the box. It is a demonstration pack, not the official PriDSS stack (StyleGAN2 + StyleFusion + e4e +
ArcFace); use `export/make_pack.py` with official weights for research-grade results.

## Data and licence
- Trained on the **train split** of CelebA-HQ at 128 px (22,580 images, 4,635 identities); every number
  below is on the identity-disjoint **val split** (4,443 images, 970 identities).
- **CelebA / CelebA-HQ are licensed for non-commercial research only. These weights are derived from
  them and inherit that restriction: non-commercial research use only.** No image of the data set is
  shipped; the bank holds latent codes of {len_bank} train-split faces (which can be decoded back into
  approximate faces of those people).

## Networks (ONNX, opset 17, dynamic batch, FP32)
- `encoder.onnx`: aligned 128x128 RGB crop, normalized (x/255-0.5)/0.5 -> latent [B, 12352] =
  spatial map 48x16x16 (flattened, 8 px per cell) + 64-d global style vector.
- `synthesis.onnx`: latent -> 128x128 image in the same normalized space (style applied by FiLM).
- `gender.onnx`: crop -> P(male) [B,1] (small CNN on a 48-px downscale).
- `identity.onnx`: crop -> 128-d embedding of the inner face (rows 32-112, cols 24-104), CosFace
  training on the 4,635 train identities.
- Fusion: static mask (`fusion_mask.npy`): identity cells ({region_text(man)} in crop pixels;
  {id_share:.0%} of the crop) of all 48 map channels come from the original; every other cell and the
  style vector come from the reference{soft_text(man)}.
{coherence_text(man, R)}- Alignment template (5 points, crop pixels) measured with the {man['preprocess'].get('template_detector')}
  detector on 2,000 train crops: {man['preprocess']['template']}.

## Training
{train_info}

## Metrics (val, `python research/analysis/report.py --pack pridss_rt/packs/demo --n {R['n_loop']} --refs {R.get('refs', 'random')}`)
PriDSS loop: references = {R.get('refs', 'random')} ({REFS.get(R.get('refs'), REFS['random']).format(pool=R.get('pool'))}{pose_text(R)}), lowest {'PIC + ' + format(R['coherence_weight'], 'g') + ' x P(composite)' if R.get('coherence_weight') else 'PIC'} kept.

| metric | value |
| --- | --- |
| reconstruction PSNR / SSIM | {f('recon_psnr', 2)} dB / {f('recon_ssim')} |
| identity SIM(reconstruction, original) | {f('sim_recon_orig')} |
| identity embedder verification AUC / EER (val identities) | {f('embedder_auc')} / {f('embedder_eer')} |
| gender classifier accuracy / AUC (all val) | {f('gender_acc')} / {f('gender_auc')} |
| PriDSS K={R['k']}: gender AUC on anonymized faces (pack's classifier; 0.5 = no information) | {f('gender_auc_anonymized')} (originals: {f('gender_auc_original_subset')}) |
| PriDSS K={R['k']}: SIM(anonymized, original) | {f('sim_anonymized_orig')} |
| EER anonymized vs own original / vs other images of the same identity | {f('eer_anon_vs_own_original')} / {f('eer_anon_vs_other_images_same_identity')} |
| seam ratio (band gradient, anonymized / reconstruction; <= 1.2) | {f('seam_ratio')} |
| context swap: share of pixel change inside the identity region (area {f('identity_area_share')}) | {f('swap_change_share_inside')} |
| context swap: mean change inside / outside | {f('swap_inside_outside_ratio')} |
{extra}
## Known limits
- Picture quality (val grids, not shipped): {grid_note}
- 128-px faces, frontal-ish poses as in CelebA-HQ; small networks: outputs are softer than the input.
- The identity region is a fixed rectangle set on the aligned crop; bad alignment moves features across
  it. Faces with glasses, beards, strong make-up, extreme expressions, hands or objects in front of them
  or painted skin fuse less cleanly.
- Anonymized faces can keep cues of the original's gender inside the identity region (eye make-up,
  lips, moustache; brows where the region includes them) and may inherit the reference's facial hair
  and face shape. The input's gender is decided by the pack's classifier: where it errs (about 3 % of
  val faces), the references come from the same gender and the face is not changed in gender.
- The pack's own classifier and embedder select the candidate, so the pack's own gender AUC flatters
  privacy; evaluate with an independent attacker. An AUC below 0.5 means the attacker reads the other
  gender more often than not: it is as informative as 1 - AUC to an attacker who knows that.
- Privacy holds for the aligned face crop; in frames the blend pastes the inner face only, and the
  original's hair and head outline around it still carry gender (docs/evaluation.md).
{critic_limits(man)}"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pack', default='runs/pack_demo')
    ap.add_argument('--report', default='runs/report.json')
    ap.add_argument('--train_info', default=os.path.join(HERE, '..', 'TRAINING_SUMMARY.md'))
    ap.add_argument('--card_only', action='store_true')
    ap.add_argument('--grid_note', default='see docs/demo-pack.md.')
    a = ap.parse_args()
    R = json.load(open(a.report))
    man = json.load(open(os.path.join(a.pack, 'pack.json')))
    import numpy as np
    nb = len(np.load(os.path.join(a.pack, 'bank.npz'))['male'])
    info = open(a.train_info).read() if os.path.exists(a.train_info) else 'See research/README.md.'
    open(os.path.join(a.pack, 'MODEL_CARD.md'), 'w').write(
        card(R, man, info, nb, a.grid_note))
    print('card written')
    if a.card_only:
        return
    bad = [k for k, v in R['bars'].items() if not v]
    if bad:
        sys.exit(f'not installing: bars failed: {bad}')
    files = FILES + [f for f in OPTIONAL if os.path.isfile(os.path.join(a.pack, f))]
    size = sum(os.path.getsize(os.path.join(a.pack, f)) for f in files)
    if size > 30e6:
        sys.exit(f'not installing: the pack is {size / 1e6:.2f} MB, over the 30 MB the package may carry')
    os.makedirs(DEST, exist_ok=True)
    for f in OPTIONAL:  # a pack without it must not leave the previous one's behind
        if f not in files and os.path.exists(os.path.join(DEST, f)):
            os.remove(os.path.join(DEST, f))
    for f in files:
        shutil.copy2(os.path.join(a.pack, f), os.path.join(DEST, f))
    tot = sum(os.path.getsize(os.path.join(DEST, f)) for f in files)
    print(f'installed into {os.path.abspath(DEST)} ({tot / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
