"""Binaural head models: HRIR tables that the room-acoustics engine renders image sources through.

A head gives, for a sample rate ``fs_hz``:

* :meth:`HeadModel.table` -- a fixed grid of directions with one HRIR pair each (:class:`HRIRTable`).
  The engine quantises every image source's arrival direction to the nearest table direction, sums
  the impulses per direction and convolves each sum with that direction's HRIR pair.
* :meth:`HeadModel.hrirs` -- HRIR pairs for arbitrary directions (exact for the sphere, a lookup in
  the measured grid for SOFA heads).
* :meth:`HeadModel.diffuse_csd` -- the diffuse-field cross-spectral density, which gives the late
  reverberation tail the head's interaural coherence.

Directions are unit vectors in the listener frame of :mod:`spatial_alm.coordinates` (x front, y left,
z up). HRIRs have shape (D, 2, L) with channel 0 = left ear, 1 = right ear; a plane wave that reaches
the head centre at t = 0 appears at sample ``onset_samples`` (the bulk delay that makes them causal).

Heads: :class:`SphereHead` (analytic rigid sphere, Duda & Martens 1998) and :class:`SofaHead` (measured
SimpleFreeFieldHRIR SOFA files); :func:`make_head` picks one from a string. Measured heads can be diffuse-field
equalised on load (:func:`diffuse_field_equaliser`), the convention of most published dummy-head sets and
binaural recordings, so that heads measured with different ear-canal and microphone responses differ only in
their directional colouring.
"""

from __future__ import annotations

import abc
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torchaudio
from scipy.special import eval_legendre, spherical_jn, spherical_yn

from spatial_alm.coordinates import ALL_AXES, SPEED_OF_SOUND_M_S, fibonacci_sphere, spherical_to_cartesian

# Directions averaged over for the diffuse-field cross-spectral density (near-uniform, equal weights).
DIFFUSE_DIRECTIONS = 2000
# Head-centre arrival margin ahead of the earliest ear arrival, so band-limited onsets are not cut.
ONSET_MARGIN_S = 0.5e-3
# The rigid-sphere series stops once every further term is below this (relative to the free field).
SERIES_TOLERANCE = 1e-10
# Diffuse-field equalisation of measured heads (MeasuredHead(equalisation="diffuse_field")).
EQUALISATIONS = ("none", "diffuse_field")
EQ_SMOOTHING_OCTAVES = 1 / 3  # the diffuse-field power is averaged over this width around every frequency
EQ_BAND_HZ = (200.0, 16000.0)  # the band equalised; outside it the gain holds its value at the band edge
EQ_REFERENCE_BELOW_HZ = 1000.0  # the equalised head keeps its mean diffuse-field level between 200 Hz and this
EQ_MAX_GAIN_DB = 20.0  # the equaliser's gain is clipped to +- this
EQ_FILTER_S = 0.003  # the minimum-phase equaliser's length (over 99.99 % of its energy for the heads in shared/)
EQ_MAX_GAP_DEG = 20.0  # directions farther than this from every measured one are left out of the average


@dataclass(frozen=True, eq=False)
class HRIRTable:
    """HRIR pairs on a fixed grid of directions at one sample rate.

    directions: (D, 3) float64 unit vectors in the listener frame.
    hrirs: (D, 2, L) float32; channel 0 = left ear, 1 = right ear.
    fs_hz: sample rate in Hz.
    onset_samples: sample at which a plane wave reaching the head centre at t = 0 appears.
    """

    directions: torch.Tensor
    hrirs: torch.Tensor
    fs_hz: int
    onset_samples: int

    def __post_init__(self):
        d = self.directions.shape[0]
        if self.directions.shape != (d, 3) or self.directions.dtype != torch.float64:
            raise ValueError(f"directions must be (D, 3) float64, got {tuple(self.directions.shape)} "
                             f"{self.directions.dtype}")
        if self.hrirs.ndim != 3 or self.hrirs.shape[:2] != (d, 2) or self.hrirs.dtype != torch.float32:
            raise ValueError(f"hrirs must be (D={d}, 2, L) float32, got {tuple(self.hrirs.shape)} "
                             f"{self.hrirs.dtype}")
        if not 0 <= self.onset_samples < self.hrirs.shape[-1]:
            raise ValueError(f"onset_samples must be in [0, L={self.hrirs.shape[-1]}), "
                             f"got {self.onset_samples}")


def _check_fs(fs_hz) -> int:
    if isinstance(fs_hz, bool) or not float(fs_hz).is_integer() or fs_hz <= 0:
        raise ValueError(f"fs_hz must be a positive integer (Hz), got {fs_hz!r}")
    return int(fs_hz)


def _unit_directions(directions) -> torch.Tensor:
    """(D, 3) direction vectors of any length > 0 -> (D, 3) float64 unit vectors."""
    d = torch.as_tensor(directions, dtype=torch.float64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"directions must have shape (D, 3), got {tuple(d.shape)}")
    norm = torch.linalg.vector_norm(d, dim=1, keepdim=True)
    if not torch.all(torch.isfinite(norm) & (norm > 0)):
        raise ValueError("directions must be finite, non-zero vectors")
    return d / norm


class HeadModel(abc.ABC):
    """A two-ear receiver. Subclasses build the table; the base class caches it per sample rate.

    Returned tensors are on the CPU and shared with the cache: do not modify them in place.
    """

    name: str
    num_channels = 2
    # Spatial axes (names from coordinates.AXES) whose two sides this head hears apart. Default: all four,
    # for measured (SOFA) heads and any head with pinnae: the pinnae's direction-dependent spectral
    # filtering differs between front and back and between above and below, the two ears' differences
    # give left/right, and the direct-to-reverberant ratio gives distance. Heads without such cues override.
    resolved_axes: frozenset[str] = ALL_AXES

    def __init__(self):
        self._tables: dict[int, HRIRTable] = {}
        self._csds: dict[tuple[int, int], torch.Tensor] = {}

    def table(self, fs_hz: int) -> HRIRTable:
        """The head's HRIR table at ``fs_hz`` (built once per sample rate)."""
        fs_hz = _check_fs(fs_hz)
        if fs_hz not in self._tables:
            self._tables[fs_hz] = self._build_table(fs_hz)
        return self._tables[fs_hz]

    @abc.abstractmethod
    def _build_table(self, fs_hz: int) -> HRIRTable:
        """Build the HRIR table at ``fs_hz``."""

    @abc.abstractmethod
    def hrirs(self, directions: torch.Tensor, fs_hz: int) -> torch.Tensor:
        """HRIR pairs (D, 2, L) float32 for directions (D, 3) (listener frame), aligned as ``table``."""

    def diffuse_csd(self, fs_hz: int, n_fft: int) -> torch.Tensor:
        """Diffuse-field cross-spectral density, complex128 (n_fft // 2 + 1, 2, 2), ears (left, right).

        The mean of H(f, d) H(f, d)^H over ``DIFFUSE_DIRECTIONS`` near-uniform directions (Fibonacci
        sphere, equal weights; for SOFA heads each measured direction thus weighs by its nearest-
        neighbour area), with H the DTFT of the HRIRs at the ``n_fft`` rfft frequencies. Normalised so
        that the mean over frequencies and ears of the diagonal is 1.
        """
        fs_hz = _check_fs(fs_hz)
        if isinstance(n_fft, bool) or not isinstance(n_fft, int) or n_fft < 2:
            raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}")
        key = (fs_hz, n_fft)
        if key not in self._csds:
            h = self.hrirs(fibonacci_sphere(DIFFUSE_DIRECTIONS), fs_hz).double()  # (D, 2, L)
            stride = math.ceil(h.shape[-1] / n_fft)  # rfft on a multiple of n_fft: no time aliasing
            spectra = torch.fft.rfft(h, n=stride * n_fft)[..., ::stride].permute(2, 1, 0)  # (F, 2, D)
            csd = spectra @ spectra.mH / h.shape[0]  # (F, 2, 2)
            power = torch.diagonal(csd, dim1=1, dim2=2).real.mean()
            self._csds[key] = csd / power
        return self._csds[key]


def rigid_sphere_response(frequencies_hz, cos_theta, radius_m: float,
                          speed_of_sound_m_s: float = SPEED_OF_SOUND_M_S) -> np.ndarray:
    """Pressure on a rigid sphere for a plane wave, relative to the free field at the sphere centre.

    Duda & Martens (1998, JASA 104(5)), source at infinity:
    H(mu, theta) = 1 / mu^2 * sum_m i^(m-1) (2m+1) P_m(cos theta) / h_m'(mu), h_m = j_m - i y_m,
    mu = 2 pi f a / c. This is the complex conjugate of the paper's expression, i.e. it is written for
    the FFT convention of numpy/torch (a delay tau is exp(-2 pi i f tau)), so the ear facing the source
    leads the centre by a / c at high frequencies. The series stops once every further term is below
    ``SERIES_TOLERANCE`` (and never before mu_max + 20 terms).

    frequencies_hz: (F,) >= 0; cos_theta: (K,) cosine of the angle between the source direction and
    the ear axis (1 = ear facing the source). Returns complex128 (F, K); H = 1 at 0 Hz.
    """
    f = np.asarray(frequencies_hz, dtype=np.float64)
    cos_theta = np.asarray(cos_theta, dtype=np.float64)
    mu = 2 * np.pi * f * radius_m / speed_of_sound_m_s
    response = np.ones((f.size, cos_theta.size), dtype=np.complex128)
    positive = mu > 0
    mu_p = mu[positive]
    if mu_p.size == 0:
        return response
    min_terms = math.ceil(mu_p.max()) + 20
    phase = np.array([-1j, 1, 1j, -1])  # i^(m-1) for m % 4 = 0, 1, 2, 3
    coefficients = []  # (chunk, F+) blocks of i^(m-1) (2m+1) / (mu^2 h_m'(mu))
    m_next = 0
    with np.errstate(all="ignore"):  # h_m' overflows for m >> mu: the term is 0
        while True:
            m = np.arange(m_next, m_next + 16)[:, None]
            dh = spherical_jn(m, mu_p, derivative=True) - 1j * spherical_yn(m, mu_p, derivative=True)
            c = phase[m % 4] * (2 * m + 1) / (mu_p**2 * dh)
            c[~np.isfinite(c)] = 0.0
            coefficients.append(c)
            m_next += 16
            if m_next >= min_terms and np.abs(c[-1]).max() < SERIES_TOLERANCE:
                break
    coefficients = np.concatenate(coefficients)  # (M, F+)
    legendre = eval_legendre(np.arange(m_next)[:, None], cos_theta[None, :])  # (M, K)
    response[positive] = coefficients.T @ legendre
    return response


class AnalyticHead(HeadModel):
    """A head given by a formula at any direction (``hrirs``): its table samples ``num_table_directions``
    Fibonacci-sphere directions, and its bulk delay is the travel time over its ``radius_m``."""

    radius_m: float
    num_table_directions: int

    def onset_samples(self, fs_hz: int) -> int:
        """Bulk delay in samples at ``fs_hz``: head-centre arrival of a plane wave reaching it at t = 0."""
        fs_hz = _check_fs(fs_hz)
        return math.ceil(self.radius_m / SPEED_OF_SOUND_M_S * fs_hz) + math.ceil(ONSET_MARGIN_S * fs_hz)

    def _build_table(self, fs_hz: int) -> HRIRTable:
        directions = fibonacci_sphere(self.num_table_directions)
        return HRIRTable(directions, self.hrirs(directions, fs_hz), fs_hz, self.onset_samples(fs_hz))


class SphereHead(AnalyticHead):
    """Analytic rigid-sphere head (Duda & Martens 1998), plane-wave (far-field) sources.

    radius_m: sphere radius in metres. ear_azimuth_deg: the left ear sits at azimuth
    +ear_azimuth_deg, the right ear at -ear_azimuth_deg, both at elevation 0. hrir_length_s: HRIR
    length in seconds; None gives 4 ms, or the shortest allowed length for spheres too large for it.
    num_table_directions: Fibonacci-sphere points of :meth:`table`; with the default 3000 the
    worst-case angle from any direction to its nearest table direction is about 2.7 degrees (mean
    1.4 degrees), i.e. at most about 25 microseconds of interaural delay.

    HRIRs: the series on an rfft grid of at least 4 HRIR lengths, delayed by ``onset_samples`` =
    ceil(radius / c * fs) + ceil(ONSET_MARGIN_S * fs), truncated to the HRIR length, with a half-Hann
    fade-in over the first half of the margin and a half-Hann fade-out over the last quarter.
    """

    name = "sphere_head"
    # Left/right and distance only. Two point ears on a rigid sphere have a cone of confusion around the
    # interaural axis: the sphere is rotationally symmetric about that axis, so every direction on a cone
    # around it gives the same interaural time and level differences and the same spectra. With the ears at
    # +-90 degrees (the default) the mirror images across the frontal plane (front <-> back) and the
    # horizontal plane (above <-> below) lie on the same cone and sound identical; ears moved off +-90
    # degrees tilt the cone but do not remove it, so front/back and above/below stay unreliable.
    resolved_axes = frozenset({"left_right", "distance"})

    def __init__(self, radius_m: float = 0.0875, ear_azimuth_deg: float = 90.0,
                 hrir_length_s: float | None = None, num_table_directions: int = 3000):
        super().__init__()
        if not 0.01 <= radius_m <= 1.0:
            raise ValueError(f"radius_m must be in [0.01, 1] metres, got {radius_m}")
        if not 0.0 < ear_azimuth_deg < 180.0:
            raise ValueError(f"ear_azimuth_deg must be in (0, 180) degrees, got {ear_azimuth_deg}")
        # The far ear hears the wave at margin + (2 + pi / 2) a / c; allow as long again for it to decay.
        min_length_s = ONSET_MARGIN_S + 2 * (2 + math.pi / 2) * radius_m / SPEED_OF_SOUND_M_S
        if hrir_length_s is None:
            hrir_length_s = max(0.004, min_length_s)
        if not hrir_length_s >= min_length_s:
            raise ValueError(f"hrir_length_s must be >= {min_length_s:.4f} s for radius_m={radius_m}, "
                             f"got {hrir_length_s}")
        if num_table_directions < 1:
            raise ValueError(f"num_table_directions must be >= 1, got {num_table_directions}")
        self.radius_m = float(radius_m)
        self.ear_azimuth_deg = float(ear_azimuth_deg)
        self.hrir_length_s = float(hrir_length_s)
        self.num_table_directions = int(num_table_directions)

    def __repr__(self):
        return (f"SphereHead(radius_m={self.radius_m}, ear_azimuth_deg={self.ear_azimuth_deg}, "
                f"hrir_length_s={self.hrir_length_s}, num_table_directions={self.num_table_directions})")

    def hrirs(self, directions: torch.Tensor, fs_hz: int) -> torch.Tensor:
        """Exact rigid-sphere HRIR pairs (D, 2, L) float32 for directions (D, 3) (listener frame)."""
        fs_hz = _check_fs(fs_hz)
        d = _unit_directions(directions)
        ears = spherical_to_cartesian(torch.tensor([self.ear_azimuth_deg, -self.ear_azimuth_deg]), 0.0)
        cos_theta = (d @ ears.T).clamp(-1.0, 1.0)  # (D, 2): left, right

        length = round(self.hrir_length_s * fs_hz)
        n_fft = 1 << max(9, (4 * length - 1).bit_length())
        freqs = np.fft.rfftfreq(n_fft, 1.0 / fs_hz)
        onset = self.onset_samples(fs_hz)
        response = rigid_sphere_response(freqs, cos_theta.reshape(-1).numpy(), self.radius_m)  # (F, 2D)
        response *= np.exp(-2j * np.pi * freqs * onset / fs_hz)[:, None]
        h = torch.fft.irfft(torch.from_numpy(response.T), n=n_fft)[:, :length]  # (2D, L)
        h = h * self._window(length, math.ceil(ONSET_MARGIN_S * fs_hz))
        return h.reshape(d.shape[0], 2, length).float()

    @staticmethod
    def _window(length: int, margin: int) -> torch.Tensor:
        """(L,) half-Hann fade-in over margin // 2 samples, half-Hann fade-out over the last L // 4."""
        window = torch.ones(length, dtype=torch.float64)
        fade_in, fade_out = margin // 2, length // 4
        window[:fade_in] = torch.hann_window(2 * fade_in + 1, periodic=False, dtype=torch.float64)[:fade_in]
        window[length - fade_out:] = torch.hann_window(2 * fade_out + 1, periodic=False,
                                                       dtype=torch.float64)[fade_out + 1:]
        return window


def diffuse_field_equaliser(ir: torch.Tensor, directions: torch.Tensor, fs_hz: int) -> torch.Tensor:
    """The minimum-phase FIR (round(EQ_FILTER_S * fs_hz),) float64 that flattens a measured head's diffuse field.

    ir: HRIRs (M, 2, N) float64 measured at the unit directions (M, 3), sample rate fs_hz. The diffuse-field
    power is the mean of |H(f)|^2 over both ears and over the measured directions, each weighted by the share
    of ``DIFFUSE_DIRECTIONS`` near-uniform directions nearest to it (those farther than ``EQ_MAX_GAP_DEG``
    from every measurement, e.g. under a CIPIC head, are left out); smoothed over ``EQ_SMOOTHING_OCTAVES``
    around every frequency and held constant outside ``EQ_BAND_HZ``. The equaliser's magnitude is the inverse
    square root of that power relative to its mean between ``EQ_BAND_HZ[0]`` and ``EQ_REFERENCE_BELOW_HZ``
    (so a head's low frequencies keep their level), clipped to +-``EQ_MAX_GAIN_DB``; its phase is the minimum
    phase (real cepstrum). One filter for both ears leaves every interaural difference as measured.
    """
    n_fft = max(1024, 2 ** math.ceil(math.log2(2 * ir.shape[-1])))
    nearest_cos, nearest = (fibonacci_sphere(DIFFUSE_DIRECTIONS) @ directions.T).max(dim=1)
    covered = nearest[nearest_cos >= math.cos(math.radians(EQ_MAX_GAP_DEG))]
    power = torch.fft.rfft(ir, n=n_fft).abs().square().mean(dim=1)[covered].mean(dim=0)  # (F,)
    bins = torch.arange(power.shape[0], dtype=torch.float64)
    low = torch.ceil(bins * 2.0 ** (-EQ_SMOOTHING_OCTAVES / 2)).long()
    high = torch.maximum(torch.floor(bins * 2.0 ** (EQ_SMOOTHING_OCTAVES / 2)).long().clamp(max=power.shape[0] - 1),
                         low)
    cumulative = torch.cat([power.new_zeros(1), power.cumsum(0)])
    smoothed = (cumulative[high + 1] - cumulative[low]) / (high - low + 1)
    frequencies = bins * fs_hz / n_fft
    inside = (frequencies >= EQ_BAND_HZ[0]) & (frequencies <= min(EQ_BAND_HZ[1], 0.45 * fs_hz))
    first, last = int(inside.nonzero()[0]), int(inside.nonzero()[-1])
    smoothed[:first], smoothed[last + 1:] = smoothed[first], smoothed[last]
    reference = smoothed[inside & (frequencies <= EQ_REFERENCE_BELOW_HZ)].mean()
    max_log_gain = EQ_MAX_GAIN_DB * math.log(10.0) / 20.0
    log_gain = (0.5 * torch.log(reference / smoothed)).clamp(-max_log_gain, max_log_gain)
    cepstrum = torch.fft.irfft(log_gain, n=n_fft)
    folded = torch.zeros_like(cepstrum)  # the causal cepstrum of the same magnitude: the minimum phase
    half = n_fft // 2
    folded[0], folded[1:half], folded[half] = cepstrum[0], 2 * cepstrum[1:half], cepstrum[half]
    return torch.fft.irfft(torch.exp(torch.fft.rfft(folded)), n=n_fft)[:round(EQ_FILTER_S * fs_hz)]


class MeasuredHead(HeadModel):
    """A head measured on a fixed grid of directions (the base of :class:`SofaHead` and ``CipicHead``).

    Subclasses read their files and call :meth:`_set_measurements` with the IRs (M, 2, N) float64 at
    ``native_fs_hz`` (receiver 0 = left ear) and the measured directions (M, 3) float64 unit vectors in
    the listener frame. interpolation: "nearest" (the measured HRIR of the nearest measured direction,
    great-circle distance) or "knn" (inverse-distance weighted mean of the 3 nearest; a time-domain
    mean, so it blurs onsets on sparse grids). equalisation: "none" (as measured) or "diffuse_field"
    (every IR convolved with :func:`diffuse_field_equaliser` of the measurements, kept in ``equaliser``;
    the IRs grow by its length less one sample).

    The table holds the measured directions. Other sample rates are made with
    torchaudio.functional.resample (after prepending enough zeros that the resampling filter's
    pre-ringing is kept). ``onset_samples`` is estimated from the data: for the measured direction
    nearest the front, the mean over both ears of the first sample whose magnitude reaches -20 dB of
    that ear's peak (the ears of a head are about level with its centre for a frontal plane wave).
    """

    interpolations = ("nearest", "knn")

    def __init__(self, interpolation: str = "nearest", equalisation: str = "none"):
        super().__init__()
        if interpolation not in self.interpolations:
            raise ValueError(f"interpolation must be one of {self.interpolations}, got {interpolation!r}")
        if equalisation not in EQUALISATIONS:
            raise ValueError(f"equalisation must be one of {EQUALISATIONS}, got {equalisation!r}")
        self.interpolation = interpolation
        self.equalisation = equalisation
        self.equaliser: torch.Tensor | None = None

    def _set_measurements(self, ir: torch.Tensor, directions: torch.Tensor, fs_hz: int) -> None:
        """IRs (M, 2, N) float64 (left ear first), unit directions (M, 3) float64, native rate in Hz."""
        if self.equalisation == "diffuse_field":
            self.equaliser = diffuse_field_equaliser(ir, directions, fs_hz)
            ir = torchaudio.functional.fftconvolve(ir, self.equaliser.expand(*ir.shape[:-1], -1))
        self._ir = ir
        self._directions = directions
        self.native_fs_hz = int(fs_hz)

    def _build_table(self, fs_hz: int) -> HRIRTable:
        ir = self._ir
        if fs_hz != self.native_fs_hz:
            lowpass_filter_width, rolloff = 6, 0.99  # torchaudio's defaults
            pad = math.ceil(lowpass_filter_width * self.native_fs_hz
                            / (rolloff * min(self.native_fs_hz, fs_hz))) + 1
            ir = torchaudio.functional.resample(torch.nn.functional.pad(ir, (pad, 0)),
                                                self.native_fs_hz, fs_hz)
        front = int(torch.argmax(self._directions[:, 0]))
        return HRIRTable(self._directions, ir.float(), fs_hz, _onset_minus_20db(ir[front]))

    def hrirs(self, directions: torch.Tensor, fs_hz: int) -> torch.Tensor:
        """Measured HRIR pairs (D, 2, L) float32 for directions (D, 3), by ``interpolation``."""
        table = self.table(fs_hz)
        k = 1 if self.interpolation == "nearest" else min(3, table.directions.shape[0])
        out = []
        for d in torch.split(_unit_directions(directions), 4096):  # bounds the (chunk, M) memory
            cos, index = torch.topk(d @ table.directions.T, k, dim=1)  # (chunk, k)
            neighbours = table.directions[index]  # (chunk, k, 3)
            sin = torch.linalg.vector_norm(torch.cross(d[:, None].expand_as(neighbours), neighbours, dim=-1),
                                           dim=-1)
            weights = 1.0 / torch.atan2(sin, cos).clamp_min(1e-12)  # great-circle inverse distance
            weights = (weights / weights.sum(dim=1, keepdim=True)).float()
            out.append(torch.einsum("dk,dkel->del", weights, table.hrirs[index]))
        return torch.cat(out)


class SofaHead(MeasuredHead):
    """Measured head from a SOFA SimpleFreeFieldHRIR file (netCDF-4, read with h5py).

    path: the .sofa file. interpolation: "nearest" or "knn"; equalisation: "none" or "diffuse_field" (see
    :class:`MeasuredHead`, which also describes the table, resampling and ``onset_samples``). Non-zero
    ``Data.Delay`` values are applied, rounded to whole samples.

    Ears: receiver 0 is the left ear, receiver 1 the right (the order of SOFA's SimpleFreeFieldHRIR
    convention). ReceiverPosition is not used: some files store it with the ears swapped relative to
    their data (the FHK KU100 set places receiver 0 at y < 0 although its receiver 0 is the left ear).

    Source directions: SourcePosition relative to ListenerPosition, in the frame of ListenerView
    (front) and ListenerUp (up), so room files whose listener stands elsewhere or turns (BRIR sets
    with the SimpleFreeFieldHRIR Data.IR / SourcePosition layout) give directions in the listener
    frame; ``distances_m`` (M,) holds each measurement's source distance in metres.

    Azimuth sign (``azimuth_convention``): some public databases label azimuth clockwise. On load the
    labels are checked against the data (:func:`check_azimuth_sign`: for directions with |azimuth| in
    [30, 150] and |elevation| < 30 degrees, a source labelled on the left must be louder and earlier
    in the left ear). "ccw" (default): the file must follow the project's convention (counter-
    clockwise, +90 = left); labels that the interaural cues show to be clockwise raise a ValueError
    naming the file and the cues. "cw": the file labels azimuth clockwise; azimuths are negated (with
    a warning) and the result is checked the same way. "auto": negate (with a warning) only when the
    cues show clockwise labels. Cues that contradict each other always raise; a file without such
    directions (or without clear cues) loads with a warning that the sign was not verified. The
    outcome is kept in ``azimuth_check`` (:class:`AzimuthSignCheck`, after any negation) and
    ``azimuth_flipped``.
    """

    azimuth_conventions = ("ccw", "cw", "auto")

    def __init__(self, path, interpolation: str = "nearest", azimuth_convention: str = "ccw",
                 equalisation: str = "none"):
        super().__init__(interpolation, equalisation)
        if azimuth_convention not in self.azimuth_conventions:
            raise ValueError(f"azimuth_convention must be one of {self.azimuth_conventions}, "
                             f"got {azimuth_convention!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"SOFA file not found: {self.path}")
        self.name = f"sofa:{self.path.stem}"
        self.azimuth_convention = azimuth_convention
        ir, positions, fs_hz = _read_sofa(self.path)
        check = check_azimuth_sign(ir, positions, fs_hz)
        self.azimuth_flipped = azimuth_convention == "cw" or (azimuth_convention == "auto" and check.verdict == "cw")
        if self.azimuth_flipped:
            found = check.describe()
            positions = positions * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
            check = check_azimuth_sign(ir, positions, fs_hz)
            if check.verdict == "ccw":
                warnings.warn(f"{self.path}: azimuth labels negated (azimuth_convention={azimuth_convention!r}; "
                              f"as labelled in the file, {found})", stacklevel=2)
        self.azimuth_check = check
        _enforce_azimuth_sign(self.path, check, azimuth_convention, self.azimuth_flipped)
        self.distances_m = torch.linalg.vector_norm(positions, dim=1)  # (M,) float64
        self._set_measurements(ir, positions / self.distances_m[:, None], fs_hz)

    def __repr__(self):
        return (f"SofaHead({str(self.path)!r}, interpolation={self.interpolation!r}, "
                f"azimuth_convention={self.azimuth_convention!r}, equalisation={self.equalisation!r})")


def _onset_minus_20db(pair: torch.Tensor) -> int:
    """Mean over ears of the first sample with |h| >= 0.1 max|h|; pair (2, L)."""
    magnitude = pair.abs()
    first = torch.argmax((magnitude >= 0.1 * magnitude.amax(dim=1, keepdim=True)).int(), dim=1)
    return round(first.double().mean().item())


def _sofa_error(path: Path, field: str, value, allowed: str) -> ValueError:
    return ValueError(f"{path}: SOFA field {field!r} is {value}; allowed: {allowed}")


def _attr_str(obj, name: str, default: str) -> str:
    value = obj.attrs.get(name, default)
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else default
    if isinstance(value, bytes | np.bytes_):
        value = value.decode("utf-8", "replace")
    return str(value).strip().strip("\x00").lower()


def _read_sofa(path: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """SimpleFreeFieldHRIR-layout file -> IRs (M, 2, N) float64 in file order (receiver 0 first),
    source positions (M, 3) float64 in metres in the listener frame, sample rate in Hz."""
    required = "a SimpleFreeFieldHRIR file with Data.IR (M, 2, N), Data.SamplingRate, SourcePosition (M, 3)"
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a SOFA file (SOFA files are netCDF-4/HDF5; h5py cannot open it: "
                         f"{err}); expected {required}") from None
    with f:
        for field in ("Data.IR", "Data.SamplingRate", "SourcePosition"):
            if field not in f:
                raise _sofa_error(path, field, "missing", required)
        data_type = _attr_str(f, "DataType", "fir")
        if data_type != "fir":
            raise _sofa_error(path, "DataType", repr(data_type), "'FIR'")
        ir = np.asarray(f["Data.IR"][()], dtype=np.float64)
        rate = np.asarray(f["Data.SamplingRate"][()], dtype=np.float64).reshape(-1)
        delay = np.asarray(f["Data.Delay"][()], dtype=np.float64) if "Data.Delay" in f else None
        _check_ir(path, ir)
        m = ir.shape[0]
        source = _positions(path, f, "SourcePosition", m, None)
        listener = _positions(path, f, "ListenerPosition", m, (0.0, 0.0, 0.0))
        view_type = _attr_str(f["ListenerView"], "Type", "cartesian") if "ListenerView" in f else "cartesian"
        view = _positions(path, f, "ListenerView", m, (1.0, 0.0, 0.0))
        up = _positions(path, f, "ListenerUp", m, (0.0, 0.0, 1.0), default_type=view_type)

    if rate.size == 0 or not np.all(np.isfinite(rate) & (rate > 0)) or np.ptp(rate) > 0 \
            or abs(rate[0] - round(rate[0])) > 1e-6:
        raise _sofa_error(path, "Data.SamplingRate", rate.tolist(), "one positive whole number of Hz")
    positions = _listener_frame(path, source - listener, view, up)
    if delay is not None:
        ir = _apply_delay(path, ir, delay)
    return torch.from_numpy(ir), positions, int(round(rate[0]))


def _check_ir(path: Path, ir: np.ndarray):
    if ir.ndim != 3:
        raise _sofa_error(path, "Data.IR", f"of shape {ir.shape} (ndim {ir.ndim})",
                          "3 dimensions (M measurements, R = 2 receivers, N samples)")
    m, r, n = ir.shape
    if r != 2 or m < 1 or n < 1:
        raise _sofa_error(path, "Data.IR", f"of shape {ir.shape}",
                          "M >= 1 measurements, exactly R = 2 receivers (ears), N >= 1 samples")
    if not np.all(np.isfinite(ir)):
        raise _sofa_error(path, "Data.IR", "not finite everywhere", "finite values")


def _positions(path: Path, f: h5py.File, field: str, m: int, default, default_type: str = "cartesian"
               ) -> torch.Tensor:
    """A SOFA position variable (1, 3) or (M, 3), spherical (deg, deg, m) or cartesian (m) -> (M, 3)
    cartesian float64; ``default`` (a cartesian point) when the file has no such variable."""
    if field not in f:
        if default is None:
            raise _sofa_error(path, field, "missing", "(1, 3) or (M, 3) positions")
        return torch.tensor(default, dtype=torch.float64).expand(m, 3)
    position = np.asarray(f[field][()], dtype=np.float64)
    position_type = _attr_str(f[field], "Type", default_type)
    if position.ndim != 2 or position.shape[1] != 3 or position.shape[0] not in (1, m):
        raise _sofa_error(path, field, f"of shape {position.shape}", f"(1, 3) or (M={m}, 3)")
    if not np.all(np.isfinite(position)):
        raise _sofa_error(path, field, "not finite everywhere", "finite positions")
    if position_type == "spherical":
        xyz = spherical_to_cartesian(*torch.from_numpy(position).unbind(1))
    elif position_type == "cartesian":
        xyz = torch.from_numpy(position)
    else:
        raise _sofa_error(path, f"{field}:Type", repr(position_type), "'spherical' or 'cartesian'")
    return xyz.expand(m, 3)


def _listener_frame(path: Path, relative: torch.Tensor, view: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Source positions relative to the listener (M, 3), room axes -> the listener frame (x along
    ListenerView, z along ListenerUp made orthogonal to it, y = z x x)."""
    front_norm = torch.linalg.vector_norm(view, dim=1, keepdim=True)
    if not torch.all(front_norm > 0):
        raise _sofa_error(path, "ListenerView", "zero for some measurement", "non-zero view vectors")
    front = view / front_norm
    up = up - (up * front).sum(1, keepdim=True) * front
    up_norm = torch.linalg.vector_norm(up, dim=1, keepdim=True)
    if not torch.all(up_norm > 1e-9):
        raise _sofa_error(path, "ListenerUp", "zero or parallel to ListenerView for some measurement",
                          "up vectors not parallel to the view")
    up = up / up_norm
    left = torch.cross(up, front, dim=1)
    local = torch.stack([(relative * axis).sum(1) for axis in (front, left, up)], dim=1)
    distance = torch.linalg.vector_norm(local, dim=1)
    if not torch.all(distance > 0):
        raise _sofa_error(path, "SourcePosition", "at the listener position for some measurement",
                          "positions away from the head centre")
    return local.contiguous()


def _apply_delay(path: Path, ir: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Prepend Data.Delay ((1, 2) or (M, 2), samples; rounded) to the IRs (M, 2, N)."""
    m = ir.shape[0]
    if delay.ndim != 2 or delay.shape[1] != 2 or delay.shape[0] not in (1, m):
        raise _sofa_error(path, "Data.Delay", f"of shape {delay.shape}", f"(1, 2) or (M={m}, 2)")
    if not np.all(np.isfinite(delay) & (delay >= 0)):
        raise _sofa_error(path, "Data.Delay", delay.tolist(), "finite delays >= 0 samples")
    shift = np.broadcast_to(np.rint(delay).astype(int), (m, 2))
    if not shift.any():
        return ir
    out = np.zeros(ir.shape[:2] + (ir.shape[2] + shift.max(),))
    for i, j in np.ndindex(m, 2):
        out[i, j, shift[i, j]:shift[i, j] + ir.shape[2]] = ir[i, j]
    return out


# Directions whose interaural cues decide the azimuth sign: clearly lateral, near the horizontal plane.
SIGN_CHECK_AZIMUTH_DEG = (30.0, 150.0)
SIGN_CHECK_MAX_ELEVATION_DEG = 30.0
SIGN_CHECK_AGREEMENT = 0.8  # a cue decides when at least this share of those directions agrees


@dataclass(frozen=True)
class AzimuthSignCheck:
    """What the interaural cues say about a SOFA file's azimuth labels (see :func:`check_azimuth_sign`).

    num_directions: measured directions with |azimuth| in ``SIGN_CHECK_AZIMUTH_DEG`` and |elevation|
    < ``SIGN_CHECK_MAX_ELEVATION_DEG`` (as labelled). level_agree / level_disagree: share of them where
    the ear on the labelled side (left for azimuth > 0) is louder / quieter (broadband energy);
    time_agree / time_disagree: share where it hears the sound earlier / later (cross-correlation
    peak). mean_ild_db / mean_itd_us: mean level and time advantage of the labelled side's ear.
    verdict: "ccw" (labels agree with the convention), "cw" (labels look clockwise), "conflict" (level
    and time cues disagree) or "unknown" (no such directions, or no cue reaches
    ``SIGN_CHECK_AGREEMENT``).
    """

    num_directions: int
    level_agree: float
    level_disagree: float
    time_agree: float
    time_disagree: float
    mean_ild_db: float
    mean_itd_us: float
    verdict: str

    def describe(self) -> str:
        if self.num_directions == 0:
            return (f"no measured direction has |azimuth| in [{SIGN_CHECK_AZIMUTH_DEG[0]:g}, "
                    f"{SIGN_CHECK_AZIMUTH_DEG[1]:g}] and |elevation| < {SIGN_CHECK_MAX_ELEVATION_DEG:g} degrees")
        return (f"for the {self.num_directions} measured directions with |azimuth| in "
                f"[{SIGN_CHECK_AZIMUTH_DEG[0]:g}, {SIGN_CHECK_AZIMUTH_DEG[1]:g}] and |elevation| < "
                f"{SIGN_CHECK_MAX_ELEVATION_DEG:g} degrees, the ear on the labelled side (receiver 0 = left for "
                f"azimuth > 0) is louder in {100 * self.level_agree:.0f} % and quieter in "
                f"{100 * self.level_disagree:.0f} % (mean {self.mean_ild_db:+.1f} dB), and earlier in "
                f"{100 * self.time_agree:.0f} % and later in {100 * self.time_disagree:.0f} % "
                f"(mean {self.mean_itd_us:+.0f} us)")


def check_azimuth_sign(ir: torch.Tensor, positions: torch.Tensor, fs_hz: int) -> AzimuthSignCheck:
    """Whether azimuth labels agree with the interaural cues of IRs (M, 2, N) at ``fs_hz`` (receiver 0 =
    left ear) measured at source positions (M, 3) in the listener frame (x front, y left, z up).

    Uses the directions with |azimuth| in ``SIGN_CHECK_AZIMUTH_DEG`` and |elevation| below
    ``SIGN_CHECK_MAX_ELEVATION_DEG``. Level cue: broadband energy of each ear. Time cue: the lag of
    the peak of the ears' cross-correlation (a zero lag or level difference counts for neither side).
    A cue votes "ccw" when at least ``SIGN_CHECK_AGREEMENT`` of the directions have the labelled side's
    ear louder (earlier), "cw" when at least that share have it quieter (later).
    """
    ir = torch.as_tensor(ir, dtype=torch.float64)
    xyz = torch.as_tensor(positions, dtype=torch.float64)
    azimuth = torch.rad2deg(torch.atan2(xyz[:, 1], xyz[:, 0]))
    elevation = torch.rad2deg(torch.atan2(xyz[:, 2], torch.linalg.vector_norm(xyz[:, :2], dim=1)))
    lo, hi = SIGN_CHECK_AZIMUTH_DEG
    selected = (azimuth.abs() >= lo) & (azimuth.abs() <= hi) & (elevation.abs() < SIGN_CHECK_MAX_ELEVATION_DEG)
    k = int(selected.sum())
    if k == 0:
        return AzimuthSignCheck(0, 0.0, 0.0, 0.0, 0.0, math.nan, math.nan, "unknown")
    side = torch.sign(azimuth[selected])  # +1: labelled left
    pairs = ir[selected]  # (K, 2, N)
    energy_db = 10 * torch.log10((pairs ** 2).sum(-1) + 1e-30)  # (K, 2)
    ild = side * (energy_db[:, 0] - energy_db[:, 1])  # > 0: the labelled side's ear is louder
    n = 2 * pairs.shape[-1]
    spectra = torch.fft.rfft(pairs, n=n)
    correlation = torch.fft.irfft(spectra[:, 1] * spectra[:, 0].conj(), n=n)  # peak at +d: right ear d later
    lag = torch.argmax(correlation, dim=1)
    lag = torch.where(lag > n // 2, lag - n, lag).double()
    itd = side * lag  # > 0: the labelled side's ear is earlier (in samples)
    votes = set()
    shares = []
    for cue in (ild, itd):
        agree, disagree = float((cue > 0).double().mean()), float((cue < 0).double().mean())
        shares += [agree, disagree]
        if agree >= SIGN_CHECK_AGREEMENT:
            votes.add("ccw")
        elif disagree >= SIGN_CHECK_AGREEMENT:
            votes.add("cw")
    verdict = votes.pop() if len(votes) == 1 else ("conflict" if votes else "unknown")
    return AzimuthSignCheck(k, *shares, float(ild.mean()), 1e6 * float(itd.mean()) / fs_hz, verdict)


def _enforce_azimuth_sign(path: Path, check: AzimuthSignCheck, convention: str, flipped: bool) -> None:
    """Raise when the cues contradict the (possibly negated) labels; warn when they cannot tell."""
    labels = "after negating the file's azimuths" if flipped else "as labelled in the file"
    rule = ("the project's convention is azimuth counter-clockwise, +90 = left: a source labelled on the left "
            "must be louder and earlier in the left ear (receiver 0)")
    if check.verdict == "cw":
        remedy = ("the file's own labels look counter-clockwise: load it with azimuth_convention='ccw'" if flipped
                  else "if the file labels azimuth clockwise (or stores the right ear first), load it with "
                       "azimuth_convention='cw' (negates its azimuths) or 'auto' (negates when the cues say so)")
        raise ValueError(f"{path}: azimuth labels look clockwise ({labels}, {check.describe()}); {rule}; {remedy}")
    if check.verdict == "conflict":
        raise ValueError(f"{path}: the interaural level and time cues disagree about the azimuth sign ({labels}, "
                         f"{check.describe()}); {rule}; check the file's SourcePosition and Data.IR")
    if check.verdict == "unknown":
        warnings.warn(f"{path}: azimuth sign not verified ({check.describe()}; "
                      f"azimuth_convention={convention!r})", stacklevel=3)


HEADS = {"sphere": SphereHead}


def make_head(spec: str, equalisation: str = "none") -> HeadModel:
    """A head from a string: a registered name (``HEADS``: "sphere"), "structural" (Brown & Duda's head,
    default parameters), or a path ending in .sofa (:class:`SofaHead`) or .mat (a CIPIC subject file);
    ``equalisation`` (:class:`MeasuredHead`) for the measured ones only."""
    from spatial_alm.acoustics.cipic import CipicHead  # these modules import this one
    from spatial_alm.acoustics.structural_head import StructuralHead

    measured = {".sofa": SofaHead, ".mat": CipicHead}.get(Path(str(spec)).suffix.lower())
    if measured is not None:
        return measured(spec, equalisation=equalisation)
    if spec not in HEADS and spec != "structural":
        raise ValueError(f"unknown head {spec!r}; allowed: {sorted(HEADS)}, 'structural', or a path to a .sofa "
                         "file or a CIPIC subject .mat file")
    if equalisation != "none":
        raise ValueError(f"equalisation = {equalisation!r} applies to measured heads only, not {spec!r}; "
                         "allowed: 'none'")
    return HEADS[spec]() if spec in HEADS else StructuralHead()
