"""Shared fixtures. Real data is read from ``../shared/data`` beside the repo, or from the folder
named by the ``SPATIAL_ALM_SHARED_DATA`` environment variable; tests that need it skip when absent."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from spatial_alm.coordinates import spherical_to_cartesian

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("SPATIAL_ALM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (set SPATIAL_ALM_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def make_toy_dataset(tmp_path_factory):
    """Factory ``make(num_scenes, seed=0)``: a dataset of 0.5 s scenes of the tiny binaural recipe,
    rendered by the real pipeline once per (num_scenes, seed) and shared by the session's tests."""
    from spatial_alm.data.generate import generate_dataset
    from spatial_alm.scenes import SceneRecipe

    made = {}

    def make(num_scenes: int, seed: int = 0) -> Path:
        if (num_scenes, seed) not in made:
            out = tmp_path_factory.mktemp(f"toy_{num_scenes}_{seed}")
            recipe = SceneRecipe.from_yaml(REPO_ROOT / "simulation" / "tiny_binaural.yaml", {"duration_s": 0.5})
            generate_dataset(recipe, out, seed=seed, num_scenes=num_scenes, num_shards=1, progress=False)
            made[num_scenes, seed] = out
        return made[num_scenes, seed]

    return make


def tiny_binaural_encoder():
    """An untrained binaural encoder at 16 kHz for 3 classes (dog, rain, siren): hop 10 ms, max_frames 64
    (a 0.63 s window), embed 32, depth 1; parameters drawn from torch's global RNG."""
    from spatial_alm.features import SpatialFeatureConfig, num_planes
    from spatial_alm.models import EncoderConfig, SpatialEncoderModel

    features = SpatialFeatureConfig(fs_hz=16000, n_fft=512, hop_length=160, n_mels=32)
    config = EncoderConfig.tiny(num_planes(features, 2), 3, n_mels=32, embed_dim=32, depth=1, num_heads=2,
                                patch_size=(8, 4), max_frames=64)
    return SpatialEncoderModel(features, config, 2, ["dog", "rain", "siren"])


def write_sofa(path, ir, fs=48000.0, receiver_y=(0.09, -0.09), cartesian=False, delay=None, omit=()):
    """A tiny SimpleFreeFieldHRIR-like file: ir (M, R, N), sources evenly spaced on the horizontal plane."""
    m = ir.shape[0]
    azimuth_deg = np.linspace(0, 360, m, endpoint=False)
    position = np.stack([azimuth_deg, np.zeros(m), np.full(m, 2.0)], axis=1)
    if cartesian:
        position = spherical_to_cartesian(*torch.from_numpy(position).unbind(1)).numpy()
    fields = {
        "Data.IR": ir,
        "Data.SamplingRate": np.array([fs]),
        "SourcePosition": position,
        "ReceiverPosition": np.array([[0.0, y, 0.0] for y in receiver_y])[:, :, None],
    }
    if delay is not None:
        fields["Data.Delay"] = np.asarray(delay, dtype=np.float64)
    with h5py.File(path, "w") as f:
        f.attrs["SOFAConventions"] = "SimpleFreeFieldHRIR"
        for name, value in fields.items():
            if name not in omit:
                f.create_dataset(name, data=value)
        if "SourcePosition" not in omit:
            f["SourcePosition"].attrs["Type"] = "cartesian" if cartesian else "spherical"
    return path
