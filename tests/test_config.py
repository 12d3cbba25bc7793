"""YAML configs and ``--set`` values: numbers in exponent notation are floats (YAML 1.2), not strings;
every value is checked against its field's annotated type, and nested sections name their dotted path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spatial_alm.commands import parse_overrides
from spatial_alm.config import ConfigError, config_section, dataclass_from_dict, load_yaml, load_yaml_file
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
    config = FinetuneConfig.from_yaml(REPO / "experiments/llm/smollm2_lora.yaml", overrides)
    assert config.learning_rate == pytest.approx(7e-4)
    config_file = tmp_path / "encoder.yaml"
    config_file.write_text("preset: tiny\nlearning_rate: 3e-4\nweight_decay: 5e-2\n")
    config = PretrainConfig.from_yaml(config_file)
    assert (config.learning_rate, config.weight_decay) == (pytest.approx(3e-4), pytest.approx(5e-2))


@dataclass
class Typed:
    count: int = 1
    rate: float = 0.5
    flag: bool = False
    name: str = "a"
    pair: tuple[int, int] = (1, 2)
    names: list[str] = field(default_factory=list)
    limit: int | None = None
    options: dict = field(default_factory=dict)


@pytest.mark.parametrize("values", [{}, {"rate": 2}, {"pair": [3, 4]}, {"limit": None}, {"limit": 3},
                                    {"names": ["x", "y"]}, {"options": {"k": 1}}, {"flag": True}])
def test_values_of_the_annotated_types_pass(values):
    assert dataclass_from_dict(Typed, values, "typed config") == Typed(**values)


@pytest.mark.parametrize("key, value, allowed", [
    ("count", "abc", "an integer"), ("count", 1.5, "an integer"), ("count", True, "an integer"),
    ("rate", "abc", "a number"), ("rate", None, "a number"), ("flag", 1, "true or false"),
    ("name", 3, "a string"), ("name", False, "a string (YAML reads unquoted yes/no"),
    ("pair", [1], "a list of 2 (an integer, an integer)"), ("pair", [1, "x"], "a list of 2"),
    ("names", "x", "a list of items each a string"), ("limit", "x", "an integer or null"),
    ("options", [1], "a mapping"),
])
def test_a_value_of_another_type_names_field_value_and_allowed(key, value, allowed):
    with pytest.raises(ConfigError) as err:
        dataclass_from_dict(Typed, {key: value}, "typed config")
    assert str(err.value).startswith(f"typed config: {key} = {value!r}; allowed: {allowed}")


def test_nested_sections_name_the_dotted_path():
    with pytest.raises(ValueError, match=r"^outer: a\.b\.count = 'x'; allowed: an integer$"):
        with config_section("a", "outer"), config_section("b", "inner"):
            dataclass_from_dict(Typed, {"count": "x"}, "typed config")
    with pytest.raises(ValueError, match=r"^outer: unknown key\(s\) \['a\.size'\]"):
        with config_section("a", "outer"):
            dataclass_from_dict(Typed, {"size": 1}, "typed config")
    with pytest.raises(ValueError, match=r"^outer: a = 3; allowed: a mapping"):
        with config_section("a", "outer"):
            dataclass_from_dict(Typed, 3, "typed config")


@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": "abc"}, "finetune config: batch_size = 'abc'; allowed: an integer"),
    ({"learning_rate": "abc"}, "finetune config: learning_rate = 'abc'; allowed: a number"),
    ({"lora.r": -1}, "finetune config: lora.r = -1; allowed: an integer >= 1"),
    ({"lora.r": 2.5}, "finetune config: lora.r = 2.5; allowed: an integer >= 1"),
    ({"lora.alpha": 0}, "finetune config: lora.alpha = 0; allowed: a number > 0"),
    ({"lora.dropout": 1}, "finetune config: lora.dropout = 1; allowed: a number in [0, 1)"),
    ({"lora.target_modules": []}, "finetune config: lora.target_modules = []; allowed: a non-empty list"),
    ({"projector.type": "transformer"}, "finetune config: projector.type = 'transformer'; allowed: one of"),
    ({"projector.num_queries": "x"}, "finetune config: projector.num_queries = 'x'; allowed: an integer"),
    ({"llm": "builtin", "builtin_llm.hidden_size": 0},
     "finetune config: builtin_llm.hidden_size = 0; allowed: an integer >= 1"),
])
def test_finetune_settings_are_typed_and_ranged(overrides, message):
    with pytest.raises(ValueError) as err:
        FinetuneConfig.from_yaml(REPO / "experiments/llm/smollm2_lora.yaml", overrides)
    assert str(err.value).startswith(message)
    config = FinetuneConfig.from_yaml(REPO / "experiments/llm/smollm2_lora.yaml", {"stage1_curriculum": 2})
    assert config.stage1_curriculum == 2


@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": "abc"}, "pretrain config: batch_size = 'abc'; allowed: an integer"),
    ({"loss_weights.classes": -1}, "pretrain config: loss_weights.classes = -1; allowed: a finite number >= 0"),
    ({"loss_weights.class": 1}, "pretrain config: unknown key(s) ['loss_weights.class']"),
    ({"encoder.depth": "x"}, "pretrain config: encoder.depth = 'x'; allowed: an integer"),
    ({"features.n_mels": 1.5}, "pretrain config: features.n_mels = 1.5; allowed: an integer"),
    ({"mixed_precision": False}, "pretrain config: mixed_precision = False; allowed: a string"),
])
def test_pretrain_settings_are_typed_and_nested_ones_named(overrides, message):
    with pytest.raises(ValueError) as err:
        PretrainConfig.from_yaml(REPO / "experiments/encoder/tiny_binaural.yaml", overrides)
    assert str(err.value).startswith(message)


def test_broken_yaml_is_one_line_naming_file_and_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("epochs: 2\nlr: [1, 2\n")
    with pytest.raises(ValueError) as err:
        load_yaml_file(broken, "pretrain config")
    assert str(err.value).startswith(f"pretrain config {broken}: not valid YAML (line ")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="no such file"):
        PretrainConfig.from_yaml(tmp_path / "missing.yaml")
