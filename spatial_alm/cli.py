"""The ``spatial-alm`` command: one entry point, one subcommand per stage of the pipeline.

Each subcommand lives in ``spatial_alm/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; this module only parses and forwards.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name -> (module under spatial_alm.commands, one-line help)
COMMANDS = {
    "quickstart": ("quickstart", "the whole pipeline end to end on CPU (simulate, train, evaluate, report)"),
    "demo-rir": ("demo_rir", "render a room impulse response and a binaural pair, print checks, write WAVs"),
    "simulate": ("simulate", "simulate scenes from a recipe into a sharded HDF5 dataset (resumable, SLURM arrays)"),
    "dataset": ("dataset", "inspect, check, index a dataset folder or export scenes as WAV"),
    "pretrain-encoder": ("pretrain_encoder", "pretrain the spatial encoder (classes, DoA, distance) on a dataset"),
    "evaluate-encoder": ("evaluate_encoder", "score an encoder beside classical DoA baselines; JSON, Markdown, plots"),
    "finetune": ("finetune", "fine-tune the audio-LLM (projector, then LoRA or the built-in LLM) on spatial QA"),
    "evaluate": ("evaluate", "answer a dataset's questions with an audio-LLM; per-type table as BAT, JSON, Markdown"),
    "ask": ("ask", "ask an audio-LLM a question about a WAV file and print the answer"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spatial-alm",
        description="Spatial audio-language models: simulate rooms and scenes, build datasets, train, evaluate.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"spatial_alm.commands.{module_name}")
        command = sub.add_parser(name, help=help_text, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ValueError as err:  # bad input: a clear message, no traceback
        print(f"spatial-alm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
