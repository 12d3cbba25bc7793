"""The one place that defines the project's coordinate convention.

Room frame: metres, origin at a room corner, right-handed, z up.

Listener / array frame (SOFA and DCASE convention): x = look direction (front), y = left, z = up.
Azimuth in degrees in (-180, 180], 0 = front, +90 = left (counter-clockwise seen from above);
elevation in degrees in [-90, 90], +90 = up; distance in metres from the head or array centre.

Orientation of a listener in the room: yaw (about z, counter-clockwise seen from above; yaw 0 looks
along the room's +x axis), then pitch (about the listener's y axis, positive nose-down, i.e. the
right-handed rotation about y), then roll (about the look direction).

All functions take and return torch tensors (float64 inside where precision matters) and work on any
leading batch shape.
"""

from __future__ import annotations

import math

import torch

SPEED_OF_SOUND_M_S = 343.0


def _as_tensor(x, dtype=torch.float64) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    return torch.as_tensor(x, dtype=dtype)


def wrap_azimuth_deg(azimuth_deg) -> torch.Tensor:
    """Wrap azimuths (degrees) into (-180, 180]."""
    az = _as_tensor(azimuth_deg)
    wrapped = torch.remainder(az + 180.0, 360.0) - 180.0
    return torch.where(wrapped == -180.0, torch.full_like(wrapped, 180.0), wrapped)


def spherical_to_cartesian(azimuth_deg, elevation_deg, distance_m=1.0) -> torch.Tensor:
    """(azimuth, elevation, distance) in the listener frame -> (..., 3) xyz in metres."""
    az = torch.deg2rad(_as_tensor(azimuth_deg))
    el = torch.deg2rad(_as_tensor(elevation_deg))
    r = _as_tensor(distance_m)
    x = r * torch.cos(el) * torch.cos(az)
    y = r * torch.cos(el) * torch.sin(az)
    z = r * torch.sin(el)
    return torch.stack(torch.broadcast_tensors(x, y, z), dim=-1)


def cartesian_to_spherical(xyz) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(..., 3) xyz in the listener frame -> azimuth_deg in (-180, 180], elevation_deg, distance_m.

    The azimuth of a point on the vertical axis is 0 by definition.
    """
    xyz = _as_tensor(xyz)
    x, y, z = xyz.unbind(-1)
    distance = torch.linalg.vector_norm(xyz, dim=-1)
    azimuth = wrap_azimuth_deg(torch.rad2deg(torch.atan2(y, x)))
    horizontal = torch.hypot(x, y)
    elevation = torch.rad2deg(torch.atan2(z, horizontal))
    return azimuth, elevation, distance


def rotation_matrix(yaw_deg=0.0, pitch_deg=0.0, roll_deg=0.0) -> torch.Tensor:
    """Rotation (..., 3, 3) whose columns are the listener's front, left and up axes in room coordinates.

    ``room_vector = R @ listener_vector``; ``listener_vector = R.transpose(-1, -2) @ room_vector``.
    """
    yaw, pitch, roll = (torch.deg2rad(_as_tensor(a)) for a in (yaw_deg, pitch_deg, roll_deg))
    yaw, pitch, roll = torch.broadcast_tensors(yaw, pitch, roll)
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)

    def mat(rows):
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    rz = mat([[cy, -sy, zero], [sy, cy, zero], [zero, zero, one]])
    ry = mat([[cp, zero, sp], [zero, one, zero], [-sp, zero, cp]])
    rx = mat([[one, zero, zero], [zero, cr, -sr], [zero, sr, cr]])
    return rz @ ry @ rx


def room_to_listener(points_room, listener_pos, rotation) -> torch.Tensor:
    """Room-frame points (..., N, 3) -> listener-frame points (..., N, 3).

    ``listener_pos`` (..., 3) is the head/array centre in the room, ``rotation`` (..., 3, 3) from
    :func:`rotation_matrix`.
    """
    points = _as_tensor(points_room)
    centre = _as_tensor(listener_pos)[..., None, :]
    rot = _as_tensor(rotation)
    return (points - centre) @ rot


def listener_to_room(points_local, listener_pos, rotation) -> torch.Tensor:
    """Listener-frame points (..., N, 3) -> room-frame points (..., N, 3); inverse of room_to_listener."""
    points = _as_tensor(points_local)
    rot = _as_tensor(rotation)
    return points @ rot.transpose(-1, -2) + _as_tensor(listener_pos)[..., None, :]


def great_circle_deg(azimuth1_deg, elevation1_deg, azimuth2_deg, elevation2_deg) -> torch.Tensor:
    """Great-circle angle in degrees between two directions given as (azimuth, elevation)."""
    a1, e1, a2, e2 = (torch.deg2rad(_as_tensor(v)) for v in
                      (azimuth1_deg, elevation1_deg, azimuth2_deg, elevation2_deg))
    # Haversine form: accurate for small angles too.
    h = torch.sin((e2 - e1) / 2) ** 2 + torch.cos(e1) * torch.cos(e2) * torch.sin((a2 - a1) / 2) ** 2
    return torch.rad2deg(2 * torch.asin(torch.sqrt(h.clamp(0.0, 1.0))))


def fibonacci_sphere(n: int) -> torch.Tensor:
    """``n`` nearly uniform unit vectors (n, 3) on the sphere (float64)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = torch.sqrt(1.0 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1)


# --- the spatial axes a receiver may resolve -----------------------------------------------------

# The questions of the QA generator ask about these axes (left/right, front/back, above/below, nearer/
# farther). The first three are the mirror planes of the listener frame: a source and its mirror image
# across the y-z plane (x -> -x) differ only front/back, across the x-z plane (y -> -y) only left/right,
# across the x-y plane (z -> -z) only above/below.
AXES = ("left_right", "front_back", "above_below", "distance")
ALL_AXES = frozenset(AXES)
# axis -> index of the listener-frame coordinate its mirror plane negates (x front, y left, z up)
MIRROR_COORDINATE = {"front_back": 0, "left_right": 1, "above_below": 2}
MIRROR_TOLERANCE_M = 1e-6  # microphone offsets closer than this to a mirror plane count as on it


def check_axes(axes, where: str = "axes") -> frozenset[str]:
    """``axes`` (an iterable of :data:`AXES` names) as a frozenset; ValueError naming an unknown one."""
    if isinstance(axes, str):
        raise ValueError(f"{where} = {axes!r}; allowed: a collection of axis names from {', '.join(AXES)}")
    out = frozenset(axes)
    unknown = sorted(out - ALL_AXES)
    if unknown:
        raise ValueError(f"{where} contains {unknown[0]!r}; allowed: {', '.join(AXES)}")
    return out


def resolved_axes_of_points(offsets_m) -> frozenset[str]:
    """The axes that free-field omnidirectional sensors at ``offsets_m`` (M, 3) (listener frame, metres
    from the centre) can resolve.

    A mirror plane's axis is unresolvable exactly when every sensor lies on that plane (its offset is
    orthogonal to the axis, within ``MIRROR_TOLERANCE_M``): the mirror then maps every sensor onto
    itself, so a source and its mirror image reach each sensor along equally long paths and sound the
    same in every channel. When some sensor lies off the plane, its path lengths to the source and to
    the image differ, so the arrival times tell the two apart. ``distance`` is always resolvable in a
    room (direct-to-reverberant ratio, level), even by one microphone.
    """
    offsets = _as_tensor(offsets_m)
    if offsets.ndim != 2 or offsets.shape[-1] != 3:
        raise ValueError(f"offsets_m must have shape (M, 3), got {tuple(offsets.shape)}")
    off_plane = (offsets.abs() > MIRROR_TOLERANCE_M).any(dim=0)  # (3,): some sensor off each plane
    return frozenset({"distance", *(axis for axis, k in MIRROR_COORDINATE.items() if bool(off_plane[k]))})
