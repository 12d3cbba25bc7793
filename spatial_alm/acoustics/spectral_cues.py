"""Per-source spectral direction cues of a head: can this sound tell front from back, up from down?

A head hears front/back and above/below through the colouring its pinnae and torso give a sound: a
direction and its mirror image across the frontal plane (front/back) or the horizontal plane
(above/below) have nearly the same interaural time and level differences, but different ear spectra.
Two things limit what a listener (or a model) can take from that difference for one source:

- only bands where the sound has energy carry it (an engine hum has little in the pinna's 3-8 kHz);
- the source's own spectrum is unknown, so a level change common to all bands reads as a louder or
  nearer source: only the change of spectral *shape* is a direction cue.

So the cue of a source on an axis, in dB, is the larger over the two ears of

    RMS over audible bands b of (D_b - mean_b D_b),   D_b = L_b(direction) - L_b(mirror),
    L_b = 10 log10 sum over the FFT bins f of band b of P(f) |H(f)|^2

with P the source's power spectrum (Welch, Hann window of ``n_fft``), H the ear's HRTF, bands of one
third of an octave (centres 1000 * 2^(k/3) Hz) from 250 Hz up to the Nyquist frequency, levels floored
at ``DYNAMIC_RANGE_DB`` below the source's loudest band at that ear, and audible bands those above
the floor in either direction. A source with one audible band has no shape: cue 0. A head symmetric
about a plane (a rigid sphere with its ears on the interaural axis) gives 0 on that axis for every
sound. Direct sound only: a room's reflections arrive from other directions and blur the colouring,
so the cue is what the direct sound offers at best.
"""

from __future__ import annotations

import math

import torch

from spatial_alm.acoustics.heads import HeadModel

# listener frame x = front, y = left, z = up: the mirror image of a direction across each axis's plane
MIRRORS = {"front_back": (-1.0, 1.0, 1.0), "above_below": (1.0, 1.0, -1.0)}
LOWEST_BAND_HZ = 250.0
DYNAMIC_RANGE_DB = 30.0
MIN_N_FFT = 512


def third_octave_edges(fs_hz: int) -> list[tuple[float, float]]:
    """(low, high) edges in Hz of the third-octave bands from the centre LOWEST_BAND_HZ to the last band
    that starts below fs/2 (its upper edge cut at fs/2)."""
    edges, k = [], math.ceil(3 * math.log2(LOWEST_BAND_HZ / 1000.0))
    while (low := 1000.0 * 2.0 ** (k / 3 - 1 / 6)) < fs_hz / 2:
        edges.append((low, min(low * 2.0 ** (1 / 3), fs_hz / 2)))
        k += 1
    return edges


def _band_matrix(fs_hz: int, n_fft: int) -> torch.Tensor:
    """(bands, n_fft // 2 + 1) float64: 1 where an FFT bin lies in a band (edges by the bin's frequency)."""
    frequencies = torch.fft.rfftfreq(n_fft, 1.0 / fs_hz, dtype=torch.float64)
    return torch.stack([((frequencies >= low) & (frequencies < high)).double()
                        for low, high in third_octave_edges(fs_hz)])


def _power_spectra(signals: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Welch power spectra (S, n_fft // 2 + 1) float64 of signals (S, T), Hann window, half overlap."""
    signals = signals.double()
    if signals.shape[-1] < n_fft:
        signals = torch.nn.functional.pad(signals, (0, n_fft - signals.shape[-1]))
    frames = torch.stft(signals, n_fft, hop_length=n_fft // 2, window=torch.hann_window(n_fft, dtype=torch.float64),
                        center=False, return_complex=True)  # (S, F, frames)
    return frames.abs().square().mean(dim=-1)


def _shape_difference_db(levels: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """Per source and ear: RMS over audible bands of the level difference less its mean. Inputs
    (S, 2, bands) in dB; returns (S, 2)."""
    floor = torch.maximum(levels, mirrored).amax(dim=-1, keepdim=True) - DYNAMIC_RANGE_DB
    audible = (levels > floor) | (mirrored > floor)
    difference = torch.maximum(levels, floor) - torch.maximum(mirrored, floor)
    count = audible.sum(dim=-1)
    mean = (difference * audible).sum(dim=-1) / count.clamp_min(1)
    shape = (difference - mean[..., None]) * audible
    rms = torch.sqrt(shape.square().sum(dim=-1) / count.clamp_min(1))
    return torch.where(count >= 2, rms, torch.zeros_like(rms))


def spectral_cues_db(head: HeadModel, directions: torch.Tensor, signals: torch.Tensor,
                     fs_hz: int) -> dict[str, torch.Tensor]:
    """The spectral cue (dB, module docstring) of each source on each axis of :data:`MIRRORS`.

    Args:
        head: the receiving head (its ``hrirs``).
        directions: (S, 3) source directions in the listener frame (any length; only the direction counts).
        signals: (S, T) the sources' dry signals at ``fs_hz``.
    Returns:
        ``{axis: (S,) float64}``, e.g. ``{"front_back": ..., "above_below": ...}``.
    """
    directions = torch.as_tensor(directions, dtype=torch.float64)
    if directions.ndim != 2 or directions.shape[-1] != 3 or signals.ndim != 2 or len(signals) != len(directions):
        raise ValueError(f"directions must be (S, 3) and signals (S, T) with the same S, got "
                         f"{tuple(directions.shape)} and {tuple(signals.shape)}")
    directions = directions / torch.linalg.vector_norm(directions, dim=-1, keepdim=True)
    hrirs = {"direction": head.hrirs(directions, fs_hz)}
    for axis, sign in MIRRORS.items():
        hrirs[axis] = head.hrirs(directions * torch.tensor(sign, dtype=torch.float64), fs_hz)
    n_fft = max(MIN_N_FFT, 1 << (hrirs["direction"].shape[-1] - 1).bit_length())
    bands = _band_matrix(fs_hz, n_fft)
    source_power = _power_spectra(signals, n_fft)[:, None, :]  # (S, 1, F)
    tiny = torch.finfo(torch.float64).tiny

    def band_levels(ir: torch.Tensor) -> torch.Tensor:  # (S, 2, L) -> (S, 2, bands) dB
        transfer = torch.fft.rfft(ir.double(), n=n_fft).abs().square()
        return 10.0 * torch.log10((source_power * transfer) @ bands.T + tiny)

    levels = band_levels(hrirs["direction"])
    return {axis: _shape_difference_db(levels, band_levels(hrirs[axis])).amax(dim=-1) for axis in MIRRORS}
