"""Spatial features: shapes, plane order, interaural-phase physics and invariances."""

import math

import pyroomacoustics as pra
import pytest
import scipy.signal
import torch

from spatial_alm.features import (
    SpatialFeatureConfig,
    SpatialFeatures,
    channel_pairs,
    feature_names,
    mel_weights,
    num_planes,
)
from spatial_alm.features.spatial import cross_phase, smooth_over_frames, stft

FS_HZ = 16000
SMALL = dict(fs_hz=FS_HZ, n_fft=512, hop_length=128, n_mels=64)  # fast test scale


TETRA_M = [[0.0243, 0.0243, 0.0242], [0.0243, -0.0243, -0.0242], [-0.0243, 0.0243, -0.0242],
           [-0.0243, -0.0243, 0.0242]]  # DCASE MIC tetrahedron, 4.2 cm radius
SRP = dict(fs_hz=24000, n_fft=512, hop_length=240, n_mels=64, mic_positions_m=TETRA_M, srp_phat=True,
           srp_elevations_deg=(-40, -20, 0, 20, 40))


def noise(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def delayed_pair(num_samples, delay, seed=0):
    """(1, 2, T) white noise; channel 1 hears channel 0 ``delay`` samples later."""
    n = noise(1, 1, num_samples + delay, seed=seed)
    return torch.cat([n[..., delay:], n[..., : n.shape[-1] - delay]], dim=1)


@pytest.mark.parametrize("num_channels, planes", [(2, 4), (4, 4 + 2 * 6)])
def test_shapes_and_plane_names(num_channels, planes):
    config = SpatialFeatureConfig(fs_hz=FS_HZ)
    out = SpatialFeatures(config)(noise(3, num_channels, 32000))
    assert out.shape == (3, planes, 128, 32000 // 320 + 1) == (3, planes, 128, config.num_frames(32000))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    names = feature_names(config, num_channels)
    assert len(names) == num_planes(config, num_channels) == planes
    assert names[:num_channels] == [f"logmel_{c}" for c in range(num_channels)]
    assert names[num_channels:num_channels + 4] == ["ipd_cos_0_1", "ipd_sin_0_1", "ipd_cos_0_2", "ipd_sin_0_2"][
        : planes - num_channels]


def test_all_cues_plane_order_and_explicit_pairs():
    config = SpatialFeatureConfig(**SMALL, pairs=[(0, 2), (3, 1)], ild=True, gcc_phat=True)
    assert channel_pairs(config, 4) == [(0, 2), (3, 1)]
    assert feature_names(config, 4) == [
        "logmel_0", "logmel_1", "logmel_2", "logmel_3",
        "ipd_cos_0_2", "ipd_sin_0_2", "ipd_cos_3_1", "ipd_sin_3_1",
        "ild_0_2", "ild_3_1", "gcc_0_2", "gcc_3_1"]
    out = SpatialFeatures(config)(noise(2, 4, 8000))
    assert out.shape == (2, 12, 64, 8000 // 128 + 1)
    torch.testing.assert_close(out[:, 8], out[:, 0] - out[:, 2])  # ILD = logmel_i - logmel_j
    with pytest.raises(ValueError, match="pairs"):
        SpatialFeatures(config)(noise(1, 3, 8000))  # pair (3, 1) needs 4 channels


def test_smoothing_over_frames_is_the_first_order_recursion():
    x = noise(3, 2, 50, seed=4)
    expected = scipy.signal.lfilter([0.3], [1.0, -0.7], x.numpy(), axis=-1)
    torch.testing.assert_close(smooth_over_frames(x, 0.7), torch.from_numpy(expected).float(), rtol=1e-5, atol=1e-6)


def test_coherence_is_one_for_a_filtered_copy_and_low_for_a_diffuse_field():
    """One source heard by both ears through a fixed filter (a 3-sample delay, half the amplitude): coherence near 1
    in every band, away from the first and last frames (reflect padding does not delay); independent noise in the
    two ears (a diffuse field's high bands): near 0, limited by the few frames the smoothing averages (30 ms at
    8 ms hops: about 0.3)."""
    config = SpatialFeatureConfig(**SMALL, coherence=True)
    assert feature_names(config, 2)[-1] == "coherence_0_1"
    with_srp = SpatialFeatureConfig(**{**SRP, "coherence": True})  # coherence planes come before the SRP maps
    srp_planes = SpatialFeatures(SpatialFeatureConfig(**SRP))(noise(1, 4, 4800))[:, 16:]  # after 4 log-mel, 12 IPD
    out = SpatialFeatures(with_srp)(noise(1, 4, 4800))
    assert feature_names(with_srp, 4)[16:22] == [f"coherence_{i}_{j}" for i, j in channel_pairs(with_srp, 4)]
    torch.testing.assert_close(out[:, 22:], srp_planes)
    assert ((out[:, 16:22] >= 0) & (out[:, 16:22] <= 1)).all()
    copy = delayed_pair(16000, 3) * torch.tensor([1.0, 0.5])[:, None]
    coherence = SpatialFeatures(config)(copy)[0, -1, :, 10:-10]
    assert coherence.mean() > 0.99 and coherence.min() > 0.9
    independent = SpatialFeatures(config)(noise(1, 2, 16000, seed=2))[0, -1]
    assert 0.2 < independent.mean() < 0.4


def test_coherence_falls_when_the_direct_sound_gives_way_to_the_tail():
    """A filtered copy for 0.5 s, then independent noise 10 dB louder: the coherence plane is near 1 over the
    first half and low once the smoothing (30 ms) has forgotten it; a fixed gain per ear does not change it."""
    config = SpatialFeatureConfig(**SMALL, coherence=True)
    direct = delayed_pair(8000, 2)
    audio = torch.cat([direct, 10 ** 0.5 * noise(1, 2, 8000, seed=3)], dim=-1)
    coherence = SpatialFeatures(config)(audio)[0, -1]  # (n_mels, frames), 125 frames per second
    assert coherence[:, 5:55].mean() > 0.95 and coherence[:, 75:].mean() < 0.5
    scaled = SpatialFeatures(config)(audio * torch.tensor([3.0, 0.2])[:, None])[0, -1]
    torch.testing.assert_close(scaled, coherence, rtol=0.0, atol=1e-4)


def test_mel_weights_average_each_band():
    weights = mel_weights(SpatialFeatureConfig(fs_hz=FS_HZ))
    assert weights.shape == (513, 128)
    torch.testing.assert_close(weights.sum(0), torch.ones(128))
    assert (weights >= 0).all()


def test_swapping_channels_mirrors_the_interaural_cues():
    config = SpatialFeatureConfig(**SMALL, ild=True, gcc_phat=True)
    features = SpatialFeatures(config)
    x = delayed_pair(8000, 3) * torch.tensor([1.0, 0.5])[:, None]
    a, b = features(x)[0], features(x.flip(1))[0]
    logmel, cos, sin, ild, gcc = range(0, 2), 2, 3, 4, 5
    torch.testing.assert_close(b[logmel], a[logmel].flip(0))
    torch.testing.assert_close(b[cos], a[cos])
    torch.testing.assert_close(b[sin], -a[sin])
    torch.testing.assert_close(b[ild], -a[ild])
    torch.testing.assert_close(b[gcc, 1:], a[gcc, 1:].flip(0))  # lag l <-> -l (row 0, lag -32, has no mirror)
    assert a[sin].mean() > 0.05  # channel 1 lags: positive phase difference


def test_pure_delay_gives_ipd_2_pi_f_tau_at_a_bin():
    # A tone at STFT bin k = 20 (20 * 16000 / 512 = 625 Hz); channel 1 hears it tau = 0.3 ms later.
    # By hand: IPD = 2 pi * 625 Hz * 0.3 ms = 3 pi / 8 -> cos 0.38268, sin 0.92388.
    k, tau_s = 20, 0.3e-3
    t = torch.arange(FS_HZ) / FS_HZ
    f_hz = k * FS_HZ / 512
    x = torch.stack([torch.cos(2 * math.pi * f_hz * t), torch.cos(2 * math.pi * f_hz * (t - tau_s))])[None]
    unit = cross_phase(stft(x, 512, 128, torch.hann_window(512)), [(0, 1)])  # (1, 1, 257, frames)
    interior = unit[0, 0, k, 4:-4]
    torch.testing.assert_close(interior.real, torch.full_like(interior.real, 0.38268), atol=1e-4, rtol=0)
    torch.testing.assert_close(interior.imag, torch.full_like(interior.imag, 0.92388), atol=1e-4, rtol=0)


def test_pure_delay_projected_onto_the_mel_bank():
    config = SpatialFeatureConfig(**SMALL)
    delay = 2
    out = SpatialFeatures(config)(delayed_pair(FS_HZ, delay))[0, :, :, 2:-2].mean(-1)  # (4, 64), frame mean
    phase = 2 * math.pi * torch.arange(257) / 512 * delay  # 2 pi f tau per STFT bin
    weights = mel_weights(config)
    torch.testing.assert_close(out[2], weights.T @ torch.cos(phase), atol=0.02, rtol=0)
    torch.testing.assert_close(out[3], weights.T @ torch.sin(phase), atol=0.02, rtol=0)


def test_gcc_phat_peaks_at_the_delay():
    config = SpatialFeatureConfig(**SMALL, ipd=False, gcc_phat=True, gcc_max_lag=10)
    gcc = SpatialFeatures(config)(delayed_pair(8000, 3))[0, 2, :, 1:-1]  # (64, frames), row m = lag m - 32
    assert (gcc.argmax(0) - 32 == 3).all()  # edge frames (reflect padding) left out
    assert gcc.max() <= 1.0 + 1e-5 and (gcc[:32 - 10] == 0).all() and (gcc[32 + 11:] == 0).all()


def test_identical_channels_have_zero_phase_difference():
    config = SpatialFeatureConfig(**SMALL, ild=True)
    x = noise(2, 1, 8000).expand(2, 2, 8000)
    out = SpatialFeatures(config)(x)
    torch.testing.assert_close(out[:, 2], torch.ones_like(out[:, 2]))  # cos
    torch.testing.assert_close(out[:, 3], torch.zeros_like(out[:, 3]))  # sin
    assert (out[:, 4] == 0).all()  # ILD
    torch.testing.assert_close(out[:, 0], out[:, 1])


def test_batched_equals_one_by_one():
    features = SpatialFeatures(SpatialFeatureConfig(**SMALL, ild=True, gcc_phat=True))
    x = noise(3, 4, 6000)
    batched = features(x)
    singles = torch.cat([features(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)


def test_config_round_trip_through_dict():
    config = SpatialFeatureConfig(**SMALL, pairs=[[0, 1], [1, 2]], gcc_phat=True, gcc_max_lag=5)
    assert config.pairs == ((0, 1), (1, 2))
    assert SpatialFeatureConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("field, value", [
    ("fs_hz", 0), ("n_fft", 1), ("hop_length", 2048), ("n_mels", 600), ("f_min_hz", -1.0), ("f_min_hz", "50"),
    ("f_max_hz", 9000.0), ("mel_scale", "bark"), ("pairs", "some"), ("pairs", [(0, 0)]),
    ("pairs", [(0, 1), (1, 0)]), ("pairs", []), ("ipd", "yes"), ("gcc_max_lag", 64), ("srp_phat", 1),
    ("mic_positions_m", [(0.0, 0.0)]), ("srp_elevations_deg", [100.0]), ("srp_elevations_deg", []),
    ("srp_freq_range_hz", (3000.0, 200.0)), ("srp_freq_range_hz", (0.0, 9000.0)), ("coherence", "yes"),
    ("coherence_time_s", 0.0),
])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SpatialFeatureConfig(**{"fs_hz": FS_HZ, field: value})


def test_empty_mel_bands_are_rejected():
    with pytest.raises(ValueError, match="n_mels"):
        SpatialFeatureConfig(fs_hz=FS_HZ, n_fft=256, hop_length=128, n_mels=128, mel_scale="htk")


def test_bad_audio_is_rejected():
    features = SpatialFeatures(SpatialFeatureConfig(**SMALL))
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        features(noise(2, 8000))
    with pytest.raises(ValueError, match="audio length"):
        features(noise(1, 2, 200))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    features = SpatialFeatures(SpatialFeatureConfig(**SMALL, ild=True, gcc_phat=True, srp_phat=True,
                                                    mic_positions_m=TETRA_M))
    x = noise(2, 4, 8000)
    torch.testing.assert_close(features.cuda()(x.cuda()).cpu(), features.cpu()(x), rtol=1e-4, atol=1e-3)


def plane_waves(directions, num_samples, fs_hz, seed=0):
    """(1, 4, T) far-field white-noise plane waves at the tetrahedron from (azimuth, elevation) degrees:
    each microphone hears its source ``-(r . u) / c`` seconds after the centre (exact fractional delays)."""
    positions = torch.tensor(TETRA_M, dtype=torch.float64)
    freqs = torch.fft.rfftfreq(num_samples, 1 / fs_hz, dtype=torch.float64)
    out = torch.zeros(4, num_samples, dtype=torch.float64)
    for k, (az, el) in enumerate(directions):
        u = torch.tensor([math.cos(math.radians(el)) * math.cos(math.radians(az)),
                          math.cos(math.radians(el)) * math.sin(math.radians(az)), math.sin(math.radians(el))],
                         dtype=torch.float64)
        spectrum = torch.fft.rfft(noise(num_samples, seed=seed + k).double())
        delays = -(positions @ u) / 343.0
        out += torch.fft.irfft(spectrum * torch.exp(-2j * math.pi * freqs * delays[:, None]), n=num_samples)
    return out.float()[None]


@pytest.mark.parametrize("azimuth, elevation", [(45.0, 20.0), (-90.0, 0.0), (180.0, -40.0), (5.625, 40.0)])
def test_srp_phat_peaks_at_the_plane_wave_direction(azimuth, elevation):
    config = SpatialFeatureConfig(**SRP)
    srp = SpatialFeatures(config)(plane_waves([(azimuth, elevation)], 12000, 24000))[0, -5:].mean(-1)  # (5, 64)
    plane, row = divmod(int(srp.argmax()), 64)
    assert (config.srp_elevations_deg[plane], row * 360 / 64) == (elevation, azimuth % 360)
    assert 0.97 < srp.max() <= 1.0 + 1e-5  # every pair and bin agree with the true direction


def test_srp_phat_map_matches_pyroomacoustics():
    config = SpatialFeatureConfig(**SRP)
    audio = plane_waves([(60.0, 20.0), (-120.0, -40.0)], 24000, 24000)
    ours = SpatialFeatures(config)(audio)[0, -5:].mean(-1)  # (5 elevations, 64 azimuths)
    azimuth, elevation = torch.meshgrid(torch.arange(64) * 2 * math.pi / 64,
                                        torch.deg2rad(torch.tensor(config.srp_elevations_deg)), indexing="xy")
    srp = pra.doa.algorithms["SRP"](L=torch.tensor(TETRA_M).T.numpy(), fs=24000, nfft=512, c=343.0, num_src=1,
                                    dim=3, azimuth=azimuth.flatten().numpy(),
                                    colatitude=(math.pi / 2 - elevation).flatten().numpy())
    frames = audio[0].double().unfold(-1, 512, 256) * torch.hann_window(512, periodic=False, dtype=torch.float64)
    srp.locate_sources(torch.fft.rfft(frames, dim=-1).permute(0, 2, 1).numpy(),
                       freq_range=list(config.srp_freq_range_hz))
    # read pyroomacoustics' grid back as it stores it, and look each point up in our (elevation, azimuth) map
    their_elevation = 90.0 - torch.rad2deg(torch.from_numpy(srp.grid.colatitude))
    plane = torch.tensor([config.srp_elevations_deg.index(round(float(e))) for e in their_elevation])
    row = torch.round(torch.from_numpy(srp.grid.azimuth) * 64 / (2 * math.pi)).long() % 64
    ours_at_theirs = ours[plane, row].double()
    theirs = torch.from_numpy(srp.grid.values)
    assert torch.corrcoef(torch.stack([ours_at_theirs, theirs]))[0, 1] > 0.99  # theirs: a constant added, scaled


def test_srp_phat_needs_one_position_per_channel():
    with pytest.raises(ValueError, match="mic_positions_m"):
        SpatialFeatureConfig(**{**SRP, "mic_positions_m": None})
    with pytest.raises(ValueError, match="mic_positions_m"):
        feature_names(SpatialFeatureConfig(**SRP), 2)
    config = SpatialFeatureConfig(**SRP)
    assert SpatialFeatureConfig.from_dict(config.to_dict()) == config
    assert feature_names(config, 4)[-5:] == ["srp_el-40", "srp_el-20", "srp_el0", "srp_el20", "srp_el40"]
