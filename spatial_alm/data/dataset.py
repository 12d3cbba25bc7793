"""torch Datasets over a sharded dataset folder; safe with ``DataLoader(num_workers > 0)``.

Each worker process opens its own HDF5 handles lazily (see :class:`DatasetReader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from spatial_alm.data.reader import DatasetReader


class SpatialSceneDataset(Dataset):
    """One item per scene.

    Item keys (K = ``index.max_sources``; padding NaN for floats, "" for labels):
        audio: (C, T) float32 tensor in [-1, 1].
        scene_index: global scene index (int).
        num_sources: int.
        azimuth_deg, elevation_deg, distance_m: (K,) float32 tensors, listener frame.
        level_db: (K,) float32 tensor, level in the mix relative to the loudest source (0 dB).
        labels: list of K class names.
    """

    def __init__(self, out_dir: str | Path):
        self.reader = DatasetReader(out_dir)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> dict:
        src = self.reader.sources(i)
        return {
            "audio": torch.from_numpy(self.reader.audio(i)),
            "scene_index": int(i),
            "num_sources": src["num_sources"],
            "azimuth_deg": torch.from_numpy(src["source_azimuth_deg"]),
            "elevation_deg": torch.from_numpy(src["source_elevation_deg"]),
            "distance_m": torch.from_numpy(src["source_distance_m"]),
            "level_db": torch.from_numpy(src["source_level_db"]),
            "labels": src["source_label"],
        }


class SpatialQADataset(Dataset):
    """One item per question-answer pair, optionally only some question types (curriculum).

    Item keys: ``audio`` ((C, T) float32 tensor), ``scene_index``, ``question_type``,
    ``question``, ``answer``, ``target`` (dict; batch with a collate function that keeps it, e.g.
    ``collate_fn=list``) and ``source_index`` (int, -1 for none).
    """

    def __init__(self, out_dir: str | Path, question_types: Iterable[str] | None = None):
        self.reader = DatasetReader(out_dir)
        if question_types is None:
            self.qa_indices = np.arange(self.reader.num_qa)
        else:
            wanted = sorted(set(question_types))
            self.qa_indices = np.flatnonzero(np.isin(self.reader.qa_types(), wanted))
            self.reader.close()  # no HDF5 handle may cross into forked workers

    def __len__(self) -> int:
        return len(self.qa_indices)

    def __getitem__(self, j: int) -> dict:
        item = self.reader.qa_pair(int(self.qa_indices[j]))
        item["audio"] = torch.from_numpy(self.reader.audio(item["scene_index"]))
        if item["source_index"] is None:
            item["source_index"] = -1
        return item
