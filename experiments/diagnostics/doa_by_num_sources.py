"""Encoder vs a baseline localisation of the primary source, split by the number of sources in the scene.

Reads the ``predictions.csv`` that ``spatial-alm evaluate-encoder`` writes into its report folder. For
each group of test scenes with 1, 2, 3 ... sources: DoA accuracy at 20 deg (great circle) and
azimuth-only accuracy (|azimuth error| <= 20 deg, elevation ignored), for the encoder and the
baseline; then the spread of the predicted elevations and their correlation with the true ones (a
head stuck at the prior predicts one elevation for every scene).

    python experiments/diagnostics/doa_by_num_sources.py --report experiments/results/encoder_tetra_array_srp_8k
"""

import argparse
import csv
from pathlib import Path

import numpy as np

from spatial_alm.evaluation import metrics


def azimuth_accuracy(pred_az: np.ndarray, true_az: np.ndarray) -> float:
    """Percentage of scenes whose azimuth error, wrapped to [-180, 180), is at most 20 degrees."""
    return 100.0 * float(np.mean(np.abs((pred_az - true_az + 180.0) % 360.0 - 180.0) <= 20.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", required=True, type=Path, help="evaluate-encoder report folder (predictions.csv)")
    parser.add_argument("--baseline", default="srp_phat", help="baseline column prefix (default srp_phat)")
    args = parser.parse_args()

    path = args.report / "predictions.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `spatial-alm evaluate-encoder ... --out {args.report}` first")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    column = {key: np.array([float(row[key]) for row in rows]) for key in rows[0]
              if key == "num_sources" or key.endswith("_deg")}
    if f"{args.baseline}_azimuth_deg" not in column:
        raise SystemExit(f"{path} has no {args.baseline!r} columns (it has: {', '.join(rows[0])})")
    methods = {name: (column[f"{name}_azimuth_deg"], column[f"{name}_elevation_deg"])
               for name in ("encoder", args.baseline)}
    truth = column["true_azimuth_deg"], column["true_elevation_deg"]
    num_sources = column["num_sources"].astype(int)

    print(f"| sources | scenes | encoder DoA acc@20 / azimuth acc@20 (%) | {args.baseline} DoA acc@20 / "
          "azimuth acc@20 (%) |")
    print("|---|---|---|---|")
    for n in sorted(set(num_sources.tolist())):
        sel = num_sources == n
        cells = []
        for az, el in methods.values():
            doa = metrics.doa_accuracy(az[sel], el[sel], truth[0][sel], truth[1][sel])
            cells.append(f"{doa:.1f} / {azimuth_accuracy(az[sel], truth[0][sel]):.1f}")
        print(f"| {n} | {int(sel.sum())} | {cells[0]} | {cells[1]} |")
    for name, (_, el) in methods.items():
        print(f"{name} elevation: std {np.std(el):.1f} deg, correlation with the truth "
              f"{np.corrcoef(el, truth[1])[0, 1]:.2f}")


if __name__ == "__main__":
    main()
