"""Read answers (generated or predicted) back into structured predictions for scoring.

``parse_answer(question_type, text)`` returns ``{"parsed": bool, **fields}`` where the fields are
those of the type's target (see :mod:`spatial_alm.qa.templates`), binned like the targets, so for
every generated pair ``parse_answer(t, pair.answer) == {"parsed": True, **pair.target}`` once the
target's question-side keys (``generator.TARGET_QUESTION_KEYS``: the ``axis`` of a yes/no question,
which the answer does not say) are left out. When the
text cannot be read, ``parsed`` is False and the fields are None or empty (direction and room keep the
parts that were found). It never raises on model output.

Tolerated noise: case, a sentence around the fixed format, "deg"/"degrees"/"°", "m"/"meters"/
"metres", "azimuth of"/"azimuth:", trailing punctuation, the Unicode minus sign, number words for
counts. Class names: without a vocabulary the labels formats split on ``;`` and strip lead-ins such
as "I hear a", so any leftover text is read as a (wrong) label; pass ``vocabulary`` (the class list)
to match only known classes, which also rejects garbage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from spatial_alm.qa.generator import get_question_type
from spatial_alm.qa.templates import bin_azimuth_deg, bin_distance_m, bin_elevation_deg, canonical_label

_NUM = r"([-+]?\d+(?:\.\d+)?)"
_FILLER = r"(?:\s*(?:angle|of|is|at|about|approximately|around|roughly|[:=~]))*\s*"
_METRES = r"(?:m|meters?|metres?)\b"
_PUNCTUATION = " \t\n.,;:!?\"'()"
_NUMBER_WORDS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_COUNT = re.compile(r"(?<![\d.])(\d+)(?!\.?\d)|\b(" + "|".join(_NUMBER_WORDS) + r")\b")
_YES_NO = re.compile(r"\b(yes|no)\b")
_DIRECTION = re.compile(  # one source: azimuth, elevation, distance in this order
    rf"\bazimuth\w*{_FILLER}{_NUM}(?:(?!azimuth)[^;])*?\belevation\w*{_FILLER}{_NUM}"
    rf"(?:(?!azimuth)[^;])*?\bdistance\w*{_FILLER}{_NUM}(?:\s*{_METRES})?")
_LABEL_PREFIX = re.compile(
    r"^(?:and\s+|(?:the\s+)?(?:answer|sounds?|sound\s+events?|class(?:es)?|sources?)\s*(?:is|are|:)\s*"
    r"|(?:i\s+)?(?:can\s+)?hear\s+|there\s+(?:is|are)\s+|the\s+scene\s+(?:has|contains)\s+"
    r"|it\s+is\s+|it's\s+|an?\s+|the\s+)+")
_LABEL_SUFFIX = re.compile(r"\s+(?:(?:is|are)\s+)?(?:located\s+|positioned\s+)?at$")
_ROOM_SIZE = (re.compile(r"\bsize\w*(?:\s*(?:is|:|=))?\s*(small|medium|large)\b"),
              re.compile(r"\b(small|medium|large)(?:[\s-]+sized)?\s+(?:room|space)\b"))
_REVERBERATION = (re.compile(r"\breverb\w*(?:\s*(?:is|:|=))?\s*(dry|medium|reverberant)\b"),
                  re.compile(r"\b(dry|reverberant)\b"),
                  re.compile(r"\b(medium)\s+reverb"))


def _keyword_number(keyword: str, text: str) -> float | None:
    match = re.search(rf"\b{keyword}\w*{_FILLER}{_NUM}", text)
    return float(match.group(1)) if match else None


def _first_group(patterns: Iterable[re.Pattern], text: str) -> str | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


@lru_cache(maxsize=8)
def _vocabulary_pattern(vocabulary: tuple[str, ...]) -> re.Pattern:
    names = sorted({canonical_label(label) for label in vocabulary}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(map(re.escape, names)) + r")(?!\w)")


def _clean_label(text: str, vocabulary: tuple[str, ...]) -> str | None:
    """The label in a fragment: the last vocabulary match, or the fragment minus lead-ins."""
    text = " ".join(text.split())
    if vocabulary:
        found = _vocabulary_pattern(vocabulary).findall(text)
        return found[-1] if found else None
    text = _LABEL_SUFFIX.sub("", _LABEL_PREFIX.sub("", text.strip(_PUNCTUATION))).strip(_PUNCTUATION)
    return text or None


def _parse_labels(text: str, vocabulary: tuple[str, ...]) -> dict:
    if vocabulary:
        found = _vocabulary_pattern(vocabulary).findall(" ".join(text.split()))
    else:
        found = [_clean_label(part, vocabulary) for part in text.split(";")]
    labels = sorted({label for label in found if label})
    return {"parsed": bool(labels), "labels": labels}


def _elevation_or_none(elevation_deg: float | None) -> float | None:
    """An elevation outside [-90, 90] degrees names no direction: the answer counts as unparseable."""
    return elevation_deg if elevation_deg is not None and -90.0 <= elevation_deg <= 90.0 else None


def _parse_direction(text: str, vocabulary: tuple[str, ...]) -> dict:
    azimuth_deg = _keyword_number("azimuth", text)
    elevation_deg = _elevation_or_none(_keyword_number("elevation", text))
    distance_m = _keyword_number("distance", text)
    if distance_m is None:
        match = re.search(rf"{_NUM}\s*{_METRES}", text)
        distance_m = float(match.group(1)) if match else None
    fields = {"azimuth_deg": None if azimuth_deg is None else bin_azimuth_deg(azimuth_deg),
              "elevation_deg": None if elevation_deg is None else bin_elevation_deg(elevation_deg),
              "distance_m": None if distance_m is None else bin_distance_m(distance_m)}
    return {"parsed": None not in fields.values(), **fields}


def _parse_elevation(text: str, vocabulary: tuple[str, ...]) -> dict:
    elevation_deg = _keyword_number("elevation", text)
    if elevation_deg is None:
        with_unit = re.search(rf"{_NUM}\s*(?:°|deg\b|degrees?\b)", text)
        numbers = re.findall(_NUM, text)
        if with_unit:
            elevation_deg = float(with_unit.group(1))
        elif len(numbers) == 1:
            elevation_deg = float(numbers[0])
    elevation_deg = _elevation_or_none(elevation_deg)
    if elevation_deg is None:
        return {"parsed": False, "elevation_deg": None}
    return {"parsed": True, "elevation_deg": bin_elevation_deg(elevation_deg)}


def _parse_yes_no(text: str, vocabulary: tuple[str, ...]) -> dict:
    match = _YES_NO.search(text)
    return {"parsed": match is not None, "yes": None if match is None else match.group(1) == "yes"}


def _parse_count(text: str, vocabulary: tuple[str, ...]) -> dict:
    match = _COUNT.search(text)
    if match is None:
        return {"parsed": False, "count": None}
    digits, word = match.groups()
    return {"parsed": True, "count": int(digits) if digits else _NUMBER_WORDS[word]}


def _parse_room(text: str, vocabulary: tuple[str, ...]) -> dict:
    fields = {"room_size": _first_group(_ROOM_SIZE, text),
              "reverberation": _first_group(_REVERBERATION, text)}
    return {"parsed": None not in fields.values(), **fields}


def _parse_description(text: str, vocabulary: tuple[str, ...]) -> dict:
    sources, start = [], 0
    for match in _DIRECTION.finditer(text):
        label = _clean_label(text[start:match.start()].rsplit(":", 1)[-1], vocabulary)
        start = match.end()
        azimuth_deg, elevation_deg, distance_m = (float(value) for value in match.groups())
        if label and _elevation_or_none(elevation_deg) is not None:
            sources.append({"label": label, "azimuth_deg": bin_azimuth_deg(azimuth_deg),
                            "elevation_deg": bin_elevation_deg(elevation_deg),
                            "distance_m": bin_distance_m(distance_m)})
    return {"parsed": bool(sources), "sources": sources}


PARSERS = {
    "labels": _parse_labels,
    "direction": _parse_direction,
    "elevation": _parse_elevation,
    "yes_no": _parse_yes_no,
    "count": _parse_count,
    "room": _parse_room,
    "description": _parse_description,
}


def parse_answer(question_type: str, text: str, *, vocabulary: Iterable[str] | None = None) -> dict:
    """Structured prediction ``{"parsed": bool, **fields}`` from an answer to a ``question_type`` question.

    ``vocabulary``: known class names; when given, labels are matched against it (see module doc).
    Raises ValueError only for an unknown ``question_type``.
    """
    answer_format = get_question_type(question_type).answer_format
    normalised = text.lower().replace("\u2212", "-").replace("_", " ")
    return PARSERS[answer_format](normalised, tuple(vocabulary or ()))
