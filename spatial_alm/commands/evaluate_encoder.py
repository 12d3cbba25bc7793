"""Evaluate a pretrained encoder on a dataset beside the classical DoA baselines.

Writes OUT/report.json, OUT/report.md, OUT/predictions.csv (every method's direction per scene) and
plots (predicted vs true azimuth, error histogram, polar error by direction). Metrics: detection mAP,
DoA accuracy at 20 degrees (great circle), mean angular error, lateral (front/back-folded) error,
distance error rate (0.5 m), DCASE SELD (clip-level), all beside a random-answer row, and
localisation per reverberation band for the encoder and the baselines (SRP-PHAT and MUSIC for arrays,
GCC-PHAT + Woodworth for heads), with scene-by-scene tests of the encoder against each baseline
(exact McNemar test on DoA within 20 degrees, Wilcoxon signed-rank test on the lateral error).

Example:
    spatial-alm evaluate-encoder --checkpoint out/encoder_tiny/model --data out/tiny_test --out out/eval_tiny
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spatial_alm.commands import require_dataset, require_model_dir, require_writable_dir
from spatial_alm.commands.choices import BASELINE_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="encoder directory (config.json + model.safetensors)")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (held-out scenes)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--baselines", nargs="*", choices=BASELINE_NAMES, default=None,
                        help="classical baselines to run (default: srp_phat music for arrays, "
                             "gcc_phat_woodworth for heads; give none to skip)")
    parser.add_argument("--max-scenes", type=int, default=None, help="evaluate the first N scenes only")
    parser.add_argument("--batch-size", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    require_model_dir(args.checkpoint, "--checkpoint", "config.json", "`spatial-alm pretrain-encoder`")
    require_dataset(args.data)
    for option, value in (("--max-scenes", args.max_scenes), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{option} {value}; allowed: >= 1")
    require_writable_dir(args.out)

    from spatial_alm.evaluation.encoder_report import evaluate_encoder

    evaluate_encoder(args.checkpoint, args.data, args.out, baselines=args.baselines, max_scenes=args.max_scenes,
                     batch_size=args.batch_size)
    print((args.out / "report.md").read_text())
    return 0
