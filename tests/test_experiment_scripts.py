"""The committed CPU recipes (``experiments/**/*.sh``) run through with stand-ins for ``spatial-alm`` and
``python`` that only record their arguments. Every recorded command must then parse with the real CLI, its
recipe or config must load with its ``--set`` overrides, and each input (dataset, encoder, model) must be an
output of an earlier command of the same script: the checks a multi-hour run would otherwise make only when
it reaches that line.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from spatial_alm.cli import build_parser
from spatial_alm.commands import parse_overrides
from spatial_alm.scenes import SceneRecipe
from spatial_alm.training.finetune import FinetuneConfig
from spatial_alm.training.pretrain import PretrainConfig

REPO_ROOT = Path(__file__).resolve().parents[1]

# writes its argv as one JSON line to $CALL_LOG and makes the --out folder (a report's `| tee` writes there;
# a training run's model/ is a later run's init_model)
RECORDER = """\
import json, os, sys
argv = [os.path.basename(sys.argv[1])] + sys.argv[2:]
with open(os.environ["CALL_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
if "--out" in argv:
    out = argv[argv.index("--out") + 1]
    os.makedirs(os.path.join(out, "model") if argv[1] in ("pretrain-encoder", "finetune") else out, exist_ok=True)
"""


def run_script(script: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """Run ``script`` with recording stand-ins first on PATH; (the process, the recorded argv lists)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (tmp_path / "recorder.py").write_text(RECORDER)
    for name in ("spatial-alm", "python"):
        shim = fake_bin / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp_path / "recorder.py"}" "$0" "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.jsonl"
    full_env = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}", "CALL_LOG": str(log),
                "OUT": str(tmp_path / "out"), "RESULTS": str(tmp_path / "results"), **env}
    done = subprocess.run(["bash", str(REPO_ROOT / script)], env=full_env, capture_output=True, text=True,
                          timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def check_calls(calls: list[list[str]], results_dir: Path) -> dict[str, list]:
    """Parse and load every recorded call; assert the data flow. Returns the parsed calls per command; a
    finetune call's loaded config is its ``loaded`` attribute."""
    parser = build_parser()
    datasets, encoders, models, recordings = set(), set(), set(), set()
    by_command: dict[str, list] = {}

    def need(path, made: set, what: str, argv: list[str]):
        assert str(path) in made, f"{' '.join(argv)}: {what} {path} is not made by an earlier command"

    for argv in calls:
        if argv[0] == "python":
            script, options = argv[1], argv[2:]
            assert (REPO_ROOT / script).is_file(), f"python {script}: no such script"
            need(options[options.index("--encoder") + 1], encoders, "encoder", argv)
            need(options[options.index("--data") + 1], datasets, "dataset", argv)
            continue
        assert argv[0] == "spatial-alm", argv
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"the CLI refuses: {' '.join(argv)}")
        by_command.setdefault(args.command, []).append(args)
        if args.command == "simulate":
            SceneRecipe.from_yaml(args.recipe, parse_overrides(args.overrides))
            datasets.add(str(args.out))
        elif args.command == "pretrain-encoder":
            PretrainConfig.from_yaml(args.config, parse_overrides(args.overrides))
            need(args.data, datasets, "--data", argv)
            encoders.add(str(args.out / "model"))
        elif args.command == "finetune":
            config = args.loaded = FinetuneConfig.from_yaml(args.config, parse_overrides(args.overrides))
            need(args.data, datasets, "--data", argv)
            need(args.encoder, encoders, "--encoder", argv)
            if config.init_model is not None:
                need(config.init_model, models, "init_model", argv)
            models.add(str(args.out / "model"))
        elif args.command == "dataset":
            recordings.add(str(args.out))
        elif args.command in ("evaluate-encoder", "evaluate"):
            model = args.checkpoint if args.command == "evaluate-encoder" else args.model
            need(model, encoders if args.command == "evaluate-encoder" else models, "model", argv)
            for compared in getattr(args, "compare", []):
                need(compared.partition("=")[2], encoders, "--compare", argv)
            if args.data is not None:
                need(args.data, datasets, "--data", argv)
            else:
                need(args.recordings, recordings, "--recordings", argv)
            assert args.out.parent == results_dir or results_dir in args.out.parents, argv
        else:
            pytest.fail(f"unexpected command {argv}")
    return by_command


@pytest.mark.parametrize("head", ["sphere", "kemar", "tetra", "cipic", "cipic_broadband"])
def test_audio_llm_cpu_recipe(tmp_path, head):
    done, calls = run_script("experiments/llm/run_cpu_smollm2.sh", tmp_path, HEAD=head, LLM_PRECISION="no")
    assert done.returncode == 0, done.stderr
    runs = check_calls(calls, tmp_path / "results")
    finetunes = [args.loaded for args in runs["finetune"]]
    # on a CPU without bf16 the LoRA steps run in float32: "no" must reach the config as the string
    assert {config.mixed_precision for config in finetunes} == {"no"}
    # KEMAR and the array: a first run, then its last phase from that model at a fifth of the learning rate
    assert len(finetunes) == (1 if head == "sphere" else 2)
    if head != "sphere":
        assert finetunes[1].learning_rate == pytest.approx(finetunes[0].learning_rate / 5)
    # the evaluations read the last model (the final one of the recipe)
    assert {str(args.model) for args in runs["evaluate"]} == {str(runs["finetune"][-1].out / "model")}
    # the yes/no types again on 1000 scenes of another seed (KEMAR, array, CIPIC)
    seeds = [args.seed for args in runs["simulate"]]
    assert seeds[:2] == [0, 1] and len(set(seeds)) == len(seeds)
    assert len(runs["evaluate"]) == (1 if head == "sphere" else 2)
    # CIPIC: the training scenes through the training heads, every test set through the held-out heads only
    if head.startswith("cipic"):
        recipes = [SceneRecipe.from_yaml(args.recipe, parse_overrides(args.overrides)) for args in runs["simulate"]]
        assert [recipe.receiver.split for recipe in recipes] == ["train", "test", "test"]
    # the broadband path: five broadband sounds everywhere, the SNR 10-60 dB in training only, the coherence plane,
    # the 8-map fusion stem and the last phase over twice the questions
    if head == "cipic_broadband":
        assert {tuple(recipe.corpus.options["labels"]) for recipe in recipes} == {
            ("rain", "clapping", "keyboard_typing", "speech_babble", "footsteps")}
        assert tuple(recipes[0].noise.snr_db) == (10, 60) and recipes[1].noise.snr_db == recipes[2].noise.snr_db
        assert tuple(recipes[1].noise.snr_db) != (10, 60)
        (encoder,) = runs["pretrain-encoder"]
        config = PretrainConfig.from_yaml(encoder.config, parse_overrides(encoder.overrides))
        assert config.features["coherence"] and config.channel_swap and config.epochs == 12
        assert config.encoder["stem_channels"] == 8
        assert finetunes[1].train_questions == 2 * finetunes[0].train_questions
        # its figures were measured with 16 questions generated together
        assert {args.batch_size for args in runs["evaluate"]} == {16}


def test_audio_llm_cpu_recipe_unknown_head(tmp_path):
    done, calls = run_script("experiments/llm/run_cpu_smollm2.sh", tmp_path, HEAD="dummy")
    assert done.returncode == 2 and "allowed: sphere, kemar, tetra, cipic, cipic_broadband" in done.stderr
    assert calls == []


@pytest.mark.parametrize("script", ["experiments/encoder/run_cpu.sh", "experiments/encoder/cross_head_cpu.sh"])
def test_encoder_cpu_recipes(tmp_path, script):
    done, calls = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    runs = check_calls(calls, tmp_path / "results")
    assert runs["simulate"] and runs["pretrain-encoder"] and runs["evaluate-encoder"]
