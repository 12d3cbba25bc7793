"""Microphone arrays: named geometries or arbitrary coordinates, placed and oriented in the room.

Offsets are in the array frame (x = front, y = left, z = up; metres, relative to the array centre).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from spatial_alm.coordinates import (
    listener_to_room,
    resolved_axes_of_points,
    rotation_matrix,
    spherical_to_cartesian,
)


@dataclass(frozen=True)
class MicArray:
    """Omnidirectional microphones at ``offsets_m`` (M, 3) around the array centre."""

    name: str
    offsets_m: torch.Tensor  # (M, 3) float64

    def __post_init__(self):
        offsets = torch.as_tensor(self.offsets_m, dtype=torch.float64)
        if offsets.ndim != 2 or offsets.shape[-1] != 3 or offsets.shape[0] < 1:
            raise ValueError(f"offsets_m of array {self.name!r} must have shape (M, 3), got {tuple(offsets.shape)}")
        object.__setattr__(self, "offsets_m", offsets)

    @property
    def num_channels(self) -> int:
        return self.offsets_m.shape[0]

    @property
    def resolved_axes(self) -> frozenset[str]:
        """Spatial axes (names from ``coordinates.AXES``) the array resolves, from its geometry.

        Free-field omnidirectional microphones cannot tell a source from its mirror image across a
        plane through the centre that holds every microphone (every offset orthogonal to the axis):
        the mirror fixes every microphone, so both sources give the same signals
        (:func:`~spatial_alm.coordinates.resolved_axes_of_points`). Tetrahedral: all axes; circular
        (horizontal): no above/below; linear or pair along y: left/right only (the angle to its axis);
        distance: always (direct-to-reverberant ratio).
        """
        return resolved_axes_of_points(self.offsets_m)

    def positions(self, center_m, yaw_deg=0.0, pitch_deg=0.0) -> torch.Tensor:
        """Microphone positions (B, M, 3) in the room for centres (B, 3) and orientations (B,) or scalars."""
        center = torch.as_tensor(center_m, dtype=torch.float64)
        if center.ndim != 2 or center.shape[-1] != 3:
            raise ValueError(f"center_m must have shape (B, 3), got {tuple(center.shape)}")
        rot = rotation_matrix(yaw_deg, pitch_deg).expand(center.shape[0], 3, 3)
        return listener_to_room(self.offsets_m.expand(center.shape[0], -1, -1), center, rot)


def tetrahedral(radius_m: float = 0.042) -> MicArray:
    """4-mic tetrahedral array of the DCASE MIC format (Eigenmike-like capsules at 4.2 cm)."""
    az = torch.tensor([45.0, -45.0, 135.0, -135.0])
    el = torch.tensor([35.26, -35.26, -35.26, 35.26])
    return MicArray("tetrahedral", spherical_to_cartesian(az, el, radius_m))


def circular(num_mics: int = 6, radius_m: float = 0.05) -> MicArray:
    """``num_mics`` microphones on a horizontal circle, the first on the front axis."""
    phi = torch.arange(num_mics, dtype=torch.float64) * 2 * math.pi / num_mics
    offsets = torch.stack([radius_m * torch.cos(phi), radius_m * torch.sin(phi), torch.zeros_like(phi)], -1)
    return MicArray(f"circular{num_mics}", offsets)


def linear(num_mics: int = 4, spacing_m: float = 0.05) -> MicArray:
    """``num_mics`` microphones along the left-right (y) axis, centred, first on the left."""
    y = (torch.arange(num_mics, dtype=torch.float64) - (num_mics - 1) / 2) * -spacing_m
    return MicArray(f"linear{num_mics}", torch.stack([torch.zeros_like(y), y, torch.zeros_like(y)], -1))


def pair(spacing_m: float = 0.2) -> MicArray:
    """Two microphones on the left-right axis (channel 0 left), like ears without a head."""
    return MicArray("pair", linear(2, spacing_m).offsets_m)


NAMED_ARRAYS = {"tetrahedral": tetrahedral, "circular": circular, "linear": linear, "pair": pair}


def make_array(name: str, **kwargs) -> MicArray:
    """A named geometry ("tetrahedral", "circular", "linear", "pair") with optional size arguments.

    "circularN" / "linearN" (the names those arrays carry, e.g. "circular6") set ``num_mics`` = N.
    """
    match = re.fullmatch(r"(circular|linear)(\d+)", name)
    if match:
        name, kwargs = match.group(1), {**kwargs, "num_mics": int(match.group(2))}
    try:
        factory = NAMED_ARRAYS[name]
    except KeyError:
        raise ValueError(f"array = {name!r}; allowed: {sorted(NAMED_ARRAYS)}, circularN, linearN "
                         "or MicArray(name, offsets_m)") from None
    return factory(**kwargs)
