"""Two audio-LLMs on the same questions: per type their scores and the paired (exact McNemar) test.

    python experiments/diagnostics/compare_qa_reports.py A/report.json B/report.json [--names A B] [--by-axis]

Both reports come from `spatial-alm evaluate` on the same dataset with the same --max-questions and
--seed (so the same questions, checked); where one was limited to some types (`evaluate --types`), both
are compared on the types they share. Prints, per type, each model's primary score (balanced
accuracy for yes/no types, DoA accuracy at 20 degrees for B and D) and, where the answers are right or
wrong one by one (B, D, E, negative), the questions only A or only B got right and the two-sided p.
For the yes/no types both balanced accuracies are computed here on the same questions, those the test
pairs: the questions of A that are audible (:func:`~spatial_alm.evaluation.qa_report.audible`; a report
made before the per-source spectral cues were recorded counts every question about a resolved axis, so
put it first to compare on all of them). With ``--by-axis`` each yes/no type also gets a row per axis it asks
about (``E front_back``: the questions of that axis alone, scored and paired the same way).
"""

from __future__ import annotations

import argparse
import json

from spatial_alm.evaluation.metrics import yes_no_accuracy
from spatial_alm.evaluation.qa_report import audible, paired_models, question_axis

PRIMARY = {"yes_no": "balanced_accuracy", "direction": "doa_accuracy_20deg", "labels": "map",
           "count": "accuracy", "elevation": "accuracy_20deg", "room": "accuracy", "description": "recall"}


def yes_no_balanced(records_a: list[dict], records_b: list[dict], question_type: str) -> tuple[float, float]:
    """Balanced accuracy (%) of A and of B on the audible questions of A of ``question_type``."""
    rows = [i for i, r in enumerate(records_a) if r["question_type"] == question_type and audible(r)]
    truth = [bool(records_a[i]["target"]["yes"]) for i in rows]
    return tuple(yes_no_accuracy([records[i]["prediction"].get("yes") for i in rows], truth)["balanced_accuracy"]
                 for records in (records_a, records_b))


def paired_cells(test: dict | None, total: int) -> str:
    """The last four cells of a row: questions, A alone right, B alone right, p (only ``total`` when unpaired)."""
    if test is None:
        return f"{total} | | | "
    return f"{test['questions']} | {test['a_only']} | {test['b_only']} | {test['p_value']:.3g}"


def yes_no_row(records_a: list[dict], records_b: list[dict], question_type: str, label: str,
               paired: dict | None = None) -> str:
    """The table row of a yes/no type on the records given: both balanced accuracies and the paired test
    (``paired``: :func:`paired_models` of these records when already computed)."""
    score_a, score_b = yes_no_balanced(records_a, records_b, question_type)
    if paired is None:
        paired = paired_models(records_a, records_b)
    cells = paired_cells(paired.get(question_type), sum(r["question_type"] == question_type for r in records_a))
    return f"| {label} | balanced_accuracy | {score_a:.1f} | {score_b:.1f} | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_a")
    parser.add_argument("report_b")
    parser.add_argument("--names", nargs=2, default=("A", "B"))
    parser.add_argument("--by-axis", action="store_true",
                        help="also a row per axis (left_right, front_back, ...) of each yes/no type")
    args = parser.parse_args()
    a, b = (json.load(open(path)) for path in (args.report_a, args.report_b))
    shared = [question_type for question_type in a["model"] if question_type in b["model"]]
    if not shared:
        parser.error(f"the two reports share no question type ({sorted(a['model'])} vs {sorted(b['model'])})")
    for report in (a, b):
        report["answers"] = [r for r in report["answers"] if r["question_type"] in shared]
    paired = paired_models(a["answers"], b["answers"])
    name_a, name_b = args.names
    print(f"| type | metric | {name_a} | {name_b} | questions | {name_a} alone right | {name_b} alone right | p |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for question_type in shared:
        row = a["model"][question_type]
        if row["format"] == "yes_no":
            print(yes_no_row(a["answers"], b["answers"], question_type, question_type, paired))
            if args.by_axis:
                of_type = [i for i, r in enumerate(a["answers"]) if r["question_type"] == question_type]
                for axis in sorted({question_axis(a["answers"][i]) or "none" for i in of_type}):
                    rows = [i for i in of_type if (question_axis(a["answers"][i]) or "none") == axis]
                    print(yes_no_row([a["answers"][i] for i in rows], [b["answers"][i] for i in rows],
                                     question_type, f"{question_type} {axis}"))
            continue
        metric = PRIMARY[row["format"]]
        metrics_a, metrics_b = row["metrics"], b["model"][question_type]["metrics"]
        metric = next((m for m in metrics_a if m.startswith(metric)), metric)
        print(f"| {question_type} | {metric} | {metrics_a.get(metric, float('nan')):.1f} | "
              f"{metrics_b.get(metric, float('nan')):.1f} | {paired_cells(paired.get(question_type), row['total'])} |")


if __name__ == "__main__":
    main()
