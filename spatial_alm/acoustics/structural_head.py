"""An analytic head with pinna and torso cues that needs no data: Brown & Duda's structural model.

C. P. Brown and R. O. Duda, "A structural model for binaural sound synthesis", IEEE Trans. Speech and
Audio Processing 6(5), 1998. Each ear's transfer function is a cascade (plane waves, f in Hz)::

    H_ear(f) = S(f, theta) exp(-2 pi i f (T(theta) + onset)) (1 + g_sh exp(-2 pi i f T_sh))
               (1 + sum_k rho_k exp(-2 pi i f tau_k)) R(f)

* Head shadow and ITD of a sphere of radius a (theta = angle between the source and the ear's axis,
  the ears at azimuth +-90 degrees): the one-pole/one-zero filter
  S = (1 + i alpha(theta) w / (2 w0)) / (1 + i w / (2 w0)), w = 2 pi f, w0 = c / a, with
  alpha(theta) = (1 + alpha_min / 2) + (1 - alpha_min / 2) cos(theta / theta_min * 180 deg),
  alpha_min = 0.1, theta_min = 150 deg (+6 dB facing the source, -20 dB at 150 deg), and the delay
  T = -(a / c) cos(theta) for theta < 90 deg, (a / c)(theta - pi / 2) beyond: the interaural
  difference is Woodworth's (a / c)(lat + sin lat) for a source at lateral angle lat.
* Pinna echoes (the paper's Table): five reflections k of gain rho_k and delay, in samples at 44.1 kHz,
  tau_k = A_k cos(lat_e / 2) sin(D_k (90 deg - pol)) + B_k, where lat_e is the source's lateral angle
  towards that ear and pol its polar angle around the interaural axis (0 front, 90 above). The paper
  fits the frontal half (-90 <= pol <= 90); a rear source uses the mirrored polar angle 180 - pol.
  ``PINNA_GAINS`` rho = (0.5, -1, 0.5, -0.25, 0.25), ``PINNA_A`` = (1, 5, 5, 5, 5), ``PINNA_B`` =
  (2, 4, 7, 11, 13); D_k = (1, 0.5, 0.5, 0.5, 0.5) for one of the paper's subjects, (0.85, 0.35, ...)
  for the other. ``pinna_delay_scale`` scales A_k and B_k (pinna size).
* Shoulder (torso) echo, the paper's delay fit with the overhead delay 1.2 ms written as 2 h / c (h =
  ``shoulder_height_m``, the ear's height above the shoulder reflection, 0.206 m for 1.2 ms):
  T_sh = (2 h / c) (180 - lat_e) / 180 * b, b = 1 - 0.00004 ((pol' - 80) * 180 / (180 + lat_e))^2 (angles
  in degrees, pol' the polar angle in [-90, 270)). Its gain g_sh = ``shoulder_gain`` * clip(b, 0, 1)
  fades the echo out as the source drops below the shoulders (b <= 0: none).
* Rear pinna shadow (this project's addition, not in the paper, so that rear sources are duller than
  frontal ones as in measured heads): R = (1 + i beta f / f_r) / (1 + i f / f_r) with
  beta = 10^(-r * rear_shadow_db / 20), r = max(0, -x) (x = the source direction's front component),
  f_r = ``rear_shadow_hz``.

Near the interaural axis the polar angle is ill-defined, so the pinna delays change quickly there (a
property of the paper's fit). HRIRs are the cascade sampled on an rfft grid of at least 4 HRIR
lengths, delayed by ``onset_samples`` and windowed as :class:`~spatial_alm.acoustics.heads.SphereHead`'s.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np
import torch

from spatial_alm.acoustics.heads import ONSET_MARGIN_S, AnalyticHead, SphereHead, _check_fs, _unit_directions
from spatial_alm.coordinates import SPEED_OF_SOUND_M_S

PINNA_GAINS = (0.5, -1.0, 0.5, -0.25, 0.25)  # rho_k of the five pinna echoes
PINNA_A = (1.0, 5.0, 5.0, 5.0, 5.0)  # delay amplitude, samples at PINNA_FS_HZ
PINNA_B = (2.0, 4.0, 7.0, 11.0, 13.0)  # delay offset, samples at PINNA_FS_HZ
PINNA_D = (1.0, 0.5, 0.5, 0.5, 0.5)  # elevation scale of each echo's delay (one of the paper's subjects)
PINNA_FS_HZ = 44100
ALPHA_MIN = 0.1
THETA_MIN_DEG = 150.0
PAPER_SHOULDER_DELAY_S = 1.2e-3  # the paper's overhead shoulder-echo delay

# The parameters of StructuralHead() (its name is "structural"; other heads get "structural:<hash>").
DEFAULTS = {"radius_m": 0.0875, "pinna_gains": PINNA_GAINS, "pinna_d": PINNA_D, "pinna_delay_scale": 1.0,
            "shoulder_height_m": PAPER_SHOULDER_DELAY_S * SPEED_OF_SOUND_M_S / 2, "shoulder_gain": 0.3,
            "rear_shadow_db": 6.0, "rear_shadow_hz": 4000.0}

# Parameter ranges StructuralHead.draw samples uniformly (one head per call); a recipe may override them.
DRAW_RANGES: dict[str, tuple[float, float]] = {
    "radius_m": (0.075, 0.095),  # head radius: the sphere head's 8.75 cm +- 1 cm
    "pinna_delay_scale": (0.85, 1.15),  # pinna size: scales every echo's A_k and B_k
    "pinna_d_first": (0.85, 1.0),  # D of the first echo (the paper's two subjects: 1 and 0.85)
    "pinna_d_rest": (0.35, 0.5),  # D of echoes 2-5 (the paper's two subjects: 0.5 and 0.35)
    "pinna_gain_scale": (0.7, 1.0),  # scales every rho_k
    "shoulder_height_m": (0.17, 0.24),  # overhead shoulder-echo delay 0.99-1.40 ms
    "shoulder_gain": (0.2, 0.4),
    "rear_shadow_db": (3.0, 9.0),  # CIPIC subjects: 0.5-10 dB (median ~5.5) less at 4-16 kHz behind than in front
}


class StructuralHead(AnalyticHead):
    """Brown & Duda's (1998) structural head (see the module docstring for every formula).

    radius_m: sphere radius, m. pinna_gains, pinna_d: (5,) rho_k and D_k of the pinna echoes.
    pinna_delay_scale: factor on A_k and B_k. shoulder_height_m: m (overhead shoulder delay 2 h / c).
    shoulder_gain: shoulder-echo reflection coefficient (0 disables the torso). rear_shadow_db,
    rear_shadow_hz: depth (dB, directly behind) and corner frequency (Hz) of the rear pinna shadow.
    hrir_length_s: None gives the shortest length that holds every echo (at least 6 ms).
    num_table_directions: Fibonacci-sphere points of :meth:`table` (3000: at most ~2.7 degrees to the
    nearest). HRIRs: (D, 2, L) float32, channel 0 = left ear, exact for any direction.

    :meth:`draw` makes a random head from ``DRAW_RANGES``, so a dataset can hold many synthetic heads.
    """

    def __init__(self, radius_m: float = DEFAULTS["radius_m"], pinna_gains=PINNA_GAINS, pinna_d=PINNA_D,
                 pinna_delay_scale: float = DEFAULTS["pinna_delay_scale"],
                 shoulder_height_m: float = DEFAULTS["shoulder_height_m"],
                 shoulder_gain: float = DEFAULTS["shoulder_gain"], rear_shadow_db: float = DEFAULTS["rear_shadow_db"],
                 rear_shadow_hz: float = DEFAULTS["rear_shadow_hz"], hrir_length_s: float | None = None,
                 num_table_directions: int = 3000):
        super().__init__()
        self.radius_m = _checked("radius_m", radius_m, 0.03, 0.2)
        self.pinna_gains = _checked_vector("pinna_gains", pinna_gains, -1.0, 1.0)
        self.pinna_d = _checked_vector("pinna_d", pinna_d, 0.0, 1.0)
        self.pinna_delay_scale = _checked("pinna_delay_scale", pinna_delay_scale, 0.5, 2.0)
        self.shoulder_height_m = _checked("shoulder_height_m", shoulder_height_m, 0.05, 0.5)
        self.shoulder_gain = _checked("shoulder_gain", shoulder_gain, 0.0, 1.0)
        self.rear_shadow_db = _checked("rear_shadow_db", rear_shadow_db, 0.0, 40.0)
        self.rear_shadow_hz = _checked("rear_shadow_hz", rear_shadow_hz, 500.0, 20000.0)
        # latest arrival: far ear, longest pinna echo, longest shoulder echo (1.5 x overhead), 1 ms decay;
        # the window fades the last quarter out
        latest_s = (ONSET_MARGIN_S + (2 + math.pi / 2) * self.radius_m / SPEED_OF_SOUND_M_S
                    + self.pinna_delay_scale * max(a + b for a, b in zip(PINNA_A, PINNA_B)) / PINNA_FS_HZ
                    + 1.5 * 2 * self.shoulder_height_m / SPEED_OF_SOUND_M_S + 1e-3)
        min_length_s = latest_s / 0.75
        if hrir_length_s is None:
            hrir_length_s = max(0.006, min_length_s)
        if not hrir_length_s >= min_length_s:
            raise ValueError(f"hrir_length_s must be >= {min_length_s:.4f} s for these parameters, got {hrir_length_s}")
        if isinstance(num_table_directions, bool) or not isinstance(num_table_directions, int) \
                or num_table_directions < 1:
            raise ValueError(f"num_table_directions must be an integer >= 1, got {num_table_directions!r}")
        self.hrir_length_s = float(hrir_length_s)
        self.num_table_directions = num_table_directions
        digest = hashlib.sha1(repr(self.parameters()).encode()).hexdigest()[:8]
        self.name = "structural" if self.parameters() == DEFAULTS else f"structural:{digest}"

    def parameters(self) -> dict:
        """The parameters that define the head's sound (not its table size), as plain floats."""
        return {"radius_m": self.radius_m, "pinna_gains": self.pinna_gains, "pinna_d": self.pinna_d,
                "pinna_delay_scale": self.pinna_delay_scale, "shoulder_height_m": self.shoulder_height_m,
                "shoulder_gain": self.shoulder_gain, "rear_shadow_db": self.rear_shadow_db,
                "rear_shadow_hz": self.rear_shadow_hz}

    def __repr__(self):
        return "StructuralHead(" + ", ".join(f"{k}={v!r}" for k, v in self.parameters().items()) + ")"

    @classmethod
    def draw(cls, rng: np.random.Generator, ranges: Mapping[str, tuple[float, float]] | None = None,
             **kwargs) -> "StructuralHead":
        """A head with parameters drawn uniformly from ``DRAW_RANGES``, updated by ``ranges`` ({name: (lo,
        hi)}); every parameter is drawn, in ``DRAW_RANGES`` order, so the draws do not depend on which
        ranges are given. ``kwargs`` go to the constructor (e.g. ``num_table_directions``)."""
        ranges = check_draw_ranges(ranges or {})
        return cls._from_draw({name: float(rng.uniform(*ranges[name])) for name in DRAW_RANGES}, **kwargs)

    @classmethod
    def _from_draw(cls, v: Mapping[str, float], **kwargs) -> "StructuralHead":
        """A head from one value per ``DRAW_RANGES`` name."""
        return cls(radius_m=v["radius_m"], pinna_delay_scale=v["pinna_delay_scale"],
                   pinna_d=(v["pinna_d_first"],) + (v["pinna_d_rest"],) * 4,
                   pinna_gains=tuple(v["pinna_gain_scale"] * g for g in PINNA_GAINS),
                   shoulder_height_m=v["shoulder_height_m"], shoulder_gain=v["shoulder_gain"],
                   rear_shadow_db=v["rear_shadow_db"], **kwargs)

    def hrirs(self, directions: torch.Tensor, fs_hz: int) -> torch.Tensor:
        """HRIR pairs (D, 2, L) float32 for directions (D, 3) (listener frame), left ear first."""
        fs_hz = _check_fs(fs_hz)
        d = _unit_directions(directions).numpy()
        length = round(self.hrir_length_s * fs_hz)
        # every echo arrives within 0.75 L and the filters' tails decay in well under 0.1 ms, so 2 L
        # leaves no time aliasing
        n_fft = 1 << max(8, (2 * length - 1).bit_length())
        freqs = np.fft.rfftfreq(n_fft, 1.0 / fs_hz)
        onset = _phasors(np.array([self.onset_samples(fs_hz) / fs_hz]), freqs)[:, :, None]  # (F, 1, 1)
        out = []
        for chunk in np.array_split(d, max(1, math.ceil(d.shape[0] / 1024))):  # bounds the (F, chunk, 2) memory
            response = self._response(chunk, freqs) * onset  # (F, chunk, 2)
            out.append(torch.fft.irfft(torch.from_numpy(response), n=n_fft, dim=0)[:length].permute(1, 2, 0))
        h = torch.cat(out) * SphereHead._window(length, math.ceil(ONSET_MARGIN_S * fs_hz))
        return h.float()

    def frequency_response(self, directions, frequencies_hz) -> np.ndarray:
        """The model's transfer functions, complex128 (D, 2, F), for directions (D, 3) (listener frame) and
        frequencies (F,) in Hz, relative to a plane wave at the head centre (no ``onset_samples``)."""
        d = _unit_directions(directions).numpy()
        return np.moveaxis(self._response(d, np.asarray(frequencies_hz, dtype=np.float64)), 0, -1)

    def _response(self, directions: np.ndarray, freqs: np.ndarray) -> np.ndarray:
        """Transfer functions (F, D, 2) complex128 (frequency first: the products run on contiguous
        (D, 2) slices) for unit directions (D, 3) and frequencies (F,) in Hz."""
        x, y, z = (directions[:, i, None] for i in range(3))  # (D, 1) each
        f = freqs[:, None, None]  # (F, 1, 1)
        lateral = np.rad2deg(np.arcsin(np.clip(np.concatenate([y, -y], axis=1), -1, 1)))  # (D, 2) towards each ear
        polar = np.rad2deg(np.arctan2(z, x))  # (D, 1) in (-180, 180]
        a_over_c = self.radius_m / SPEED_OF_SOUND_M_S

        # head shadow and ITD: theta = angle from the ear's axis = 90 - lateral
        theta = np.deg2rad(90.0 - lateral)
        alpha = (1 + ALPHA_MIN / 2) + (1 - ALPHA_MIN / 2) * np.cos(theta * 180.0 / THETA_MIN_DEG)
        w_ratio = 2 * np.pi * f * a_over_c / 2  # w / (2 w0)
        response = (1 + 1j * alpha * w_ratio) / (1 + 1j * w_ratio)
        delay = np.where(theta < np.pi / 2, -a_over_c * np.cos(theta), a_over_c * (theta - np.pi / 2))
        response *= _phasors(delay, freqs)

        # pinna echoes, frontal polar angle (rear sources mirrored)
        front_polar = np.where(np.abs(polar) <= 90.0, polar, np.sign(polar) * 180.0 - polar)  # (D, 1)
        pinna = np.ones_like(response)
        for rho, a_k, b_k, d_k in zip(self.pinna_gains, PINNA_A, PINNA_B, self.pinna_d):
            tau = self.pinna_delay_scale * (a_k * np.cos(np.deg2rad(lateral / 2))
                                            * np.sin(np.deg2rad(d_k * (90.0 - front_polar))) + b_k) / PINNA_FS_HZ
            pinna += rho * _phasors(tau, freqs)
        response *= pinna

        # shoulder echo
        shoulder_polar = np.where(polar < -90.0, polar + 360.0, polar)  # [-90, 270)
        b = 1 - 0.00004 * ((shoulder_polar - 80.0) * 180.0 / (180.0 + lateral)) ** 2  # (D, 2)
        t_sh = 2 * self.shoulder_height_m / SPEED_OF_SOUND_M_S * (180.0 - lateral) / 180.0 * np.clip(b, 0, None)
        response *= 1 + self.shoulder_gain * np.clip(b, 0, 1) * _phasors(t_sh, freqs)

        # rear pinna shadow, the same for both ears
        beta = 10.0 ** (-np.clip(-x, 0, None) * self.rear_shadow_db / 20.0)  # (D, 1)
        ratio = f / self.rear_shadow_hz
        response *= (1 + 1j * beta * ratio) / (1 + 1j * ratio)
        return response


def _phasors(delays_s: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """exp(-2 pi i f tau) (F, ...) complex128 for delays (...) in s and frequencies (F,) in Hz. On an
    rfft grid (f_k = k df) it is the running product of exp(-2 pi i df tau), several times faster."""
    df = freqs[1] - freqs[0] if freqs.size > 1 else 0.0
    if freqs.size < 2 or freqs[0] != 0 or not np.allclose(np.diff(freqs), df, rtol=0, atol=1e-9 * df):
        return np.exp(-2j * np.pi * freqs.reshape((-1,) + (1,) * delays_s.ndim) * delays_s)
    step = np.exp(-2j * np.pi * df * delays_s)
    out = np.empty((freqs.size,) + step.shape, dtype=np.complex128)
    out[0] = 1.0
    for k in range(1, freqs.size):  # one vectorised product per frequency (np.cumprod is slower)
        np.multiply(out[k - 1], step, out=out[k])
    return out


def check_draw_ranges(ranges: Mapping, where: str = "ranges") -> dict[str, tuple[float, float]]:
    """``DRAW_RANGES`` updated by ``ranges`` ({name: [lo, hi] or one number}); unknown names, bad pairs
    and values a :class:`StructuralHead` refuses raise ValueError naming ``where.name``."""
    out = dict(DRAW_RANGES)
    for name, value in ranges.items():
        if name not in DRAW_RANGES:
            raise ValueError(f"unknown key '{where}.{name}'; valid keys: {', '.join(DRAW_RANGES)}")
        pair = [value, value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair) \
                or pair[0] > pair[1]:
            raise ValueError(f"{where}.{name} = {value!r}; allowed: [min, max] with min <= max, or one number")
        out[name] = (float(pair[0]), float(pair[1]))
    for end in (0, 1):  # the constructor checks every parameter at both ends of the ranges
        try:
            StructuralHead._from_draw({name: pair[end] for name, pair in out.items()})
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    return out


def _checked(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not lo <= value <= hi:
        raise ValueError(f"{name} = {value!r}; allowed: a number in [{lo}, {hi}]")
    return float(value)


def _checked_vector(name: str, values, lo: float, hi: float) -> tuple[float, ...]:
    values = tuple(values) if isinstance(values, (list, tuple, np.ndarray)) else (values,)
    if len(values) != len(PINNA_GAINS):
        raise ValueError(f"{name} = {values!r}; allowed: {len(PINNA_GAINS)} numbers in [{lo}, {hi}] (one per echo)")
    return tuple(_checked(f"{name}[{k}]", v, lo, hi) for k, v in enumerate(values))

