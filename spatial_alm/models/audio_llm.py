"""The audio-LLM: spatial encoder -> projector -> audio embeddings spliced into a LLaMA prompt (BAT).

Data path (B clips, C channels, T samples, L prompt+answer tokens, Q audio tokens, D = LLM width)::

    audio (B, C, T) -> encoder.encode -> tokens (B, N, D_enc) -> projector -> audio_embeds (B, Q, D)
    input_ids (B, L) with Q <audio> placeholders -> llm.get_input_embeddings() -> text_embeds (B, L, D)
    inputs_embeds = audio_scatter + text_embeds * ~mask  (mask: input_ids == <audio> id; SLAM-LLM's splice)
    llm(inputs_embeds, attention_mask) -> logits (B, L, vocab); with labels (training): the decoder's
        hidden states (B, L, D), the vocabulary projection at the N answer-predicting positions (N, vocab), loss

The prompt format is :data:`PROMPT_TEMPLATE` (audio before the question); the answer follows it and
ends with the eos token (:func:`build_batch`). With ``heard_sources_threshold`` (an encoder with
class-wise heads), the question is preceded by one line that lists the sources the encoder hears
(:mod:`spatial_alm.models.heard_sources`: class, probability, sides, direction, distance, nearest first;
also the classes below the threshold that a question relating two named sounds presupposes),
so every source reaches the LLM as tokens of its own vocabulary beside the projected encoder tokens::

    USER: <audio> x Q Heard, nearest first: a dog (90%) to your left, in front of you, below you, at ...
    Is the dog to the left of the bell?
    ASSISTANT: yes</s>

Trainable parts: the
projector always; the encoder when ``train_encoder`` (else frozen and kept in eval mode, so its
BatchNorm statistics stay fixed); the LLM either fully (``full_finetune_llm``, required for the randomly
initialised built-in small LLaMA) or through LoRA adapters on a pretrained local checkpoint
(:func:`apply_lora`, BAT's r 8 / alpha 32 / dropout 0.05 on q_proj, v_proj), else frozen.

A saved directory (:meth:`AudioLLM.save_pretrained`) holds::

    audio_llm.json          projector config, prompt format version, Q, base LLM, LoRA settings
    encoder/                SpatialEncoderModel.save_pretrained
    projector.safetensors
    tokenizer/              the tokenizer with <audio> (and <pad>) added
    llm/                    the full LLM and tokenizer, a LLaMA checkpoint load_llm can open: written
                            when the LLM is the built-in one or fully fine-tuned; otherwise audio_llm.json
                            names the base checkpoint directory (``base_llm``)
    llm/adapter/            the peft LoRA adapter, when LoRA is applied
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.modeling_outputs import CausalLMOutputWithPast

from spatial_alm.models.encoder import Prediction, SpatialEncoderModel
from spatial_alm.models.heard_sources import (
    HeardSource,
    describe_sources,
    heard_sources,
    presupposed_classes,
    presupposed_opposite_sides,
)
from spatial_alm.models.projector import ProjectorConfig, build_projector
from spatial_alm.models.targets import IGNORE_INDEX
from spatial_alm.models.text import AUDIO_TOKEN, load_llm

PROMPT_TEMPLATE = "USER: " + AUDIO_TOKEN + " {question}\nASSISTANT: "
PROMPT_FORMAT_VERSION = 1  # bump when PROMPT_TEMPLATE or build_batch changes
CONFIG_NAME = "audio_llm.json"
PROJECTOR_WEIGHTS = "projector.safetensors"
MODEL_TYPE = "spatial_alm.audio_llm"
BUILTIN = "builtin"  # base_llm of an LLM that exists only in memory (the built-in small LLaMA)
LAST_COMMIT_WITH_REMOVED_OPTIONS = "1be1af0"  # loads models saved with a removed option (results README)


def build_prompt(question: str, heard: str | None = None) -> str:
    """The prompt text of one question, with the single ``<audio>`` placeholder before the question
    (:data:`PROMPT_TEMPLATE`, LLaVA / BAT); ``heard`` (the heard-sources line) goes on its own line
    between the audio and the question."""
    for name, text in (("question", question), ("heard", heard or "")):
        if AUDIO_TOKEN in text:
            raise ValueError(f"{name} = {text!r}; allowed: text without the placeholder {AUDIO_TOKEN!r}")
    return PROMPT_TEMPLATE.format(question=question if heard is None else f"{heard}\n{question}")


def _check_tokenizer(tokenizer: PreTrainedTokenizerFast):
    if None in (tokenizer.eos_token_id, tokenizer.pad_token_id) or AUDIO_TOKEN not in tokenizer.all_special_tokens:
        raise ValueError(f"tokenizer needs eos and pad tokens and the special token {AUDIO_TOKEN!r} "
                         "(train_tokenizer and load_llm add them)")


def build_batch(tokenizer: PreTrainedTokenizerFast, questions: Sequence[str], answers: Sequence[str] | None = None,
                *, num_audio_tokens: int, heard: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Token ids of prompts (and answers) with the ``<audio>`` placeholder repeated ``num_audio_tokens`` times
    (prompt text: :func:`build_prompt`, with ``heard[i]`` before question i when given).

    Each row is ``[bos] prompt-with-Q-placeholders [answer eos]``. Returns ``input_ids`` and
    ``attention_mask`` (B, L), plus ``labels`` (B, L) when ``answers`` are given: the answer and eos
    ids, ``IGNORE_INDEX`` (-100) on bos, prompt, placeholder and padding positions.

    Padding (``tokenizer.pad_token_id``, attention 0): on the right for training batches (answers
    given), on the left for generation batches (no answers), so every prompt ends in the last column
    and new tokens follow it. LLaMA's rotary positions are relative, so the left padding does not
    change the logits of the real tokens.
    """
    if answers is not None and len(answers) != len(questions):
        raise ValueError(f"answers: {len(answers)} given; allowed: one per question ({len(questions)})")
    if not questions:
        raise ValueError("questions: empty; allowed: at least one question")
    if heard is not None and len(heard) != len(questions):
        raise ValueError(f"heard: {len(heard)} lines given; allowed: one per question ({len(questions)})")
    if not isinstance(num_audio_tokens, int) or num_audio_tokens < 1:
        raise ValueError(f"num_audio_tokens = {num_audio_tokens!r}; allowed: an integer >= 1")
    _check_tokenizer(tokenizer)
    audio_id = tokenizer.convert_tokens_to_ids(AUDIO_TOKEN)
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    rows, label_rows = [], []
    for i, question in enumerate(questions):
        prompt = tokenizer.encode(build_prompt(question, None if heard is None else heard[i]),
                                  add_special_tokens=False)
        at = prompt.index(audio_id)
        ids = bos + prompt[:at] + [audio_id] * num_audio_tokens + prompt[at + 1:]
        labels = [IGNORE_INDEX] * len(ids)
        if answers is not None:
            answer = tokenizer.encode(answers[i], add_special_tokens=False) + [tokenizer.eos_token_id]
            ids, labels = ids + answer, labels + answer
        rows.append(ids)
        label_rows.append(labels)
    width = max(len(ids) for ids in rows)
    right = answers is not None

    def pad(row: list[int], value: int) -> list[int]:
        fill = [value] * (width - len(row))
        return row + fill if right else fill + row

    batch = {"input_ids": torch.tensor([pad(ids, tokenizer.pad_token_id) for ids in rows]),
             "attention_mask": torch.tensor([pad([1] * len(ids), 0) for ids in rows])}
    if right:
        batch["labels"] = torch.tensor([pad(labels, IGNORE_INDEX) for labels in label_rows])
    return batch


def splice_audio(text_embeds: torch.Tensor, audio_embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Put audio embeddings (B, Q, D), in order, at the True positions of ``mask`` (B, L) in text
    embeddings (B, L, D); each row of ``mask`` must hold exactly Q positions. Returns (B, L, D)."""
    counts = mask.sum(dim=1)  # (B,)
    if (counts != audio_embeds.shape[1]).any():
        raise ValueError(f"<audio> placeholders per row = {counts.tolist()}; allowed: Q = {audio_embeds.shape[1]} "
                         "in every row (build the batch with num_audio_tokens = Q)")
    mask = mask[..., None]  # (B, L, 1)
    audio_scatter = torch.zeros_like(text_embeds).masked_scatter(mask, audio_embeds.to(text_embeds.dtype))
    return audio_scatter + text_embeds * ~mask


class AudioLLM(nn.Module):
    """Spatial encoder + projector + LLaMA; see the module doc for the data path and what trains.

    ``llm`` is a ``LlamaForCausalLM`` whose vocabulary covers ``tokenizer`` (with ``<audio>``, eos and
    pad). Its ``name_or_path``, when a directory (as after :func:`~spatial_alm.models.text.load_llm`),
    is recorded as ``base_llm``; otherwise the LLM is the in-memory built-in one (``"builtin"``).
    ``heard_sources_threshold`` (needs an encoder with class-wise heads and class names): prompts list
    the classes the encoder hears with at least this probability; None: no such line.
    """

    def __init__(self, encoder: SpatialEncoderModel, llm: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast,
                 projector_config: ProjectorConfig | None = None, train_encoder: bool = False,
                 full_finetune_llm: bool = False, heard_sources_threshold: float | None = None):
        super().__init__()
        vocab_rows = llm.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > vocab_rows:
            raise ValueError(f"tokenizer size = {len(tokenizer)}; allowed: <= the LLM's {vocab_rows} embedding rows "
                             "(resize the embeddings, e.g. with add_special_tokens)")
        _check_tokenizer(tokenizer)
        if heard_sources_threshold is not None:
            if not 0 < heard_sources_threshold < 1:
                raise ValueError(f"heard_sources_threshold = {heard_sources_threshold!r}; allowed: a probability "
                                 "in (0, 1), or None for no heard-sources line")
            if not encoder.encoder.config.class_direction_head or encoder.class_names is None:
                raise ValueError("heard_sources_threshold is set; allowed only with an encoder that has class-wise "
                                 "heads and class names (pretrain it with encoder.class_direction_head: true), "
                                 "else None")
        self.heard_sources_threshold = heard_sources_threshold
        self.encoder = encoder
        self.projector_config = projector_config or ProjectorConfig()
        embedding_std = llm.get_input_embeddings().weight.detach().float().std().item()
        self.projector = build_projector(self.projector_config, encoder.encoder.config.embed_dim,
                                         llm.config.hidden_size, output_std=embedding_std)
        self.llm = llm
        self.tokenizer = tokenizer
        self.audio_token_id = tokenizer.convert_tokens_to_ids(AUDIO_TOKEN)
        self.train_encoder = train_encoder
        self.full_finetune_llm = full_finetune_llm
        self.lora: dict | None = None  # LoRA settings once apply_lora ran
        self.base_llm = str(Path(llm.name_or_path).resolve()) if llm.name_or_path and Path(llm.name_or_path).is_dir() \
            else BUILTIN
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            setattr(llm.generation_config, name, getattr(tokenizer, name))
        encoder.requires_grad_(train_encoder)
        llm.requires_grad_(full_finetune_llm)
        self.train()

    def train(self, mode: bool = True) -> "AudioLLM":
        super().train(mode)
        if not self.train_encoder:
            self.encoder.eval()  # frozen: BatchNorm statistics stay fixed
        return self

    def num_audio_tokens(self, num_samples: int) -> int:
        """Q, the audio embeddings of a clip of ``num_samples`` samples."""
        frames = self.encoder.features.config.num_frames(num_samples)
        return self.projector.num_output_tokens(self.encoder.encoder.config.num_tokens(frames))

    @torch.no_grad()
    def hear(self, audio: torch.Tensor, questions: Sequence[str], prediction: Prediction | None = None
             ) -> list[list[HeardSource]] | None:
        """The sources of the heard line of each clip of audio (B, C, T) asked ``questions[b]``
        (:func:`heard_sources`: the classes above the threshold and those the question presupposes,
        :func:`presupposed_classes`, on opposite sides when it relates their sides,
        :func:`presupposed_opposite_sides`; nearest first), or None without ``heard_sources_threshold``;
        ``prediction``: the encoder's ``predict(audio)`` when the caller has it already."""
        if self.heard_sources_threshold is None:
            return None
        if len(questions) != audio.shape[0]:
            raise ValueError(f"questions: {len(questions)} given; allowed: one per clip ({audio.shape[0]})")
        prediction = self.encoder.predict(audio) if prediction is None else prediction
        names = self.encoder.class_names
        return heard_sources(prediction.class_probs, prediction.class_directions, prediction.class_distances,
                             names, self.heard_sources_threshold, prediction.class_azimuth_probs,
                             [presupposed_classes(question, names) for question in questions],
                             [presupposed_opposite_sides(question, names) for question in questions])

    def heard(self, audio: torch.Tensor, questions: Sequence[str]) -> list[str] | None:
        """The heard-sources line of each clip of audio (B, C, T) asked ``questions[b]`` (:meth:`hear`), or
        None without ``heard_sources_threshold``."""
        clips = self.hear(audio, questions)
        return None if clips is None else [describe_sources(sources) for sources in clips]

    def audio_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (B, C, T) -> audio embeddings (B, Q, D)."""
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            encoded = self.encoder.encode(audio)  # tokens (B, N, D_enc)
        return self.projector(encoded.tokens)

    def embed(self, audio: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """inputs_embeds (B, L, D): text embeddings of ``input_ids`` (B, L) with the audio embeddings of
        audio (B, C, T) at the ``<audio>`` positions."""
        if audio.shape[0] != input_ids.shape[0]:
            raise ValueError(f"audio batch = {audio.shape[0]}; allowed: the input_ids batch ({input_ids.shape[0]})")
        text_embeds = self.llm.get_input_embeddings()(input_ids)  # (B, L, D)
        return splice_audio(text_embeds, self.audio_embeddings(audio), input_ids == self.audio_token_id)

    def forward(self, audio: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> CausalLMOutputWithPast:
        """LLM output on audio (B, C, T) and a batch from :func:`build_batch` (``input_ids``,
        ``attention_mask``, ``labels`` (B, L)): without labels ``logits`` (B, L, vocab); with labels the
        mean next-token cross-entropy over the answer tokens as ``loss``, and ``logits`` (N, vocab) only at
        the N positions that predict an answer token (row by row): the vocabulary projection (49k rows for
        SmolLM2) and its log-softmax are computed for the answer tokens alone, never for prompts or padding
        (benchmarks/README.md, "Audio-LLM fine-tuning step")."""
        inputs_embeds = self.embed(audio, input_ids)
        if labels is None:
            return self.llm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False)
        answer = labels[:, 1:] != IGNORE_INDEX  # (B, L - 1): the token at t + 1 is an answer token
        if not answer.any():
            raise ValueError("labels: no answer token (all IGNORE_INDEX); allowed: at least one")
        llm = self.llm.get_base_model() if isinstance(self.llm, PeftModel) else self.llm  # LoRA layers stay in
        hidden = llm.get_decoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                   use_cache=False).last_hidden_state  # (B, L, D), after the final norm
        logits = llm.get_output_embeddings()(hidden[:, :-1][answer])  # (N, vocab)
        return CausalLMOutputWithPast(loss=F.cross_entropy(logits.float(), labels[:, 1:][answer]), logits=logits)

    def prepare_batch(self, audio: torch.Tensor, questions: Sequence[str], answers: Sequence[str] | None = None,
                      heard: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """``build_batch`` for audio (B, C, T) with this model's Q, on the audio's device, with ``audio``
        included: ``model(**model.prepare_batch(audio, questions, answers)).loss``. ``heard``: one
        heard-sources line per clip instead of the encoder's (e.g. the scene's true sources, for diagnostics)."""
        if heard is not None and self.heard_sources_threshold is None:
            raise ValueError("heard lines given; allowed only for a model with heard_sources_threshold set")
        batch = build_batch(self.tokenizer, questions, answers, num_audio_tokens=self.num_audio_tokens(audio.shape[-1]),
                            heard=self.heard(audio, questions) if heard is None else heard)
        return {"audio": audio, **{name: t.to(audio.device) for name, t in batch.items()}}

    @torch.no_grad()
    def generate(self, audio: torch.Tensor, questions: Sequence[str], max_new_tokens: int = 32,
                 heard: Sequence[str] | None = None) -> list[str]:
        """Greedy answers, one string per question, to audio (B, C, T) and B questions (prompts left-padded);
        ``heard`` as in :meth:`prepare_batch`. Runs in the current mode: call ``eval()`` first to turn off dropout."""
        if len(questions) != audio.shape[0]:
            raise ValueError(f"questions: {len(questions)} given; allowed: one per clip ({audio.shape[0]})")
        batch = self.prepare_batch(audio, questions, heard=heard)
        inputs_embeds = self.embed(audio, batch["input_ids"])
        new_tokens = self.llm.generate(inputs_embeds=inputs_embeds, attention_mask=batch["attention_mask"],
                                       max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                       pad_token_id=self.tokenizer.pad_token_id,
                                       eos_token_id=self.tokenizer.eos_token_id)  # (B, <= max_new_tokens)
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def config_dict(self) -> dict:
        q = self.projector_config.num_queries if self.projector_config.type == "qformer" else None
        return {"model_type": MODEL_TYPE, "prompt_format_version": PROMPT_FORMAT_VERSION,
                "prompt_template": PROMPT_TEMPLATE, "projector": self.projector_config.to_dict(),
                "num_audio_tokens": q,  # None: per clip length
                "base_llm": self.base_llm, "llm_saved": self._saves_llm(), "train_encoder": self.train_encoder,
                "full_finetune_llm": self.full_finetune_llm, "lora": self.lora,
                "heard_sources_threshold": self.heard_sources_threshold}

    def _saves_llm(self) -> bool:
        return self.base_llm == BUILTIN or self.full_finetune_llm

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the directory described in the module doc (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(directory / "encoder")
        state = {name: t.detach().contiguous().cpu() for name, t in self.projector.state_dict().items()}
        save_file(state, directory / PROJECTOR_WEIGHTS, metadata={"format": "pt"})
        self.tokenizer.save_pretrained(directory / "tokenizer")
        if self._saves_llm():
            self.llm.save_pretrained(directory / "llm")
            self.tokenizer.save_pretrained(directory / "llm")
        if self.lora is not None:  # load_llm re-adds the special-token rows identically: no embeddings saved
            self.llm.save_pretrained(directory / "llm" / "adapter", save_embedding_layers=False)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> "AudioLLM":
        """The model saved by :meth:`save_pretrained` (base LLM from ``base_llm`` when not saved, then the
        LoRA adapter), with the same parts trainable, on ``device``, in eval mode; ``dtype`` (e.g.
        ``torch.bfloat16``) applies to the LLM only."""
        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file():
            hint = (f"; did you mean {directory / 'model'}? (a run folder keeps its model in model/)"
                    if (directory / "model" / CONFIG_NAME).is_file() else "")
            raise FileNotFoundError(f"{directory / CONFIG_NAME} not found (written by AudioLLM.save_pretrained){hint}")
        config = json.loads((directory / CONFIG_NAME).read_text())
        if config.get("model_type") != MODEL_TYPE:
            raise ValueError(f"model_type in {directory / CONFIG_NAME} = {config.get('model_type')!r}; "
                             f"allowed: {MODEL_TYPE!r}")
        if config.get("prompt_format_version") != PROMPT_FORMAT_VERSION:
            raise ValueError(f"prompt_format_version in {directory / CONFIG_NAME} = "
                             f"{config.get('prompt_format_version')!r}; allowed: {PROMPT_FORMAT_VERSION}")
        projector = dict(config["projector"])  # models saved before the removal record the options as false
        removed = {"class_name_token": config.get("class_name_token"),
                   "audio_after_question": config.get("audio_after_question"),
                   "projector.instruction_aware": projector.pop("instruction_aware", False)}
        if any(removed.values()):
            raise ValueError(f"{directory / CONFIG_NAME}: {', '.join(n for n, on in removed.items() if on)} = true, "
                             "a fine-tuning option that has been removed; allowed: models saved without it (this "
                             f"one loads with commit {LAST_COMMIT_WITH_REMOVED_OPTIONS}, the last that has it)")
        tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer", local_files_only=True)
        if config["llm_saved"]:
            llm = LlamaForCausalLM.from_pretrained(directory / "llm", local_files_only=True,
                                                   **({} if dtype is None else {"dtype": dtype}))
        else:
            llm, base_tokenizer = load_llm(config["base_llm"], dtype)
            if len(base_tokenizer) != len(tokenizer):
                raise ValueError(f"base LLM {config['base_llm']}: tokenizer size {len(base_tokenizer)} after adding "
                                 f"special tokens; allowed: the saved tokenizer's {len(tokenizer)}")
        model = cls(SpatialEncoderModel.from_pretrained(directory / "encoder"), llm, tokenizer,
                    ProjectorConfig.from_dict(projector), train_encoder=config["train_encoder"],
                    full_finetune_llm=config["full_finetune_llm"],
                    heard_sources_threshold=config.get("heard_sources_threshold"))
        model.base_llm = config["base_llm"]  # the recorded base, not the folder the weights were read from
        model.projector.load_state_dict(load_file(directory / PROJECTOR_WEIGHTS))
        if config["lora"] is not None:
            model.llm = PeftModel.from_pretrained(model.llm, directory / "llm" / "adapter", is_trainable=True)
            model.lora = config["lora"]
        return model.to(device).eval()


def apply_lora(model: AudioLLM, r: int = 8, alpha: int = 32, dropout: float = 0.05,
               target_modules: Sequence[str] = ("q_proj", "v_proj")) -> AudioLLM:
    """Wrap ``model.llm`` with peft LoRA adapters (BAT defaults) in place and return ``model``.

    Only LLM modules are targets (encoder and projector are not); the base LLM stays frozen, the
    adapters (``lora_A``, ``lora_B``) and the projector train. Needs a pretrained base LLM loaded from a
    checkpoint directory: the built-in small LLaMA is random and is trained with ``full_finetune_llm``.
    """
    if model.full_finetune_llm:
        raise ValueError("full_finetune_llm = True; allowed with LoRA: False (the LLM trains fully or through LoRA)")
    if model.lora is not None:
        raise ValueError(f"LoRA is already applied ({model.lora})")
    if model.base_llm == BUILTIN:
        raise ValueError("base_llm = 'builtin'; allowed with LoRA: a pretrained checkpoint directory (load_llm); "
                         "train the built-in small LLaMA with full_finetune_llm=True, or load a saved one "
                         "(an AudioLLM directory's llm/ folder) with load_llm")
    if not (isinstance(r, int) and r >= 1 and alpha > 0 and 0 <= dropout < 1 and len(target_modules) > 0):
        raise ValueError(f"LoRA r = {r!r}, alpha = {alpha!r}, dropout = {dropout!r}, target_modules = "
                         f"{target_modules!r}; allowed: r an integer >= 1, alpha > 0, dropout in [0, 1), "
                         "at least one target module")
    settings = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": list(target_modules)}
    model.llm = get_peft_model(model.llm, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                                                     target_modules=list(target_modules), task_type="CAUSAL_LM"))
    model.lora = settings
    return model


def trainable_parameter_summary(model: AudioLLM) -> dict[str, dict[str, int]]:
    """Trainable and total parameter counts of ``encoder``, ``projector``, ``llm`` (adapters included)
    and ``all``: ``{"projector": {"trainable": ..., "total": ...}, ...}``."""
    summary = {}
    for part in ("encoder", "projector", "llm"):
        params = list(getattr(model, part).parameters())
        summary[part] = {"trainable": sum(p.numel() for p in params if p.requires_grad),
                         "total": sum(p.numel() for p in params)}
    summary["all"] = {key: sum(counts[key] for counts in summary.values()) for key in ("trainable", "total")}
    return summary
