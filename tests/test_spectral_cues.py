"""Per-source spectral cues: a head's colouring tells front/back and above/below only for sounds that
carry it, and the QA generator does not ask about sides a source's sound cannot tell."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from spatial_alm.acoustics import HeadModel, SofaHead, SphereHead
from spatial_alm.acoustics.spectral_cues import spectral_cues_db
from spatial_alm.coordinates import spherical_to_cartesian
from spatial_alm.qa import generate_qa
from spatial_alm.scenes import SceneRecipe, make_scene
from spatial_alm.scenes.metadata import SceneMeta, SourceMeta

FS = 16000
N_FFT = 512


class TwoFilterHead(HeadModel):
    """A toy head: both ears get ``front`` for sources in front (x >= 0) and ``back`` behind, the same
    for above and below."""

    name = "two_filter"

    def __init__(self, front, back):
        super().__init__()
        self.front, self.back = torch.tensor(front, dtype=torch.float32), torch.tensor(back, dtype=torch.float32)

    def _build_table(self, fs_hz):
        raise NotImplementedError("the toy head has no table")

    def hrirs(self, directions, fs_hz):
        behind = torch.as_tensor(directions)[:, 0] < 0
        return torch.stack([(self.back if b else self.front).expand(2, -1) for b in behind.tolist()])


def impulse(length=4 * N_FFT):
    """A signal with a flat power spectrum in every Welch frame it reaches (the impulse at a window peak)."""
    x = torch.zeros(1, length)
    x[0, N_FFT // 2] = 1.0
    return x


def third_octave_shape_rms(gain_db_front, gain_db_back):
    """The cue of a flat-spectrum source, computed from its definition with numpy: third-octave bands with
    centres 1000 * 2^(k/3) Hz from 250 Hz (k = -6) to the last starting below 8 kHz, levels of the power
    transfer per FFT bin summed in the band, floored 30 dB below the loudest band."""
    f = np.fft.rfftfreq(N_FFT, 1 / FS)
    front, back = [], []
    for k in range(-6, 20):
        low, high = 1000 * 2 ** (k / 3 - 1 / 6), min(1000 * 2 ** (k / 3 + 1 / 6), FS / 2)
        if low >= FS / 2:
            break
        inside = (f >= low) & (f < high)
        front.append(10 * np.log10(np.sum(10 ** (gain_db_front(f[inside]) / 10))))
        back.append(10 * np.log10(np.sum(10 ** (gain_db_back(f[inside]) / 10))))
    front, back = np.array(front), np.array(back)
    floor = max(front.max(), back.max()) - 30
    audible = (front > floor) | (back > floor)
    difference = (np.maximum(front, floor) - np.maximum(back, floor))[audible]
    return float(np.sqrt(np.mean((difference - difference.mean()) ** 2)))


def test_sphere_head_colours_front_and_back_alike_and_up_and_down_alike():
    rng = torch.Generator().manual_seed(0)
    azimuth, elevation = torch.rand(8, generator=rng) * 360 - 180, torch.rand(8, generator=rng) * 120 - 60
    directions = spherical_to_cartesian(azimuth, elevation)
    cues = spectral_cues_db(SphereHead(), directions, torch.randn(8, FS, generator=rng), FS)
    assert set(cues) == {"front_back", "above_below"}
    for cue in cues.values():
        assert cue.shape == (8,) and float(cue.abs().max()) < 1e-6


def test_a_level_difference_alone_is_no_cue():
    # behind, the same filter 6 dB down: a quieter source would sound the same
    head = TwoFilterHead([1.0, 0.0], [0.5, 0.0])
    cues = spectral_cues_db(head, spherical_to_cartesian(torch.tensor([30.0]), torch.tensor([0.0])), impulse(), FS)
    assert float(cues["front_back"][0]) == pytest.approx(0.0, abs=1e-9)


def test_cue_of_a_spectral_tilt_matches_its_definition():
    # behind, a two-tap average: |H(f)|^2 = cos^2(pi f / fs), a low-pass colouring
    head = TwoFilterHead([1.0, 0.0], [0.5, 0.5])
    cues = spectral_cues_db(head, spherical_to_cartesian(torch.tensor([30.0]), torch.tensor([0.0])), impulse(), FS)
    expected = third_octave_shape_rms(lambda f: 0 * f, lambda f: 10 * np.log10(np.cos(np.pi * f / FS) ** 2 + 1e-300))
    assert 2.0 < expected < 10.0
    assert float(cues["front_back"][0]) == pytest.approx(expected, rel=1e-6)


def test_a_single_band_sound_has_no_shape_to_colour():
    head = TwoFilterHead([1.0, 0.0], [0.5, 0.5])
    t = torch.arange(FS) / FS
    tone = torch.sin(2 * math.pi * 1000.0 * t)[None]  # 1 kHz, exactly on an FFT bin
    cue = spectral_cues_db(head, spherical_to_cartesian(torch.tensor([30.0]), torch.tensor([0.0])), tone, FS)
    assert float(cue["front_back"][0]) < 0.5


def test_measured_head_colours_broadband_sounds_not_tones_or_low_sounds(shared_data):
    path = shared_data / "hrtf" / "mit_kemar_normal_pinna.sofa"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    rng = torch.Generator().manual_seed(1)
    noise = torch.randn(1, 2 * FS, generator=rng)
    low = torch.fft.irfft(torch.fft.rfft(noise) * (torch.fft.rfftfreq(2 * FS, 1 / FS) < 500), n=2 * FS)
    tone = torch.sin(2 * math.pi * 440.0 * torch.arange(2 * FS) / FS)[None]
    signals = torch.cat([noise, low, tone])
    head = SofaHead(path)
    for azimuth, elevation in [(30.0, 20.0), (120.0, -25.0), (-45.0, 30.0)]:
        directions = spherical_to_cartesian(torch.full((3,), azimuth), torch.full((3,), elevation))
        cues = spectral_cues_db(head, directions, signals, FS)
        for axis in ("front_back", "above_below"):
            broadband, below_500_hz, pure_tone = cues[axis].tolist()
            # the pinna's colouring lies above 2-3 kHz: white noise takes it on, the others do not
            assert broadband > 2.0 and below_500_hz < 1.0 and pure_tone < 1.0, (azimuth, elevation, axis)


# --- the generator asks only about sides a source's sound can tell --------------------------------

LABELS = ("siren", "dog", "bell", "rain", "cat")


def scene_with_cues(rng: np.random.Generator, index: int, cue_db) -> SceneMeta:
    """Three distinct classes over the sphere; source 0's cues are ``cue_db``, the others' 5 dB."""
    labels = rng.choice(LABELS, 3, replace=False)
    sources = tuple(SourceMeta(label=str(label), azimuth_deg=float(180.0 - rng.uniform(0.0, 360.0)),
                               elevation_deg=float(rng.uniform(-60.0, 60.0)), distance_m=float(rng.uniform(0.5, 5.0)),
                               position_m=(1.0, 1.0, 1.5), level_db=0.0,
                               front_back_cue_db=cue_db if k == 0 else 5.0,
                               above_below_cue_db=cue_db if k == 0 else 5.0)
                    for k, label in enumerate(labels))
    return SceneMeta(index=index, fs_hz=FS, duration_s=2.0, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.5,
                     receiver="sofa:kemar", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0,
                     noise="none", snr_db=30.0, sources=sources)


def asked_about_source_0(cue_db, min_cue_db, num_scenes=300) -> Counter:
    """(type, axis) -> how often E or negative asks about source 0's side (E: it is one of the two named)."""
    rng, counts = np.random.default_rng(0), Counter()
    for index in range(num_scenes):
        scene = scene_with_cues(rng, index, cue_db)
        for pair in generate_qa(scene, rng, ("E", "negative"), 2, label_vocabulary=LABELS,
                                min_spectral_cue_db=min_cue_db):
            named = ({pair.fields["label_a"], pair.fields["label_b"]} if pair.question_type == "E"
                     else {pair.fields["a_label"].split(" ", 1)[1]})
            present = pair.question_type == "E" or pair.source_index is not None or not pair.target["yes"]
            if scene.sources[0].label in named and present:
                counts[pair.question_type, pair.target["axis"]] += 1
    return counts


def test_a_source_without_the_cue_is_not_asked_about_that_side():
    counts = asked_about_source_0(cue_db=0.5, min_cue_db=2.0)
    assert not any(counts[kind, axis] for kind in ("E", "negative") for axis in ("front_back", "above_below"))
    assert counts["E", "left_right"] and counts["E", "distance"] and counts["negative", "left_right"]


@pytest.mark.parametrize("cue_db, min_cue_db", [(3.0, 2.0), (0.5, None), (None, 2.0)])
def test_sources_with_the_cue_or_without_a_record_or_limit_are_asked(cue_db, min_cue_db):
    counts = asked_about_source_0(cue_db, min_cue_db)
    assert all(counts[kind, axis] for kind in ("E", "negative") for axis in ("front_back", "above_below"))


def test_make_scene_records_a_heads_cues_and_none_for_an_array(shared_data):
    sofa = shared_data / "hrtf" / "mit_kemar_normal_pinna.sofa"
    if not sofa.is_file():
        pytest.skip(f"{sofa} not found")
    head = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "tiny_binaural.yaml",
                                 {"receiver": {"type": "sofa", "sofa_path": str(sofa)}, "duration_s": 0.5})
    array = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "tiny_binaural.yaml",
                                  {"receiver": {"type": "array", "array": "tetrahedral"}, "duration_s": 0.5})
    assert head.qa.min_spectral_cue_db == 1.0
    for index in range(3):
        for source in make_scene(head, 0, index).meta.sources:
            assert source.front_back_cue_db >= 0.0 and source.above_below_cue_db >= 0.0
        for source in make_scene(array, 0, index).meta.sources:
            assert source.front_back_cue_db is None and source.above_below_cue_db is None


def test_recipe_limit_is_validated():
    path = REPO_ROOT / "simulation" / "tiny_binaural.yaml"
    recipe = SceneRecipe.from_yaml(path, {"qa": {"min_spectral_cue_db": None}})
    assert recipe.qa.min_spectral_cue_db is None and recipe.qa.spectral_cue_limit() is None
    ask = SceneRecipe.from_yaml(path, {"qa": {"unresolvable_axes": "ask"}})
    assert ask.qa.min_spectral_cue_db == 1.0 and ask.qa.spectral_cue_limit() is None  # "ask" asks about every source
    with pytest.raises(ValueError, match="qa.min_spectral_cue_db"):
        SceneRecipe.from_yaml(path, {"qa": {"min_spectral_cue_db": -1}})


def test_encoder_report_groups_scenes_by_the_primary_sources_cue():
    from spatial_alm.evaluation.encoder_report import by_spectral_cue, primary_cues_db

    def scene(*sources):
        return SceneMeta(index=0, fs_hz=FS, duration_s=1.0, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.3,
                         receiver="sofa:kemar", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0,
                         noise="none", snr_db=math.inf, sources=sources)

    def source(level_db, front_back, above_below):
        return SourceMeta(label="bell", azimuth_deg=30.0, elevation_deg=20.0, distance_m=1.0,
                          position_m=(1.0, 1.0, 1.0), level_db=level_db, front_back_cue_db=front_back,
                          above_below_cue_db=above_below)

    # the loudest source's cues count (the encoder's direction is the primary source's)
    assert primary_cues_db(scene(source(-6.0, 3.0, 3.0), source(0.0, 0.5, 2.0))) == (0.5, 2.0)
    assert all(math.isnan(cue) for cue in primary_cues_db(scene(source(0.0, None, None))))
    cues = np.array([(0.5, 2.0), (3.0, 0.2), (math.nan, math.nan), (1.0, 1.0)])
    groups = by_spectral_cue(cues, lambda sel: np.flatnonzero(sel).tolist())
    assert groups == {"front/back cue >= 1 dB (2 scenes)": [1, 3], "front/back cue < 1 dB (1 scenes)": [0],
                      "above/below cue >= 1 dB (2 scenes)": [0, 3], "above/below cue < 1 dB (1 scenes)": [1]}


def test_encoder_report_groups_scenes_by_the_primary_sources_direct_to_reverberant_ratio():
    from spatial_alm.acoustics.room import critical_distance_m
    from spatial_alm.evaluation.encoder_report import (
        _by_drr,
        direct_to_reverberant_db,
        sources_direct_to_reverberant_db,
    )

    critical = critical_distance_m((5.0, 4.0, 3.0), 0.5)  # 0.62 m

    def source(level_db, distance_m):
        return SourceMeta(label="bell", azimuth_deg=30.0, elevation_deg=20.0, distance_m=distance_m,
                          position_m=(1.0, 1.0, 1.0), level_db=level_db)

    def scene(*sources):
        return SceneMeta(index=0, fs_hz=FS, duration_s=1.0, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.5,
                         receiver="sofa:kemar", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0,
                         noise="none", snr_db=math.inf, sources=sources)

    # the loudest source at twice the critical distance: 20 log10(1 / 2) = -6.02 dB; a source at it: 0 dB
    assert direct_to_reverberant_db(scene(source(-3.0, critical), source(0.0, 2 * critical))) == pytest.approx(-6.02,
                                                                                                               abs=0.01)
    assert direct_to_reverberant_db(scene(source(0.0, critical))) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(direct_to_reverberant_db(scene()))
    # every source's own ratio, in the scene's order: -6.02 dB at twice the critical distance, +6.02 at half
    assert sources_direct_to_reverberant_db(scene(source(-3.0, 2 * critical), source(0.0, critical / 2))) == \
        pytest.approx([-6.02, 6.02], abs=0.01)
    groups = _by_drr(np.array([-9.0, -6.0, -0.5, 0.0, 4.0, math.nan]), lambda sel: np.flatnonzero(sel).tolist())
    assert groups == {"direct-to-reverberant < -6 dB (1 scenes)": [0], "direct-to-reverberant -6 to 0 dB (2 scenes)":
                      [1, 2], "direct-to-reverberant >= 0 dB (2 scenes)": [3, 4]}


def test_dataset_summary_counts_the_sources_whose_sides_can_be_asked():
    from spatial_alm.data.reader import spectral_cue_summary

    def scene(*cues):
        return SceneMeta(index=0, fs_hz=FS, duration_s=1.0, room_dim_m=(5.0, 4.0, 3.0), rt60_s=0.3,
                         receiver="sofa:kemar", receiver_position_m=(2.0, 2.0, 1.5), receiver_yaw_deg=0.0,
                         noise="none", snr_db=math.inf, sources=tuple(
                             SourceMeta(label=label, azimuth_deg=30.0, elevation_deg=20.0, distance_m=1.0,
                                        position_m=(1.0, 1.0, 1.0), level_db=0.0, front_back_cue_db=cue,
                                        above_below_cue_db=None) for label, cue in cues))

    summary = spectral_cue_summary([scene(("hum", 0.2), ("rain", 3.0)), scene(("hum", 1.5), ("rain", 2.0))], 1.0)
    assert list(summary) == ["front_back"]  # no above/below cue recorded
    assert summary["front_back"] == {"sources": 4, "median_db": 1.75, "at_least_pct": 75.0,
                                     "by_class": {"hum": 50.0, "rain": 100.0}}
    assert spectral_cue_summary([scene(("hum", None))], 1.0) == {}


def test_dataset_info_command_shows_the_sphere_colours_no_source(make_toy_dataset, capsys):
    from spatial_alm.cli import main

    path = make_toy_dataset(4)
    assert main(["dataset", "info", str(path)]) == 0
    out = capsys.readouterr().out
    # a rigid sphere gives every source 0 dB on both axes: none could be asked front/back or above/below
    assert "front/back spectral cue per source: median 0.0 dB, at least 1 dB" in out and "for 0 % of" in out
    assert "above/below spectral cue per source: median 0.0 dB" in out


def test_spectral_cues_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match=r"directions must be \(S, 3\) and signals \(S, T\) with the same S"):
        spectral_cues_db(SphereHead(), torch.zeros(2, 3) + 1.0, torch.zeros(3, FS), FS)


def test_every_source_is_read_from_its_own_class_vector_hand_computed():
    """Two scenes: one source (the dog, right behind, read exactly) and two (the bell read in its mirror image
    at the front, the dog exactly); the vectors of the classes named, not of the primary source."""
    from spatial_alm.evaluation.encoder_report import class_wise_by_sources, class_wise_sources

    vocab = {"bell": 0, "dog": 1}
    scenes = [{"labels": ["dog"], "azimuth_deg": [180.0], "elevation_deg": [0.0]},
              {"labels": ["bell", "dog", ""], "azimuth_deg": [150.0, -60.0, 0.0], "elevation_deg": [0.0, 10.0, 0.0]}]
    vectors = torch.stack([torch.stack([spherical_to_cartesian(0.0, 0.0), spherical_to_cartesian(180.0, 0.0)]),
                           torch.stack([spherical_to_cartesian(30.0, 0.0), spherical_to_cartesian(-60.0, 10.0)])])
    rows = class_wise_sources(scenes, vectors.float(), vocab, first_position=10)
    assert [(row["scene"], row["source"], row["num_sources"]) for row in rows] == [(10, 0, 1), (11, 0, 2), (11, 1, 2)]
    assert rows[1]["class_azimuth_deg"] == pytest.approx(30.0, abs=1e-4)
    table = class_wise_by_sources(rows)
    assert list(table) == ["all", "1 source", "2 sources"] and table["all"]["sources"] == 3
    assert table["1 source"]["doa_accuracy_20deg"] == 100.0
    two = table["2 sources"]
    assert two["doa_accuracy_20deg"] == 50.0 and two["front_back_confusion_rate"] == 50.0  # the bell mirrored
    assert two["lateral_error_deg"] == pytest.approx(0.0, abs=1e-3)  # a mirror image keeps the lateral angle


def test_class_wise_pairs_on_opposite_sides_hand_computed():
    """Scene 0: the dog front-left-up (30, 20) read in the back (150, 20), the bell back-right-down (-150, -20)
    read at (-140, -20): left/right and above/below both halves right; front/back both vectors in the back, the
    dog's deeper, so the order is wrong; the bell's direct sound is 6 dB louder, so the shared half is the
    louder's. Scene 1: the cat (88, 2) and the dog (-100, 3), left and right, read swapped; within the
    generator's margins of the frontal and horizontal planes, so only a left/right pair. Scene 2: a loud bell on
    the left, the dog front-left 3 dB below it and the cat back-right 10 dB below it, the dog and the cat both read
    back-right: the shared front/back half is the cat's, the quieter of that pair; the bell and the dog on one
    side, the dog's vector on the other."""
    from spatial_alm.evaluation.encoder_report import class_wise_pair_orders, class_wise_pairs, class_wise_sources

    vocab = {"bell": 0, "dog": 1, "cat": 2}
    scenes = [{"labels": ["dog", "bell"], "azimuth_deg": [30.0, -150.0], "elevation_deg": [20.0, -20.0],
               "level_db": [-6.0, 0.0], "distance_m": [1.0, 1.0]},
              {"labels": ["cat", "dog"], "azimuth_deg": [88.0, -100.0], "elevation_deg": [2.0, 3.0]}]
    vectors = torch.stack([
        torch.stack([spherical_to_cartesian(-140.0, -20.0), spherical_to_cartesian(150.0, 20.0),
                     spherical_to_cartesian(0.0, 0.0)]),
        torch.stack([spherical_to_cartesian(0.0, 0.0), spherical_to_cartesian(100.0, 3.0),
                     spherical_to_cartesian(-88.0, 2.0)])])
    rows = class_wise_sources(scenes, vectors.float(), vocab)
    table = class_wise_pairs(rows)
    assert list(table) == ["left_right", "front_back", "above_below"]
    assert {key: table["left_right"][key] for key in ("pairs", "order_right_pct", "both_right_pct", "swapped_pct",
                                                       "one_half_pct")} == {"pairs": 2, "order_right_pct": 50.0,
                                                                            "both_right_pct": 50.0,
                                                                            "swapped_pct": 50.0, "one_half_pct": 0.0}
    front_back = table["front_back"]
    assert front_back["pairs"] == 1 and front_back["one_half_pct"] == 100.0
    assert front_back["order_right_pct"] == front_back["order_right_in_one_half_pct"] == 0.0
    assert front_back["one_half_louder_side_pct"] == 100.0 and front_back["half_right_pct"] == 50.0
    assert table["left_right"]["half_right_pct"] == 50.0  # one pair both right, one swapped
    assert front_back["same_side_pairs"] == 0 and math.isnan(front_back["same_side_half_right_pct"])
    assert math.isnan(front_back["primary_half_pct"])  # no primary head's directions given
    orders = class_wise_pair_orders(rows)  # per pair, scene by scene: left/right scene 0 right, scene 1 swapped
    assert {axis: order.tolist() for axis, order in orders.items()} == {
        "left_right": [1.0, 0.0], "front_back": [0.0], "above_below": [1.0]}
    level = [{"labels": ["dog", "bell"], "azimuth_deg": [30.0, 40.0], "elevation_deg": [30.0, -30.0]}]
    same_elevation = torch.stack([spherical_to_cartesian(-140.0, 3.0), spherical_to_cartesian(100.0, 3.0)])
    tied = class_wise_sources(level, same_elevation[None].float(), {"bell": 0, "dog": 1})
    assert class_wise_pair_orders(tied)["above_below"].tolist() == [0.5]  # both read at elevation 3: counts 1/2
    assert class_wise_pairs(tied)["above_below"]["order_right_pct"] == 50.0
    # the primary head reads scene 0 back-left-up (150, 10), where both front/back vectors lie; scene 1 left (90, 0):
    # of each left/right pair one vector is on the primary head's side
    with_primary = class_wise_pairs(rows, (np.array([150.0, 90.0]), np.array([10.0, 0.0])))
    assert with_primary["front_back"]["primary_half_pct"] == 100.0
    assert with_primary["left_right"]["primary_half_pct"] == with_primary["above_below"]["primary_half_pct"] == 50.0
    above_below = table["above_below"]
    assert above_below["pairs"] == 1 and above_below["order_right_pct"] == above_below["both_right_pct"] == 100.0
    assert math.isnan(above_below["order_right_in_one_half_pct"])
    assert math.isnan(above_below["one_half_louder_side_pct"]) and math.isnan(table["left_right"][
        "one_half_louder_side_pct"])  # no pair in one half
    three = [{"labels": ["bell", "dog", "cat"], "azimuth_deg": [90.0, 10.0, -170.0],
              "elevation_deg": [0.0, 0.0, 0.0], "level_db": [0.0, -3.0, -10.0], "distance_m": [2.0, 2.0, 2.0]}]
    read = torch.stack([spherical_to_cartesian(90.0, 0.0), spherical_to_cartesian(-160.0, 0.0),
                        spherical_to_cartesian(-170.0, 0.0)])[None].float()
    three_pairs = class_wise_pairs(class_wise_sources(three, read, vocab))
    assert three_pairs["front_back"]["one_half_louder_side_pct"] == 0.0
    left_right = three_pairs["left_right"]  # opposite: the bell and the cat both right, the dog and the cat one half
    assert left_right["pairs"] == 2 and left_right["half_right_pct"] == 75.0
    assert left_right["same_side_pairs"] == 1 and left_right["same_side_half_right_pct"] == 50.0
    assert class_wise_pairs([]) is None and class_wise_pair_orders([]) == {}
    alone = [{"labels": ["dog"], "azimuth_deg": [30.0], "elevation_deg": [20.0]}]  # no pair in a one-source scene
    assert class_wise_pairs(class_wise_sources(alone, vectors[:1, 1:2].float(), {"dog": 0})) is None


def test_class_wise_sources_by_their_own_direct_to_reverberant_ratio_hand_computed():
    """Scene 0: the dog near (+3 dB) read exactly; scene 1: the bell far (-8 dB) mirrored to the front, the dog
    at -2 dB read exactly. Bands: >= 0 dB the dog of scene 0, -6 to 0 the other dog, < -6 the bell."""
    from spatial_alm.evaluation.encoder_report import class_wise_by_drr, class_wise_sources

    vocab = {"bell": 0, "dog": 1}
    scenes = [{"labels": ["dog"], "azimuth_deg": [100.0], "elevation_deg": [0.0]},
              {"labels": ["bell", "dog"], "azimuth_deg": [150.0, -60.0], "elevation_deg": [0.0, 10.0]}]
    vectors = torch.stack([torch.stack([spherical_to_cartesian(0.0, 0.0), spherical_to_cartesian(100.0, 0.0)]),
                           torch.stack([spherical_to_cartesian(30.0, 0.0), spherical_to_cartesian(-60.0, 10.0)])])
    rows = class_wise_sources(scenes, vectors.float(), vocab)
    table = class_wise_by_drr(rows, [[3.0], [-8.0, -2.0]])
    assert list(table) == ["< -6 dB", "-6 to 0 dB", ">= 0 dB"]
    assert [table[band]["sources"] for band in table] == [1, 1, 1]
    assert table["< -6 dB"]["front_back_confusion_rate"] == 100.0 and table["< -6 dB"]["doa_accuracy_20deg"] == 0.0
    assert table["-6 to 0 dB"]["doa_accuracy_20deg"] == table[">= 0 dB"]["doa_accuracy_20deg"] == 100.0
    assert class_wise_by_drr([], []) is None


def test_class_wise_sources_by_direct_level_relative_to_the_loudest_other_hand_computed():
    """Three sources: the bell at level 0 dB and 2 m (direct -6.02 dB), the dog at -6 dB and 0.5 m (+0.02 dB), the
    cat at -10 dB and 1 m (-10 dB). The bell's vector points at the dog (masked: nearer the other); the dog and
    the cat are read exactly. Relative levels against the loudest other: bell -6.04, dog +6.04, cat -10.02 dB."""
    from spatial_alm.evaluation.encoder_report import class_wise_by_relative_level, class_wise_sources

    vocab = {"bell": 0, "dog": 1, "cat": 2}
    scene = {"labels": ["bell", "dog", "cat"], "azimuth_deg": [60.0, -60.0, 0.0], "elevation_deg": [0.0, 0.0, 0.0],
             "level_db": [0.0, -6.0, -10.0], "distance_m": [2.0, 0.5, 1.0]}
    vectors = torch.stack([spherical_to_cartesian(-55.0, 0.0), spherical_to_cartesian(-60.0, 0.0),
                           spherical_to_cartesian(0.0, 0.0)])[None]
    rows = class_wise_sources([scene], vectors.float(), vocab)
    relative = 20 * math.log10(4.0) - 6.0  # bell against the dog
    assert [row["relative_level_db"] for row in rows] == pytest.approx(
        [-relative, relative, -10.0 - (-6.0 + 20 * math.log10(2.0))])
    others = [(row["other_azimuth_deg"], row["other_elevation_deg"]) for row in rows]
    assert others == [(-60.0, 0.0), (60.0, 0.0), (-60.0, 0.0)]
    table = class_wise_by_relative_level(rows)
    assert list(table) == ["< -10 dB", "-10 to -4 dB", "4 to 10 dB"]
    masked = table["-10 to -4 dB"]
    assert masked["sources"] == masked["separated"] == 1 and masked["nearer_other_pct"] == 100.0
    assert table["4 to 10 dB"]["nearer_other_pct"] == 0.0 and table["< -10 dB"]["nearer_other_pct"] == 0.0
    assert table["4 to 10 dB"]["doa_accuracy_20deg"] == 100.0
    # a source heard alone, or a scene without levels (recordings), has no relative level
    alone = {"labels": ["dog"], "azimuth_deg": [0.0], "elevation_deg": [0.0], "level_db": [0.0], "distance_m": [1.0]}
    assert class_wise_by_relative_level(class_wise_sources([alone], vectors[:, :1].float(), {"dog": 0})) is None
