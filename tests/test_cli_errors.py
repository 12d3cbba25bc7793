"""Every user error of the `spatial-alm` command is one line `spatial-alm CMD: error: ...` naming the
option or file, the value and what is allowed, with exit code 2 (130 for Ctrl-C) and no traceback;
`--help` answers without importing torch, torchaudio or transformers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO_ROOT

from spatial_alm.cli import COMMANDS, main

RECIPE = REPO_ROOT / "simulation" / "tiny_binaural.yaml"
LLM_CONFIG = REPO_ROOT / "tests" / "configs" / "toy_builtin_llm.yaml"
ENCODER_CONFIG = REPO_ROOT / "experiments" / "encoder" / "tiny_binaural.yaml"
ENCODER = {"preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
           "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [32, 8]}}
HEAVY = ("torch", "torchaudio", "transformers")


# -- fast help ------------------------------------------------------------------------------------

def test_building_the_parser_imports_no_model_library():
    code = ("import sys, spatial_alm.cli; spatial_alm.cli.build_parser(); "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("argv", [[], *([name] for name in COMMANDS),
                                  *(["dataset", action] for action in ("info", "check", "index", "export-wav"))])
def test_every_help_exits_0(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: spatial-alm" in capsys.readouterr().out


def test_light_choices_equal_their_registries():
    from spatial_alm.commands.choices import BASELINE_NAMES, DEFAULT_QUICKSTART_CONFIG, QUICKSTART_STAGES
    from spatial_alm.evaluation.baselines import BASELINES
    from spatial_alm.quickstart import DEFAULT_CONFIG, STAGES

    assert BASELINE_NAMES == tuple(sorted(BASELINES))
    assert QUICKSTART_STAGES == tuple(STAGES)
    assert DEFAULT_QUICKSTART_CONFIG == DEFAULT_CONFIG


# -- fixtures: the tiny files each case needs --------------------------------------------------------

@pytest.fixture(scope="module")
def files(make_toy_dataset, tmp_path_factory):
    """Paths the cases name: a tiny dataset, a truncated copy, an 8 kHz dataset, run folders of a toy
    encoder and a toy audio-LLM, broken YAML, a non-SOFA file and sound files."""
    from transformers import LlamaForCausalLM

    from spatial_alm.data import dataset_info
    from spatial_alm.data.generate import generate_dataset
    from spatial_alm.models.audio_llm import AudioLLM, build_prompt
    from spatial_alm.models.projector import ProjectorConfig
    from spatial_alm.models.text import small_llama_config, train_tokenizer
    from spatial_alm.scenes import SceneRecipe
    from spatial_alm.training.finetune import read_qa_table
    from spatial_alm.training.pretrain import PretrainConfig, build_model

    root = tmp_path_factory.mktemp("cli_errors")
    data = make_toy_dataset(4)
    truncated = root / "truncated"
    shutil.copytree(data, truncated)
    for shard in truncated.glob("*.h5"):
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    data_8k = root / "data_8k"
    generate_dataset(SceneRecipe.from_yaml(RECIPE, {"duration_s": 0.5, "fs_hz": 8000}), data_8k, seed=0,
                     num_scenes=2, num_shards=1, progress=False)

    torch.manual_seed(0)
    qa = read_qa_table(data)
    tokenizer = train_tokenizer([build_prompt(q) for q in qa["question"]] + list(qa["answer"]), vocab_size=400)
    encoder = build_model(PretrainConfig.from_dict(ENCODER), dataset_info(data))
    encoder.save_pretrained(root / "encoder_run" / "model")
    llm = LlamaForCausalLM(small_llama_config(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2,
                                              max_position_embeddings=256))
    AudioLLM(encoder, llm, tokenizer, ProjectorConfig(num_queries=4, num_layers=1, num_heads=2)).save_pretrained(
        root / "llm_run" / "model")

    (root / "broken.yaml").write_text("stages: [1, 2\nbatch_size: : 3\n")
    (root / "not_a_sofa.sofa").write_text("this is not an HDF5 file\n")
    (root / "blocker").write_text("a file where a folder is expected\n")
    (root / "text.wav").write_text("not audio\n")
    t = np.arange(8000) / 16000
    stereo = 0.1 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1)  # (T, C)
    sf.write(root / "ok.wav", stereo, 16000)
    with_nan = stereo.copy()
    with_nan[100, 1] = np.nan
    sf.write(root / "nan.wav", with_nan, 16000, subtype="FLOAT")
    clipped = stereo.copy()
    clipped[1000:1100] = 1.0
    sf.write(root / "clipped.wav", clipped, 16000, subtype="FLOAT")
    return {"root": root, "data": data, "truncated": truncated, "data_8k": data_8k,
            "encoder_run": root / "encoder_run", "encoder": root / "encoder_run" / "model",
            "llm_run": root / "llm_run", "model": root / "llm_run" / "model"}


def test_dataset_info_and_check_import_no_language_model(files):
    code = ("import sys; from spatial_alm.cli import main; "
            f"codes = [main(['dataset', action, {str(files['data'])!r}]) for action in ('info', 'check')]; "
            "print(codes, [m for m in ('transformers', 'peft') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[0, 0] []"


SIMULATE = ["simulate", "--recipe", str(RECIPE), "--out", "{root}/sim", "--num-scenes", "2", "--no-progress",
            "--set", "duration_s=0.5"]
FINETUNE = ["finetune", "--data", "{data}", "--encoder", "{encoder}", "--config", str(LLM_CONFIG),
            "--out", "{root}/ft"]
PRETRAIN = ["pretrain-encoder", "--data", "{data}", "--config", str(ENCODER_CONFIG), "--out", "{root}/pre"]
EVALUATE = ["evaluate", "--model", "{model}", "--data", "{data}", "--out", "{root}/eval", "--max-questions", "2"]
EVALUATE_ENCODER = ["evaluate-encoder", "--checkpoint", "{encoder}", "--data", "{data}", "--out", "{root}/ee"]
ASK = ["ask", "--model", "{model}", "--audio", "{root}/ok.wav", "--question", "Where is the sound?",
       "--max-new-tokens", "2"]


def with_(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option``'s value replaced."""
    out = list(argv)
    out[out.index(option) + 1] = value
    return out


NO_GPU = not torch.cuda.is_available()

# (id, argv, expected in stderr, exit code); "{name}" is a path of the `files` fixture
CASES = [
    # mistyped paths
    ("recipe-missing", with_(SIMULATE, "--recipe", "{root}/nope.yaml"), "--recipe {root}/nope.yaml: no such file", 2),
    ("data-missing", with_(FINETUNE, "--data", "{root}/nope"), "--data {root}/nope: no such folder", 2),
    ("checkpoint-missing", with_(EVALUATE_ENCODER, "--checkpoint", "{root}/nope"),
     "--checkpoint {root}/nope: no such folder", 2),
    ("config-missing", with_(PRETRAIN, "--config", "{root}/nope.yaml"), "--config {root}/nope.yaml: no such file", 2),
    ("quickstart-config-missing", ["quickstart", "--config", "{root}/nope.yaml", "--out", "{root}/qs"],
     "--config {root}/nope.yaml: file not found", 2),
    ("dataset-info-missing", ["dataset", "info", "{root}/nope"], "{root}/nope: no such folder", 2),
    ("audio-missing", with_(ASK, "--audio", "{root}/nope.wav"), "--audio {root}/nope.wav: no such file", 2),
    # a run folder instead of its model/ subfolder
    ("encoder-run-folder", with_(FINETUNE, "--encoder", "{encoder_run}"), "did you mean {encoder_run}/model", 2),
    ("checkpoint-run-folder", with_(EVALUATE_ENCODER, "--checkpoint", "{encoder_run}"),
     "did you mean {encoder_run}/model", 2),
    ("model-run-folder", with_(EVALUATE, "--model", "{llm_run}"), "did you mean {llm_run}/model", 2),
    ("ask-run-folder", with_(ASK, "--model", "{llm_run}"), "did you mean {llm_run}/model", 2),
    # a truncated shard
    ("finetune-truncated", with_(FINETUNE, "--data", "{truncated}"), "(truncated or changed)", 2),
    ("evaluate-truncated", with_(EVALUATE, "--data", "{truncated}"), "(truncated or changed)", 2),
    ("pretrain-truncated", with_(PRETRAIN, "--data", "{truncated}"), "(truncated or changed)", 2),
    ("evaluate-encoder-truncated", with_(EVALUATE_ENCODER, "--data", "{truncated}"), "dataset check", 2),
    ("dataset-info-truncated", ["dataset", "info", "{truncated}"], "dataset check", 2),
    # an --out that cannot be written
    ("simulate-out-under-file", with_(SIMULATE, "--out", "{root}/blocker/sim"),
     "--out {root}/blocker/sim: not writable", 2),
    ("evaluate-out-is-file", with_(EVALUATE, "--out", "{root}/blocker"), "--out {root}/blocker: a file", 2),
    ("finetune-out-under-file", with_(FINETUNE, "--out", "{root}/blocker/ft"), "not writable (Not a directory)", 2),
    # a receiver file that is not SOFA
    ("not-a-sofa", [*with_(SIMULATE, "--out", "{root}/sim_sofa"), "--set", "receiver.type=sofa",
                    "--set", "receiver.sofa_path={root}/not_a_sofa.sofa"], "not_a_sofa.sofa: not a SOFA file", 2),
    # broken YAML
    ("recipe-broken-yaml", with_(SIMULATE, "--recipe", "{root}/broken.yaml"),
     "recipe {root}/broken.yaml: not valid YAML (line 2", 2),
    ("config-broken-yaml", with_(FINETUNE, "--config", "{root}/broken.yaml"),
     "finetune config {root}/broken.yaml: not valid YAML (line 2", 2),
    ("quickstart-broken-yaml", ["quickstart", "--config", "{root}/broken.yaml", "--out", "{root}/qs"],
     "not valid YAML (line 2", 2),
    ("set-broken-yaml", [*FINETUNE, "--set", "lora=[1, 2"],
     "--set 'lora=[1, 2': the value is not valid YAML (line 1", 2),
    # wrong-typed and out-of-range settings
    ("batch-size-abc", [*FINETUNE, "--set", "batch_size=abc"],
     "finetune config: batch_size = 'abc'; allowed: an integer", 2),
    ("learning-rate-abc", [*PRETRAIN, "--set", "learning_rate=abc"],
     "pretrain config: learning_rate = 'abc'; allowed: a number", 2),
    ("lora-r-negative", [*FINETUNE, "--set", "lora.r=-1"], "finetune config: lora.r = -1; allowed: an integer >= 1", 2),
    ("lora-dropout-1", [*FINETUNE, "--set", "lora.dropout=1.0"], "lora.dropout = 1.0; allowed: a number in [0, 1)", 2),
    ("projector-type", [*FINETUNE, "--set", "projector.type=transformer"],
     "finetune config: projector.type = 'transformer'; allowed: one of", 2),
    ("projector-unknown-key", [*FINETUNE, "--set", "projector.queries=4"], "unknown key(s) ['projector.queries']", 2),
    ("mixed-precision-no", [*PRETRAIN, "--set", "mixed_precision=no"], "mixed_precision = False; allowed: a string", 2),
    ("loss-weight-negative", [*PRETRAIN, "--set", "loss_weights.classes=-1"], "loss_weights.classes = -1", 2),
    ("recipe-field", [*SIMULATE, "--set", "room.rt60_s=-1"], "room.rt60_s = -1", 2),
    ("num-shards-0", [*SIMULATE, "--num-shards", "0"], "--num-shards 0; allowed: 1 .. --num-scenes (2)", 2),
    ("shard-index-out-of-range", [*SIMULATE, "--num-shards", "2", "--shard-index", "2"],
     "--shard-index 2; allowed: 0 .. 1", 2),
    ("workers-0", [*SIMULATE, "--workers", "0"], "--workers 0; allowed: >= 1", 2),
    ("num-scenes-not-int", [*SIMULATE[:-2], "--num-scenes", "abc"], "invalid int value: 'abc'", 2),  # argparse's
    ("max-questions-0", with_(EVALUATE, "--max-questions", "0"), "--max-questions 0; allowed: >= 1", 2),
    # evaluate takes exactly one of --data and --recordings (argparse's messages, as evaluate-encoder's)
    ("evaluate-data-and-recordings", [*EVALUATE, "--recordings", "{root}"],
     "argument --recordings: not allowed with argument --data", 2),
    ("evaluate-neither-data-nor-recordings", [arg for arg in EVALUATE if arg not in ("--data", "{data}")],
     "one of the arguments --data --recordings is required", 2),
    ("evaluate-recordings-missing", [*EVALUATE[:3], "--recordings", "{root}/nope", *EVALUATE[5:]],
     "--recordings {root}/nope: no such folder", 2),
    ("evaluate-labels-with-data", [*EVALUATE, "--labels", "{root}/labels.csv"],
     "--labels {root}/labels.csv: only with --recordings", 2),
    ("compare-not-name-dir", [*EVALUATE_ENCODER, "--compare", "{encoder}"], "allowed: NAME=DIR", 2),
    ("compare-missing", [*EVALUATE_ENCODER, "--compare", "sphere={root}/nope"], "--compare sphere", 2),
    ("baseline-unknown", [*EVALUATE_ENCODER, "--baselines", "esprit"], "invalid choice: 'esprit'", 2),  # argparse's
    # devices
    ("bad-device", [*EVALUATE, "--device", "gpu"], "--device 'gpu': not a torch device", 2),
    *([("cuda-without-gpu", [*ASK, "--device", "cuda"], "--device cuda: no CUDA GPU is available", 2)]
      if NO_GPU else []),
    # audio the model cannot answer about, and data at another rate
    ("ask-not-audio", with_(ASK, "--audio", "{root}/text.wav"), "text.wav: not readable as audio", 2),
    ("ask-nan", with_(ASK, "--audio", "{root}/nan.wav"), "nan.wav: 1 NaN or infinite sample(s)", 2),
    ("evaluate-other-rate", with_(EVALUATE, "--data", "{data_8k}"),
     "2 channels at 8000 Hz; allowed: the model's 2 channels at 16000 Hz", 2),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own errors
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, expected, code", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_user_error_is_one_line_without_traceback(files, argv, expected, code, capsys):
    argv = [arg.format(**files) for arg in argv]
    got, out, err = run_cli(argv, capsys)
    assert "Traceback" not in out + err
    assert [line for line in err.splitlines() if "error:" in line] == [err.strip().splitlines()[-1]], err
    assert sum("error:" in line for line in err.splitlines()) == 1, err
    assert expected.format(**files) in err
    assert got == code


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_one_line(files, tmp_path, capsys):
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        code, _, err = run_cli([arg.format(**files) for arg in with_(EVALUATE, "--out", str(readonly / "eval"))],
                               capsys)
    finally:
        readonly.chmod(0o700)
    assert code == 2 and "not writable (Permission denied)" in err and "Traceback" not in err


def test_clipped_audio_is_answered_with_one_warning(files, capsys):
    code, _, err = run_cli([arg.format(**files) for arg in with_(ASK, "--audio", "{root}/clipped.wav")], capsys)
    assert code == 0  # the toy model may answer with an empty string
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "200 sample(s) at full scale" in warnings[0] and "error:" not in err


def test_other_sample_rate_is_resampled_and_said(files, capsys):
    t = np.arange(4000) / 8000
    sf.write(files["root"] / "ok_8k.wav", 0.1 * np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1), 8000)
    code, _, err = run_cli([arg.format(**files) for arg in with_(ASK, "--audio", "{root}/ok_8k.wav")], capsys)
    assert code == 0 and "resampled from 8000 Hz to 16000 Hz" in err and "error:" not in err


def test_ctrl_c_is_one_line_and_exit_130(files, monkeypatch, capsys):
    import spatial_alm.data.generate as generate_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate_module, "generate_dataset", interrupted)
    code, _, err = run_cli([arg.format(**files) for arg in with_(SIMULATE, "--out", "{root}/sim_ctrl_c")], capsys)
    assert code == 130 and "Traceback" not in err
    assert err.strip() == "spatial-alm simulate: error: interrupted (Ctrl-C); run the same command again to resume"


def test_an_internal_error_keeps_its_traceback(files, monkeypatch):
    import spatial_alm.data.generate as generate_module

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(generate_module, "generate_dataset", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main([arg.format(**files) for arg in with_(SIMULATE, "--out", "{root}/sim_bug")])


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(files):
    """`spatial-alm dataset info X --json | head -1`: no error line, no traceback."""
    argv = ["dataset", "info", str(files["data"]), "--json"]
    code = f"import sys; from spatial_alm.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away before the rest is written
    err = proc.stderr.read().decode()
    assert (proc.wait(), err) in ((0, ""), (141, ""))
