"""Pieces shared by the training loops (encoder pretraining, audio-LLM fine-tuning).

Run folder ``OUT`` of both loops::

    OUT/run.json                 what the run was made from (resolved config, data, encoder): a rerun
                                 with other settings is refused unless it starts over (--overwrite)
    OUT/checkpoints/step-N/      model/ (save_pretrained), optimizer.pt (optimizer, scheduler and
                                 grad-scaler state), progress.json; the newest KEEP_CHECKPOINTS kept
    OUT/model/                   the final (or best) model
    OUT/summary.json, OUT/<loop name>/   summary and TensorBoard logs

Checkpoints and ``OUT/model`` are written atomically (:func:`write_folder`): into ``NAME.tmp``,
fsynced, then renamed, so a killed or out-of-disk run never leaves a folder that looks complete. On
resume :func:`load_latest_checkpoint` takes the newest checkpoint that loads, skipping (with a
warning) half-written ones. Randomness is re-seeded at every epoch start from (seed, epoch)
(:func:`seed_epoch`), so a resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed

from spatial_alm.config import ConfigError
from spatial_alm.data.schema import file_sha256, read_index
from spatial_alm.errors import DiskFullError

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
MODEL_DIR = "model"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
PROGRESS_FILE = "progress.json"
TRAINING_STATE_FILE = "optimizer.pt"  # optimizer, scheduler and grad-scaler state
TMP_SUFFIX, OLD_SUFFIX = ".tmp", ".old"
KEEP_CHECKPOINTS = 2  # newest checkpoints kept on disk
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
_STEP_NAME = re.compile(r"step-(\d+)")


def optimisation_checks(config) -> dict[str, tuple[bool, str]]:
    """Validity of the optimisation fields both training configs share: name -> (ok, allowed)."""
    return {
        "batch_size": (config.batch_size >= 1, ">= 1"),
        "learning_rate": (config.learning_rate > 0, "> 0"),
        "weight_decay": (config.weight_decay >= 0, ">= 0"),
        "warmup_fraction": (0 <= config.warmup_fraction < 1, "in [0, 1)"),
        "grad_clip": (config.grad_clip > 0, "> 0"),
        "gradient_accumulation_steps": (config.gradient_accumulation_steps >= 1, ">= 1"),
        "val_fraction": (0 < config.val_fraction < 1, "in (0, 1)"),
        "num_workers": (config.num_workers >= 0, ">= 0"),
        "mixed_precision": (config.mixed_precision in MIXED_PRECISION, ", ".join(MIXED_PRECISION)),
        "log_every": (config.log_every >= 1, ">= 1"),
    }


def raise_on_failed_checks(what: str, config, checks: dict[str, tuple[bool, str]]) -> None:
    """ValueError naming the first field whose check failed, its value and what is allowed."""
    for name, (ok, allowed) in checks.items():
        if not ok:
            raise ConfigError(name, getattr(config, name), allowed, what)


def resolve_mixed_precision(name: str) -> str:
    """"auto" -> "bf16" on CUDA, else "no"; other names unchanged."""
    if name == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return name


def training_accelerator(config, out_dir: Path) -> Accelerator:
    """The Accelerator of one training run: ``config.mixed_precision`` (resolved), its gradient
    accumulation, TensorBoard logs under ``out_dir``.

    accelerate keeps one process-wide state whose precision a later Accelerator may not change, so an
    encoder trained in float32 followed by an LLM in bf16 in the same process (the quickstart, a
    notebook) would stop with "AcceleratorState has already been initialized". Each run here starts
    from a fresh state, as transformers' TrainingArguments does (``AcceleratorState._reset_state``);
    the process group (``PartialState``) is kept, so a distributed launch is unaffected.
    """
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=resolve_mixed_precision(config.mixed_precision), log_with="tensorboard",
                       project_dir=str(out_dir), gradient_accumulation_steps=config.gradient_accumulation_steps)


def split_indices(num_scenes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of scene indices into (train, validation); validation keeps at least one scene."""
    order = np.random.default_rng(seed).permutation(num_scenes)
    num_val = max(1, round(val_fraction * num_scenes))
    if num_val >= num_scenes:
        raise ValueError(f"dataset has {num_scenes} scenes: too few to hold out {val_fraction:.0%} for validation")
    return np.sort(order[num_val:]), np.sort(order[:num_val])


def warmup_cosine(total_steps: int, warmup_fraction: float):
    """LambdaLR factor: linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to 0."""
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def checkpoints(out_dir: Path) -> list[Path]:
    """Checkpoint folders ``out_dir/checkpoints/step-N``, oldest first (not ``.tmp``/``.old`` leftovers)."""
    found = [p for p in (Path(out_dir) / CHECKPOINT_DIR).glob("step-*") if _STEP_NAME.fullmatch(p.name)]
    return sorted(found, key=_step)


def _step(path: Path) -> int:
    return int(_STEP_NAME.fullmatch(path.name)[1])


def epoch_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from ``(seed, *keys)``: independent streams per epoch, phase or purpose."""
    return int(np.random.SeedSequence([seed % 2**63, *keys]).generate_state(1)[0])


def seed_epoch(accelerator, seed: int, *keys: int) -> None:
    """Seed the global RNGs (python, numpy, torch, CUDA: dropout, SpecAugment masks) at an epoch start
    from ``(seed, *keys, process index)``: a run resumed at this epoch draws exactly what the
    uninterrupted run drew, with no RNG state in the checkpoint."""
    set_seed(epoch_seed(seed, *keys, 1 + accelerator.process_index))


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle(final: Path) -> None:
    """Finish what a killed :func:`write_folder` left: ``final`` back from ``final.old`` when the kill
    came between the two renames, and no ``.tmp``/``.old`` leftovers."""
    tmp, old = final.with_name(final.name + TMP_SUFFIX), final.with_name(final.name + OLD_SUFFIX)
    if old.is_dir() and not final.exists():
        old.rename(final)
    for leftover in (tmp, old):
        if leftover.exists():
            logger.warning("removing %s (left by an interrupted save)", leftover)
            shutil.rmtree(leftover)


def write_folder(final: str | Path, write: Callable[[Path], object]) -> Path:
    """Write a folder atomically: ``write(tmp)`` fills ``final.tmp``, every file is fsynced, then the
    folder is renamed to ``final``. An existing ``final`` is replaced only once the new one is
    complete. On an error the temporary folder is removed, so ``final`` is the old one or the new one,
    never half of one; a full disk raises :class:`DiskFullError` naming the folder and the bytes
    written before space ran out."""
    final = Path(final)
    tmp, old = final.with_name(final.name + TMP_SUFFIX), final.with_name(final.name + OLD_SUFFIX)
    _settle(final)
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        for path in sorted(tmp.rglob("*"), reverse=True):  # files, then their folders
            _fsync(path)
        _fsync(tmp)
    except BaseException as err:
        written = _folder_bytes(tmp) if tmp.is_dir() else 0
        free = shutil.disk_usage(next(p for p in (tmp, *tmp.parents) if p.exists())).free
        shutil.rmtree(tmp, ignore_errors=True)
        # torch.save reports ENOSPC as a RuntimeError ("file write failed"), safetensors as "StorageFull"
        if (getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(err)
                or "StorageFull" in str(err) or (isinstance(err, (OSError, RuntimeError)) and free < 2**24)):
            raise DiskFullError(errno.ENOSPC, f"{final}: the disk is full (no space left on device after "
                                f"{written / 1e6:.1f} MB of it were written, {free / 1e6:.1f} MB were left free; the "
                                "unfinished copy was removed); free space or choose another --out, then run "
                                "the same command again to resume") from err
        raise
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    _fsync(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


def save_checkpoint(accelerator, out_dir: Path, step: int, model, optimizer, scheduler, progress: dict) -> Path:
    """Write ``out_dir/checkpoints/step-{step}`` atomically (main process): ``model.save_pretrained``,
    optimizer, scheduler and grad-scaler state, ``progress``; then keep the newest ``KEEP_CHECKPOINTS``
    (the new one and the ones just before it; none newer survive: they are leftovers the run has not
    reached again)."""
    path = Path(out_dir) / CHECKPOINT_DIR / f"step-{step}"
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        if accelerator.scaler is not None:
            state["scaler"] = accelerator.scaler.state_dict()

        def write(tmp: Path) -> None:
            model.save_pretrained(tmp / MODEL_DIR)
            torch.save(state, tmp / TRAINING_STATE_FILE)
            (tmp / PROGRESS_FILE).write_text(json.dumps(progress, indent=2) + "\n")

        write_folder(path, write)
        older = [c for c in checkpoints(out_dir) if _step(c) < step]
        newer = [c for c in checkpoints(out_dir) if _step(c) > step]
        for stale in older[:max(0, len(older) - (KEEP_CHECKPOINTS - 1))] + newer:
            shutil.rmtree(stale)
    accelerator.wait_for_everyone()
    return path


def load_latest_checkpoint(accelerator, out_dir: Path, load_model: Callable[[Path], object]):
    """``(path, progress, model, training_state)`` of the newest checkpoint that loads completely
    (``load_model(path / "model")``), or None. Leftovers of a killed save are removed; a checkpoint
    that is incomplete or does not load is skipped with a warning (it is replaced when the run
    reaches its step again, or pruned)."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    if accelerator.is_main_process:
        for leftover in sorted(folder.glob(f"step-*{TMP_SUFFIX}")) + sorted(folder.glob(f"step-*{OLD_SUFFIX}")):
            _settle(leftover.with_suffix(""))
    accelerator.wait_for_everyone()
    for path in reversed(checkpoints(out_dir)):
        try:
            progress = json.loads((path / PROGRESS_FILE).read_text())
            state = torch.load(path / TRAINING_STATE_FILE, map_location="cpu", weights_only=True)
            model = load_model(path / MODEL_DIR)
        except Exception as err:  # any unreadable file means: not this checkpoint
            logger.warning("skipping checkpoint %s: incomplete or unreadable (%s: %s); trying an earlier one",
                           path, type(err).__name__, err)
            continue
        return path, progress, model, state
    return None


def restore_training_state(accelerator, optimizer, scheduler, state: dict) -> None:
    """Load a checkpoint's optimizer, scheduler and grad-scaler state (before ``accelerator.prepare``)."""
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if accelerator.scaler is not None and "scaler" in state:
        accelerator.scaler.load_state_dict(state["scaler"])


def data_identity(data_dir: str | Path) -> dict:
    """What a dataset is, independent of its path: recipe, seed, scene count and a hash of its shards."""
    index = read_index(data_dir)
    shards = "\n".join(f"{s.file} {s.sha256}" for s in index.shards)
    return {"recipe": index.recipe, "seed": index.seed, "num_scenes": index.num_scenes,
            "sha256": hashlib.sha256(shards.encode()).hexdigest()}


def folder_identity(folder: str | Path) -> dict:
    """A hash over a model folder's files (names and contents), e.g. a pretrained encoder's."""
    folder, h = Path(folder), hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder).as_posix()} {file_sha256(path)}\n".encode())
    return {"sha256": h.hexdigest()}


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    return {prefix[:-1]: value}


def prepare_run(accelerator, out_dir: Path, config, sources: dict, *, may_change: tuple[str, ...] = (),
                start_over: bool = False, log_dir: str | None = None) -> None:
    """Check and record what the run in ``out_dir`` is made from: ``{"config": asdict(config), **sources}``
    in ``out_dir/run.json``.

    A run folder holding checkpoints or a model made from other settings (config fields other than
    ``may_change``, e.g. the epoch counts, or other ``sources``) is refused with a ValueError naming
    each field, its old and its new value. With ``start_over`` (--overwrite) the old
    checkpoints, model, summary, record and logs (``log_dir``) are deleted instead.
    """
    out_dir = Path(out_dir)
    record = json.loads(json.dumps({"config": asdict(config), **sources}))
    path = out_dir / RUN_FILE
    made = checkpoints(out_dir) or (out_dir / MODEL_DIR).is_dir()
    if start_over:
        if accelerator.is_main_process:
            for name in (CHECKPOINT_DIR, MODEL_DIR, MODEL_DIR + TMP_SUFFIX, MODEL_DIR + OLD_SUFFIX, SUMMARY_FILE,
                         RUN_FILE, log_dir):
                target = out_dir / name if name else None
                if target is not None and target.exists():
                    logger.warning("removing %s (starting over)", target)
                    if target.is_dir():
                        shutil.rmtree(target)
                    else:
                        target.unlink()
    elif path.is_file() and made:
        earlier = json.loads(path.read_text())
        defaults = json.loads(json.dumps(asdict(type(config)())))  # a field newer than the run: at its default
        old, new = _flatten({**earlier, "config": {**defaults, **earlier.get("config", {})}}), _flatten(record)
        skip = {f"config.{name}" for name in may_change}

        def shown(values: dict, key: str) -> str:
            return repr(values[key]) if key in values else "(absent)"

        differ = [  # an empty dict (no overrides) counts as absent
            f"{key}: {shown(old, key)} -> {shown(new, key)}" for key in sorted(set(old) | set(new))
                  if old.get(key, {}) != new.get(key, {}) and ".".join(key.split(".")[:2]) not in skip]
        if differ:
            listed = "; ".join(differ[:5]) + (f" (and {len(differ) - 5} more)" if len(differ) > 5 else "")
            raise ValueError(f"{out_dir} holds a run made from other settings ({listed}); use another --out, "
                             "or --overwrite to delete that run and start over")
    elif made:
        logger.warning("%s has no %s (made by an older version): its settings cannot be checked", out_dir, RUN_FILE)
    if accelerator.is_main_process:
        _settle(out_dir / MODEL_DIR)
        write_text_atomically(path, json.dumps(record, indent=2) + "\n")
    accelerator.wait_for_everyone()


def write_text_atomically(path: Path, text: str) -> None:
    """Write a small text file atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    tmp.write_text(text)
    os.replace(tmp, path)
