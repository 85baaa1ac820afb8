#!/usr/bin/env bash
# Reproduce the demo pack from scratch on a 2-core CPU (see research/README.md). Run from the repo root.
set -euo pipefail
N="nice -n 10"
python research/data/make_cache.py --out /tmp/celebahq_cache.npz
python research/data/measure_template.py --detector mtcnn --n 2000 --out runs/template_mtcnn.json
# encoder + synthesis: stage A (batch pairs, B=24, first 500 steps of a 2000-step cosine schedule),
# stage B (nearest-neighbour opposite-gender pairs, B=16, 500 steps of a 1600-step schedule),
# stage C (same, resumed at step 500 with the schedule shortened to 800 steps so it anneals to 0)
$N python research/training/train_ae.py --steps 2000 --stop_at 500 --seed 1 --out runs/ae
cp runs/ae/ckpt.pt runs/ae/ckpt_step500.pt
$N python research/training/train_ae.py --init runs/ae/ckpt_step500.pt --pairs nn --batch 16 --steps 1600 --stop_at 500 \
    --lr 1.5e-3 --seed 2 --out runs/ae2
$N python research/training/train_ae.py --resume runs/ae2/ckpt.pt --pairs nn --batch 16 --steps 800 --lr 1.5e-3 --seed 2 --out runs/ae2
# stage D: short fine-tune with a heavier, wider-feathered fusion loss and more nearest-neighbour pairs
$N python research/training/train_ae.py --init runs/ae2/ckpt.pt --pairs nn --nn_prob 0.9 --batch 16 --steps 300 --lr 5e-4 \
    --fused_weight 1.5 --feather 4 --seed 3 --threads 1 --out runs/ae3
# stage E (tried, not shipped: research/records/log.md): stage D + a patch critic on fused outputs
# $N python research/training/train_ae.py --init runs/ae3/ckpt.pt --pairs nn --nn_prob 0.9 --batch 16 --steps 2400 --lr 4e-4 \
#     --fused_weight 1.0 --feather 4 --adv_weight 0.05 --adv_warmup 150 --seed 4 --out runs/ae4
$N python research/training/train_cls.py --task gender --epochs 2 --out runs/gender
$N python research/training/train_cls.py --task identity --epochs 6 --threads 1 --out runs/identity2
python research/pack/export_pack.py --ae runs/ae3/ckpt.pt --gender runs/gender/ckpt.pt --identity runs/identity2/ckpt.pt \
    --template runs/template_mtcnn.json --out runs/pack_demo
# pack 1.1.0 = the networks of 1.0.0 (stage D) + 800 references in float16, reference match on the identity
# cells + 2-cell ring, K spread over the 16 closest references
python research/pack/pack_variant.py --pack runs/pack_demo --out runs/pack_demo_110 --bank_per_gender 400 --bank_dtype float16 \
    --match core --reference_pool 16 --version 1.1.0
# pack 1.2.0: stage F = identity region without the brows (brows from the reference), encoder +
# synthesis fine-tuned 600 steps for it; a stronger identity embedder (width 32, 64 px, 16 epochs) so that the
# anonymized faces still verify against their originals (EER bar); bank re-encoded, stored zip-deflated
$N python research/training/train_ae.py --init runs/ae3/ckpt.pt --region nobrow --pairs nn --nn_prob 0.9 --batch 16 --steps 600 \
    --lr 5e-4 --fused_weight 1.5 --feather 4 --seed 5 --threads 1 --out runs/ae5_nobrow
$N python research/training/train_cls.py --task identity --width 32 --size 64 --epochs 16 --out runs/identity_w32s64
python research/pack/pack_variant.py --pack runs/pack_demo_110 --out runs/pack_120 --ae runs/ae5_nobrow/ckpt.pt \
    --bank_per_gender 400 --bank_dtype float16 --bank_compress 1 --region nobrow --match core --reference_pool 16 \
    --identity runs/identity_w32s64/ckpt.pt --version 1.2.0
# pack 1.3.0: 1.2.0 + the bank faces' landmarks and a head-pose-aware reference choice
python research/data/crop_landmarks.py --split val --out runs/landmarks_val.npy
python research/pack/pack_variant.py --pack runs/pack_120 --out runs/pack_130 --bank_per_gender 400 --bank_dtype float16 \
    --bank_compress 1 --bank_landmarks 1 --pose_weight 10 --version 1.3.0 \
    --description "Small demo PriDSS pack trained in this repo (research/): spatial-latent autoencoder (48x16x16 map + 64-d style = 12352 values); identity cells (eyes without the brows, nose, mouth) kept from the original; context cells (brows, forehead, skin, jaw, hair, background) + style from an opposite-gender reference chosen by latent similarity and head pose (bank landmarks); small CNN gender classifier and identity embedder."
# pack 1.4.0: the bank doubled to 1,600 faces, stored in int8
python research/pack/pack_variant.py --pack runs/pack_130 --out runs/pack_140 --bank_per_gender 800 --bank_dtype int8 \
    --bank_compress 1 --bank_landmarks 1 --pose_weight 10 --version 1.4.0 \
    --description "Small demo PriDSS pack trained in this repo (research/): spatial-latent autoencoder (48x16x16 map + 64-d style = 12352 values); identity cells (eyes without the brows, nose, mouth) kept from the original; context cells (brows, forehead, skin, jaw, hair, background) + style from an opposite-gender reference of a 1,600-face bank (int8) chosen by latent similarity and head pose (bank landmarks); small CNN gender classifier and identity embedder."
# pack 1.5.0: stage I = stage F fine-tuned on the runtime's own pairs (train crops' landmarks, pairs
# ranked like ReferenceBank.choose) with a fused target that takes half of the reference's blurred shading;
# the same 1,600 bank faces re-encoded. Stages G (runtime pairs only) and H (--target_lowpass_mix 1) were tried.
python research/data/crop_landmarks.py --split train --out runs/landmarks_train.npy
python research/data/runtime_pairs.py --pack runs/pack_140 --landmarks runs/landmarks_train.npy --out runs/pairs_train.npz
$N python research/training/train_ae.py --init runs/ae5_nobrow/ckpt.pt --region nobrow --pairs runtime --pairs_file runs/pairs_train.npz \
    --nn_prob 0.9 --batch 16 --steps 900 --lr 4e-4 --fused_weight 1.5 --feather 4 --target_lowpass 3 \
    --target_lowpass_mix 0.5 --seed 6 --threads 2 --out runs/ae8_lp50
python research/pack/pack_variant.py --pack runs/pack_140 --out runs/pack_150 --ae runs/ae8_lp50/ckpt.pt --bank_per_gender 800 \
    --bank_dtype int8 --bank_compress 1 --bank_landmarks 1 --pose_weight 10 --version 1.5.0 \
    --description "Small demo PriDSS pack trained in this repo (research/): spatial-latent autoencoder (48x16x16 map + 64-d style = 12352 values), fine-tuned on the runtime's own reference pairs with a fused target that keeps the original's detail on the reference's blurred shading (stage I); identity cells (eyes without the brows, nose, mouth) kept from the original; context cells (brows, forehead, skin, jaw, hair, background) + style from an opposite-gender reference of a 1,600-face bank (int8) chosen by latent similarity and head pose (bank landmarks); small CNN gender classifier and identity embedder."
# pack 1.6.0 (installed): 1.5.0 + a coherence critic that ranks fused faces (runtime-style references = good,
# random opposite-gender references = bad), added to PIC with weight 1 in the K-candidate choice
$N python research/training/train_critic.py --pack runs/pack_150 --mode rank --width 16 --data runs/critic_rank_data.npz --out runs/critic_rank
python research/pack/pack_variant.py --pack runs/pack_150 --out runs/pack_160 --coherence runs/critic_rank/critic.pt \
    --coherence_weight 1.0 --version 1.6.0 \
    --description "Small demo PriDSS pack trained in this repo (research/): spatial-latent autoencoder (48x16x16 map + 64-d style = 12352 values), fine-tuned on the runtime's own reference pairs with a fused target that keeps the original's detail on the reference's blurred shading (stage I); identity cells (eyes without the brows, nose, mouth) kept from the original; context cells (brows, forehead, skin, jaw, hair, background) + style from an opposite-gender reference of a 1,600-face bank (int8) chosen by latent similarity and head pose (bank landmarks); small CNN gender classifier and identity embedder; a coherence critic (trained to rank the pack's own fused faces) added to PIC in the choice among the K candidates."
python research/analysis/report.py --pack runs/pack_160 --n 1000 --out runs/report.json --grid runs/grid.png
python research/experiments/paired_choice.py --critic runs/pack_160/coherence.onnx --weight 1.0 --n 300 --seed 3 --out runs/paired.png \
    --blind runs/paired_key.json
python research/pack/install_pack.py --pack runs/pack_160 --report runs/report.json
# independent gender attacker for pridss-rt eval --extra-attacker (not part of the pack)
$N python research/training/train_attacker.py --epochs 3 --out runs/attacker
