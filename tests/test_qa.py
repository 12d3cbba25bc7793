"""SpatialSoundQA-style QA: generation is true by construction, parsing inverts it, yes/no is balanced."""

import json

import numpy as np
import pytest

from spatial_alm.qa import (
    QUESTION_TYPES,
    classify_room,
    generate_qa,
    make_qa,
    parse_answer,
    types_for_stage,
)
from spatial_alm.qa.generator import TARGET_QUESTION_KEYS
from spatial_alm.qa.parser import PARSERS
from spatial_alm.qa.templates import ANSWER_FORMATS
from spatial_alm.scenes.metadata import SceneMeta, SourceMeta

CLASSES = ("siren", "dog", "church_bells", "Alarm clock", "vehicle horn, car horn, honking", "rain")
YES_NO_TYPES = [name for name, qtype in QUESTION_TYPES.items() if qtype.answer_format == "yes_no"]


def make_source(label="siren", azimuth_deg=0.0, elevation_deg=0.0, distance_m=2.0) -> SourceMeta:
    return SourceMeta(label=label, azimuth_deg=azimuth_deg, elevation_deg=elevation_deg,
                      distance_m=distance_m, position_m=(1.0, 1.0, 1.5), level_db=0.0)


def make_scene(*sources: SourceMeta, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.5, index=0) -> SceneMeta:
    return SceneMeta(index=index, fs_hz=16000, duration_s=2.0, room_dim_m=room_dim_m, rt60_s=rt60_s,
                     receiver="sphere_head", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0,
                     noise="none", snr_db=30.0, sources=tuple(sources))


def random_scene(rng: np.random.Generator, index: int = 0, num_sources: int | None = None) -> SceneMeta:
    """1-4 sources (classes may repeat), directions over the sphere, 0.3-9 m, rooms of all classes."""
    n = int(rng.integers(1, 5)) if num_sources is None else num_sources
    sources = [make_source(label=CLASSES[int(rng.integers(len(CLASSES)))],
                           azimuth_deg=float(180.0 - rng.uniform(0.0, 360.0)),
                           elevation_deg=float(rng.choice([0.0, rng.uniform(-80.0, 80.0)])),
                           distance_m=float(rng.uniform(0.3, 9.0)))
               for _ in range(n)]
    return make_scene(*sources, room_dim_m=tuple(rng.uniform(2.0, 12.0, size=3)),
                      rt60_s=float(rng.uniform(0.1, 1.5)), index=index)


def reason(a: SourceMeta, b: SourceMeta, phrase: str) -> str | None:
    """The answer to "is <a> <phrase> <b>?" (template 0), or None when not asked."""
    scene = make_scene(a, b)
    for seed in range(200):
        pair = make_qa("E", scene, np.random.default_rng(seed), template_index=0)
        assert pair is None or pair.question.startswith("Is the ")
        if pair is not None and pair.question == f"Is the {a.label} {phrase} the {b.label}?":
            return pair.answer
        if pair is not None and pair.question == f"Is the {b.label} {phrase} the {a.label}?":
            return {"yes": "no", "no": "yes"}[pair.answer]  # relations are antisymmetric
    return None


# --- round trip --------------------------------------------------------------------------------

def test_every_template_of_every_type_parses_back_to_its_target():
    rng = np.random.default_rng(1)
    checked = {name: 0 for name in QUESTION_TYPES}
    for index in range(120):
        scene = random_scene(rng, index, num_sources=1 + index % 4)
        for name, qtype in QUESTION_TYPES.items():
            for template_index in range(len(qtype.templates)):
                pair = make_qa(name, scene, rng, template_index=template_index, label_vocabulary=CLASSES)
                if pair is None:
                    continue
                assert "{" not in pair.question and pair.question == pair.question.strip()
                assert qtype.templates[template_index].format(**pair.fields) == pair.question
                answer_keys = {k: v for k, v in pair.target.items() if k not in TARGET_QUESTION_KEYS}
                assert parse_answer(name, pair.answer) == {"parsed": True, **answer_keys}, pair
                assert parse_answer(name, pair.answer, vocabulary=CLASSES) == {"parsed": True, **answer_keys}
                assert ("axis" in pair.target) == (qtype.answer_format == "yes_no")
                assert json.loads(json.dumps(pair.target)) == pair.target
                checked[name] += 1
    assert all(count >= 40 for count in checked.values()), checked


def test_answer_formats_and_parsers_cover_every_type():
    assert set(ANSWER_FORMATS) == set(PARSERS)
    for qtype in QUESTION_TYPES.values():
        assert qtype.answer_format in ANSWER_FORMATS
        assert len(qtype.templates) >= 4
        assert len(set(qtype.templates)) == len(qtype.templates)


def test_targets_are_binned_from_metadata():
    scene = make_scene(make_source("Siren", azimuth_deg=-179.7, elevation_deg=-10.4, distance_m=2.74))
    b = make_qa("B", scene, np.random.default_rng(0))
    assert b.target == {"azimuth_deg": 180, "elevation_deg": -10, "distance_m": 2.5}
    assert b.answer == "azimuth 180 deg, elevation -10 deg, distance 2.5 m"
    assert make_qa("A", scene, np.random.default_rng(0)).answer == "siren"
    assert b.source_index == 0


def test_description_lists_each_source_sorted_by_label():
    scene = make_scene(make_source("siren", 30.0, -10.0, 2.5), make_source("dog", 90.0, 0.0, 1.0),
                       make_source("dog", -45.0, 5.0, 3.0))
    pair = make_qa("description", scene, np.random.default_rng(0))
    assert pair.answer == ("dog at azimuth -45 deg, elevation 5 deg, distance 3.0 m; "
                           "dog at azimuth 90 deg, elevation 0 deg, distance 1.0 m; "
                           "siren at azimuth 30 deg, elevation -10 deg, distance 2.5 m")
    assert make_qa("C", scene, np.random.default_rng(0)).answer == "dog; siren"
    assert make_qa("count", scene, np.random.default_rng(0)).answer == "3"


# --- hand-computed truths ----------------------------------------------------------------------

def test_left_right_compares_sides():
    left, right = make_source("bell", azimuth_deg=90.0), make_source("dog", azimuth_deg=-30.0)
    assert reason(left, right, "to the left of") == "yes"
    assert reason(left, right, "to the right of") == "no"
    assert reason(right, left, "to the right of") == "yes"


def test_front_back_compares_sides():
    back, front = make_source("bell", azimuth_deg=170.0), make_source("dog", azimuth_deg=10.0)
    assert reason(front, back, "in front of") == "yes"
    assert reason(back, front, "behind") == "yes"
    assert reason(back, front, "in front of") == "no"


def test_above_below_compares_sides_and_nearer_farther_distances():
    high = make_source("bell", azimuth_deg=40.0, elevation_deg=30.0, distance_m=1.0)
    low = make_source("dog", azimuth_deg=60.0, elevation_deg=-20.0, distance_m=3.0)
    assert reason(high, low, "above") == "yes"
    assert reason(high, low, "below") == "no"
    assert reason(low, high, "below") == "yes"
    assert reason(high, low, "closer to you than") == "yes"
    assert reason(low, high, "farther from you than") == "yes"
    assert reason(high, low, "to the left of") is None  # same side: never asked
    higher = make_source("siren", azimuth_deg=-60.0, elevation_deg=45.0, distance_m=1.2)
    assert reason(higher, high, "above") is None  # both above you: never asked, however far apart
    level = make_source("siren", azimuth_deg=-60.0, elevation_deg=3.0, distance_m=1.2)
    assert reason(high, level, "above") is None  # 3 deg from the horizontal plane: ambiguous


def test_ambiguous_pairs_are_not_asked():
    a = make_source("bell", azimuth_deg=3.0, elevation_deg=2.0, distance_m=2.0)  # 3 deg from left/right
    b = make_source("dog", azimuth_deg=-92.0, elevation_deg=-2.0, distance_m=2.3)  # 2 deg from front/back
    assert make_qa("E", make_scene(a, b), np.random.default_rng(0)) is None
    twins = make_scene(make_source("dog", 90.0), make_source("dog", -90.0))  # no unique name
    assert make_qa("E", twins, np.random.default_rng(0)) is None
    assert make_qa("D", twins, np.random.default_rng(0)) is None


def test_negative_probe_truth():
    scene = make_scene(make_source("siren", azimuth_deg=160.0), make_source("dog", azimuth_deg=20.0))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        pair = make_qa("negative", scene, rng, template_index=0, label_vocabulary=["bell"])
        expected = {"Is there a siren behind you?": "yes", "Is there a siren in front of you?": "no",
                    "Is there a siren to your left?": "yes", "Is there a dog to your right?": "no",
                    "Is there a bell behind you?": "no", "Is there a siren above you?": None}
        if pair.question in expected:
            assert pair.answer == expected[pair.question]
            seen.add(pair.question)
    assert "Is there a siren above you?" not in seen  # elevation 0: ambiguous
    assert len(seen) == 5


def test_room_classes():
    assert classify_room((3.0, 4.0, 2.5), 0.2) == {"room_size": "small", "reverberation": "dry"}
    assert classify_room((8.0, 6.0, 3.0), 0.5) == {"room_size": "medium", "reverberation": "medium"}
    assert classify_room((15.0, 10.0, 5.0), 1.2) == {"room_size": "large", "reverberation": "reverberant"}
    assert classify_room((5.0, 5.0, 2.0), 0.3) == {"room_size": "medium", "reverberation": "medium"}


# --- balance, determinism, applicability -------------------------------------------------------

@pytest.mark.parametrize("question_type", YES_NO_TYPES)
@pytest.mark.parametrize("vocabulary", [(), CLASSES + ("bell", "cat")])
def test_yes_no_types_are_balanced(question_type, vocabulary):
    rng = np.random.default_rng(2)
    answers = []
    while len(answers) < 2000:
        scene = random_scene(rng, num_sources=int(rng.integers(2, 5)))
        answers += [pair.answer for pair in generate_qa(scene, rng, [question_type], per_type=4,
                                                        label_vocabulary=vocabulary)]
    assert 0.45 <= answers.count("yes") / len(answers) <= 0.55


def test_same_seed_gives_the_same_questions():
    scenes = [random_scene(np.random.default_rng(i), i) for i in range(20)]
    first = [generate_qa(scene, np.random.default_rng(7), per_type=2) for scene in scenes]
    second = [generate_qa(scene, np.random.default_rng(7), per_type=2) for scene in scenes]
    assert first == second
    assert first != [generate_qa(scene, np.random.default_rng(8), per_type=2) for scene in scenes]


def test_only_applicable_types_are_generated():
    rng = np.random.default_rng(3)
    single = make_scene(make_source("siren", 30.0, 0.0, 2.0))
    pair_scene = make_scene(make_source("siren", 30.0, 0.0, 2.0), make_source("dog", -100.0, 20.0, 4.0))
    assert {p.question_type for p in generate_qa(single, rng)} == {
        "A", "B", "count", "elevation", "room", "negative", "description"}
    assert {p.question_type for p in generate_qa(pair_scene, rng)} == {
        "C", "D", "E", "count", "elevation", "room", "negative", "description"}
    assert generate_qa(pair_scene, rng, ["A", "B"]) == []
    empty = make_scene()
    assert {p.question_type for p in generate_qa(empty, rng)} == {"count", "room"}
    assert len(generate_qa(pair_scene, rng, ["D"], per_type=5)) == 5


def test_stages():
    assert types_for_stage(1) == ["A", "B"]
    assert types_for_stage("II") == ["A", "B", "C", "D"]
    assert types_for_stage(3) == list(QUESTION_TYPES)
    assert {"E", "count", "elevation", "room", "negative", "description"} <= set(types_for_stage("III"))
    with pytest.raises(ValueError, match="stage"):
        types_for_stage(4)


def test_bad_input_raises_naming_the_problem():
    scene = make_scene(make_source("siren"))
    with pytest.raises(ValueError, match="valid types: A, B, C, D, E"):
        generate_qa(scene, np.random.default_rng(0), ["F"])
    with pytest.raises(ValueError, match="valid types"):
        parse_answer("where", "yes")
    with pytest.raises(ValueError, match="azimuth_deg=-180.0"):
        generate_qa(make_scene(make_source(azimuth_deg=-180.0)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="label"):
        generate_qa(make_scene(make_source(label="a;b")), np.random.default_rng(0))
    with pytest.raises(ValueError, match="template_index"):
        make_qa("A", scene, np.random.default_rng(0), template_index=99)


# --- parser robustness -------------------------------------------------------------------------

@pytest.mark.parametrize("question_type, text, expected", [
    ("B", "The sound comes from azimuth 30°, elevation -10°, distance 2.5 meters.",
     {"azimuth_deg": 30, "elevation_deg": -10, "distance_m": 2.5}),
    ("D", "Azimuth: 30.4 degrees; Elevation of \u221210 deg; it is about 2.7 metres away.",
     {"azimuth_deg": 30, "elevation_deg": -10, "distance_m": 2.5}),
    ("B", "azimuth -180 deg, elevation 0 deg, distance 10 m", {"azimuth_deg": 180, "elevation_deg": 0,
                                                               "distance_m": 10.0}),
    ("E", "Yes.", {"yes": True}),
    ("negative", "NO", {"yes": False}),
    ("negative", "No, there is no siren behind you.", {"yes": False}),
    ("count", "there are 3 sources", {"count": 3}),
    ("count", "I hear three sounds.", {"count": 3}),
    ("elevation", "The dog is at an elevation of 15 degrees.", {"elevation_deg": 15}),
    ("elevation", "-20°", {"elevation_deg": -20}),
    ("room", "It is a large room, reverberant.", {"room_size": "large", "reverberation": "reverberant"}),
    ("room", "Size: Small. Reverberation: medium.", {"room_size": "small", "reverberation": "medium"}),
    ("A", "Siren.", {"labels": ["siren"]}),
    ("C", "I hear a siren; and a dog.", {"labels": ["dog", "siren"]}),
    ("description", "There are 2 sources: a Siren at azimuth 30°, elevation -10°, distance 2.5 meters, "
                    "and a dog is located at azimuth -90 degrees, elevation 0 degrees, distance 1 m.",
     {"sources": [{"label": "siren", "azimuth_deg": 30, "elevation_deg": -10, "distance_m": 2.5},
                  {"label": "dog", "azimuth_deg": -90, "elevation_deg": 0, "distance_m": 1.0}]}),
])
def test_noisy_answers_parse(question_type, text, expected):
    assert parse_answer(question_type, text) == {"parsed": True, **expected}


def test_vocabulary_matches_known_classes_only():
    vocabulary = ["siren", "dog", "vehicle horn, car horn, honking", "car horn"]
    text = "I can hear a Vehicle horn, car horn, honking and a dog!"
    assert parse_answer("C", text, vocabulary=vocabulary) == {
        "parsed": True, "labels": ["dog", "vehicle horn, car horn, honking"]}
    assert parse_answer("A", "Probably a car horn.", vocabulary=vocabulary)["labels"] == ["car horn"]
    assert parse_answer("A", "I don't know", vocabulary=vocabulary) == {"parsed": False, "labels": []}


@pytest.mark.parametrize("question_type", ["B", "D", "E", "negative", "count", "elevation", "room",
                                           "description"])
@pytest.mark.parametrize("text", ["", "I am not sure what this is.", "purple elephants"])
def test_garbage_is_not_parsed(question_type, text):
    assert parse_answer(question_type, text)["parsed"] is False


def test_an_elevation_beyond_90_degrees_is_not_a_direction():
    # a generated answer may say anything; a direction with elevation 200 deg counts as unparseable (wrong)
    assert parse_answer("B", "azimuth 30 deg, elevation 200 deg, distance 1.0 m")["parsed"] is False
    assert parse_answer("elevation", "elevation -95 deg") == {"parsed": False, "elevation_deg": None}
    assert parse_answer("description", "dog at azimuth 30 deg, elevation 120 deg, distance 1 m") == {
        "parsed": False, "sources": []}
    assert parse_answer("elevation", "elevation 90 deg") == {"parsed": True, "elevation_deg": 90}


def test_partial_direction_keeps_what_was_found():
    assert parse_answer("B", "azimuth 45 deg, elevation 10 deg") == {
        "parsed": False, "azimuth_deg": 45, "elevation_deg": 10, "distance_m": None}
