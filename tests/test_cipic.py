"""CIPIC reader: interaural-polar coordinates land where the documentation puts them, the lateral sign agrees
with the data (a left source is louder and earlier in the left ear), and bad files name the file and field."""

import numpy as np
import pytest
import scipy.io
import torch

from spatial_alm.acoustics.cipic import (
    CIPIC_LATERAL_DEG,
    CIPIC_POLAR_DEG,
    CipicHead,
    cipic_grid,
    cipic_to_listener,
    listener_to_cipic,
)
from spatial_alm.acoustics.heads import make_head
from spatial_alm.coordinates import cartesian_to_spherical, fibonacci_sphere, spherical_to_cartesian

CIPIC_DIR = "hrtf/cipic"


def write_toy_cipic(path, gain: float = 0.6, swap_ears: bool = False):
    """A CIPIC-layout file whose ears hear a direction's left component y as louder (1 + gain y) and
    earlier (12 y samples) on the left: what a head does, with CIPIC's sign (negative lateral = left)."""
    y = cipic_grid()[:, 1].numpy().reshape(25, 50)
    taps = np.arange(200)
    hrir = {}
    for field, side in (("hrir_l", 1.0), ("hrir_r", -1.0)):
        onset = np.rint(40 - 12 * side * y)[..., None]
        hrir[field] = (1 + gain * side * y)[..., None] * np.where(taps >= onset, 0.7 ** (taps - onset), 0.0)
    if swap_ears:
        hrir = {"hrir_l": hrir["hrir_r"], "hrir_r": hrir["hrir_l"]}
    scipy.io.savemat(path, {**hrir, "name": path.stem})
    return path


def _spherical(lateral, polar):
    az, el, _ = cartesian_to_spherical(cipic_to_listener(lateral, polar))
    return float(az), float(el)


@pytest.mark.parametrize("lateral, polar, azimuth, elevation", [
    (0, 0, 0, 0),  # front
    (0, 90, None, 90),  # above (azimuth undefined)
    (0, 180, 180, 0),  # behind
    (-45, 0, 45, 0),  # 45 degrees to the left (CIPIC: negative lateral = left)
    (45, 0, -45, 0),  # 45 degrees to the right
    (-80, 180, 100, 0),  # left, behind the interaural axis
    (0, -45, 0, -45),  # front, below
    (0, 225, 180, -45),  # behind, below
])
def test_coordinates_land_where_the_documentation_puts_them(lateral, polar, azimuth, elevation):
    az, el = _spherical(lateral, polar)
    assert el == pytest.approx(elevation, abs=1e-9)
    if azimuth is not None:
        assert az == pytest.approx(azimuth, abs=1e-9)


def test_conversion_round_trips():
    lat, pol = listener_to_cipic(cipic_grid())
    grid_lat, grid_pol = torch.meshgrid(torch.tensor(CIPIC_LATERAL_DEG, dtype=torch.float64),
                                        torch.tensor(CIPIC_POLAR_DEG, dtype=torch.float64), indexing="ij")
    torch.testing.assert_close(lat, grid_lat.reshape(-1), atol=1e-9, rtol=0)
    torch.testing.assert_close(pol, grid_pol.reshape(-1), atol=1e-9, rtol=0)
    directions = fibonacci_sphere(500)
    torch.testing.assert_close(cipic_to_listener(*listener_to_cipic(directions)), directions, atol=1e-12, rtol=0)
    # the 1250 measured directions are distinct unit vectors
    grid = cipic_grid()
    torch.testing.assert_close(torch.linalg.vector_norm(grid, dim=1), torch.ones(1250, dtype=torch.float64))
    assert torch.unique(torch.round(grid * 1e6), dim=0).shape[0] == 1250


def test_toy_file_reads_with_the_documented_sign(tmp_path):
    head = CipicHead(write_toy_cipic(tmp_path / "subject_900.mat"))
    assert head.name == "cipic:subject_900" and head.azimuth_check.verdict == "ccw" and head.left_is_negative
    # the nearest lookup returns the file's HRIR of that lateral/polar index (-45: index 3; polar 0: index 8)
    data = scipy.io.loadmat(tmp_path / "subject_900.mat")
    pair = head.hrirs(cipic_to_listener(-45.0, 0.0)[None], 44100)[0]
    np.testing.assert_allclose(pair[0].numpy(), data["hrir_l"][3, 8], atol=1e-6)
    np.testing.assert_allclose(pair[1].numpy(), data["hrir_r"][3, 8], atol=1e-6)


def test_swapped_ears_are_refused_or_negated_on_request(tmp_path):
    path = write_toy_cipic(tmp_path / "subject_901.mat", swap_ears=True)
    with pytest.raises(ValueError, match=r"subject_901\.mat.*hrir_l.*louder and earlier"):
        CipicHead(path)
    with pytest.warns(UserWarning, match="negated"):
        head = CipicHead(path, lateral_convention="auto")
    assert not head.left_is_negative and head.azimuth_check.verdict == "ccw"


@pytest.mark.parametrize("content, field", [
    ({"hrir_l": np.zeros((25, 50, 200)) + 1.0}, "hrir_r"),  # missing
    ({"hrir_l": np.ones((25, 49, 200)), "hrir_r": np.ones((25, 49, 200))}, "hrir_l"),  # bad shape
    ({"hrir_l": np.full((25, 50, 200), np.nan), "hrir_r": np.ones((25, 50, 200))}, "hrir_l"),  # not finite
    ({"hrir_l": np.ones((25, 50, 200)), "hrir_r": np.zeros((25, 50, 200))}, "hrir_r"),  # silent
    ({"hrir_l": np.ones((25, 50, 200)), "hrir_r": np.ones((25, 50, 100))}, "hrir_r"),  # shapes differ
])
def test_bad_file_names_the_file_and_field(tmp_path, content, field):
    path = tmp_path / "subject_bad.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(ValueError, match=rf"subject_bad\.mat: CIPIC field '{field}'"):
        CipicHead(path)


def test_not_a_matlab_file_is_named(tmp_path):
    path = tmp_path / "subject_text.mat"
    path.write_text("not a MATLAB file")
    with pytest.raises(ValueError, match=r"subject_text\.mat: not a CIPIC subject file"):
        CipicHead(path)
    with pytest.raises(FileNotFoundError, match="missing.mat"):
        CipicHead(tmp_path / "missing.mat")


def _subjects(shared_data):
    paths = sorted((shared_data / CIPIC_DIR).glob("subject_*.mat"))
    if not paths:
        pytest.skip(f"no CIPIC subject files in {shared_data / CIPIC_DIR}")
    return paths


def test_every_shared_subject_hears_a_left_source_louder_and_earlier_on_the_left(shared_data):
    fs = 44100
    for path in _subjects(shared_data):
        head = CipicHead(path)
        assert head.azimuth_check.verdict == "ccw", path
        for azimuth in (30.0, 60.0, 90.0, 120.0):
            for side in (1.0, -1.0):
                pair = head.hrirs(spherical_to_cartesian(torch.tensor([side * azimuth]), 0.0), fs)[0].double()
                energy = (pair ** 2).sum(-1)
                near, far = (0, 1) if side > 0 else (1, 0)
                assert energy[near] > 2 * energy[far], (path.name, side * azimuth)
                onset = torch.argmax((pair.abs() >= 0.5 * pair.abs().amax(dim=1, keepdim=True)).int(), dim=1)
                assert onset[near] < onset[far], (path.name, side * azimuth)


def test_every_shared_subject_is_duller_behind_than_in_front(shared_data):
    # Polar elevation 0 is documented as the front, 180 as the back: the pinnae shade rear sources at high
    # frequencies, so every measured subject is louder at 4-16 kHz from the front of the median plane.
    n = 512
    freqs = np.fft.rfftfreq(n, 1 / 44100)
    band = (freqs >= 4000) & (freqs <= 16000)
    for path in _subjects(shared_data):
        head = CipicHead(path)
        pairs = head.hrirs(cipic_to_listener(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 180.0])), 44100)
        level = (np.abs(np.fft.rfft(pairs.double().numpy(), n=n)) ** 2)[..., band].mean(axis=(1, 2))
        assert level[0] > level[1], path.name


def test_shared_subject_resamples_and_loads_through_make_head(shared_data):
    path = _subjects(shared_data)[0]
    head = make_head(str(path))
    assert isinstance(head, CipicHead) and head.name == f"cipic:{path.stem}"
    table = head.table(16000)
    assert table.hrirs.shape[:2] == (1250, 2) and table.fs_hz == 16000
    left = head.hrirs(spherical_to_cartesian(torch.tensor([90.0]), 0.0), 16000)[0].double()
    assert (left[0] ** 2).sum() > 4 * (left[1] ** 2).sum()
