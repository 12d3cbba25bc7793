"""Several encoders read as one: the mean of their directions, written as an evaluate-encoder report folder.

Would two trainings of one setting, averaged, read each source better than either? This reads the
``predictions.csv`` and ``class_wise_predictions.csv`` of two or more evaluate-encoder report folders made on the
same test set (true directions and sources checked row by row), averages each scene's encoder direction and each
labelled source's class vector as a head reads them (:func:`mean_direction`: lateral angle and elevation averaged,
front/back by a vote; equal weights; undefined, so missing, where the vote ties) and the encoder distances, and
writes both files to OUT with the first report's other columns (the baselines' directions, the scene columns).
``compare_encoder_reports.py OUT REPORT [--class-wise]`` then pairs the average with any one of them.

    python experiments/diagnostics/average_encoder_reports.py out/eval_mean out/eval_seed0 out/eval_seed1
"""

import argparse
import csv
from pathlib import Path

import numpy as np

from spatial_alm.coordinates import cartesian_to_spherical, spherical_to_cartesian
from spatial_alm.evaluation.encoder_report import (
    CLASS_WISE_COLUMNS,
    CLASS_WISE_PREDICTIONS,
    read_class_wise_predictions,
    write_class_wise_predictions,
)


def mean_direction(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, N) directions in degrees -> (N,) azimuth and elevation of their mean, read as a head reads a direction:
    the mean lateral angle (asin of the left component), the mean elevation, and the front/back half of the summed
    front components (a vote weighted by how far in front or behind each reading lies); NaN where a direction is
    missing or the vote ties. A unit-vector mean of two readings on opposite halves would move the lateral angle
    toward the side, a circular mean of their polar angles the elevation toward the pole; this moves neither."""
    x, y, _ = np.moveaxis(spherical_to_cartesian(azimuth_deg, elevation_deg).numpy(), -1, 0)  # each (K, N)
    lateral = np.arcsin(np.clip(y, -1.0, 1.0)).mean(axis=0)
    elevation = np.radians(np.asarray(elevation_deg, dtype=np.float64)).mean(axis=0)
    front = x.sum(axis=0)
    left, up = np.sin(lateral), np.sin(elevation)
    ahead = np.sign(front) * np.sqrt(np.clip(1.0 - left**2 - up**2, 0.0, None))  # on the cone of the two angles
    azimuth, elevation_out, _ = (v.numpy() for v in cartesian_to_spherical(np.stack([ahead, left, up], axis=-1)))
    undefined = ~(np.abs(front) >= 1e-6)
    return np.where(undefined, np.nan, azimuth), np.where(undefined, np.nan, elevation_out)


def read_rows(path: Path) -> list[dict]:
    """The rows of an evaluate-encoder ``predictions.csv`` as dicts of strings (SystemExit when missing)."""
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `spatial-alm evaluate-encoder ... --out {path.parent}` first")
    with open(path) as f:
        return list(csv.DictReader(f))


def average_predictions(reports: list[Path], out: Path) -> int:
    """OUT/predictions.csv: the first report's rows with the encoder's direction and distance averaged."""
    tables = [read_rows(report / "predictions.csv") for report in reports]
    truth = [np.array([[float(row[k]) for k in ("true_azimuth_deg", "true_elevation_deg")] for row in table])
             for table in tables]
    for report, values in zip(reports[1:], truth[1:]):
        if values.shape != truth[0].shape or not np.allclose(values, truth[0], atol=0.01):
            raise SystemExit(f"{reports[0]} and {report}: different true directions; allowed: reports on the same "
                             "test set (same dataset or recordings, same --max-scenes)")

    def column(name: str) -> np.ndarray:
        return np.array([[float(row[name]) for row in table] for table in tables])

    azimuth, elevation = mean_direction(column("encoder_azimuth_deg"), column("encoder_elevation_deg"))
    distance = column("encoder_distance_m").mean(axis=0)
    rows = tables[0]
    for row, az, el, dist in zip(rows, azimuth, elevation, distance):
        row.update(encoder_azimuth_deg=f"{az:.2f}", encoder_elevation_deg=f"{el:.2f}", encoder_distance_m=f"{dist:.2f}")
    with open(out / "predictions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def average_class_wise(reports: list[Path], out: Path) -> int:
    """OUT/class_wise_predictions.csv: every labelled source with the class vectors averaged."""
    try:
        tables = [read_class_wise_predictions(report) for report in reports]
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    keys = ("scene", "source", "true_azimuth_deg", "true_elevation_deg")
    for report, table in zip(reports[1:], tables[1:]):
        if any(table[k].shape != tables[0][k].shape or not np.allclose(table[k], tables[0][k], atol=0.01)
               for k in keys):
            raise SystemExit(f"{reports[0]} and {report}: different labelled sources; allowed: reports on the same "
                             "test set")
    azimuth, elevation = mean_direction(np.stack([t["class_azimuth_deg"] for t in tables]),
                                        np.stack([t["class_elevation_deg"] for t in tables]))
    first = tables[0]
    rows = [{name: int(first[name][i]) if name in ("scene", "source", "num_sources") else float(first[name][i])
             for name in CLASS_WISE_COLUMNS} | {"class_azimuth_deg": float(azimuth[i]),
                                                "class_elevation_deg": float(elevation[i])}
            for i in range(len(azimuth))]
    write_class_wise_predictions(out / CLASS_WISE_PREDICTIONS, rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write (predictions.csv, class_wise_predictions.csv)")
    parser.add_argument("reports", nargs="+", type=Path, help="two or more evaluate-encoder report folders")
    args = parser.parse_args()
    if len(args.reports) < 2:
        parser.error("allowed: two or more report folders to average")
    args.out.mkdir(parents=True, exist_ok=True)
    scenes = average_predictions(args.reports, args.out)
    sources = average_class_wise(args.reports, args.out)
    print(f"{args.out}: {scenes} scenes, {sources} labelled sources, the mean of {len(args.reports)} encoders")


if __name__ == "__main__":
    main()
