"""A smooth zero-phase equaliser, the same in every channel of a clip.

Measured heads differ in a colouring common to all directions as well as in their directional cues: the KU100
dummy head (diffuse-field equalised) is 8-10 dB darker at 3-8 kHz than every raw blocked-ear-canal CIPIC
measurement, where the CIPIC heads differ from their mean by 1-2 dB (``experiments/diagnostics/head_spectra.py``).
``experiments/diagnostics/filter_dataset_audio.py`` moves a dataset's head onto another head's colouring with
:func:`colour`; the results README ("Ear colouring") has what an encoder reads from it.

The equaliser's gain is given in dB at node frequencies and interpolated linearly over log frequency (flat beyond
the first and last node); it multiplies the FFT of the clip, zero-padded by ``PAD_SAMPLES`` so nothing wraps
around, and the clip is scaled back to its own peak (the renderer's peak normalisation). The same real gain in
every channel leaves interaural time and level differences and interaural coherence as they were.
"""

from __future__ import annotations

import torch

PAD_SAMPLES = 4096


def gain_at(frequencies_hz: torch.Tensor, nodes_hz: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
    """Linear gain (B, F) at frequencies (F,) in Hz: ``gain_db`` (B, K) at increasing ``nodes_hz`` (K,),
    interpolated linearly in dB over log frequency, flat beyond the ends."""
    if nodes_hz.ndim != 1 or len(nodes_hz) < 2 or gain_db.ndim != 2 or gain_db.shape[1] != len(nodes_hz):
        raise ValueError(f"need nodes_hz (K >= 2,) and gain_db (B, K), got {tuple(nodes_hz.shape)} and "
                         f"{tuple(gain_db.shape)}")
    if not bool((nodes_hz > 0).all()) or not bool((nodes_hz.diff() > 0).all()):
        raise ValueError(f"nodes_hz must be positive and increasing, got {nodes_hz.tolist()}")
    log_nodes = nodes_hz.double().log()
    log_f = frequencies_hz.double().clamp(float(nodes_hz[0]), float(nodes_hz[-1])).log()
    left = (torch.searchsorted(log_nodes, log_f, right=True) - 1).clamp(0, len(nodes_hz) - 2)
    weight = (log_f - log_nodes[left]) / (log_nodes[left + 1] - log_nodes[left])
    gain_db = gain_db.double()
    return 10.0 ** ((gain_db[:, left] * (1.0 - weight) + gain_db[:, left + 1] * weight) / 20.0)


def colour(audio: torch.Tensor, fs_hz: int, nodes_hz: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
    """Audio (B, C, T) through each clip's equaliser (``gain_db`` (B, K) at ``nodes_hz`` (K,)), every clip
    scaled back to its own peak; same dtype and device."""
    n = audio.shape[-1] + PAD_SAMPLES
    frequencies = torch.fft.rfftfreq(n, 1.0 / fs_hz, dtype=torch.float64)
    gain = gain_at(frequencies, nodes_hz.cpu(), gain_db.cpu()).to(audio.device)  # (B, F)
    spectrum = torch.fft.rfft(audio.double(), n=n, dim=-1) * gain[:, None, :]
    coloured = torch.fft.irfft(spectrum, n=n, dim=-1)[..., :audio.shape[-1]]
    old_peak = audio.double().abs().amax(dim=(-2, -1), keepdim=True)
    new_peak = coloured.abs().amax(dim=(-2, -1), keepdim=True)
    scale = torch.where(new_peak > 0, old_peak / new_peak.clamp_min(1e-30), torch.zeros_like(new_peak))
    return (coloured * scale).to(audio.dtype)

