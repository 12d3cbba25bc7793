"""Whether each method of evaluate-encoder reports reads elevation: its error against the best constant answer.

Reads the ``predictions.csv`` of one or more ``spatial-alm evaluate-encoder`` report folders (reports written
before that section existed included). For every method (the encoder, the baselines, the compared encoders) it
prints the mean absolute elevation error, the error of the best constant answer (the truths' median elevation)
and the paired Wilcoxon signed-rank test of the two, source by source
(:func:`~spatial_alm.evaluation.encoder_report.elevation_against_constant`), with the correlation of the
predicted and true elevations (0: the method answers one elevation whatever it hears).

    python experiments/diagnostics/elevation_vs_constant.py \\
        experiments/results/front_back_cues/encoder_cipic_esc50_one_source_48k_coherence
"""

import argparse
import csv
from pathlib import Path

import numpy as np

from spatial_alm.evaluation.encoder_report import elevation_against_constant, elevation_error_deg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="evaluate-encoder report folders (predictions.csv)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="method columns to show (default: every method in each file)")
    args = parser.parse_args()

    print("| report | method | sources | elevation error (deg) | constant answer (deg) | constant's error (deg) "
          "| mean difference (deg) | p-value | correlation with the truth |")
    print("|---|---|---|---|---|---|---|---|---|")
    for report in args.reports:
        path = report / "predictions.csv"
        if not path.is_file():
            raise SystemExit(f"{path} not found: run `spatial-alm evaluate-encoder ... --out {report}` first")
        with open(path) as f:
            rows = list(csv.DictReader(f))
        true_el = np.array([float(row["true_elevation_deg"]) for row in rows])
        methods = [key.removesuffix("_elevation_deg") for key in rows[0]
                   if key.endswith("_elevation_deg") and key != "true_elevation_deg"]
        if args.methods is not None:
            missing = sorted(set(args.methods) - set(methods))
            if missing:
                raise SystemExit(f"{path} has no method {', '.join(missing)}; it has: {', '.join(methods)}")
            methods = [name for name in methods if name in args.methods]
        predicted = {name: np.array([float(row[f"{name}_elevation_deg"]) for row in rows]) for name in methods}
        against = elevation_against_constant(predicted, true_el)
        if against is None:
            print(f"| {report.name} | — | {len(rows)} | every source at {true_el[0]:g} deg: nothing to compare |"
                  " | | | | |")
            continue
        for name, el in predicted.items():
            test = against["paired"][name]
            correlation = np.corrcoef(el, true_el)[0, 1] if np.ptp(el) > 0 else float("nan")
            print(f"| {report.name} | {name} | {len(rows)} | {elevation_error_deg(el, true_el):.1f} | "
                  f"{against['constant_deg']:.1f} | {against['constant_error_deg']:.1f} | "
                  f"{test['mean_difference']:+.1f} | {test['p_value']:.2g} | {correlation:.2f} |")


if __name__ == "__main__":
    main()
