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

    python experiments/diagnostics/distance_cue_ceiling.py --data out/tiny_train12k
"""

import argparse

import numpy as np
from tqdm import tqdm

from spatial_alm.data.reader import DatasetReader
from spatial_alm.qa.generator import DISTANCE_MARGIN_M


def absorption_area_m2(room_dim_m, rt60_s: float) -> float:
    """Sabine's equivalent absorption area A = 0.161 V / RT60 in m^2 (V in m^3, RT60 in s)."""
    return 0.161 * float(np.prod(room_dim_m)) / rt60_s


def cue_orders(reader: DatasetReader) -> tuple[dict[str, list[bool]], list[float]]:
    """Per cue, whether it orders each eligible pair right (the louder / higher-DRR source nearer), and the
    critical distance of every scene (m)."""
    orders = {"direct level": [], "total level": [], "DRR": []}
    critical = []
    for i in tqdm(range(len(reader)), desc="scenes", unit="scene"):
        meta = reader.meta(i)
        area = absorption_area_m2(meta.room_dim_m, meta.rt60_s)
        critical.append(float(np.sqrt(area / (16 * np.pi))))
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset folder (spatial-alm simulate output)")
    args = parser.parse_args()
    orders, critical = cue_orders(DatasetReader(args.data))
    pairs = len(orders["DRR"])
    print(f"{len(critical)} scenes, {pairs} two-source pairs >= {DISTANCE_MARGIN_M} m apart; median critical "
          f"distance {np.median(critical):.2f} m (quartiles {np.quantile(critical, 0.25):.2f}-"
          f"{np.quantile(critical, 0.75):.2f})")
    for cue, right in orders.items():
        print(f"nearer source ordered by {cue}: {100 * np.mean(right):.1f} %")


if __name__ == "__main__":
    main()
