"""Heads drawn per scene: receiver types cipic / structural / heads, per-head train/test splits that never
leak, deterministic rendering, and recipe errors that name the field."""

import csv

import numpy as np
import pytest
import yaml
from test_cipic import write_toy_cipic

from spatial_alm.scenes import SceneRecipe, make_scene, sample_scene
from spatial_alm.scenes.head_pool import HeadPool, heads_in_folder, split_heads
from spatial_alm.scenes.recipe import REPO_ROOT
from spatial_alm.scenes.render import load_receiver, scene_receiver

BASE = {
    "fs_hz": 16000,
    "duration_s": 0.5,
    "room": {"size_m": {"x": [4, 6], "y": [4, 6], "z": [2.5, 3]}, "rt60_s": [0.2, 0.4], "tdiff_s": 0.03},
    "sources": {"count": [1, 2], "distance_m": [0.5, 1.5], "elevation_deg": [-40, 60]},
    "noise": {"type": ["white", "diffuse"]},
    "corpus": {"type": "procedural", "labels": ["siren", "bell", "clapping"]},
}
TOY_SUBJECTS = [f"subject_{n:03d}" for n in range(901, 909)]
TOY_TEST = ["subject_902", "cipic:subject_907"]  # by stem or by full name


def recipe(receiver: dict, **overrides) -> SceneRecipe:
    return SceneRecipe.from_dict({**BASE, "receiver": receiver}, overrides)


@pytest.fixture(scope="module")
def toy_heads_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_cipic")
    for k, name in enumerate(TOY_SUBJECTS):
        write_toy_cipic(folder / f"{name}.mat", gain=0.4 + 0.05 * k)
    (folder / "anthro.mat").write_bytes(b"")  # not a head: skipped
    return folder


def _names(recipe_, seed=0, count=100) -> list[str]:
    return [scene_receiver(recipe_, seed, i).name for i in range(count)]


@pytest.mark.parametrize("form", ["heads_dir", "heads"])
def test_per_head_split_never_leaks(toy_heads_dir, form):
    where = ({"heads_dir": str(toy_heads_dir)} if form == "heads_dir"
             else {"heads": [str(toy_heads_dir / f"{n}.mat") for n in TOY_SUBJECTS]})
    config = {"type": "heads", **where, "test_heads": TOY_TEST}
    test_names = {"cipic:subject_902", "cipic:subject_907"}
    train = _names(recipe({**config, "split": "train"}))
    test = _names(recipe({**config, "split": "test"}))
    assert set(train) == {f"cipic:{n}" for n in TOY_SUBJECTS} - test_names  # all train heads used, no test head
    assert set(test) == test_names
    everything = _names(recipe({**config, "split": "all"}))
    assert set(everything) == {f"cipic:{n}" for n in TOY_SUBJECTS}


def test_scene_head_is_a_function_of_seed_and_index(toy_heads_dir):
    r = recipe({"type": "heads", "heads_dir": str(toy_heads_dir)})
    forward = _names(r, seed=3, count=20)
    fresh = HeadPool(r.receiver.head_specs())
    assert [fresh.head_for_scene(3, i).name for i in reversed(range(20))] == forward[::-1]
    assert _names(r, seed=4, count=20) != forward
    # the head has a stream of its own: the rest of the scene is the same whatever the receiver
    sphere = recipe({"type": "sphere_head"})
    assert sample_scene(r, 3, 5) == sample_scene(sphere, 3, 5)


def test_structural_recipe_renders_deterministically():
    r = recipe({"type": "structural", "structural": {"shoulder_gain": [0.2, 0.3]}})
    first, again = make_scene(r, 0, 4), make_scene(r, 0, 4)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.meta == again.meta and first.qa == again.qa
    assert first.meta.receiver.startswith("structural:") and first.audio.shape == (2, 8000)
    names = _names(r, count=10)
    assert len(set(names)) == 10 and names[4] == first.meta.receiver
    head = scene_receiver(r, 0, 4).head
    assert 0.2 <= head.shoulder_gain <= 0.3
    assert {"front_back", "above_below"} <= scene_receiver(r, 0, 4).resolved_axes


def test_mixed_pool_draws_sphere_structural_and_measured(toy_heads_dir):
    r = recipe({"type": "heads", "heads": ["sphere", "structural", str(toy_heads_dir / "subject_901.mat")],
                "split": "train", "test_heads": ["sphere_head"]})
    names = set(_names(r, count=40))
    assert "cipic:subject_901" in names and "sphere_head" not in names
    assert any(n.startswith("structural:") for n in names)
    pool = load_receiver(r.receiver)
    assert isinstance(pool, HeadPool) and pool.num_channels == 2


def test_a_pool_equalises_its_measured_heads(toy_heads_dir):
    """receiver.equalisation reaches every drawn head; the scene's plan (head, sources, room) stays the same."""
    plain = recipe({"type": "heads", "heads_dir": str(toy_heads_dir)})
    equalised = recipe({"type": "heads", "heads_dir": str(toy_heads_dir), "equalisation": "diffuse_field"})
    for index in range(3):
        head = scene_receiver(equalised, 0, index).head
        assert head.equalisation == "diffuse_field" and head.equaliser is not None
        assert head.name == scene_receiver(plain, 0, index).name
        assert sample_scene(equalised, 0, index).sources == sample_scene(plain, 0, index).sources
    assert SceneRecipe.from_dict(yaml.safe_load(equalised.to_yaml())) == equalised  # what shard workers read


def test_an_equalised_cipic_scene_is_the_raw_one_through_the_equaliser(shared_data):
    """The same scene (plan, sources, noise draw) through the raw and the equalised subject: only the
    spectrum differs, in both ears alike at 3-5 kHz where a CIPIC head's ear canal adds most."""
    path = shared_data / "hrtf" / "cipic" / "subject_003.mat"
    if not path.is_file():
        pytest.skip(f"CIPIC subject file not found at {path}")
    receiver = {"type": "cipic", "cipic_path": str(path)}
    raw, equalised = (make_scene(recipe(receiver, **extra), 0, 1)
                      for extra in ({}, {"receiver.equalisation": "diffuse_field"}))
    def placed(record):  # the spectral cues are the head's (module spectral_cues) and may move a little
        return [(s.label, s.azimuth_deg, s.elevation_deg, s.distance_m, s.clip_id) for s in record.meta.sources]

    assert placed(raw) == placed(equalised)
    spectra = [np.abs(np.fft.rfft(r.audio.astype(np.float64), axis=-1)) ** 2 for r in (raw, equalised)]
    frequencies = np.fft.rfftfreq(raw.audio.shape[-1], 1 / 16000)
    high, low = (frequencies >= 3000) & (frequencies < 5000), (frequencies >= 250) & (frequencies < 1000)
    tilt_db = [10 * np.log10(s[:, high].sum(-1) / s[:, low].sum(-1)) for s in spectra]  # per ear
    assert np.all(tilt_db[1] < tilt_db[0] - 3.0), tilt_db


def test_evaluate_encoder_reports_every_head_of_a_pooled_dataset(toy_heads_dir, tmp_path):
    """A test set rendered through two heads: the report's groups hold each head's scenes, and together all."""
    from conftest import tiny_binaural_encoder

    from spatial_alm.data.generate import generate_dataset
    from spatial_alm.evaluation.encoder_report import evaluate_encoder

    heads = [str(toy_heads_dir / f"{name}.mat") for name in TOY_SUBJECTS[:2]]
    r = recipe({"type": "heads", "heads": heads}, **{"corpus.labels": ["rain", "siren"]})
    generate_dataset(r, tmp_path / "data", seed=0, num_scenes=8, num_shards=1, progress=False)
    model_dir = tiny_binaural_encoder().save_pretrained(tmp_path / "model")
    report = evaluate_encoder(model_dir, tmp_path / "data", tmp_path / "eval", baselines=[], progress=False)
    groups = {name: group for name, group in report["localisation"]["encoder"].items() if name.startswith("head ")}
    names = [scene_receiver(r, 0, i).name for i in range(8)]
    assert groups.keys() == {f"head {n} ({names.count(n)} scenes)" for n in set(names)} and len(groups) == 2
    with open(tmp_path / "eval" / "predictions.csv") as f:  # each scene's head, for analyses per head
        assert [row["receiver"] for row in csv.DictReader(f)] == names


def test_cipic_recipe_renders(shared_data):
    path = shared_data / "hrtf" / "cipic" / "subject_003.mat"
    if not path.is_file():
        pytest.skip(f"CIPIC subject file not found at {path}")
    r = recipe({"type": "cipic", "cipic_path": "${SPATIAL_ALM_SHARED_DATA}/hrtf/cipic/subject_003.mat"})
    record = make_scene(r, 0, 1)
    assert record.meta.receiver == "cipic:subject_003"
    assert record.audio.shape == (2, 8000) and np.isfinite(record.audio).all()
    np.testing.assert_array_equal(make_scene(r, 0, 1).audio, record.audio)


def test_cipic_recipe_file_holds_out_five_subjects(shared_data):
    r = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "cipic_binaural.yaml")
    assert SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "cipic_binaural.yaml").to_yaml() == r.to_yaml()
    if not (shared_data / "hrtf" / "cipic").is_dir():
        pytest.skip("no CIPIC folder in the shared data")
    test_recipe = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "cipic_binaural.yaml", {"receiver.split": "test"})
    train, test = set(_names(r)), set(_names(test_recipe))
    assert len(test) == 5 and test == {f"cipic:{n}" for n in r.receiver.test_heads}
    assert not train & test and len(train) >= 10
    for index in range(5):
        sample_scene(r, 0, index)


@pytest.mark.parametrize("receiver, message", [
    ({"type": "heads", "heads": ["sphere", "structural"], "split": "train", "test_heads": ["kemar"]},
     r"receiver\.test_heads = \['kemar'\]: \['kemar'\] match no head; allowed: .*sphere_head, structural"),
    ({"type": "heads", "heads": ["sphere", "structural"], "split": "train"}, r"receiver\.split = 'train' needs"),
    ({"type": "heads", "heads": ["sphere"], "heads_dir": "/x"}, "exactly one of receiver.heads"),
    ({"type": "heads", "heads": ["cube"]}, r"receiver\.heads = \['cube'\]; allowed"),
    ({"type": "heads", "heads": ["a/s1.mat", "b/s1.mat"]}, "two heads share a name"),
    ({"type": "heads", "heads": ["sphere"], "split": "test", "test_heads": ["sphere"]}, None),
    ({"type": "heads", "heads": ["sphere", "structural"], "split": "sideways", "test_heads": ["sphere"]},
     r"receiver\.split = 'sideways'; allowed: all, train, test"),
    ({"type": "structural", "structural": {"radius": 0.08}}, r"unknown key 'receiver\.structural\.radius'"),
    ({"type": "structural", "structural": {"radius_m": [0.08, 0.5]}}, r"receiver\.structural: radius_m = 0\.5"),
    ({"type": "cipic"}, r"receiver\.cipic_path = None; allowed: a path to a \.mat file"),
    ({"type": "sphere_head", "cipic_path": "x.mat"}, r"receiver\.cipic_path = 'x\.mat' is only used with"),
    ({"type": "sphere_head", "structural": {}}, r"receiver\.structural = \{\} is only used with"),
    ({"type": "sphere_head", "split": "train"}, r"only used with receiver\.type 'heads'"),
    ({"type": "sphere_head", "equalisation": "flat"}, r"receiver\.equalisation = 'flat'; allowed: none, diffuse_field"),
    ({"type": "sphere_head", "equalisation": "diffuse_field"},
     r"receiver\.equalisation = 'diffuse_field' applies to measured heads only .* type is 'sphere_head'"),
    ({"type": "heads", "heads": ["structural", "a/s1.mat"], "equalisation": "diffuse_field"},
     r"applies to measured heads only .* with \['structural'\]"),
])
def test_bad_receiver_config_names_the_field(receiver, message):
    if message is None:  # a valid corner: a pool of one, all of it held out
        assert recipe(receiver).receiver.split == "test"
        return
    with pytest.raises(ValueError, match=message):
        recipe(receiver)


def test_heads_dir_errors_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"receiver\.heads_dir = .* is not a folder"):
        heads_in_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"receiver\.heads_dir = .* holds no head files"):
        heads_in_folder(tmp_path)
    with pytest.raises(ValueError, match=r"receiver\.split = 'test' leaves no head"):
        split_heads(["sphere"], "test", [])
    r = recipe({"type": "heads", "heads_dir": str(tmp_path), "split": "train", "test_heads": ["subject_001"]})
    with pytest.raises(ValueError, match="holds no head files"):
        scene_receiver(r, 0, 0)


def test_structural_ranges_round_trip_through_canonical_yaml():
    r = recipe({"type": "structural", "structural": {"shoulder_gain": 0.25, "radius_m": [0.08, 0.09]}})
    text = r.to_yaml()
    again = SceneRecipe.from_dict(yaml.safe_load(text))
    assert again == r and again.to_yaml() == text
    assert again.receiver.structural == {"radius_m": [0.08, 0.09], "shoulder_gain": [0.25, 0.25]}


def test_a_pooled_dataset_index_names_every_head(toy_heads_dir, tmp_path):
    from spatial_alm.data import read_index
    from spatial_alm.data.generate import generate_dataset

    pooled = recipe({"type": "heads", "heads_dir": str(toy_heads_dir), "test_heads": TOY_TEST, "split": "test"})
    generate_dataset(pooled, tmp_path / "test", seed=0, num_scenes=12, num_shards=2, progress=False)
    assert read_index(tmp_path / "test").receiver == "2 heads: cipic:subject_902, cipic:subject_907"
    one = recipe({"type": "heads", "heads_dir": str(toy_heads_dir), "test_heads": ["subject_902"], "split": "test"})
    generate_dataset(one, tmp_path / "one", seed=0, num_scenes=2, num_shards=1, progress=False)
    assert read_index(tmp_path / "one").receiver == "cipic:subject_902"
