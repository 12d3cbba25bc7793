"""Multitask pretraining of the spatial encoder (classes, azimuth, elevation, distance) with accelerate.

One function, :func:`pretrain`, driven by a validated :class:`PretrainConfig` (YAML). The dataset's
scenes are split once into train and validation by a seeded permutation; features are computed on
the training device; SpecAugment-style time/frequency masks (the same mask on every feature plane)
regularise training, and with ``channel_swap`` every training clip gets a random receiver-symmetry
channel swap with its labelled directions moved to match (:mod:`spatial_alm.training.channel_swap`).
Every epoch ends with a checkpoint (model, optimizer, scheduler, progress), written atomically; the
best model by validation loss is saved as a ``save_pretrained`` directory ``out_dir/model``, also
atomically (:mod:`spatial_alm.training.common`). A rerun resumes from the newest complete checkpoint
(a half-written one is skipped with a warning) and reproduces the uninterrupted run exactly: data
order, swaps and masks are seeded per epoch. ``out_dir/run.json`` records the config and the
dataset's identity; a rerun with other ones is refused unless ``overwrite``. Multi-GPU: launch the
same command with ``torchrun`` or ``accelerate launch``; mixed precision (bf16) is used on CUDA by default.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torchaudio
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from spatial_alm.config import check_fields, config_section, dataclass_from_dict, load_yaml_file, merge_overrides
from spatial_alm.data import SpatialSceneDataset, dataset_info
from spatial_alm.data.schema import read_index
from spatial_alm.evaluation.metrics import detection_map, doa_accuracy
from spatial_alm.features import SpatialFeatureConfig, num_planes
from spatial_alm.models.encoder import EncoderConfig, LossWeights, SpatialEncoderModel, decode_logits, multitask_loss
from spatial_alm.models.targets import EncoderTargets, class_to_azimuth, class_to_elevation
from spatial_alm.scenes.recipe import ReceiverConfig, SceneRecipe
from spatial_alm.training.channel_swap import ChannelSwap, channel_positions, receiver_symmetries
from spatial_alm.training.common import (
    MODEL_DIR,
    SUMMARY_FILE,
    data_identity,
    epoch_seed,
    load_latest_checkpoint,
    optimisation_checks,
    prepare_run,
    raise_on_failed_checks,
    restore_training_state,
    save_checkpoint,
    seed_epoch,
    split_indices,
    training_accelerator,
    warmup_cosine,
    write_folder,
    write_text_atomically,
)

PRESETS = {"tiny": EncoderConfig.tiny, "vit_base": EncoderConfig.vit_base}
RESUMABLE_CHANGES = ("epochs", "num_workers", "log_every")  # config fields a resumed run may change


@dataclass
class PretrainConfig:
    """Encoder pretraining settings (YAML keys = field names; unknown keys are errors)."""

    preset: str = "tiny"  # encoder size: "tiny" (CPU) or "vit_base" (Spatial-AST size)
    encoder: dict = field(default_factory=dict)  # overrides of the preset's EncoderConfig fields
    # SpatialFeatureConfig fields; fs_hz comes from the data, and so do the microphone positions of
    # srp_phat planes when mic_positions_m is not given (the dataset's array)
    features: dict = field(default_factory=dict)
    loss_weights: dict = field(default_factory=lambda: {"classes": 1.0, "azimuth": 1.0, "elevation": 1.0,
                                                        "distance": 1.0})
    direction_sigma_deg: float = 0.0  # Gaussian width of azimuth/elevation targets (0: one-hot, as BAT)
    channel_swap: bool = False  # random receiver-symmetry channel swaps with moved labels (training.channel_swap)
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05  # of all optimizer steps, linear warm-up then cosine decay
    grad_clip: float = 1.0
    gradient_accumulation_steps: int = 1
    val_fraction: float = 0.1
    freq_mask_bins: int = 16  # SpecAugment: widest frequency mask (mel bins), 0 = off
    time_mask_frames: int = 20  # widest time mask (frames), 0 = off
    num_workers: int = 0
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA, else no), "no", "bf16", "fp16"
    seed: int = 0
    log_every: int = 10  # optimizer steps between TensorBoard scalars and progress-bar loss updates

    def __post_init__(self):
        checks = {
            "preset": (self.preset in PRESETS, f"one of {sorted(PRESETS)}"),
            "direction_sigma_deg": (self.direction_sigma_deg >= 0, ">= 0"),
            "epochs": (self.epochs >= 1, ">= 1"),
            "freq_mask_bins": (self.freq_mask_bins >= 0, ">= 0"),
            "time_mask_frames": (self.time_mask_frames >= 0, ">= 0"),
            **optimisation_checks(self),
        }
        raise_on_failed_checks("pretrain config", self, checks)
        with config_section("loss_weights", "pretrain config"):
            dataclass_from_dict(LossWeights, self.loss_weights, "pretrain config")
        for section, cls in (("encoder", EncoderConfig), ("features", SpatialFeatureConfig)):
            with config_section(section, "pretrain config"):  # keys and types; sizes are checked with the data
                check_fields(cls, getattr(self, section), "pretrain config")

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        return dataclass_from_dict(cls, d, "pretrain config")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> "PretrainConfig":
        data = load_yaml_file(path, "pretrain config") or {}
        if not isinstance(data, dict):
            raise ValueError(f"pretrain config {path}: a YAML mapping (key: value), got {type(data).__name__}")
        return cls.from_dict(merge_overrides(data, overrides or {}))


def collate_scenes(items: list[dict]) -> dict:
    """Stack audio (B, C, T); keep the per-scene target fields as lists (without the audio: the batch
    carries, and a device copy moves, each clip once)."""
    return {"audio": torch.stack([it["audio"] for it in items]),
            "scenes": [{key: value for key, value in it.items() if key != "audio"} for it in items]}


def build_model(config: PretrainConfig, info: dict, receiver: ReceiverConfig | None = None) -> SpatialEncoderModel:
    """A fresh encoder sized for the dataset (sample rate, channels, class vocabulary). ``receiver`` (the
    dataset recipe's) gives the microphone positions of SRP-PHAT features when the config does not."""
    features = {**config.features, "fs_hz": info["fs_hz"]}
    if features.get("srp_phat") and features.get("mic_positions_m") is None:
        if receiver is None or receiver.type != "array":
            raise ValueError("features.srp_phat needs a microphone array (free-field steering); the dataset's "
                             f"receiver is {'unknown' if receiver is None else receiver.type!r}")
        features["mic_positions_m"] = channel_positions(receiver).tolist()
    feature_config = SpatialFeatureConfig(**features)
    class_names = sorted(info["class_counts"])
    planes = num_planes(feature_config, info["num_channels"])
    frames = feature_config.num_frames(round(info["duration_s"] * info["fs_hz"]))
    overrides = {"n_mels": feature_config.n_mels, **config.encoder}
    overrides.setdefault("max_frames", frames)
    encoder_config = PRESETS[config.preset](planes, len(class_names), **overrides)
    return SpatialEncoderModel(feature_config, encoder_config, info["num_channels"], class_names)


class SpecAugment(torch.nn.Module):
    """Random frequency and time masks, one per example, shared by all feature planes."""

    def __init__(self, freq_mask_bins: int, time_mask_frames: int):
        super().__init__()
        self.freq = torchaudio.transforms.FrequencyMasking(freq_mask_bins, iid_masks=True) if freq_mask_bins else None
        self.time = torchaudio.transforms.TimeMasking(time_mask_frames, iid_masks=True) if time_mask_frames else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, F, n_mels, frames)
        keep = torch.ones_like(features[:, :1])  # (B, 1, n_mels, frames)
        for mask in (self.freq, self.time):
            if mask is not None:
                keep = mask(keep)
        return features * keep


@torch.no_grad()
def evaluate_loss(model, loader, config: PretrainConfig, accelerator: Accelerator) -> dict:
    """Validation loss terms, class mAP and DoA accuracy (primary source, 20 degrees)."""
    model.eval()
    totals, count, scores, hot, pred_dir, true_dir = {}, 0, [], [], [], []
    unwrapped = accelerator.unwrap_model(model)
    for batch in loader:  # host batches (the loaders are not device-placed)
        logits = model(batch["audio"].to(accelerator.device, non_blocking=True))
        targets = EncoderTargets.from_scenes(batch["scenes"], unwrapped.class_names).to(accelerator.device)
        loss, terms = multitask_loss(logits, targets, config.loss_weights, config.direction_sigma_deg)
        n = batch["audio"].shape[0]
        for name, value in {"loss": loss.detach(), **terms}.items():
            totals[name] = totals.get(name, 0.0) + value.item() * n
        count += n
        scores.append(torch.sigmoid(logits.classes.float()).cpu())
        hot.append(targets.classes.cpu())
        valid = targets.azimuth >= 0
        decoded = decode_logits(logits)
        pred_dir.append(torch.stack([decoded.azimuth_deg[valid].cpu(), decoded.elevation_deg[valid].cpu()], -1))
        true_dir.append(torch.stack([class_to_azimuth(targets.azimuth[valid].cpu()),
                                     class_to_elevation(targets.elevation[valid].cpu())], -1))
    model.train()
    pred, true = torch.cat(pred_dir).double().numpy(), torch.cat(true_dir).double().numpy()
    out = {name: total / count for name, total in totals.items()}
    out["class_map"] = detection_map(torch.cat(scores).numpy(), torch.cat(hot).numpy())
    out["doa_accuracy_20deg"] = (doa_accuracy(pred[:, 0], pred[:, 1], true[:, 0], true[:, 1]) if len(pred)
                                 else float("nan"))
    return out


def pretrain(config: PretrainConfig, data_dir: str | Path, out_dir: str | Path, *,
             overwrite: bool = False, progress: bool = True) -> dict:
    """Train an encoder on the dataset at ``data_dir``; write checkpoints, logs and ``out_dir/model``.

    A run finds its newest complete checkpoint in ``out_dir/checkpoints``
    (saved at every epoch end) and continues with the next epoch, as if never interrupted; ``epochs``
    may grow. A run folder made from another config (other than ``epochs``, ``num_workers``,
    ``log_every``) or dataset is refused (ValueError naming the fields) unless ``overwrite``;
    ``overwrite`` deletes its checkpoints, model, summary and logs and starts over.
    Returns the summary also written to ``out_dir/summary.json``.
    """
    out_dir = Path(out_dir)
    accelerator = training_accelerator(config, out_dir)
    prepare_run(accelerator, out_dir, config, {"data": data_identity(data_dir)}, may_change=RESUMABLE_CHANGES,
                start_over=overwrite, log_dir="pretrain")
    set_seed(config.seed)
    info = dataset_info(data_dir)
    dataset = SpatialSceneDataset(data_dir)
    train_idx, val_idx = split_indices(len(dataset), config.val_fraction, config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    loader_args = dict(batch_size=config.batch_size, collate_fn=collate_scenes, num_workers=config.num_workers,
                       persistent_workers=config.num_workers > 0, pin_memory=accelerator.device.type == "cuda")
    train_loader = DataLoader(Subset(dataset, train_idx), shuffle=True, drop_last=len(train_idx) > config.batch_size,
                              generator=generator, **loader_args)
    val_loader = DataLoader(Subset(dataset, val_idx), shuffle=False, **loader_args)

    receiver = SceneRecipe.from_dict(read_index(data_dir).recipe).receiver
    model = build_model(config, info, receiver)
    augment = SpecAugment(config.freq_mask_bins, config.time_mask_frames)
    swap = None
    if config.channel_swap:
        swap = ChannelSwap(receiver_symmetries(channel_positions(receiver)))
        accelerator.print(f"channel swap: {len(swap.symmetries)} receiver symmetries ({receiver.type})")
    swap_generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_loader) / config.gradient_accumulation_steps)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, config.warmup_fraction))

    start_epoch, best, history, earlier_s = 0, math.inf, [], 0.0
    found = load_latest_checkpoint(accelerator, out_dir, SpatialEncoderModel.from_pretrained)  # none after a start over
    if found is not None:
        checkpoint, state, saved, training_state = found
        start_epoch, best = state["epoch"], state["best_val_loss"]
        if start_epoch >= config.epochs:
            accelerator.print(f"{out_dir}: training already complete ({start_epoch} epochs); nothing to do")
            return json.loads((out_dir / SUMMARY_FILE).read_text())
        model.load_state_dict(saved.state_dict())
        restore_training_state(accelerator, optimizer, scheduler, training_state)
        accelerator.print(f"resuming from {checkpoint} after epoch {start_epoch}")
        if (out_dir / SUMMARY_FILE).is_file():  # the interrupted run's epochs and time
            earlier = json.loads((out_dir / SUMMARY_FILE).read_text())
            history = [h for h in earlier["history"] if h["epoch"] <= start_epoch]
            earlier_s = earlier["wall_time_s"]
    # the loaders stay on the host: only the audio moves to the device (below), so the per-scene metadata
    # (channel swap, targets) is read without a device sync per field and sent as one target batch
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler, device_placement=[True, True, False, False, True])
    augment = augment.to(accelerator.device)
    accelerator.init_trackers("pretrain", config={k: v for k, v in asdict(config).items() if not isinstance(v, dict)})

    unwrapped = accelerator.unwrap_model(model)
    started = time.perf_counter()
    step = start_epoch * steps_per_epoch
    bar = tqdm(total=total_steps, initial=step, desc="pretrain-encoder", unit="step",
               disable=not (progress and accelerator.is_main_process))
    model.train()
    for epoch in range(start_epoch, config.epochs):
        # every draw of the epoch seeded from (seed, epoch): a resumed run repeats the uninterrupted one
        generator.manual_seed(epoch_seed(config.seed, epoch, 0))  # data order
        seed_epoch(accelerator, config.seed, epoch)  # SpecAugment masks, dropout
        swap_generator.manual_seed(config.seed + 1000 * epoch)  # channel swaps
        for batch in train_loader:
            audio, scenes = batch["audio"].to(accelerator.device, non_blocking=True), batch["scenes"]
            if swap is not None:
                audio, scenes = swap(audio, scenes, swap_generator)
            with accelerator.accumulate(model):
                targets = EncoderTargets.from_scenes(scenes, unwrapped.class_names).to(accelerator.device)
                loss, terms = multitask_loss(model(audio, augment), targets, config.loss_weights,
                                             config.direction_sigma_deg)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                step += 1
                bar.update(1)
                if step % config.log_every == 0:  # the loss read (a device sync) only here: the host runs ahead
                    bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch)
                    accelerator.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0],
                                     **{f"train/{k}": v.item() for k, v in terms.items()}}, step=step)
        val = evaluate_loss(model, val_loader, config, accelerator)
        accelerator.log({f"val/{k}": v for k, v in val.items()}, step=step)
        history.append({"epoch": epoch + 1, "step": step, **val})
        bar.write(f"epoch {epoch + 1}/{config.epochs}: val loss {val['loss']:.3f}, class mAP {val['class_map']:.1f}, "
                  f"DoA acc@20 {val['doa_accuracy_20deg']:.1f}%")
        if accelerator.is_main_process and val["loss"] < best:
            best = val["loss"]
            write_folder(out_dir / MODEL_DIR, unwrapped.save_pretrained)  # atomic: old or new model, never half
        summary = {"data": str(data_dir), "config": asdict(config), "mixed_precision": accelerator.mixed_precision,
                   "num_processes": accelerator.num_processes, "train_scenes": len(train_idx),
                   "val_scenes": len(val_idx), "steps": step,
                   "wall_time_s": earlier_s + time.perf_counter() - started, "best_val_loss": best,
                   "history": history, "model_dir": str(out_dir / MODEL_DIR)}
        if accelerator.is_main_process:  # every epoch (before the checkpoint), so a resumed run keeps its history
            write_text_atomically(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
        save_checkpoint(accelerator, out_dir, step, unwrapped, optimizer, scheduler,
                        {"epoch": epoch + 1, "step": step, "best_val_loss": best})
    bar.close()
    accelerator.end_training()
    return summary

