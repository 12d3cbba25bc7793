"""Pieces shared by the training loops (encoder pretraining, audio-LLM fine-tuning)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from spatial_alm.config import ConfigError

CHECKPOINT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 2  # newest checkpoints kept on disk
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


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
    """Checkpoint folders ``out_dir/checkpoints/step-N``, oldest first."""
    return sorted((Path(out_dir) / CHECKPOINT_DIR).glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
