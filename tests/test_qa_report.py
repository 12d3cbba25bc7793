"""QA evaluation (per-type table, random row, unparseable answers) and `spatial-alm ask`, on a toy audio-LLM."""

import json
import math
import shutil

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import LlamaForCausalLM

from spatial_alm.cli import main
from spatial_alm.commands.ask import ask, load_audio
from spatial_alm.coordinates import spherical_to_cartesian
from spatial_alm.data import SpatialQADataset, dataset_info
from spatial_alm.evaluation.metrics import doa_accuracy
from spatial_alm.evaluation.qa_report import (
    _write_report,
    audible,
    axis_of,
    below_spectral_cue,
    class_direction_answer,
    constant_answer,
    elevation_type_against_constant,
    encoder_head_prediction,
    evaluate_qa,
    negative_side_questions,
    paired_vs_encoder_head,
    question_axis,
    random_answer,
    score_records,
    yes_no_by_axis,
    yes_no_by_heard_line,
)
from spatial_alm.models.audio_llm import AudioLLM, build_prompt
from spatial_alm.models.heard_sources import line_directions
from spatial_alm.models.projector import ProjectorConfig
from spatial_alm.models.text import small_llama_config, train_tokenizer
from spatial_alm.qa import canonical_label, make_qa, parse_answer
from spatial_alm.qa.templates import named_labels, parse_yes_no_question
from spatial_alm.scenes.metadata import SceneMeta, SourceMeta
from spatial_alm.training.finetune import read_qa_table
from spatial_alm.training.pretrain import PretrainConfig, build_model

ERROR_METRICS = ("lateral_error_deg", "front_back_confusion_rate")  # direction errors named as evaluate-encoder's
ENCODER = {"preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
           "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [32, 8]}}


@pytest.fixture(scope="module")
def toy_dataset(make_toy_dataset):
    return make_toy_dataset(12, seed=1)


@pytest.fixture(scope="module")
def toy_model(toy_dataset, tmp_path_factory):
    """An untrained audio-LLM (toy encoder, Q-Former 4, built-in LLaMA hidden 32) saved to disk."""
    torch.manual_seed(0)
    qa = read_qa_table(toy_dataset)
    tokenizer = train_tokenizer([build_prompt(q) for q in qa["question"]] + list(qa["answer"]), vocab_size=400)
    encoder = build_model(PretrainConfig.from_dict(ENCODER), dataset_info(toy_dataset))
    llm = LlamaForCausalLM(small_llama_config(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2,
                                              max_position_embeddings=256))
    model = AudioLLM(encoder, llm, tokenizer, ProjectorConfig(num_queries=4, num_layers=1, num_heads=2))
    return model.save_pretrained(tmp_path_factory.mktemp("audio_llm") / "model")


def test_perfect_answers_score_perfectly_and_random_is_valid(toy_dataset):
    vocabulary = sorted(dataset_info(toy_dataset)["class_counts"])
    dataset, rng = SpatialQADataset(toy_dataset), np.random.default_rng(0)
    records, guesses = [], []
    for j in range(len(dataset)):
        item = dataset.reader.qa_pair(j)
        records.append({**item, "prediction": parse_answer(item["question_type"], item["answer"],
                                                           vocabulary=vocabulary)})
        guess = random_answer(item["question_type"], vocabulary, rng)
        guesses.append({**item, "prediction": parse_answer(item["question_type"], guess, vocabulary=vocabulary)})
    table = score_records(records, vocabulary)
    assert {"A", "B", "E"} <= set(table)
    for question_type, row in table.items():
        assert row["unparseable"] == 0
        for name, value in row["metrics"].items():
            if name == "answered_yes":  # perfect answers say yes as often as the truth
                truths = [r["target"]["yes"] for r in records if r["question_type"] == question_type]
                assert value == pytest.approx(100.0 * np.mean(truths)), question_type
            elif name.startswith("der") or name.startswith("mean_") or name in ERROR_METRICS:
                assert value == pytest.approx(0.0, abs=1e-6), name
            elif name == "map_all_classes":  # as BAT: a class never present counts 0
                present = {label for r in records if r["question_type"] == question_type
                           for label in r["target"]["labels"]}
                classes = {canonical_label(v) for v in vocabulary} | present
                assert value == pytest.approx(100.0 * len(present) / len(classes)), question_type
            else:
                assert value == pytest.approx(100.0), name
    assert all(g["prediction"]["parsed"] for g in guesses)  # random answers are valid in every format
    for row in score_records(guesses, vocabulary).values():
        assert all(math.isnan(v) or 0 <= v <= 180 for v in row["metrics"].values())
    assert axis_of("Is the dog to the left of the siren?") == "left_right"
    assert axis_of("Is the dog farther from you than the bell?") == "distance"
    assert axis_of("Is there a siren behind you?") == "front_back"
    assert axis_of("Is the bell below the dog?") == "above_below"
    assert axis_of("How many sources do you hear?") is None


def test_yes_no_scores_per_axis():
    def record(question, yes, said):
        return {"question_type": "E", "question": question, "target": {"yes": yes},
                "prediction": {"parsed": True, "yes": said}}

    records = [record("Is the dog to the left of the bell?", True, True),
               record("Is the dog to the right of the bell?", False, True),
               record("Is the dog in front of the bell?", True, True),
               record("Is the dog closer to you than the bell?", False, False)]
    row = score_records(records, ["dog", "bell"])["E"]
    # old-style targets without "axis": the axis is read from the question text
    # truth yes: 2 of 2 right; truth no: 1 of 2 -> balanced 75; 3 of 4 answers are yes
    # left/right: yes right, no wrong -> 50 and balanced (100 + 0) / 2; front/back and distance: one right each
    assert row["axes"] == ["left_right", "front_back", "distance"]
    assert row["metrics"] == {"accuracy": 75.0, "balanced_accuracy": 75.0, "answered_yes": 75.0,
                              "accuracy_left_right": 50.0, "balanced_accuracy_left_right": 50.0,
                              "accuracy_front_back": 100.0, "balanced_accuracy_front_back": 100.0,
                              "accuracy_distance": 100.0, "balanced_accuracy_distance": 100.0}


def sphere_records() -> list[dict]:
    """Type E records of a sphere-head scene (resolves left_right, distance): (axis or None for an old-style
    target, truth, model's answer, encoder head's answer or None for no head answer)."""
    def record(axis, truth, said, head, question="Is the dog to the left of the bell?"):
        target = {"yes": truth} if axis is None else {"yes": truth, "axis": axis}
        return {"question_type": "E", "question": question, "target": target,
                "prediction": {"parsed": True, "yes": said}, "random_prediction": {"parsed": True, "yes": True},
                "encoder_prediction": None if head is None else {"parsed": True, "yes": head},
                "receiver_axes": ["left_right", "distance"]}

    return [record("left_right", True, True, True), record("left_right", True, False, True),
            record("left_right", False, False, True), record("left_right", True, True, False),
            record(None, False, False, False),  # left/right by the question text
            record("distance", False, True, None, "Is the dog closer to you than the bell?"),
            record("distance", True, True, None, "Is the dog closer to you than the bell?"),
            record("front_back", True, True, False, "Is the dog in front of the bell?")]  # not audible


def test_yes_no_per_axis_with_constant_row_and_paired_test_hand_computed():
    records = sphere_records()
    assert [audible(r) for r in records] == [True] * 7 + [False]
    assert [question_axis(r) for r in records[3:6]] == ["left_right", "left_right", "distance"]
    row = score_records(records, ["dog", "bell"])["E"]
    assert row["total"] == 7 and row["axes"] == ["left_right", "distance"]  # front/back left out
    # the 7 audible: truth T T F T F F T, model T F F T F T T -> 5 of 7 right; yes 3 of 4, no 2 of 3
    assert row["metrics"]["accuracy"] == pytest.approx(500 / 7)
    assert row["metrics"]["balanced_accuracy"] == pytest.approx((75.0 + 200 / 3) / 2)
    by_axis = yes_no_by_axis([r for r in records if audible(r)])["E"]
    assert list(by_axis) == ["all", "left_right", "distance"] and by_axis["all"]["axes"] == ["left_right", "distance"]
    # left/right: truth T T F T F, model T F F T F -> 4 of 5; yes 2 of 3, no 2 of 2
    lr = by_axis["left_right"]
    assert lr["questions"] == 5 and lr["yes_share"] == pytest.approx(60.0)
    assert lr["model"] == {"balanced_accuracy": pytest.approx((200 / 3 + 100) / 2), "accuracy": pytest.approx(80.0),
                           "answered_yes": pytest.approx(40.0)}
    assert lr["random"] == {"balanced_accuracy": 50.0, "accuracy": pytest.approx(60.0)}  # always yes
    # constant: always yes and always no both balance to 50; always yes is right on 3 of 5
    assert lr["constant"] == {"answer": "yes", "balanced_accuracy": 50.0, "accuracy": pytest.approx(60.0)}
    # head T T T F F: right on 1, 2, 5 -> 3 of 5; yes 2 of 3, no 1 of 2
    assert lr["encoder_head"] == {"questions": 5, "balanced_accuracy": pytest.approx((200 / 3 + 50) / 2),
                                  "accuracy": pytest.approx(60.0)}
    # model alone right on 3 and 4, head alone on 2: p = 2 * P(Binomial(3, 1/2) >= 2) = 1
    assert lr["paired_vs_encoder_head"] == {"questions": 5, "a_only": 2, "b_only": 1, "p_value": pytest.approx(1.0)}
    distance = by_axis["distance"]  # truth F T, model T T: 1 of 2, balanced (100 + 0) / 2
    assert distance["model"] == {"balanced_accuracy": 50.0, "accuracy": 50.0, "answered_yes": 100.0}
    assert distance["encoder_head"] is None and distance["paired_vs_encoder_head"] is None
    assert by_axis["all"]["constant"] == {"answer": "yes", "balanced_accuracy": 50.0,
                                          "accuracy": pytest.approx(400 / 7)}
    assert paired_vs_encoder_head(records)["E"] == lr["paired_vs_encoder_head"]  # the head answers left/right only
    # a split with one answer only: the constant that says it is right on all, balanced too
    assert constant_answer([{"target": {"yes": False}}] * 3) == {"answer": "no", "balanced_accuracy": 100.0,
                                                                 "accuracy": 100.0}


def test_yes_no_split_by_what_the_encoder_hears_hand_computed(tmp_path):
    assert named_labels("Is the dog to the left of the church bell?", ["church_bell", "dog", "cat"]) \
        == ["church bell", "dog"]
    records = sphere_records()[:7]  # audible; every question names the dog and the bell
    heard = [["bell", "dog"], ["dog"], ["bell", "dog", "cat"], [], ["dog", "bell"], ["bell"], ["dog", "bell"]]
    for record, labels in zip(records, heard):
        record["heard_labels"] = labels
    split = yes_no_by_heard_line(records + [{**records[0], "heard_labels": None}], ["bell", "cat", "dog"])["E"]
    named, missed = split["every class asked heard"], split["a class asked not heard"]
    # records 0, 2, 4, 6 name both: truth T F F T, model T F F T; 1, 3, 5 miss one: truth T T F, model F T T
    assert named["questions"] == 4 and named["axes"] == ["left_right", "distance"]
    assert named["model"] == {"balanced_accuracy": 100.0, "accuracy": 100.0, "answered_yes": 50.0}
    assert missed["questions"] == 3 and missed["model"]["balanced_accuracy"] == pytest.approx(25.0)
    assert missed["model"]["answered_yes"] == pytest.approx(200 / 3)
    report = _write_report({"model_dir": "m", "data": "d"}, records, ["bell", "cat", "dog"], tmp_path,
                           max_new_tokens=4, seed=0)
    assert report["yes_no_by_heard_line"]["E"]["every class asked heard"]["questions"] == 4
    assert "| E | a class asked not heard (left_right, distance) | 3 |" in (tmp_path / "report.md").read_text()


def test_negative_probes_about_a_class_in_the_scene_are_scored_apart(tmp_path):
    def probe(question, truth, said, labels):
        return {"question_type": "negative", "question": question, "target": {"yes": truth},
                "prediction": {"parsed": True, "yes": said}, "random_prediction": {"parsed": True, "yes": False},
                "encoder_prediction": None, "receiver_axes": ["left_right", "front_back"], "scene_labels": labels}

    records = [probe("Is there a dog to your left?", True, True, ["dog"]),  # the dog's side decides
               probe("Is there a dog to your left?", False, True, ["bell", "dog"]),  # the dog is on the right
               probe("Is there a church bell behind you?", False, False, ["dog"]),  # absent: detection decides
               probe("Is there a church bell behind you?", True, False, ["church bell"])]
    side = negative_side_questions(records, ["church_bell", "dog"])
    assert side == [records[0], records[1], records[3]]
    report = _write_report({"model_dir": "m", "data": "d"}, records, ["church_bell", "dog"], tmp_path,
                           max_new_tokens=4, seed=0)
    rows = report["negative_class_in_scene"]["negative"]
    assert list(rows) == ["all", "left_right", "front_back"]
    assert rows["left_right"]["model"]["balanced_accuracy"] == 50.0  # yes right, no wrong
    assert rows["front_back"]["questions"] == 1 and rows["front_back"]["model"]["accuracy"] == 0.0
    assert report["yes_no_by_axis"]["negative"]["front_back"]["model"]["accuracy"] == 50.0  # the absent one helps
    assert "## Negative probes about a class in the scene" in (tmp_path / "report.md").read_text()


def test_elevation_answers_against_the_best_constant_hand_computed(tmp_path):
    def question(truth, said, guess):
        return {"question_type": "elevation", "question": "At what elevation is the dog?",
                "target": {"elevation_deg": truth}, "encoder_prediction": None,
                "prediction": {"parsed": said is not None, **({} if said is None else {"elevation_deg": said})},
                "random_prediction": {"parsed": True, "elevation_deg": guess}}

    # truths 0..40: median 20, constant errors 20 10 0 10 20 (mean 12); the model exact but one unparsed
    records = [question(t, s, g) for t, s, g in zip([0, 10, 20, 30, 40], [0, 10, None, 30, 40], [-90, 90, 20, 0, 0])]
    against = elevation_type_against_constant(records)
    assert against["constant_deg"] == 20.0 and against["constant_error_deg"] == pytest.approx(12.0)
    assert set(against["paired"]) == {"model", "random"}  # the head answers none
    assert against["paired"]["model"]["pairs"] == 4 and against["paired"]["model"]["mean_difference"] == -15.0
    assert against["paired"]["random"]["mean_difference"] == pytest.approx((70 + 70 + 0 + 20 + 20) / 5)
    assert elevation_type_against_constant([{**records[0], "question_type": "count"}]) is None
    _write_report({"model_dir": "m", "data": "d"}, records, ["dog"], tmp_path, max_new_tokens=4, seed=0)
    markdown = (tmp_path / "report.md").read_text()
    assert "## Elevation questions against the best constant answer" in markdown
    assert "| model | 4 | 0.0 | -15.0 |" in markdown


def test_report_shows_axes_and_keeps_inaudible_questions_apart(tmp_path):
    header = {"model_dir": "m", "data": "d", "receiver_axes": {"sphere_head": ["left_right", "distance"]}}
    report = _write_report(header, sphere_records(), ["bell", "dog"], tmp_path, max_new_tokens=4, seed=0)
    assert report["not_audible"]["questions"] == 1
    assert report["not_audible"]["yes_no_by_axis"]["E"]["front_back"]["questions"] == 1
    assert set(report["yes_no_by_axis"]["E"]) == {"all", "left_right", "distance"}
    markdown = (tmp_path / "report.md").read_text()
    assert "| balanced_accuracy (left_right, distance) |" in markdown
    assert "| E | all: left_right, distance | 7 |" in markdown
    assert "## Not audible for this receiver" in markdown and "| E | front_back | 1 |" in markdown


def test_questions_about_a_side_a_sources_sound_cannot_tell_are_not_audible():
    def source(label, front_back, above_below):
        return SourceMeta(label=label, azimuth_deg=30.0, elevation_deg=20.0, distance_m=1.0, position_m=(1.0, 1.0, 1.0),
                          level_db=0.0, front_back_cue_db=front_back, above_below_cue_db=above_below)

    # the hum barely takes on the head's front/back colouring (0.4 dB), the bell does (3 dB); no cues recorded: None
    scene = SceneMeta(index=0, fs_hz=16000, duration_s=1.0, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.3,
                      receiver="sofa:kemar", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0, noise="none",
                      snr_db=math.inf, sources=(source("engine hum", 0.4, 1.5), source("bell", 3.0, 3.0),
                                                source("dog", None, None)))
    vocabulary = ["bell", "dog", "engine hum", "siren"]
    cases = [("Is the engine hum in front of the bell?", "front_back", True),
             ("Is the engine hum above the bell?", "above_below", False),  # 1.5 dB >= the default 1 dB
             ("Is the engine hum to the left of the bell?", "left_right", False),  # no spectral cue needed
             ("Is the dog behind the bell?", "front_back", False),  # no cue recorded: asked as before
             ("Is there an engine hum behind you?", "front_back", True),
             ("Is there a siren behind you?", "front_back", False)]  # absent: answered by detection
    for question, axis, expected in cases:
        assert below_spectral_cue(question, axis, scene, vocabulary) is expected, question
    assert below_spectral_cue("Is the engine hum above the bell?", "above_below", scene, vocabulary, min_cue_db=2.0)
    record = {"question_type": "E", "question": cases[0][0], "target": {"yes": True, "axis": "front_back"},
              "receiver_axes": ["left_right", "front_back", "above_below", "distance"]}
    assert audible(record) and not audible({**record, "below_spectral_cue": True})


def test_class_direction_answers_hand_computed():
    directions = torch.stack([torch.as_tensor(spherical_to_cartesian(az, el), dtype=torch.float32)
                              for az, el in ((90.0, 0.0), (-150.0, 20.0), (0.0, 0.0))])
    # dog: left; bell: right, behind, up; siren: front
    probs = torch.tensor([0.9, 0.8, 0.1])
    distances = torch.tensor([1.0, 2.5, 0.0])  # dog nearer than the bell
    names = ["dog", "bell", "siren"]

    def answer(question_type, question):
        return class_direction_answer(question_type, *parse_yes_no_question(question_type, question, names),
                                      probs, directions, distances)

    assert parse_yes_no_question("E", "Is the bell to the left of the dog?", names) == ("to the left of", [1, 0])
    assert answer("E", "Is the dog to the left of the bell?") and not answer("E", "Is the bell to the left of the dog?")
    assert answer("E", "Would you say the dog is in front of the bell?")  # x: 0 against -0.81
    assert answer("E", "Is the bell above the dog?") and not answer("E", "Is the bell below the dog?")
    assert answer("negative", "Is there a bell behind you?")
    assert answer("negative", "Can you hear a bell to your right?")
    assert not answer("negative", "Is there a siren to your left?")  # probability 0.1: not heard
    assert answer("E", "Is the dog closer to you than the bell?")
    assert not answer("E", "Is the dog farther from you than the bell?") and answer("E", "Is the bell farther "
                                                                                     "from you than the dog?")
    assert parse_yes_no_question("negative", "Is there a horse to your left?", names) is None  # unknown class
    # a class name inside a longer one is not a mention of it: "church bell" names one class, not two
    overlapping = ["bell", "church_bell", "dog"]
    assert parse_yes_no_question("E", "Is the church bell to the left of the dog?", overlapping) == (
        "to the left of", [1, 2])
    assert parse_yes_no_question("negative", "Is there a church bell to your left?", overlapping) == (
        "to your left", [1])
    assert named_labels("Is the bell closer to you than the church bell?", overlapping) == ["bell", "church bell"]


def test_class_direction_answers_from_true_directions_match_the_generated_truth():
    """Vectors pointing at the sources themselves (probability 1 for present classes) must answer every
    generated E (left/right, front/back, above/below, nearer/farther) and negative question as the metadata
    does."""
    names = ["dog", "bell", "siren", "rain", "church bells"]
    rng = np.random.default_rng(0)
    checked = {"E": 0, "negative": 0}
    for index in range(300):
        labels = rng.choice(names, size=int(rng.integers(1, 4)), replace=False)
        sources = tuple(SourceMeta(label=str(label), azimuth_deg=float(rng.uniform(-179.0, 180.0)),
                                   elevation_deg=float(rng.uniform(-60.0, 60.0)), distance_m=float(rng.uniform(0.5, 5)),
                                   position_m=(1.0, 1.0, 1.5), level_db=0.0) for label in labels)
        scene = SceneMeta(index=index, fs_hz=16000, duration_s=1.0, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.4,
                          receiver="sphere_head", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0,
                          noise="none", snr_db=30.0, sources=sources)
        probs, directions, distances = torch.zeros(len(names)), torch.zeros(len(names), 3), torch.zeros(len(names))
        for source in sources:
            k = names.index(source.label)
            probs[k], distances[k] = 1.0, source.distance_m
            directions[k] = torch.as_tensor(spherical_to_cartesian(source.azimuth_deg, source.elevation_deg))
        for question_type in checked:
            pair = make_qa(question_type, scene, rng, label_vocabulary=names)
            parsed = None if pair is None else parse_yes_no_question(question_type, pair.question, names)
            if parsed is None:
                continue
            assert class_direction_answer(question_type, *parsed, probs, directions, distances) \
                == pair.target["yes"], pair
            checked[question_type] += 1
    assert min(checked.values()) >= 50, checked


def test_paired_vs_encoder_head_counts_discordant_questions():
    def record(question_type, truth_az, model_az, head_az):
        target = {"azimuth_deg": truth_az, "elevation_deg": 0.0, "distance_m": 1.0}
        def direction(az):
            return {"parsed": az is not None, **({} if az is None else {"azimuth_deg": az, "elevation_deg": 0.0})}
        return {"question_type": question_type, "target": target, "prediction": direction(model_az),
                "encoder_prediction": direction(head_az)}

    # B: model alone right on 3 (errors 10, 0, 15 deg vs head 40, 90, unparsed), both right on 1, head alone on 0
    records = [record("B", 0.0, 10.0, 40.0), record("B", 90.0, 90.0, 0.0), record("B", -30.0, -15.0, None),
               record("B", 0.0, 5.0, -5.0), record("D", 170.0, -175.0, 100.0), record("D", 0.0, 60.0, 0.0),
               {"question_type": "A", "target": {"labels": ["dog"]}, "prediction": {"parsed": True},
                "encoder_prediction": {"parsed": True}}]
    paired = paired_vs_encoder_head(records)
    assert set(paired) == {"B", "D"}
    assert paired["B"] == {"questions": 4, "a_only": 3, "b_only": 0, "p_value": pytest.approx(0.25)}  # 2 * 0.5**3
    # D: the model is right across the +-180 seam (15 deg), the head right on the other: 1 vs 1, p = 1
    assert paired["D"] == {"questions": 2, "a_only": 1, "b_only": 1, "p_value": pytest.approx(1.0)}


def test_encoder_head_prediction_answers_what_the_heads_can():
    ranked = ["siren", "bird_chirps", "bell", "rain"]  # by decreasing probability
    direction = encoder_head_prediction("B", ranked, 1, 30.0, 10.0, 2.5)
    assert direction == {"parsed": True, "azimuth_deg": 30.0, "elevation_deg": 10.0, "distance_m": 2.5}
    assert encoder_head_prediction("A", ranked, 0, 0, 0, 1)["labels"] == ["siren"]  # the top class, always
    assert encoder_head_prediction("C", ranked, 0, 0, 0, 1)["labels"] == ["bird chirps", "siren"]  # >= 2
    assert encoder_head_prediction("C", ranked, 3, 0, 0, 1)["labels"] == ["bell", "bird chirps", "siren"]
    assert encoder_head_prediction("count", ranked, 2, 0, 0, 1)["count"] == 2
    assert encoder_head_prediction("count", ranked, 0, 0, 0, 1)["count"] == 1
    assert encoder_head_prediction("E", ranked, 1, 0, 0, 1) is None
    assert encoder_head_prediction("room", ranked, 1, 0, 0, 1) is None
    # with a class-direction head, a named source's direction replaces the primary one's (D, elevation)
    named = encoder_head_prediction("D", ranked, 2, 30.0, 10.0, 2.5, named_direction=(-120.0, -5.0))
    assert named == {"parsed": True, "azimuth_deg": -120.0, "elevation_deg": -5.0, "distance_m": 2.5}
    assert encoder_head_prediction("elevation", ranked, 2, 30.0, 10.0, 2.5, (-120.0, -5.0))["elevation_deg"] == -5.0
    assert encoder_head_prediction("B", ranked, 1, 30.0, 10.0, 2.5, (-120.0, -5.0))["azimuth_deg"] == 30.0


def test_evaluate_writes_report_with_every_type(toy_model, toy_dataset, tmp_path):
    report = evaluate_qa(toy_model, toy_dataset, tmp_path / "eval", max_new_tokens=6, progress=False)
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    present = set(dataset_info(toy_dataset)["qa_type_counts"])
    assert set(saved["model"]) == present == set(saved["random"])
    assert saved["num_questions"] == len(saved["answers"]) == sum(r["total"] for r in saved["model"].values())
    for row in saved["model"].values():
        assert 0 <= row["unparseable"] <= row["total"]
        for name, value in row["metrics"].items():
            assert math.isfinite(value) or name.startswith("mean_") or name == "lateral_error_deg", (name, value)
            if math.isfinite(value):
                assert 0 <= value <= 180
    unparsed = sum(not r["prediction"]["parsed"] for r in report["answers"])
    assert sum(row["unparseable"] for row in report["model"].values()) == unparsed > 0  # untrained: gibberish
    # encoder-head row: the heads' own answers, recomputed here from the encoder on the same audio
    assert {"A", "B", "E", "negative"} <= set(saved["encoder_head"])  # E, negative: the class-wise heads
    model, dataset = AudioLLM.from_pretrained(toy_model), SpatialQADataset(toy_dataset)
    rows = [j for j in range(len(dataset)) if dataset.reader.qa_pair(j)["question_type"] == "B"]
    heads = model.encoder.predict(torch.stack([dataset[j]["audio"] for j in rows]))
    targets = [dataset.reader.qa_pair(j)["target"] for j in rows]
    true_az, true_el = (np.array([t[key] for t in targets]) for key in ("azimuth_deg", "elevation_deg"))
    expected = doa_accuracy(heads.azimuth_deg.numpy(), heads.elevation_deg.numpy(), true_az, true_el)
    assert saved["encoder_head"]["B"]["metrics"]["doa_accuracy_20deg"] == pytest.approx(expected)
    markdown = (tmp_path / "eval" / "report.md").read_text()
    assert "| A |" in markdown and "unparseable" in markdown and "encoder head" in markdown
    assert (tmp_path / "eval" / "scores.png").stat().st_size > 0
    assert main(["evaluate", "--model", str(toy_model), "--data", str(toy_dataset), "--out",
                 str(tmp_path / "cli"), "--max-questions", "5", "--max-new-tokens", "4"]) == 0
    assert json.loads((tmp_path / "cli" / "report.json").read_text())["num_questions"] == 5


def test_evaluate_answers_only_the_chosen_types(toy_model, toy_dataset, tmp_path, capsys):
    """--types keeps exactly the dataset's questions of those types (here the yes/no ones), each once, in
    dataset order; an unknown type and --types with --recordings are refused."""
    wanted = ("E", "negative")
    every = SpatialQADataset(toy_dataset)
    expected = [qa for qa in map(every.reader.qa_pair, range(len(every))) if qa["question_type"] in wanted]
    assert expected
    assert main(["evaluate", "--model", str(toy_model), "--data", str(toy_dataset), "--out", str(tmp_path / "yn"),
                 "--types", *wanted, "--max-new-tokens", "2"]) == 0
    saved = json.loads((tmp_path / "yn" / "report.json").read_text())
    assert set(saved["model"]) == {qa["question_type"] for qa in expected}
    assert [a["question"] for a in saved["answers"]] == [qa["question"] for qa in expected]
    with pytest.raises(ValueError, match="unknown question type 'Z'"):
        evaluate_qa(toy_model, toy_dataset, tmp_path / "bad", question_types=["Z"], progress=False)
    no_room = tmp_path / "no_room"  # a valid type the dataset does not ask
    shutil.copytree(toy_dataset, no_room)
    for shard in no_room.glob("*.h5"):
        with h5py.File(shard, "r+") as f:
            types = f["qa_type"].asstr()[...]
            f["qa_type"][...] = np.where(types == "room", "count", types).astype("S")
    with pytest.raises(ValueError, match="has no question of the types room"):
        evaluate_qa(toy_model, no_room, tmp_path / "bad", question_types=["room"], progress=False)
    assert main(["evaluate", "--model", str(toy_model), "--recordings", str(tmp_path), "--out",
                 str(tmp_path / "rec"), "--types", "E"]) == 2
    assert "only with --data" in capsys.readouterr().err


def test_ask_resamples_and_checks_channels(toy_model, tmp_path, capsys):
    t = np.arange(int(0.4 * 44100)) / 44100
    stereo = 0.1 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1)  # (T, C)
    sf.write(tmp_path / "stereo.wav", stereo, 44100)
    sf.write(tmp_path / "mono.wav", stereo[:, 0], 44100)
    assert load_audio(tmp_path / "stereo.wav", 16000, 2).shape == (2, int(0.4 * 16000))
    model = AudioLLM.from_pretrained(toy_model)
    assert isinstance(ask(model, tmp_path / "stereo.wav", "Where is the sound?", max_new_tokens=4), str)
    with pytest.raises(ValueError, match="1 channel.*allowed: 2"):
        ask(model, tmp_path / "mono.wav", "Where is the sound?")
    argv = ["ask", "--model", str(toy_model), "--question", "Where is the sound?", "--max-new-tokens", "4"]
    assert main([*argv, "--audio", str(tmp_path / "stereo.wav")]) == 0
    assert main([*argv, "--audio", str(tmp_path / "mono.wav")]) == 2
    assert "1 channel(s); allowed: 2" in capsys.readouterr().err
    model.heard_sources_threshold = 0.01  # every class heard: the line the prompt holds is shown on stderr
    ask(model, tmp_path / "stereo.wav", "Where is the sound?", max_new_tokens=2)
    assert "the encoder's heard-sources line: Heard, nearest first: a" in capsys.readouterr().err


def test_ask_hears_a_long_file_through_its_centre_window(toy_model, tmp_path, capsys):
    model = AudioLLM.from_pretrained(toy_model)
    fs_hz = model.encoder.features.config.fs_hz
    window = model.encoder.window_samples
    rng = np.random.default_rng(0)
    long = 0.1 * rng.standard_normal((3 * window + 17, 2)).astype(np.float32)  # (T, C)
    sf.write(tmp_path / "long.wav", long, fs_hz, subtype="FLOAT")
    start = (long.shape[0] - window) // 2
    sf.write(tmp_path / "centre.wav", long[start:start + window], fs_hz, subtype="FLOAT")
    question = "Where is the sound?"
    answer = ask(model, tmp_path / "long.wav", question, max_new_tokens=6)
    assert "answered about its centre" in capsys.readouterr().err
    assert answer == ask(model, tmp_path / "centre.wav", question, max_new_tokens=6)
    assert "centre" not in capsys.readouterr().err  # a file of the window's length is heard whole


def test_evaluate_answers_yes_no_types_from_a_class_direction_head(toy_model, toy_dataset, tmp_path):
    """With the class-direction head the encoder-head row also answers negative probes (and E where asked),
    each recorded answer equal to class_direction_answer on the head's own output for that clip, decoded as the
    heard line (line_directions); each record keeps the line the LLM read."""
    model = AudioLLM.from_pretrained(toy_model)
    config = PretrainConfig.from_dict({**ENCODER, "encoder": {**ENCODER["encoder"], "class_direction_head": True}})
    torch.manual_seed(1)
    model.encoder = build_model(config, dataset_info(toy_dataset))
    model.heard_sources_threshold = 0.3  # the prompts carry the heard line; the records keep it
    model.save_pretrained(tmp_path / "model")
    report = evaluate_qa(tmp_path / "model", toy_dataset, tmp_path / "eval", max_new_tokens=2, progress=False)
    assert "negative" in report["encoder_head"]
    dataset, names = SpatialQADataset(toy_dataset), model.encoder.class_names
    checked = 0
    for j, record in enumerate(report["answers"]):
        if record["question_type"] not in ("E", "negative") or record["encoder_prediction"] is None:
            continue
        heads = model.encoder.eval().predict(dataset[j]["audio"][None])
        audio, question = dataset[j]["audio"][None], [record["question"]]
        assert record["heard_line"] == model.heard(audio, question)[0]
        assert record["heard_labels"] == [s.label for s in model.hear(audio, question)[0] if s.probability >= 0.3]
        # an E question presupposes both classes it names: its line lists them, heard or not
        listed = {s.label for s in model.hear(audio, question)[0]}
        assert set(named_labels(record["question"], names)) <= listed or record["question_type"] == "negative"
        parsed = parse_yes_no_question(record["question_type"], record["question"], names)
        directions = line_directions(heads.class_probs, heads.class_directions, 0.3, heads.class_azimuth_probs)
        assert record["encoder_prediction"]["yes"] == class_direction_answer(
            record["question_type"], *parsed, heads.class_probs[0], directions[0], heads.class_distances[0])
        checked += 1
    head_rows = report["encoder_head"]
    assert checked == head_rows["negative"]["total"] + head_rows.get("E", {"total": 0})["total"]


def test_paired_models_counts_discordant_answers_and_refuses_other_questions():
    from spatial_alm.evaluation.qa_report import paired_models

    def record(question, yes, said):
        return {"question_type": "negative", "question": question, "answer": "yes" if yes else "no",
                "target": {"yes": yes, "axis": "left_right"}, "receiver_axes": ["left_right", "distance"],
                "prediction": {"parsed": True, "yes": said}}

    truth = [True, False, True, False, True]
    a = [record(f"q{i}", t, said) for i, (t, said) in enumerate(zip(truth, [True, False, False, True, True]))]
    b = [record(f"q{i}", t, said) for i, (t, said) in enumerate(zip(truth, [False, False, True, True, False]))]
    # a right on 0, 1, 4; b right on 1, 2: a alone right on 0 and 4, b alone on 2
    assert paired_models(a, b)["negative"] == {"questions": 5, "a_only": 2, "b_only": 1, "p_value": 1.0}
    with pytest.raises(ValueError, match="different questions"):
        paired_models(a, b[::-1])
