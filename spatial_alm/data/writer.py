"""Streaming, atomic writing of one HDF5 shard, and of the dataset's ``index.json``.

A shard is written to ``<name>.h5.tmp`` one scene at a time (resizable datasets, memory flat);
on a clean exit of the ``with`` block ``complete`` is set, the file is flushed, fsynced and
renamed to ``<name>.h5``; on an exception the tmp file is removed and no final file appears. A full
disk (ENOSPC, or h5py's "No space left on device") becomes a :class:`DiskFullError` naming the folder.
Identical inputs give byte-identical files (no timestamps, fixed write order).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from spatial_alm import __version__
from spatial_alm.data.schema import (
    AUDIO_DTYPES,
    COMPRESSIONS,
    INT16_SCALE,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    TMP_SUFFIX,
    DatasetIndex,
    ShardEntry,
    file_sha256,
    shard_filename,
    shard_ranges,
)
from spatial_alm.errors import DiskFullError, is_disk_full
from spatial_alm.scenes.metadata import SceneMeta

_STR = h5py.string_dtype("utf-8")
_ROWS_PER_CHUNK = 256  # metadata and QA datasets
# free space kept beyond a scene's audio before it is written: HDF5's chunk and metadata caches and
# the buffered metadata and QA rows are written later (at the latest when the shard is closed), and
# HDF5 can crash on a disk that fills while it writes, so a scene is refused before it runs out
WRITE_RESERVE_BYTES = 16 << 20
_SOURCES_PER_CHUNK = 4


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class ShardWriter:
    """Write scenes with their QA pairs into one shard file.

    Args:
        path: final shard path (``.../shard-00000-of-00008.h5``).
        recipe_yaml: the scene recipe, verbatim, stored for provenance.
        seed: root seed of the dataset.
        shard_index, num_shards: position of this shard.
        fs_hz: sample rate of every scene.
        num_channels, num_samples: audio shape (C, T) of every scene.
        audio_dtype: ``"int16"`` (scale 32767 = full scale 1.0) or ``"float16"``.
        compression: ``"gzip"``, ``"lzf"`` or None, applied per scene chunk of ``audio``.

    Example::

        with ShardWriter(path, recipe_yaml=text, seed=0, shard_index=0, num_shards=1,
                         fs_hz=16000, num_channels=2, num_samples=32000) as w:
            w.add(meta, audio, qa_pairs)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        recipe_yaml: str,
        seed: int,
        shard_index: int,
        num_shards: int,
        fs_hz: int,
        num_channels: int,
        num_samples: int,
        audio_dtype: str = "int16",
        compression: str | None = "gzip",
    ):
        shard_filename(shard_index, num_shards)  # validates the pair
        for name, value in (("fs_hz", fs_hz), ("num_channels", num_channels),
                            ("num_samples", num_samples)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if audio_dtype not in AUDIO_DTYPES:
            raise ValueError(f"audio_dtype={audio_dtype!r} must be one of {AUDIO_DTYPES}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression={compression!r} must be one of {COMPRESSIONS}")
        self.path = Path(path)
        self.tmp_path = self.path.with_name(self.path.name + TMP_SUFFIX)
        self._root_attrs = dict(
            schema_version=SCHEMA_VERSION, recipe_yaml=str(recipe_yaml), seed=int(seed),
            shard_index=int(shard_index), num_shards=int(num_shards), fs_hz=int(fs_hz),
            num_channels=int(num_channels),
        )
        self.fs_hz = int(fs_hz)
        self.num_channels = int(num_channels)
        self.num_samples = int(num_samples)
        self.audio_dtype = audio_dtype
        self.compression = compression
        self.num_scenes = 0  # scenes added (written or buffered)
        self.num_qa = 0
        self._last_index = -1
        self._file: h5py.File | None = None
        self._ds: dict[str, h5py.Dataset] = {}
        # Metadata and QA rows are buffered and written one chunk at a time (h5py's per-call
        # overhead dominates small writes); audio goes to disk at once, one chunk per scene.
        self._scene_buffer: list[tuple[SceneMeta, str]] = []
        self._qa_buffer: list[tuple] = []

    # -- context manager ------------------------------------------------------------------------

    def __enter__(self) -> "ShardWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = h5py.File(self.tmp_path, "w", libver="earliest", track_order=False)
            for key, value in self._root_attrs.items():
                self._file.attrs[key] = value
            self._file.attrs["complete"] = False
            self._create_datasets()
        except BaseException as err:
            disk_full = self._discard(self._file, err)
            if disk_full is not None:
                raise disk_full from err
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        f = self._file
        if exc_type is not None:
            disk_full = self._discard(f, exc)
            if disk_full is not None:
                raise disk_full from exc
            return False
        try:
            self._flush()
            self._file, self._ds = None, {}
            f.attrs["complete"] = True
            f.flush()
            f.close()
            with open(self.tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp_path, self.path)
        except BaseException as err:
            disk_full = self._discard(f, err)
            if disk_full is not None:
                raise disk_full from err
            raise
        return False

    def _discard(self, f: h5py.File | None, err: BaseException) -> DiskFullError | None:
        """Close ``f`` and delete the tmp file after ``err``; returns the :class:`DiskFullError` to
        raise instead when ``err`` is a full disk. Closing flushes, which fails too on a full disk:
        the file is deleted all the same."""
        self._file, self._ds = None, {}
        try:
            if f is not None and f.id.valid:
                f.close()
        except Exception:  # the error that matters is ``err``
            pass
        written, free = 0, "an unknown amount was"
        try:
            written = self.tmp_path.stat().st_size if self.tmp_path.exists() else 0
            free = f"{shutil.disk_usage(self.path.parent).free / 1e6:.1f} MB were"
        except OSError:
            pass
        try:
            self.tmp_path.unlink(missing_ok=True)
        except OSError:  # the next run removes it (a leftover .tmp never looks complete)
            pass
        if not isinstance(err, Exception) or isinstance(err, DiskFullError) or not is_disk_full(err):
            return None
        return DiskFullError(
            errno.ENOSPC, f"{self.path.parent}: the disk is full (no space left on device after "
            f"{written / 1e6:.1f} MB of {self.path.name} were written, {free} left free; the "
            "unfinished shard was removed); free space or choose another --out, then run the same "
            "command again to resume")

    def _create_datasets(self) -> None:
        f, c, t = self._file, self.num_channels, self.num_samples

        def create(name, dtype, shape, maxshape, chunks, **kw):
            self._ds[name] = f.create_dataset(name, shape=shape, maxshape=maxshape, chunks=chunks,
                                              dtype=dtype, track_times=False, **kw)

        create("audio", self.audio_dtype, (0, c, t), (None, c, t), (1, c, t),
               compression=self.compression, shuffle=self.compression is not None)
        self._ds["audio"].attrs["scale"] = INT16_SCALE if self.audio_dtype == "int16" else 1.0
        rows = (None,), (_ROWS_PER_CHUNK,)
        sources = (None, None), (_ROWS_PER_CHUNK, _SOURCES_PER_CHUNK)
        create("scene_index", "int64", (0,), *rows)
        create("metadata_json", _STR, (0,), *rows)
        create("num_sources", "int64", (0,), *rows)
        for name in ("source_azimuth_deg", "source_elevation_deg", "source_distance_m", "source_level_db"):
            create(name, "float32", (0, 0), *sources, fillvalue=np.nan)
        create("source_label", _STR, (0, 0), *sources)  # fill value reads as ""
        # float64: equal to the values in the JSON metadata
        create("room_dim_m", "float64", (0, 3), (None, 3), (_ROWS_PER_CHUNK, 3))
        create("rt60_s", "float64", (0,), *rows)
        create("snr_db", "float64", (0,), *rows)
        create("qa_scene", "int64", (0,), *rows)
        for name in ("qa_type", "qa_question", "qa_answer", "qa_target_json"):
            create(name, _STR, (0,), *rows)
        create("qa_source_index", "int64", (0,), *rows)

    # -- writing --------------------------------------------------------------------------------

    def add(self, meta: SceneMeta, audio: np.ndarray, qa: Iterable = ()) -> None:
        """Append one scene; a scene that fails validation leaves nothing behind.

        Args:
            meta: the scene's metadata; ``meta.index`` is its global scene index and must
                increase from call to call.
            audio: (C, T) float array in [-1, 1] (the renderer normalises; nothing is clipped).
            qa: question-answer pairs: objects with ``question_type``, ``question``, ``answer``,
                ``target`` (JSON-serialisable dict) and ``source_index`` (int or None).
        """
        if self._file is None:
            raise RuntimeError("ShardWriter.add() must be called inside its `with` block")
        audio = self._check_audio(audio)
        if not isinstance(meta, SceneMeta):
            raise TypeError(f"meta must be a SceneMeta, got {type(meta).__name__}")
        if meta.index <= self._last_index:
            raise ValueError(f"meta.index={meta.index} must be > previous index {self._last_index}")
        if meta.fs_hz != self.fs_hz:
            raise ValueError(f"meta.fs_hz={meta.fs_hz} != the shard's fs_hz={self.fs_hz}")
        meta_json = _json(meta.to_dict())
        qa_rows = [(self.num_scenes, *self._qa_row(q, len(meta.sources))) for q in qa]

        self._check_free_space()
        if self.audio_dtype == "int16":
            encoded = np.round(audio * INT16_SCALE).astype(np.int16)
        else:
            encoded = audio.astype(np.float16)
        _append(self._ds["audio"], encoded[None])
        self._scene_buffer.append((meta, meta_json))
        self._qa_buffer += qa_rows
        self.num_scenes += 1
        self.num_qa += len(qa_rows)
        self._last_index = meta.index
        if len(self._scene_buffer) >= _ROWS_PER_CHUNK:
            self._flush()

    def _check_free_space(self) -> None:
        """Raise :class:`DiskFullError` before writing a scene when the folder has less space free than
        the scene's audio (uncompressed) plus :data:`WRITE_RESERVE_BYTES` (others filled the disk)."""
        needed = self.num_channels * self.num_samples * np.dtype(self.audio_dtype).itemsize + WRITE_RESERVE_BYTES
        free = shutil.disk_usage(self.path.parent).free
        if free < needed:
            raise DiskFullError(
                errno.ENOSPC, f"{self.path.parent}: the disk is nearly full ({free / 1e6:.1f} MB free; the next "
                f"scene of {self.path.name} needs up to {needed / 1e6:.1f} MB with HDF5's buffers; stopped "
                "before writing it, the unfinished shard was removed); free space or choose another --out, "
                "then run the same command again to resume")

    def _flush(self) -> None:
        """Write the buffered metadata and QA rows."""
        ds, metas = self._ds, [m for m, _ in self._scene_buffer]
        if metas:
            _append(ds["scene_index"], np.array([m.index for m in metas], np.int64))
            _append(ds["metadata_json"], [j for _, j in self._scene_buffer])
            _append(ds["num_sources"], np.array([len(m.sources) for m in metas], np.int64))
            width = max([ds["source_label"].shape[1]] + [len(m.sources) for m in metas])
            for name, attr, fill, dtype in (
                ("source_azimuth_deg", "azimuth_deg", np.nan, np.float32),
                ("source_elevation_deg", "elevation_deg", np.nan, np.float32),
                ("source_distance_m", "distance_m", np.nan, np.float32),
                ("source_level_db", "level_db", np.nan, np.float32),
                ("source_label", "label", "", object),
            ):
                values = np.full((len(metas), width), fill, dtype=dtype)
                for row, m in enumerate(metas):
                    values[row, : len(m.sources)] = [getattr(s, attr) for s in m.sources]
                ds[name].resize(width, axis=1)
                if width:
                    _append(ds[name], values)
                else:
                    ds[name].resize(ds[name].shape[0] + len(metas), axis=0)
            _append(ds["room_dim_m"], np.array([m.room_dim_m for m in metas], np.float64))
            _append(ds["rt60_s"], np.array([m.rt60_s for m in metas], np.float64))
            _append(ds["snr_db"], np.array([m.snr_db for m in metas], np.float64))
        if self._qa_buffer:
            columns = list(zip(*self._qa_buffer))
            _append(ds["qa_scene"], np.array(columns[0], np.int64))
            for name, column in zip(("qa_type", "qa_question", "qa_answer", "qa_target_json"),
                                    columns[1:5]):
                _append(ds[name], list(column))
            _append(ds["qa_source_index"], np.array(columns[5], np.int64))
        self._scene_buffer, self._qa_buffer = [], []

    def _check_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio)
        expected = (self.num_channels, self.num_samples)
        if audio.ndim != 2 or audio.shape != expected:
            raise ValueError(f"audio shape {audio.shape} must be (C, T) = {expected}")
        if not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"audio dtype {audio.dtype} must be floating point in [-1, 1]")
        if not np.all(np.isfinite(audio)):
            raise ValueError("audio contains NaN or inf")
        peak = float(np.max(np.abs(audio)))
        if peak > 1.0:
            raise ValueError(f"audio peak |x| = {peak:.4g} outside [-1, 1]; normalise first")
        return audio.astype(np.float32, copy=False)

    @staticmethod
    def _qa_row(q, num_sources: int) -> tuple[str, str, str, str, int]:
        source_index = -1 if q.source_index is None else int(q.source_index)
        if not -1 <= source_index < num_sources:
            raise ValueError(
                f"qa source_index={q.source_index} must be None or in [0, {num_sources})"
            )
        return (str(q.question_type), str(q.question), str(q.answer), _json(q.target),
                source_index)


def _append(ds: h5py.Dataset, values) -> None:
    """Grow ``ds`` along axis 0 and write ``values`` into the new rows."""
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n:] = values


def write_index(
    out_dir: str | Path, *, recipe: dict, num_scenes: int, num_shards: int, receiver: str
) -> DatasetIndex:
    """Write ``out_dir/index.json`` once all shards are complete; returns the index.

    Seed, sample rate and audio shape are read from the shards (and must agree); each shard's
    size, sha256, scene and QA counts are recorded. Raises ``FileNotFoundError`` for a missing
    shard and ``ValueError`` for an incomplete or inconsistent one.
    """
    out_dir = Path(out_dir)
    entries, common, max_sources = [], None, 0
    for k, rng in enumerate(shard_ranges(num_scenes, num_shards)):
        path = out_dir / shard_filename(k, num_shards)
        with h5py.File(path, "r") as f:
            if not bool(f.attrs["complete"]):
                raise ValueError(f"{path.name}: complete=False (interrupted write)")
            if int(f.attrs["schema_version"]) not in SUPPORTED_SCHEMA_VERSIONS:
                raise ValueError(f"{path.name}: schema_version={f.attrs['schema_version']} unknown")
            attrs = (int(f.attrs["seed"]), int(f.attrs["fs_hz"]), int(f.attrs["num_channels"]),
                     int(f["audio"].shape[2]), int(f.attrs["num_shards"]))
            n, num_qa = f["audio"].shape[0], f["qa_scene"].shape[0]
            max_sources = max(max_sources, f["source_label"].shape[1])
        if common is None:
            common = attrs
        elif attrs != common:
            raise ValueError(
                f"{path.name}: (seed, fs_hz, num_channels, num_samples, num_shards)={attrs} "
                f"differ from shard 0's {common}"
            )
        if attrs[4] != num_shards or n != len(rng):
            raise ValueError(
                f"{path.name}: holds {n} scenes of {attrs[4]} shards, expected {len(rng)} of "
                f"{num_shards}"
            )
        entries.append(ShardEntry(file=path.name, start=rng.start, stop=rng.stop, num_scenes=n,
                                  num_qa=int(num_qa), size_bytes=path.stat().st_size,
                                  sha256=file_sha256(path)))
    seed, fs_hz, num_channels, num_samples, _ = common
    index = DatasetIndex(
        schema_version=SCHEMA_VERSION, spatial_alm_version=__version__, recipe=recipe, seed=seed,
        num_scenes=num_scenes, num_shards=num_shards, fs_hz=fs_hz, num_channels=num_channels,
        num_samples=num_samples, max_sources=max_sources, receiver=receiver,
        shards=tuple(entries),
    )
    index.save(out_dir)
    return index
