"""Shoebox room geometry and absorption: input checks, Sabine conversions, image-source order.

Walls are ordered (x = 0, x = Lx, y = 0, y = Ly, z = 0 (floor), z = Lz (ceiling)); in
pyroomacoustics' names (west, east, south, north, floor, ceiling). Absorption is the energy
absorption coefficient alpha in [0, 1]; the pressure reflection coefficient is sqrt(1 - alpha).
"""

from __future__ import annotations

import math

import torch

from spatial_alm.coordinates import SPEED_OF_SOUND_M_S

WALL_NAMES = ("west (x=0)", "east (x=Lx)", "south (y=0)", "north (y=Ly)", "floor (z=0)", "ceiling (z=Lz)")
# Sabine: RT60 = SABINE_CONSTANT * V / (c * A), with A the equivalent absorption area in m^2.
SABINE_CONSTANT = 24.0 * math.log(10.0)


def as_batch(name: str, value, shape_tail: tuple[int, ...], dtype=torch.float64) -> torch.Tensor:
    """Convert ``value`` to a float64 tensor of shape (B, *shape_tail), or raise naming ``name``."""
    t = torch.as_tensor(value, dtype=dtype)
    if t.ndim != 1 + len(shape_tail) or tuple(t.shape[1:]) != shape_tail:
        want = "(B, " + ", ".join(str(s) for s in shape_tail) + ")" if shape_tail else "(B,)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t}")
    return t


def check_room_dim(room_dim: torch.Tensor) -> None:
    """Raise if any room dimension is not positive."""
    bad = (room_dim <= 0).nonzero()
    if len(bad):
        b, axis = bad[0].tolist()
        raise ValueError(
            f"room_dim[{b}, {axis}] = {room_dim[b, axis].item():g} m; room dimensions must be > 0"
        )


def check_inside(name: str, points: torch.Tensor, room_dim: torch.Tensor) -> None:
    """Raise if any of ``points`` (B, N, 3) lies outside or on the walls of its room (B, 3)."""
    dims = room_dim[:, None, :]
    outside = (points <= 0) | (points >= dims)
    if outside.any():
        b, n, axis = outside.nonzero()[0].tolist()
        raise ValueError(
            f"{name}[{b}, {n}] = {points[b, n].tolist()} m is outside room {b} "
            f"({room_dim[b].tolist()} m): coordinate {'xyz'[axis]} must lie in "
            f"(0, {room_dim[b, axis].item():g})"
        )


def surface_areas(room_dim: torch.Tensor) -> torch.Tensor:
    """Wall areas (B, 6) in m^2, walls in WALL_NAMES order."""
    lx, ly, lz = room_dim.unbind(-1)
    return torch.stack([ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly], dim=-1)


def sabine_absorption(rt60_s: torch.Tensor, room_dim: torch.Tensor, c: float = SPEED_OF_SOUND_M_S) -> torch.Tensor:
    """Uniform energy absorption (B, 6) that gives ``rt60_s`` (B,) by Sabine's formula.

    Raises ValueError when an RT60 is not positive or is shorter than the room can reach
    (absorption would exceed 1).
    """
    volume = room_dim.prod(-1)
    total_area = surface_areas(room_dim).sum(-1)
    bad = (rt60_s <= 0).nonzero()
    if len(bad):
        b = bad[0].item()
        raise ValueError(f"rt60[{b}] = {rt60_s[b].item():g} s; RT60 must be > 0")
    alpha = SABINE_CONSTANT * volume / (c * total_area * rt60_s)
    too_short = (alpha > 1.0).nonzero()
    if len(too_short):
        b = too_short[0].item()
        rt60_min = SABINE_CONSTANT * volume[b] / (c * total_area[b])
        raise ValueError(
            f"rt60[{b}] = {rt60_s[b].item():g} s cannot be reached in room {room_dim[b].tolist()} m: "
            f"by Sabine's formula the shortest RT60 (all walls fully absorbing) is {rt60_min.item():.3f} s"
        )
    return alpha[:, None].expand(-1, 6).clone()


def sabine_rt60(absorption: torch.Tensor, room_dim: torch.Tensor, c: float = SPEED_OF_SOUND_M_S) -> torch.Tensor:
    """RT60 (B,) in seconds of rooms with per-wall energy absorption (B, 6), by Sabine's formula."""
    area = (surface_areas(room_dim) * absorption).sum(-1)
    return SABINE_CONSTANT * room_dim.prod(-1) / (c * area)


def absorption_area_m2(room_dim_m, rt60_s: float, c: float = SPEED_OF_SOUND_M_S) -> float:
    """Sabine's equivalent absorption area A = 24 ln(10) V / (c RT60) in m^2 (about 0.161 V / RT60) of a room
    ``room_dim_m`` (3,) m with reverberation time ``rt60_s``."""
    if rt60_s <= 0:
        raise ValueError(f"rt60 = {rt60_s:g} s; RT60 must be > 0")
    return SABINE_CONSTANT * math.prod(room_dim_m) / (c * rt60_s)


def critical_distance_m(room_dim_m, rt60_s: float, c: float = SPEED_OF_SOUND_M_S) -> float:
    """Distance (m) from an omnidirectional source at which its direct and diffuse reverberant energies are equal:
    sqrt(A / (16 pi)) with A the :func:`absorption_area_m2` (about 0.057 sqrt(V / RT60)). A source at distance r
    is heard at a direct-to-reverberant ratio of about 20 log10(critical distance / r) dB."""
    return math.sqrt(absorption_area_m2(room_dim_m, rt60_s, c) / (16.0 * math.pi))


def check_absorption(absorption: torch.Tensor) -> None:
    """Raise unless every absorption coefficient lies in [0, 1] and every room absorbs something."""
    bad = ((absorption < 0) | (absorption > 1)).nonzero()
    if len(bad):
        b, w = bad[0].tolist()
        raise ValueError(
            f"absorption[{b}, {w}] ({WALL_NAMES[w]}) = {absorption[b, w].item():g}; "
            "energy absorption coefficients must lie in [0, 1]"
        )
    silent = (absorption.sum(-1) <= 0).nonzero()
    if len(silent):
        raise ValueError(
            f"absorption[{silent[0].item()}] is all zero: a room with no absorption never decays; "
            "give at least one wall a coefficient > 0"
        )


def order_for_time(room_dim: torch.Tensor, t_s: torch.Tensor, c: float = SPEED_OF_SOUND_M_S) -> torch.Tensor:
    """Image-source order (B,) that includes every image within ``c * t_s`` metres of any room point.

    An image of order ``|i| + |j| + |k|`` lies at least ``sum((|i| - 1)+ * L)`` away along the axes, and
    the smallest Euclidean norm of such offsets with ``sum(a) = A`` is ``A / sqrt(sum(1 / L**2))``;
    so order ``ceil(c * t * sqrt(sum(1 / L**2))) + 3`` cannot miss an image that arrives by ``t_s``.
    """
    inv_norm = torch.sqrt((1.0 / room_dim**2).sum(-1))
    return (torch.ceil(c * t_s * inv_norm) + 3).long()
