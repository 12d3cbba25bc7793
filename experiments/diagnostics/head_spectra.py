"""Measured heads' spectra against a set of reference heads: diffuse-field colouring and front/back difference.

A model trained on some heads reads front/back from the colouring of a sound. A head whose colouring differs
from every training head's *in all directions alike* (a different ear-canal or microphone response, a
diffuse-field equalised dummy head against raw blocked-ear-canal measurements) shifts every direction's
spectrum the same way, which a model may read as a shift towards the back or the front. This script measures it.

For every head, on one grid of directions (the CIPIC grid, :func:`~spatial_alm.acoustics.cipic.cipic_grid`:
1250 directions, elevations -45..231 deg in interaural-polar coordinates; other heads by their nearest measured
direction) at ``--fs`` Hz, the HRIRs' power in third-octave bands
(:func:`~spatial_alm.acoustics.spectral_cues.third_octave_edges`) is

- diffuse-field: averaged over all directions and both ears, in dB relative to the head's own mean level in
  the bands below ``NORMALISE_BELOW_HZ`` (measurement systems differ in overall gain);
- front/back: the mean over frontal directions (azimuth within 70 deg of the front, |elevation| < 40 deg) minus
  the mean over rear ones (within 70 deg of the back), both ears, in dB.

Printed per band: the reference heads' mean and standard deviation, then every compared head's diffuse-field
deviation from that mean and its front/back difference. ``--match-out JSON`` writes, for the first of
``--heads``, the gain curve (dB per band centre) that moves its diffuse-field spectrum onto the reference
mean: ``filter_dataset_audio.py`` applies it to a rendered dataset. ``--equalisation diffuse_field`` measures
every head as the simulator renders it with ``receiver.equalisation: diffuse_field`` (then every diffuse-field
row is flat and the front/back rows stay those of the raw heads).

    python experiments/diagnostics/head_spectra.py --reference $SPATIAL_ALM_SHARED_DATA/hrtf/cipic \\
        --exclude subject_003 subject_010 subject_019 subject_040 subject_058 \\
        --heads $SPATIAL_ALM_SHARED_DATA/hrtf/FHK_HRIR_L2354.sofa --match-out out/ku100_to_cipic.json
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from spatial_alm.acoustics.cipic import cipic_grid
from spatial_alm.acoustics.heads import EQUALISATIONS, HeadModel, make_head
from spatial_alm.acoustics.spectral_cues import third_octave_edges

NORMALISE_BELOW_HZ = 1000.0
FRONT_BACK_WITHIN_DEG = 70.0
HORIZONTAL_WITHIN_DEG = 40.0
N_FFT = 1024


def band_levels_db(hrirs: torch.Tensor, fs_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """Band centres (B,) in Hz and the power of HRIRs (D, 2, L) in their third-octave bands, (D, 2, B) in dB."""
    power = torch.fft.rfft(hrirs.double(), n=max(N_FFT, hrirs.shape[-1]), dim=-1).abs().square()
    frequencies = torch.fft.rfftfreq(max(N_FFT, hrirs.shape[-1]), 1.0 / fs_hz, dtype=torch.float64)
    edges = third_octave_edges(fs_hz)
    levels = torch.stack([power[..., (frequencies >= low) & (frequencies < high)].mean(-1) for low, high in edges],
                         dim=-1)
    return np.array([math.sqrt(low * high) for low, high in edges]), 10.0 * np.log10(levels.numpy())


def head_spectra(head: HeadModel, fs_hz: int) -> dict:
    """``{"centres_hz", "diffuse_field_db", "front_back_db"}`` of one head on the CIPIC grid (module docstring)."""
    directions = cipic_grid().double()
    centres, levels = band_levels_db(head.hrirs(directions, fs_hz), fs_hz)
    azimuth = torch.rad2deg(torch.atan2(directions[:, 1], directions[:, 0])).numpy()
    elevation = torch.rad2deg(torch.asin(directions[:, 2].clamp(-1.0, 1.0))).numpy()
    horizontal = np.abs(elevation) < HORIZONTAL_WITHIN_DEG
    front = horizontal & (np.abs(azimuth) < FRONT_BACK_WITHIN_DEG)
    back = horizontal & (np.abs(azimuth) > 180.0 - FRONT_BACK_WITHIN_DEG)
    linear = 10.0 ** (levels / 10.0)
    diffuse = 10.0 * np.log10(linear.mean(axis=(0, 1)))
    diffuse -= diffuse[centres < NORMALISE_BELOW_HZ].mean()
    front_back = 10.0 * np.log10(linear[front].mean(axis=(0, 1)) / linear[back].mean(axis=(0, 1)))
    return {"centres_hz": centres, "diffuse_field_db": diffuse, "front_back_db": front_back}


def head_files(paths: list[Path], exclude: list[str]) -> list[Path]:
    """The head files named (a folder: its CIPIC ``subject_*.mat`` files), without the ``exclude`` stems."""
    files = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("subject_*.mat"))
            if not found:
                raise SystemExit(f"{path}: no CIPIC subject_*.mat files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"{path}: no such head file or folder")
    unknown = sorted(set(exclude) - {f.stem for f in files})
    if unknown:
        raise SystemExit(f"--exclude {' '.join(unknown)}: not among the reference heads")
    return [f for f in files if f.stem not in exclude]


def row(name: str, values: np.ndarray) -> str:
    return f"| {name} | " + " | ".join(f"{v:+.1f}" for v in values) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", nargs="+", type=Path, required=True,
                        help="reference (training) heads: .mat / .sofa files or a folder of CIPIC subjects")
    parser.add_argument("--exclude", nargs="*", default=[], help="reference head names (file stems) to leave out")
    parser.add_argument("--heads", nargs="+", type=Path, required=True, help="heads to compare (.mat / .sofa)")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate in Hz (the dataset's)")
    parser.add_argument("--equalisation", choices=EQUALISATIONS, default="none",
                        help="every head as measured (default) or diffuse-field equalised (receiver.equalisation)")
    parser.add_argument("--match-out", type=Path, default=None,
                        help="JSON: the gain curve moving the first --heads head onto the reference mean")
    args = parser.parse_args()

    def spectra(path: Path) -> dict:
        return head_spectra(make_head(str(path), args.equalisation), args.fs)

    reference = [spectra(f) for f in head_files(args.reference, args.exclude)]
    compared = {f.stem: spectra(f) for f in head_files(args.heads, [])}
    centres = reference[0]["centres_hz"]
    mean = {k: np.mean([r[k] for r in reference], axis=0) for k in ("diffuse_field_db", "front_back_db")}
    spread = {k: np.std([r[k] for r in reference], axis=0) for k in ("diffuse_field_db", "front_back_db")}
    header = "| band centre (Hz) | " + " | ".join(f"{c:.0f}" for c in centres) + " |"
    rule = "|---|" + "---|" * len(centres)
    titles = {
        "diffuse_field_db": f"Diffuse-field level (dB, re the head's own level below {NORMALISE_BELOW_HZ:.0f} Hz) of "
                            f"{len(reference)} reference heads, and each compared head's deviation from their mean",
        "front_back_db": f"Front minus back (dB; within {FRONT_BACK_WITHIN_DEG:.0f} deg of the front / back, "
                         f"|elevation| < {HORIZONTAL_WITHIN_DEG:.0f} deg, both ears)"}
    for key, title in titles.items():  # diffuse field: deviations from the mean; front/back: the heads' own
        offset = mean[key] if key == "diffuse_field_db" else 0.0
        print(("" if key == "diffuse_field_db" else "\n") + title + "\n\n" + header + "\n" + rule)
        print(row("reference mean", mean[key]))
        print(row("reference s.d.", spread[key]))
        for name, spectra in compared.items():
            print(row(name, spectra[key] - offset))
    if args.match_out is not None:
        name, spectra = next(iter(compared.items()))
        gain = mean["diffuse_field_db"] - spectra["diffuse_field_db"]
        args.match_out.parent.mkdir(parents=True, exist_ok=True)
        args.match_out.write_text(json.dumps({"head": name, "centres_hz": centres.round(1).tolist(),
                                              "gain_db": gain.round(2).tolist()}, indent=1) + "\n")
        print(f"\nwrote {args.match_out}: the gain moving {name}'s diffuse-field spectrum onto the reference mean")


if __name__ == "__main__":
    main()
