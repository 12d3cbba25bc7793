#!/usr/bin/env bash
# Cross-head binaural encoders on a 2-core CPU (issue 20; about 50 minutes on an idle 2-core VM):
# an encoder trained on 15 measured CIPIC heads, one trained on a single CIPIC head (same budget), and
# the sphere-head encoder, scored on reverberant scenes through 5 held-out CIPIC heads and through the
# KU100 dummy head (never trained on), and on real ESC-50 clips through the KU100 (no room), each
# beside GCC-PHAT and the other encoders with paired tests. Run again after an interruption: simulate and
# pretrain-encoder resume; evaluations rerun.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}
RESULTS=${RESULTS:-experiments/results}
SHARED=${SPATIAL_ALM_SHARED_DATA:-../shared/data}
R=simulation/cipic_binaural.yaml
ENC=experiments/encoder/tiny_binaural.yaml
one_head() {  # --set overrides: every scene through one head file (the recipe keeps ${SPATIAL_ALM_SHARED_DATA})
  echo --set receiver.heads_dir=null --set "receiver.heads=[\"$1\"]" --set receiver.split=all --set receiver.test_heads=[]
}

# data: CIPIC train heads (seed 0), the 5 held-out CIPIC heads and the KU100 (seed 1); one CIPIC head (seed 0)
spatial-alm simulate --recipe $R --out $OUT/cipic_train --num-scenes 2000 --num-shards 4 --workers 2 --seed 0
spatial-alm simulate --recipe $R --set receiver.split=test --out $OUT/cipic_test --num-scenes 300 --num-shards 2 --workers 2 --seed 1
spatial-alm simulate --recipe $R $(one_head '${SPATIAL_ALM_SHARED_DATA}/hrtf/FHK_HRIR_L2354.sofa') --out $OUT/ku100_test --num-scenes 300 --num-shards 2 --workers 2 --seed 1
spatial-alm simulate --recipe $R $(one_head '${SPATIAL_ALM_SHARED_DATA}/hrtf/cipic/subject_008.mat') --out $OUT/onehead_train --num-scenes 2000 --num-shards 4 --workers 2 --seed 0

# encoders: same config, steps and seed; the sphere one is that of experiments/results/sim2real_* (run_cpu.sh step 6)
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_train --num-scenes 2000 --num-shards 4 --workers 2 --seed 0
spatial-alm pretrain-encoder --data $OUT/tiny_train --config $ENC --set channel_swap=true --out $OUT/encoder_tiny_swap
spatial-alm pretrain-encoder --data $OUT/cipic_train --config $ENC --set channel_swap=true --out $OUT/encoder_cipic_swap
spatial-alm pretrain-encoder --data $OUT/onehead_train --config $ENC --set channel_swap=true --out $OUT/encoder_onehead_swap

# scores: the 15-head encoder beside GCC-PHAT, the one-head and the sphere encoders, with paired tests
COMPARE="--compare one_head=$OUT/encoder_onehead_swap/model sphere=$OUT/encoder_tiny_swap/model"
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_cipic_swap/model --data $OUT/cipic_test $COMPARE --out $RESULTS/cross_head_cipic_test
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_cipic_swap/model --data $OUT/ku100_test $COMPARE --out $RESULTS/cross_head_ku100_test
[ -f $OUT/real_ku100/labels.csv ] || spatial-alm dataset from-sofa --sofa $SHARED/hrtf/FHK_HRIR_L2354.sofa --clips $SHARED/esc50 \
    --out $OUT/real_ku100 --num-clips 40 --directions 25 --elevation-range -30 30 --fs-hz 16000 --duration-s 2 --seed 0
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_cipic_swap/model --recordings $OUT/real_ku100 $COMPARE --out $RESULTS/cross_head_real_ku100

# six times the scenes through the same 15 training heads (about 16 more minutes): cross_head_*_12k
spatial-alm simulate --recipe $R --out $OUT/cipic_train12k --num-scenes 12000 --num-shards 8 --workers 2 --seed 0
spatial-alm pretrain-encoder --data $OUT/cipic_train12k --config $ENC --set epochs=6 --set channel_swap=true --out $OUT/encoder_cipic12k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_cipic12k/model --data $OUT/cipic_test --out $RESULTS/cross_head_cipic_test_12k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_cipic12k/model --data $OUT/ku100_test --out $RESULTS/cross_head_ku100_test_12k
