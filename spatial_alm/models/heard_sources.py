"""The sources an encoder hears, written as text for the LLM's prompt (per-source tokens).

An encoder with class-wise heads (``class_direction_head``) gives, for every class k, a probability
p_k, a direction (decoded from its azimuth and elevation bins) and a distance in metres.
:func:`heard_sources` keeps the classes with p_k >= ``threshold`` and :func:`describe_sources` writes
them, nearest first, in the words and answer formats of the QA text (:mod:`spatial_alm.qa.templates`:
the negative probes' region phrases, the type-B direction format)::

    Heard, nearest first: a dog (90%) to your left, in front of you, below you, at azimuth 30 deg,
    elevation 0 deg, distance 1.5 m; a bell (40%) to your right, behind you, above you, at azimuth -120 deg,
    elevation 5 deg, distance 2.0 m.

This line goes into the prompt after the audio embeddings (:mod:`spatial_alm.models.audio_llm`): the
encoder's per-source estimates enter the LLM as tokens of its own vocabulary, one short phrase per
source carrying its class, its side, its direction and its distance, beside the projected patch and
CLS tokens. Why words rather than learned embeddings: an LLM copies numbers and matches class names in
its context after little fine-tuning, while learned readers of class-wise vectors did not learn to pick
the two named classes within CPU budgets (``experiments/results/README.md``, the yes/no probes). The
price is a discrete bottleneck: the text cannot be better than the encoder's estimates.

Two sources are not heard from one direction. In a mixture a class's azimuth posterior often leans to
the louder source (its argmax names the other source's direction: measured on the tiny binaural encoder,
two heard classes on opposite sides came out in the right left/right order for 55 % of test pairs),
while the posteriors compared with each other hold the order. So with the posteriors
(``class_azimuth_probs``) the heard classes' azimuths are decoded jointly (:func:`separated_azimuths`):
the most confident class (probability times posterior peak) takes its argmax and claims every azimuth
within ``MIN_SEPARATION_DEG`` of those where its posterior is at least ``CLAIM_FRACTION`` of its peak;
the next takes its best unclaimed azimuth, and so on (pairs in order on 300 fresh scenes: 72 % against
61 % for each class's own argmax; it costs 2-3 points of lateral accuracy). A receiver's ambiguity
is claimed with the source: a sphere head's posterior holds both front/back mirror images, so both are
taken, where a receiver resolving front from back leaves the mirror free.

A question that relates two named sounds presupposes both ("is the dog to the left of the bell?"): the
line of its prompt lists them whatever their probability (:func:`presupposed_classes`), with the
probability it has and the direction and distance the class-wise heads give it, as the heads' own answer
to such a question reads them. Without this a class below the threshold left the LLM nothing to compare:
on the tiny binaural recipe a fifth of the E questions named such a class, and the LLM answered them at
chance where the heads reached 87 % (``experiments/results/README.md``). A question about one class
(a negative probe: is there a dog?) gets the line of the classes above the threshold only.

A side relation ("to the left of", "in front of", "above") also presupposes that its two sounds lie on
opposite sides of its axis: the QA generator asks it only then, and "is the dog to the left of the
bell?" about two sounds on one side has no answer in the line's side words. When the decoded directions
put both on one side, the one nearer the other side (the smaller component along the axis on the positive
side, the larger on the negative) is written at its mirror image across the axis' plane, at least 1 degree
off it (:func:`presupposed_opposite_sides`, :func:`placed_on_opposite_sides`), so the line's sides keep the
order of the two directions along the axis: the comparison the class-wise heads make on their own. On
the 1000-scene test set of the tiny binaural recipe the line put both named sounds on one side for 30 of
194 left/right questions, which the LLM answered right 11 times against the heads' 23; with this placement
the same model's E rose from 82.2 to 84.7 % (heads 86.0 %), nothing retrained (on 300 other scenes, with 4
such questions, 81.3 -> 79.3 %: the LLM now follows the heads' order there too).

Sides use the QA generator's definitions (:mod:`spatial_alm.qa.generator`): left = azimuth > 0,
front = |azimuth| < 90, above = elevation > 0; the phrases of every axis are written whatever the
receiver resolves (a sphere head's front/back words are as uncertain as its azimuth; questions about
unresolved axes are not asked by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Sequence

import torch

from spatial_alm.coordinates import cartesian_to_spherical, spherical_to_cartesian, wrap_azimuth_deg
from spatial_alm.models.targets import AZIMUTH_CLASSES, class_to_azimuth
from spatial_alm.qa.templates import (
    ANSWER_FORMATS,
    DISTANCE_AXIS,
    REGION_PHRASES,
    SIDE_OF_PHRASE,
    bin_azimuth_deg,
    bin_distance_m,
    bin_elevation_deg,
    canonical_label,
    named_labels,
    parse_yes_no_question,
    with_article,
)

PREFIX = "Heard, nearest first: "
MIN_SIDE_COMPONENT = math.sin(math.radians(1.0))  # of a side-relation sound along its axis: 1 deg off the boundary
NOTHING = "Heard: nothing."
MIN_SEPARATION_DEG = 20.0  # the recipes keep sources at least this far apart (sources.min_separation_deg)
CLAIM_FRACTION = 0.5  # a heard class claims the azimuths where its posterior is >= this share of its peak


@dataclass(frozen=True)
class HeardSource:
    """One class the encoder hears: canonical label, probability in [0, 1], direction (degrees, binned as
    the QA answers) and distance (metres, multiple of 0.5)."""

    label: str
    probability: float
    azimuth_deg: int
    elevation_deg: int
    distance_m: float


def _nearest_first(sources: Sequence[HeardSource], distances_m: Sequence[float]) -> list[HeardSource]:
    """The sources ordered by their unbinned distances ``distances_m`` (metres), nearest first; ties: more
    probable first, then by label. Two estimates in one 0.5 m bin keep their order: the line's order
    carries what its rounded distances cannot."""
    order = sorted(range(len(sources)), key=lambda i: (distances_m[i], -sources[i].probability, sources[i].label))
    return [sources[i] for i in order]


@cache
def _azimuth_bins() -> tuple[torch.Tensor, torch.Tensor]:
    """The azimuth of every bin (360,) degrees and which bins lie within ``MIN_SEPARATION_DEG`` (360, 360)."""
    azimuths = class_to_azimuth(torch.arange(AZIMUTH_CLASSES)).double()
    return azimuths, wrap_azimuth_deg(azimuths[:, None] - azimuths[None, :]).abs() <= MIN_SEPARATION_DEG


def separated_azimuths(azimuth_probs: torch.Tensor, class_probs: torch.Tensor,
                       heard: Sequence[int]) -> dict[int, float]:
    """Azimuths (degrees) of the ``heard`` classes of one clip, decoded jointly (module doc): the most
    confident class first (``class_probs`` (K,) times the peak of its posterior), each taking the argmax of its
    posterior ``azimuth_probs`` (K, 360) over the azimuths no earlier class claims (its own argmax when all are)."""
    azimuths, near = _azimuth_bins()
    free = torch.ones(AZIMUTH_CLASSES, dtype=torch.bool)
    out = {}
    for k in sorted(heard, key=lambda k: -float(class_probs[k] * azimuth_probs[k].max())):
        posterior = azimuth_probs[k]
        best = int(torch.where(free, posterior, -1.0).argmax()) if free.any() else int(posterior.argmax())
        out[k] = float(azimuths[best])
        free &= ~near[:, posterior >= CLAIM_FRACTION * posterior.max()].any(dim=1)
    return out


def line_directions(class_probs: torch.Tensor, class_directions: torch.Tensor, threshold: float,
                    class_azimuth_probs: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K, 3) float64 unit vectors of every class as the heard line decodes them: ``class_directions``
    (B, K, 3) with, when the posteriors ``class_azimuth_probs`` (B, K, 360) are given, the azimuths of the
    classes with ``class_probs`` (B, K) >= ``threshold`` decoded jointly (:func:`separated_azimuths`);
    elevations and the other classes as given."""
    directions = class_directions.detach().double().cpu().clone()
    if class_azimuth_probs is None:
        return directions
    _, elevation, _ = cartesian_to_spherical(directions)
    probs = class_probs.detach().double().cpu()
    for b in range(probs.shape[0]):
        heard = [k for k in range(probs.shape[1]) if probs[b, k] >= threshold]
        for k, azimuth in separated_azimuths(class_azimuth_probs[b].detach().double().cpu(), probs[b], heard).items():
            directions[b, k] = spherical_to_cartesian(azimuth, elevation[b, k])
    return directions


def presupposed_classes(question: str, class_names: Sequence[str]) -> list[int]:
    """Indices into ``class_names`` of the classes a question relates to each other: all it names when it
    names two or more ("is the dog to the left of the bell?" presupposes both sounds), else none (a question
    about one class may ask whether it is there at all)."""
    named = named_labels(question, class_names)
    if len(named) < 2:
        return []
    return [k for k, name in enumerate(class_names) if canonical_label(name) in named]


def presupposed_opposite_sides(question: str, class_names: Sequence[str]) -> tuple[int, int, int] | None:
    """(axis of the listener frame: 0 x front, 1 y left, 2 z up; the first and the second class the question
    names, indices into ``class_names``) of a type E side relation ("is the <a> to the left of the <b>?"),
    whose two sounds it presupposes on opposite sides of the axis; None for any other question (nearer /
    farther included)."""
    parsed = parse_yes_no_question("E", question, class_names)
    if parsed is None:
        return None
    axis, _ = SIDE_OF_PHRASE["E"][parsed[0]]
    return None if axis == DISTANCE_AXIS else (axis, *parsed[1])


def placed_on_opposite_sides(directions: torch.Tensor, axis: int, first: int, second: int) -> torch.Tensor:
    """A copy of ``directions`` (K, 3) unit vectors with classes ``first`` and ``second`` on opposite sides of
    ``axis`` as the line writes them, in the order of their components along it: the one with the larger
    component points to the positive side (on a tie, ``second``). A class on the wrong side is mirrored across the axis'
    plane (that component negated); each of the two keeps at least :data:`MIN_SIDE_COMPONENT` of its side
    (the other components rescaled to unit length), so the line's whole-degree bins cannot put it on the
    boundary, which the side words count as one side (e.g. elevation 0: "below you")."""
    first_positive = bool(directions[first, axis] > directions[second, axis])
    rest = [i for i in range(3) if i != axis]
    placed = directions.clone()
    for k, sign in ((first, 1.0 if first_positive else -1.0), (second, -1.0 if first_positive else 1.0)):
        component = sign * max(abs(float(directions[k, axis])), MIN_SIDE_COMPONENT)
        norm = float(torch.linalg.vector_norm(directions[k, rest]))
        placed[k, axis] = component
        if norm > 0:  # else the direction lies on the axis, |component| = 1
            placed[k, rest] = directions[k, rest] * (math.sqrt(1.0 - component ** 2) / norm)
    return placed


def heard_sources(class_probs: torch.Tensor, class_directions: torch.Tensor, class_distances: torch.Tensor,
                  class_names: Sequence[str], threshold: float, class_azimuth_probs: torch.Tensor | None = None,
                  presupposed: Sequence[Sequence[int]] | None = None,
                  opposite_sides: Sequence[tuple[int, int, int] | None] | None = None) -> list[list[HeardSource]]:
    """Per clip, the classes with probability >= ``threshold``, and those in ``presupposed[b]`` (indices
    into ``class_names``; :func:`presupposed_classes` of the clip's question) whatever their probability,
    nearest first by their unbinned distances (ties: more probable first).

    class_probs (B, K), class_directions (B, K, 3), class_distances (B, K) metres and class_azimuth_probs
    (B, K, 360): the class-wise outputs of :meth:`~spatial_alm.models.encoder.SpatialEncoderModel.predict`;
    K names in ``class_names``. With ``class_azimuth_probs`` the azimuths of the classes above the threshold
    are decoded jointly (:func:`separated_azimuths`), else from ``class_directions``, as are the other
    presupposed classes' (the direction the class-wise heads give them); elevations from ``class_directions``.
    ``opposite_sides[b]`` (:func:`presupposed_opposite_sides` of the clip's question, or None) puts its two
    classes on opposite sides of its axis (:func:`placed_on_opposite_sides`).
    """
    if class_probs.shape[-1] != len(class_names):
        raise ValueError(f"class_probs has {class_probs.shape[-1]} classes; allowed: one per class name "
                         f"({len(class_names)})")
    for name, given in (("presupposed", presupposed), ("opposite_sides", opposite_sides)):
        if given is not None and len(given) != class_probs.shape[0]:
            raise ValueError(f"{name}: {len(given)} entries given; allowed: one per clip ({class_probs.shape[0]})")
    directions = line_directions(class_probs, class_directions, threshold, class_azimuth_probs)  # (B, K, 3)
    for b, relation in enumerate(opposite_sides or []):
        if relation is not None:
            directions[b] = placed_on_opposite_sides(directions[b], *relation)
    azimuth, elevation, _ = cartesian_to_spherical(directions)  # (B, K)
    probs, distances = class_probs.detach().double().cpu(), class_distances.detach().double().cpu()
    clips = []
    for b in range(probs.shape[0]):
        heard = [k for k in range(len(class_names))
                 if probs[b, k] >= threshold or (presupposed is not None and k in presupposed[b])]
        sources = [HeardSource(canonical_label(class_names[k]), float(probs[b, k]),
                               bin_azimuth_deg(float(azimuth[b, k])), bin_elevation_deg(float(elevation[b, k])),
                               bin_distance_m(float(distances[b, k])))
                   for k in heard]
        clips.append(_nearest_first(sources, [float(distances[b, k]) for k in heard]))
    return clips


def scene_sources(labels: Sequence[str], azimuth_deg: Sequence[float], elevation_deg: Sequence[float],
                  distance_m: Sequence[float]) -> list[HeardSource]:
    """The true sources of one scene (its metadata: one label, azimuth, elevation (degrees) and distance
    (metres) per source) as heard sources with probability 1, binned and ordered as :func:`heard_sources`:
    the line an ideal encoder would give (diagnostics: what the LLM learns from a perfect line)."""
    sources = [HeardSource(canonical_label(label), 1.0, bin_azimuth_deg(float(az)), bin_elevation_deg(float(el)),
                           bin_distance_m(float(dist)))
               for label, az, el, dist in zip(labels, azimuth_deg, elevation_deg, distance_m, strict=True)]
    return _nearest_first(sources, [float(dist) for dist in distance_m])


def _sides(source: HeardSource) -> str:
    """The region phrases of the source's three sides, e.g. ``to your left, in front of you, below you``."""
    regions = ("left" if source.azimuth_deg > 0 else "right", "front" if abs(source.azimuth_deg) < 90 else "behind",
               "above" if source.elevation_deg > 0 else "below")
    return ", ".join(REGION_PHRASES[region] for region in regions)


def describe_sources(sources: Sequence[HeardSource]) -> str:
    """One line naming every heard source with its probability (whole percent, rounded to 10), sides,
    direction and distance, nearest first; :data:`NOTHING` when there is none."""
    if not sources:
        return NOTHING
    phrases = [f"{with_article(s.label)} ({round(s.probability * 10) * 10}%) {_sides(s)}, at "
               f"{ANSWER_FORMATS['direction'](vars(s))}" for s in sources]
    return PREFIX + "; ".join(phrases) + "."
