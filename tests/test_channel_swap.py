"""Channel-swap augmentation against physics: plane-wave delays, the rigid-sphere head formula, and
pyroomacoustics image-source RIRs of the transformed room."""

import numpy as np
import pyroomacoustics as pra
import pytest
import torch

from spatial_alm.acoustics.arrays import make_array
from spatial_alm.acoustics.heads import rigid_sphere_response
from spatial_alm.coordinates import spherical_to_cartesian
from spatial_alm.training.channel_swap import (
    ChannelSwap,
    head_ear_positions,
    receiver_symmetries,
    transform_directions,
)
from spatial_alm.training.pretrain import PretrainConfig, pretrain

SPEED_OF_SOUND = 343.0
DIRECTIONS = [(30.0, 10.0), (-120.0, -35.0), (95.0, 40.0), (175.0, 0.0)]  # (azimuth, elevation) degrees


def test_symmetry_counts_and_orthogonality():
    tetra = receiver_symmetries(make_array("tetrahedral").offsets_m)
    assert len(tetra) == 8  # the DCASE MIC-format channel swaps
    assert tetra[0].source_channel == (0, 1, 2, 3) and torch.equal(tetra[0].matrix, torch.eye(3, dtype=torch.float64))
    for s in tetra:
        assert torch.allclose(s.matrix @ s.matrix.T, torch.eye(3, dtype=torch.float64))
    head = receiver_symmetries(head_ear_positions())
    assert [s.source_channel for s in head] == [(0, 1), (1, 0)]
    assert torch.equal(head[1].matrix, torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)))
    az, el = transform_directions(head[1].matrix, torch.tensor([30.0, 150.0, float("nan")]),
                                  torch.tensor([10.0, -5.0, 0.0]))
    assert torch.allclose(az[:2], torch.tensor([-30.0, -150.0], dtype=torch.float64))
    assert torch.allclose(el[:2], torch.tensor([10.0, -5.0], dtype=torch.float64)) and torch.isnan(az[2])
    with pytest.raises(ValueError, match="shape"):
        receiver_symmetries(torch.zeros(3))
    with pytest.raises(ValueError, match="at least the identity"):
        ChannelSwap([])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])
def test_transform_directions_on_the_directions_device(device):
    """Directions on the training device (pretrain-encoder's batches on CUDA) are mirrored there: the
    symmetry's CPU matrix follows them."""
    mirror = receiver_symmetries(head_ear_positions())[1]
    az, el = transform_directions(mirror.matrix, torch.tensor([30.0, -120.0], device=device),
                                  torch.tensor([10.0, -35.0], device=device))
    assert az.device.type == device and el.device.type == device
    assert torch.allclose(az.cpu(), torch.tensor([-30.0, 120.0], dtype=az.dtype))
    assert torch.allclose(el.cpu(), torch.tensor([10.0, -35.0], dtype=el.dtype))


@pytest.mark.parametrize("array", ["tetrahedral", "circular6", "linear4"])
def test_swapped_plane_wave_delays_match_the_moved_direction(array):
    """Free field: channel c hears a plane wave from u with delay -p_c . u / c; after the swap, output
    channel j (input channel source_channel[j]) must carry the delay of channel j for R u."""
    positions = make_array(array).offsets_m
    for symmetry in receiver_symmetries(positions):
        for az, el in DIRECTIONS:
            u = spherical_to_cartesian(az, el)
            moved = spherical_to_cartesian(*transform_directions(symmetry.matrix, az, el))
            delays = -(positions @ u) / SPEED_OF_SOUND
            swapped = delays[list(symmetry.source_channel)]
            assert torch.allclose(swapped, -(positions @ moved) / SPEED_OF_SOUND, atol=1e-9)


def test_swapped_sphere_head_matches_the_mirrored_direction():
    """Duda-Martens rigid sphere: left/right swapped ear spectra of u equal the ear spectra of the mirrored u."""
    mirror = receiver_symmetries(head_ear_positions())[1]
    ears = head_ear_positions()
    freqs = np.linspace(100.0, 8000.0, 40)
    for az, el in DIRECTIONS:
        u = spherical_to_cartesian(az, el)
        moved = spherical_to_cartesian(*transform_directions(mirror.matrix, az, el))

        def spectra(direction):
            return rigid_sphere_response(freqs, (ears @ direction).numpy(), 0.0875)  # (F, 2 ears)

        assert np.allclose(spectra(u)[:, list(mirror.source_channel)], spectra(moved), atol=1e-9)


def _pra_rirs(room_dim, receiver, mic_offsets, source, fs=16000):
    room = pra.ShoeBox(room_dim, fs=fs, materials=pra.Material(0.3), max_order=3, air_absorption=False)
    room.add_source(source)
    room.add_microphone_array((receiver[None] + mic_offsets).T)
    room.compute_rir()
    length = min(len(r[0]) for r in room.rir)
    return np.stack([r[0][:length] for r in room.rir])


def test_swapped_room_rirs_match_the_transformed_room():
    """Reverberant: moving the whole scene (room, source) by R about the array centre and rendering with
    pyroomacoustics gives the original RIRs with the channels swapped."""
    offsets = make_array("tetrahedral").offsets_m.numpy()
    room_dim, receiver = np.array([5.0, 4.0, 3.0]), np.array([2.1, 1.7, 1.3])
    source = receiver + 1.8 * spherical_to_cartesian(40.0, 20.0).numpy()
    reference = _pra_rirs(room_dim, receiver, offsets, source)
    for symmetry in receiver_symmetries(offsets):
        R = symmetry.matrix.numpy()
        corners = np.stack([-receiver, room_dim - receiver]) @ R.T  # room box relative to the array centre
        new_receiver = -corners.min(axis=0)
        new_dim = corners.max(axis=0) - corners.min(axis=0)
        moved = _pra_rirs(new_dim, new_receiver, offsets, new_receiver + R @ (source - receiver))
        n = min(reference.shape[1], moved.shape[1])
        swapped = reference[list(symmetry.source_channel), :n]
        assert np.abs(swapped - moved[:, :n]).max() < 1e-4 * np.abs(reference).max()


def test_channel_swap_moves_audio_and_labels_together():
    swap = ChannelSwap(receiver_symmetries(head_ear_positions()))
    audio = torch.stack([torch.stack([torch.full((5,), 1.0), torch.full((5,), 2.0)])] * 64)  # (64, 2, 5)
    scenes = [{"azimuth_deg": torch.tensor([60.0, float("nan")]), "elevation_deg": torch.tensor([5.0, float("nan")]),
               "labels": ["bell", ""]} for _ in range(64)]
    out_audio, out_scenes = swap(audio, scenes, torch.Generator().manual_seed(0))
    swapped = out_audio[:, 0, 0] == 2.0
    assert 0 < swapped.sum() < 64  # both choices drawn
    for k in range(64):
        expected = -60.0 if swapped[k] else 60.0
        assert out_scenes[k]["azimuth_deg"][0].item() == pytest.approx(expected)
        assert torch.isnan(out_scenes[k]["azimuth_deg"][1]) and out_scenes[k]["labels"] == ["bell", ""]
    assert scenes[0]["azimuth_deg"][0].item() == 60.0  # inputs untouched


def test_channel_swap_moves_each_scene_by_its_own_swap():
    """Tetrahedral array, scenes of 0-3 sources (float32, as the dataset gives them): each scene's
    directions move by the map of the channel permutation its audio got, source count and dtype kept."""
    symmetries = receiver_symmetries(make_array("tetrahedral").offsets_m)
    by_permutation = {s.source_channel: s for s in symmetries}
    swap = ChannelSwap(symmetries)
    audio = torch.arange(4.0)[None, :, None].expand(48, 4, 3).clone()  # channel c holds the value c
    generator = torch.Generator().manual_seed(1)
    scenes = [{"azimuth_deg": torch.rand(k % 4, generator=generator) * 360 - 180,
               "elevation_deg": torch.rand(k % 4, generator=generator) * 90 - 45} for k in range(48)]
    out_audio, out_scenes = swap(audio, scenes, torch.Generator().manual_seed(0))
    used = set()
    for k, (scene, moved) in enumerate(zip(scenes, out_scenes)):
        symmetry = by_permutation[tuple(int(c) for c in out_audio[k, :, 0])]
        used.add(symmetry.source_channel)
        azimuth, elevation = transform_directions(symmetry.matrix, scene["azimuth_deg"], scene["elevation_deg"])
        assert moved["azimuth_deg"].shape == (k % 4,) and moved["azimuth_deg"].dtype == torch.float32
        assert torch.allclose(moved["azimuth_deg"].double(), azimuth, atol=1e-4)
        assert torch.allclose(moved["elevation_deg"].double(), elevation, atol=1e-4)
    assert len(used) > 4  # most of the 8 swaps drawn


def test_pretrain_with_channel_swap(make_toy_dataset, tmp_path, capsys):
    config = {"preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
              "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [16, 8]},
              "batch_size": 8, "val_fraction": 0.25, "epochs": 1, "channel_swap": True}
    summary = pretrain(PretrainConfig.from_dict(config), make_toy_dataset(24), tmp_path / "run", progress=False)
    assert "channel swap: 2 receiver symmetries (sphere_head)" in capsys.readouterr().out
    assert np.isfinite(summary["history"][0]["loss"])

