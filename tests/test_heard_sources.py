"""The heard-sources line of the prompt: hand-computed cases and the mirror symmetry of the ears."""

import math

import pytest
import torch

from spatial_alm.coordinates import spherical_to_cartesian
from spatial_alm.models.heard_sources import (
    NOTHING,
    HeardSource,
    describe_sources,
    heard_sources,
    line_directions,
    placed_on_opposite_sides,
    presupposed_classes,
    presupposed_opposite_sides,
    scene_sources,
    separated_azimuths,
)
from spatial_alm.models.targets import AZIMUTH_CLASSES, class_to_azimuth
from spatial_alm.qa.parser import parse_answer

NAMES = ["dog", "church_bells", "siren"]


def outputs(*sources):
    """Class-wise outputs of one clip: (probability, azimuth, elevation, distance) per class of NAMES."""
    probs = torch.tensor([[s[0] for s in sources]])
    directions = torch.stack([spherical_to_cartesian(s[1], s[2]) for s in sources])[None].float()
    distances = torch.tensor([[s[3] for s in sources]])
    return probs, directions, distances


def test_sources_above_threshold_nearest_first_in_answer_format():
    probs, directions, distances = outputs((0.9, 30.2, -0.4, 2.1), (0.42, -120.0, 5.0, 1.2), (0.1, 0.0, 0.0, 1.0))
    [sources] = heard_sources(probs, directions, distances, NAMES, threshold=0.3)
    assert [s.label for s in sources] == ["church bells", "dog"]  # canonical labels, nearest (1.0 m) first
    assert sources[1] == HeardSource("dog", sources[1].probability, 30, 0, 2.0)
    assert sources[1].probability == torch.tensor(0.9).double().item()
    text = describe_sources(sources)
    assert text == ("Heard, nearest first: a church bells (40%) to your right, behind you, above you, at azimuth "
                    "-120 deg, elevation 5 deg, distance 1.0 m; a dog (90%) to your left, in front of you, below "
                    "you, at azimuth 30 deg, elevation 0 deg, distance 2.0 m.")
    # each source's direction phrase is the type-B answer format, so the parser reads it back
    phrase = text.split(", at ")[2].rstrip(".")
    assert parse_answer("B", phrase) == {"parsed": True, "azimuth_deg": 30, "elevation_deg": 0, "distance_m": 2.0}
    assert describe_sources([]) == NOTHING
    assert heard_sources(probs, directions, distances, NAMES, threshold=0.95) == [[]]


def test_a_relation_question_lists_both_named_classes_heard_or_not():
    """"Is the dog to the left of the siren?" presupposes both: the siren (p 0.1, below the threshold) joins
    the line with its probability and the direction and distance its heads give; a question naming one
    class (a negative probe) adds nothing."""
    assert presupposed_classes("Is the dog to the left of the siren?", NAMES) == [0, 2]
    assert presupposed_classes("Would you say the church bells is closer to you than the dog?", NAMES) == [0, 1]
    assert presupposed_classes("Is there a siren to your left?", NAMES) == []
    assert presupposed_classes("Is the dog to the left of the cat?", NAMES) == []  # one known class
    assert presupposed_classes("Is there a church bell to your left?", ["bell", "church_bell"]) == []  # one class
    probs, directions, distances = outputs((0.9, 30.0, 0.0, 2.1), (0.42, -120.0, 5.0, 1.2), (0.1, -70.2, 10.0, 3.2))
    [asked, probe] = heard_sources(probs.repeat(2, 1), directions.repeat(2, 1, 1), distances.repeat(2, 1), NAMES, 0.3,
                                   presupposed=[[0, 2], []])
    assert [s.label for s in probe] == ["church bells", "dog"]
    assert [s.label for s in asked] == ["church bells", "dog", "siren"]  # nearest first: 1.2, 2.1, 3.2 m
    assert asked[2] == HeardSource("siren", asked[2].probability, -70, 10, 3.0)
    assert describe_sources(asked).endswith("a siren (10%) to your right, in front of you, above you, at azimuth "
                                            "-70 deg, elevation 10 deg, distance 3.0 m.")
    with pytest.raises(ValueError, match="presupposed: 1 entries given; allowed: one per clip \\(2\\)"):
        heard_sources(probs.repeat(2, 1), directions.repeat(2, 1, 1), distances.repeat(2, 1), NAMES, 0.3,
                      presupposed=[[0, 2]])


def test_a_side_relation_puts_its_two_sounds_on_opposite_sides():
    """"Is the dog to the left of the siren?" presupposes the two on opposite sides of the left/right axis.
    Decoded both on the right (dog at -98 deg, y = -0.99; siren at -168 deg, y = -0.21), the line writes the
    siren, the one nearer the left, at its mirror image (168 deg): the sides then keep the order of the two
    lateral components, the class-wise heads' answer (the dog is not to the left of the siren)."""
    assert presupposed_opposite_sides("Is the dog to the left of the siren?", NAMES) == (1, 0, 2)
    assert presupposed_opposite_sides("Is the siren behind the dog?", NAMES) == (0, 2, 0)
    assert presupposed_opposite_sides("From your position, is the dog sound above the siren sound?", NAMES) == (2, 0, 2)
    assert presupposed_opposite_sides("Is the dog closer to you than the siren?", NAMES) is None  # distance
    assert presupposed_opposite_sides("Is there a dog to your left?", NAMES) is None  # a negative probe
    probs, directions, distances = outputs((0.9, -98.0, 0.0, 1.0), (0.1, 60.0, 0.0, 2.0), (0.8, -168.0, 0.0, 1.5))
    question = "Is the dog to the left of the siren?"
    [line] = heard_sources(probs, directions, distances, NAMES, 0.3, presupposed=[presupposed_classes(question, NAMES)],
                           opposite_sides=[presupposed_opposite_sides(question, NAMES)])
    assert {s.label: s.azimuth_deg for s in line} == {"dog": -98, "siren": 168}
    text = describe_sources(line)
    assert "a dog (90%) to your right" in text and "a siren (80%) to your left" in text
    [plain] = heard_sources(probs, directions, distances, NAMES, 0.3, opposite_sides=[None])
    assert {s.label: s.azimuth_deg for s in plain} == {"dog": -98, "siren": -168}
    # both on the positive side: the smaller component moves; on opposite sides already: nothing moves
    up = torch.stack([spherical_to_cartesian(0.0, 40.0), spherical_to_cartesian(0.0, 10.0)]).double()
    moved = placed_on_opposite_sides(up, 2, 0, 1)
    assert torch.allclose(moved[0], up[0]) and moved[1, 2] == pytest.approx(-up[1, 2].item())
    assert torch.allclose(moved[1, :2], up[1, :2])  # only the axis' component changes
    assert torch.allclose(placed_on_opposite_sides(moved, 2, 0, 1), moved)
    # on the boundary (both at elevation 0, "below you" in the line's words): 1 degree to each side, unit length
    level = torch.stack([spherical_to_cartesian(30.0, 0.0), spherical_to_cartesian(-60.0, 0.0)]).double()
    placed = placed_on_opposite_sides(level, 2, 0, 1)
    assert torch.allclose(torch.rad2deg(torch.asin(placed[:, 2])), torch.tensor([-1.0, 1.0], dtype=torch.float64))
    assert torch.allclose(torch.linalg.vector_norm(placed, dim=1), torch.ones(2, dtype=torch.float64))
    front = torch.stack([spherical_to_cartesian(120.0, 0.0), spherical_to_cartesian(-150.0, 0.0)]).double()
    assert placed_on_opposite_sides(front, 0, 1, 0)[0, 0] > 0  # both behind: class 0 (x = -0.5, nearer the front) moves
    with pytest.raises(ValueError, match="opposite_sides: 2 entries given; allowed: one per clip \\(1\\)"):
        heard_sources(probs, directions, distances, NAMES, 0.3, opposite_sides=[None, None])


def test_estimates_in_one_distance_bin_keep_their_order():
    """1.6 m and 1.4 m both round to 1.5 m; the line still lists the nearer first, though it is less probable."""
    probs, directions, distances = outputs((0.9, 30.0, 0.0, 1.6), (0.5, -60.0, 0.0, 1.4), (0.1, 0.0, 0.0, 1.0))
    [sources] = heard_sources(probs, directions, distances, NAMES, threshold=0.3)
    assert [(s.label, s.distance_m) for s in sources] == [("church bells", 1.5), ("dog", 1.5)]
    assert [s.label for s in scene_sources(["dog", "church_bells"], [30.0, -60.0], [0.0, 0.0], [1.6, 1.4])] == [
        "church bells", "dog"]


def test_mirrored_ears_mirror_the_sides_and_azimuths():
    """Swapping the ears mirrors the scene in the median plane (y -> -y): every left becomes right and
    every azimuth changes sign, nothing else changes."""
    probs, directions, distances = outputs((0.8, 60.0, 10.0, 1.5), (0.7, -150.0, -20.0, 2.5), (0.6, 100.0, 0.0, 3.0))
    mirrored = directions * torch.tensor([1.0, -1.0, 1.0])
    [sources] = heard_sources(probs, directions, distances, NAMES, threshold=0.5)
    [mirror] = heard_sources(probs, mirrored, distances, NAMES, threshold=0.5)
    for a, b in zip(sources, mirror):
        assert (a.label, a.elevation_deg, a.distance_m) == (b.label, b.elevation_deg, b.distance_m)
        assert b.azimuth_deg == -a.azimuth_deg and not math.isclose(a.azimuth_deg, 0.0)
    swapped = describe_sources(sources).replace("your left", "LEFT").replace("your right", "your left")
    swapped = swapped.replace("LEFT", "your right")
    for a in sources:
        swapped = swapped.replace(f"azimuth {a.azimuth_deg} ", f"azimuth {-a.azimuth_deg} ")
    assert describe_sources(mirror) == swapped


def test_scene_sources_are_the_true_sources_binned_nearest_first():
    sources = scene_sources(["church_bells", "Dog"], [-120.4, 30.6], [5.2, -0.5], [2.3, 0.74])
    assert sources == [HeardSource("dog", 1.0, 31, 0, 0.5), HeardSource("church bells", 1.0, -120, 5, 2.5)]
    assert describe_sources(sources).startswith("Heard, nearest first: a dog (100%) to your left, in front of you")
    assert scene_sources([], [], [], []) == []


def posterior(*modes, width_deg=5.0):
    """An azimuth posterior (360,) over the 1-degree bins: Gaussian bumps (azimuth deg, weight), normalised."""
    azimuths = class_to_azimuth(torch.arange(AZIMUTH_CLASSES)).double()
    p = torch.zeros(AZIMUTH_CLASSES, dtype=torch.float64)
    for azimuth, weight in modes:
        gap = (azimuths - azimuth).abs() % 360
        p += weight * torch.exp(-0.5 * (torch.minimum(gap, 360 - gap) / width_deg) ** 2)
    return p / p.sum()


def test_two_heard_sources_are_not_placed_in_one_direction():
    """The dog's posterior leans to the louder siren's direction (-60 deg), its second mode is its own (+40 deg):
    alone its argmax says -60; decoded jointly the siren, more confident, claims -60 and the dog gets +40."""
    probs = torch.tensor([0.6, 0.05, 0.9])  # dog, church bells (not heard), siren
    siren = posterior((-60.0, 1.0))
    dog = posterior((-60.0, 0.55), (40.0, 0.45))
    azimuth_probs = torch.stack([dog, posterior((0.0, 1.0)), siren])
    assert separated_azimuths(azimuth_probs, probs, [0, 2]) == {2: -60.0, 0: 40.0}
    # a sphere head's siren posterior holds its front/back mirror image (-120) too: both are claimed
    dog = posterior((-120.0, 0.55), (40.0, 0.45))
    sphere = torch.stack([dog, posterior((0.0, 1.0)), posterior((-60.0, 0.5), (-120.0, 0.5))])
    assert separated_azimuths(sphere, probs, [0, 2])[0] == 40.0
    # a receiver that resolves front from back leaves the mirror free: the dog keeps -120
    assert separated_azimuths(torch.stack([dog, posterior((0.0, 1.0)), siren]), probs, [0, 2])[0] == -120.0
    # through heard_sources: the line puts the dog on the left
    directions = torch.stack([spherical_to_cartesian(-60.0, 0.0)] * 3)[None].float()
    [sources] = heard_sources(probs[None], directions, torch.tensor([[1.0, 1.0, 2.0]]), NAMES, 0.3,
                              azimuth_probs[None])
    assert [(s.label, s.azimuth_deg) for s in sources] == [("dog", 40), ("siren", -60)]


def test_line_directions_decode_heard_classes_jointly_and_answer_e_as_the_line():
    """The case above as vectors: the heard dog moves to +40 deg at its own elevation, the siren stays at -60,
    the unheard bells keep their own vector; the encoder head's E answer then reads what the line says."""
    from spatial_alm.evaluation.qa_report import class_direction_answer

    probs = torch.tensor([[0.6, 0.05, 0.9]])  # dog, church bells (not heard), siren
    azimuth_probs = torch.stack([posterior((-60.0, 0.55), (40.0, 0.45)), posterior((-60.0, 1.0)),
                                 posterior((-60.0, 1.0))])[None]
    own = torch.stack([spherical_to_cartesian(-60.0, 10.0), spherical_to_cartesian(-60.0, 0.0),
                       spherical_to_cartesian(-60.0, -20.0)])[None].float()  # each class's own argmax
    decoded = line_directions(probs, own, 0.3, azimuth_probs)
    expected = torch.stack([spherical_to_cartesian(40.0, 10.0), own[0, 1].double(), own[0, 2].double()])
    torch.testing.assert_close(decoded[0], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(line_directions(probs, own, 0.3), own[0:1].double())  # no posteriors: as given
    distances = torch.tensor([1.0, 1.0, 2.0])
    left_of = ("to the left of", [0, 2])  # "is the dog to the left of the siren?"
    assert class_direction_answer("E", *left_of, probs[0], decoded[0], distances)
    assert not class_direction_answer("E", *left_of, probs[0], own[0], distances)  # both argmaxes at -60


def test_joint_decoding_mirrors_with_the_ears():
    probs = torch.tensor([0.7, 0.8, 0.5])
    modes = [((-60.0, 0.55), (40.0, 0.45)), ((-60.0, 0.9), (100.0, 0.1)), ((150.0, 0.6), (40.0, 0.4))]
    azimuth_probs = torch.stack([posterior(*m) for m in modes])
    mirrored = torch.stack([posterior(*[(-a, w) for a, w in m]) for m in modes])
    decoded, mirror = (separated_azimuths(p, probs, [0, 1, 2]) for p in (azimuth_probs, mirrored))
    assert decoded == {1: -60.0, 0: 40.0, 2: 150.0}
    assert mirror == {k: -azimuth for k, azimuth in decoded.items()}
