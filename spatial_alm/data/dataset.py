"""torch Datasets over a sharded dataset folder; safe with ``DataLoader(num_workers > 0)``.

Each worker process opens its own HDF5 handles lazily (see :class:`DatasetReader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from spatial_alm.coordinates import ALL_AXES
from spatial_alm.data.reader import DatasetReader
from spatial_alm.qa import make_qa
from spatial_alm.scenes.render import receiver_axes


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


class RedrawnQADataset(SpatialQADataset):
    """:class:`SpatialQADataset` indexed by ``(j, seed)``: pair ``j`` with its question drawn anew.

    A fine-tuning augmentation: ``make_qa`` of the stored pair's type about the same scene, with
    ``numpy.random.default_rng(seed)``, picks a new template, named source, relation, probed class and
    region, and yes/no draw, so training sees more distinct questions than the dataset stores. Answer,
    target and source index come with the new question (true by construction). The stored pair is kept
    when the scene offers no question of that type on this draw. ``label_vocabulary``: classes that
    negative probes may name when absent from the scene (e.g. every class of the dataset). Yes/no
    questions ask only about the axes the scene's receiver resolves (``scenes.receiver_axes``), as the
    generator does, unless the dataset's recipe says ``qa.unresolvable_axes: ask`` (recipes older than
    that switch are read as its default, skip).
    """

    def __init__(self, out_dir: str | Path, label_vocabulary: Iterable[str],
                 question_types: Iterable[str] | None = None):
        super().__init__(out_dir, question_types)
        self.label_vocabulary = tuple(label_vocabulary)
        self.ask_all_axes = (self.reader.index.recipe.get("qa") or {}).get("unresolvable_axes", "skip") == "ask"

    def __getitem__(self, key: tuple[int, int]) -> dict:
        j, seed = key
        item = super().__getitem__(j)
        meta = self.reader.meta(item["scene_index"])
        pair = make_qa(item["question_type"], meta, np.random.default_rng(seed), label_vocabulary=self.label_vocabulary,
                       axes=ALL_AXES if self.ask_all_axes else receiver_axes(meta.receiver))
        if pair is not None:
            item.update(question=pair.question, answer=pair.answer, target=pair.target,
                        source_index=-1 if pair.source_index is None else pair.source_index)
        return item
