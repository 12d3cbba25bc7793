"""A copy of a rendered dataset with every scene's audio through one zero-phase equaliser, the same in every channel.

What a model reads from a dataset rendered through one head, heard through another head's overall colouring:
``head_spectra.py --match-out`` writes the gain curve (dB at third-octave band centres) that moves a head's
diffuse-field spectrum onto a set of training heads' mean; applied here to a dataset rendered through that head,
every direction keeps its own colouring relative to the head's diffuse field and loses the head's common one.
The same gain in every channel leaves the interaural differences as they were.

The equaliser (:func:`colour`): the gain is interpolated linearly in dB over log frequency between the band
centres, flat beyond the first and last (:func:`gain_at`), applied to the FFT of each scene's audio zero-padded by
``PAD_SAMPLES`` (nothing wraps around), and each scene is scaled back to its own peak (the renderer's
``output.peak_dbfs``), so a gain common to all frequencies changes nothing.
Metadata, questions and answers are copied as they are; ``index.json`` gets the new shards' sha256 and the
output folder an ``audio_filter.json`` naming the source dataset and the curve.

    python experiments/diagnostics/filter_dataset_audio.py out/cipic_bb_ku100_test1k_s5 \\
        out/cipic_bb_ku100_test1k_s5_cipic_df --gain-json out/ku100_to_cipic.json
"""

import argparse
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from spatial_alm.data.schema import INDEX_FILENAME, file_sha256, read_index

PAD_SAMPLES = 4096


def gain_at(frequencies_hz: torch.Tensor, nodes_hz: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
    """Linear gain (F,) at frequencies (F,) in Hz: ``gain_db`` (K,) at increasing ``nodes_hz`` (K,), interpolated
    linearly in dB over log frequency, flat beyond the ends."""
    if nodes_hz.ndim != 1 or len(nodes_hz) < 2 or gain_db.shape != nodes_hz.shape:
        raise ValueError(f"need nodes_hz and gain_db of one length K >= 2, got {tuple(nodes_hz.shape)} and "
                         f"{tuple(gain_db.shape)}")
    if not bool((nodes_hz > 0).all()) or not bool((nodes_hz.diff() > 0).all()):
        raise ValueError(f"nodes_hz must be positive and increasing, got {nodes_hz.tolist()}")
    log_nodes = nodes_hz.double().log()
    log_f = frequencies_hz.double().clamp(float(nodes_hz[0]), float(nodes_hz[-1])).log()
    left = (torch.searchsorted(log_nodes, log_f, right=True) - 1).clamp(0, len(nodes_hz) - 2)
    weight = (log_f - log_nodes[left]) / (log_nodes[left + 1] - log_nodes[left])
    gain_db = gain_db.double()
    return 10.0 ** ((gain_db[left] * (1.0 - weight) + gain_db[left + 1] * weight) / 20.0)


def colour(audio: torch.Tensor, fs_hz: int, nodes_hz: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
    """Audio (B, C, T) through the equaliser ``gain_db`` (K,) at ``nodes_hz`` (K,), every clip scaled back to its
    own peak; same dtype."""
    n = audio.shape[-1] + PAD_SAMPLES
    gain = gain_at(torch.fft.rfftfreq(n, 1.0 / fs_hz, dtype=torch.float64), nodes_hz, gain_db)
    coloured = torch.fft.irfft(torch.fft.rfft(audio.double(), n=n, dim=-1) * gain, n=n, dim=-1)[..., :audio.shape[-1]]
    old_peak = audio.double().abs().amax(dim=(-2, -1), keepdim=True)
    new_peak = coloured.abs().amax(dim=(-2, -1), keepdim=True)
    scale = torch.where(new_peak > 0, old_peak / new_peak.clamp_min(1e-30), torch.zeros_like(new_peak))
    return (coloured * scale).to(audio.dtype)


def filter_dataset(source: Path, out: Path, centres_hz: torch.Tensor, gain_db: torch.Tensor,
                   progress: bool = True) -> None:
    """Copy the dataset ``source`` to ``out`` with every scene's audio through the gain ``gain_db`` (K,) at
    ``centres_hz`` (K,) (module docstring)."""
    index = read_index(source)
    if out.exists():
        raise SystemExit(f"{out} exists: choose a new output folder")
    out.mkdir(parents=True)
    shards = []
    for entry in tqdm(index.shards, desc="filter shards", disable=not progress):
        shutil.copyfile(source / entry.file, out / entry.file)
        with h5py.File(out / entry.file, "r+") as f:
            stored = f["audio"]
            scale = float(stored.attrs["scale"])
            audio = torch.from_numpy(stored[...].astype(np.float64) / scale)  # (N, C, T)
            audio = colour(audio, index.fs_hz, centres_hz, gain_db).numpy()
            if np.issubdtype(stored.dtype, np.integer):
                limit = np.iinfo(stored.dtype).max
                stored[...] = np.clip(np.round(audio * scale), -limit, limit).astype(stored.dtype)
            else:
                stored[...] = (audio * scale).astype(stored.dtype)
        shards.append({**entry.__dict__, "sha256": file_sha256(out / entry.file),
                       "size_bytes": (out / entry.file).stat().st_size})
    text = json.loads((source / INDEX_FILENAME).read_text())
    (out / INDEX_FILENAME).write_text(json.dumps({**text, "shards": shards}, indent=2, sort_keys=True) + "\n")
    (out / "audio_filter.json").write_text(json.dumps({"source": str(source), "centres_hz": centres_hz.tolist(),
                                                       "gain_db": gain_db.tolist()}, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="dataset folder (spatial-alm simulate's output)")
    parser.add_argument("out", type=Path, help="new dataset folder")
    parser.add_argument("--gain-json", type=Path, required=True,
                        help="JSON with centres_hz and gain_db lists (head_spectra.py --match-out)")
    args = parser.parse_args()
    curve = json.loads(args.gain_json.read_text())
    try:
        centres_hz = torch.tensor(curve["centres_hz"], dtype=torch.float64)
        gain_db = torch.tensor(curve["gain_db"], dtype=torch.float64)
        gain_at(torch.tensor([1000.0]), centres_hz, gain_db)
    except (KeyError, TypeError, ValueError) as error:
        raise SystemExit(f"{args.gain_json}: needs centres_hz and gain_db lists of one length ({error})") from None
    filter_dataset(args.source, args.out, centres_hz, gain_db)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
