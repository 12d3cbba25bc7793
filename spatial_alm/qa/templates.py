"""Question wording and the fixed answer formats of SpatialSoundQA-style QA.

Every answer is written by one formatter of :data:`ANSWER_FORMATS` from a structured target, and
:mod:`spatial_alm.qa.parser` reads each format back:

=============  ===========================================================================
format         answer text (target)
=============  ===========================================================================
labels         ``dog; siren`` (``{"labels": ["dog", "siren"]}``; canonical, unique, sorted)
direction      ``azimuth 30 deg, elevation -10 deg, distance 2.5 m``
               (``{"azimuth_deg": 30, "elevation_deg": -10, "distance_m": 2.5}``)
elevation      ``elevation -10 deg`` (``{"elevation_deg": -10}``)
yes_no         ``yes`` / ``no`` (``{"yes": True}``)
count          ``3`` (``{"count": 3}``)
room           ``size small, reverberation dry`` (``{"room_size": "small", "reverberation": "dry"}``)
description    ``dog at azimuth 90 deg, elevation 0 deg, distance 1.0 m; siren at azimuth ...``
               (``{"sources": [{"label": "dog", "azimuth_deg": 90, ...}, ...]}``)
=============  ===========================================================================

Labels are joined with ``"; "``, not commas, because AudioSet class names contain commas. Angles are
whole degrees and distances multiples of 0.5 m (BAT's 1-degree and 0.5 m classes), binned by
:func:`bin_azimuth_deg`, :func:`bin_elevation_deg` and :func:`bin_distance_m`.
"""

from __future__ import annotations

import math
from typing import Sequence

from spatial_alm.coordinates import wrap_azimuth_deg

DISTANCE_STEP_M = 0.5
LABEL_SEPARATOR = "; "


def canonical_label(label: str) -> str:
    """The form a class name takes in questions and answers: lower case, ``_`` as space, single spaces."""
    return " ".join(label.replace("_", " ").lower().split())


def label_positions(question: str, vocabulary: Sequence[str]) -> dict[int, str]:
    """Where the question names ``vocabulary`` classes (whole words): character offset -> canonical label,
    the first mention of each. Longer names are matched first and their words taken, so "church bell"
    is not also a mention of "bell"."""
    text = f" {question.lower().rstrip('?')} "
    positions = {}
    for label in sorted(set(map(canonical_label, vocabulary)), key=len, reverse=True):
        at = text.find(f" {label} ")
        if at >= 0:
            positions[at] = label
            text = text[:at + 1] + "#" * len(label) + text[at + 1 + len(label):]
    return positions


def named_labels(question: str, vocabulary: Sequence[str]) -> list[str]:
    """The canonical labels of the ``vocabulary`` classes a question names (:func:`label_positions`), in
    vocabulary order."""
    named = set(label_positions(question, vocabulary).values())
    return [label for label in map(canonical_label, vocabulary) if label in named]


def with_article(label: str) -> str:
    """``"a siren"``, ``"an alarm"``."""
    return f"{'an' if label[:1] in 'aeiou' else 'a'} {label}"


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def bin_azimuth_deg(azimuth_deg: float) -> int:
    """Nearest whole degree, wrapped into (-180, 180]."""
    return int(wrap_azimuth_deg(float(_round_half_up(azimuth_deg))))


def bin_elevation_deg(elevation_deg: float) -> int:
    """Nearest whole degree."""
    return _round_half_up(elevation_deg)


def bin_distance_m(distance_m: float) -> float:
    """Nearest multiple of 0.5 m (not clipped to BAT's 0-10 m range)."""
    return _round_half_up(distance_m / DISTANCE_STEP_M) * DISTANCE_STEP_M


def _direction_text(target: dict) -> str:
    return (f"azimuth {target['azimuth_deg']} deg, elevation {target['elevation_deg']} deg, "
            f"distance {target['distance_m']:.1f} m")


ANSWER_FORMATS = {
    "labels": lambda target: LABEL_SEPARATOR.join(target["labels"]),
    "direction": _direction_text,
    "elevation": lambda target: f"elevation {target['elevation_deg']} deg",
    "yes_no": lambda target: "yes" if target["yes"] else "no",
    "count": lambda target: str(target["count"]),
    "room": lambda target: f"size {target['room_size']}, reverberation {target['reverberation']}",
    "description": lambda target: LABEL_SEPARATOR.join(
        f"{source['label']} at {_direction_text(source)}" for source in target["sources"]),
}

# Relation name -> (phrase when the relation is asked, phrase for its converse).
RELATION_PHRASES = {
    "left": ("to the left of", "to the right of"),
    "front": ("in front of", "behind"),
    "above": ("above", "below"),
    "nearer": ("closer to you than", "farther from you than"),
}

REGION_PHRASES = {
    "left": "to your left",
    "right": "to your right",
    "front": "in front of you",
    "behind": "behind you",
    "above": "above you",
    "below": "below you",
}

# phrase of a type E relation or a negative probe's region -> (axis of the listener frame: 0 x front,
# 1 y left, 2 z up; sign): the side a class-direction vector must point to; DISTANCE_AXIS: E's nearer /
# farther, compared on the class-wise distances (sign 1: the first named class is the nearer one)
DISTANCE_AXIS = 3
SIDE_OF_PHRASE = {"E": {phrase: (axis, sign) for name, axis in (("left", 1), ("front", 0), ("above", 2),
                                                                ("nearer", DISTANCE_AXIS))
                        for phrase, sign in zip(RELATION_PHRASES[name], (1, -1))},
                  "negative": {REGION_PHRASES[name]: (axis, sign) for name, axis, sign in (
                      ("left", 1, 1), ("right", 1, -1), ("front", 0, 1), ("behind", 0, -1),
                      ("above", 2, 1), ("below", 2, -1))}}


def parse_yes_no_question(question_type: str, question: str,
                          class_names: Sequence[str]) -> tuple[str, list[int]] | None:
    """(relation or region phrase, indices into ``class_names`` of the named classes in the order the
    question names them) of a type E or negative question; None when the question names no side the
    class-wise heads can judge or its classes are not exactly 2 (E) / 1 (negative) of ``class_names``."""
    text = f" {question.lower().rstrip('?')} "
    phrases = [phrase for phrase in SIDE_OF_PHRASE.get(question_type, {}) if f" {phrase} " in text]
    positions = label_positions(question, class_names)
    if len(phrases) != 1 or len(positions) != {"E": 2, "negative": 1}[question_type]:
        return None
    index = {canonical_label(name): k for k, name in enumerate(class_names)}
    return phrases[0], [index[positions[at]] for at in sorted(positions)]


# Placeholders: {label} a named source; {label_a} {relation} {label_b} (type E);
# {a_label} label with article and {region} (negative probes).
QUESTION_TEMPLATES = {
    "A": (
        "What sound event can you hear?",
        "Identify the sound in this recording.",
        "What is making this sound?",
        "Which sound class is present in the audio?",
        "Name the sound you hear.",
    ),
    "B": (
        "Where is the sound coming from?",
        "What are the direction and distance of the sound source?",
        "Locate the sound: give its azimuth, elevation and distance.",
        "From which direction and how far away does the sound come?",
        "Where is the sound source relative to you?",
    ),
    "C": (
        "What sound events can you hear? Name all of them.",
        "Identify every sound in this recording.",
        "Which sound classes are present in the audio?",
        "List all the sounds you hear.",
        "What is making the sounds in this scene?",
    ),
    "D": (
        "Where is the {label} coming from?",
        "What are the direction and distance of the {label}?",
        "Locate the {label}: give its azimuth, elevation and distance.",
        "From which direction and how far away do you hear the {label}?",
        "Where is the {label} relative to you?",
    ),
    "E": (
        "Is the {label_a} {relation} the {label_b}?",
        "Relative to where you are, is the sound of the {label_a} {relation} the sound of the {label_b}?",
        "Would you say the {label_a} is {relation} the {label_b}?",
        "Answer yes or no: is the {label_a} {relation} the {label_b}?",
        "From your position, is the {label_a} sound {relation} the {label_b} sound?",
    ),
    "count": (
        "How many sound sources can you hear?",
        "Count the sound sources in this scene.",
        "How many sounds are playing at the same time?",
        "What is the number of sound sources around you?",
        "How many things are making sound here?",
    ),
    "elevation": (
        "What is the elevation of the {label}?",
        "At what elevation angle do you hear the {label}?",
        "How high or low is the {label} relative to your ears?",
        "Give the elevation of the {label} in degrees.",
    ),
    "room": (
        "What kind of room is this?",
        "Describe the size and reverberation of the room.",
        "How large and how reverberant is the space you are in?",
        "Judging by the acoustics, what are the size and reverberation of the room?",
    ),
    "negative": (
        "Is there {a_label} {region}?",
        "Can you hear {a_label} {region}?",
        "Is {a_label} sounding {region}?",
        "Answer yes or no: is there {a_label} {region}?",
        "Do you hear the sound of {a_label} {region}?",
    ),
    "description": (
        "Describe the sound scene.",
        "Describe every sound source with its direction and distance.",
        "What is around you? Give each sound with its position.",
        "Summarise the scene: which sounds are where?",
        "List each sound source with its azimuth, elevation and distance.",
    ),
}
