"""A copy of a rendered dataset with every scene's audio through one zero-phase equaliser, the same in every channel.

What a model reads from a dataset rendered through one head, heard through another head's overall colouring:
``head_spectra.py --match-out`` writes the gain curve (dB at third-octave band centres) that moves a head's
diffuse-field spectrum onto a set of training heads' mean; applied here to a dataset rendered through that head,
every direction keeps its own colouring relative to the head's diffuse field and loses the head's common one.
The same gain in every channel leaves the interaural differences as they were.

The equaliser is :func:`spatial_alm.acoustics.equaliser.colour`: the gain is
interpolated linearly in dB over log frequency between the band centres, flat beyond the first and last, applied
to the zero-padded FFT of each scene's audio, and each scene is scaled back to its own peak (the renderer's
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

from spatial_alm.acoustics.equaliser import colour, gain_at
from spatial_alm.data.schema import INDEX_FILENAME, file_sha256, read_index


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
            audio = colour(audio, index.fs_hz, centres_hz, gain_db[None].expand(len(audio), -1)).numpy()
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
        gain_at(torch.tensor([1000.0]), centres_hz, gain_db[None])
    except (KeyError, TypeError, ValueError) as error:
        raise SystemExit(f"{args.gain_json}: needs centres_hz and gain_db lists of one length ({error})") from None
    filter_dataset(args.source, args.out, centres_hz, gain_db)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
