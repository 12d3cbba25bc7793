"""Channel-swap augmentation: permute the receiver's channels and move the labelled directions to match.

DCASE SELD's "audio channel swapping" (Mazzon et al. 2019; Wang et al. 2021), derived here from the
receiver geometry instead of a hand-written table. Let R be an orthogonal map of the listener frame
that takes every channel position onto a channel position, ``R p_c = p_sigma(c)``. Transforming the
whole scene by R (sources, room: a shoebox stays a shoebox for the maps below) leaves the receiver in
place, so the transformed recording is the original one with channel c moved to channel sigma(c),
and every source direction u becomes ``R u``. Each swap thus turns one rendered scene into another
valid one with known labels, for free.

Candidate maps keep the vertical axis vertical (the floor stays a floor or becomes the ceiling):
rotations by multiples of 90 degrees about z, optionally composed with the left/right mirror
(y -> -y) and the up/down mirror (z -> -z). Among the maps giving the same channel permutation the
first is kept (no up/down mirror before one, fewer quarter turns first, no left/right mirror before
one), so a head's ear swap is the left/right mirror rather than the half turn. A map that leaves
the channels where they are (e.g. the front/back mirror of a head) is dropped: it would change the
labels without changing the audio. Results:

- 4-mic tetrahedral array (DCASE MIC format): 8 swaps (identity included), the DCASE set.
- binaural head: 2 (identity and the left/right mirror, azimuth -> -azimuth). Exact for the
  rigid-sphere head; for measured heads (SOFA) it assumes left/right symmetry, which holds roughly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from spatial_alm.acoustics.arrays import make_array
from spatial_alm.coordinates import cartesian_to_spherical, spherical_to_cartesian
from spatial_alm.scenes.recipe import ReceiverConfig

POSITION_TOLERANCE = 1e-3  # of the largest channel distance from the centre


@dataclass(frozen=True)
class ChannelSymmetry:
    """One swap: output channel c is input channel ``source_channel[c]``; directions u -> ``matrix`` @ u."""

    source_channel: tuple[int, ...]
    matrix: torch.Tensor  # (3, 3) float64, orthogonal


def _candidate_maps() -> list[torch.Tensor]:
    maps = []
    for flip_z in (1.0, -1.0):
        for quarter_turns in range(4):
            c, s = round(math.cos(quarter_turns * math.pi / 2)), round(math.sin(quarter_turns * math.pi / 2))
            rotation = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
            for mirror_y in (1.0, -1.0):
                maps.append(rotation @ torch.diag(torch.tensor([1.0, mirror_y, flip_z], dtype=torch.float64)))
    return maps


def receiver_symmetries(positions_m) -> list[ChannelSymmetry]:
    """The channel swaps of a receiver with channel positions (C, 3) in metres (listener frame, centred
    on the receiver); identity first."""
    positions = torch.as_tensor(positions_m, dtype=torch.float64)
    if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] < 2:
        raise ValueError(f"positions_m must have shape (C >= 2, 3), got {tuple(positions.shape)}")
    tolerance = POSITION_TOLERANCE * float(torch.linalg.vector_norm(positions, dim=1).max())
    found: dict[tuple[int, ...], ChannelSymmetry] = {}
    for matrix in _candidate_maps():
        distance = torch.cdist(positions @ matrix.T, positions)  # (C, C): |R p_c - p_j|
        nearest = distance.argmin(dim=1)
        if not (distance.min(dim=1).values < tolerance).all() or len(set(nearest.tolist())) != len(positions):
            continue
        sigma = nearest.tolist()  # input channel c goes to output channel sigma[c]
        source_channel = tuple(sigma.index(c) for c in range(len(sigma)))
        if source_channel not in found:
            found[source_channel] = ChannelSymmetry(source_channel, matrix)
    return list(found.values())


def head_ear_positions() -> torch.Tensor:
    """Nominal ear positions (2, 3) of a binaural head: channel 0 left (+y), 1 right (-y)."""
    return torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64)


def channel_positions(receiver: ReceiverConfig) -> torch.Tensor:
    """Channel positions (C, 3) of a recipe's receiver: the array's offsets, or the nominal ears of a head."""
    return make_array(receiver.array).offsets_m if receiver.type == "array" else head_ear_positions()


def transform_directions(matrix: torch.Tensor, azimuth_deg, elevation_deg) -> tuple[torch.Tensor, torch.Tensor]:
    """Azimuths and elevations (degrees, NaN for padding kept NaN) moved by an orthogonal map: ``matrix``
    (3, 3) for directions of any shape, or (B, 3, 3), one map per row of (B, K) directions."""
    xyz = spherical_to_cartesian(azimuth_deg, elevation_deg)  # (..., 3)
    xyz = xyz @ matrix.to(xyz).transpose(-1, -2)  # the map on the directions' device and dtype
    azimuth, elevation, _ = cartesian_to_spherical(xyz)
    return azimuth, elevation


class ChannelSwap:
    """Random channel swaps for a batch: each example gets one of ``symmetries`` uniformly at random."""

    def __init__(self, symmetries: list[ChannelSymmetry]):
        if not symmetries:
            raise ValueError("symmetries: empty; allowed: at least the identity (receiver_symmetries)")
        self.symmetries = symmetries
        self.matrices = torch.stack([symmetry.matrix for symmetry in symmetries])  # (S, 3, 3) float64

    def __call__(self, audio: torch.Tensor, scenes: list[dict],
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[dict]]:
        """Swapped audio (B, C, T) and copies of the scene dicts (keys ``azimuth_deg``, ``elevation_deg``:
        (K,) per source) with moved directions; the inputs are not modified."""
        choice = torch.randint(len(self.symmetries), (audio.shape[0],), generator=generator).tolist()
        index = torch.tensor([self.symmetries[k].source_channel for k in choice], device=audio.device)  # (B, C)
        swapped = torch.gather(audio, 1, index[..., None].expand(-1, -1, audio.shape[-1]))
        # the whole batch's directions in one transform: (B, K) padded with NaN, K the most sources of a scene
        azimuth = [torch.as_tensor(scene["azimuth_deg"]) for scene in scenes]
        elevation = [torch.as_tensor(scene["elevation_deg"]) for scene in scenes]
        padded = [pad_sequence([d.double() for d in directions], batch_first=True, padding_value=math.nan)
                  for directions in (azimuth, elevation)]
        moved_azimuth, moved_elevation = transform_directions(self.matrices[choice], *padded)
        moved = [{**scene, "azimuth_deg": moved_azimuth[b, :len(a)].to(a.dtype),
                  "elevation_deg": moved_elevation[b, :len(a)].to(a.dtype)}
                 for b, (scene, a) in enumerate(zip(scenes, azimuth))]
        return swapped, moved
