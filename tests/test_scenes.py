"""Scene recipes, sampling and rendering: determinism, geometry, interaural cues, SNR, levels, recipes."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from spatial_alm.acoustics import make_array
from spatial_alm.coordinates import SPEED_OF_SOUND_M_S
from spatial_alm.scenes import (
    NOISES,
    RECEIVERS,
    ArrayReceiver,
    SceneRecipe,
    expand_path,
    load_receiver,
    make_scene,
    render_parts,
    render_scene,
    sample_scene,
)
from spatial_alm.scenes.recipe import NOISE_TYPES, RECEIVER_TYPES, REPO_ROOT
from spatial_alm.scenes.render import diffuse_noise, pink_noise
from spatial_alm.scenes.sources import PROCEDURAL_CLASSES, TARGET_RMS

RECIPE_DIR = REPO_ROOT / "simulation"
RECIPE_FILES = ("tiny_binaural.yaml", "bat_binaural.yaml", "tetra_array.yaml", "esc50_binaural.yaml")

# Short clips in small rooms keep every render well under a second on a laptop CPU.
BASE = {
    "fs_hz": 16000,
    "duration_s": 0.5,
    "room": {"size_m": {"x": [4, 6], "y": [4, 6], "z": [2.5, 3]}, "rt60_s": [0.2, 0.4], "tdiff_s": 0.03},
    "sources": {"count": [1, 2], "distance_m": [0.5, 1.5]},
    "noise": {"type": ["white", "pink", "diffuse"]},
}


def make_recipe(**overrides) -> SceneRecipe:
    """BASE with dotted-key overrides given as keyword arguments, ``room__rt60_s=0.3``."""
    return SceneRecipe.from_dict(BASE, {k.replace("__", "."): v for k, v in overrides.items()})


class NoiseLibrary:
    """One class of white-noise clips: broadband, so interaural delays are easy to measure."""

    labels = ("noise",)

    def sample(self, label, fs_hz, duration_s, rng):
        seed = int(rng.integers(2**32))
        x = np.random.default_rng(seed).standard_normal(round(fs_hz * duration_s))
        return (x * TARGET_RMS / x.std()).astype(np.float32), f"noise:{seed}"


# --- independent geometry (numpy, not spatial_alm.coordinates) --------------------------------

def listener_direction(position, receiver, yaw_deg):
    """(azimuth deg, elevation deg, distance m) of a room point seen from a receiver turned by yaw."""
    d = np.asarray(position) - np.asarray(receiver)
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    front, left = c * d[0] + s * d[1], -s * d[0] + c * d[1]
    return (math.degrees(math.atan2(left, front)), math.degrees(math.atan2(d[2], math.hypot(front, left))),
            float(np.linalg.norm(d)))


def angle_between_deg(az1, el1, az2, el2):
    def unit(az, el):
        az, el = math.radians(az), math.radians(el)
        return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return math.degrees(math.acos(np.clip(unit(az1, el1) @ unit(az2, el2), -1.0, 1.0)))


def gcc_phat_delay_s(left, right, fs_hz, max_delay_s=1.5e-3, upsample=16):
    """Delay of ``right`` behind ``left`` in seconds (> 0: the right channel lags), GCC-PHAT."""
    n = 2 * len(left)
    cross = np.fft.rfft(right, n) * np.conj(np.fft.rfft(left, n))
    cc = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n * upsample)
    max_lag = int(max_delay_s * fs_hz * upsample)
    cc = np.concatenate([cc[-max_lag:], cc[: max_lag + 1]])
    return (int(np.argmax(cc)) - max_lag) / (fs_hz * upsample)


# --- (a) determinism --------------------------------------------------------------------------

def test_scene_is_a_function_of_seed_and_index():
    recipe = make_recipe()
    records = [make_scene(recipe, 11, i) for i in range(4)]
    again = make_scene(recipe, 11, 2)  # regenerates alone, after other scenes
    assert again.audio.tobytes() == records[2].audio.tobytes()
    assert again.meta == records[2].meta and again.qa == records[2].qa and again.plan == records[2].plan
    assert records[1].audio.tobytes() != records[2].audio.tobytes()
    assert records[1].meta != records[2].meta
    other_seed = make_scene(recipe, 12, 2)
    assert other_seed.audio.tobytes() != records[2].audio.tobytes()
    assert set(again.timings) == {"setup", "sample", "rirs", "render", "qa"}
    assert all(t >= 0 for t in again.timings.values())


def test_plan_seeds_do_not_depend_on_geometry_retries():
    """Stream seeds are drawn first: changing the room ranges keeps signals, tail and noise seeds."""
    a = sample_scene(make_recipe(), 3, 5)
    b = sample_scene(make_recipe(room__size_m__x=[5, 9]), 3, 5)
    assert (a.signal_seed, a.rir_seed, a.noise_seed, a.qa_seed) == (b.signal_seed, b.rir_seed, b.noise_seed,
                                                                    b.qa_seed)
    assert a.room_dim_m != b.room_dim_m


# --- (b) interaural delay of the rendered direct sound ----------------------------------------

@pytest.mark.parametrize("azimuth_deg", [-150.0, -90.0, -40.0, 0.0, 30.0, 75.0, 120.0])
def test_sphere_head_itd_follows_woodworth(azimuth_deg):
    recipe = make_recipe(
        room__size_m={"x": 8, "y": 8, "z": 3}, room__rt60_s=0.2, sources__count=1,
        sources__azimuth_deg=azimuth_deg, sources__elevation_deg=0, sources__distance_m=1.0,
        noise__type="none",
    )
    record = make_scene(recipe, 0, int(azimuth_deg) + 200, library=NoiseLibrary())
    source = record.meta.sources[0]
    assert source.azimuth_deg == pytest.approx(azimuth_deg, abs=1e-6)
    radius_m = load_receiver(recipe.receiver).head.radius_m
    lateral = math.asin(math.sin(math.radians(source.azimuth_deg)))  # angle off the median plane
    woodworth_s = radius_m / SPEED_OF_SOUND_M_S * (lateral + math.sin(lateral))
    measured_s = gcc_phat_delay_s(record.audio[0], record.audio[1], recipe.fs_hz)
    assert measured_s == pytest.approx(woodworth_s, abs=1e-4)
    if abs(azimuth_deg) >= 30:
        assert np.sign(measured_s) == np.sign(azimuth_deg)  # a source on the left reaches the left ear first


@pytest.mark.parametrize("azimuth_deg", [-60.0, 25.0, 140.0])
def test_mic_pair_tdoa_matches_geometry(azimuth_deg):
    recipe = make_recipe(
        receiver__type="array", receiver__array="pair", room__size_m={"x": 8, "y": 8, "z": 3},
        room__rt60_s=0.2, sources__count=1, sources__azimuth_deg=azimuth_deg, sources__elevation_deg=0,
        sources__distance_m=2.0, noise__type="none",
    )
    record = make_scene(recipe, 1, 0, library=NoiseLibrary())
    receiver = load_receiver(recipe.receiver)
    mics = receiver.array.positions(torch.tensor([record.meta.receiver_position_m]),
                                    record.meta.receiver_yaw_deg)[0].numpy()
    distances = np.linalg.norm(np.asarray(record.meta.sources[0].position_m) - mics, axis=1)
    expected_s = (distances[1] - distances[0]) / SPEED_OF_SOUND_M_S  # channel 0 = left microphone
    measured_s = gcc_phat_delay_s(record.audio[0], record.audio[1], recipe.fs_hz)
    assert measured_s == pytest.approx(expected_s, abs=2e-5)
    assert record.meta.receiver == "pair"


# --- (c) geometry of sampled scenes -----------------------------------------------------------

def test_sampled_geometry_respects_the_recipe():
    recipe = make_recipe(
        sources__count=[2, 3], sources__min_separation_deg=40, sources__azimuth_deg=[-120, 150],
        sources__elevation_deg=[-20, 45], sources__distance_m=[0.8, 2.0], sources__level_db=[-12, -3],
        sources__min_wall_distance_m=0.4, receiver__min_wall_distance_m=0.7, receiver__height_m=[1.0, 1.6],
    )
    labels = PROCEDURAL_CLASSES[:6]
    for index in range(60):
        plan = sample_scene(recipe, 5, index, labels=labels)
        room = np.array(plan.room_dim_m)
        receiver = np.array(plan.receiver_position_m)
        assert 4 <= room[0] <= 6 and 4 <= room[1] <= 6 and 2.5 <= room[2] <= 3
        assert 0.2 <= plan.rt60_s <= 0.4
        assert np.all(receiver >= 0.7) and np.all(receiver <= room - 0.7) and 1.0 <= receiver[2] <= 1.6
        assert 2 <= len(plan.sources) <= 3
        assert len({s.label for s in plan.sources}) == len(plan.sources)  # distinct classes
        assert max(s.level_db for s in plan.sources) == 0.0
        assert all(-12 <= s.level_db <= 0 for s in plan.sources)
        for s in plan.sources:
            position = np.array(s.position_m)
            assert np.all(position >= 0.4 - 1e-9) and np.all(position <= room - 0.4 + 1e-9)
            az, el, dist = listener_direction(position, receiver, plan.receiver_yaw_deg)
            assert (az, el, dist) == pytest.approx((s.azimuth_deg, s.elevation_deg, s.distance_m), abs=1e-6)
            assert -120 <= az <= 150 and -20 <= el <= 45 and 0.8 <= dist <= 2.0
        for a, b in zip(plan.sources, plan.sources[1:]):
            assert angle_between_deg(a.azimuth_deg, a.elevation_deg, b.azimuth_deg, b.elevation_deg) >= 40 - 1e-6


def test_metadata_directions_are_recomputed_from_positions():
    recipe = make_recipe(sources__count=2, noise__type="none")
    for index in range(2):
        meta = make_scene(recipe, 2, index).meta
        for s in meta.sources:
            az, el, dist = listener_direction(s.position_m, meta.receiver_position_m, meta.receiver_yaw_deg)
            assert (s.azimuth_deg, s.elevation_deg, s.distance_m) == pytest.approx((az, el, dist), abs=1e-6)
            assert -180 < s.azimuth_deg <= 180
            assert all(type(v) is float for v in (s.azimuth_deg, s.elevation_deg, s.distance_m, *s.position_m))
        assert meta.receiver == "sphere_head" and meta.noise == "none" and meta.snr_db == math.inf


def test_impossible_geometry_names_the_fields_to_loosen():
    recipe = make_recipe(sources__distance_m=[8.0, 9.0], sources__count=1)
    with pytest.raises(ValueError, match="sources.distance_m"):
        sample_scene(recipe, 0, 0, labels=["a"])


# --- (d) noise --------------------------------------------------------------------------------

@pytest.mark.parametrize("noise_type", ["white", "pink", "diffuse"])
def test_noise_is_added_at_the_requested_snr(noise_type):
    recipe = make_recipe(noise__type=noise_type, noise__snr_db=[4, 16])
    record = make_scene(recipe, 4, 1)
    receiver = load_receiver(recipe.receiver)
    clean, _ = render_scene(recipe, dataclasses.replace(record.plan, noise_type="none"),
                            recipe.source_library(), receiver)
    noisy = record.audio.astype(np.float64)
    clean = clean.astype(np.float64)
    signal = clean * np.sum(noisy * clean) / np.sum(clean * clean)  # both are peak-normalised: undo the ratio
    noise = noisy - signal
    snr_db = 10 * np.log10(np.mean(signal**2) / np.mean(noise**2))
    assert snr_db == pytest.approx(record.meta.snr_db, abs=0.5)
    assert 4 <= record.meta.snr_db <= 16 and record.meta.noise == noise_type


def test_render_parts_are_the_scene_before_mixing():
    """The sources' images plus the noise, scaled to the peak, are the rendered audio; the noise sits at the planned
    SNR against the images' sum; no noise type gives zeros."""
    recipe = make_recipe(sources__count=[2, 2], noise__type="pink", noise__snr_db=[5, 5])
    record = make_scene(recipe, 6, 0)
    library, receiver = recipe.source_library(), load_receiver(recipe.receiver)
    images, noise, dry, _ = render_parts(recipe, record.plan, library, receiver)
    assert images.shape == (2, 2, recipe.num_samples) and noise.shape == (2, recipe.num_samples)
    mixture = (images.sum(0).double() + noise).numpy()
    gain = 10.0 ** (recipe.output.peak_dbfs / 20.0) / np.abs(mixture).max()
    np.testing.assert_allclose(mixture * gain, record.audio, atol=1e-6)
    snr_db = 10.0 * np.log10(np.mean(images.sum(0).double().numpy() ** 2) / np.mean(noise.numpy() ** 2))
    assert snr_db == pytest.approx(5.0, abs=1e-9)
    _, silence, _, _ = render_parts(recipe, dataclasses.replace(record.plan, noise_type="none"), library, receiver)
    assert not silence.any()


def test_diffuse_noise_has_the_coherence_of_a_diffuse_field():
    spacing_m, fs_hz = 0.1, 16000
    receiver = ArrayReceiver(make_array("pair", spacing_m=spacing_m))
    noise = diffuse_noise(receiver, fs_hz, 16 * fs_hz, torch.Generator().manual_seed(0))
    spec = torch.stft(noise, 512, window=torch.hann_window(512, dtype=torch.float64), return_complex=True)
    cross = (spec[0] * spec[1].conj()).mean(-1)
    coherence = cross.real / torch.sqrt((spec[0].abs() ** 2).mean(-1) * (spec[1].abs() ** 2).mean(-1))
    freqs = torch.fft.rfftfreq(512, 1 / fs_hz, dtype=torch.float64)
    expected = torch.sinc(2 * freqs * spacing_m / SPEED_OF_SOUND_M_S)
    assert torch.allclose(coherence[1:], expected[1:], atol=0.1)


def test_pink_noise_falls_3_db_per_octave():
    receiver = ArrayReceiver(make_array("pair"))
    noise = pink_noise(receiver, 16000, 64000, torch.Generator().manual_seed(0))
    power = torch.fft.rfft(noise).abs().square().mean(0)
    freqs = torch.fft.rfftfreq(64000, 1 / 16000)

    def band(lo, hi):
        return power[(freqs >= lo) & (freqs < hi)].mean()

    assert 10 * torch.log10(band(250, 500) / band(1000, 2000)) == pytest.approx(6.02, abs=0.5)


# --- (e) recipe validation --------------------------------------------------------------------

@pytest.mark.parametrize("data, key, valid", [
    ({"bogus": 1}, "'bogus'", "fs_hz, duration_s, room"),
    ({"room": {"rt60": 0.3}}, "'room.rt60'", "size_m, rt60_s, tdiff_s"),
    ({"room": {"size_m": {"w": [3, 4]}}}, "'room.size_m.w'", "x, y, z"),
    ({"noise": {"kind": "white"}}, "'noise.kind'", "type, snr_db"),
    ({"corpus": {"type": "esc50", "root": "x", "splt": "train"}}, "'corpus.splt'", "split"),
])
def test_unknown_keys_are_named_with_the_valid_keys(data, key, valid):
    with pytest.raises(ValueError, match="unknown key") as err:
        SceneRecipe.from_dict(data)
    assert key in str(err.value) and valid in str(err.value)


@pytest.mark.parametrize("override, field", [
    ({"room.size_m.x": [-3, 4]}, "room.size_m.x"),
    ({"room.rt60_s": [0.8, 0.2]}, "room.rt60_s"),
    ({"room.tdiff_s": -0.1}, "room.tdiff_s"),
    ({"sources.azimuth_deg": [-190, 0]}, "sources.azimuth_deg"),
    ({"sources.elevation_deg": [0, 95]}, "sources.elevation_deg"),
    ({"sources.distance_m": [3, 1]}, "sources.distance_m"),
    ({"sources.count": [0, 2]}, "sources.count"),
    ({"sources.count": [3, 2]}, "sources.count"),
    ({"sources.level_db": [-6, 3]}, "sources.level_db"),
    ({"noise.snr_db": [30, 10]}, "noise.snr_db"),
    ({"noise.type": "brown"}, "noise.type"),
    ({"receiver.type": "ears"}, "receiver.type"),
    ({"receiver.type": "array", "receiver.array": "octahedral"}, "receiver.array"),
    ({"receiver.type": "sofa"}, "receiver.sofa_path"),
    ({"fs_hz": 0}, "fs_hz"),
    ({"duration_s": 0}, "duration_s"),
    ({"output.audio_dtype": "int8"}, "output.audio_dtype"),
    ({"output.peak_dbfs": 3}, "output.peak_dbfs"),
    ({"qa.stage": "IV"}, "qa.stage"),
    ({"qa.types": ["Z"]}, "qa.types"),
    ({"qa.unresolvable_axes": "never"}, "qa.unresolvable_axes"),
    ({"room.rt60_s": 0.05}, "room.rt60_s"),
])
def test_out_of_range_values_name_the_field(override, field):
    with pytest.raises(ValueError, match="allowed") as err:
        SceneRecipe.from_dict(BASE, override)
    assert field in str(err.value)


def test_recipe_round_trips_through_canonical_yaml():
    recipe = make_recipe(corpus={"type": "procedural", "labels": ["siren", "bell"]}, qa__types=["A", "B"])
    text = recipe.to_yaml()
    again = SceneRecipe.from_dict(yaml.safe_load(text))
    assert again == recipe and again.to_yaml() == text
    assert "rt60_s: [0.2, 0.4]" in text
    assert recipe.qa.question_types() == ["A", "B"]
    assert recipe.source_library().labels == ("bell", "siren")


def test_registries_implement_every_recipe_choice():
    assert set(RECEIVERS) == set(RECEIVER_TYPES)
    assert set(NOISES) | {"none"} == set(NOISE_TYPES)


def test_shared_data_variable_defaults_beside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("SPATIAL_ALM_SHARED_DATA", raising=False)
    assert expand_path("${SPATIAL_ALM_SHARED_DATA}/esc50") == REPO_ROOT.parent / "shared" / "data" / "esc50"
    monkeypatch.setenv("SPATIAL_ALM_SHARED_DATA", str(tmp_path))
    assert expand_path("${SPATIAL_ALM_SHARED_DATA}/esc50") == tmp_path / "esc50"


# --- (f, g) the recipe files ------------------------------------------------------------------

@pytest.mark.parametrize("name", RECIPE_FILES)
def test_recipe_files_validate(name):
    recipe = SceneRecipe.from_yaml(RECIPE_DIR / name)  # parsing needs no data: paths expand when used
    assert recipe.description
    assert SceneRecipe.from_dict(yaml.safe_load(recipe.to_yaml())) == recipe


@pytest.mark.parametrize("name", [n for n in RECIPE_FILES if not n.startswith("esc50")])
def test_procedural_recipe_files_sample_feasible_scenes(name):
    recipe = SceneRecipe.from_yaml(RECIPE_DIR / name)
    for index in range(20):
        plan = sample_scene(recipe, 0, index)
        assert recipe.sources.count[0] <= len(plan.sources) <= recipe.sources.count[1]


def test_esc50_recipe_validates_against_shared_data(shared_data):
    recipe = SceneRecipe.from_yaml(RECIPE_DIR / "esc50_binaural.yaml")
    assert expand_path(recipe.receiver.sofa_path).is_file()
    assert Path(recipe.corpus.load_spec()["root"]).is_dir()
    for index in range(20):
        sample_scene(recipe, 0, index)


def test_esc50_recipe_renders_real_train_clips(shared_data):
    recipe = SceneRecipe.from_yaml(RECIPE_DIR / "esc50_binaural.yaml", {"duration_s": 1.0, "sources.count": 2})
    library = recipe.source_library()
    train = {e.path for e in library.entries}
    assert {e.split for e in library.entries} == {"train"}
    record = make_scene(recipe, 0, 3)
    assert record.audio.shape == (2, 16000) and np.isfinite(record.audio).all()
    assert record.meta.receiver == "sofa:mit_kemar_normal_pinna"
    for s in record.meta.sources:
        assert s.clip_id in train and s.label in library.labels
    assert record.qa


# --- (h) output level -------------------------------------------------------------------------

@pytest.mark.parametrize("peak_dbfs", [-1.0, 0.0])
def test_peak_is_at_peak_dbfs_and_never_above_full_scale(peak_dbfs):
    recipe = make_recipe(output__peak_dbfs=peak_dbfs, sources__level_db=0)
    for index in range(2):
        audio = make_scene(recipe, 8, index).audio
        assert audio.dtype == np.float32 and audio.shape == (2, 8000)
        assert np.abs(audio).max() == pytest.approx(10 ** (peak_dbfs / 20), rel=1e-6)
        assert np.abs(audio).max() <= 1.0
