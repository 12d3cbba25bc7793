"""Encoder pretraining, resume and evaluation on a toy dataset rendered by the real pipeline."""

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from spatial_alm.cli import main
from spatial_alm.evaluation.encoder_report import by_head, evaluate_encoder, read_class_wise_predictions
from spatial_alm.evaluation.metrics import doa_accuracy
from spatial_alm.models.encoder import _cross_entropy
from spatial_alm.scenes.recipe import ReceiverConfig
from spatial_alm.training.common import split_indices, training_accelerator
from spatial_alm.training.pretrain import PretrainConfig, build_model, pretrain

TOY = {"preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
       "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [16, 8]},
       "batch_size": 8, "num_workers": 0, "val_fraction": 0.25, "direction_sigma_deg": 5.0}


@pytest.fixture(scope="module")
def toy_dataset(make_toy_dataset):
    return make_toy_dataset(24)


def test_soft_direction_targets():
    logits = torch.full((2, 360), -10.0)
    logits[0, 359] = 10.0  # predicts -1 deg
    logits[1, 180] = 10.0  # predicts 180 deg
    target = torch.tensor([0, 0])  # 0 deg
    plain = _cross_entropy(logits, target)
    assert plain == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item())
    per_scene = [_cross_entropy(logits[i : i + 1], target[i : i + 1], 5.0, circular=True).item() for i in range(2)]
    assert per_scene[0] < per_scene[1]  # a 1-degree miss across the wrap costs less than a 180-degree one
    linear = _cross_entropy(logits[:1], target[:1], 5.0, circular=False).item()
    assert per_scene[0] < linear  # without wrapping bin 359 is far from bin 0


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="unknown key.*'epoch'.*valid keys"):
        PretrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="val_fraction"):
        PretrainConfig(val_fraction=1.5)
    with pytest.raises(ValueError, match="preset"):
        PretrainConfig(preset="huge")


def test_srp_features_take_the_array_positions_from_the_receiver():
    config = PretrainConfig.from_dict({**TOY, "features": {**TOY["features"], "srp_phat": True}})
    info = {"fs_hz": 16000, "num_channels": 4, "duration_s": 1.0, "class_counts": {"dog": 1, "siren": 1}}
    model = build_model(config, info, ReceiverConfig(type="array", array="tetrahedral"))
    positions = torch.tensor(model.features.config.mic_positions_m)
    assert positions.shape == (4, 3)
    torch.testing.assert_close(positions.norm(dim=1), torch.full((4,), 0.042), atol=1e-3, rtol=0)  # 4.2 cm radius
    assert model.features.feature_names(4)[-1] == "srp_el60"
    with pytest.raises(ValueError, match="srp_phat needs a microphone array"):
        build_model(config, {**info, "num_channels": 2}, ReceiverConfig(type="sphere_head"))


def test_by_head_groups_the_scenes_of_each_head_in_name_order():
    receivers = ["cipic:subject_010", "cipic:subject_003", "cipic:subject_010", "sofa:KU100"]
    groups = by_head(receivers, lambda mask: mask.nonzero()[0].tolist())
    assert groups == {"head cipic:subject_003 (1 scenes)": [1], "head cipic:subject_010 (2 scenes)": [0, 2],
                      "head sofa:KU100 (1 scenes)": [3]}
    assert by_head(["sphere_head"] * 3, lambda mask: mask) == {}


def test_split_is_disjoint_and_seeded():
    train, val = split_indices(100, 0.1, seed=3)
    assert len(val) == 10 and not set(train) & set(val) and len(train) + len(val) == 100
    assert (split_indices(100, 0.1, seed=3)[1] == val).all()


def test_runs_of_different_precision_in_one_process(tmp_path):
    """An encoder in float32 and then an LLM in bf16 in the same process (the quickstart's stages): the
    second run gets its own precision instead of accelerate's "already initialized" error."""
    layer = torch.nn.Linear(4, 4)
    for precision, dtype in (("no", torch.float32), ("bf16", torch.bfloat16), ("no", torch.float32)):
        run = SimpleNamespace(mixed_precision=precision, gradient_accumulation_steps=1)
        accelerator = training_accelerator(run, tmp_path / precision)
        assert accelerator.mixed_precision == precision
        with accelerator.autocast():
            assert layer(torch.ones(2, 4)).dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pretrain_on_cuda_reads_scene_metadata_on_the_host(toy_dataset, tmp_path, monkeypatch):
    """Only the audio and the target batch go to the GPU; the scenes' per-source fields stay host tensors."""
    from spatial_alm.models.targets import EncoderTargets
    seen = []
    original = EncoderTargets.from_scenes.__func__

    def spy(cls, scenes, vocabulary):
        seen.extend(value.device.type for scene in scenes for value in scene.values() if torch.is_tensor(value))
        return original(cls, scenes, vocabulary)
    monkeypatch.setattr(EncoderTargets, "from_scenes", classmethod(spy))
    summary = pretrain(PretrainConfig.from_dict({**TOY, "epochs": 1, "channel_swap": True}), toy_dataset,
                       tmp_path / "run", progress=False)
    assert summary["steps"] > 0 and math.isfinite(summary["best_val_loss"])
    assert seen and set(seen) == {"cpu"}


def test_pretrain_resume_and_evaluate(toy_dataset, tmp_path):
    run_dir = tmp_path / "run"
    first = pretrain(PretrainConfig.from_dict({**TOY, "epochs": 2}), toy_dataset, run_dir, progress=False)
    assert [h["epoch"] for h in first["history"]] == [1, 2]
    assert (run_dir / "model" / "config.json").is_file()
    assert first["train_scenes"] == 18 and first["val_scenes"] == 6
    # the same command with more epochs resumes after epoch 2 instead of starting over
    second = pretrain(PretrainConfig.from_dict({**TOY, "epochs": 3}), toy_dataset, run_dir, progress=False)
    assert [h["epoch"] for h in second["history"]] == [1, 2, 3]
    assert second["history"][:2] == first["history"]
    assert second["steps"] == first["steps"] // 2 * 3
    report = evaluate_encoder(run_dir / "model", toy_dataset, tmp_path / "eval", progress=False)
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["num_scenes"] == 24
    enc = saved["localisation"]["encoder"]["all"]
    assert 0 <= enc["doa_accuracy_20deg"] <= 100 and 0 <= enc["mean_angular_error_deg"] <= 180
    assert "gcc_phat_woodworth" in report["localisation"]
    paired = saved["paired_doa_20deg"]["gcc_phat_woodworth"]["all"]
    enc_right = round(enc["doa_accuracy_20deg"] * 24 / 100)
    base_right = round(saved["localisation"]["gcc_phat_woodworth"]["all"]["doa_accuracy_20deg"] * 24 / 100)
    assert paired["a_only"] - paired["b_only"] == enc_right - base_right and 0 <= paired["p_value"] <= 1
    lateral = saved["paired_lateral_error"]["gcc_phat_woodworth"]["all"]
    assert lateral["mean_difference"] == pytest.approx(
        enc["lateral_error_deg"] - saved["localisation"]["gcc_phat_woodworth"]["all"]["lateral_error_deg"])
    assert math.isfinite(saved["detection_map"]) and math.isfinite(saved["distance_error_rate"])
    assert not any(group.startswith("head ") for group in saved["localisation"]["encoder"])  # one head
    # every labelled source read from its own class's vector, by the number of sources in its scene
    class_wise = saved["class_wise_by_sources"]
    assert class_wise["all"]["sources"] == sum(g["sources"] for name, g in class_wise.items() if name != "all") >= 24
    assert "## Every source from its own class's direction vector" in (tmp_path / "eval" / "report.md").read_text()
    several = sum(g["sources"] for name, g in class_wise.items() if name not in ("all", "1 source"))
    by_level = saved["class_wise_by_relative_level"] or {}
    assert sum(g["sources"] for g in by_level.values()) == several > 0
    assert "| relative level | sources |" in (tmp_path / "eval" / "report.md").read_text()
    assert sum(g["sources"] for g in saved["class_wise_by_drr"].values()) == class_wise["all"]["sources"]
    assert "| direct-to-reverberant | sources |" in (tmp_path / "eval" / "report.md").read_text()
    pairs = saved["class_wise_pairs"]
    assert pairs and all(0 <= g["order_right_pct"] <= 100 and g["pairs"] > 0 for g in pairs.values())
    assert all(0 <= g["primary_half_pct"] <= 100 for g in pairs.values())  # beside the primary head's reading
    assert "| axis | pairs | order right (%) |" in (tmp_path / "eval" / "report.md").read_text()
    # the per-scene file gives back the reported accuracies when scored independently (values are
    # rounded to 0.01 deg, which may move one scene across the 20-degree boundary)
    with open(tmp_path / "eval" / "predictions.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 24
    assert {row["receiver"] for row in table} == {"sphere_head"}
    column = {key: np.array([float(row[key]) for row in table]) for key in table[0] if key != "receiver"}
    truth = column["true_azimuth_deg"], column["true_elevation_deg"]
    for name in ("encoder", "gcc_phat_woodworth"):
        assert doa_accuracy(column[f"{name}_azimuth_deg"], column[f"{name}_elevation_deg"], *truth) == pytest.approx(
            saved["localisation"][name]["all"]["doa_accuracy_20deg"], abs=100 / 24)
    # every labelled source's own class vector, scored independently, gives back the class-wise table
    sources = read_class_wise_predictions(tmp_path / "eval")
    assert len(sources["scene"]) == class_wise["all"]["sources"] and set(sources["scene"]) == set(range(24))
    assert doa_accuracy(sources["class_azimuth_deg"], sources["class_elevation_deg"], sources["true_azimuth_deg"],
                        sources["true_elevation_deg"]) == pytest.approx(class_wise["all"]["doa_accuracy_20deg"],
                                                                        abs=100 / len(sources["scene"]))
    for name in ("report.md", "azimuth_scatter.png", "error_histogram.png", "polar_error.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 0


def test_cli_pretrain_and_evaluate(toy_dataset, tmp_path, capsys):
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump({**TOY, "epochs": 1}))
    run_dir = tmp_path / "run"
    assert main(["pretrain-encoder", "--data", str(toy_dataset), "--config", str(config), "--out", str(run_dir),
                 "--set", "encoder.embed_dim=16"]) == 0
    assert json.loads((run_dir / "model" / "config.json").read_text())["encoder"]["embed_dim"] == 16
    assert main(["evaluate-encoder", "--checkpoint", str(run_dir / "model"), "--data", str(toy_dataset),
                 "--out", str(tmp_path / "eval"), "--baselines"]) == 0
    assert "DoA accuracy at 20 deg" in capsys.readouterr().out
    # a bad value is a clean error (exit code 2) naming the field
    assert main(["pretrain-encoder", "--data", str(toy_dataset), "--config", str(config), "--out", str(run_dir),
                 "--set", "val_fraction=2"]) == 2
    assert "val_fraction" in capsys.readouterr().err
