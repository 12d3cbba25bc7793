"""Two evaluate-encoder reports on the same scenes or files, source by source, from their predictions.csv alone.

`evaluate-encoder --compare` tests encoders against each other when all their model folders are at hand; a
report committed earlier keeps only its predictions. This reads the ``predictions.csv`` of two report
folders made on the same test set (the true directions are checked row by row), takes one method of each
(default: ``encoder``) and prints for both the DoA accuracy within 20 degrees, the front/back correct rate
(sources at least 20 degrees from the frontal plane,
:func:`~spatial_alm.evaluation.encoder_report.front_back_confusions`), the mean absolute elevation and lateral
errors, with the paired test of each: the exact McNemar test on the right/wrong ones, the Wilcoxon signed-rank
test on the errors (negative mean difference: A errs less).

    python experiments/diagnostics/compare_encoder_reports.py out/eval_new \\
        experiments/results/front_back_cues/encoder_cipic12k_18ep_class_tokens_heldout_heads --names new old
"""

import argparse
from pathlib import Path

import numpy as np

from spatial_alm.evaluation import metrics
from spatial_alm.evaluation.encoder_report import front_back_confusions, read_predictions


def read_method(report: Path, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) true and (N, 2) predicted (azimuth, elevation) in degrees of ``method`` in ``report``."""
    try:
        truth, methods = read_predictions(report)
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    if method not in methods:
        raise SystemExit(f"{report / 'predictions.csv'} has no method {method}; it has: "
                         f"{', '.join(methods) or 'no rows'}")
    return truth, methods[method]


def compare(truth: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> list[tuple[str, float, float, dict]]:
    """Rows (metric, value of A, value of B, paired test) on the same sources: DoA acc@20 (%; a missing prediction
    is wrong), front/back correct (%, the scored sources), elevation and lateral error (deg; over the predictions
    present, the tests over the pairs where both are)."""
    t_az, t_el = truth.T
    right_a, right_b = (metrics.doa_correct(p[:, 0], p[:, 1], t_az, t_el) for p in (pred_a, pred_b))
    confused_a, confused_b = (front_back_confusions(p[:, 0], p[:, 1], t_az, t_el) for p in (pred_a, pred_b))
    scored = ~np.isnan(confused_a)
    elevation_a, elevation_b = (np.abs(p[:, 1] - t_el) for p in (pred_a, pred_b))
    lateral_a, lateral_b = (metrics.lateral_errors_deg(p[:, 0], p[:, 1], t_az, t_el) for p in (pred_a, pred_b))
    return [
        ("DoA acc@20 (%)", 100 * right_a.mean(), 100 * right_b.mean(), metrics.mcnemar_exact(right_a, right_b)),
        (f"front/back correct (%, {int(scored.sum())} sources)", 100 * (1 - confused_a[scored].mean()),
         100 * (1 - confused_b[scored].mean()),
         metrics.mcnemar_exact(confused_a[scored] == 0, confused_b[scored] == 0)),
        ("elevation error (deg)", np.nanmean(elevation_a), np.nanmean(elevation_b),
         metrics.wilcoxon_paired(elevation_a, elevation_b)),
        ("lateral error (deg)", np.nanmean(lateral_a), np.nanmean(lateral_b),
         metrics.wilcoxon_paired(lateral_a, lateral_b)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_a", type=Path, help="evaluate-encoder report folder (predictions.csv)")
    parser.add_argument("report_b", type=Path, help="another report folder on the same test set")
    parser.add_argument("--methods", nargs=2, default=("encoder", "encoder"), metavar=("A", "B"),
                        help="the method column of each report (default: encoder encoder)")
    parser.add_argument("--names", nargs=2, default=None, metavar=("A", "B"),
                        help="row names (default: the report folders' names)")
    args = parser.parse_args()
    truth, pred_a = read_method(args.report_a, args.methods[0])
    truth_b, pred_b = read_method(args.report_b, args.methods[1])
    if truth.shape != truth_b.shape or not np.allclose(truth, truth_b, atol=0.01):
        raise SystemExit(f"{args.report_a} and {args.report_b}: different true directions; allowed: two reports "
                         "on the same test set (same dataset or recordings, same --max-scenes)")
    name_a, name_b = args.names or (args.report_a.name, args.report_b.name)
    print(f"{len(truth)} sources; A = {name_a} ({args.methods[0]}), B = {name_b} ({args.methods[1]})")
    print("| metric | A | B | paired test (A vs B) |")
    print("|---|---|---|---|")
    for metric, value_a, value_b, test in compare(truth, pred_a, pred_b):
        detail = (f"A alone right {test['a_only']}, B alone right {test['b_only']}, p = {test['p_value']:.2g}"
                  if "a_only" in test else f"mean difference {test['mean_difference']:+.1f}, "
                  f"p = {test['p_value']:.2g}")
        print(f"| {metric} | {value_a:.1f} | {value_b:.1f} | {detail} |")


if __name__ == "__main__":
    main()
