"""Subcommands of the ``spatial-alm`` CLI (see ``spatial_alm.cli``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from spatial_alm.config import load_yaml, yaml_error_text


def parse_overrides(items: list[str]) -> dict:
    """``--set`` values ``["room.rt60_s=[0.3,0.5]", ...]`` -> ``{"room.rt60_s": [0.3, 0.5], ...}`` (YAML values)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. room.rt60_s=[0.3,0.5]")
        try:
            overrides[key.strip()] = load_yaml(value)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {item!r}: the value is not valid YAML ({yaml_error_text(err)})") from None
    return overrides


def require_file(path: Path, option: str) -> Path:
    """``path`` when it is an existing file; else a ValueError naming ``option`` and the path."""
    if not path.exists():
        raise ValueError(f"{option} {path}: no such file")
    if not path.is_file():
        raise ValueError(f"{option} {path}: a folder; allowed: a file")
    return path


def require_dataset(path: Path, option: str = "--data"):
    """The index of the dataset folder ``path``, after a quick look at its files (no hashing, nothing
    opened): ``index.json`` readable, every shard present at the size it records. A ValueError names
    ``option``, the folder and the first problem (``spatial-alm dataset check`` lists them all)."""
    from spatial_alm.data.schema import INDEX_FILENAME, read_index

    made_by = "a dataset folder written by `spatial-alm simulate`"
    if not path.is_dir():
        problem = "no such folder" if not path.exists() else f"a file; allowed: {made_by}"
        raise ValueError(f"{option} {path}: {problem}")
    if not (path / INDEX_FILENAME).is_file():
        raise ValueError(f"{option} {path}: no {INDEX_FILENAME}; allowed: {made_by} (when all its shards are there, "
                         f"`spatial-alm dataset index {path}` writes the index)")
    try:
        index = read_index(path)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{option} {path}: unreadable {INDEX_FILENAME} ({type(err).__name__}: {err})") from None
    for entry in index.shards:
        shard = path / entry.file
        problem = None
        if not shard.is_file():
            problem = f"{entry.file} is missing"
        elif shard.stat().st_size != entry.size_bytes:
            problem = (f"{entry.file} is {shard.stat().st_size} bytes, {INDEX_FILENAME} says {entry.size_bytes} "
                       "(truncated or changed)")
        if problem:
            raise ValueError(f"{option} {path}: {problem}; `spatial-alm dataset check {path}` lists every problem")
    return index


def require_recordings(path: Path, option: str = "--recordings") -> Path:
    """``path`` when it is a folder (of labelled recordings, read later); else a ValueError naming ``option``."""
    if not path.is_dir():
        raise ValueError(f"{option} {path}: " + ("no such folder" if not path.exists() else
                                                 "a file; allowed: a folder of audio files with a labels CSV"))
    return path


def require_model_dir(path: Path, option: str, marker: str, made_by: str) -> Path:
    """``path`` when it holds ``marker`` (a saved model's config file); a run folder whose ``model/``
    holds it gets "did you mean RUN/model"."""
    if (path / marker).is_file():
        return path
    if (path / "model" / marker).is_file():
        raise ValueError(f"{option} {path}: a run folder, not a model folder; did you mean {path / 'model'}?")
    if not path.exists():
        raise ValueError(f"{option} {path}: no such folder")
    raise ValueError(f"{option} {path}: no {marker}; allowed: a model folder written by {made_by} (its RUN/model)")


def require_writable_dir(path: Path, option: str = "--out") -> Path:
    """Create the folder ``path`` if needed and check that a file can be written in it."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: a file; allowed: a folder (new or existing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"{option} {path}: not writable ({err.strerror or err}); allowed: a folder you can "
                         "create and write in") from None
    return path


def resolve_device(name: str | None, option: str = "--device") -> str:
    """The torch device to run on: ``name`` after checking it exists here; by default cuda when available."""
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"{option} {name!r}: not a torch device; allowed: cpu, cuda, cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{option} {name}: no CUDA GPU is available on this machine; allowed: cpu (or leave "
                             f"{option} out)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"{option} {name}: this machine has {count} CUDA device(s); allowed: cuda:0 .. "
                             f"cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{option} {name}: MPS is not available on this machine; allowed: cpu")
    return name
