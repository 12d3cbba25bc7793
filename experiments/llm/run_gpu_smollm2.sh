#!/usr/bin/env bash
# The audio-LLM recipe of issue 18 at GPU scale, start to end on one GPU machine: simulate N tiny binaural
# training scenes (seed 0; the first 12 000 are the CPU recipe's) and the 300 held-out scenes (seed 1), pretrain
# the tiny encoder with class-wise heads (ear swaps, class-wise distance weight 1.0, as
# experiments/llm/run_cpu_smollm2.sh) for EPOCHS epochs, fine-tune SmolLM2-135M-Instruct + LoRA
# (experiments/llm/smollm2_lora.yaml, four phases of TRAIN_QUESTIONS questions), then evaluate every question of
# the held-out scenes (EVALUATE=0 skips that; run the last line on any machine).
#   bash experiments/llm/run_gpu_smollm2.sh   # N=30000 EPOCHS=9 TRAIN_QUESTIONS=2400 unless set; writes under $RUN_DIR (default out/gpu)
# Sized from the measured rates (benchmarks/README.md: ~1700 tiny-encoder samples/s on an H100 with 12 loader
# processes; ~35 simulated scenes/s per core) to take about 8 minutes on a 16-core H200 machine with
# the defaults and EVALUATE=0. Not yet run on a GPU (2026-12-04: none was lent); run at toy size on the 2-core
# CPU (N=64 EPOCHS=1 TRAIN_QUESTIONS=16 TEST_SCENES=8: 4.3 min). Needs SmolLM2 installed, or converted before
# into $SPATIAL_ALM_CACHE (spatial_alm.models.pretrained.gguf_checkpoint). Run again after an interruption:
# simulate and the training commands resume from what exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN_DIR:-out/gpu}
N=${N:-30000}
EPOCHS=${EPOCHS:-9}
TRAIN_QUESTIONS=${TRAIN_QUESTIONS:-2400}
TEST_SCENES=${TEST_SCENES:-300}
CORES=$(nproc)
SIM=(spatial-alm simulate --recipe simulation/tiny_binaural.yaml --no-progress --workers "$CORES")

"${SIM[@]}" --out "$RUN/tiny_test" --num-scenes "$TEST_SCENES" --num-shards 4 --seed 1
"${SIM[@]}" --out "$RUN/tiny_train" --num-scenes "$N" --num-shards $(( (N + 749) / 750 )) --seed 0
# a dozen loader processes keep the tiny encoder fed on a GPU (benchmarks/README.md)
spatial-alm pretrain-encoder --data "$RUN/tiny_train" --config experiments/encoder/tiny_binaural.yaml \
    --set epochs="$EPOCHS" --set channel_swap=true --set loss_weights.class_distance=1.0 \
    --set num_workers=$(( CORES > 13 ? 12 : CORES - 1 )) --out "$RUN/encoder"
spatial-alm evaluate-encoder --checkpoint "$RUN/encoder/model" --data "$RUN/tiny_test" --out "$RUN/encoder_eval"
spatial-alm finetune --data "$RUN/tiny_train" --encoder "$RUN/encoder/model" --config experiments/llm/smollm2_lora.yaml \
    --set train_questions="$TRAIN_QUESTIONS" --set num_workers=$(( CORES > 9 ? 8 : CORES - 1 )) --out "$RUN/llm"
if [ "${EVALUATE:-1}" != 0 ]; then
  spatial-alm evaluate --model "$RUN/llm/model" --data "$RUN/tiny_test" --batch-size 64 --out "$RUN/llm_eval"
fi
