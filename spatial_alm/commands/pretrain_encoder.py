"""Pretrain the spatial encoder on a dataset: classes, azimuth, elevation and distance (multitask).

The dataset's scenes are split into train and validation (--set val_fraction=...); every epoch ends
with a validation pass (loss, class mAP, DoA accuracy at 20 degrees) and a checkpoint in
OUT/checkpoints; the best model by validation loss is saved in OUT/model (config.json +
model.safetensors, loadable with SpatialEncoderModel.from_pretrained). TensorBoard logs go to OUT.

Interruptions: checkpoints and OUT/model are written atomically (a temporary folder, then a rename),
so a run killed or out of disk never leaves one that looks complete; a full disk stops the run with
an error naming the folder. Running the same command again resumes from the newest complete
checkpoint (a half-written one is skipped with a warning) and gives the same model as an
uninterrupted run; with more epochs (--set epochs=N) it continues. OUT/run.json records the config
and the dataset; rerunning into OUT with another dataset or other settings is refused, naming each
difference, unless --overwrite (delete OUT's checkpoints, model, summary and logs and start over).

Multi-GPU / multi-node: launch the same command with torchrun or accelerate, e.g.
    torchrun --nproc_per_node 8 -m spatial_alm.cli pretrain-encoder --data data/bat --config ... --out ...
bf16 mixed precision is used on CUDA unless the config says otherwise.

Example (CPU, ~10 minutes):
    spatial-alm pretrain-encoder --data out/tiny_train --config experiments/encoder/tiny_binaural.yaml \\
        --out out/encoder_tiny
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spatial_alm.commands import parse_overrides, require_dataset, require_file, require_writable_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="dataset folder written by `spatial-alm simulate`")
    parser.add_argument("--config", type=Path, required=True, help="pretraining config YAML (experiments/encoder/)")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, model/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field with a YAML value, e.g. --set epochs=2 (repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in --out: delete its checkpoints, model, summary and logs, also when they "
                             "were made from another dataset or config (refused without this flag)")


def run(args: argparse.Namespace) -> int:
    require_file(args.config, "--config")
    overrides = parse_overrides(args.overrides)
    require_dataset(args.data)

    from spatial_alm.training.pretrain import PretrainConfig, pretrain

    config = PretrainConfig.from_yaml(args.config, overrides)
    require_writable_dir(args.out)
    summary = pretrain(config, args.data, args.out, overwrite=args.overwrite)
    last = summary["history"][-1] if summary["history"] else {}
    print(json.dumps({"model_dir": summary["model_dir"], "steps": summary["steps"],
                      "wall_time_s": round(summary["wall_time_s"], 1), "last_epoch": last}, indent=2))
    return 0
