"""Two audio-LLMs on the same questions: per type their scores and the paired (exact McNemar) test.

    python experiments/diagnostics/compare_qa_reports.py A/report.json B/report.json [--names A B]

Both reports come from `spatial-alm evaluate` on the same dataset with the same --max-questions and
--seed (so the same questions, checked); where one was limited to some types (`evaluate --types`), both
are compared on the types they share. Prints, per type, each model's primary score (balanced
accuracy for yes/no types, DoA accuracy at 20 degrees for B and D) and, where the answers are right or
wrong one by one (B, D, E, negative), the questions only A or only B got right and the two-sided p.
For the yes/no types both balanced accuracies are computed here on the same questions, those the test
pairs: the questions of A that are audible (:func:`~spatial_alm.evaluation.qa_report.audible`; a report
made before the per-source spectral cues were recorded counts every question about a resolved axis, so
put it first to compare on all of them).
"""

from __future__ import annotations

import argparse
import json

from spatial_alm.evaluation.metrics import yes_no_accuracy
from spatial_alm.evaluation.qa_report import audible, paired_models

PRIMARY = {"yes_no": "balanced_accuracy", "direction": "doa_accuracy_20deg", "labels": "map",
           "count": "accuracy", "elevation": "accuracy_20deg", "room": "accuracy", "description": "recall"}


def yes_no_balanced(records_a: list[dict], records_b: list[dict], question_type: str) -> tuple[float, float]:
    """Balanced accuracy (%) of A and of B on the audible questions of A of ``question_type``."""
    rows = [i for i, r in enumerate(records_a) if r["question_type"] == question_type and audible(r)]
    truth = [bool(records_a[i]["target"]["yes"]) for i in rows]
    return tuple(yes_no_accuracy([records[i]["prediction"].get("yes") for i in rows], truth)["balanced_accuracy"]
                 for records in (records_a, records_b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_a")
    parser.add_argument("report_b")
    parser.add_argument("--names", nargs=2, default=("A", "B"))
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
        metric = PRIMARY[row["format"]]
        metrics_a, metrics_b = row["metrics"], b["model"][question_type]["metrics"]
        metric = next((m for m in metrics_a if m.startswith(metric)), metric)
        test = paired.get(question_type)
        if row["format"] == "yes_no":
            score_a, score_b = yes_no_balanced(a["answers"], b["answers"], question_type)
            metrics_a, metrics_b = {metric: score_a}, {metric: score_b}
        tail = (f"{test['questions']} | {test['a_only']} | {test['b_only']} | {test['p_value']:.3g}" if test
                else f"{row['total']} | | | ")
        print(f"| {question_type} | {metric} | {metrics_a.get(metric, float('nan')):.1f} | "
              f"{metrics_b.get(metric, float('nan')):.1f} | {tail} |")


if __name__ == "__main__":
    main()
