"""Brown & Duda's structural head against physics and the paper: Woodworth ITD, pinna notches that move
with elevation as the echo delays predict, front/back and up/down spectral cues a sphere lacks, ILD sign."""

import math

import numpy as np
import pytest
import torch

from spatial_alm.acoustics.heads import SphereHead, check_azimuth_sign, make_head
from spatial_alm.acoustics.structural_head import (
    DRAW_RANGES,
    PINNA_A,
    PINNA_B,
    PINNA_D,
    PINNA_FS_HZ,
    PINNA_GAINS,
    StructuralHead,
    check_draw_ranges,
)
from spatial_alm.coordinates import SPEED_OF_SOUND_M_S, spherical_to_cartesian

FS = 48000


def _direction(azimuth_deg, elevation_deg=0.0) -> torch.Tensor:
    return spherical_to_cartesian(torch.tensor([float(azimuth_deg)]), float(elevation_deg))  # (1, 3)


def _itd_s(pair: torch.Tensor, fs: int, min_frequency_hz: float = 1500.0, upsample: int = 16) -> float:
    """Right-ear minus left-ear delay (s): cross-correlation peak of the pair (2, L) above min_frequency_hz."""
    n = 2 * pair.shape[-1]
    spectra = torch.fft.rfft(pair.double(), n=n)
    cross = spectra[1] * spectra[0].conj()
    cross[torch.fft.rfftfreq(n, 1.0 / fs) < min_frequency_hz] = 0
    corr = torch.fft.irfft(cross, n=upsample * n)
    lag = int(torch.argmax(corr))
    return (lag - upsample * n if lag > upsample * n // 2 else lag) / (upsample * fs)


def _magnitude_db(head, azimuth_deg, elevation_deg=0.0, n=8192):
    """(2, F) magnitude in dB of the head's HRIR pair, and the frequencies (F,)."""
    pair = head.hrirs(_direction(azimuth_deg, elevation_deg), FS)[0].double()
    return 20 * torch.log10(torch.fft.rfft(pair, n=n).abs() + 1e-12), torch.fft.rfftfreq(n, 1.0 / FS)


@pytest.fixture(scope="module")
def head():
    return StructuralHead()


@pytest.mark.parametrize("radius_m", [0.0875, 0.078])
@pytest.mark.parametrize("azimuth_deg", [20.0, 45.0, 70.0, 90.0])
def test_itd_is_woodworths(radius_m, azimuth_deg):
    pair = StructuralHead(radius_m=radius_m).hrirs(_direction(azimuth_deg), FS)[0]
    lateral = math.radians(azimuth_deg)
    woodworth_s = radius_m / SPEED_OF_SOUND_M_S * (lateral + math.sin(lateral))
    assert _itd_s(pair, FS) == pytest.approx(woodworth_s, rel=0.05)


@pytest.mark.parametrize("azimuth_deg, elevation_deg", [(60, 0), (30, 20), (120, -10), (90, 40)])
def test_a_left_source_is_louder_and_earlier_in_the_left_ear(head, azimuth_deg, elevation_deg):
    for side, near in ((1, 0), (-1, 1)):
        pair = head.hrirs(_direction(side * azimuth_deg, elevation_deg), FS)[0].double()
        energy = (pair ** 2).sum(-1)
        assert energy[near] > 2 * energy[1 - near]
        assert side * _itd_s(pair, FS) > 0  # right ear later for a left source
    table = head.table(16000)
    assert check_azimuth_sign(table.hrirs, table.directions, 16000).verdict == "ccw"


def _notch_hz(head, elevation_deg, low_hz, high_hz) -> float:
    """Frequency of the deepest minimum of the left ear's magnitude (source in front) in [low_hz, high_hz]."""
    magnitude, freqs = _magnitude_db(head, 0.0, elevation_deg, n=1 << 15)
    band = (freqs >= low_hz) & (freqs <= high_hz)
    return float(freqs[band][torch.argmin(magnitude[0, band])])


@pytest.mark.parametrize("echo", [0, 1])
def test_pinna_notch_moves_with_elevation_as_the_echo_delay_predicts(echo):
    # One echo of gain rho and delay tau: 1 + rho exp(-2 pi i f tau) is smallest at f = 1 / (2 tau) for
    # rho > 0 and at f = 1 / tau for rho < 0. tau from the paper's formula for a source in front (lateral 0).
    gains = [0.0] * 5
    gains[echo] = PINNA_GAINS[echo]
    head = StructuralHead(pinna_gains=gains, shoulder_gain=0.0, rear_shadow_db=0.0)
    notches = []
    for elevation in (-30.0, 0.0, 30.0, 60.0):
        tau_s = (PINNA_A[echo] * math.sin(math.radians(PINNA_D[echo] * (90.0 - elevation)))
                 + PINNA_B[echo]) / PINNA_FS_HZ
        expected_hz = 1 / (2 * tau_s) if PINNA_GAINS[echo] > 0 else 1 / tau_s
        notches.append(_notch_hz(head, elevation, 0.7 * expected_hz, 1.4 * expected_hz))
        assert notches[-1] == pytest.approx(expected_hz, rel=0.02)
    if echo == 1:  # D = 0.5: the delay shrinks, and the notch rises, all the way up
        assert notches == sorted(notches) and notches[-1] > 1.3 * notches[0]


def test_full_model_notch_rises_with_elevation(head):
    notches = [_notch_hz(head, elevation, 4000, 14000) for elevation in (-30, -15, 0, 15, 30, 45, 60)]
    assert notches == sorted(notches) and notches[-1] > 1.2 * notches[0]


def _max_difference_db(head, first, second, low_hz=4000, high_hz=16000) -> float:
    (a, freqs), (b, _) = _magnitude_db(head, *first), _magnitude_db(head, *second)
    band = (freqs >= low_hz) & (freqs <= high_hz)
    return float((a - b)[:, band].abs().max())


def test_front_back_and_up_down_differ_where_a_sphere_is_the_same(head):
    sphere = SphereHead()
    for first, second in (((30, 0), (150, 0)), ((-45, 0), (-135, 0)), ((0, 30), (0, -30))):
        assert _max_difference_db(head, first, second) > 3.0, (first, second)
        if first[0] != 0:  # mirror images across the frontal plane: the same cone of confusion
            assert _max_difference_db(sphere, first, second) < 0.1
    # rear sources are duller at high frequencies (pinna shadow), as in the measured CIPIC heads
    (front, freqs), (back, _) = _magnitude_db(head, 0, 0), _magnitude_db(head, 180, 0)
    band = (freqs >= 4000) & (freqs <= 16000)
    assert float((10 ** (front[:, band] / 10)).mean()) > 1.5 * float((10 ** (back[:, band] / 10)).mean())


def test_table_matches_hrirs_and_holds_every_echo(head):
    table = head.table(16000)
    assert table.hrirs.shape == (3000, 2, round(head.hrir_length_s * 16000))
    torch.testing.assert_close(table.hrirs[:5], head.hrirs(table.directions[:5], 16000))
    energy = table.hrirs.double() ** 2
    length = energy.shape[-1]
    assert float(energy[..., 3 * length // 4:].sum() / energy.sum()) < 1e-4  # nothing left to the fade-out
    assert torch.isfinite(head.diffuse_csd(16000, 256)).all()


def test_draw_makes_reproducible_heads_inside_the_ranges():
    heads = [StructuralHead.draw(np.random.default_rng(seed)) for seed in range(5)]
    again = StructuralHead.draw(np.random.default_rng(3))
    assert again.parameters() == heads[3].parameters() and again.name == heads[3].name
    assert len({h.name for h in heads}) == 5 and all(h.name.startswith("structural:") for h in heads)
    for h in heads:
        assert DRAW_RANGES["radius_m"][0] <= h.radius_m <= DRAW_RANGES["radius_m"][1]
        assert DRAW_RANGES["pinna_d_first"][0] <= h.pinna_d[0] <= DRAW_RANGES["pinna_d_first"][1]
        lo, hi = DRAW_RANGES["shoulder_height_m"]
        assert lo <= h.shoulder_height_m <= hi
    fixed = StructuralHead.draw(np.random.default_rng(0), {"radius_m": 0.08, "shoulder_gain": [0.0, 0.0]})
    assert fixed.radius_m == 0.08 and fixed.shoulder_gain == 0.0
    # the other parameters are drawn as without the override
    assert fixed.pinna_delay_scale == heads[0].pinna_delay_scale
    assert StructuralHead().name == "structural" and make_head("structural").name == "structural"


@pytest.mark.parametrize("ranges, message", [
    ({"radius": [0.08, 0.09]}, r"unknown key 'ranges\.radius'"),
    ({"radius_m": [0.09, 0.08]}, r"ranges\.radius_m = \[0\.09, 0\.08\]"),
    ({"radius_m": [0.08, 0.5]}, r"ranges: radius_m = 0\.5; allowed"),
    ({"shoulder_gain": "x"}, r"ranges\.shoulder_gain"),
])
def test_bad_ranges_are_named(ranges, message):
    with pytest.raises(ValueError, match=message):
        check_draw_ranges(ranges)


@pytest.mark.parametrize("kwargs, field", [({"radius_m": 0.0}, "radius_m"), ({"pinna_gains": (0.5,)}, "pinna_gains"),
                                           ({"pinna_d": (1, 1, 1, 1, 2)}, r"pinna_d\[4\]"),
                                           ({"hrir_length_s": 0.001}, "hrir_length_s")])
def test_bad_parameters_are_named(kwargs, field):
    with pytest.raises(ValueError, match=field):
        StructuralHead(**kwargs)
