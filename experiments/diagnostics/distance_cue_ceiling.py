"""Which cue can tell which of two sources is nearer? Ceilings from the scenes' metadata (diffuse-field theory).

Type E's nearer/farther questions compare two sources at least ``DISTANCE_MARGIN_M`` (0.5 m) apart. A
receiver hears distance through the level of each source (its direct sound falls as 1 / r, its
reverberation does not) and through the ratio of the two (direct-to-reverberant ratio, DRR). For every
such pair of a dataset's two-source scenes this scores the order that each cue would give if a model
measured it perfectly, from the metadata alone (room size, RT60, distances, source levels):

- direct level: ``level_db - 20 log10 r`` (the source's level in the mix, ``sources.level_db``, and the
  1 / r law);
- total level: direct plus the diffuse reverberant energy of Sabine's room, per unit source power
  ``1 / (4 pi r^2) + 4 / A`` with the equivalent absorption area ``A = 0.161 V / RT60`` (m^2; Kuttruff,
  Room Acoustics, the diffuse-field model; the reverberant term is the same for both sources of a room);
- DRR: the direct over the reverberant energy, ``A / (16 pi r^2)``, which the source level leaves alone.

It also prints the median critical distance ``sqrt(A / (16 pi))`` (where direct and reverberant energy
are equal): beyond it a source's total level barely changes with distance, so with the recipe's random
source levels the level cue orders few pairs. The figures are ceilings of a theory, not of the renderer
(image sources plus a diffuse tail; the heads' directivity is ignored).

``--coherence`` also measures a blind DRR cue in the audio of the one-source scenes: the magnitude-squared
coherence of every channel pair (Welch, 512-sample segments), averaged over the pairs and over a band
where a diffuse field is nearly incoherent across the receiver (default 3-11 kHz: above c / 2d = 2.5 kHz
for the tetrahedral array's 6.9-cm edges). The direct sound is coherent and the reverberation is not, so
the coherence rises with the DRR (for a direct-to-diffuse power ratio q it is (q / (1 + q))^2). It prints
the correlation of that coherence with log distance and with the theory's log DRR.

    python experiments/diagnostics/distance_cue_ceiling.py --data out/tiny_train12k
    python experiments/diagnostics/distance_cue_ceiling.py --data out/tetra_test --coherence
"""

import argparse
from itertools import combinations

import numpy as np
from scipy.signal import coherence
from tqdm import tqdm

from spatial_alm.acoustics.room import absorption_area_m2, critical_distance_m
from spatial_alm.data.reader import DatasetReader
from spatial_alm.qa.generator import DISTANCE_MARGIN_M


def cue_orders(reader: DatasetReader) -> tuple[dict[str, list[bool]], list[float]]:
    """Per cue, whether it orders each eligible pair right (the louder / higher-DRR source nearer), and the
    critical distance of every scene (m)."""
    orders = {"direct level": [], "total level": [], "DRR": []}
    critical = []
    for i in tqdm(range(len(reader)), desc="scenes", unit="scene"):
        meta = reader.meta(i)
        area = absorption_area_m2(meta.room_dim_m, meta.rt60_s)
        critical.append(critical_distance_m(meta.room_dim_m, meta.rt60_s))
        if len(meta.sources) != 2:
            continue
        r = np.array([s.distance_m for s in meta.sources])
        if abs(r[0] - r[1]) < DISTANCE_MARGIN_M:
            continue
        power = 10.0 ** (np.array([s.level_db for s in meta.sources]) / 10.0)
        direct = power / (4 * np.pi * r ** 2)
        reverberant = power * 4 / area
        nearer_first = r[0] < r[1]
        for cue, value in (("direct level", direct), ("total level", direct + reverberant),
                           ("DRR", direct / reverberant)):
            orders[cue].append(bool((value[0] > value[1]) == nearer_first))
    return orders, critical


def band_coherence(audio: np.ndarray, fs_hz: int, band_hz: tuple[float, float]) -> float:
    """Magnitude-squared coherence of audio (C, T), averaged over every channel pair and the band's bins."""
    per_pair = [coherence(audio[i], audio[j], fs=fs_hz, nperseg=512) for i, j in combinations(range(len(audio)), 2)]
    freqs = per_pair[0][0]
    in_band = (freqs >= band_hz[0]) & (freqs < band_hz[1])
    if not in_band.any():
        raise ValueError(f"--coherence-band {list(band_hz)} Hz holds no frequency bin below {fs_hz / 2} Hz")
    return float(np.mean([msc[in_band] for _, msc in per_pair]))


def coherence_cue(reader: DatasetReader, band_hz: tuple[float, float]) -> dict[str, np.ndarray]:
    """Per one-source scene: its band coherence, log distance and the theory's log10 DRR."""
    rows = []
    for i in tqdm(range(len(reader)), desc="coherence", unit="scene"):
        meta = reader.meta(i)
        if len(meta.sources) != 1:
            continue
        r = meta.sources[0].distance_m
        drr = absorption_area_m2(meta.room_dim_m, meta.rt60_s) / (16 * np.pi * r ** 2)
        rows.append((band_coherence(reader.audio(i).astype(np.float64), meta.fs_hz, band_hz), np.log(r),
                     np.log10(drr)))
    coh, log_r, log_drr = np.array(rows, dtype=np.float64).reshape(-1, 3).T
    return {"coherence": coh, "log_distance": log_r, "log_drr": log_drr}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset folder (spatial-alm simulate output)")
    parser.add_argument("--coherence", action="store_true",
                        help="also measure the blind coherence cue in the one-source scenes' audio")
    parser.add_argument("--coherence-band", type=float, nargs=2, default=(3000.0, 11000.0), metavar=("LO", "HI"),
                        help="band of the coherence cue in Hz (default 3000 11000)")
    args = parser.parse_args()
    reader = DatasetReader(args.data)
    orders, critical = cue_orders(reader)
    pairs = len(orders["DRR"])
    print(f"{len(critical)} scenes, {pairs} two-source pairs >= {DISTANCE_MARGIN_M} m apart; median critical "
          f"distance {np.median(critical):.2f} m (quartiles {np.quantile(critical, 0.25):.2f}-"
          f"{np.quantile(critical, 0.75):.2f})")
    for cue, right in orders.items():
        print(f"nearer source ordered by {cue}: {100 * np.mean(right):.1f} %")
    if args.coherence:
        cue = coherence_cue(reader, tuple(args.coherence_band))
        if len(cue["coherence"]) < 3:
            raise SystemExit(f"{args.data}: {len(cue['coherence'])} one-source scenes; the correlation needs >= 3")
        lo, hi = args.coherence_band
        print(f"{len(cue['coherence'])} one-source scenes: mean pair coherence at {lo:g}-{hi:g} Hz "
              f"{np.mean(cue['coherence']):.3f}; its correlation with log distance "
              f"{np.corrcoef(cue['coherence'], cue['log_distance'])[0, 1]:+.2f}, with the theory's log DRR "
              f"{np.corrcoef(cue['coherence'], cue['log_drr'])[0, 1]:+.2f} (the theory's log DRR with log distance "
              f"{np.corrcoef(cue['log_drr'], cue['log_distance'])[0, 1]:+.2f})")


if __name__ == "__main__":
    main()
