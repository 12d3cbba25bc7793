"""Reading a sharded dataset by global scene index, checking it, summarising it, exporting WAVs.

HDF5 handles are opened lazily and belong to one process: after a fork (DataLoader workers) the
reader notices the new ``os.getpid()`` and reopens its files instead of sharing the parent's.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf

from spatial_alm.data.schema import (
    INDEX_FILENAME,
    QA_FIELDS,
    SCENE_FIELDS,
    SHARD_ATTRS,
    SUPPORTED_SCHEMA_VERSIONS,
    TMP_SUFFIX,
    DatasetIndex,
    ShardEntry,
    file_sha256,
    read_index,
)
from spatial_alm.qa.generator import SPECTRAL_CUE_FIELDS
from spatial_alm.scenes.metadata import SceneMeta
from spatial_alm.scenes.recipe import QAConfig


class DatasetReader:
    """Random access to the scenes of a dataset folder by global scene index ``0 <= i < N``.

    Example::

        reader = DatasetReader("datasets/out/binaural_small")
        audio, meta, qa = reader.scene(0)   # (C, T) float32 in [-1, 1], SceneMeta, list of dicts
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.index: DatasetIndex = read_index(self.out_dir)
        self._starts = [s.start for s in self.index.shards]
        self._qa_offsets = np.cumsum([0] + [s.num_qa for s in self.index.shards])
        self._pid: int | None = None
        self._files: dict[int, h5py.File] = {}
        self._qa_scene: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.index.num_scenes

    @property
    def num_qa(self) -> int:
        return int(self._qa_offsets[-1])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_pid=None, _files={}, _qa_scene={})
        return state

    def close(self) -> None:
        """Close this process's open shard files (they reopen on the next access)."""
        if self._pid == os.getpid():
            for f in self._files.values():
                f.close()
        self._files, self._qa_scene, self._pid = {}, {}, None

    def _shard(self, k: int) -> h5py.File:
        if self._pid != os.getpid():  # new process: never reuse a handle across fork
            self._files, self._qa_scene, self._pid = {}, {}, os.getpid()
        if k not in self._files:
            entry = self.index.shards[k]
            try:
                f = h5py.File(self.out_dir / entry.file, "r")
            except OSError as err:  # missing, truncated or not HDF5: name the file (h5py's message does not)
                raise ValueError(f"{self.out_dir / entry.file}: unreadable shard ({err}); `spatial-alm dataset "
                                 f"check {self.out_dir}` lists the problems") from err
            if not bool(f.attrs["complete"]):
                f.close()
                raise ValueError(f"{entry.file}: complete=False (interrupted write)")
            self._files[k] = f
            self._qa_scene[k] = f["qa_scene"][...]
        return self._files[k]

    def _locate(self, i: int) -> tuple[h5py.File, int, int]:
        """Global scene index -> (shard file, shard number, row)."""
        if not 0 <= i < len(self):
            raise IndexError(f"scene index {i} out of range [0, {len(self)})")
        k = bisect.bisect_right(self._starts, i) - 1
        f, row = self._shard(k), i - self._starts[k]
        if int(f["scene_index"][row]) != i:
            raise ValueError(f"{self.index.shards[k].file}: row {row} holds scene "
                             f"{int(f['scene_index'][row])}, expected {i}")
        return f, k, row

    def audio(self, i: int) -> np.ndarray:
        """(C, T) float32 audio of scene ``i`` in [-1, 1]."""
        f, _, row = self._locate(i)
        ds = f["audio"]
        return ds[row].astype(np.float32) / np.float32(ds.attrs["scale"])

    def meta(self, i: int) -> SceneMeta:
        f, _, row = self._locate(i)
        return SceneMeta.from_dict(json.loads(f["metadata_json"].asstr()[row]))

    def sources(self, i: int) -> dict:
        """Flat source arrays of scene ``i``, padded to ``index.max_sources`` (NaN / "")."""
        f, _, row = self._locate(i)
        k_max, k = self.index.max_sources, f["source_label"].shape[1]
        out = {"num_sources": int(f["num_sources"][row])}
        for name in ("source_azimuth_deg", "source_elevation_deg", "source_distance_m", "source_level_db"):
            values = np.full(k_max, np.nan, dtype=np.float32)
            values[:k] = f[name][row]
            out[name] = values
        out["source_label"] = list(f["source_label"].asstr()[row]) + [""] * (k_max - k)
        return out

    def qa(self, i: int) -> list[dict]:
        """QA pairs of scene ``i`` (see :meth:`qa_pair` for the keys, less ``scene_index``)."""
        f, k, row = self._locate(i)
        qa_scene = self._qa_scene[k]
        lo, hi = np.searchsorted(qa_scene, row, "left"), np.searchsorted(qa_scene, row, "right")
        return _qa_dicts(f, int(lo), int(hi))

    def scene(self, i: int) -> tuple[np.ndarray, SceneMeta, list[dict]]:
        """(audio (C, T) float32, metadata, QA pairs) of scene ``i``."""
        return self.audio(i), self.meta(i), self.qa(i)

    def qa_pair(self, j: int) -> dict:
        """QA pair ``j`` (global, shard by shard): ``scene_index``, ``question_type``,
        ``question``, ``answer``, ``target`` (dict) and ``source_index`` (int or None)."""
        if not 0 <= j < self.num_qa:
            raise IndexError(f"QA index {j} out of range [0, {self.num_qa})")
        k = int(np.searchsorted(self._qa_offsets, j, "right")) - 1
        f, row = self._shard(k), j - int(self._qa_offsets[k])
        (item,) = _qa_dicts(f, row, row + 1)
        item["scene_index"] = int(f["scene_index"][int(self._qa_scene[k][row])])
        return item

    def qa_types(self) -> np.ndarray:
        """(Q,) question type of every QA pair, in :meth:`qa_pair` order."""
        parts = [self._shard(k)["qa_type"].asstr()[...] for k in range(len(self.index.shards))]
        return np.concatenate(parts) if parts else np.array([], dtype=object)


def _qa_dicts(f: h5py.File, lo: int, hi: int) -> list[dict]:
    types, questions, answers, targets = (
        f[name].asstr()[lo:hi] for name in ("qa_type", "qa_question", "qa_answer", "qa_target_json")
    )
    source_index = f["qa_source_index"][lo:hi]
    return [
        {"question_type": t, "question": q, "answer": a, "target": json.loads(tj),
         "source_index": None if s < 0 else int(s)}
        for t, q, a, tj, s in zip(types, questions, answers, targets, source_index)
    ]


# -- checking ---------------------------------------------------------------------------------


def _check_shard(f: h5py.File, entry: ShardEntry, k: int, index: DatasetIndex) -> list[str]:
    """Problems of one open shard (messages without the file name)."""
    missing = [a for a in SHARD_ATTRS if a not in f.attrs]
    missing += [d for d in SCENE_FIELDS + QA_FIELDS if d not in f]
    if missing:
        return [f"missing fields {missing}"]
    problems = []
    if not bool(f.attrs["complete"]):
        problems.append("complete=False (interrupted write)")
    if int(f.attrs["schema_version"]) not in SUPPORTED_SCHEMA_VERSIONS:
        problems.append(f"schema_version={f.attrs['schema_version']} not in "
                        f"{SUPPORTED_SCHEMA_VERSIONS}")
    for attr, expected in (("shard_index", k), ("num_shards", index.num_shards),
                           ("fs_hz", index.fs_hz), ("num_channels", index.num_channels),
                           ("seed", index.seed)):
        if int(f.attrs[attr]) != expected:
            problems.append(f"{attr}={f.attrs[attr]} but index.json says {expected}")
    n = entry.stop - entry.start
    for name in SCENE_FIELDS:
        if f[name].shape[0] != n:
            problems.append(f"{name} has {f[name].shape[0]} rows, expected {n}")
    audio_shape = (n, index.num_channels, index.num_samples)
    if f["audio"].shape != audio_shape:
        problems.append(f"audio shape {f['audio'].shape}, expected {audio_shape}")
    scene_index = f["scene_index"][...]
    if len(scene_index) != len(np.unique(scene_index)):
        problems.append("scene_index has duplicates")
    if not np.array_equal(scene_index, np.arange(entry.start, entry.stop)):
        problems.append(
            f"scene_index does not cover exactly [{entry.start}, {entry.stop}) in order")
    unreadable = []
    for row in range(f["audio"].shape[0]):
        try:
            f["audio"][row]
        except (OSError, ValueError, RuntimeError):
            unreadable.append(row)
    if unreadable:
        problems.append(f"audio rows unreadable: {len(unreadable)} (first {unreadable[0]})")
    q = f["qa_scene"].shape[0]
    for name in QA_FIELDS:
        if f[name].shape[0] != q:
            problems.append(f"{name} has {f[name].shape[0]} rows, expected {q}")
    qa_scene = f["qa_scene"][...]
    if q and (qa_scene.min() < 0 or qa_scene.max() >= f["audio"].shape[0]):
        problems.append("qa_scene points at rows outside the shard")
    if np.any(np.diff(qa_scene) < 0):
        problems.append("qa_scene is not sorted")
    if q != entry.num_qa:
        problems.append(f"{q} QA pairs but index.json says {entry.num_qa}")
    return problems


def check_dataset(out_dir: str | Path, *, verify_sha256: bool = True) -> list[str]:
    """Check a dataset folder; returns problems as ``"<file>: <what>"`` strings (empty = OK).

    Checks ``index.json``, and for every listed shard: it exists, has the recorded size (and
    sha256), opens, is ``complete``, has a known schema version, covers exactly its scene range,
    has consistent shapes, every scene's audio chunk decodes, and QA rows point at its scenes.
    Leftover ``*.tmp`` files from interrupted writes are reported too. Never raises for a bad file.
    """
    out_dir = Path(out_dir)
    try:
        index = read_index(out_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{INDEX_FILENAME}: unreadable ({type(e).__name__}: {e})"]
    problems = [f"{p.name}: leftover temporary file (interrupted write)"
                for p in sorted(out_dir.glob("*" + TMP_SUFFIX))]
    if len(index.shards) != index.num_shards:
        problems.append(f"{INDEX_FILENAME}: lists {len(index.shards)} shards, "
                        f"num_shards={index.num_shards}")
    for k, entry in enumerate(index.shards):
        path = out_dir / entry.file
        if not path.is_file():
            problems.append(f"{entry.file}: missing")
            continue
        size = path.stat().st_size
        if size != entry.size_bytes:
            problems.append(f"{entry.file}: size {size} bytes, index.json says {entry.size_bytes}")
        elif verify_sha256 and file_sha256(path) != entry.sha256:
            problems.append(f"{entry.file}: sha256 differs from index.json")
        try:
            with h5py.File(path, "r") as f:
                problems += [f"{entry.file}: {p}" for p in _check_shard(f, entry, k, index)]
        except Exception as e:  # a corrupt file can fail anywhere inside HDF5
            problems.append(f"{entry.file}: unreadable ({type(e).__name__}: {e})")
    return problems


# -- summary and export -----------------------------------------------------------------------


SCENE_TABLE_FIELDS = ("num_sources", "source_label", "source_azimuth_deg", "source_elevation_deg",
                      "source_distance_m", "source_level_db", "room_dim_m", "rt60_s", "snr_db", "qa_type")


def scene_table(out_dir: str | Path) -> dict[str, np.ndarray]:
    """The flat per-scene arrays of every shard, concatenated in scene order (``SCENE_TABLE_FIELDS``;
    shapes as in ``datasets/SCHEMA.md``: (N,), (N, K) per source, (N, 3) room size, (Q,) ``qa_type``).
    Per-source arrays are padded (NaN, ``""``) to the dataset's largest K, as shards pad to their own."""
    reader = DatasetReader(out_dir)
    max_sources = reader.index.max_sources
    parts = {name: [] for name in SCENE_TABLE_FIELDS}
    try:
        for k in range(len(reader.index.shards)):
            f = reader._shard(k)
            for name in SCENE_TABLE_FIELDS:
                dataset = f[name]
                values = dataset.asstr()[...] if h5py.check_string_dtype(dataset.dtype) else dataset[...]
                if name.startswith("source_"):
                    padding = ((0, 0), (0, max_sources - values.shape[1]))
                    values = np.pad(values, padding, constant_values="" if values.dtype == object else np.nan)
                parts[name].append(values)
    finally:
        reader.close()
    return {name: np.concatenate(values) for name, values in parts.items()}


def spectral_cue_summary(metas, min_cue_db: float = QAConfig.min_spectral_cue_db) -> dict:
    """Per axis with recorded cues (``SourceMeta.front_back_cue_db``, ``above_below_cue_db``: heads), over the
    sources of ``metas``: ``{"sources", "median_db", "at_least_pct", "by_class": {label: at_least_pct}}``, the
    share of sources whose cue is at least ``min_cue_db`` (default: the recipe default
    ``qa.min_spectral_cue_db``; the sides questions may ask about). ``{}`` when no source records a cue
    (arrays, recordings, datasets made before the cues)."""
    out = {}
    for axis, field in SPECTRAL_CUE_FIELDS.items():
        cues = [(source.label, getattr(source, field)) for meta in metas for source in meta.sources]
        cues = [(label, cue) for label, cue in cues if cue is not None]
        if not cues:
            continue
        by_class: dict[str, list[float]] = {}
        for label, cue in cues:
            by_class.setdefault(label, []).append(cue)
        values = np.array([cue for _, cue in cues])
        out[axis] = {"sources": len(values), "median_db": float(np.median(values)),
                     "at_least_pct": 100.0 * float(np.mean(values >= min_cue_db)),
                     "by_class": {label: 100.0 * float(np.mean(np.array(v) >= min_cue_db))
                                  for label, v in sorted(by_class.items())}}
    return out


def dataset_info(out_dir: str | Path) -> dict:
    """Summary of a dataset: sizes, audio format, classes, sources, QA types, RT60 range."""
    index = read_index(out_dir)
    table = scene_table(out_dir)
    classes = Counter(label for label in table["source_label"].ravel() if label)
    num_sources = Counter(int(n) for n in table["num_sources"])
    qa_types = Counter(table["qa_type"])
    rt60 = table["rt60_s"]
    return {
        "num_scenes": index.num_scenes,
        "num_shards": index.num_shards,
        "fs_hz": index.fs_hz,
        "num_channels": index.num_channels,
        "duration_s": index.duration_s,
        "total_hours": index.num_scenes * index.duration_s / 3600.0,
        "receiver": index.receiver,
        "seed": index.seed,
        "schema_version": index.schema_version,
        "max_sources": index.max_sources,
        "num_sources_counts": dict(sorted(num_sources.items())),
        "class_counts": dict(sorted(classes.items())),
        "num_qa": index.num_qa,
        "qa_type_counts": dict(sorted(qa_types.items())),
        "rt60_s_range": (float(rt60.min()), float(rt60.max())),
    }


def all_metas(out_dir: str | Path) -> list[SceneMeta]:
    """Every scene's metadata, in scene order (each shard's ``metadata_json`` read at once)."""
    reader = DatasetReader(out_dir)
    try:
        return [SceneMeta.from_dict(json.loads(text)) for k in range(len(reader.index.shards))
                for text in reader._shard(k)["metadata_json"].asstr()[...]]
    finally:
        reader.close()


def export_wav(out_dir: str | Path, scene_indices, wav_dir: str | Path) -> list[Path]:
    """Write scenes as 16-bit WAV (``scene-000042.wav``) plus a JSON sidecar with metadata and
    QA pairs, for listening. Returns the WAV paths."""
    reader, wav_dir = DatasetReader(out_dir), Path(wav_dir)
    wav_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for i in scene_indices:
            audio, meta, qa = reader.scene(int(i))
            path = wav_dir / f"scene-{int(i):06d}.wav"
            sf.write(path, audio.T, meta.fs_hz, subtype="PCM_16")  # soundfile wants (T, C)
            path.with_suffix(".json").write_text(
                json.dumps({"meta": meta.to_dict(), "qa": qa}, indent=2) + "\n")
            paths.append(path)
    finally:
        reader.close()
    return paths
