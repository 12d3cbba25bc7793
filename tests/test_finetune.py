"""Audio-LLM fine-tuning (stages, curriculum, resume, LoRA) on a toy dataset rendered by the real pipeline."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from accelerate import Accelerator
from conftest import REPO_ROOT
from transformers import LlamaForCausalLM

from spatial_alm.cli import main
from spatial_alm.data import DatasetReader, dataset_info
from spatial_alm.models.audio_llm import AudioLLM, build_prompt
from spatial_alm.models.text import small_llama_config, train_tokenizer
from spatial_alm.qa.templates import canonical_label, with_article
from spatial_alm.training.common import split_indices
from spatial_alm.training.finetune import (
    FinetuneConfig,
    _resume_point,
    _yes_no_validation,
    finetune,
    read_qa_table,
    scene_heard_lines,
)
from spatial_alm.training.pretrain import PretrainConfig, build_model

ENCODER = {"preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
           "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [32, 8]}}
TOY = {"llm": "builtin", "projector": {"type": "qformer", "num_queries": 4, "num_layers": 1, "num_heads": 2},
       "builtin_llm": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 256},
       "tokenizer_vocab_size": 400, "stages": [1, 2], "stage1_epochs": 1, "stage2_curriculum": ["III"],
       "stage2_epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "val_fraction": 0.25, "max_new_tokens": 8,
       "warmup_fraction": 0.0}


@pytest.fixture(scope="module")
def toy_dataset(make_toy_dataset):
    return make_toy_dataset(16)


@pytest.fixture(scope="module")
def toy_encoder(toy_dataset, tmp_path_factory):
    """An untrained toy encoder sized for the dataset, saved like a pretraining run's model/."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("encoder") / "model"
    build_model(PretrainConfig.from_dict(ENCODER), dataset_info(toy_dataset)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def builtin_run(toy_dataset, toy_encoder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finetune") / "run"
    summary = finetune(FinetuneConfig.from_dict(TOY), toy_dataset, toy_encoder, run_dir, progress=False)
    return run_dir, summary


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="unknown key.*'epochs'.*valid keys"):
        FinetuneConfig.from_dict({"epochs": 3})
    with pytest.raises(ValueError, match="stages"):
        FinetuneConfig(stages=[3])
    with pytest.raises(ValueError, match="curriculum stage"):
        FinetuneConfig(stage2_curriculum=["IV"])
    with pytest.raises(ValueError, match="type"):
        FinetuneConfig(projector={"type": "transformer"})
    with pytest.raises(ValueError, match="train_encoder.*true or false"):
        FinetuneConfig.from_dict({"train_encoder": 3})
    phases = FinetuneConfig(stage2_epochs=2).phases()
    assert [(p["name"], p["epochs"]) for p in phases] == [("stage1-I", 1), ("stage2-I", 2), ("stage2-II", 2),
                                                          ("stage2-III", 2)]


def test_removed_options_are_unknown_keys():
    for name in ("redraw_questions", "oversample_types", "class_name_token", "audio_after_question"):
        with pytest.raises(ValueError, match=rf"finetune config: unknown key\(s\) \['{name}'\]; valid keys"):
            FinetuneConfig.from_dict({name: True})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['projector.instruction_aware'\]"):
        FinetuneConfig.from_dict({"projector": {"type": "qformer", "instruction_aware": True}})


def test_yaml_configs_load():
    for name in ("smollm2_lora.yaml", "bat_llama2_7b.yaml"):
        config = FinetuneConfig.from_yaml(REPO_ROOT / "experiments" / "llm" / name, {"stage2_epochs": 2})
        assert config.stage2_epochs == 2
    bat = FinetuneConfig.from_yaml(REPO_ROOT / "experiments" / "llm" / "bat_llama2_7b.yaml")
    assert bat.projector["num_queries"] == 64 and bat.lora["r"] == 8 and bat.stage2_curriculum == ["I", "II", "III"]


def test_builtin_run_saves_a_loadable_model_and_learns(builtin_run, toy_dataset):
    run_dir, summary = builtin_run
    assert [(h["phase"], h["epoch"]) for h in summary["history"]] == [("stage1-I", 1), ("stage2-III", 1),
                                                                      ("stage2-III", 2)]
    stage2 = [h for h in summary["history"] if h["stage"] == 2]
    assert stage2[-1]["val_loss"] < summary["history"][0]["val_loss"]
    assert stage2[-1]["train_loss"] < stage2[0]["train_loss"]
    params = summary["trainable_parameters"]
    assert params["stage1-I"]["llm"]["trainable"] == 0 and params["stage1-I"]["projector"]["trainable"] > 0
    assert params["stage2-III"]["llm"]["trainable"] == params["stage2-III"]["llm"]["total"]
    assert params["stage2-III"]["encoder"]["trainable"] == 0
    model = AudioLLM.from_pretrained(run_dir / "model")
    qa = read_qa_table(toy_dataset)
    audio = torch.zeros(1, 2, 8000)
    (answer,) = model.generate(audio, [str(qa["question"][0])], max_new_tokens=4)
    assert isinstance(answer, str)
    assert json.loads((run_dir / "summary.json").read_text())["history"] == summary["history"]
    assert summary["samples"]["stage2-III"] and "generated" in summary["samples"]["stage2-III"][0]


def test_resume_continues_with_more_epochs(builtin_run, toy_dataset, toy_encoder):
    run_dir, first = builtin_run
    again = finetune(FinetuneConfig.from_dict(TOY), toy_dataset, toy_encoder, run_dir, progress=False)
    assert again["history"] == first["history"]  # complete: nothing to do
    more = finetune(FinetuneConfig.from_dict({**TOY, "stage2_epochs": 3}), toy_dataset, toy_encoder, run_dir,
                    progress=False)
    assert more["history"][:3] == first["history"]
    assert [(h["phase"], h["epoch"]) for h in more["history"][3:]] == [("stage2-III", 3)]
    assert more["steps"] > first["steps"] and more["wall_time_s"] >= first["wall_time_s"]
    AudioLLM.from_pretrained(run_dir / "model")


def test_lora_trains_only_adapters_and_projector(toy_dataset, toy_encoder, tmp_path):
    qa = read_qa_table(toy_dataset)
    tokenizer = train_tokenizer([build_prompt(q) for q in qa["question"]] + list(qa["answer"]), vocab_size=400)
    torch.manual_seed(1)
    base = LlamaForCausalLM(small_llama_config(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2,
                                               max_position_embeddings=256))
    base.save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    config = FinetuneConfig.from_dict({**TOY, "stages": [2], "stage2_epochs": 1, "lora": {"r": 4, "alpha": 8}})
    summary = finetune(config, toy_dataset, toy_encoder, tmp_path / "run", llm_path=tmp_path / "llama",
                       progress=False)
    params = summary["trainable_parameters"]["stage2-III"]
    assert 0 < params["llm"]["trainable"] < params["llm"]["total"] and params["encoder"]["trainable"] == 0
    saved = json.loads((tmp_path / "run" / "model" / "audio_llm.json").read_text())
    assert saved["lora"]["r"] == 4 and not saved["llm_saved"]
    model = AudioLLM.from_pretrained(tmp_path / "run" / "model")
    base_after = model.llm.get_base_model().state_dict()
    for name, value in before.items():  # base weights unchanged (LoRA layers renamed to base_layer)
        key = name if name in base_after else name.replace(".weight", ".base_layer.weight")
        assert torch.equal(base_after[key], value), name
    lora_b = [p for n, p in model.llm.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # adapters moved off their zero init


def test_cli_finetune(toy_dataset, toy_encoder, tmp_path, capsys):
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump({**TOY, "stages": [2]}))
    argv = ["finetune", "--data", str(toy_dataset), "--encoder", str(toy_encoder), "--config", str(config),
            "--out", str(tmp_path / "run"), "--set", "stage2_epochs=1", "--set", "projector.type=linear"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{\n"):])["last_epoch"]["phase"] == "stage2-III"
    (phase,) = json.loads((tmp_path / "run" / "summary.json").read_text())["phases"]
    qa, info = read_qa_table(toy_dataset), dataset_info(toy_dataset)
    train_scenes, _ = split_indices(info["num_scenes"], TOY["val_fraction"], 0)
    assert phase["train_qa"] == int(np.isin(qa["scene_index"], train_scenes).sum())  # every training pair once
    assert json.loads((tmp_path / "run" / "model" / "audio_llm.json").read_text())["projector"]["type"] == "linear"
    assert main([*argv, "--set", "stages=[3]"]) == 2  # a bad config value is a clear error, no traceback
    assert "stages" in capsys.readouterr().err
    assert main([*argv, "--set", "redraw_questions=true"]) == 2  # a removed option is an unknown key
    assert "unknown key(s) ['redraw_questions']" in capsys.readouterr().err



def test_qa_table_axis_column_names_what_each_question_asks(toy_dataset):
    qa = read_qa_table(toy_dataset)
    yes_no = np.isin(qa["question_type"], ["E", "negative"])
    assert yes_no.any() and (qa["axis"][~yes_no] == "").all() and (qa["axis"][yes_no] != "").all()
    phrases = {"left_right": ("left", "right"), "front_back": ("front", "behind"),
               "above_below": ("above", "below"), "distance": ("closer", "farther")}
    for question, axis in zip(qa["question"][qa["question_type"] == "E"], qa["axis"][qa["question_type"] == "E"]):
        assert any(word in question for word in phrases[axis]), (question, axis)


def test_question_budget_and_heard_threshold_are_validated_and_subsets_are_seeded():
    from spatial_alm.training.finetune import _subset

    for field, value in (("train_questions", 0), ("val_questions", 2.5), ("heard_sources_threshold", 1.0)):
        with pytest.raises(ValueError, match=field):
            FinetuneConfig.from_dict({field: value})
    indices = np.arange(100, 200)
    drawn = _subset(indices, 10, np.random.default_rng(0))
    assert len(set(drawn)) == 10 and set(drawn) <= set(indices) and list(drawn) == sorted(drawn)
    assert list(drawn) == list(_subset(indices, 10, np.random.default_rng(0)))  # seeded
    assert _subset(indices, None, np.random.default_rng(0)) is indices and len(_subset(indices, 500, None)) == 100


def test_train_questions_sets_the_number_of_steps(toy_dataset, toy_encoder, tmp_path):
    config = FinetuneConfig.from_dict({**TOY, "stages": [2], "stage2_epochs": 1, "train_questions": 32,
                                       "val_questions": 4})
    summary = finetune(config, toy_dataset, toy_encoder, tmp_path / "run", progress=False)
    assert summary["history"][-1]["step"] == 32 // TOY["batch_size"]


def test_training_prompts_can_carry_the_scenes_true_sources(toy_dataset, toy_encoder, tmp_path, monkeypatch):
    """With a heard line, each training scene's true sources (metadata) make it: every source, at 100 %,
    on the side its azimuth says; validation keeps the encoder's line. The removed option is an unknown key."""
    with pytest.raises(ValueError, match="train_heard_lines"):
        FinetuneConfig.from_dict({"train_heard_lines": "encoder"})
    reader = DatasetReader(toy_dataset)
    for i in range(len(reader)):
        src = reader.sources(i)
        [line] = scene_heard_lines(reader, [i])
        assert line.count("(100%)") == src["num_sources"]
        for label, azimuth in zip(src["source_label"][: src["num_sources"]], src["source_azimuth_deg"]):
            side = "left" if round(float(azimuth)) > 0 else "right"
            assert f"{with_article(canonical_label(label))} (100%) to your {side}," in line
    seen = {True: [], False: []}  # heard lines given to prepare_batch, in training and in validation
    prepare_batch = AudioLLM.prepare_batch

    def spy(self, audio, questions, answers=None, heard=None):
        if answers is not None:
            seen[self.training].append(heard)
        return prepare_batch(self, audio, questions, answers, heard)

    monkeypatch.setattr(AudioLLM, "prepare_batch", spy)
    config = FinetuneConfig.from_dict({**TOY, "stages": [2], "stage2_epochs": 1, "train_questions": 32,
                                       "val_questions": 4, "heard_sources_threshold": 0.3})
    finetune(config, toy_dataset, toy_encoder, tmp_path / "run", progress=False)
    assert len(seen[True]) == 32 // TOY["batch_size"] and seen[False] and set(map(type, seen[False])) == {type(None)}
    assert all(line.startswith("Heard") and "%)" not in line.replace("(100%)", "") for lines in seen[True]
               for line in lines)


def test_a_run_can_start_from_a_fine_tuned_model(builtin_run, toy_dataset, toy_encoder, tmp_path):
    """init_model: the run starts from that model's weights (at a learning rate too small to move them,
    the saved projector is the init model's); a model behind another encoder or LLM, a missing folder and a
    projector-only stage 1 (a fine-tuned model's adapters would train in it) are refused."""
    init = builtin_run[0] / "model"
    config = FinetuneConfig.from_dict({**TOY, "stages": [2], "stage2_epochs": 1, "train_questions": 16,
                                       "val_questions": 4, "learning_rate": 1e-12, "init_model": str(init)})
    finetune(config, toy_dataset, toy_encoder, tmp_path / "run", progress=False)
    before, after = (AudioLLM.from_pretrained(d).projector.state_dict() for d in (init, tmp_path / "run" / "model"))
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    torch.manual_seed(5)
    other = tmp_path / "other_encoder"
    build_model(PretrainConfig.from_dict(ENCODER), dataset_info(toy_dataset)).save_pretrained(other)
    with pytest.raises(ValueError, match="its encoder differs"):
        finetune(config, toy_dataset, other, tmp_path / "run2", progress=False)
    with pytest.raises(ValueError, match="LLM 'builtin'.*allowed: the config's 'smollm2'"):
        finetune(FinetuneConfig.from_dict({**asdict(config), "llm": "smollm2"}), toy_dataset, toy_encoder,
                 tmp_path / "run3", progress=False)
    for bad in ({"init_model": str(tmp_path / "missing")}, {"init_model": str(init), "stages": [1, 2]}):
        with pytest.raises(ValueError, match="init_model"):
            FinetuneConfig.from_dict(bad)


def test_a_repeated_curriculum_entry_gets_a_numbered_phase_name():
    """Checkpoints name their phase; a second III phase must not resume as the first."""
    config = FinetuneConfig(stages=[2], stage2_curriculum=[["E", "negative"], "III", ["E"], "III"])
    phases = config.phases()
    assert [p["name"] for p in phases] == ["stage2-E+negative", "stage2-III", "stage2-E", "stage2-III-2"]
    assert _resume_point(Path("step-600"), {"phase": "stage2-III", "epoch": 1}, phases) == (2, 0)
    assert _resume_point(Path("step-1200"), {"phase": "stage2-III-2", "epoch": 1}, phases) == (4, 0)


def test_a_curriculum_entry_can_list_question_types(toy_dataset, toy_encoder, tmp_path, monkeypatch):
    """stage2_curriculum [III, [negative]]: a phase of all types, then one of negative probes only."""
    with pytest.raises(ValueError, match="unknown question type 'F'"):
        FinetuneConfig(stage2_curriculum=["III", ["F"]])
    config = FinetuneConfig.from_dict({**TOY, "stages": [2], "stage2_epochs": 1,
                                       "stage2_curriculum": ["III", ["negative"]], "train_questions": 16,
                                       "val_questions": 4})
    assert [p["name"] for p in config.phases()] == ["stage2-III", "stage2-negative"]
    questions = []  # training questions in order
    prepare_batch = AudioLLM.prepare_batch

    def spy(self, audio, batch_questions, answers=None, heard=None):
        if answers is not None and self.training:
            questions.append(list(batch_questions))
        return prepare_batch(self, audio, batch_questions, answers, heard)

    monkeypatch.setattr(AudioLLM, "prepare_batch", spy)
    summary = finetune(config, toy_dataset, toy_encoder, tmp_path / "run", progress=False)
    assert [h["phase"] for h in summary["history"]][-1] == "stage2-negative"
    steps = 16 // TOY["batch_size"]
    assert len(questions) == 2 * steps
    reader = DatasetReader(toy_dataset)
    negative = {reader.qa_pair(j)["question"] for j in np.flatnonzero(reader.qa_types() == "negative")}
    assert all(q in negative for batch in questions[steps:] for q in batch)
    assert not all(q in negative for batch in questions[:steps] for q in batch)


def test_validation_scores_the_yes_no_answers_with_each_line(toy_dataset, toy_encoder, tmp_path, monkeypatch):
    """The per-phase yes/no check: balanced accuracy and share of yes of the validation E / negative answers,
    with the evaluate prompt and with the true line. A stand-in model answers right when given the true
    line and always yes otherwise: 100 % and 50 % balanced, hand-computed shares of yes; a phase without a
    yes/no question gets None; a real run records the check in its history."""
    from spatial_alm.data import SpatialQADataset

    reader, dataset = DatasetReader(toy_dataset), SpatialQADataset(toy_dataset)
    types = reader.qa_types()
    val_idx = np.arange(len(types))[::-1]  # every question, in another order than the dataset's
    yes_no = [int(j) for j in val_idx if types[j] in ("E", "negative")]
    truth = [bool(reader.qa_pair(j)["target"]["yes"]) for j in yes_no]
    assert 0 < sum(truth) < len(truth)

    class StandIn:
        def __init__(self):
            self.answered = 0  # true-line answers given so far, in the order asked
            self.modes = []

        def eval(self):
            self.modes.append("eval")

        def train(self):
            self.modes.append("train")

        def generate(self, audio, questions, max_new_tokens, heard=None):
            assert len(audio) == len(questions) <= 4
            if heard is None:
                return ["Yes."] * len(questions)
            assert all(line.startswith("Heard") for line in heard)
            right = truth[self.answered:self.answered + len(questions)]
            self.answered += len(questions)
            return ["yes" if t else "no" for t in right]

    config = FinetuneConfig.from_dict({**TOY, "batch_size": 4, "heard_sources_threshold": 0.3})
    model = StandIn()
    scores = _yes_no_validation(model, dataset, val_idx, types, config, Accelerator(cpu=True))
    assert scores == {"questions": len(yes_no),
                      "prompt": {"balanced_accuracy": 50.0, "answered_yes": 100.0},
                      "true_line": {"balanced_accuracy": 100.0, "answered_yes": 100.0 * sum(truth) / len(truth)}}
    assert model.answered == len(yes_no) and model.modes == ["eval", "train"]
    no_line = FinetuneConfig.from_dict({**TOY, "batch_size": 4, "heard_sources_threshold": None})
    assert set(_yes_no_validation(StandIn(), dataset, val_idx, types, no_line, Accelerator(cpu=True))) == {
        "questions", "prompt"}
    others = np.array([j for j in val_idx if types[j] not in ("E", "negative")])
    assert _yes_no_validation(StandIn(), dataset, others, types, config, Accelerator(cpu=True)) is None

    config = FinetuneConfig.from_dict({**TOY, "stages": [2], "stage2_epochs": 1, "stage2_curriculum": [["negative"]],
                                       "train_questions": 16, "val_questions": 4, "heard_sources_threshold": 0.3})
    [record] = finetune(config, toy_dataset, toy_encoder, tmp_path / "run", progress=False)["history"]
    assert record["val_yes_no"]["questions"] == 4 and set(record["val_yes_no"]) == {"questions", "prompt", "true_line"}
