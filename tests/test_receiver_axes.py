"""Receivers declare the spatial axes they resolve; yes/no questions ask only about those (by default)."""

from collections import Counter

import numpy as np
import pytest
from conftest import REPO_ROOT

from spatial_alm.acoustics import MicArray, SofaHead, SphereHead, make_array
from spatial_alm.coordinates import ALL_AXES, AXES, resolved_axes_of_points
from spatial_alm.qa import generate_qa
from spatial_alm.qa.generator import TARGET_QUESTION_KEYS
from spatial_alm.scenes import ArrayReceiver, HeadReceiver, SceneRecipe, make_scene, receiver_axes
from spatial_alm.scenes.metadata import SceneMeta, SourceMeta

SPHERE = frozenset({"left_right", "distance"})
YES_NO = ("E", "negative")
LABELS = ("siren", "dog", "bell", "rain", "cat")


@pytest.mark.parametrize("name, expected", [
    ("tetrahedral", ALL_AXES),
    ("circular6", frozenset({"left_right", "front_back", "distance"})),
    ("linear4", frozenset({"left_right", "distance"})),
    ("pair", frozenset({"left_right", "distance"})),
])
def test_array_axes_follow_the_microphone_geometry(name, expected):
    array = make_array(name)
    assert array.resolved_axes == ArrayReceiver(array).resolved_axes == receiver_axes(array.name) == expected


def test_axes_are_unresolvable_exactly_when_every_microphone_is_on_the_mirror_plane():
    assert resolved_axes_of_points([[0.0, 0.0, 0.0]]) == {"distance"}  # one omni: only distance
    assert resolved_axes_of_points([[0.0, 0.05, 0.0], [0.0, -0.05, 0.0]]) == {"left_right", "distance"}
    vertical = MicArray("vertical", [[0.0, 0.0, 0.05], [0.0, 0.0, -0.05]])  # hears up/down, not left/right
    assert vertical.resolved_axes == {"above_below", "distance"}
    assert resolved_axes_of_points([[0.01, 0.05, 0.0], [0.0, -0.05, 0.0]]) == {"left_right", "front_back", "distance"}


def test_sphere_head_hears_left_right_and_distance_only():
    head = SphereHead()
    assert SphereHead.resolved_axes == head.resolved_axes == HeadReceiver(head).resolved_axes == SPHERE
    assert receiver_axes("sphere_head") == SPHERE


def test_measured_kemar_resolves_every_axis(shared_data):
    path = shared_data / "hrtf" / "mit_kemar_normal_pinna.sofa"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    head = SofaHead(path)
    assert head.resolved_axes == HeadReceiver(head).resolved_axes == ALL_AXES
    assert receiver_axes(head.name) == ALL_AXES  # by name, without the file


# --- the generator asks about resolved axes only ----------------------------------------------------

def random_scene(rng: np.random.Generator, index: int) -> SceneMeta:
    """2-3 sources (classes may repeat) over the sphere, 0.5-5 m."""
    sources = tuple(SourceMeta(label=LABELS[int(rng.integers(len(LABELS)))],
                               azimuth_deg=float(180.0 - rng.uniform(0.0, 360.0)),
                               elevation_deg=float(rng.uniform(-60.0, 60.0)), distance_m=float(rng.uniform(0.5, 5.0)),
                               position_m=(1.0, 1.0, 1.5), level_db=0.0)
                    for _ in range(int(rng.integers(2, 4))))
    return SceneMeta(index=index, fs_hz=16000, duration_s=2.0, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.5,
                     receiver="sphere_head", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0,
                     noise="none", snr_db=30.0, sources=sources)


def yes_no_counts(mode: str, num_scenes: int = 300, per_type: int = 1) -> Counter:
    """(type, axis, yes) -> count over random scenes heard by a sphere head, as make_scene asks them."""
    recipe = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "tiny_binaural.yaml",
                                   {"qa": {"unresolvable_axes": mode}})
    axes = recipe.qa.question_axes(HeadReceiver(SphereHead()).resolved_axes)
    rng, counts = np.random.default_rng(0), Counter()
    for index in range(num_scenes):
        for pair in generate_qa(random_scene(rng, index), rng, YES_NO, per_type, label_vocabulary=LABELS, axes=axes):
            assert pair.target["axis"] in AXES  # every yes/no target names its axis
            counts[pair.question_type, pair.target["axis"], pair.target["yes"]] += 1
    return counts


def test_sphere_head_is_never_asked_front_back_or_above_below():
    counts = yes_no_counts("skip")
    asked = {(qtype, axis) for qtype, axis, _ in counts}
    assert asked == {("E", "left_right"), ("E", "distance"), ("negative", "left_right")}
    assert sum(counts.values()) > 400


def test_ask_keeps_asking_about_every_axis():
    asked = {(qtype, axis) for qtype, axis, _ in yes_no_counts("ask")}
    assert {("E", axis) for axis in AXES} | {("negative", axis) for axis in AXES[:3]} == asked


@pytest.mark.parametrize("mode", ["skip", "ask"])
def test_yes_no_is_balanced_on_every_axis(mode):
    counts = yes_no_counts(mode, num_scenes=2000, per_type=4)
    for qtype, axis in {(qtype, axis) for qtype, axis, _ in counts}:
        yes, no = counts[qtype, axis, True], counts[qtype, axis, False]
        assert yes + no >= 400 and 0.4 <= yes / (yes + no) <= 0.6, (qtype, axis, yes, no)


def test_make_scene_asks_with_the_receivers_axes():
    overrides = {"duration_s": 0.25, "sources": {"count": [2, 3], "elevation_deg": [-60, 60]},
                 "qa": {"types": list(YES_NO), "per_type": 3}}
    asked = {}
    for mode in ("skip", "ask"):
        recipe = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "tiny_binaural.yaml",
                                       {**overrides, "qa": {**overrides["qa"], "unresolvable_axes": mode}})
        asked[mode] = {pair.target["axis"] for index in range(6) for pair in make_scene(recipe, 0, index).qa}
    assert asked["skip"] and asked["skip"] <= SPHERE and asked["ask"] - SPHERE


def test_recipe_switch_is_validated():
    recipe = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "tiny_binaural.yaml")
    assert recipe.qa.unresolvable_axes == "skip" and recipe.qa.question_axes(SPHERE) == SPHERE
    with pytest.raises(ValueError, match=r"qa.unresolvable_axes = 'sometimes'; allowed: skip, ask"):
        SceneRecipe.from_dict(recipe.to_dict(), {"qa": {"unresolvable_axes": "sometimes"}})


def test_axis_is_a_question_key_not_an_answer_key():
    assert TARGET_QUESTION_KEYS == ("axis",)
    with pytest.raises(ValueError, match="'up_down'"):
        generate_qa(random_scene(np.random.default_rng(0), 0), np.random.default_rng(0), axes=["up_down"])
