#!/usr/bin/env bash
# The encoder experiments of experiments/results/ on a 2-core CPU, start to end (about 4 hours).
# Run again after an interruption: the simulate and pretrain commands resume from what exists; evaluations rerun.
# The reports were made at commit 4333154 or before, whose class-wise heads read the CLS tokens; this
# version's read one token per class, so rerun numbers differ (results README, "Class tokens on the sphere head").
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}
RESULTS=${RESULTS:-experiments/results}

# 1. tiny binaural (sphere head): 2000 training scenes (seed 0), 300 held-out test scenes (seed 1)
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_train --num-scenes 2000 --num-shards 4 --workers 2 --seed 0
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_test --num-scenes 300 --seed 1
spatial-alm pretrain-encoder --data $OUT/tiny_train --config experiments/encoder/tiny_binaural.yaml --out $OUT/encoder_tiny
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny/model --data $OUT/tiny_test --out $RESULTS/encoder_tiny_binaural

# 2. ablation: magnitude only (no inter-channel phase planes), same data and budget
spatial-alm pretrain-encoder --data $OUT/tiny_train --config experiments/encoder/tiny_binaural.yaml --set features.ipd=false --out $OUT/encoder_tiny_magonly
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny_magonly/model --data $OUT/tiny_test --out $RESULTS/encoder_tiny_binaural_magonly

# 3. 4-mic tetrahedral array, 2 s clips for the CPU budget
spatial-alm simulate --recipe simulation/tetra_array.yaml --set duration_s=2.0 --out $OUT/tetra_train --num-scenes 2000 --num-shards 4 --workers 2 --seed 0
spatial-alm simulate --recipe simulation/tetra_array.yaml --set duration_s=2.0 --out $OUT/tetra_test --num-scenes 300 --seed 1
spatial-alm pretrain-encoder --data $OUT/tetra_train --config experiments/encoder/tetra_array.yaml --out $OUT/encoder_tetra
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tetra/model --data $OUT/tetra_test --out $RESULTS/encoder_tetra_array

# 4. array encoder with a 16-map fusion stem, SRP-PHAT planes and elevation weighted as azimuth (same data and budget)
spatial-alm pretrain-encoder --data $OUT/tetra_train --config experiments/encoder/tetra_array_srp.yaml --out $OUT/encoder_tetra_srp_el1
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tetra_srp_el1/model --data $OUT/tetra_test --out $RESULTS/encoder_tetra_array_srp_el1

# 5. the same encoder on 8000 training scenes (scenes 0-1999 are those of step 3), also scored on 1000 more test scenes
spatial-alm simulate --recipe simulation/tetra_array.yaml --set duration_s=2.0 --out $OUT/tetra_train8k --num-scenes 8000 --num-shards 16 --workers 2 --seed 0
spatial-alm simulate --recipe simulation/tetra_array.yaml --set duration_s=2.0 --out $OUT/tetra_test1k --num-scenes 1000 --num-shards 4 --workers 2 --seed 2
spatial-alm pretrain-encoder --data $OUT/tetra_train8k --config experiments/encoder/tetra_array_srp.yaml --set epochs=6 --out $OUT/encoder_tetra_srp_8k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tetra_srp_8k/model --data $OUT/tetra_test --out $RESULTS/encoder_tetra_array_srp_8k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tetra_srp_8k/model --data $OUT/tetra_test1k --out $RESULTS/encoder_tetra_array_srp_8k_test1k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tetra_srp_el1/model --data $OUT/tetra_test1k --out $RESULTS/encoder_tetra_array_srp_el1_test1k --baselines

# 6. binaural: channel swaps, swaps + 16-map stem, and all three encoders on 1000 more test scenes (seed 2)
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_test1k --num-scenes 1000 --num-shards 4 --workers 2 --seed 2
spatial-alm pretrain-encoder --data $OUT/tiny_train --config experiments/encoder/tiny_binaural.yaml --set channel_swap=true --out $OUT/encoder_tiny_swap
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny_swap/model --data $OUT/tiny_test --out $RESULTS/encoder_tiny_binaural_swap
spatial-alm pretrain-encoder --data $OUT/tiny_train --config experiments/encoder/tiny_binaural.yaml --set channel_swap=true --set encoder.stem_channels=16 --out $OUT/encoder_tiny_swap_stem16
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny_swap_stem16/model --data $OUT/tiny_test --out $RESULTS/encoder_tiny_binaural_swap_stem16
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny/model --data $OUT/tiny_test1k --out $RESULTS/encoder_tiny_binaural_test1k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny_swap/model --data $OUT/tiny_test1k --out $RESULTS/encoder_tiny_binaural_swap_test1k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny_swap_stem16/model --data $OUT/tiny_test1k --out $RESULTS/encoder_tiny_binaural_swap_stem16_test1k

# 7. sim-to-real: the swap encoder of step 6 (trained on sphere-head simulations only) on real ESC-50 clips
#    through the two measured heads of ../shared/data/hrtf (1000 recordings each), beside GCC-PHAT
#    (from-sofa refuses a non-empty folder: a finished set is kept)
SHARED=${SPATIAL_ALM_SHARED_DATA:-../shared/data}
for head in kemar:mit_kemar_normal_pinna ku100:FHK_HRIR_L2354; do
  [ -f $OUT/real_${head%%:*}/labels.csv ] || spatial-alm dataset from-sofa --sofa $SHARED/hrtf/${head#*:}.sofa --clips $SHARED/esc50 --out $OUT/real_${head%%:*} \
      --num-clips 40 --directions 25 --elevation-range -30 30 --fs-hz 16000 --duration-s 2 --seed 0
  spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny_swap/model --recordings $OUT/real_${head%%:*} \
      --out $RESULTS/sim2real_encoder_tiny_binaural_swap_${head%%:*}
done
