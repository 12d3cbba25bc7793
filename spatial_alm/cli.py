"""The ``spatial-alm`` command: one entry point, one subcommand per stage of the pipeline.

Each subcommand lives in ``spatial_alm/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; this module only parses and forwards. A command module imports only light things
at its top (argparse, pathlib, ``spatial_alm.commands``): torch, torchaudio and transformers are
imported inside ``run``, so ``--help`` answers at once.

User errors end with one line ``spatial-alm COMMAND: error: ...`` on stderr and no traceback: exit 2
for bad input (ValueError, a missing, unreadable or unwritable file, broken YAML), 130 for Ctrl-C.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
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


# commands whose interrupted work resumes when the same command runs again
RESUMABLE = ("simulate", "pretrain-encoder", "finetune", "quickstart")
# OSError numbers that are the user's input (a path), not the machine: exit 2 like any bad input
INPUT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_error_text(err: OSError) -> str:
    """``PATH: No such file or directory`` (the file first) or the message of an OSError raised with one."""
    if err.filename is not None and err.strerror:
        target = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.filename}{target}: {err.strerror}"
    return str(err) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    import yaml

    args = build_parser().parse_args(argv)
    prefix = f"spatial-alm {args.command}: error:"
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        again = "; run the same command again to resume" if args.command in RESUMABLE else ""
        print(f"{prefix} interrupted (Ctrl-C){again}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output closed early (`... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141  # as a shell reports a process ended by SIGPIPE
    except ValueError as err:  # bad input: a clear message, no traceback
        print(f"{prefix} {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # a path that does not exist, cannot be read or written
        print(f"{prefix} {_one_line(_os_error_text(err))}", file=sys.stderr)
        return 2 if err.errno in INPUT_ERRNOS or err.errno is None else 1
    except yaml.YAMLError as err:
        from spatial_alm.config import yaml_error_text

        print(f"{prefix} not valid YAML ({yaml_error_text(err)})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
