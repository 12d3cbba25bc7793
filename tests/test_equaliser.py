"""The equaliser against hand-computed gains and the interaural differences it must keep."""

import math

import pytest
import torch

from spatial_alm.acoustics.equaliser import colour, gain_at

FS = 16000
NODES = torch.tensor([250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0], dtype=torch.float64)


def noise_burst(length: int = 8000, margin: int = 2000, seed: int = 0) -> torch.Tensor:
    """(length,) float64 white noise, zero in the first and last ``margin`` samples."""
    signal = torch.randn(length, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    signal[:margin] = 0.0
    signal[length - margin:] = 0.0
    return signal


def test_gain_is_linear_in_db_over_log_frequency_and_flat_beyond_the_nodes():
    gain_db = torch.tensor([[0.0, 0.0, 0.0, 6.0, 12.0, 12.0]])
    frequencies = torch.tensor([100.0, 1000.0, math.sqrt(1000.0 * 2000.0), 2000.0, 8000.0], dtype=torch.float64)
    expected_db = torch.tensor([[0.0, 0.0, 3.0, 6.0, 12.0]], dtype=torch.float64)
    torch.testing.assert_close(20.0 * torch.log10(gain_at(frequencies, NODES, gain_db)), expected_db)
    with pytest.raises(ValueError, match="increasing"):
        gain_at(frequencies, NODES.flip(0), gain_db)
    with pytest.raises(ValueError, match="gain_db"):
        gain_at(frequencies, NODES, gain_db[:, :3])


def test_a_flat_gain_leaves_the_clip_as_it_was():
    audio = torch.stack([noise_burst(seed=1), noise_burst(seed=2)])[None].float()  # (1, 2, T)
    for level_db in (0.0, 9.0):  # a gain common to all frequencies is undone by the peak scaling
        coloured = colour(audio, FS, NODES, torch.full((1, len(NODES)), level_db))
        torch.testing.assert_close(coloured, audio, atol=1e-6, rtol=0.0)


def test_the_same_equaliser_in_both_ears_keeps_the_interaural_delay_and_level():
    """Right ear = 0.5 x the left ear 7 samples later: after colouring, still exactly that."""
    left = noise_burst()
    right = 0.5 * torch.roll(left, 7)
    audio = torch.stack([left, right])[None]
    gain_db = torch.tensor([[3.0, -5.0, 8.0, -10.0, 10.0, -4.0]])
    coloured = colour(audio, FS, NODES, gain_db)[0]
    torch.testing.assert_close(coloured[1, 7:], 0.5 * coloured[0, :-7], atol=1e-9, rtol=0.0)
    assert coloured.abs().max() == pytest.approx(float(audio.abs().max()))  # back at the clip's peak


def test_band_levels_move_by_the_gain():
    audio = noise_burst(length=64000, margin=0)[None, None].expand(1, 2, -1)
    coloured = colour(audio, FS, NODES, torch.tensor([[0.0, 0.0, 0.0, 6.0, 12.0, 12.0]]))
    spectrum_in = torch.fft.rfft(audio[0, 0]).abs().square()
    spectrum_out = torch.fft.rfft(coloured[0, 0]).abs().square()
    frequencies = torch.fft.rfftfreq(audio.shape[-1], 1.0 / FS)

    def band_db(spectrum, low, high):
        return 10.0 * math.log10(float(spectrum[(frequencies >= low) & (frequencies < high)].sum()))

    low_change = band_db(spectrum_out, 300, 900) - band_db(spectrum_in, 300, 900)
    high_change = band_db(spectrum_out, 4500, 7500) - band_db(spectrum_in, 4500, 7500)
    assert high_change - low_change == pytest.approx(12.0, abs=0.1)

