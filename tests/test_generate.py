"""Dataset generation end to end at toy size: determinism across workers, kill-and-resume, SLURM-style
shard runs, refusal to mix datasets, and the `simulate` / `dataset` commands."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO_ROOT

import spatial_alm.data.generate as generate_module
import spatial_alm.data.writer as writer_module
from spatial_alm.cli import build_parser, main
from spatial_alm.data import DatasetReader, check_dataset, read_index, shard_filename
from spatial_alm.data.generate import generate_dataset
from spatial_alm.data.schema import INDEX_FILENAME, INT16_SCALE, file_sha256
from spatial_alm.errors import DiskFullError
from spatial_alm.scenes import SceneRecipe, make_scene

RECIPE = REPO_ROOT / "simulation" / "tiny_binaural.yaml"
OVERRIDES = {"duration_s": 0.5, "room.rt60_s": [0.2, 0.4]}  # toy size: ~0.1 s per scene
NUM_SCENES, NUM_SHARDS = 8, 4


def simulate_args(out, *extra: str) -> list[str]:
    sets = [arg for key, value in OVERRIDES.items() for arg in ("--set", f"{key}={value}")]
    return ["simulate", "--recipe", str(RECIPE), "--out", str(out), "--num-scenes", str(NUM_SCENES),
            "--num-shards", str(NUM_SHARDS), "--no-progress", *sets, *extra]


def digests(folder) -> dict[str, str]:
    """sha256 of every file in ``folder`` (shards and index.json)."""
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A clean, uninterrupted single-process run of the toy dataset."""
    out = tmp_path_factory.mktemp("reference") / "data"
    assert main(simulate_args(out)) == 0
    assert check_dataset(out) == []
    return out


def test_workers_give_byte_identical_files(reference, tmp_path):
    recipe = SceneRecipe.from_yaml(RECIPE, OVERRIDES)
    summary = generate_dataset(recipe, tmp_path, seed=0, num_scenes=NUM_SCENES,
                               num_shards=NUM_SHARDS, workers=2, progress=False)
    assert summary.shards_written == (0, 1, 2, 3) and summary.scenes_written == NUM_SCENES
    assert summary.index_path == tmp_path / INDEX_FILENAME
    assert set(summary.stage_s) >= {"rirs", "write"}
    assert digests(tmp_path) == digests(reference)  # shards and index.json
    # any scene regenerates alone from (recipe, seed, index)
    stored = DatasetReader(reference).audio(5)
    again = np.round(make_scene(recipe, 0, 5).audio * INT16_SCALE) / np.float32(INT16_SCALE)
    np.testing.assert_array_equal(stored, again.astype(np.float32))


@pytest.mark.parametrize("receiver", ["binaural", "array"])
def test_scene_is_the_same_whatever_the_thread_count(receiver):
    """A parallel reduction sums in a thread-count-dependent order; rendering must not depend on it."""
    path = RECIPE if receiver == "binaural" else REPO_ROOT / "simulation" / "tetra_array.yaml"
    recipe = SceneRecipe.from_yaml(path, {**OVERRIDES, "noise.type": ["diffuse"]})
    previous = torch.get_num_threads()
    try:
        audio = {}
        for threads in (1, 2, 3, 4):
            torch.set_num_threads(threads)
            audio[threads] = [make_scene(recipe, 0, i).audio for i in range(3)]
            assert torch.get_num_threads() == threads  # the caller's setting is restored
    finally:
        torch.set_num_threads(previous)
    for threads in (2, 3, 4):
        for one, other in zip(audio[1], audio[threads]):
            np.testing.assert_array_equal(one, other)


def test_kill_and_resume_matches_clean_run(reference, tmp_path):
    out = tmp_path / "data"
    log = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "spatial_alm.cli", *simulate_args(out)],
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    # kill mid-run: one shard complete and another being written
    while not ((out / shard_filename(0, NUM_SHARDS)).exists() and list(out.glob("*.h5.tmp"))):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no shard appeared in 60 s"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(out.glob("*.h5.tmp")) and not (out / INDEX_FILENAME).exists()

    assert main(simulate_args(out)) == 0
    assert not list(out.glob("*.tmp"))
    assert check_dataset(out) == []
    reader = DatasetReader(out)
    assert [reader.meta(i).index for i in range(len(reader))] == list(range(NUM_SCENES))
    assert digests(out) == digests(reference)


def test_check_finds_truncated_shard_and_resume_repairs_it(reference, tmp_path, capsys):
    out = tmp_path / "data"
    shutil.copytree(reference, out)
    shard = out / shard_filename(1, NUM_SHARDS)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert main(["dataset", "check", str(out)]) == 1
    printed = capsys.readouterr().out
    assert shard.name in printed and "problem" in printed
    assert main(["dataset", "info", str(out)]) == 2  # a clean error, not a traceback
    assert "dataset check" in capsys.readouterr().err

    assert main(simulate_args(out)) == 0  # the broken shard is written again
    assert main(["dataset", "check", str(out)]) == 0
    assert digests(out) == digests(reference)


def test_shard_index_runs_build_the_same_dataset(reference, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(simulate_args(out, "--shard-index", "0", "1")) == 0
    assert not (out / INDEX_FILENAME).exists()
    assert "2 of 4 shards still missing" in capsys.readouterr().out
    assert main(simulate_args(out, "--shard-index", "3")) == 0
    assert not (out / INDEX_FILENAME).exists()
    assert main(simulate_args(out, "--shard-index", "2")) == 0  # the last one writes the index
    assert str(out / INDEX_FILENAME) in capsys.readouterr().out
    assert digests(out) == digests(reference)
    assert main(simulate_args(out, "--shard-index", "2")) == 0  # a rerun keeps everything
    assert "nothing to write" in capsys.readouterr().out
    (out / INDEX_FILENAME).unlink()
    assert main(["dataset", "index", str(out)]) == 0
    assert digests(out) == digests(reference)


def test_unwritable_output_is_a_clear_error_before_any_work(tmp_path, capsys, monkeypatch):
    def no_rendering(*args, **kwargs):
        raise AssertionError("a scene was rendered")

    monkeypatch.setattr(generate_module, "make_scene", no_rendering)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(simulate_args(blocker / "data")) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and str(blocker / "data") in err
    if os.geteuid() != 0:  # root writes anywhere
        readonly = tmp_path / "readonly"
        readonly.mkdir()
        (readonly / "keep.txt").write_text("kept")
        readonly.chmod(0o500)
        try:
            assert main(simulate_args(readonly)) == 2
            assert "not writable" in capsys.readouterr().err
            assert (readonly / "keep.txt").read_text() == "kept"
        finally:
            readonly.chmod(0o700)


def test_too_little_free_space_is_refused_before_any_shard_is_written(reference, tmp_path, capsys, monkeypatch):
    recipe = SceneRecipe.from_yaml(RECIPE, OVERRIDES)
    per_shard = generate_module.shard_bytes_needed(recipe, NUM_SCENES // NUM_SHARDS)
    # an upper bound of what a shard takes (the audio uncompressed, plus metadata and QA)
    assert all((reference / shard_filename(k, NUM_SHARDS)).stat().st_size <= per_shard for k in range(NUM_SHARDS))

    def no_rendering(*args, **kwargs):
        raise AssertionError("a scene was rendered")

    real_disk_usage = shutil.disk_usage
    needed = NUM_SHARDS * per_shard + writer_module.WRITE_RESERVE_BYTES
    free = needed - 1  # one byte short of the bound for all shards
    monkeypatch.setattr(generate_module, "make_scene", no_rendering)
    monkeypatch.setattr(generate_module.shutil, "disk_usage", lambda path: real_disk_usage(path)._replace(free=free))
    out = tmp_path / "data"
    with pytest.raises(DiskFullError) as failure:
        generate_dataset(recipe, out, seed=0, num_scenes=NUM_SCENES, num_shards=NUM_SHARDS, progress=False)
    message = str(failure.value)
    assert failure.value.errno == errno.ENOSPC and message.startswith(f"{out}: not enough free disk space")
    assert f"need up to {needed / 1e6:.1f} MB" in message and f"{free / 1e6:.1f} MB are free" in message
    assert "free space or choose another --out" in message
    assert list(out.iterdir()) == []  # no shard file, no .tmp, no index.json

    assert main(simulate_args(out)) == 1  # the machine, not the input: exit 1
    err = capsys.readouterr().err
    assert err.startswith(f"spatial-alm simulate: error: {out}: not enough free disk space")
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "Errno" not in err
    assert list(out.iterdir()) == []


H5PY_ENOSPC = ("Can't write data (file write failed: time = Thu Jan  1 00:00:00 2026, filename = 'x.h5.tmp', file "
               "descriptor = 5, errno = 28, error message = 'No space left on device', buf = 0x1, total write size "
               "= 4096, bytes this sub-write = 4096, bytes actually written = 18446744073709551615, offset = 0)")


@pytest.mark.parametrize("fault, dataset", [
    (OSError(errno.ENOSPC, "No space left on device"), "/audio"),  # mid-shard, scene by scene
    (OSError(H5PY_ENOSPC), "/qa_scene"),  # h5py's error, at the shard's final flush of buffered rows
])
def test_disk_full_mid_shard_leaves_no_half_shard_and_a_rerun_completes(reference, tmp_path, monkeypatch,
                                                                         fault, dataset):
    recipe = SceneRecipe.from_yaml(RECIPE, OVERRIDES)
    out, failing, real_append = tmp_path / "data", shard_filename(1, NUM_SHARDS), writer_module._append

    def disk_fills_up(ds, values):
        real_append(ds, values)  # some bytes of shard 1 reach the file, then the disk is full
        if ds.name == dataset and failing in ds.file.filename:
            raise fault

    monkeypatch.setattr(writer_module, "_append", disk_fills_up)
    with pytest.raises(DiskFullError) as failure:
        generate_dataset(recipe, out, seed=0, num_scenes=NUM_SCENES, num_shards=NUM_SHARDS, progress=False)
    message = str(failure.value)
    assert failure.value.errno == errno.ENOSPC and message.startswith(f"{out}: the disk is full")
    assert failing in message and "MB were left free" in message and "choose another --out" in message
    assert sorted(p.name for p in out.iterdir()) == [shard_filename(0, NUM_SHARDS)]  # no .h5.tmp, no index.json
    monkeypatch.undo()
    summary = generate_dataset(recipe, out, seed=0, num_scenes=NUM_SCENES, num_shards=NUM_SHARDS, progress=False)
    assert summary.shards_kept == (0,) and summary.shards_written == (1, 2, 3)
    assert check_dataset(out) == []
    assert digests(out) == digests(reference)


def test_disk_filled_by_others_stops_before_the_next_scene(reference, tmp_path, monkeypatch):
    """Enough space at the start, then another writer fills the disk: the writer refuses the next scene
    before HDF5 writes it (HDF5 can crash on a full disk), and deletes the unfinished shard."""
    recipe = SceneRecipe.from_yaml(RECIPE, OVERRIDES)
    out, real_disk_usage = tmp_path / "data", shutil.disk_usage
    filling = out / (shard_filename(2, NUM_SHARDS) + ".tmp")

    def disk_usage(path):  # nearly full once shard 2 is being written
        return real_disk_usage(path)._replace(free=1_000_000) if filling.exists() else real_disk_usage(path)

    monkeypatch.setattr(writer_module.shutil, "disk_usage", disk_usage)
    with pytest.raises(DiskFullError, match=r"the disk is nearly full \(1\.0 MB free") as failure:
        generate_dataset(recipe, out, seed=0, num_scenes=NUM_SCENES, num_shards=NUM_SHARDS, progress=False)
    assert str(failure.value).startswith(f"{out}: ") and shard_filename(2, NUM_SHARDS) in str(failure.value)
    assert sorted(p.name for p in out.iterdir()) == [shard_filename(k, NUM_SHARDS) for k in (0, 1)]
    monkeypatch.undo()
    generate_dataset(recipe, out, seed=0, num_scenes=NUM_SCENES, num_shards=NUM_SHARDS, progress=False)
    assert check_dataset(out) == [] and digests(out) == digests(reference)


def test_another_seed_or_recipe_is_refused_unless_overwrite(reference, tmp_path, capsys):
    out = tmp_path / "data"
    shutil.copytree(reference, out)
    before = digests(out)
    assert main(simulate_args(out, "--seed", "1")) == 2
    err = capsys.readouterr().err
    assert shard_filename(0, NUM_SHARDS) in err and "seed=0" in err and "--overwrite" in err
    assert main(simulate_args(out, "--set", "duration_s=0.25")) == 2
    assert "different recipe" in capsys.readouterr().err
    assert main(simulate_args(out, "--num-shards", "2")) == 2
    assert "shard-00000-of-00004.h5" in capsys.readouterr().err
    assert digests(out) == before

    assert main(simulate_args(out, "--seed", "1", "--num-scenes", "4", "--num-shards", "2",
                              "--overwrite")) == 0
    assert check_dataset(out) == []
    assert sorted(p.name for p in out.iterdir()) == [
        INDEX_FILENAME, shard_filename(0, 2), shard_filename(1, 2)]
    assert read_index(out).seed == 1


def test_dataset_info_and_export(reference, tmp_path, capsys):
    assert main(["dataset", "info", str(reference)]) == 0
    printed = capsys.readouterr().out
    assert f"{NUM_SCENES} scenes in {NUM_SHARDS} shards" in printed and "QA pairs" in printed
    assert main(["dataset", "info", str(reference), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_scenes"] == NUM_SCENES and sum(info["num_sources_counts"].values()) == NUM_SCENES
    assert info["num_qa"] == sum(info["qa_type_counts"].values()) > 0

    assert main(["dataset", "export-wav", str(reference), "--scenes", "0", "7",
                 "--out", str(tmp_path)]) == 0
    audio, fs_hz = sf.read(tmp_path / "scene-000007.wav")
    assert fs_hz == 16000 and audio.shape == (8000, 2)
    assert main(["dataset", "export-wav", str(reference), "--scenes", "8",
                 "--out", str(tmp_path)]) == 2
    assert main(["dataset", "info", str(tmp_path)]) == 2  # no index.json
    assert "no index.json" in capsys.readouterr().err


def test_corpus_skipped_files_are_counted(tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    t = np.arange(16000) / 16000
    sf.write(clips / "tone-1.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    sf.write(clips / "noise-1.wav", 0.1 * np.random.default_rng(0).standard_normal(16000), 16000)
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "label"], ["tone-1.wav", "tone"],
                                 ["noise-1.wav", "noise"], ["gone-1.wav", "noise"]])
    corpus = ["--set", "corpus.type=csv", "--set", f"corpus.root={clips}",
              "--set", f"corpus.csv_path={tmp_path / 'labels.csv'}"]
    with pytest.warns(UserWarning, match="gone-1.wav"):
        code = main(["simulate", "--recipe", str(RECIPE), "--out", str(tmp_path / "data"),
                     "--num-scenes", "2", "--no-progress", "--set", "duration_s=0.25", *corpus])
    assert code == 0
    assert "corpus: 1 audio file(s) skipped" in capsys.readouterr().out


def test_simulate_help_explains_resume_and_sharding(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--help"])
    text = capsys.readouterr().out
    for phrase in ("Resume", "SLURM", "--shard-index", "byte-identical", "--set"):
        assert phrase in text
