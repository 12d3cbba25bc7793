"""Type E by what the heard line says of the two named sounds: on opposite sides of the asked axis, or on one.

    python experiments/diagnostics/e_line_sides.py out/eval/report.json

A side question of type E ("is the <a> to the left of the <b>?") is only asked when the two sources
lie on opposite sides of the axis (spatial_alm.qa.generator), so a heard line that puts both on one
side contradicts the question's presupposition: its side words alone cannot answer it. The class-wise
heads still answer it by comparing the two decoded directions along the axis (a graded comparison);
the LLM reads the line. For every side axis the report (`spatial-alm evaluate`'s report.json) asks
about, this prints the questions in each group, how many the LLM and the heads answered right, and the
exact McNemar test between them.
"""

from __future__ import annotations

import argparse
import json

from spatial_alm.evaluation.metrics import mcnemar_exact
from spatial_alm.evaluation.qa_report import question_axis
from spatial_alm.models.heard_sources import PREFIX
from spatial_alm.qa.templates import REGION_PHRASES, named_labels, with_article

SIDE_WORDS = {"left_right": ("left", "right"), "front_back": ("front", "behind"), "above_below": ("above", "below")}


def line_sides(heard_line: str, labels: list[str], axis: str) -> dict[str, str]:
    """The side of ``axis`` the line gives each of ``labels`` it lists (a label it does not list is left out)."""
    sides = {}
    for phrase in heard_line.removeprefix(PREFIX).rstrip(".").split("; "):
        for label in labels:
            if phrase.startswith(f"{with_article(label)} ("):
                sides[label] = next(side for side in SIDE_WORDS[axis] if REGION_PHRASES[side] in phrase)
    return sides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", help="report.json of `spatial-alm evaluate`")
    args = parser.parse_args()
    report = json.load(open(args.report))
    groups: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    for record in report["answers"]:
        axis = question_axis(record) if record["question_type"] == "E" else None
        if axis not in SIDE_WORDS or axis not in record["receiver_axes"]:
            continue
        labels = named_labels(record["question"], report["vocabulary"])
        sides = line_sides(record["heard_line"], labels, axis)
        group = ("not both on the line" if len(sides) < 2 else
                 "one side" if len(set(sides.values())) == 1 else "opposite sides")
        truth = record["answer"] == "yes"
        groups.setdefault((axis, group), []).append((record["prediction"].get("yes") == truth,
                                                     record["encoder_prediction"].get("yes") == truth))
    print(f"{args.report}: type E side questions by the sides the heard line gives the two named sounds")
    print(f"{'axis':12} {'line puts them on':22} {'n':>5} {'LLM right':>10} {'heads right':>12} {'LLM only':>9} "
          f"{'heads only':>11} {'p':>8}")
    for (axis, group), pairs in sorted(groups.items()):
        llm, heads = [p[0] for p in pairs], [p[1] for p in pairs]
        test = mcnemar_exact(llm, heads)
        print(f"{axis:12} {group:22} {len(pairs):5d} {sum(llm):10d} {sum(heads):12d} {test['a_only']:9d} "
              f"{test['b_only']:11d} {test['p_value']:8.4f}")


if __name__ == "__main__":
    main()
