"""Score a QA report again with the current scoring code, without answering the questions again.

    python experiments/diagnostics/rescore_qa_report.py --report RUN/report.json [--data DATASET] [--out DIR]

`spatial-alm evaluate` keeps every question, answer and parse in report.json; when the scoring gains a
table (e.g. the negative probes about a class in the scene), this rewrites report.json, report.md and
scores.png from those records (default: in the report's own folder) in seconds instead of the model's
minutes. The records need their scenes' labels: reports written (or rescored) since `evaluate` kept them
need nothing more; for an older one, DATASET is the one the report answered (same --max-questions and
--seed: the questions are checked one by one) and each record gets its scene's labels from it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spatial_alm.data import DatasetReader, SpatialQADataset
from spatial_alm.evaluation.qa_report import _select, _write_report, scene_labels

COMPUTED = ("num_questions", "max_new_tokens", "seed", "vocabulary", "model", "random", "encoder_head",
            "paired_vs_encoder_head", "elevation_against_constant", "yes_no_by_axis", "yes_no_by_heard_line",
            "negative_class_in_scene", "not_audible", "answers")


def add_scene_labels(records: list[dict], data_dir: str, num_questions: int, seed: int) -> None:
    """Give each record its scene's labels from ``data_dir``, the dataset the report answered (its
    ``num_questions`` drawn with ``seed``); ValueError where a question differs from the record's."""
    dataset, reader = SpatialQADataset(data_dir), DatasetReader(data_dir)
    max_questions = None if num_questions == len(dataset) else num_questions
    for record, j in zip(records, _select(len(dataset), max_questions, seed), strict=True):
        pair = reader.qa_pair(int(dataset.qa_indices[j]))
        if pair["question"] != record["question"]:
            raise ValueError(f"{data_dir}: question {j} is {pair['question']!r}, the report's {record['question']!r}; "
                             "allowed: the dataset (and --max-questions, --seed) the report answered")
        record["scene_labels"] = scene_labels(reader.meta(pair["scene_index"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", required=True, help="report.json written by spatial-alm evaluate")
    parser.add_argument("--data", help="the dataset folder that report answered (needed only when its records "
                                       "lack their scenes' labels)")
    parser.add_argument("--out", help="folder for the new report (default: the report's folder)")
    args = parser.parse_args()
    if not Path(args.report).is_file():
        raise SystemExit(f"{args.report}: not found; allowed: a report.json written by spatial-alm evaluate")
    report = json.loads(Path(args.report).read_text())
    records = report["answers"]
    if args.data is not None:
        add_scene_labels(records, args.data, report["num_questions"], report["seed"])
    elif not all("scene_labels" in record for record in records):
        raise SystemExit(f"{args.report}: its records lack their scenes' labels (written before evaluate kept "
                         "them); give --data, the dataset it answered")
    header = {key: value for key, value in report.items() if key not in COMPUTED}
    out = _write_report(header, records, report["vocabulary"], args.out or Path(args.report).parent,
                        max_new_tokens=report["max_new_tokens"], seed=report["seed"])
    side = out["negative_class_in_scene"].get("negative", {}).get("all", {}).get("questions", 0)
    print(f"rescored {len(records)} questions -> {args.out or Path(args.report).parent}; "
          f"negative probes about a class in the scene: {side}")


if __name__ == "__main__":
    main()
