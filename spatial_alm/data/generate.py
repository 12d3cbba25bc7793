"""Generate a sharded dataset from a scene recipe: parallel, resumable, byte-for-byte reproducible.

Shard ``k`` of ``K`` holds scenes ``shard_ranges(N, K)[k]`` and scene ``i`` is
``make_scene(recipe, seed, i)``, so a shard's bytes depend only on (recipe, seed, N, K, k): not on
the number of workers, the order shards are written in, or which job of a SLURM array writes them.
Worker processes each write whole shards; they report every finished scene through a queue that
feeds one progress bar.

Resuming: a complete shard of the same recipe, seed and scene range is kept; a leftover
``.h5.tmp`` (a killed job) is deleted and its shard written again; a shard written with another
recipe or seed is an error unless ``overwrite=True``. ``index.json`` is written once every shard of
the dataset exists.

A full disk: the shards to write are sized up front (:func:`shard_bytes_needed`, an upper bound) and
refused with :class:`~spatial_alm.errors.DiskFullError` when the folder has less space free, before
any file is written (HDF5 can crash when the disk fills mid-write); a disk that fills anyway (other
writers) is the same error, with the unfinished shard deleted and no ``index.json``.

Example::

    recipe = SceneRecipe.from_yaml("simulation/tiny_binaural.yaml")
    summary = generate_dataset(recipe, "out/tiny", seed=0, num_scenes=1000, num_shards=8, workers=4)
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import queue
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from spatial_alm.config import load_yaml
from spatial_alm.data.schema import (
    INDEX_FILENAME,
    TMP_SUFFIX,
    DatasetIndex,
    read_index,
    shard_filename,
    shard_ranges,
)
from spatial_alm.data.writer import WRITE_RESERVE_BYTES, ShardWriter, write_index
from spatial_alm.errors import DiskFullError
from spatial_alm.scenes import SceneRecipe, load_receiver, make_scene

logger = logging.getLogger(__name__)

_SHARD_NAME = re.compile(r"shard-(\d{5})-of-(\d{5})\.h5")
_POLL_S = 0.2  # how often the main process drains the progress queue
# room a shard takes beyond its audio, at most: HDF5 structure and chunk indexes per shard; metadata
# JSON per scene; QA strings per scene and qa.per_type (measured: ~3.5 KB per scene at per_type 1)
_SHARD_OVERHEAD_BYTES = 1 << 20
_SCENE_OVERHEAD_BYTES = 8 << 10
_QA_BYTES_PER_TYPE = 4 << 10


@dataclass
class GenerateSummary:
    """What one call of :func:`generate_dataset` did."""

    out_dir: Path
    num_scenes: int  # N of the whole dataset
    num_shards: int  # K of the whole dataset
    shards_written: tuple[int, ...]  # by this call
    shards_kept: tuple[int, ...]  # already complete, skipped by this call
    shards_remaining: int  # shards of the dataset still missing after this call (other jobs')
    scenes_written: int
    num_qa_written: int
    wall_s: float
    stage_s: dict[str, float] = field(default_factory=dict)  # summed over scenes, incl. "write"
    corpus_skipped: int = 0  # corpus files the source library left out (missing, unreadable)
    index_path: Path | None = None  # None until every shard exists

    @property
    def scenes_per_s(self) -> float:
        return self.scenes_written / self.wall_s if self.wall_s > 0 else 0.0


def generate_dataset(
    recipe: SceneRecipe,
    out_dir: str | Path,
    *,
    seed: int,
    num_scenes: int,
    num_shards: int,
    shard_indices: Iterable[int] | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> GenerateSummary:
    """Write shards ``shard_indices`` (default: all) of a dataset and, once all exist, its index.

    Args:
        recipe: the scene recipe; its canonical YAML is stored in every shard.
        out_dir: dataset folder; created if missing. Checked for writing before any work.
        seed: root seed; scene ``i`` is determined by ``(recipe, seed, i)``.
        num_scenes, num_shards: N and K of the whole dataset (``N >= K``).
        shard_indices: the shards this call writes (e.g. one SLURM array task each).
        workers: processes writing shards in parallel (at most one per shard). Scenes are always
            rendered with one torch thread: the thread count changes float rounding, so a fixed
            count keeps files byte-identical whatever ``workers`` is. Workers start through
            ``forkserver`` (or ``spawn``) and import the calling script, so a script calls this
            under ``if __name__ == "__main__":``.
        overwrite: replace what another recipe, seed or layout left in ``out_dir`` (its shards,
            ``index.json``, shard files of another ``num_shards``) instead of raising
            ``ValueError``. Complete shards of this dataset are kept either way.
        progress: show a tqdm bar counting scenes.

    Raises:
        ValueError: bad arguments, an unwritable ``out_dir``, or (without ``overwrite``) files of
            another dataset in ``out_dir``, named in the message.
        DiskFullError: ``out_dir`` has less space free than the shards to write may need (before
            any is written), or the disk filled while writing (that shard's file is deleted, no
            ``index.json`` is written); rerun once space is free to resume.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    ranges = shard_ranges(num_scenes, num_shards)
    todo = _shard_list(shard_indices, num_shards)
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed={seed!r} must be an integer >= 0")
    _check_writable(out_dir)
    corpus_skipped = len(getattr(_source_library(recipe), "skipped", ()))
    expected = dict(recipe_yaml=recipe.to_yaml(), seed=int(seed), num_shards=num_shards)
    statuses = {k: _shard_status(out_dir, k, ranges[k], **expected) for k in range(num_shards)}
    _refuse_other_datasets(out_dir, statuses, expected, num_scenes, overwrite)
    kept = tuple(k for k in todo if statuses[k][0] == "ok")
    to_write = [k for k in todo if statuses[k][0] != "ok"]
    for k in to_write:
        name = shard_filename(k, num_shards)
        state, why = statuses[k]
        if state in ("broken", "foreign"):
            logger.warning("%s: %s; writing it again", name, why)
        tmp = out_dir / (name + TMP_SUFFIX)
        if tmp.exists():
            logger.info("%s: removing leftover temporary file of an interrupted run", tmp.name)
            tmp.unlink()
    _check_free_space(out_dir, recipe, [len(ranges[k]) for k in to_write])
    if to_write:  # the index describes the finished dataset only
        (out_dir / INDEX_FILENAME).unlink(missing_ok=True)

    tasks = [(k, ranges[k]) for k in to_write]
    results = _run_shards(recipe, out_dir, int(seed), num_shards, tasks, workers, progress)

    done = set(kept) | set(to_write)
    done |= {k for k in range(num_shards) if k not in done
             and _shard_status(out_dir, k, ranges[k], **expected)[0] == "ok"}
    remaining = num_shards - len(done)
    index_path = out_dir / INDEX_FILENAME
    if remaining == 0 and (to_write or not index_path.exists()):
        build_index(out_dir)
    stage_s: dict[str, float] = defaultdict(float)
    for r in results:
        for stage, seconds in r["stage_s"].items():
            stage_s[stage] += seconds
    return GenerateSummary(
        out_dir=out_dir, num_scenes=num_scenes, num_shards=num_shards,
        shards_written=tuple(to_write), shards_kept=kept, shards_remaining=remaining,
        scenes_written=sum(len(ranges[k]) for k in to_write),
        num_qa_written=sum(r["num_qa"] for r in results), wall_s=time.perf_counter() - start,
        stage_s=dict(stage_s), corpus_skipped=corpus_skipped,
        index_path=index_path if remaining == 0 else None,
    )


def build_index(out_dir: str | Path) -> DatasetIndex:
    """(Re)write ``out_dir/index.json`` from the shard files found there; returns the index.

    The layout (K), scene count (N), recipe, seed and receiver are read from the shards. Raises
    ``ValueError`` naming the file when a shard is missing, unreadable, incomplete or disagrees
    with the others.
    """
    out_dir = Path(out_dir)
    layouts = defaultdict(set)
    for path in out_dir.glob("shard-*-of-*.h5"):
        match = _SHARD_NAME.fullmatch(path.name)
        if match:
            layouts[int(match[2])].add(int(match[1]))
    if not layouts:
        raise ValueError(f"{out_dir}: no shard files (shard-*-of-*.h5)")
    if len(layouts) > 1:
        raise ValueError(f"{out_dir}: shard files of several layouts (of {sorted(layouts)} shards)")
    ((num_shards, present),) = layouts.items()
    missing = [shard_filename(k, num_shards) for k in range(num_shards) if k not in present]
    if missing:
        raise ValueError(f"{out_dir}: {len(missing)} of {num_shards} shards missing "
                         f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    num_scenes, recipe_yaml, receivers = 0, None, {}
    for k in range(num_shards):
        name = shard_filename(k, num_shards)
        try:
            with h5py.File(out_dir / name, "r") as f:
                num_scenes += f["audio"].shape[0]
                receivers.update(dict.fromkeys(json.loads(m)["receiver"] for m in f["metadata_json"].asstr()[:]))
                if recipe_yaml is None:
                    recipe_yaml = f.attrs["recipe_yaml"]
                elif f.attrs["recipe_yaml"] != recipe_yaml:
                    raise ValueError(f"{name}: recipe differs from {shard_filename(0, num_shards)}'s")
        except (OSError, KeyError, IndexError, RuntimeError) as e:  # corrupt HDF5
            raise ValueError(f"{name}: unreadable ({type(e).__name__}: {e})") from e
    return write_index(out_dir, recipe=load_yaml(recipe_yaml), num_scenes=num_scenes,
                       num_shards=num_shards, receiver=receiver_summary(list(receivers)))


def receiver_summary(names: list[str], shown: int = 8) -> str:
    """The dataset's receiver for its index: the one name, or ``"N heads: a, b, ..."`` when scenes drew
    their head from a pool (each scene's own is in its metadata)."""
    if len(names) == 1:
        return names[0]
    listed = ", ".join(sorted(names)[:shown]) + (", ..." if len(names) > shown else "")
    return f"{len(names)} heads: {listed}"


# -- checks before any work --------------------------------------------------------------------


def _shard_list(shard_indices: Iterable[int] | None, num_shards: int) -> list[int]:
    if shard_indices is None:
        return list(range(num_shards))
    todo = sorted(set(int(k) for k in shard_indices))
    bad = [k for k in todo if not 0 <= k < num_shards]
    if bad:
        raise ValueError(f"shard_indices {bad} must be in [0, num_shards={num_shards})")
    return todo


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ValueError(f"output folder {out_dir} is not writable ({e.strerror or e})") from e


def shard_bytes_needed(recipe: SceneRecipe, num_scenes: int) -> int:
    """Upper bound of the bytes a shard of ``num_scenes`` scenes of ``recipe`` takes on disk: its
    audio uncompressed (scenes x channels x samples x bytes of ``output.audio_dtype``; compression
    only shrinks it, 1% is added for deflate's block headers on incompressible audio), plus a
    margin for HDF5 structure, metadata and QA pairs."""
    channels = load_receiver(recipe.receiver).num_channels
    audio = num_scenes * channels * recipe.num_samples * np.dtype(recipe.output.audio_dtype).itemsize
    per_scene = _SCENE_OVERHEAD_BYTES + _QA_BYTES_PER_TYPE * recipe.qa.per_type
    return audio + audio // 100 + _SHARD_OVERHEAD_BYTES + num_scenes * per_scene


def _check_free_space(out_dir: Path, recipe: SceneRecipe, shard_sizes: list[int]) -> None:
    """Raise :class:`DiskFullError` when ``out_dir`` has less space free than shards of
    ``shard_sizes`` scenes may need (and the writer's reserve, see ``WRITE_RESERVE_BYTES``):
    refused before writing, so HDF5 never meets a full disk."""
    if not shard_sizes:
        return
    needed = sum(shard_bytes_needed(recipe, n) for n in shard_sizes) + WRITE_RESERVE_BYTES
    free = shutil.disk_usage(out_dir).free
    if needed > free:
        raise DiskFullError(
            errno.ENOSPC, f"{out_dir}: not enough free disk space: {len(shard_sizes)} shard(s) of "
            f"{sum(shard_sizes)} scenes need up to {needed / 1e6:.1f} MB, {free / 1e6:.1f} MB are free "
            "(nothing was written); free space or choose another --out, then run the same command again")


def _source_library(recipe: SceneRecipe):
    """The recipe's source library, loaded (and its files checked) before any work."""
    try:
        return recipe.source_library()
    except OSError as e:  # a strict corpus names its first missing or unreadable file
        raise ValueError(f"corpus: {e}") from e


def _refuse_other_datasets(out_dir: Path, statuses: dict, expected: dict, num_scenes: int,
                           overwrite: bool) -> None:
    """Raise for files of another dataset in ``out_dir``, naming them; with ``overwrite``, delete
    its index and shards of another layout (its shards of this layout are replaced when written)."""
    num_shards = expected["num_shards"]
    shards = [(out_dir / shard_filename(k, num_shards), why)
              for k, (state, why) in statuses.items() if state == "foreign"]
    removable = []  # index and other layouts: deleted under overwrite
    index_path = out_dir / INDEX_FILENAME
    if index_path.exists():
        try:
            index = read_index(out_dir)
            same = ((index.seed, index.num_scenes, index.num_shards)
                    == (expected["seed"], num_scenes, num_shards)
                    and index.recipe == load_yaml(expected["recipe_yaml"]))
        except (OSError, ValueError, KeyError, TypeError):
            same = False
        if not same:
            removable.append((index_path, "describes another recipe, seed or layout"))
    for path in sorted(out_dir.glob("shard-*-of-*.h5*")):
        match = _SHARD_NAME.fullmatch(path.name.removesuffix(TMP_SUFFIX))
        if match and int(match[2]) != num_shards:
            removable.append((path, f"a shard of {int(match[2])}, not {num_shards}, shards"))
    found = shards + removable
    if found and not overwrite:
        listed = "; ".join(f"{path.name}: {why}" for path, why in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise ValueError(f"{out_dir} holds another dataset ({listed}{more}); use another folder "
                         "or overwrite=True (--overwrite) to replace it")
    for path, why in removable:
        logger.warning("removing %s (%s; overwrite=True)", path, why)
        path.unlink(missing_ok=True)


def _shard_status(out_dir: Path, k: int, scenes: range, *, recipe_yaml: str, seed: int,
                  num_shards: int) -> tuple[str, str]:
    """``("ok" | "missing" | "broken" | "foreign", reason)`` of shard ``k``'s final file."""
    path = out_dir / shard_filename(k, num_shards)
    if not path.exists():
        return "missing", ""
    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            if not bool(attrs["complete"]):
                return "broken", "complete=False"
            if attrs["recipe_yaml"] != recipe_yaml:
                return "foreign", "written with a different recipe"
            if int(attrs["seed"]) != seed:
                return "foreign", f"written with seed={int(attrs['seed'])}, not {seed}"
            index = f["scene_index"]
            n = index.shape[0]
            held = range(int(index[0]), int(index[0]) + n) if n else range(0)
            if held != scenes:
                return "foreign", (f"holds scenes [{held.start}, {held.stop}), expected "
                                   f"[{scenes.start}, {scenes.stop}) (another --num-scenes)")
    except Exception as e:  # a corrupt file can fail anywhere inside HDF5
        return "broken", f"unreadable ({type(e).__name__}: {e})"
    return "ok", ""


# -- writing -----------------------------------------------------------------------------------


def _run_shards(recipe: SceneRecipe, out_dir: Path, seed: int, num_shards: int,
                tasks: list[tuple[int, range]], workers: int, progress: bool) -> list[dict]:
    """Write the shards ``tasks`` (shard, scene range) in this process or in a worker pool."""
    total = sum(len(scenes) for _, scenes in tasks)
    with tqdm(total=total, unit="scene", desc="simulate", disable=not progress or total == 0,
              dynamic_ncols=True) as bar:
        if workers == 1 or len(tasks) <= 1:
            return [_write_shard(recipe, out_dir, seed, k, num_shards, scenes, lambda: bar.update(1))
                    for k, scenes in tasks]
        context = _mp_context()
        reports, stop = context.Queue(), context.Event()
        results = []
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                                 initializer=_init_worker, initargs=(reports, stop)) as pool:
            pending = {pool.submit(_write_shard_in_worker, recipe, out_dir, seed, k, num_shards,
                                   scenes) for k, scenes in tasks}
            try:
                while pending:
                    done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                    _drain(reports, bar)
                    results += [future.result() for future in done]
            except BaseException:  # a shard failed: the other workers stop at their next scene
                stop.set()
                for future in pending:
                    future.cancel()
                raise
            _drain(reports, bar)
        return sorted(results, key=lambda r: r["shard"])


def _write_shard(recipe: SceneRecipe, out_dir: Path, seed: int, k: int, num_shards: int,
                 scenes: range, report: Callable[[], None]) -> dict:
    """Render scenes ``scenes`` and write them to shard ``k``; the writer is sized by scene 0."""
    stage_s: dict[str, float] = defaultdict(float)
    first = make_scene(recipe, seed, scenes.start)
    channels, samples = first.audio.shape
    with ShardWriter(out_dir / shard_filename(k, num_shards), recipe_yaml=recipe.to_yaml(),
                     seed=seed, shard_index=k, num_shards=num_shards, fs_hz=first.meta.fs_hz,
                     num_channels=channels, num_samples=samples,
                     audio_dtype=recipe.output.audio_dtype) as writer:
        for i in scenes:
            record = first if i == scenes.start else make_scene(recipe, seed, i)
            for stage, seconds in record.timings.items():
                stage_s[stage] += seconds
            tic = time.perf_counter()
            writer.add(record.meta, record.audio, record.qa)
            stage_s["write"] += time.perf_counter() - tic
            report()
        tic = time.perf_counter()
    stage_s["write"] += time.perf_counter() - tic  # flush, fsync and rename
    return {"shard": k, "num_qa": writer.num_qa, "stage_s": dict(stage_s)}


# -- worker processes --------------------------------------------------------------------------

_reports: multiprocessing.Queue | None = None  # set in each worker process
_stop = None  # multiprocessing.Event: the main process asks the workers to stop


def _mp_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` (workers fork from a server that imported this module once) or ``spawn``;
    never plain ``fork`` of a process whose torch may already run threads."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _init_worker(reports: multiprocessing.Queue, stop) -> None:
    global _reports, _stop
    _reports, _stop = reports, stop
    # Ctrl-C reaches the whole process group: the main process alone handles it (it sets ``stop`` and
    # reports one line), so the workers print no traceback of their own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # one thread per worker process: the workers share the cores
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    """Watchdog thread of a worker: exit at once when the main process is killed, instead of
    writing on as an orphan (the next run deletes the shard's leftover ``.tmp``)."""
    parent.join()
    os._exit(1)


def _write_shard_in_worker(recipe: SceneRecipe, out_dir: Path, seed: int, k: int, num_shards: int,
                           scenes: range) -> dict:
    def report() -> None:
        if _stop.is_set():  # another shard failed: stop; the writer deletes this shard's .tmp
            raise RuntimeError(f"shard {k}: stopped because another shard failed")
        _reports.put(k)

    return _write_shard(recipe, out_dir, seed, k, num_shards, scenes, report)


def _drain(reports: multiprocessing.Queue, bar: tqdm) -> None:
    """Count the scenes workers reported so far into the progress bar."""
    finished = 0
    while True:
        try:
            reports.get_nowait()
        except queue.Empty:
            break
        finished += 1
    if finished:
        bar.update(finished)
