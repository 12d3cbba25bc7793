"""Evaluate an audio-LLM on a dataset's questions: BAT's per-type table, model beside a random baseline.

Every question (or --max-questions drawn with --seed) is answered by greedy decoding; the answer
parser turns each answer into a prediction using the dataset's class names. Scores per type:
detection mAP (A, C), DoA accuracy at 20 degrees and DER at 0.5 m (B, D), yes/no accuracy with
direction and distance relations (E), and count, elevation, room, negative and description scores.
Unparseable answers count as wrong and are reported per type. The random row answers each
question with a random valid answer in its format. The encoder-head row answers from the model's own
encoder heads where they can (A-D, count, elevation; with a class-direction head also E and
negative, from the named classes' direction vectors); B and D are also compared with it question by
question (exact McNemar test). Yes/no types get balanced accuracy (50 for any constant answer) and
the share answered yes beside accuracy. The dataset must be at the model's sample rate and channel
count (those its encoder was trained on); another rate is refused, not resampled.

Writes OUT/report.json (tables plus every question, answer and parse), OUT/report.md, OUT/scores.png.

Example:
    spatial-alm evaluate --model out/llm_tiny/model --data out/tiny_test --out out/llm_tiny/eval \\
        --max-questions 500
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spatial_alm.commands import require_dataset, require_model_dir, require_writable_dir, resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True,
                        help="audio-LLM directory (the model/ folder of `spatial-alm finetune`)")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder written by `spatial-alm simulate`")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--max-questions", type=int, default=None, metavar="N",
                        help="answer N questions drawn at random (seeded) instead of all")
    parser.add_argument("--batch-size", type=int, default=8, help="questions generated together (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest answer in tokens (default 48)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the question draw and the random answers")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")


def run(args: argparse.Namespace) -> int:
    require_model_dir(args.model, "--model", "audio_llm.json", "`spatial-alm finetune`")
    require_dataset(args.data)
    for option, value in (("--max-questions", args.max_questions), ("--batch-size", args.batch_size),
                          ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise ValueError(f"{option} {value}; allowed: >= 1")
    device = resolve_device(args.device)
    require_writable_dir(args.out)

    from spatial_alm.evaluation.qa_report import evaluate_qa, markdown_report

    report = evaluate_qa(args.model, args.data, args.out, max_questions=args.max_questions,
                         batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, seed=args.seed,
                         device=device)
    print(markdown_report(report))
    return 0
