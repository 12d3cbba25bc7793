"""Run the whole stack end to end: simulate -> pretrain the encoder -> fine-tune the audio-LLM -> evaluate -> report.

With no arguments it runs the CPU default (experiments/quickstart/cpu_default.yaml: the tiny binaural
recipe, the tiny encoder, SmolLM2-135M-Instruct with LoRA; within 15 minutes on 2 CPU cores) into
out/quickstart and ends by printing where the report is and its headline numbers. Every stage shows
a progress bar. Running it again reuses the stages that finished with the same settings, resumes an
interrupted one from its checkpoints and redoes what a changed setting affects; --redo STAGE forces a
stage and the ones after it.

Ablations and larger runs are other configs (experiments/quickstart/*.yaml, see experiments/README.md):
    spatial-alm quickstart --config experiments/quickstart/ablation_no_phase.yaml --out out/qs_no_phase
Any field can be overridden, e.g. --set train_scenes=400 --set encoder_overrides.epochs=2.

Outputs: OUT/report/report.md (+ summary.json and PNG plots), OUT/data/{train,test},
OUT/encoder, OUT/encoder_eval, OUT/llm, OUT/qa_eval, OUT/quickstart_state.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spatial_alm.commands import parse_overrides, require_writable_dir
from spatial_alm.commands.choices import DEFAULT_QUICKSTART_CONFIG as DEFAULT_CONFIG
from spatial_alm.commands.choices import QUICKSTART_STAGES as STAGES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/quickstart"),
                        help="run folder (default: out/quickstart)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="quickstart config YAML (default: experiments/quickstart/cpu_default.yaml of this "
                             "checkout)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field with a YAML value, e.g. --set train_scenes=400 "
                             "(repeatable)")
    parser.add_argument("--redo", choices=STAGES, default=None,
                        help="start this stage and every later one over instead of reusing them")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def run(args: argparse.Namespace) -> int:
    if not args.config.is_file():
        raise ValueError(f"--config {args.config}: file not found (the default lives in a clone of the repository; "
                         "pass a quickstart config YAML)")
    overrides = parse_overrides(args.overrides)

    from spatial_alm.evaluation.run_report import headline_lines
    from spatial_alm.quickstart import load_quickstart_config, run_quickstart

    config = load_quickstart_config(args.config, overrides)
    require_writable_dir(args.out)
    summary = run_quickstart(config, args.out, redo=args.redo, progress=not args.no_progress)
    total = sum(summary["wall_time_s"].values())
    print(f"\nReport: {args.out / 'report' / 'report.md'}  (stages took {total / 60:.1f} min in all)")
    for line in headline_lines(summary):
        print("  " + line)
    return 0
