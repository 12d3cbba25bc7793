"""Two audio-LLMs on the same questions: per type their scores and the paired (exact McNemar) test.

    python experiments/diagnostics/compare_qa_reports.py A/report.json B/report.json [--names A B]

Both reports come from `spatial-alm evaluate` on the same dataset with the same --max-questions and
--seed (so the same questions, checked). Prints, per type, each model's primary score (balanced
accuracy for yes/no types, DoA accuracy at 20 degrees for B and D) and, where the answers are right or
wrong one by one (B, D, E, negative), the questions only A or only B got right and the two-sided p.
"""

from __future__ import annotations

import argparse
import json

from spatial_alm.evaluation.qa_report import paired_models

PRIMARY = {"yes_no": "balanced_accuracy", "direction": "doa_accuracy_20deg", "labels": "map",
           "count": "accuracy", "elevation": "accuracy_20deg", "room": "accuracy", "description": "recall"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_a")
    parser.add_argument("report_b")
    parser.add_argument("--names", nargs=2, default=("A", "B"))
    args = parser.parse_args()
    a, b = (json.load(open(path)) for path in (args.report_a, args.report_b))
    paired = paired_models(a["answers"], b["answers"])
    name_a, name_b = args.names
    print(f"| type | metric | {name_a} | {name_b} | questions | {name_a} alone right | {name_b} alone right | p |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for question_type, row in a["model"].items():
        metric = PRIMARY[row["format"]]
        metrics_a, metrics_b = row["metrics"], b["model"][question_type]["metrics"]
        metric = next((m for m in metrics_a if m.startswith(metric)), metric)
        test = paired.get(question_type)
        tail = (f"{test['questions']} | {test['a_only']} | {test['b_only']} | {test['p_value']:.3g}" if test
                else f"{row['total']} | | | ")
        print(f"| {question_type} | {metric} | {metrics_a.get(metric, float('nan')):.1f} | "
              f"{metrics_b.get(metric, float('nan')):.1f} | {tail} |")


if __name__ == "__main__":
    main()
