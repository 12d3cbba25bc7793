"""Measured human heads of the CIPIC HRTF database (Algazi et al., WASPAA 2001), read from its MATLAB files.

A subject file ``subject_NNN.mat`` (read with ``scipy.io.loadmat``) holds ``hrir_l`` and ``hrir_r`` of
shape (25, 50, 200) = (lateral azimuth, polar elevation, taps) at 44.1 kHz, measured at 1 m.

CIPIC coordinates are interaural-polar, not the project's vertical-polar azimuth/elevation:

* lateral azimuth ``lat`` in ``CIPIC_LATERAL_DEG`` = {-80, -65, -55, -45:5:45, 55, 65, 80} degrees: the
  angle between the source direction and the median plane, negative on the listener's left (CIPIC's
  documentation; checked against the data on every load, see below);
* polar elevation ``pol`` in ``CIPIC_POLAR_DEG`` = -45 + 5.625 * (0..49) degrees, i.e. [-45, 230.625]:
  the angle around the interaural axis, 0 in front, 90 above, 180 behind.

In the listener frame (x front, y left, z up) the unit vector of (lat, pol) is::

    x = cos(lat) cos(pol),   y = -sin(lat),   z = cos(lat) sin(pol)

and the project's azimuth = atan2(y, x) (counter-clockwise, +90 = left), elevation = asin(z). Examples:
(0, 0) -> azimuth 0, elevation 0; (0, 90) -> elevation 90; (0, 180) -> azimuth 180, elevation 0;
(-45, 0) (45 degrees to the left) -> azimuth +45, elevation 0. The inverse is lat = -asin(y),
pol = atan2(z, x) wrapped into [-90, 270).

The sign of y is what the interaural cues decide: on load, :func:`~spatial_alm.acoustics.heads.check_azimuth_sign`
must find the sources that this conversion puts on the left louder and earlier in the left ear
(``hrir_l``); if the cues say the opposite (a redistributed file with the other sign), loading raises,
or with ``lateral_convention="auto"`` negates y with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.io
import torch

from spatial_alm.acoustics.heads import AzimuthSignCheck, MeasuredHead, check_azimuth_sign

CIPIC_LATERAL_DEG = (-80.0, -65.0, -55.0, *[float(a) for a in range(-45, 50, 5)], 55.0, 65.0, 80.0)
CIPIC_POLAR_DEG = tuple(-45.0 + 5.625 * k for k in range(50))
CIPIC_FS_HZ = 44100  # the files do not store their rate; the database documents 44.1 kHz
CIPIC_FIELDS = ("hrir_l", "hrir_r")


def cipic_to_listener(lateral_deg, polar_deg, left_is_negative: bool = True) -> torch.Tensor:
    """CIPIC interaural-polar angles (degrees, any broadcastable shapes) -> (..., 3) float64 unit vectors
    in the listener frame (x front, y left, z up). ``left_is_negative``: CIPIC's documented sign
    (negative lateral azimuth = left)."""
    lat = torch.deg2rad(torch.as_tensor(lateral_deg, dtype=torch.float64))
    pol = torch.deg2rad(torch.as_tensor(polar_deg, dtype=torch.float64))
    lat, pol = torch.broadcast_tensors(lat, pol)
    y = -torch.sin(lat) if left_is_negative else torch.sin(lat)
    return torch.stack([torch.cos(lat) * torch.cos(pol), y, torch.cos(lat) * torch.sin(pol)], dim=-1)


def listener_to_cipic(xyz, left_is_negative: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 3) directions in the listener frame (any length > 0) -> CIPIC (lateral_deg in [-90, 90],
    polar_deg in [-90, 270)). On the interaural axis (lateral +-90) the polar angle is 0 by definition."""
    xyz = torch.as_tensor(xyz, dtype=torch.float64)
    x, y, z = (xyz / torch.linalg.vector_norm(xyz, dim=-1, keepdim=True)).unbind(-1)
    lateral = torch.rad2deg(torch.asin(y.clamp(-1.0, 1.0)))
    polar = torch.rad2deg(torch.atan2(z, x))
    polar = torch.where(polar < -90.0, polar + 360.0, polar)
    return (-lateral if left_is_negative else lateral), polar


def cipic_grid(left_is_negative: bool = True) -> torch.Tensor:
    """The 25 x 50 measured directions as (1250, 3) unit vectors, lateral-major (the files' order)."""
    lat, pol = torch.meshgrid(torch.tensor(CIPIC_LATERAL_DEG, dtype=torch.float64),
                              torch.tensor(CIPIC_POLAR_DEG, dtype=torch.float64), indexing="ij")
    return cipic_to_listener(lat, pol, left_is_negative).reshape(-1, 3)


def _cipic_error(path: Path, field: str, value, allowed: str) -> ValueError:
    return ValueError(f"{path}: CIPIC field {field!r} is {value}; allowed: {allowed}")


def read_cipic(path) -> tuple[torch.Tensor, int]:
    """A CIPIC subject file -> IRs (1250, 2, N) float64 in ``cipic_grid`` order (left ear first), 44100 Hz.

    Raises ValueError naming the file and the field when the file is not a MATLAB file or ``hrir_l`` /
    ``hrir_r`` is missing, not (25, 50, N) numbers, not finite, or silent.
    """
    path = Path(path)
    shape = (f"(25, 50, N) = ({len(CIPIC_LATERAL_DEG)} lateral azimuths, {len(CIPIC_POLAR_DEG)} polar "
             "elevations, N taps)")
    try:
        data = scipy.io.loadmat(str(path), variable_names=CIPIC_FIELDS)
    except (ValueError, TypeError, OSError, NotImplementedError, scipy.io.matlab.MatReadError) as err:
        raise ValueError(f"{path}: not a CIPIC subject file (scipy.io.loadmat cannot read it: {err}); expected a "
                         f"MATLAB file with fields hrir_l, hrir_r of shape {shape}") from None
    irs = []
    for field in CIPIC_FIELDS:
        if field not in data:
            raise _cipic_error(path, field, "missing", f"an array of shape {shape}")
        value = data[field]
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number) \
                or np.iscomplexobj(value) or value.ndim != 3 or value.shape[:2] != (25, 50) or value.shape[2] < 1:
            described = f"of shape {value.shape} ({value.dtype})" if isinstance(value, np.ndarray) else repr(value)
            raise _cipic_error(path, field, described, f"real numbers of shape {shape}")
        value = value.astype(np.float64)
        if not np.all(np.isfinite(value)):
            raise _cipic_error(path, field, "not finite everywhere", "finite values")
        if not np.any(value):
            raise _cipic_error(path, field, "all zeros", "measured impulse responses")
        irs.append(value.reshape(-1, value.shape[2]))
    if irs[0].shape != irs[1].shape:
        raise _cipic_error(path, "hrir_r", f"of shape {data['hrir_r'].shape}",
                           f"the shape of hrir_l, {data['hrir_l'].shape}")
    return torch.from_numpy(np.stack(irs, axis=1)), CIPIC_FS_HZ


class CipicHead(MeasuredHead):
    """A measured human head from a CIPIC ``subject_NNN.mat`` file (1250 directions, 200 taps, 44.1 kHz).

    path: the .mat file. interpolation: "nearest" or "knn"; equalisation: "none" or "diffuse_field" (see
    :class:`~spatial_alm.acoustics.heads.MeasuredHead`: table, resampling to the scene rate, lookup,
    ``onset_samples``, equalisation). lateral_convention: "negative_left" (CIPIC's documentation, default),
    "positive_left", or "auto" (negate when the interaural cues say so, with a warning). The sign is
    checked against the data on load (see the module docstring); contradicting or conflicting cues
    raise a ValueError naming the file. The grid has no measurements below polar elevation -45
    degrees (under the head); lookups there take the nearest measured direction.
    """

    lateral_conventions = ("negative_left", "positive_left", "auto")

    def __init__(self, path, interpolation: str = "nearest", lateral_convention: str = "negative_left",
                 equalisation: str = "none"):
        super().__init__(interpolation, equalisation)
        if lateral_convention not in self.lateral_conventions:
            raise ValueError(f"lateral_convention must be one of {self.lateral_conventions}, "
                             f"got {lateral_convention!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"CIPIC file not found: {self.path}")
        self.name = f"cipic:{self.path.stem}"
        self.lateral_convention = lateral_convention
        ir, fs_hz = read_cipic(self.path)
        left_is_negative = lateral_convention != "positive_left"
        check = check_azimuth_sign(ir, cipic_grid(left_is_negative), fs_hz)
        if lateral_convention == "auto" and check.verdict == "cw":
            warnings.warn(f"{self.path}: lateral azimuth sign negated (positive = left), because with "
                          f"CIPIC's documented sign {check.describe()}", stacklevel=2)
            left_is_negative = False
            check = check_azimuth_sign(ir, cipic_grid(left_is_negative), fs_hz)
        self._enforce_sign(check, left_is_negative)
        self.left_is_negative = left_is_negative
        self.azimuth_check = check
        self._set_measurements(ir, cipic_grid(left_is_negative), fs_hz)

    def _enforce_sign(self, check: AzimuthSignCheck, left_is_negative: bool) -> None:
        sign = "negative" if left_is_negative else "positive"
        if check.verdict != "ccw":
            problem = {"cw": "the interaural cues put the sources on the other side",
                       "conflict": "the interaural level and time cues disagree",
                       "unknown": "the interaural cues do not tell the sides apart"}[check.verdict]
            raise ValueError(f"{self.path}: CIPIC fields 'hrir_l'/'hrir_r' do not match lateral azimuth {sign} = "
                             f"left ({problem}: {check.describe()}); a source on the left must be louder and "
                             "earlier in hrir_l. Allowed: lateral_convention 'negative_left' (CIPIC's "
                             "documentation), 'positive_left', or 'auto'")

    def __repr__(self):
        return (f"CipicHead({str(self.path)!r}, interpolation={self.interpolation!r}, "
                f"lateral_convention={self.lateral_convention!r}, equalisation={self.equalisation!r})")
