"""Yes/no answers of audio-LLM runs: accuracy, balanced accuracy and the share answered "yes", per type.

A model that has not learned a yes/no type tends to answer it (almost) always the same way; its
accuracy then equals the share of that answer in the truth, which can sit above 50 %. Balanced
accuracy (mean of the percent right among true-yes and among true-no questions) is 50 for any
constant answer. ``spatial-alm evaluate`` reports all three since 2026-11-23; this script scores
older runs from their ``report.json`` (``--report DIR``, repeatable) or from a CSV of yes/no answers
with columns ``run, question_type, answer, predicted_yes`` (``--csv FILE``).

    python experiments/diagnostics/yes_no_balance.py --report experiments/results/llm_tiny_binaural \
        --csv experiments/results/llm_tiny_binaural_gpu_redraw/yes_no_answers.csv
"""

import argparse
import csv
import json
from pathlib import Path

from spatial_alm.evaluation.metrics import yes_no_accuracy

YES_NO_TYPES = ("E", "negative")


def rows_from_report(report_dir: Path) -> list[tuple[str, str, bool, bool | None]]:
    """(run, question type, true yes, predicted yes or None) of every yes/no answer in a report."""
    answers = json.loads((report_dir / "report.json").read_text())["answers"]
    return [(report_dir.name, a["question_type"], bool(a["target"]["yes"]), a["prediction"].get("yes"))
            for a in answers if a["question_type"] in YES_NO_TYPES]


def rows_from_csv(path: Path) -> list[tuple[str, str, bool, bool | None]]:
    with path.open(newline="") as f:
        return [(r["run"], r["question_type"], r["answer"] == "yes",
                 {"True": True, "False": False}.get(r["predicted_yes"])) for r in csv.DictReader(f)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", type=Path, action="append", default=[], help="an evaluate output folder")
    parser.add_argument("--csv", type=Path, action="append", default=[], help="a CSV of yes/no answers")
    args = parser.parse_args()
    if not args.report and not args.csv:
        parser.error("give at least one --report or --csv")
    rows = [row for d in args.report for row in rows_from_report(d)]
    rows += [row for path in args.csv for row in rows_from_csv(path)]
    print("| run | type | questions | accuracy | balanced accuracy | answered yes | truth yes |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for run in dict.fromkeys(r[0] for r in rows):
        for question_type in YES_NO_TYPES:
            picked = [r for r in rows if r[0] == run and r[1] == question_type]
            if not picked:
                continue
            truth, predicted = [r[2] for r in picked], [r[3] for r in picked]
            scores = yes_no_accuracy(predicted, truth)
            print(f"| {run} | {question_type} | {len(picked)} | {scores['accuracy']:.1f} | "
                  f"{scores['balanced_accuracy']:.1f} | {scores['answered_yes']:.0f} % | "
                  f"{100.0 * sum(truth) / len(truth):.0f} % |")


if __name__ == "__main__":
    main()
