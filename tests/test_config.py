"""YAML configs and ``--set`` values: numbers in exponent notation are floats (YAML 1.2), not strings."""

from pathlib import Path

import pytest

from spatial_alm.commands import parse_overrides
from spatial_alm.config import load_yaml
from spatial_alm.training.finetune import FinetuneConfig
from spatial_alm.training.pretrain import PretrainConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text", ["5e-4", "7E-4", "1.5e3", "-2e+2", ".5e1", "1_0e-1"])
def test_exponent_floats_without_a_dot_are_floats(text):
    assert load_yaml(f"x: {text}") == {"x": float(text.replace("_", ""))}


@pytest.mark.parametrize("text, value", [("12", 12), ("1_000", 1000), ("0.5", 0.5), ("1e3x", "1e3x"), ("e5", "e5")])
def test_other_scalars_keep_their_yaml_meaning(text, value):
    loaded = load_yaml(f"x: {text}")["x"]
    assert loaded == value and type(loaded) is type(value)


def test_set_learning_rate_in_exponent_notation_reaches_the_config_as_a_float(tmp_path):
    overrides = parse_overrides(["learning_rate=7e-4", "stage2_epochs=2"])
    assert FinetuneConfig.from_yaml(REPO / "experiments/llm/tiny.yaml", overrides).learning_rate == pytest.approx(7e-4)
    config_file = tmp_path / "encoder.yaml"
    config_file.write_text("preset: tiny\nlearning_rate: 3e-4\nweight_decay: 5e-2\n")
    config = PretrainConfig.from_yaml(config_file)
    assert (config.learning_rate, config.weight_decay) == (pytest.approx(3e-4), pytest.approx(5e-2))
