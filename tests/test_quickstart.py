"""`spatial-alm quickstart` end to end at toy size: report, headline numbers, stage reuse, config chains."""

import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

from spatial_alm.cli import main
from spatial_alm.quickstart import DEFAULT_CONFIG, STATE_FILE, load_quickstart_config

TOY = {
    "base": str(DEFAULT_CONFIG),
    "description": "toy quickstart (test)",
    "recipe_overrides": {"duration_s": 0.5},
    "encoder_overrides": {"epochs": 1, "batch_size": 8, "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
                          "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [32, 8]}},
    "llm_config": str(REPO_ROOT / "tests" / "configs" / "toy_builtin_llm.yaml"),  # a toy LLM, not SmolLM2
    "llm_overrides": {"max_new_tokens": 12},
    # every test question is evaluated, so every question type is scored
    "train_scenes": 16, "test_scenes": 8, "eval_questions": None, "num_examples": 4,
}


@pytest.fixture(scope="module")
def toy_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "toy.yaml"
    path.write_text(yaml.safe_dump(TOY))
    return path


def _in_range(name: str, value) -> bool:
    if value is None:
        return True
    limit = 180.0 if name.endswith("_deg") else 100.0
    return math.isfinite(value) and 0.0 <= value <= limit


def test_quickstart_end_to_end_report_and_reuse(toy_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["quickstart", "--config", str(toy_config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert "report/report.md" in printed.out and "encoder: DoA accuracy" in printed.out

    report = out / "report"
    markdown = (report / "report.md").read_text()
    for heading in ("## Dataset", "## Encoder beside the classical baseline", "## Audio-LLM, per question type",
                    "## Example answers"):
        assert heading in markdown
    for plot in ("dataset.png", "polar_error.png", "azimuth_scatter.png", "qa_scores.png"):
        assert (report / plot).stat().st_size > 0 and f"({plot})" in markdown
    summary = json.loads((report / "summary.json").read_text())
    assert summary["train_scenes"] == 16 and summary["test_scenes"] == 8
    for method in ("encoder", "gcc_phat_woodworth", "chance"):
        assert all(_in_range(k, v) for k, v in summary["encoder"][method].items()), method
    assert _in_range("map", summary["encoder"]["detection_map"])
    assert {"A", "B"} <= set(summary["audio_llm"])
    for row in summary["audio_llm"].values():
        assert all(_in_range(row["metric"], row[key]) for key in ("model", "random", "encoder_head"))
    assert set(summary["wall_time_s"]) == {"simulate", "encoder", "llm", "evaluate"}
    assert all(seconds > 0 for seconds in summary["wall_time_s"].values())

    # re-running reuses every finished stage; changing an LLM setting redoes the LLM and what follows only
    encoder_weights = out / "encoder" / "model" / "model.safetensors"
    encoder_mtime, llm_mtime = encoder_weights.stat().st_mtime_ns, (out / "llm" / "summary.json").stat().st_mtime_ns
    assert main(["quickstart", "--config", str(toy_config), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().err.count("reused") == 4
    assert (out / "llm" / "summary.json").stat().st_mtime_ns == llm_mtime
    assert main(["quickstart", "--config", str(toy_config), "--out", str(out), "--no-progress",
                 "--set", "llm_overrides.learning_rate=0.001"]) == 0
    log = capsys.readouterr().err
    assert "simulate: finished earlier" in log and "encoder: finished earlier" in log and "llm: running" in log
    assert encoder_weights.stat().st_mtime_ns == encoder_mtime
    assert (out / "llm" / "summary.json").stat().st_mtime_ns != llm_mtime
    state = json.loads((out / STATE_FILE).read_text())["stages"]
    assert all(record["done"] for record in state.values())


def test_config_base_chain_relative_paths_and_errors(tmp_path):
    default = load_quickstart_config()
    assert Path(default.recipe).name == "tiny_binaural.yaml" and Path(default.recipe).is_file()
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text(yaml.safe_dump({"base": str(DEFAULT_CONFIG), "encoder_overrides": {"features": {"ipd": False}},
                                     "test_scenes": 50}))
    config = load_quickstart_config(child)
    assert config.test_scenes == 50 and config.train_scenes == default.train_scenes
    assert config.encoder_overrides == {**default.encoder_overrides, "features": {"ipd": False}}  # merged
    assert config.recipe == default.recipe  # relative to the file that names it (the base)
    with pytest.raises(ValueError, match="unknown key"):
        load_quickstart_config(child, {"epochs": 3})
    with pytest.raises(ValueError, match="test_seed"):
        load_quickstart_config(child, {"test_seed": default.seed})
    with pytest.raises(ValueError, match="recipe = .*missing.yaml.*allowed: an existing file"):
        load_quickstart_config(child, {"recipe": str(tmp_path / "missing.yaml")})
    with pytest.raises(ValueError, match="num_shards = 300; allowed"):
        load_quickstart_config(child, {"num_shards": 300})
    loop = tmp_path / "loop.yaml"
    loop.write_text(yaml.safe_dump({"base": "loop.yaml"}))
    with pytest.raises(ValueError, match="loops"):
        load_quickstart_config(loop)
    assert main(["quickstart", "--config", str(tmp_path / "none.yaml")]) == 2
