"""Training survives interruption (issue 19): atomic checkpoints and models, resume from the newest
complete checkpoint, exact reproduction of an uninterrupted run, refusal of a rerun with other
settings (unless --overwrite), and a clear error on a full disk. Toy runs on the test datasets."""

import errno
import json
import logging
import re
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

import spatial_alm.models.audio_llm as audio_llm_module
import spatial_alm.models.encoder as encoder_module
import spatial_alm.training.pretrain as pretrain_module
from spatial_alm.cli import main
from spatial_alm.data import dataset_info
from spatial_alm.models.audio_llm import AudioLLM
from spatial_alm.training.finetune import FinetuneConfig, finetune
from spatial_alm.training.pretrain import PretrainConfig, build_model, pretrain

PRETRAIN = {"preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
            "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [16, 8], "dropout": 0.1},
            "batch_size": 8, "num_workers": 0, "val_fraction": 0.25, "direction_sigma_deg": 5.0, "epochs": 3}
FINETUNE = {"llm": "builtin", "projector": {"type": "qformer", "num_queries": 4, "num_layers": 1, "num_heads": 2},
            "builtin_llm": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 256},
            "tokenizer_vocab_size": 400, "stages": [2], "stage2_curriculum": ["III"],
            "stage2_epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "val_fraction": 0.25, "max_new_tokens": 4,
            "warmup_fraction": 0.0}
ENCODER = {"preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
           "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [32, 8]}}


def _weights(folder) -> dict:
    """Every tensor of every safetensors file under ``folder``, keyed by file and name."""
    return {f"{path.relative_to(folder)}:{name}": tensor for path in sorted(folder.rglob("*.safetensors"))
            for name, tensor in load_file(path).items()}


def _assert_same_weights(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa and wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])]


def _assert_nothing_half_written(run_dir) -> None:
    """No leftover temporary folder, and every model folder with a config also has its weights."""
    assert not [p for p in run_dir.rglob("*.tmp")] and not [p for p in run_dir.rglob("*.old")]
    for config in run_dir.rglob("config.json"):
        if config.parent.name in ("model", "encoder"):
            assert (config.parent / "model.safetensors").is_file(), config.parent


def _steps(run_dir) -> list[str]:
    return sorted((p.name for p in (run_dir / "checkpoints").iterdir()), key=lambda n: int(n.split("-")[1]))


def _half_write(checkpoint, how: str) -> None:
    """Leave ``checkpoint`` as a kill during its save would: a .tmp folder (the atomic writer's), a
    folder without progress.json, or a folder whose weights file was cut short."""
    if how == "tmp folder":
        checkpoint.rename(checkpoint.with_name(checkpoint.name + ".tmp"))
        (checkpoint.with_name(checkpoint.name + ".tmp") / "progress.json").unlink()
    elif how == "no progress.json":
        (checkpoint / "progress.json").unlink()
    else:
        weights = next(checkpoint.rglob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:100])


@pytest.fixture(scope="module")
def pretrain_data(make_toy_dataset):
    return make_toy_dataset(24)


@pytest.fixture(scope="module")
def pretrained(pretrain_data, tmp_path_factory):
    """An uninterrupted 3-epoch toy pretraining run (6 steps): (run folder, summary)."""
    run_dir = tmp_path_factory.mktemp("pretrain") / "run"
    summary = pretrain(PretrainConfig.from_dict(PRETRAIN), pretrain_data, run_dir, progress=False)
    assert _steps(run_dir) == ["step-4", "step-6"]
    return run_dir, summary


@pytest.mark.parametrize("how", ["tmp folder", "no progress.json", "truncated weights"])
def test_pretrain_resumes_past_a_checkpoint_killed_while_written(pretrained, pretrain_data, tmp_path, caplog, capsys,
                                                                  how):
    reference, summary = pretrained
    run_dir = shutil.copytree(reference, tmp_path / "run")
    _half_write(run_dir / "checkpoints" / "step-6", how)
    with caplog.at_level(logging.WARNING):
        again = pretrain(PretrainConfig.from_dict(PRETRAIN), pretrain_data, run_dir, progress=False)
    assert ("step-6.tmp (left by an interrupted save)" if how == "tmp folder" else "skipping checkpoint") in caplog.text
    assert f"resuming from {run_dir / 'checkpoints' / 'step-4'}" in capsys.readouterr().out
    assert again["history"] == summary["history"]  # epoch 3 trained again, exactly as before
    assert _steps(run_dir) == ["step-4", "step-6"] and (run_dir / "checkpoints" / "step-6" / "progress.json").is_file()
    _assert_same_weights(run_dir / "checkpoints" / "step-6", reference / "checkpoints" / "step-6")
    _assert_same_weights(run_dir / "model", reference / "model")
    _assert_nothing_half_written(run_dir)


def test_pretrain_resumed_after_a_kill_reproduces_the_uninterrupted_run(pretrained, pretrain_data, tmp_path,
                                                                       monkeypatch):
    reference, summary = pretrained
    run_dir, calls, real_loss = tmp_path / "run", [], pretrain_module.multitask_loss

    def killed_in_epoch_2(*args, **kwargs):  # epoch 1: 2 training batches and 1 validation batch
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the job is killed during epoch 2's first batch
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "multitask_loss", killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainConfig.from_dict(PRETRAIN), pretrain_data, run_dir, progress=False)
    assert _steps(run_dir) == ["step-2"]
    monkeypatch.undo()
    resumed = pretrain(PretrainConfig.from_dict(PRETRAIN), pretrain_data, run_dir, progress=False)
    assert resumed["history"] == summary["history"]
    _assert_same_weights(run_dir / "checkpoints" / "step-6", reference / "checkpoints" / "step-6")
    _assert_same_weights(run_dir / "model", reference / "model")


def test_pretrain_refuses_other_settings_or_data_unless_overwrite(pretrained, pretrain_data, make_toy_dataset,
                                                                  tmp_path, capsys):
    reference, summary = pretrained
    run_dir = shutil.copytree(reference, tmp_path / "run")
    # the same config and data: already complete, the same summary
    assert pretrain(PretrainConfig.from_dict(PRETRAIN), pretrain_data, run_dir, progress=False) == summary
    with pytest.raises(ValueError, match=r"other settings \(config\.learning_rate: 0\.001 -> 0\.002\).*--overwrite"):
        pretrain(PretrainConfig.from_dict({**PRETRAIN, "learning_rate": 2e-3}), pretrain_data, run_dir,
                 progress=False)
    with pytest.raises(ValueError, match=r"config\.encoder\.embed_dim: 32 -> 16"):
        pretrain(PretrainConfig.from_dict({**PRETRAIN, "encoder": {**PRETRAIN["encoder"], "embed_dim": 16}}),
                 pretrain_data, run_dir, progress=False)
    with pytest.raises(ValueError, match=r"data\.num_scenes: 24 -> 16.*data\.seed: 0 -> 1"):
        pretrain(PretrainConfig.from_dict(PRETRAIN), make_toy_dataset(16, seed=1), run_dir, progress=False)
    # the CLI: a clean error, then --overwrite starts over with the new settings
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(PRETRAIN))
    argv = ["pretrain-encoder", "--data", str(pretrain_data), "--config", str(config), "--out", str(run_dir),
            "--set", "epochs=1", "--set", "learning_rate=0.002"]
    assert main(argv) == 2
    assert "config.learning_rate: 0.001 -> 0.002" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    redone = json.loads((run_dir / "summary.json").read_text())
    assert [h["epoch"] for h in redone["history"]] == [1] and redone["config"]["learning_rate"] == 0.002
    assert _steps(run_dir) == ["step-2"]
    assert json.loads((run_dir / "run.json").read_text())["config"]["learning_rate"] == 0.002
    assert main(argv) == 0 and "already complete" in capsys.readouterr().out  # now the same settings


def test_pretrain_on_a_full_disk_stops_clearly_and_resumes(pretrained, pretrain_data, tmp_path, monkeypatch):
    reference, _ = pretrained
    run_dir, calls, real_save_file = tmp_path / "run", [], encoder_module.save_file

    def disk_fills_up(state, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # the third weights file: some bytes, then no space left
            path.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save_file(state, path, *args, **kwargs)

    monkeypatch.setattr(encoder_module, "save_file", disk_fills_up)
    with pytest.raises(OSError, match=r"disk is full") as failure:
        pretrain(PretrainConfig.from_dict(PRETRAIN), pretrain_data, run_dir, progress=False)
    assert failure.value.errno == errno.ENOSPC
    folder = calls[-1].parent.parent if calls[-1].parent.name == "model" else calls[-1].parent
    assert str(folder).removesuffix(".tmp") in str(failure.value) and "run the same command again" in str(failure.value)
    _assert_nothing_half_written(run_dir)
    assert (run_dir / "model" / "model.safetensors").is_file()  # the best model so far, complete
    monkeypatch.undo()
    pretrain(PretrainConfig.from_dict(PRETRAIN), pretrain_data, run_dir, progress=False)
    _assert_same_weights(run_dir / "checkpoints" / "step-6", reference / "checkpoints" / "step-6")
    _assert_same_weights(run_dir / "model", reference / "model")


@pytest.fixture(scope="module")
def finetune_data(make_toy_dataset):
    return make_toy_dataset(16)


@pytest.fixture(scope="module")
def encoders(finetune_data, tmp_path_factory):
    """Two untrained toy encoders (different seeds), saved like a pretraining run's model/."""
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path_factory.mktemp(f"encoder{seed}") / "model"
        build_model(PretrainConfig.from_dict(ENCODER), dataset_info(finetune_data)).save_pretrained(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def finetuned(finetune_data, encoders, tmp_path_factory):
    """An uninterrupted toy fine-tuning run: stage2-III, 2 epochs (a checkpoint after each)."""
    run_dir = tmp_path_factory.mktemp("finetune") / "run"
    summary = finetune(FinetuneConfig.from_dict(FINETUNE), finetune_data, encoders[0], run_dir, progress=False)
    assert len(_steps(run_dir)) == 2
    return run_dir, summary


@pytest.mark.parametrize("how", ["tmp folder", "no progress.json"])
def test_finetune_resumes_past_a_checkpoint_killed_while_written(finetuned, finetune_data, encoders, tmp_path,
                                                                 caplog, capsys, how):
    reference, summary = finetuned
    run_dir = shutil.copytree(reference, tmp_path / "run")
    first, last = (run_dir / "checkpoints" / name for name in _steps(run_dir))
    _half_write(last, how)
    shutil.rmtree(run_dir / "model")  # killed while writing the last checkpoint: no final model yet
    with caplog.at_level(logging.WARNING):
        again = finetune(FinetuneConfig.from_dict(FINETUNE), finetune_data, encoders[0], run_dir, progress=False)
    assert ("interrupted save" if how == "tmp folder" else "skipping checkpoint") in caplog.text
    assert f"resuming from {first} (stage2-III, epoch 1)" in capsys.readouterr().out
    assert [(h["phase"], h["epoch"]) for h in again["history"]] == [(h["phase"], h["epoch"])
                                                                     for h in summary["history"]]
    assert _steps(run_dir) == _steps(reference) and (last / "progress.json").is_file()
    _assert_same_weights(run_dir / "model", reference / "model")  # the resumed run repeats the uninterrupted one
    AudioLLM.from_pretrained(run_dir / "model")
    _assert_nothing_half_written(run_dir)


def test_finetune_refuses_another_encoder_unless_overwrite(finetuned, finetune_data, encoders, tmp_path):
    reference, summary = finetuned
    run_dir = shutil.copytree(reference, tmp_path / "run")
    with pytest.raises(ValueError, match=r"other settings \(encoder\.sha256: '[0-9a-f]{64}' -> '[0-9a-f]{64}'\)"):
        finetune(FinetuneConfig.from_dict(FINETUNE), finetune_data, encoders[1], run_dir, progress=False)
    with pytest.raises(ValueError, match=r"config\.projector\.num_queries: 4 -> 8"):
        finetune(FinetuneConfig.from_dict({**FINETUNE, "projector": {**FINETUNE["projector"], "num_queries": 8}}),
                 finetune_data, encoders[0], run_dir, progress=False)
    config = FinetuneConfig.from_dict({**FINETUNE, "stage2_epochs": 1, "learning_rate": 1e-3})
    redone = finetune(config, finetune_data, encoders[1], run_dir, overwrite=True, progress=False)
    assert [(h["phase"], h["epoch"]) for h in redone["history"]] == [("stage2-III", 1)]
    assert len(_steps(run_dir)) == 1
    model = AudioLLM.from_pretrained(run_dir / "model")
    trained_on = encoders[1] / "model.safetensors"
    assert all(torch.equal(t, model.encoder.state_dict()[k]) for k, t in load_file(trained_on).items())


def test_finetune_on_a_full_disk_leaves_no_half_model_and_a_rerun_finishes(finetune_data, encoders, tmp_path,
                                                                          monkeypatch):
    run_dir, real_save_file = tmp_path / "run", audio_llm_module.save_file
    config = FinetuneConfig.from_dict({**FINETUNE, "stage2_epochs": 1})

    def disk_fills_up(state, path, *args, **kwargs):
        if path.parent.name == "model.tmp":  # the final model: its encoder is written, then the disk is full
            path.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save_file(state, path, *args, **kwargs)

    monkeypatch.setattr(audio_llm_module, "save_file", disk_fills_up)
    with pytest.raises(OSError, match=re.escape(f"{run_dir / 'model'}: the disk is full")):
        finetune(config, finetune_data, encoders[0], run_dir, progress=False)
    assert not (run_dir / "model").exists()
    _assert_nothing_half_written(run_dir)
    monkeypatch.undo()
    summary = finetune(config, finetune_data, encoders[0], run_dir, progress=False)  # complete: writes the model
    assert [(h["phase"], h["epoch"]) for h in summary["history"]] == [("stage2-III", 1)]
    AudioLLM.from_pretrained(run_dir / "model")
    _assert_nothing_half_written(run_dir)
