"""Score a QA report again with the current scoring code, without answering the questions again.

    python experiments/diagnostics/rescore_qa_report.py --report RUN/report.json --data DATASET [--out DIR]

`spatial-alm evaluate` keeps every question, answer and parse in report.json; when the scoring gains a
table (e.g. the negative probes about a class in the scene), this rewrites report.json, report.md and
scores.png from those records (default: in the report's own folder) in seconds instead of the model's
minutes. DATASET is the one the report answered (same --max-questions and --seed: the questions are
checked one by one); each record gets its scene's labels from it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spatial_alm.data import DatasetReader, SpatialQADataset
from spatial_alm.evaluation.qa_report import _select, _write_report, scene_labels

COMPUTED = ("num_questions", "max_new_tokens", "seed", "vocabulary", "model", "random", "encoder_head",
            "paired_vs_encoder_head", "yes_no_by_axis", "yes_no_by_heard_line", "negative_class_in_scene",
            "not_audible", "answers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", required=True, help="report.json written by spatial-alm evaluate")
    parser.add_argument("--data", required=True, help="the dataset folder that report answered")
    parser.add_argument("--out", help="folder for the new report (default: the report's folder)")
    args = parser.parse_args()
    report = json.loads(Path(args.report).read_text())
    records, dataset, reader = report["answers"], SpatialQADataset(args.data), DatasetReader(args.data)
    max_questions = None if report["num_questions"] == len(dataset) else report["num_questions"]
    for record, j in zip(records, _select(len(dataset), max_questions, report["seed"]), strict=True):
        pair = reader.qa_pair(int(dataset.qa_indices[j]))
        if pair["question"] != record["question"]:
            raise ValueError(f"{args.data}: question {j} is {pair['question']!r}, the report's {record['question']!r}; "
                             "allowed: the dataset (and --max-questions, --seed) the report answered")
        record["scene_labels"] = scene_labels(reader.meta(pair["scene_index"]))
    header = {key: value for key, value in report.items() if key not in COMPUTED}
    out = _write_report(header, records, report["vocabulary"], args.out or Path(args.report).parent,
                        max_new_tokens=report["max_new_tokens"], seed=report["seed"])
    side = out["negative_class_in_scene"].get("negative", {}).get("all", {}).get("questions", 0)
    print(f"rescored {len(records)} questions -> {args.out or Path(args.report).parent}; "
          f"negative probes about a class in the scene: {side}")


if __name__ == "__main__":
    main()
