"""Binaural heads against closed forms (Woodworth, Kuhn), physical cues and the SOFA files' own data."""

import math

import h5py
import numpy as np
import pytest
import torch
from conftest import write_sofa

from spatial_alm.acoustics.heads import HRIRTable, SofaHead, SphereHead, make_head
from spatial_alm.coordinates import SPEED_OF_SOUND_M_S, spherical_to_cartesian

KEMAR = "hrtf/mit_kemar_normal_pinna.sofa"
KU100 = "hrtf/FHK_HRIR_L2354.sofa"


def _direction(azimuth_deg, elevation_deg=0.0) -> torch.Tensor:
    return spherical_to_cartesian(torch.tensor([float(azimuth_deg)]), float(elevation_deg))  # (1, 3)


def _itd_s(pair: torch.Tensor, fs_hz: int, min_frequency_hz: float = 0.0, upsample: int = 16) -> float:
    """Right-ear minus left-ear delay (s): peak of the cross-correlation of the pair (2, L), restricted
    to frequencies >= min_frequency_hz and interpolated by zero-padding the cross-spectrum."""
    n = 2 * pair.shape[-1]
    spectra = torch.fft.rfft(pair.double(), n=n)
    cross = spectra[1] * spectra[0].conj()
    cross[torch.fft.rfftfreq(n, 1.0 / fs_hz) < min_frequency_hz] = 0
    corr = torch.fft.irfft(cross, n=upsample * n)
    lag = int(torch.argmax(corr))
    if lag > upsample * n // 2:
        lag -= upsample * n
    return lag / (upsample * fs_hz)


def _band_level_db(pair: torch.Tensor, fs_hz: int, low_hz: float, high_hz: float) -> torch.Tensor:
    """Mean power (dB) per ear (2,) of the pair (2, L) over frequencies in [low_hz, high_hz]."""
    n = 8192
    power = torch.fft.rfft(pair.double(), n=n).abs() ** 2
    freqs = torch.fft.rfftfreq(n, 1.0 / fs_hz)
    return 10 * torch.log10(power[:, (freqs >= low_hz) & (freqs <= high_hz)].mean(dim=1))


def _third_octave_ild_db(pair: torch.Tensor, fs_hz: int, centre_hz: float) -> float:
    left, right = _band_level_db(pair, fs_hz, centre_hz * 2 ** (-1 / 6), centre_hz * 2 ** (1 / 6))
    return float(left - right)


@pytest.fixture(scope="module")
def sphere():
    return SphereHead()


@pytest.fixture(scope="module", params=["sphere", "kemar", "ku100"])
def any_head(request):
    if request.param == "sphere":
        return request.getfixturevalue("sphere")
    return SofaHead(request.getfixturevalue("shared_data") / {"kemar": KEMAR, "ku100": KU100}[request.param])


@pytest.mark.parametrize("radius_m", [0.0875, 0.07])
def test_sphere_itd_matches_woodworth_and_kuhn(radius_m):
    # Woodworth's ray model a/c (theta + sin theta) describes the high-frequency (leading-edge) delay,
    # so it is compared with the cross-correlation of the HRIRs above 1.5 kHz. At low frequency the
    # sphere's interaural delay tends to Kuhn's (1977) limit 3 a/c sin(theta), about 1.17x Woodworth at
    # 90 degrees; it is read from the interaural phase at 50 Hz.
    fs = 48000
    pair = SphereHead(radius_m=radius_m).hrirs(_direction(90), fs)[0]
    woodworth_s = radius_m / SPEED_OF_SOUND_M_S * (math.pi / 2 + 1)
    assert _itd_s(pair, fs, min_frequency_hz=1500) == pytest.approx(woodworth_s, rel=0.05)

    n = 1 << 16
    spectra = torch.fft.rfft(pair.double(), n=n)
    k = round(50 * n / fs)
    phase_itd_s = float(torch.angle(spectra[0, k] / spectra[1, k])) / (2 * math.pi * k * fs / n)
    assert phase_itd_s == pytest.approx(3 * radius_m / SPEED_OF_SOUND_M_S, rel=0.02)


def test_sphere_ild_grows_with_frequency(sphere):
    fs = 48000
    pair = sphere.hrirs(_direction(90), fs)[0]
    ild = [_third_octave_ild_db(pair, fs, f) for f in (200, 500, 2000, 8000)]
    assert abs(ild[0]) < 2.0
    # Growth, not size: with the ears diametrically opposite, the far ear sits on the sphere's bright spot.
    assert 0 < ild[1] < ild[2] < ild[3]


def test_sphere_is_transparent_at_dc_and_doubles_pressure_facing_the_source(sphere):
    fs = 48000
    directions = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    dc_gain = sphere.hrirs(directions, fs).double().sum(-1)  # (5, 2)
    torch.testing.assert_close(dc_gain, torch.ones_like(dc_gain), atol=2e-3, rtol=0)
    # A wave hitting the ear head-on is reflected as by a rigid wall at high frequency: +6 dB.
    left, _ = _band_level_db(sphere.hrirs(_direction(90), fs)[0], fs, 10000, 14000)
    assert float(left) == pytest.approx(20 * math.log10(2), abs=0.5)


def test_sphere_left_right_mirror_symmetry(sphere):
    directions = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mirrored = directions * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    h, h_mirrored = sphere.hrirs(directions, 32000), sphere.hrirs(mirrored, 32000)
    torch.testing.assert_close(h[:, 0], h_mirrored[:, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(h[:, 1], h_mirrored[:, 0], atol=1e-6, rtol=0)


def test_sphere_table_shape_and_onset(sphere):
    table = sphere.table(16000)
    assert isinstance(table, HRIRTable) and sphere.table(16000) is table
    assert table.hrirs.shape == (sphere.num_table_directions, 2, round(sphere.hrir_length_s * 16000))
    # Frontal wave: both ears are level with the centre, so the energy peaks just after the onset.
    front = sphere.hrirs(_direction(0), 16000)[0]
    assert torch.all((front.abs().argmax(dim=1) - table.onset_samples).abs() <= 1)


def test_lateral_sources_are_louder_and_earlier_on_their_side(any_head):
    fs = 32000
    left_src, right_src, front = any_head.hrirs(
        spherical_to_cartesian(torch.tensor([90.0, -90.0, 0.0]), 0.0), fs)
    for pair, side in ((left_src, 1), (right_src, -1)):
        left_db, right_db = _band_level_db(pair, fs, 100, 15000)
        assert side * float(left_db - right_db) > 5.0
        assert side * _itd_s(pair, fs) > 0.4e-3  # the far ear hears it later
    left_db, right_db = _band_level_db(front, fs, 100, 15000)
    assert abs(float(left_db - right_db)) < 3.0
    assert abs(_itd_s(front, fs)) < 50e-6


def test_diffuse_csd_is_a_normalised_hermitian_density(any_head):
    csd = any_head.diffuse_csd(16000, 1024)
    assert csd.shape == (513, 2, 2) and csd.dtype == torch.complex128
    torch.testing.assert_close(csd, csd.transpose(1, 2).conj())
    diagonal = torch.diagonal(csd, dim1=1, dim2=2)
    assert torch.all(diagonal.real > 0)
    assert float(diagonal.real.mean()) == pytest.approx(1.0, abs=1e-9)


def test_sphere_diffuse_coherence(sphere):
    fs, n_fft = 16000, 1024
    csd = sphere.diffuse_csd(fs, n_fft)
    coherence = csd[:, 0, 1].abs() / torch.sqrt(csd[:, 0, 0].real * csd[:, 1, 1].real)
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / fs)
    assert float(coherence[freqs < 200].mean()) > 0.9
    assert float(coherence[freqs > 3000].mean()) < 0.3


@pytest.mark.parametrize("sofa", [KEMAR, KU100])
def test_sofa_nearest_lookup_returns_the_measured_hrir(shared_data, sofa):
    with h5py.File(shared_data / sofa, "r") as f:
        ir = torch.from_numpy(f["Data.IR"][()]).float()
        position = torch.from_numpy(f["SourcePosition"][()])
        fs = int(f["Data.SamplingRate"][0])
    index = torch.tensor([0, 7, 100, 333])
    directions = spherical_to_cartesian(position[index, 0], position[index, 1])
    for interpolation in SofaHead.interpolations:
        head = SofaHead(shared_data / sofa, interpolation=interpolation)
        # Both files store the left ear as receiver 0 (KU100's ReceiverPosition says otherwise).
        assert head.azimuth_check.verdict == "ccw" and not head.azimuth_flipped
        torch.testing.assert_close(head.hrirs(directions, fs), ir[index], atol=1e-6, rtol=0)


@pytest.mark.parametrize("sofa", [KEMAR, KU100])
def test_sofa_resampling_keeps_interaural_cues(shared_data, sofa):
    head = SofaHead(shared_data / sofa)
    directions = spherical_to_cartesian(torch.tensor([90.0, 45.0, -30.0, 135.0]), 0.0)
    native = head.hrirs(directions, head.native_fs_hz)
    for fs in (16000, 32000):
        resampled = head.hrirs(directions, fs)
        for a, b in zip(native, resampled):
            assert _itd_s(b, fs, upsample=32) == pytest.approx(_itd_s(a, head.native_fs_hz, upsample=32),
                                                               abs=30e-6)
            ild_native = _band_level_db(a, head.native_fs_hz, 200, 6000)
            ild_resampled = _band_level_db(b, fs, 200, 6000)
            assert float((ild_native[0] - ild_native[1]) - (ild_resampled[0] - ild_resampled[1])) \
                == pytest.approx(0.0, abs=0.5)


def _toy_ir(m=8, n=32, left_receiver=0):
    """Impulses whose left ear is louder for sources with y > 0 (azimuths evenly spaced from 0)."""
    azimuth = np.deg2rad(np.linspace(0, 360, m, endpoint=False))
    ir = np.zeros((m, 2, n))
    ir[:, left_receiver, 4] = 1 + 0.9 * np.sin(azimuth)
    ir[:, 1 - left_receiver, 4] = 1 - 0.9 * np.sin(azimuth)
    return ir


@pytest.mark.parametrize("field", ["Data.IR", "Data.SamplingRate", "SourcePosition"])
def test_sofa_missing_field_is_named(tmp_path, field):
    path = write_sofa(tmp_path / "tiny.sofa", _toy_ir(), omit=(field,))
    with pytest.raises(ValueError, match=rf"tiny\.sofa.*{field}.*missing"):
        SofaHead(path)


@pytest.mark.parametrize("ir, fs, field", [
    (np.zeros((8, 32)), 48000.0, "Data.IR"),  # wrong ndim
    (np.zeros((8, 3, 32)), 48000.0, "Data.IR"),  # three receivers
    (_toy_ir(), 0.0, "Data.SamplingRate"),
    (_toy_ir(), -44100.0, "Data.SamplingRate"),
])
def test_sofa_bad_field_is_named(tmp_path, ir, fs, field):
    path = write_sofa(tmp_path / "bad.sofa", ir, fs=fs)
    with pytest.raises(ValueError, match=rf"bad\.sofa.*{field}.*allowed"):
        SofaHead(path)


@pytest.mark.parametrize("receiver_y", [(0.09, -0.09), (-0.09, 0.09)])
def test_sofa_receiver_0_is_the_left_ear_whatever_receiver_position_says(tmp_path, receiver_y):
    # The second case stores ReceiverPosition with the ears swapped relative to the data (as the KU100 file).
    path = write_sofa(tmp_path / "toy.sofa", _toy_ir(), receiver_y=receiver_y)
    head = SofaHead(path)
    assert head.name == "sofa:toy" and head.azimuth_check.verdict == "ccw"
    pair = head.hrirs(_direction(90), 48000)[0]
    assert float(pair[0].abs().max()) > 5 * float(pair[1].abs().max())


def _negated_copy(source, path, every=5):
    """A SOFA-like copy of every ``every``-th direction of ``source`` with the azimuth labels negated."""
    with h5py.File(source, "r") as f:
        ir = f["Data.IR"][::every]
        position = f["SourcePosition"][::every]
        fs = f["Data.SamplingRate"][()]
    position[:, 0] = -position[:, 0]
    with h5py.File(path, "w") as f:
        f.attrs["SOFAConventions"] = "SimpleFreeFieldHRIR"
        f.create_dataset("Data.IR", data=ir)
        f.create_dataset("Data.SamplingRate", data=fs)
        f.create_dataset("SourcePosition", data=position)
        f["SourcePosition"].attrs["Type"] = "spherical"
    return path, ir, position


@pytest.mark.parametrize("sofa", [KEMAR, KU100])
def test_sofa_clockwise_labels_are_refused_or_negated_on_request(shared_data, sofa, tmp_path):
    path, ir, position = _negated_copy(shared_data / sofa, tmp_path / "clockwise.sofa")
    with pytest.raises(ValueError, match=r"clockwise\.sofa: azimuth labels look clockwise.*louder in 0 %.*"
                                         r"earlier in 0 %.*azimuth_convention='cw'"):
        SofaHead(path)
    for convention in ("cw", "auto"):
        with pytest.warns(UserWarning, match=r"clockwise\.sofa: azimuth labels negated"):
            head = SofaHead(path, azimuth_convention=convention)
        assert head.azimuth_flipped and head.azimuth_check.verdict == "ccw"
        assert head.azimuth_check.level_agree == head.azimuth_check.time_agree == 1.0
        # measurement k now sits at the file's azimuth negated back, i.e. the original direction
        k = int(np.argmin(np.abs(position[:, 1]) + np.abs(np.abs(position[:, 0]) - 90)))
        original = _direction(-position[k, 0], position[k, 1])
        torch.testing.assert_close(head.hrirs(original, head.native_fs_hz)[0], torch.from_numpy(ir[k]).float())
    # the shared file itself is counter-clockwise: declaring it clockwise is refused, "auto" leaves it
    with pytest.raises(ValueError, match=r"after negating.*look counter-clockwise.*azimuth_convention='ccw'"):
        SofaHead(shared_data / sofa, azimuth_convention="cw")
    assert not SofaHead(shared_data / sofa, azimuth_convention="auto").azimuth_flipped


def test_sofa_sign_check_conflicting_or_missing_cues(tmp_path):
    # The ear on the source's side is louder but later: the two cues contradict each other.
    azimuth = np.deg2rad(np.linspace(0, 360, 8, endpoint=False))
    left = np.sin(azimuth) > 0
    m = np.arange(8)
    ir = np.zeros((8, 2, 32))
    ir[m, 0, np.where(left, 8, 4)] = 1 + 0.9 * np.sin(azimuth)
    ir[m, 1, np.where(left, 4, 8)] = 1 - 0.9 * np.sin(azimuth)
    with pytest.raises(ValueError, match=r"conflict\.sofa: the interaural level and time cues disagree"):
        SofaHead(write_sofa(tmp_path / "conflict.sofa", ir))
    median = _toy_ir()
    median[:, 1] = median[:, 0]  # no interaural difference at all
    with pytest.warns(UserWarning, match=r"median\.sofa: azimuth sign not verified"):
        SofaHead(write_sofa(tmp_path / "median.sofa", median))


def test_sofa_not_a_sofa_file_is_named(tmp_path):
    path = tmp_path / "notes.sofa"
    path.write_text("not a SOFA file")
    with pytest.raises(ValueError, match=r"notes\.sofa: not a SOFA file.*Data\.IR"):
        SofaHead(path)
    with pytest.raises(ValueError, match="azimuth_convention"):
        SofaHead(path, azimuth_convention="clockwise")


def test_sofa_listener_position_and_view(tmp_path):
    # A room file: the listener stands at (2, 3, 1.5) looking along +y, sources given in room coordinates.
    ir = _toy_ir()
    path = write_sofa(tmp_path / "room.sofa", ir)  # sources at listener-frame azimuths 0, 45, ... 2 m
    with h5py.File(path, "r+") as f:
        local = spherical_to_cartesian(*torch.from_numpy(f["SourcePosition"][()]).unbind(1)).numpy()
        room = np.stack([-local[:, 1], local[:, 0], local[:, 2]], axis=1) + [2.0, 3.0, 1.5]  # rotate by +90
        del f["SourcePosition"]
        f.create_dataset("SourcePosition", data=room)
        f["SourcePosition"].attrs["Type"] = "cartesian"
        f.create_dataset("ListenerPosition", data=np.array([[2.0, 3.0, 1.5]]))
        f.create_dataset("ListenerView", data=np.array([[0.0, 1.0, 0.0]]))
        f["ListenerView"].attrs["Type"] = "cartesian"
    head = SofaHead(path)
    torch.testing.assert_close(head.table(48000).directions, torch.from_numpy(local / 2.0))
    torch.testing.assert_close(head.distances_m, torch.full((8,), 2.0, dtype=torch.float64))


def test_sofa_cartesian_positions_and_delays(tmp_path):
    ir = _toy_ir()
    spherical = SofaHead(write_sofa(tmp_path / "spherical.sofa", ir)).table(48000)
    cartesian = SofaHead(write_sofa(tmp_path / "cartesian.sofa", ir, cartesian=True,
                                     delay=[[3.0, 0.0]])).table(48000)
    torch.testing.assert_close(cartesian.directions, spherical.directions)
    torch.testing.assert_close(cartesian.hrirs[:, 0, 3:], spherical.hrirs[:, 0])  # left ear 3 samples later
    torch.testing.assert_close(cartesian.hrirs[:, 1, :32], spherical.hrirs[:, 1])


def test_sofa_knn_blends_the_three_nearest(tmp_path):
    path = write_sofa(tmp_path / "toy.sofa", _toy_ir(m=4))  # azimuths 0, 90, 180, 270
    head = SofaHead(path, interpolation="knn")
    hrirs = head.table(48000).hrirs
    weights = torch.tensor([1 / 30, 1 / 60, 1 / 120])  # 30 deg: 30 from 0, 60 from 90, 120 from 270
    expected = (weights[:, None, None] * hrirs[[0, 1, 3]]).sum(0) / weights.sum()
    torch.testing.assert_close(head.hrirs(_direction(30), 48000)[0], expected)


def test_make_head(shared_data):
    assert isinstance(make_head("sphere"), SphereHead)
    head = make_head(str(shared_data / KEMAR))
    assert isinstance(head, SofaHead) and head.name == "sofa:mit_kemar_normal_pinna"
    with pytest.raises(ValueError, match=r"unknown head 'cube'.*sphere.*\.sofa"):
        make_head("cube")


@pytest.mark.parametrize("kwargs, field", [({"radius_m": 0.0}, "radius_m"), ({"ear_azimuth_deg": 180.0},
                                           "ear_azimuth_deg"), ({"hrir_length_s": 0.001}, "hrir_length_s")])
def test_sphere_rejects_bad_config(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SphereHead(**kwargs)


# --- diffuse-field equalisation ------------------------------------------------------------------------

CIPIC_SUBJECT = "hrtf/cipic/subject_003.mat"
EQ_CHECK_BANDS_HZ = [250 * 2 ** (k / 3) for k in range(15)]  # third-octave centres 250 Hz .. 6.3 kHz


def _diffuse_field_band_levels_db(head, fs_hz: int = 16000) -> np.ndarray:
    """Third-octave band power (dB) averaged over near-uniform directions above -40 deg elevation (CIPIC has
    none below -45) and both ears, relative to the mean of the bands up to 1 kHz: a diffuse field measured
    through the head's lookup at the scene rate, independently of how the equaliser was designed."""
    from spatial_alm.coordinates import fibonacci_sphere

    directions = fibonacci_sphere(1000)
    directions = directions[directions[:, 2] > math.sin(math.radians(-40))]
    power = torch.fft.rfft(head.hrirs(directions, fs_hz).double(), n=8192).abs().square().mean(dim=(0, 1))
    frequencies = torch.fft.rfftfreq(8192, 1.0 / fs_hz)
    levels_db = np.array([10 * math.log10(float(power[(frequencies >= f * 2 ** (-1 / 6))
                                                      & (frequencies < f * 2 ** (1 / 6))].mean()))
                          for f in EQ_CHECK_BANDS_HZ])
    return levels_db - levels_db[np.array(EQ_CHECK_BANDS_HZ) <= 1000].mean()


@pytest.fixture(scope="module", params=["cipic", "kemar"])
def raw_and_equalised(request):
    """A raw-measured head (a CIPIC subject: blocked ear canal; the MIT KEMAR) as measured and equalised."""
    from spatial_alm.acoustics.cipic import CipicHead

    path = request.getfixturevalue("shared_data") / {"cipic": CIPIC_SUBJECT, "kemar": KEMAR}[request.param]
    if not path.is_file():
        pytest.skip(f"head file not found at {path}")
    head_class = CipicHead if request.param == "cipic" else SofaHead
    return head_class(path), head_class(path, equalisation="diffuse_field")


def test_diffuse_field_equalisation_flattens_the_diffuse_field(raw_and_equalised):
    raw, equalised = raw_and_equalised
    raw_db, equalised_db = _diffuse_field_band_levels_db(raw), _diffuse_field_band_levels_db(equalised)
    assert np.abs(raw_db).max() > 5.0, raw_db  # the ear canal's / the microphone's colouring, as measured
    assert np.abs(equalised_db).max() < 1.5, equalised_db


def test_diffuse_field_equalisation_keeps_every_interaural_difference(raw_and_equalised):
    """One filter for both ears: for every measured direction (at the measurements' own rate, before any
    resampling) the interaural transfer function H_left / H_right, level and phase, frequency by frequency."""
    raw, equalised = raw_and_equalised
    fs = raw.native_fs_hz
    raw_table, equalised_table = raw.table(fs).hrirs, equalised.table(fs).hrirs
    for index in range(0, raw_table.shape[0], max(1, raw_table.shape[0] // 40)):
        ratios = []
        for pair in (raw_table[index], equalised_table[index]):
            spectra = torch.fft.rfft(pair.double(), n=1024)  # (2, F)
            ratios.append(spectra[0] / spectra[1])
        power = spectra.abs().square()
        audible = (power > power.max() * 1e-4).all(dim=0)  # both ears within 40 dB of the peak
        level_db = 20 * torch.log10((ratios[1] / ratios[0]).abs())
        phase = torch.angle(ratios[1] / ratios[0])
        assert float(level_db[audible].abs().max()) < 0.05 and float(phase[audible].abs().max()) < 0.01


def test_diffuse_field_equaliser_is_causal_and_short(raw_and_equalised):
    """Minimum phase: the equalised head's onset stays where it was; the filter's energy is at its start."""
    raw, equalised = raw_and_equalised
    assert abs(equalised.table(16000).onset_samples - raw.table(16000).onset_samples) <= 1
    energy = equalised.equaliser.square().cumsum(0)
    assert float(energy[round(0.001 * raw.native_fs_hz)] / energy[-1]) > 0.99


def test_an_already_equalised_head_changes_little(shared_data):
    """The FHK KU100 set is published diffuse-field equalised: within a few dB of flat already."""
    equalised = SofaHead(shared_data / KU100, equalisation="diffuse_field")
    gain_db = 20 * torch.log10(torch.fft.rfft(equalised.equaliser, n=4096).abs())
    frequencies = torch.fft.rfftfreq(4096, 1.0 / equalised.native_fs_hz)
    assert float(gain_db[(frequencies >= 200) & (frequencies <= 8000)].abs().max()) < 5.0


def test_unknown_or_unmeasured_equalisation_is_refused(shared_data):
    with pytest.raises(ValueError, match="equalisation must be one of"):
        SofaHead(shared_data / KU100, equalisation="free_field")
    with pytest.raises(ValueError, match="applies to measured heads only, not 'sphere'"):
        make_head("sphere", "diffuse_field")
    assert make_head(str(shared_data / KU100), "diffuse_field").equaliser is not None
