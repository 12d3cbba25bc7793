"""Class targets of the encoder heads: BAT's direction and distance bins, multi-hot sound classes.

Bins (BAT-comparable, see DESIGN.md "Conventions"); every value is first rounded half up to the
bin grid, exactly like the QA answers (:mod:`spatial_alm.qa.templates`):

- azimuth: 360 classes of 1 degree. Class k is azimuth k degrees counter-clockwise from the front,
  so classes 0..180 are azimuths 0..180 (front, left, back) and classes 181..359 are azimuths
  -179..-1 (right side). -180 and 180 are the same direction: class 180.
- elevation: 181 classes of 1 degree: class k is elevation k - 90, so -90 (down) is class 0 and +90
  (up) is class 180. Elevation does not wrap; values outside [-90, 90] raise ``ValueError``.
- distance: 21 classes of 0.5 m over 0-10 m: class k is k * 0.5 m. Distances beyond 10 m fall into
  the last class (10 m), BAT's range; negative distances raise ``ValueError``.

NaN, the dataset's padding for a missing source, maps to ``IGNORE_INDEX`` (skipped by the losses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

AZIMUTH_CLASSES = 360
ELEVATION_CLASSES = 181
DISTANCE_STEP_M = 0.5
DISTANCE_MAX_M = 10.0
DISTANCE_CLASSES = round(DISTANCE_MAX_M / DISTANCE_STEP_M) + 1  # 21
IGNORE_INDEX = -100  # torch's cross-entropy default


def _values(x, field: str) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float64)
    if torch.isinf(x).any():
        raise ValueError(f"{field} must be finite or NaN (missing source), got {x[torch.isinf(x)].tolist()}")
    return x


def _round_half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


def _classes(rounded: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, rounded, torch.full_like(rounded, IGNORE_INDEX)).long()


def _check_classes(index, num_classes: int, field: str) -> torch.Tensor:
    index = torch.as_tensor(index)
    if index.is_floating_point() or ((index < 0) | (index >= num_classes)).any():
        raise ValueError(f"{field} must be integer classes in [0, {num_classes}), got {index.tolist()}")
    return index.long()


def azimuth_to_class(azimuth_deg) -> torch.Tensor:
    """Azimuth class indices (long, same shape) of azimuths in degrees (any real value, wrapped)."""
    az = _values(azimuth_deg, "azimuth_deg")
    return _classes(torch.remainder(_round_half_up(az), AZIMUTH_CLASSES), ~torch.isnan(az))


def class_to_azimuth(index) -> torch.Tensor:
    """Azimuth in degrees (float32, in (-180, 180]) of azimuth classes."""
    k = _check_classes(index, AZIMUTH_CLASSES, "azimuth class")
    return torch.where(k <= 180, k, k - AZIMUTH_CLASSES).float()


def elevation_to_class(elevation_deg) -> torch.Tensor:
    """Elevation class indices (long) of elevations in degrees, [-90, 90]."""
    el = _values(elevation_deg, "elevation_deg")
    bad = (el < -90) | (el > 90)
    if bad.any():
        raise ValueError(f"elevation_deg must be in [-90, 90], got {el[bad].tolist()}")
    return _classes(_round_half_up(el) + 90, ~torch.isnan(el))


def class_to_elevation(index) -> torch.Tensor:
    """Elevation in degrees (float32, [-90, 90]) of elevation classes."""
    return (_check_classes(index, ELEVATION_CLASSES, "elevation class") - 90).float()


def distance_to_class(distance_m) -> torch.Tensor:
    """Distance class indices (long) of distances in metres, >= 0; beyond 10 m -> the last class."""
    d = _values(distance_m, "distance_m")
    if (d < 0).any():
        raise ValueError(f"distance_m must be >= 0, got {d[d < 0].tolist()}")
    k = _round_half_up(d / DISTANCE_STEP_M).clamp_max(DISTANCE_CLASSES - 1)
    return _classes(k, ~torch.isnan(d))


def class_to_distance(index) -> torch.Tensor:
    """Distance in metres (float32, 0..10 step 0.5) of distance classes."""
    return _check_classes(index, DISTANCE_CLASSES, "distance class").float() * DISTANCE_STEP_M


def multi_hot(labels: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> torch.Tensor:
    """Multi-hot targets (B, K) float32 of B label lists over a vocabulary of K class names.

    Empty strings (the dataset's padding) are skipped; a label not in the vocabulary raises ``ValueError``.
    """
    position = {name: k for k, name in enumerate(vocabulary)}
    out = torch.zeros(len(labels), len(position))
    for b, scene_labels in enumerate(labels):
        for label in scene_labels:
            if label == "":
                continue
            if label not in position:
                raise ValueError(f"label {label!r} (scene {b}) is not in the vocabulary {list(vocabulary)}")
            out[b, position[label]] = 1.0
    return out


def primary_source(scene: dict) -> int:
    """Index of the source a scene's direction and distance targets describe: the loudest when the
    scene gives per-source ``level_db`` (first of ties), else the first source."""
    if scene.get("level_db") is None:
        return 0
    levels = torch.as_tensor(scene["level_db"], dtype=torch.float64)
    return int(torch.nan_to_num(levels, nan=-math.inf).argmax()) if levels.numel() else 0


def class_sources(scene: dict, vocabulary: Sequence[str]) -> torch.Tensor:
    """Class-wise positions of one scene: for each class of the vocabulary its source's azimuth and
    elevation (degrees) and distance (metres), (K, 3) float64, NaN when the class is absent. A class heard
    twice takes its louder source (first of ties, or first when levels are not given)."""
    position = {name: k for k, name in enumerate(vocabulary)}
    levels = scene.get("level_db")
    positions = torch.full((len(position), 3), math.nan, dtype=torch.float64)
    loudest: dict[str, float] = {}
    for i, label in enumerate(scene["labels"]):
        if label == "":
            continue
        if label not in position:
            raise ValueError(f"label {label!r} is not in the vocabulary {list(vocabulary)}")
        level = -math.inf if levels is None else float(levels[i])
        if label in loudest and level <= loudest[label]:
            continue
        loudest[label] = level
        positions[position[label]] = torch.tensor([float(scene[key][i]) for key in
                                                   ("azimuth_deg", "elevation_deg", "distance_m")])
    return positions


@dataclass
class EncoderTargets:
    """Targets of a batch of B scenes for :func:`spatial_alm.models.encoder.multitask_loss`.

    Following BAT, the class target lists every source (multi-label) while the direction and
    distance targets describe one source, the scene's primary one (:func:`primary_source`: the
    loudest, or the first when levels are not given). Scenes without a source have ``IGNORE_INDEX`` there.
    ``class_azimuth``, ``class_elevation`` and ``class_distance`` (optional, from :func:`class_sources`)
    give every class's source in the same bins, ``IGNORE_INDEX`` for absent classes, for the class-wise heads.
    """

    classes: torch.Tensor  # (B, K) float32 multi-hot
    azimuth: torch.Tensor  # (B,) long, azimuth class or IGNORE_INDEX
    elevation: torch.Tensor  # (B,) long
    distance: torch.Tensor  # (B,) long
    class_azimuth: torch.Tensor | None = None  # (B, K) long, azimuth class of each class's source or IGNORE_INDEX
    class_elevation: torch.Tensor | None = None  # (B, K) long
    class_distance: torch.Tensor | None = None  # (B, K) long

    def to(self, device) -> "EncoderTargets":
        return EncoderTargets(*(None if t is None else t.to(device) for t in (
            self.classes, self.azimuth, self.elevation, self.distance, self.class_azimuth,
            self.class_elevation, self.class_distance)))

    @classmethod
    def from_scenes(cls, scenes: Sequence[dict], vocabulary: Sequence[str]) -> "EncoderTargets":
        """Targets of items of :class:`spatial_alm.data.SpatialSceneDataset` (keys ``labels``,
        ``azimuth_deg``, ``elevation_deg``, ``distance_m``, optionally ``level_db``: per source,
        NaN / "" padded)."""
        def primary(key):
            return [float(s[key][primary_source(s)]) if len(s[key]) else math.nan for s in scenes]

        per_class = torch.stack([class_sources(s, vocabulary) for s in scenes]) if scenes \
            else torch.zeros(0, len(vocabulary), 3, dtype=torch.float64)  # (B, K, 3)
        return cls(classes=multi_hot([s["labels"] for s in scenes], vocabulary),
                   azimuth=azimuth_to_class(primary("azimuth_deg")),
                   elevation=elevation_to_class(primary("elevation_deg")),
                   distance=distance_to_class(primary("distance_m")),
                   class_azimuth=azimuth_to_class(per_class[..., 0]),
                   class_elevation=elevation_to_class(per_class[..., 1]),
                   class_distance=distance_to_class(per_class[..., 2]))
