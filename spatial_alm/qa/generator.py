"""Generate SpatialSoundQA-style question/answer pairs from scene metadata.

Question types live in the registry :data:`QUESTION_TYPES` (name -> :class:`QuestionType`: draft
function, templates, answer format, curriculum stage, how many sources it needs). Answers are written
from the metadata only, in the fixed formats of :mod:`spatial_alm.qa.templates`, so they are true by
construction.

Definitions, in the listener frame of :mod:`spatial_alm.coordinates`:

* Sides: left = azimuth in (0, 180), right = (-180, 0), front = |azimuth| < 90, behind = |azimuth| > 90,
  above you = elevation > 0, below you = elevation < 0.
* Type E relations. "A is to the left of B" holds when A is on the left side and B on the right side
  and fails in the mirrored case; "in front of / behind" and "above / below" likewise with the front and
  back sides and with above and below you; two sources on the same side are never compared (two
  elevations of one hemisphere are not: a measured head localises elevation to 10-20 deg at best, and
  an answer from elevations a few degrees apart would rest on a difference no receiver here resolves).
  "A is closer to you than B": A has the smaller distance.
* Ambiguity margins: reasoning questions and negative probes are only asked when their truth is
  robust: every source involved lies at least ``SIDE_MARGIN_DEG`` (5 deg) from the side boundary in
  question (azimuth 0/180 for left/right, +-90 for front/back, elevation 0 for above/below), and
  the two distances differ by at least ``DISTANCE_MARGIN_M`` (0.5 m).
* Named sources: questions name a source by its class, so only sources whose class occurs once in
  the scene are named (types D, E, elevation).
* Room classes: size from the volume (small < 50 m^3 <= medium < 200 m^3 <= large), reverberation
  from RT60 (dry < 0.3 s <= medium < 0.8 s <= reverberant).
* Yes/no balance: types E and negative draw the wanted answer first (yes with probability 1/2), then
  choose the order of the two sources, the relation word or the probe so that it holds. The axis asked
  about never depends on the wanted answer (E: the pair and relation are drawn from all unambiguous ones;
  negative: the axis is drawn from those offering both a yes and a no probe), so the answers are
  balanced on every axis, not only overall.
* Axes: every E and negative target records the axis it asks about (``target["axis"]``: one of
  :data:`~spatial_alm.coordinates.AXES`, left_right, front_back, above_below, distance). ``axes``
  (default: all) limits them to the axes the receiver resolves (``Receiver.resolved_axes``: a rigid-
  sphere head cannot tell front from back or up from down, so questions about those are unanswerable
  from its audio); :func:`~spatial_alm.scenes.make_scene` passes the receiver's axes unless the recipe
  says ``qa.unresolvable_axes: ask``.
* Sources whose sound cannot tell its side: a head hears front/back and above/below only through the
  colouring of a sound, which a sound without energy in the pinna's bands does not take on (an engine
  hum). With ``min_spectral_cue_db`` (the recipe's ``qa.min_spectral_cue_db``) a source whose
  ``front_back_cue_db`` / ``above_below_cue_db`` (:mod:`spatial_alm.acoustics.spectral_cues`) is below it
  is never asked about on that axis: not compared (E), not probed in a region of it, and a negative
  "elsewhere" probe needs every source of its class heard on the axis. Sources without a cue (None:
  arrays, recordings) are asked about.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from spatial_alm.coordinates import AXES, check_axes
from spatial_alm.qa.templates import (
    ANSWER_FORMATS,
    QUESTION_TEMPLATES,
    REGION_PHRASES,
    RELATION_PHRASES,
    bin_azimuth_deg,
    bin_distance_m,
    bin_elevation_deg,
    canonical_label,
    with_article,
)

if TYPE_CHECKING:  # annotations only: importing spatial_alm.scenes here would be circular
    from spatial_alm.scenes.metadata import SceneMeta, SourceMeta

SIDE_MARGIN_DEG = 5.0
DISTANCE_MARGIN_M = 0.5

# (class, exclusive upper bound): room volume in m^3, RT60 in s.
ROOM_SIZE_CLASSES = (("small", 50.0), ("medium", 200.0), ("large", math.inf))
REVERBERATION_CLASSES = (("dry", 0.3), ("medium", 0.8), ("reverberant", math.inf))

STAGE_NAMES = {"I": 1, "II": 2, "III": 3}

# Keys of a target that describe the question rather than its answer (not in parse_answer's result).
TARGET_QUESTION_KEYS = ("axis",)


@dataclass(frozen=True)
class QAPair:
    """One question about a scene with its answer text and the structured truth the answer encodes."""

    question_type: str
    question: str
    answer: str
    target: dict  # JSON-serialisable; parse_answer(question_type, answer) minus "parsed", plus for E and
    # negative the question's "axis" (TARGET_QUESTION_KEYS)
    source_index: int | None  # source asked about (E: the first named; negative: the match); else None
    fields: dict  # the template's placeholders, e.g. {"label_a", "label_b", "relation"} (not stored on disk)


@dataclass(frozen=True)
class _Context:
    scene: SceneMeta
    labels: tuple[str, ...]  # canonical label per source
    named: tuple[int, ...]  # sources whose label occurs once in the scene
    absent_labels: tuple[str, ...]  # vocabulary labels not in the scene (negative probes)
    axes: frozenset[str]  # axes that E and negative may ask about
    min_spectral_cue_db: float | None  # sources with a smaller spectral cue on an axis are not asked about it


@dataclass(frozen=True)
class _Draft:
    fields: dict  # template placeholders
    target: dict
    source_index: int | None


@dataclass(frozen=True)
class QuestionType:
    """A registered question type; ``draft`` returns None when the scene offers no such question."""

    name: str
    stage: int  # curriculum stage (1, 2, 3) from which the type is used
    min_sources: int
    max_sources: int | None  # None: no upper bound
    answer_format: str  # key of templates.ANSWER_FORMATS and parser.PARSERS
    summary: str
    templates: tuple[str, ...]
    draft: Callable[[_Context, np.random.Generator], _Draft | None]

    def applies_to(self, scene: SceneMeta) -> bool:
        n = len(scene.sources)
        return n >= self.min_sources and (self.max_sources is None or n <= self.max_sources)


QUESTION_TYPES: dict[str, QuestionType] = {}


def _register(name: str, *, stage: int, min_sources: int, max_sources: int | None = None,
              answer_format: str, summary: str):
    def decorator(draft):
        QUESTION_TYPES[name] = QuestionType(name, stage, min_sources, max_sources, answer_format,
                                            summary, QUESTION_TEMPLATES[name], draft)
        return draft
    return decorator


def get_question_type(name: str) -> QuestionType:
    """The registered type ``name``; ValueError listing the valid names otherwise."""
    if name not in QUESTION_TYPES:
        raise ValueError(f"unknown question type {name!r}; valid types: {', '.join(QUESTION_TYPES)}")
    return QUESTION_TYPES[name]


def is_yes_no(name: str) -> bool:
    """Whether type ``name`` is answered yes or no (E, negative)."""
    return get_question_type(name).answer_format == "yes_no"


def types_for_stage(stage: int | str) -> list[str]:
    """Types used in curriculum stage 1/2/3 (or "I"/"II"/"III"): I = A,B; II = A-D; III = all."""
    number = STAGE_NAMES.get(stage.strip().upper()) if isinstance(stage, str) else stage
    if number not in STAGE_NAMES.values():
        raise ValueError(f"unknown curriculum stage {stage!r}; valid stages: 1, 2, 3 or I, II, III")
    return [name for name, qtype in QUESTION_TYPES.items() if qtype.stage <= number]


def classify_room(room_dim_m: Sequence[float], rt60_s: float) -> dict:
    """``{"room_size": small|medium|large, "reverberation": dry|medium|reverberant}``."""
    volume_m3 = math.prod(room_dim_m)
    size = next(name for name, upper in ROOM_SIZE_CLASSES if volume_m3 < upper)
    reverberation = next(name for name, upper in REVERBERATION_CLASSES if rt60_s < upper)
    return {"room_size": size, "reverberation": reverberation}


# --- geometry: True / False, or None inside an ambiguity margin --------------------------------

def _on_left(source: SourceMeta) -> bool | None:
    az = float(source.azimuth_deg)
    if SIDE_MARGIN_DEG < az < 180.0 - SIDE_MARGIN_DEG:
        return True
    if -180.0 + SIDE_MARGIN_DEG < az < -SIDE_MARGIN_DEG:
        return False
    return None


def _in_front(source: SourceMeta) -> bool | None:
    off_axis = abs(float(source.azimuth_deg))
    if off_axis < 90.0 - SIDE_MARGIN_DEG:
        return True
    if off_axis > 90.0 + SIDE_MARGIN_DEG:
        return False
    return None


def _above_you(source: SourceMeta) -> bool | None:
    el = float(source.elevation_deg)
    return None if abs(el) < SIDE_MARGIN_DEG else el > 0.0


def _negated(side: Callable[[SourceMeta], bool | None]) -> Callable[[SourceMeta], bool | None]:
    def other_side(source: SourceMeta) -> bool | None:
        value = side(source)
        return None if value is None else not value
    return other_side


def _opposite_sides(side: Callable[[SourceMeta], bool | None]):
    def relation(a: SourceMeta, b: SourceMeta) -> bool | None:
        side_a, side_b = side(a), side(b)
        return side_a if None not in (side_a, side_b) and side_a != side_b else None
    return relation


def _larger(value: Callable[[SourceMeta], float], margin: float):
    def relation(a: SourceMeta, b: SourceMeta) -> bool | None:
        difference = float(value(a)) - float(value(b))
        return None if abs(difference) < margin else difference > 0.0
    return relation


REGIONS = {
    "left": _on_left, "right": _negated(_on_left),
    "front": _in_front, "behind": _negated(_in_front),
    "above": _above_you, "below": _negated(_above_you),
}

# Relation(a, b): does "a <RELATION_PHRASES[name][0]> b" hold? Antisymmetric where not None.
RELATIONS = {
    "left": _opposite_sides(_on_left),
    "front": _opposite_sides(_in_front),
    "above": _opposite_sides(_above_you),
    "nearer": _larger(lambda s: -s.distance_m, DISTANCE_MARGIN_M),
}

# The axis (coordinates.AXES) each relation and region asks about.
RELATION_AXIS = {"left": "left_right", "front": "front_back", "above": "above_below", "nearer": "distance"}
REGION_AXIS = {"left": "left_right", "right": "left_right", "front": "front_back", "behind": "front_back",
               "above": "above_below", "below": "above_below"}


# The SourceMeta field holding a source's spectral cue on each axis a head hears through colouring.
SPECTRAL_CUE_FIELDS = {"front_back": "front_back_cue_db", "above_below": "above_below_cue_db"}


def _heard(ctx: _Context, source: SourceMeta, axis: str) -> bool:
    """Whether ``source``'s side on ``axis`` may be asked about: its spectral cue (if the axis has one and
    the source records it) is at least ``ctx.min_spectral_cue_db``."""
    field = SPECTRAL_CUE_FIELDS.get(axis)
    cue = None if field is None else getattr(source, field)
    return ctx.min_spectral_cue_db is None or cue is None or cue >= ctx.min_spectral_cue_db


def _direction_target(source: SourceMeta) -> dict:
    return {"azimuth_deg": bin_azimuth_deg(source.azimuth_deg),
            "elevation_deg": bin_elevation_deg(source.elevation_deg),
            "distance_m": bin_distance_m(source.distance_m)}


def _pick(items: Sequence, rng: np.random.Generator):
    return items[int(rng.integers(len(items)))]


# --- question types ------------------------------------------------------------------------------

@_register("A", stage=1, min_sources=1, max_sources=1, answer_format="labels",
           summary="detection, one source: its class")
def _detect_one(ctx: _Context, rng: np.random.Generator) -> _Draft:
    return _Draft({}, {"labels": [ctx.labels[0]]}, 0)


@_register("B", stage=1, min_sources=1, max_sources=1, answer_format="direction",
           summary="direction and distance of the one source")
def _locate_one(ctx: _Context, rng: np.random.Generator) -> _Draft:
    return _Draft({}, _direction_target(ctx.scene.sources[0]), 0)


@_register("C", stage=2, min_sources=2, answer_format="labels",
           summary="detection, two or more sources: all classes")
def _detect_all(ctx: _Context, rng: np.random.Generator) -> _Draft:
    return _Draft({}, {"labels": sorted(set(ctx.labels))}, None)


@_register("D", stage=2, min_sources=2, answer_format="direction",
           summary="direction and distance of a named source in a mixture")
def _locate_named(ctx: _Context, rng: np.random.Generator) -> _Draft | None:
    if not ctx.named:
        return None
    i = _pick(ctx.named, rng)
    return _Draft({"label": ctx.labels[i]}, _direction_target(ctx.scene.sources[i]), i)


@_register("E", stage=3, min_sources=2, answer_format="yes_no",
           summary="reasoning between two named sources: left/right, front/back, above/below, nearer/farther")
def _reason_pair(ctx: _Context, rng: np.random.Generator) -> _Draft | None:
    sources = ctx.scene.sources
    candidates = [(i, j, name) for i, j in combinations(ctx.named, 2)
                  for name, relation in RELATIONS.items()
                  if RELATION_AXIS[name] in ctx.axes and relation(sources[i], sources[j]) is not None
                  and _heard(ctx, sources[i], RELATION_AXIS[name]) and _heard(ctx, sources[j], RELATION_AXIS[name])]
    if not candidates:
        return None
    want_yes = bool(rng.random() < 0.5)
    i, j, name = _pick(candidates, rng)
    converse = bool(rng.random() < 0.5)
    if (RELATIONS[name](sources[i], sources[j]) != converse) != want_yes:
        i, j = j, i
    fields = {"label_a": ctx.labels[i], "label_b": ctx.labels[j],
              "relation": RELATION_PHRASES[name][int(converse)]}
    return _Draft(fields, {"yes": want_yes, "axis": RELATION_AXIS[name]}, i)


@_register("count", stage=3, min_sources=0, answer_format="count",
           summary="number of sources (each source counts, also two of one class)")
def _count(ctx: _Context, rng: np.random.Generator) -> _Draft:
    return _Draft({}, {"count": len(ctx.labels)}, None)


@_register("elevation", stage=3, min_sources=1, answer_format="elevation",
           summary="elevation of a named source")
def _elevation_named(ctx: _Context, rng: np.random.Generator) -> _Draft | None:
    if not ctx.named:
        return None
    i = _pick(ctx.named, rng)
    return _Draft({"label": ctx.labels[i]},
                  {"elevation_deg": bin_elevation_deg(ctx.scene.sources[i].elevation_deg)}, i)


@_register("room", stage=3, min_sources=0, answer_format="room",
           summary="room size class from the volume and reverberation class from RT60")
def _room(ctx: _Context, rng: np.random.Generator) -> _Draft:
    return _Draft({}, classify_room(ctx.scene.room_dim_m, ctx.scene.rt60_s), None)


@_register("negative", stage=3, min_sources=1, answer_format="yes_no",
           summary="is there a <class> <region>? (class present there, present elsewhere, or absent)")
def _probe_region(ctx: _Context, rng: np.random.Generator) -> _Draft | None:
    want_yes = bool(rng.random() < 0.5)
    sources = ctx.scene.sources
    regions = [region for region in REGIONS if REGION_AXIS[region] in ctx.axes]
    yes, elsewhere = [], []  # (label, region, first source of label in region or None)
    for label in sorted(set(ctx.labels)):
        members = [i for i, other in enumerate(ctx.labels) if other == label]
        for region in regions:
            heard = [_heard(ctx, sources[i], REGION_AXIS[region]) for i in members]
            inside = [i for i, ok in zip(members, heard) if ok and REGIONS[region](sources[i])]
            if inside:
                yes.append((label, region, inside[0]))
            elif all(heard) and all(REGIONS[region](sources[i]) is False for i in members):
                elsewhere.append((label, region, None))
    absent = [(label, region, None) for label in ctx.absent_labels for region in regions]

    def on(axis, pool):
        return [probe for probe in pool if REGION_AXIS[probe[1]] == axis]

    # the axis is drawn among those with both a yes and a no probe, whatever the wanted answer
    axes = [axis for axis in AXES if on(axis, yes) and (on(axis, elsewhere) or on(axis, absent))]
    if not axes:
        return None
    axis = _pick(axes, rng)
    # true negatives: a present class elsewhere, or an absent class anywhere
    pools = [on(axis, yes)] if want_yes else [pool for pool in (on(axis, elsewhere), on(axis, absent)) if pool]
    label, region, source_index = _pick(_pick(pools, rng), rng)
    fields = {"a_label": with_article(label), "region": REGION_PHRASES[region]}
    return _Draft(fields, {"yes": want_yes, "axis": axis}, source_index)


@_register("description", stage=3, min_sources=1, answer_format="description",
           summary="one-sentence scene description: every source with direction and distance")
def _describe(ctx: _Context, rng: np.random.Generator) -> _Draft:
    described = [{"label": label, **_direction_target(source)}
                 for label, source in zip(ctx.labels, ctx.scene.sources)]
    described.sort(key=lambda s: (s["label"], s["azimuth_deg"], s["elevation_deg"], s["distance_m"]))
    return _Draft({}, {"sources": described}, None)


# --- public entry points -------------------------------------------------------------------------

def _checked_label(label: str, where: str) -> str:
    canonical = canonical_label(label)
    if not canonical or ";" in canonical:
        raise ValueError(f"{where} label={label!r}: labels must be non-empty and contain no ';'")
    return canonical


def _check_source(source: SourceMeta, where: str) -> None:
    az, el, dist = float(source.azimuth_deg), float(source.elevation_deg), float(source.distance_m)
    if not -180.0 < az <= 180.0:
        raise ValueError(f"{where} azimuth_deg={az} is outside (-180, 180]")
    if not -90.0 <= el <= 90.0:
        raise ValueError(f"{where} elevation_deg={el} is outside [-90, 90]")
    if not (math.isfinite(dist) and dist >= 0.0):
        raise ValueError(f"{where} distance_m={dist} must be finite and >= 0")


def _context(scene: SceneMeta, label_vocabulary: Iterable[str], axes: Iterable[str],
             min_spectral_cue_db: float | None) -> _Context:
    if not all(d > 0 for d in scene.room_dim_m):
        raise ValueError(f"scene {scene.index} room_dim_m={scene.room_dim_m} must be all > 0")
    if not (math.isfinite(scene.rt60_s) and scene.rt60_s >= 0):
        raise ValueError(f"scene {scene.index} rt60_s={scene.rt60_s} must be finite and >= 0")
    labels = []
    for i, source in enumerate(scene.sources):
        where = f"scene {scene.index} source {i}"
        _check_source(source, where)
        labels.append(_checked_label(source.label, where))
    counts = Counter(labels)
    vocabulary = {_checked_label(label, "label_vocabulary") for label in label_vocabulary}
    return _Context(scene, tuple(labels), tuple(i for i, label in enumerate(labels) if counts[label] == 1),
                    tuple(sorted(vocabulary - counts.keys())), check_axes(axes), min_spectral_cue_db)


def _make(qtype: QuestionType, ctx: _Context, rng: np.random.Generator,
          template_index: int | None) -> QAPair | None:
    if template_index is not None and not 0 <= template_index < len(qtype.templates):
        raise ValueError(f"template_index={template_index} is outside [0, {len(qtype.templates)}) "
                         f"for type {qtype.name!r}")
    if not qtype.applies_to(ctx.scene):
        return None
    draft = qtype.draft(ctx, rng)
    if draft is None:
        return None
    if template_index is None:
        template_index = int(rng.integers(len(qtype.templates)))
    question = qtype.templates[template_index].format(**draft.fields)
    answer = ANSWER_FORMATS[qtype.answer_format](draft.target)
    return QAPair(qtype.name, question, answer, draft.target, draft.source_index, draft.fields)


def make_qa(question_type: str, scene: SceneMeta, rng: np.random.Generator, *,
            template_index: int | None = None, label_vocabulary: Iterable[str] = (),
            axes: Iterable[str] = AXES, min_spectral_cue_db: float | None = None) -> QAPair | None:
    """One question of ``question_type`` about ``scene``, or None when the scene offers none (type not
    applicable, no uniquely named source, every pair ambiguous, no allowed axis). ``template_index``
    forces a template; ``label_vocabulary`` lists classes that negative probes may ask about when absent
    from the scene; ``axes`` (names from :data:`~spatial_alm.coordinates.AXES`, default all) are those
    that E and negative questions may ask about (the receiver's ``resolved_axes``); ``min_spectral_cue_db``
    (default None: no limit) the smallest spectral cue of a source asked about on front/back or
    above/below (module docstring)."""
    return _make(get_question_type(question_type), _context(scene, label_vocabulary, axes, min_spectral_cue_db),
                 rng, template_index)


def generate_qa(scene: SceneMeta, rng: np.random.Generator, types: Iterable[str] | None = None,
                per_type: int = 1, *, label_vocabulary: Iterable[str] = (),
                axes: Iterable[str] = AXES, min_spectral_cue_db: float | None = None) -> list[QAPair]:
    """Up to ``per_type`` questions of each of ``types`` (default: all) that applies to ``scene``.

    Deterministic given the state of ``rng``; types the scene does not support are skipped. ``axes``
    (default: all) and ``min_spectral_cue_db`` (default None): which sides E and negative questions may
    ask about, as in :func:`make_qa`.
    """
    if per_type < 1:
        raise ValueError(f"per_type={per_type} must be >= 1")
    if types is None:
        types = QUESTION_TYPES
    elif isinstance(types, str):
        types = [types]
    qtypes = [get_question_type(name) for name in types]
    ctx = _context(scene, label_vocabulary, axes, min_spectral_cue_db)
    pairs = []
    for qtype in qtypes:
        for _ in range(per_type):
            pair = _make(qtype, ctx, rng, None)
            if pair is not None:
                pairs.append(pair)
    return pairs
