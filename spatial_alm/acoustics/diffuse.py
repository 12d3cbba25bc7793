"""Late reverberation as a diffuse field with the receiver's inter-channel coherence.

gpuRIR-style hybrid: image sources up to ``tdiff``, then noise whose energy decays at the room's RT60
and continues the image-source energy at ``tdiff``. Unlike gpuRIR, the noise channels are mixed so
that their cross-spectral density is that of an isotropic diffuse field at the receiver:
``sinc(2 f d / c)`` between omnidirectional microphones at distance ``d`` (Cook et al., 1955), and the
direction-averaged HRTF cross-spectrum for a head.
"""

from __future__ import annotations

import math

import torch

from spatial_alm.coordinates import SPEED_OF_SOUND_M_S

FIT_WINDOW_S = 0.02  # image-source energy is matched over this window just before tdiff
MIN_FIT_WINDOW_S = 0.005
DIRECT_PATH_GUARD_S = 0.002  # the fit window starts this long after the direct path


def omni_diffuse_csd(mic_pos: torch.Tensor, fs_hz: int, n_fft: int, c: float = SPEED_OF_SOUND_M_S) -> torch.Tensor:
    """Diffuse-field coherence (B, n_fft // 2 + 1, M, M) complex128 of omni microphones (B, M, 3)."""
    dist = torch.cdist(mic_pos, mic_pos)  # (B, M, M)
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / fs_hz, dtype=torch.float64, device=mic_pos.device)
    return torch.sinc(2.0 * freqs[None, :, None, None] * dist[:, None] / c).to(torch.complex128)


def mixing_matrices(csd: torch.Tensor) -> torch.Tensor:
    """Hermitian square roots ``C`` with ``C C^H = csd`` for (..., M, M) Hermitian PSD matrices, on csd's device.

    M = 2 (binaural, microphone pairs) in closed form, ``(A + s I) / sqrt(tr A + 2 s)`` with
    ``s = sqrt(det A)``, elementwise. Larger M: one eigendecomposition per distinct matrix (they repeat
    over sources and same-geometry rooms), on the CPU, since cuSOLVER's batched eigh needs workspace
    linear in the batch (263 GB for 1024 rooms x 257 bins).
    """
    if csd.shape[-1] == 2:
        det = (csd[..., 0, 0] * csd[..., 1, 1] - csd[..., 0, 1] * csd[..., 1, 0]).real.clamp(min=0)
        s = det.sqrt()
        norm = (csd[..., 0, 0].real + csd[..., 1, 1].real + 2 * s).sqrt().clamp(min=torch.finfo(det.dtype).tiny)
        return (csd + s[..., None, None] * torch.eye(2, dtype=csd.dtype, device=csd.device)) / norm[..., None, None]
    flat = torch.view_as_real(csd.reshape(-1, *csd.shape[-2:])).cpu()
    distinct, inverse = torch.unique(flat, dim=0, return_inverse=True)
    eigval, eigvec = torch.linalg.eigh(torch.view_as_complex(distinct))
    roots = (eigvec * eigval.clamp(min=0).sqrt()[..., None, :]) @ eigvec.conj().transpose(-1, -2)
    return roots.to(csd.device)[inverse.to(csd.device)].reshape(csd.shape)


def _interpolate_over_frequency(csd: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Linearly interpolate (B, F0, M, M) matrices over frequency onto ``num_bins`` bins spanning 0..fs/2."""
    if csd.shape[1] == num_bins:
        return csd
    pos = torch.linspace(0, csd.shape[1] - 1, num_bins, dtype=torch.float64, device=csd.device)
    lo = pos.floor().long().clamp(max=csd.shape[1] - 2)
    w = (pos - lo)[None, :, None, None]
    return csd[:, lo] * (1 - w) + csd[:, lo + 1] * w


def add_diffuse_tail(
    rir: torch.Tensor,
    rt60_s: torch.Tensor,
    tdiff_s: torch.Tensor,
    direct_delay_s: torch.Tensor,
    fs_hz: int,
    csd: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add a diffuse tail from ``tdiff_s`` onwards to image-source RIRs, in place; returns ``rir``.

    rir: (R, M, T) image-source responses up to ``tdiff_s`` (R = rooms x sources).
    rt60_s, tdiff_s, direct_delay_s: (R,) seconds: decay time of the tail, its start, and the
    latest direct-path arrival. csd: (R or 1, F0, M, M) diffuse-field cross-spectral density of the
    receiver, normalised so the mean of its diagonal is 1; interpolated onto the tail's FFT grid.

    The tail is ``A exp(-6.91 t / RT60) x_m(t)`` with ``x`` unit-power noise mixed to the receiver's
    coherence; ``A`` gives the tail model the image sources' energy (mean over channels) in the last
    ``FIT_WINDOW_S`` before ``tdiff`` (starting after the direct path). Early image-source energy
    decays more slowly than the tail (low orders dominate), so the tail starts up to ~2 dB below the
    full image-source model at ``tdiff``; the measured RT60 of the whole response stays on target.
    """
    num_rows, num_ch, num_samples = rir.shape
    fit_begin = torch.maximum(tdiff_s - FIT_WINDOW_S, direct_delay_s + DIRECT_PATH_GUARD_S)
    short = (tdiff_s - fit_begin < MIN_FIT_WINDOW_S).nonzero()
    if len(short):
        r = short[0].item()
        raise ValueError(
            f"tdiff = {tdiff_s[r].item():g} s leaves too little image-source response to fit the diffuse "
            f"tail: it must exceed the direct-path arrival ({direct_delay_s[r].item():.4f} s) by at least "
            f"{DIRECT_PATH_GUARD_S + MIN_FIT_WINDOW_S:g} s"
        )
    first = int(torch.floor(tdiff_s.min() * fs_hz))
    if first >= num_samples:
        return rir
    decay = 3.0 * math.log(10.0) / rt60_s.to(torch.float64)  # amplitude decay rate, 1/s
    t = torch.arange(num_samples, dtype=torch.float64, device=rir.device) / fs_hz
    model_power = torch.exp(-2.0 * decay[:, None] * t)  # (R, T) tail power for A = 1
    in_window = (t >= fit_begin[:, None]) & (t < tdiff_s[:, None])
    ism_energy = (rir.to(torch.float64) ** 2).mean(1)  # (R, T), mean over channels
    amp2 = (ism_energy * in_window).sum(-1) / (model_power * in_window).sum(-1)
    length = num_samples - first
    noise = torch.randn(num_rows, num_ch, length, generator=generator, dtype=torch.float32, device=rir.device)
    spectrum = torch.fft.rfft(noise)  # (R, M, F)
    # square roots on the receiver's coarse CSD grid, then interpolated: both vary smoothly with f
    mix = _interpolate_over_frequency(mixing_matrices(csd), spectrum.shape[-1]).to(torch.complex64)  # (R|1, F, M, M)
    mixed = (mix.permute(0, 2, 3, 1) * spectrum[:, None, :, :]).sum(2)  # (R, M, F)
    tail = torch.fft.irfft(mixed, n=length)
    t_tail = t[first:]
    envelope = amp2.sqrt()[:, None] * torch.exp(-decay[:, None] * t_tail) * (t_tail >= tdiff_s[:, None])
    rir[:, :, first:] += tail * envelope.to(rir.dtype)[:, None, :]
    return rir
