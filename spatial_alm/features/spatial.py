"""Spatial features: per-channel log-mel magnitude plus inter-channel phase per microphone pair.

The encoder input of Spatial-AST (BAT's encoder), generalised from two ears to any number of
channels and pairs. Audio (B, C, T) float32 -> features (B, F, n_mels, frames) float32, where the
F planes come in this order (names from :func:`feature_names`):

    logmel_{c}                        each channel c                     C planes, dB
    ipd_cos_{i}_{j}, ipd_sin_{i}_{j}  each pair (i, j), when ``ipd``      2 planes per pair
    ild_{i}_{j}                       each pair, when ``ild``             1 plane per pair, dB
    gcc_{i}_{j}                       each pair, when ``gcc_phat``        1 plane per pair
    coherence_{i}_{j}                 each pair, when ``coherence``       1 plane per pair, 0..1
    srp_el{e}                         each grid elevation e, when ``srp_phat``  1 plane per elevation

Definitions (X_c: STFT of channel c, periodic Hann window of ``n_fft`` samples, centred frames with
reflect padding, so ``frames = T // hop_length + 1``; W: the mel weights of :func:`mel_weights`,
each band a weighted average of its STFT bins):

- log-mel: ``10 log10(max(W^T |X_c|^2, 1e-10))`` (dB of the band's mean power).
- IPD: ``angle(X_i conj(X_j))`` per STFT bin, i.e. phase_i - phase_j; when channel j hears the
  signal tau seconds after channel i, IPD = 2 pi f tau. Its cosine and sine are averaged over each
  mel band with W (as Spatial-AST projects them with the mel bank), so a band whose bins disagree
  has a (cos, sin) vector shorter than 1. A bin where either channel is exactly zero adds (0, 0).
- ILD: ``logmel_i - logmel_j`` (dB).
- GCC-PHAT: per frame, the inverse FFT of ``conj(X_i conj(X_j)) / |X_i X_j|``, so a peak at lag +d
  samples means channel j lags channel i by d samples (the sign of the IPD slope). The plane has
  one row per lag instead of per mel band: row m holds lag ``m - n_mels // 2`` samples (n_mels lags
  centred on zero, the DCASE SELD baseline layout); rows with ``|lag| > gcc_max_lag`` are zero.
  Values are in [-1, 1] (1: all frequencies agree on that lag).
- Coherence: the interaural coherence (its magnitude, not squared) of each mel band,
  ``|S(W^T X_i conj(X_j))| / sqrt(S(W^T |X_i|^2) S(W^T |X_j|^2))``, where S is a causal first-order smoothing
  over frames (``y_t = a y_{t-1} + (1 - a) x_t``, ``a = exp(-hop / coherence_time_s)``). Near 1 where one
  source's direct sound dominates the band (the two channels are filtered copies of one signal), lower where
  reflections from many directions add up; the cue selection of Faller and Merimaa (2004), which models the
  precedence effect: a learner can trust the other planes where it is high.
- SRP-PHAT (arrays; needs ``mic_positions_m``): the steered response power of the unit
  cross-spectra, ``mean over pairs (i, j) and STFT bins f in srp_freq_range_hz of
  cos(IPD_ij(f) - 2 pi f tau_ij(u))``, with ``tau_ij(u) = (r_i - r_j) . u / c`` the delay of channel j
  after channel i for a far-field source in the unit direction u. One plane per elevation of
  ``srp_elevations_deg``; row m is azimuth ``m * 360 / n_mels`` degrees (counter-clockwise from the
  front, as the azimuth classes). Values are in [-1, 1]; 1 where every pair and bin agree with u.

Example::

    features = SpatialFeatures(SpatialFeatureConfig(fs_hz=16000))
    x = features(torch.randn(8, 2, 32000))  # (8, 4, 128, 101): logmel_0, logmel_1, ipd_cos_0_1, ipd_sin_0_1
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import asdict, dataclass

import torch
import torchaudio.functional as AF
from torch import nn

from spatial_alm.config import ConfigError, dataclass_from_dict
from spatial_alm.coordinates import SPEED_OF_SOUND_M_S, spherical_to_cartesian

LOG_FLOOR = 1e-10  # power floor of the log-mel (-100 dB)
MEL_SCALES = ("slaney", "htk")


def _fail(field: str, value, allowed: str):
    raise ConfigError(field, value, allowed)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SpatialFeatureConfig:
    """Feature settings; validated on construction (``ValueError`` naming the field).

    Defaults follow Spatial-AST at paper scale (32 kHz, STFT 1024/320, 128 mel bands); use
    ``fs_hz=16000`` for CPU-scale datasets. ``pairs`` is ``"all"`` (every channel pair (i, j) with
    i < j, in lexicographic order) or an explicit sequence of (i, j) channel index pairs.
    ``srp_phat`` needs ``mic_positions_m``, one (x, y, z) position in metres per channel in the
    listener frame (x front, y left, z up), as a free-field microphone array; not for heads.
    """

    fs_hz: int = 32000
    n_fft: int = 1024  # samples (window = n_fft)
    hop_length: int = 320  # samples
    n_mels: int = 128
    f_min_hz: float = 50.0
    f_max_hz: float | None = None  # None: fs_hz / 2
    mel_scale: str = "slaney"  # "slaney" (librosa's default, as Spatial-AST) or "htk"
    pairs: str | tuple[tuple[int, int], ...] = "all"
    ipd: bool = True
    ild: bool = False
    gcc_phat: bool = False
    gcc_max_lag: int | None = None  # samples; None keeps every row of the GCC plane
    srp_phat: bool = False
    mic_positions_m: tuple[tuple[float, float, float], ...] | None = None  # (C, 3) listener frame; for srp_phat
    srp_elevations_deg: tuple[float, ...] = (-60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0)
    srp_freq_range_hz: tuple[float, float] = (300.0, 3500.0)  # the band of the SRP-PHAT baseline
    coherence: bool = False
    coherence_time_s: float = 0.03  # time constant of the coherence's smoothing over frames

    def __post_init__(self):
        for name, minimum in (("fs_hz", 1), ("n_fft", 2), ("hop_length", 1), ("n_mels", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                _fail(name, value, f"an integer >= {minimum}")
        for name in ("f_min_hz", "f_max_hz"):
            value = getattr(self, name)
            if not (_is_number(value) or (name == "f_max_hz" and value is None)):
                _fail(name, value, "a number of Hz" + (" or None" if name == "f_max_hz" else ""))
        if self.hop_length > self.n_fft:
            _fail("hop_length", self.hop_length, f"1 .. n_fft ({self.n_fft})")
        if self.n_mels > self.n_freqs:
            _fail("n_mels", self.n_mels, f"1 .. n_fft // 2 + 1 ({self.n_freqs})")
        if not 0 <= self.f_min_hz < self.fs_hz / 2:
            _fail("f_min_hz", self.f_min_hz, f"[0, fs_hz / 2) = [0, {self.fs_hz / 2})")
        if self.f_max_hz is not None and not self.f_min_hz < self.f_max_hz <= self.fs_hz / 2:
            _fail("f_max_hz", self.f_max_hz, f"None or (f_min_hz, fs_hz / 2] = ({self.f_min_hz}, {self.fs_hz / 2}]")
        if self.mel_scale not in MEL_SCALES:
            _fail("mel_scale", self.mel_scale, f"one of {MEL_SCALES}")
        for name in ("ipd", "ild", "gcc_phat", "srp_phat", "coherence"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, getattr(self, name), "True or False")
        if not (_is_number(self.coherence_time_s) and self.coherence_time_s > 0):
            _fail("coherence_time_s", self.coherence_time_s, "a number of seconds > 0")
        max_lag = (self.n_mels - 1) // 2
        if self.gcc_max_lag is not None and not (_is_int(self.gcc_max_lag) and 0 <= self.gcc_max_lag <= max_lag):
            _fail("gcc_max_lag", self.gcc_max_lag, f"None or an integer in [0, (n_mels - 1) // 2] = [0, {max_lag}]")
        object.__setattr__(self, "pairs", _normalise_pairs(self.pairs))
        self._check_srp()
        empty = (mel_weights(self).sum(0) == 0).nonzero().flatten().tolist()
        if empty:
            _fail("n_mels", self.n_mels, f"fewer bands: bands {empty} hold no STFT bin of n_fft={self.n_fft} "
                  f"over [{self.f_min_hz}, {self.f_max_hz_resolved}] Hz (or raise n_fft)")

    def _check_srp(self):
        positions = self.mic_positions_m
        if positions is not None:
            if not (isinstance(positions, (list, tuple)) and len(positions) >= 2 and all(
                    isinstance(p, (list, tuple)) and len(p) == 3 and all(_is_number(v) for v in p) for p in positions)):
                _fail("mic_positions_m", positions, "None or a list of at least two (x, y, z) positions in metres")
            object.__setattr__(self, "mic_positions_m", tuple(tuple(float(v) for v in p) for p in positions))
        elevations = self.srp_elevations_deg
        if not (isinstance(elevations, (list, tuple)) and elevations
                and all(_is_number(e) and -90 <= e <= 90 for e in elevations)):
            _fail("srp_elevations_deg", elevations, "a non-empty list of elevations in [-90, 90] degrees")
        object.__setattr__(self, "srp_elevations_deg", tuple(float(e) for e in elevations))
        band = self.srp_freq_range_hz
        if not (isinstance(band, (list, tuple)) and len(band) == 2 and all(_is_number(f) for f in band)
                and 0 <= band[0] < band[1] <= self.fs_hz / 2):
            _fail("srp_freq_range_hz", band, f"(low, high) Hz with 0 <= low < high <= fs_hz / 2 = {self.fs_hz / 2}")
        object.__setattr__(self, "srp_freq_range_hz", (float(band[0]), float(band[1])))
        if self.srp_phat and positions is None:
            _fail("mic_positions_m", positions, "the (C, 3) microphone positions when srp_phat is on "
                  "(pretrain-encoder fills them from the dataset's microphone array)")
        if self.srp_phat and not self.srp_freq_bins().numel():
            _fail("srp_freq_range_hz", band, f"a band holding at least one STFT bin of n_fft={self.n_fft}")

    def srp_freq_bins(self) -> torch.Tensor:
        """Indices (long) of the STFT bins inside ``srp_freq_range_hz``."""
        freqs = torch.arange(self.n_freqs) * self.fs_hz / self.n_fft
        low, high = self.srp_freq_range_hz
        return ((freqs >= low) & (freqs <= high)).nonzero().flatten()

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def f_max_hz_resolved(self) -> float:
        return self.fs_hz / 2 if self.f_max_hz is None else self.f_max_hz

    def num_frames(self, num_samples: int) -> int:
        """Frames of a clip of ``num_samples`` samples (centred STFT)."""
        return num_samples // self.hop_length + 1

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["pairs"] != "all":
            d["pairs"] = [list(p) for p in d["pairs"]]
        if d["mic_positions_m"] is not None:
            d["mic_positions_m"] = [list(p) for p in d["mic_positions_m"]]
        d["srp_elevations_deg"] = list(d["srp_elevations_deg"])
        d["srp_freq_range_hz"] = list(d["srp_freq_range_hz"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpatialFeatureConfig":
        return dataclass_from_dict(cls, d, "feature config")


def _normalise_pairs(pairs) -> str | tuple[tuple[int, int], ...]:
    allowed = '"all" or a non-empty list of distinct (i, j) channel index pairs with i != j, i, j >= 0'
    if isinstance(pairs, str) and pairs == "all":
        return pairs
    if isinstance(pairs, str) or not pairs:
        _fail("pairs", pairs, allowed)
    out = []
    for p in pairs:
        p = tuple(p) if isinstance(p, (list, tuple)) else p
        if not (isinstance(p, tuple) and len(p) == 2 and all(_is_int(i) and i >= 0 for i in p) and p[0] != p[1]):
            _fail("pairs", pairs, allowed)
        if p in out or p[::-1] in out:
            _fail("pairs", pairs, f"{allowed} (pair {p} repeats)")
        out.append(p)
    return tuple(out)


def channel_pairs(config: SpatialFeatureConfig, num_channels: int) -> list[tuple[int, int]]:
    """The (i, j) channel pairs used for ``num_channels`` input channels."""
    if not _is_int(num_channels) or num_channels < 1:
        _fail("num_channels", num_channels, "an integer >= 1")
    if config.pairs == "all":
        return list(itertools.combinations(range(num_channels), 2))
    for p in config.pairs:
        if max(p) >= num_channels:
            _fail("pairs", config.pairs, f"channel indices < num_channels ({num_channels}); pair {p} is not")
    return list(config.pairs)


def feature_names(config: SpatialFeatureConfig, num_channels: int) -> list[str]:
    """Names of the feature planes in output order, e.g. ``["logmel_0", "logmel_1", "ipd_cos_0_1", "ipd_sin_0_1"]``."""
    pairs = channel_pairs(config, num_channels)
    names = [f"logmel_{c}" for c in range(num_channels)]
    if config.ipd:
        names += [f"ipd_{part}_{i}_{j}" for i, j in pairs for part in ("cos", "sin")]
    if config.ild:
        names += [f"ild_{i}_{j}" for i, j in pairs]
    if config.gcc_phat:
        names += [f"gcc_{i}_{j}" for i, j in pairs]
    if config.coherence:
        names += [f"coherence_{i}_{j}" for i, j in pairs]
    if config.srp_phat:
        if len(config.mic_positions_m) != num_channels:
            _fail("mic_positions_m", config.mic_positions_m, f"one position per channel ({num_channels})")
        names += [f"srp_el{e:g}" for e in config.srp_elevations_deg]
    return names


def num_planes(config: SpatialFeatureConfig, num_channels: int) -> int:
    """Number F of feature planes for ``num_channels`` input channels."""
    return len(feature_names(config, num_channels))


def mel_weights(config: SpatialFeatureConfig) -> torch.Tensor:
    """Mel band-averaging weights (n_freqs, n_mels) float32: triangular filters, each column summing to 1."""
    with warnings.catch_warnings():  # empty bands: SpatialFeatureConfig raises a ValueError naming n_mels
        warnings.simplefilter("ignore", UserWarning)
        fb = AF.melscale_fbanks(config.n_freqs, config.f_min_hz, config.f_max_hz_resolved, config.n_mels,
                                config.fs_hz, norm=None, mel_scale=config.mel_scale)
    return fb / fb.sum(0).clamp_min(torch.finfo(fb.dtype).tiny)


def stft(audio: torch.Tensor, n_fft: int, hop_length: int, window: torch.Tensor) -> torch.Tensor:
    """Complex STFT (B, C, n_fft // 2 + 1, frames) of audio (B, C, T); centred frames, reflect padding."""
    B, C, T = audio.shape
    spec = torch.stft(audio.reshape(B * C, T), n_fft, hop_length, window=window, center=True,
                      pad_mode="reflect", return_complex=True)  # (B*C, n_freqs, frames)
    return spec.reshape(B, C, *spec.shape[-2:])


def band_average(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(..., n_freqs, frames) -> (..., n_mels, frames): weighted average of STFT bins per mel band."""
    return torch.matmul(weights.mT, x)


def band_power(spec: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mel-band power (B, C, n_mels, frames) of a complex STFT (B, C, n_freqs, frames)."""
    return band_average(spec.real.square() + spec.imag.square(), weights)


def cross_phase(spec: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """Unit cross-spectrum ``exp(j IPD)`` (B, P, n_freqs, frames) per pair; 0 where a channel is 0.

    Its real part is cos(IPD) and its imaginary part sin(IPD), IPD = angle(X_i conj(X_j)).
    """
    i, j = (list(index) for index in zip(*pairs))
    return torch.sgn(spec[:, i] * spec[:, j].conj())


def gcc_phat(unit_cross: torch.Tensor, n_fft: int, n_mels: int, max_lag: int | None = None) -> torch.Tensor:
    """GCC-PHAT planes (B, P, n_mels, frames) from the unit cross-spectrum (B, P, n_freqs, frames).

    Row m holds lag ``m - n_mels // 2`` samples; rows with ``|lag| > max_lag`` are zero.
    """
    gcc = torch.fft.irfft(unit_cross.conj(), n=n_fft, dim=-2)  # (B, P, n_fft, frames), lag 0 at row 0
    half = n_mels // 2
    gcc = torch.roll(gcc, half, dims=-2)[..., :n_mels, :]  # (B, P, n_mels, frames), lag -half at row 0
    if max_lag is not None:
        lags = torch.arange(n_mels, device=gcc.device) - half
        gcc = gcc * (lags.abs() <= max_lag)[:, None]
    return gcc


def smooth_over_frames(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Causal first-order smoothing along the last axis (frames): ``y_t = alpha y_{t-1} + (1 - alpha) x_t``,
    ``y_{-1} = 0`` (torchaudio's IIR filter)."""
    a_coeffs = torch.tensor([1.0, -alpha], dtype=x.dtype, device=x.device)
    b_coeffs = torch.tensor([1.0 - alpha, 0.0], dtype=x.dtype, device=x.device)
    return AF.lfilter(x, a_coeffs, b_coeffs, clamp=False)


def band_coherence(spec: torch.Tensor, power: torch.Tensor, pairs: list[tuple[int, int]], weights: torch.Tensor,
                   alpha: float) -> torch.Tensor:
    """Interaural coherence (B, P, n_mels, frames) in [0, 1] of each pair and mel band from a complex STFT
    (B, C, n_freqs, frames) and its mel-band power (B, C, n_mels, frames, :func:`band_power`): the cross-spectrum
    band-averaged with ``weights``, cross- and auto-spectra smoothed over frames (:func:`smooth_over_frames`);
    0 where a channel is silent."""
    i, j = (list(index) for index in zip(*pairs))
    cross = band_average(torch.view_as_real(spec[:, i] * spec[:, j].conj()).movedim(-1, 2), weights)  # (B, P, 2, M, T)
    cross = smooth_over_frames(cross, alpha)
    power = smooth_over_frames(power, alpha)
    norm = (power[:, i] * power[:, j]).sqrt()
    magnitude = torch.linalg.vector_norm(cross, dim=2)
    return torch.where(norm > 0, magnitude / norm.clamp_min(torch.finfo(norm.dtype).tiny), 0.0).clamp(0.0, 1.0)


def srp_steering(config: SpatialFeatureConfig, pairs: list[tuple[int, int]], device=None) -> torch.Tensor:
    """Unit steering phasors ``exp(-j 2 pi f tau_ij(u))`` (P, F_band, D) complex64 of every pair, STFT bin
    in ``srp_freq_range_hz`` and grid direction u (D = elevations x n_mels azimuths, elevation-major)."""
    azimuths = torch.arange(config.n_mels, dtype=torch.float64) * 360.0 / config.n_mels
    elevations = torch.tensor(config.srp_elevations_deg, dtype=torch.float64)
    grid = spherical_to_cartesian(azimuths[None, :], elevations[:, None]).reshape(-1, 3)  # (D, 3)
    positions = torch.tensor(config.mic_positions_m, dtype=torch.float64)
    i, j = (list(index) for index in zip(*pairs))
    tau = (positions[i] - positions[j]) @ grid.T / SPEED_OF_SOUND_M_S  # (P, D) seconds
    freqs = config.srp_freq_bins().double() * config.fs_hz / config.n_fft  # (F_band,)
    phase = -2.0 * math.pi * freqs[None, :, None] * tau[:, None, :]  # (P, F_band, D)
    return torch.polar(torch.ones_like(phase), phase).to(device=device, dtype=torch.complex64)


def srp_phat(unit_cross: torch.Tensor, config: SpatialFeatureConfig, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """SRP-PHAT planes (B, E, n_mels, frames) from the unit cross-spectrum (B, P, n_freqs, frames):
    plane e is elevation ``srp_elevations_deg[e]``, row m azimuth ``m * 360 / n_mels`` degrees."""
    bins = config.srp_freq_bins().to(unit_cross.device)
    steering = srp_steering(config, pairs, unit_cross.device)  # (P, F_band, D)
    cross = unit_cross.index_select(-2, bins).to(torch.complex64)  # (B, P, F_band, frames)
    num_pairs, num_bins, _ = steering.shape
    power = torch.einsum("bpft,pfd->bdt", cross, steering).real / (num_pairs * num_bins)  # (B, D, frames)
    return power.unflatten(1, (len(config.srp_elevations_deg), config.n_mels))


def spatial_features(audio: torch.Tensor, config: SpatialFeatureConfig,
                     window: torch.Tensor | None = None, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Features (B, F, n_mels, frames) float32 of audio (B, C, T) float32; plane order in the module doc.

    ``window`` (n_fft,) and ``weights`` (n_freqs, n_mels) default to a Hann window and
    :func:`mel_weights` on the audio's device; :class:`SpatialFeatures` keeps them as buffers.
    """
    if audio.ndim != 3 or not audio.is_floating_point():
        raise ValueError(f"audio must be a float tensor of shape (B, C, T), got {audio.dtype} {tuple(audio.shape)}")
    B, C, T = audio.shape
    if T <= config.n_fft // 2:
        _fail("audio length T", T, f"more than n_fft // 2 = {config.n_fft // 2} samples")
    pairs = channel_pairs(config, C)
    if window is None:
        window = torch.hann_window(config.n_fft, device=audio.device, dtype=audio.dtype)
    if weights is None:
        weights = mel_weights(config).to(audio.device, audio.dtype)

    spec = stft(audio, config.n_fft, config.hop_length, window)  # (B, C, n_freqs, frames)
    power = band_power(spec, weights)  # (B, C, n_mels, frames)
    logmel = 10.0 * torch.log10(power.clamp_min(LOG_FLOOR))
    if not pairs:
        return logmel
    planes = [logmel]
    unit = cross_phase(spec, pairs)  # (B, P, n_freqs, frames)
    if config.ipd:
        cos_sin = torch.view_as_real(unit).movedim(-1, 2).contiguous()  # (B, P, 2, n_freqs, frames)
        planes.append(band_average(cos_sin, weights).flatten(1, 2))  # (B, 2P, n_mels, frames): cos, sin per pair
    if config.ild:
        i, j = (list(index) for index in zip(*pairs))
        planes.append(logmel[:, i] - logmel[:, j])  # (B, P, n_mels, frames)
    if config.gcc_phat:
        planes.append(gcc_phat(unit, config.n_fft, config.n_mels, config.gcc_max_lag))  # (B, P, n_mels, frames)
    if config.coherence:
        alpha = math.exp(-config.hop_length / (config.fs_hz * config.coherence_time_s))
        planes.append(band_coherence(spec, power, pairs, weights, alpha))  # (B, P, n_mels, frames)
    if config.srp_phat:
        planes.append(srp_phat(unit, config, pairs).to(audio.dtype))  # (B, E, n_mels, frames)
    return torch.cat(planes, dim=1)


class SpatialFeatures(nn.Module):
    """Audio (B, C, T) float32 -> features (B, F, n_mels, frames), on the module's device.

    A thin module over :func:`spatial_features` holding the window and mel weights as
    (non-persistent) buffers, so ``.to(device)`` moves them and checkpoints hold no copy.
    """

    def __init__(self, config: SpatialFeatureConfig | None = None):
        super().__init__()
        self.config = config or SpatialFeatureConfig()
        self.register_buffer("window", torch.hann_window(self.config.n_fft), persistent=False)
        self.register_buffer("mel_weights", mel_weights(self.config), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return spatial_features(audio, self.config, self.window, self.mel_weights)

    def feature_names(self, num_channels: int) -> list[str]:
        return feature_names(self.config, num_channels)

    def extra_repr(self) -> str:
        c = self.config
        return f"fs_hz={c.fs_hz}, n_fft={c.n_fft}, hop_length={c.hop_length}, n_mels={c.n_mels}, pairs={c.pairs!r}"
