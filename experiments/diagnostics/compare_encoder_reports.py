"""Two evaluate-encoder reports on the same scenes or files, source by source, from their predictions.csv alone.

`evaluate-encoder --compare` tests encoders against each other when all their model folders are at hand; a
report committed earlier keeps only its predictions. This reads the ``predictions.csv`` of two report
folders made on the same test set (the true directions are checked row by row), takes one method of each
(default: ``encoder``) and prints for both the DoA accuracy within 20 degrees, the front/back correct rate
(sources at least 20 degrees from the frontal plane,
:func:`~spatial_alm.evaluation.encoder_report.front_back_confusions`), the mean absolute elevation and lateral
errors, with the paired test of each: the exact McNemar test on the right/wrong ones, the Wilcoxon signed-rank
test on the errors (negative mean difference: A errs less).

With ``--class-wise`` it pairs instead every labelled source read from its own class's direction vector (what a
question naming the class reads; the reports' ``class_wise_predictions.csv``, encoders with class-wise heads),
all sources, by the number of sources in their scene, and the sources of several-source scenes by whether the
loudest other source lies in the same front/back half or in the other (both at least 20 degrees from the
frontal plane): vectors that share one scene-wide half gain on the first and lose on the second; last, every pair of
sources on opposite sides of an axis, as E questions take them (``class_wise_pairs`` in the reports), by whether
the two vectors keep the true order (the class-wise heads' answer to E; a tie counts 1/2), with the Wilcoxon
signed-rank test on the per-pair scores.

With ``--by-receiver`` each head of a test set rendered through several (the ``receiver`` column that
evaluate-encoder writes to ``predictions.csv``; either report's) also gets its own table.

    python experiments/diagnostics/compare_encoder_reports.py out/eval_new \\
        experiments/results/front_back_cues/encoder_cipic12k_18ep_class_tokens_heldout_heads --names new old
"""

import argparse
import csv
from pathlib import Path

import numpy as np

from spatial_alm.evaluation import metrics
from spatial_alm.evaluation.encoder_report import (
    class_wise_pair_orders,
    front_back_confusions,
    read_class_wise_predictions,
    read_predictions,
)


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


def read_class_wise(report: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, 2) true and (N, 2) class-vector (azimuth, elevation) in degrees, (N, 3) (scene, source, number of
    sources in the scene) and (N, 2) the loudest other source's true (azimuth, elevation) (NaN for a source heard
    alone) of every labelled source in ``report``'s class-wise predictions."""
    try:
        columns = read_class_wise_predictions(report)
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None

    def pairs(*names):
        return np.stack([columns[name] for name in names], axis=1)

    return (pairs("true_azimuth_deg", "true_elevation_deg"), pairs("class_azimuth_deg", "class_elevation_deg"),
            pairs("scene", "source", "num_sources"), pairs("other_azimuth_deg", "other_elevation_deg"))


def read_pair_orders(report: Path) -> dict[str, np.ndarray]:
    """Per axis, one score per opposite pair of ``report``'s class-wise predictions: its vectors in the true order
    1, tied 1/2, reversed 0 (:func:`~spatial_alm.evaluation.encoder_report.class_wise_pair_orders`)."""
    columns = read_class_wise_predictions(report)
    return class_wise_pair_orders([dict(zip(columns, values)) for values in zip(*columns.values())])


def read_receivers(*reports: Path) -> tuple[np.ndarray, np.ndarray]:
    """(rows,) scene and (rows,) receiver of each predictions.csv row of the first of ``reports`` that names its
    receivers (the reports' rows are checked to be the same sources in the same order)."""
    for report in (r for r in reports if (r / "predictions.csv").is_file()):
        with open(report / "predictions.csv") as f:
            rows = list(csv.DictReader(f))
        if rows and "receiver" in rows[0]:
            return np.array([int(row["scene"]) for row in rows]), np.array([row["receiver"] for row in rows])
    raise SystemExit(f"--by-receiver: neither {' nor '.join(str(r / 'predictions.csv') for r in reports)} has a "
                     "receiver column (older evaluate-encoder reports lack it); run evaluate-encoder again for one")


def print_pair_orders(orders_a: dict[str, np.ndarray], orders_b: dict[str, np.ndarray]) -> None:
    """The pairs' order right per axis for A and B as a markdown table (a tie counts 1/2), with the Wilcoxon
    signed-rank test on the per-pair scores (positive mean difference: A right more often)."""
    print("| axis | pairs | A order right (%) | B order right (%) | paired test (A vs B) |")
    print("|---|---|---|---|---|")
    for axis, score_a in orders_a.items():
        score_b = orders_b[axis]
        test = metrics.wilcoxon_paired(score_a, score_b)
        print(f"| {axis} | {len(score_a)} | {100 * score_a.mean():.1f} | {100 * score_b.mean():.1f} | "
              f"A better on {int(np.sum(score_a > score_b))}, B better on {int(np.sum(score_b > score_a))}, "
              f"p = {test['p_value']:.2g} |")


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


def print_table(truth: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> None:
    """The rows of :func:`compare` as a markdown table."""
    print("| metric | A | B | paired test (A vs B) |")
    print("|---|---|---|---|")
    for metric, value_a, value_b, test in compare(truth, pred_a, pred_b):
        detail = (f"A alone right {test['a_only']}, B alone right {test['b_only']}, p = {test['p_value']:.2g}"
                  if "a_only" in test else f"mean difference {test['mean_difference']:+.1f}, "
                  f"p = {test['p_value']:.2g}")
        print(f"| {metric} | {value_a:.1f} | {value_b:.1f} | {detail} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_a", type=Path, help="evaluate-encoder report folder (predictions.csv)")
    parser.add_argument("report_b", type=Path, help="another report folder on the same test set")
    parser.add_argument("--methods", nargs=2, default=None, metavar=("A", "B"),
                        help="the method column of each report (default: encoder encoder)")
    parser.add_argument("--class-wise", action="store_true",
                        help="pair every labelled source from its own class's vector (class_wise_predictions.csv)")
    parser.add_argument("--names", nargs=2, default=None, metavar=("A", "B"),
                        help="row names (default: the report folders' names)")
    parser.add_argument("--by-receiver", action="store_true",
                        help="also a table per receiver (head) of a test set rendered through several")
    args = parser.parse_args()
    if args.class_wise and args.methods:
        raise SystemExit("--methods and --class-wise: allowed: one of them (the class-wise vectors are the encoder's)")
    name_a, name_b = args.names or (args.report_a.name, args.report_b.name)
    if args.class_wise:
        (truth, pred_a, keys, other), (truth_b, pred_b, keys_b, _) = (read_class_wise(args.report_a),
                                                                       read_class_wise(args.report_b))
        what = "labelled sources, each from its own class's vector"
    else:
        methods = args.methods or ("encoder", "encoder")
        (truth, pred_a), (truth_b, pred_b) = (read_method(args.report_a, methods[0]),
                                              read_method(args.report_b, methods[1]))
        keys = keys_b = other = None
        what = f"sources; A = {name_a} ({methods[0]}), B = {name_b} ({methods[1]})"
    if (truth.shape != truth_b.shape or not np.allclose(truth, truth_b, atol=0.01)
            or (keys is not None and not np.array_equal(keys, keys_b))):
        raise SystemExit(f"{args.report_a} and {args.report_b}: different true directions; allowed: two reports "
                         "on the same test set (same dataset or recordings, same --max-scenes)")
    print(f"{len(truth)} {what}" + (f"; A = {name_a}, B = {name_b}" if args.class_wise else ""))
    print_table(truth, pred_a, pred_b)
    if args.by_receiver:
        scenes, receivers = read_receivers(args.report_a, args.report_b)
        if keys is not None:  # class-wise rows: each source's scene's receiver
            receiver_of = dict(zip(scenes.tolist(), receivers.tolist()))
            receivers = np.array([receiver_of[int(scene)] for scene in keys[:, 0]])
        for receiver in sorted(set(receivers.tolist())):
            sel = receivers == receiver
            print(f"\nThe {int(sel.sum())} sources heard through {receiver}")
            print_table(truth[sel], pred_a[sel], pred_b[sel])
    counts = sorted(set(keys[:, 2].astype(int))) if keys is not None else []
    for n in counts if len(counts) > 1 else []:
        sel = keys[:, 2] == n
        print(f"\nThe {int(sel.sum())} sources of scenes with {n} source{'s' if n > 1 else ''}")
        print_table(truth[sel], pred_a[sel], pred_b[sel])
    if other is not None:
        # 0: the loudest other source in the source's front/back half, 1: in the other; NaN: either one near the
        # frontal plane (or no other source)
        other_half = front_back_confusions(*other.T, *truth.T)
        other_half[np.isnan(front_back_confusions(*truth.T, *other.T))] = np.nan
        for value, where in ((0.0, "the same front/back half"), (1.0, "the other front/back half")):
            sel = other_half == value
            if sel.any():
                print(f"\nThe {int(sel.sum())} sources whose loudest other source lies in {where}")
                print_table(truth[sel], pred_a[sel], pred_b[sel])
        orders_a = read_pair_orders(args.report_a)
        if orders_a:
            print("\nThe pairs of sources on opposite sides of an axis (E's questions): the two vectors in the "
                  "true order")
            print_pair_orders(orders_a, read_pair_orders(args.report_b))


if __name__ == "__main__":
    main()
