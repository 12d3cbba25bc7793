"""Ask an audio-LLM a question about a sound file and print its answer.

The file (WAV, FLAC, ... anything soundfile reads) may have any sample rate: it is resampled to the
model's rate with torchaudio (a note on stderr says so). Its channel count must match the model's
encoder (2 for a binaural model, the array's microphones otherwise): channels are never mixed or
invented. A file holding NaN or infinite samples is refused; a clipped one (samples at full scale,
|x| >= 0.999) is answered with a warning on stderr.

Example:
    spatial-alm ask --model out/llm_tiny/model --audio scene-000042.wav \\
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
    import soundfile as sf
    import torch
    import torchaudio

    try:
        data, file_fs_hz = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError) as err:
        why = getattr(err, "error_string", None) or str(err)
        raise ValueError(f"{path}: not readable as audio ({why}); allowed: a sound file soundfile reads "
                         "(WAV, FLAC, OGG, ...)") from None
    if data.shape[1] != num_channels:
        raise ValueError(f"{path}: {data.shape[1]} channel(s); allowed: {num_channels}, the channels the model's "
                         "encoder was trained on")
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no samples; allowed: a sound file with audio in it")
    bad = ~np.isfinite(data)
    if bad.any():
        first_s = np.argwhere(bad)[0][0] / file_fs_hz
        raise ValueError(f"{path}: {int(bad.sum())} NaN or infinite sample(s), the first at {first_s:.3f} s; "
                         "allowed: finite samples")
    clipped = int((np.abs(data) >= CLIP_LEVEL).sum())
    if clipped:
        _note("warning", f"{path}: {clipped} sample(s) at full scale (|x| >= {CLIP_LEVEL}): the recording is "
              "clipped, and its level and direction cues are distorted")
    audio = torch.from_numpy(data.T.copy())  # (C, T)
    if file_fs_hz != fs_hz:
        _note("note", f"{path}: resampled from {int(file_fs_hz)} Hz to {int(fs_hz)} Hz (the model's rate) "
              "with torchaudio")
        audio = torchaudio.functional.resample(audio, int(file_fs_hz), int(fs_hz))
    return audio


def ask(model: AudioLLM, audio_path: str | Path, question: str, max_new_tokens: int = 48) -> str:
    """The model's greedy answer to ``question`` about the sound file at ``audio_path``."""
    features = model.encoder.features.config
    audio = load_audio(audio_path, features.fs_hz, model.encoder.num_channels)
    frames, max_frames = features.num_frames(audio.shape[-1]), model.encoder.encoder.config.max_frames
    if frames > max_frames:
        raise ValueError(f"{audio_path}: {audio.shape[-1] / features.fs_hz:.2f} s ({frames} frames); allowed: at "
                         f"most {max_frames} frames, the encoder's max_frames (crop the file)")
    device = next(model.parameters()).device
    (answer,) = model.eval().generate(audio[None].to(device), [question], max_new_tokens)
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
