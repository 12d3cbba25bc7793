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
from pathlib import Path

import numpy as np

from spatial_alm.evaluation.encoder_report import elevation_against_constant, elevation_error_deg, read_predictions


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
        try:
            truth, methods = read_predictions(report)
        except FileNotFoundError as error:
            raise SystemExit(str(error)) from None
        if args.methods is not None:
            missing = sorted(set(args.methods) - set(methods))
            if missing:
                raise SystemExit(f"{report / 'predictions.csv'} has no method {', '.join(missing)}; "
                                 f"it has: {', '.join(methods)}")
        true_el = truth[:, 1]
        predicted = {name: directions[:, 1] for name, directions in methods.items()
                     if args.methods is None or name in args.methods}
        against = elevation_against_constant(predicted, true_el)
        if against is None:
            print(f"| {report.name} | — | {len(true_el)} | every source at {true_el[0]:g} deg: nothing to compare |"
                  " | | | | |")
            continue
        for name, el in predicted.items():
            test = against["paired"][name]
            correlation = np.corrcoef(el, true_el)[0, 1] if np.ptp(el) > 0 else float("nan")
            print(f"| {report.name} | {name} | {len(true_el)} | {elevation_error_deg(el, true_el):.1f} | "
                  f"{against['constant_deg']:.1f} | {against['constant_error_deg']:.1f} | "
                  f"{test['mean_difference']:+.1f} | {test['p_value']:.2g} | {correlation:.2f} |")


if __name__ == "__main__":
    main()
