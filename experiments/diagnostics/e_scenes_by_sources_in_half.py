"""The class-wise heads' E answers about one axis, scene by scene, by how many of the scene's sources their class
vectors place in the true half, and by the primary source's direct-to-reverberant ratio (DRR).

An E question compares two sources' sides ("is the rain in front of the footsteps?"); the heads answer it from
the two classes' direction vectors, so a scene's questions on one axis are right when both vectors lie in their
true halves, wrong when neither does, and otherwise depend on the order of two vectors in one half. This counts
every scene with E questions on ``--axis`` by the number of its sources whose class vector lies in the true half
and whether all its questions were answered right (and how many scenes mix right and wrong answers), the
scenes by the primary source's DRR (evaluate-encoder's bands: below -6 dB, -6 to 0, at least 0) and, on front/back,
by whether every source lies at least 20 deg from the frontal plane (the sources whose front/back evaluate-encoder
scores, ``FRONT_BACK_MARGIN_DEG``; nearer the interaural axis front and back directions draw together).

Each folder is an evaluate-encoder report (``class_wise_predictions.csv``, ``predictions.csv``) holding the
``heads_answers.csv`` of ``encoder_yes_no_probe.py --answers`` on the same test set. With two folders (one encoder on
two test sets, or two encoders on one) it adds Fisher's exact test on the share of scenes with both sources in
their half, and on the share answered right among those with one.

    B=experiments/results/front_back_cues/encoder_cipic_broadband_24k_coherence_8ep_snr60_heldout_heads
    python experiments/diagnostics/e_scenes_by_sources_in_half.py $B $B/test300_seed1 \\
        --names "1000 seed-3 scenes" "300 seed-1 scenes"
"""

import argparse
import collections
import csv
from pathlib import Path

import numpy as np
from scipy.stats import fisher_exact

from spatial_alm.evaluation.encoder_report import (
    DRR_BANDS_DB,
    FRONT_BACK_MARGIN_DEG,
    front_back_confusions,
    read_class_wise_predictions,
)


def in_positive_half(azimuth_deg: np.ndarray, elevation_deg: np.ndarray, axis: str) -> np.ndarray:
    """Whether each direction (degrees) lies in front (``front_back``) or above (``above_below``)."""
    if axis == "front_back":
        return np.cos(np.radians(azimuth_deg)) > 0
    return elevation_deg > 0


def drr_band(drr_db: float) -> str:
    """The label of the evaluate-encoder DRR band (:data:`DRR_BANDS_DB`) holding ``drr_db``."""
    return next(label for low, high, label in DRR_BANDS_DB if low <= drr_db < high)


def read_csv(path: Path, made_by: str) -> list[dict]:
    """The rows of a CSV; SystemExit naming the command that writes it when it is missing."""
    if not path.is_file():
        raise SystemExit(f"{path} not found: {made_by} writes it")
    with open(path) as f:
        return list(csv.DictReader(f))


def scene_outcomes(folder: Path, axis: str) -> dict:
    """Per scene with E questions on ``axis``: ``sources`` and ``sources_in_half`` (sources whose class vector lies
    in the true half), ``opposite`` (two sources in opposite true halves), ``all_right`` / ``any_right`` over its
    questions, the primary source's ``drr_db`` and ``all_scored`` (every source far enough from the frontal plane
    for evaluate-encoder to score its front/back: :func:`front_back_confusions` not NaN)."""
    try:
        columns = read_class_wise_predictions(folder)
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    truth = in_positive_half(columns["true_azimuth_deg"], columns["true_elevation_deg"], axis)
    read = in_positive_half(columns["class_azimuth_deg"], columns["class_elevation_deg"], axis)
    true_directions = columns["true_azimuth_deg"], columns["true_elevation_deg"]
    scored = ~np.isnan(front_back_confusions(*true_directions, *true_directions))
    sources, halves, all_scored = (collections.defaultdict(list), collections.defaultdict(set),
                                   collections.defaultdict(lambda: True))
    for scene, true_half, right, source_scored in zip(columns["scene"].astype(int), truth, truth == read, scored):
        sources[scene].append(bool(right))
        halves[scene].add(bool(true_half))
        all_scored[scene] &= bool(source_scored)
    answers = collections.defaultdict(list)
    for r in read_csv(folder / "heads_answers.csv", "encoder_yes_no_probe.py --answers"):
        if r["type"] == "E" and r["axis"] == axis:
            answers[int(r["row"])].append(r["yes"] == r["answer"])
    if not answers:
        raise SystemExit(f"{folder / 'heads_answers.csv'}: no E questions about {axis}")
    drr = {int(r["scene"]): float(r["direct_to_reverberant_db"])
           for r in read_csv(folder / "predictions.csv", "spatial-alm evaluate-encoder")}
    missing = sorted(set(answers) - set(sources))
    if missing:
        raise SystemExit(f"{folder}: scenes {missing[:5]} have E answers but no class-wise predictions "
                         "(heads_answers.csv from another test set?)")
    return {scene: {"sources": len(sources[scene]), "sources_in_half": sum(sources[scene]),
                    "opposite": len(sources[scene]) == 2 and len(halves[scene]) == 2,
                    "all_right": all(right), "any_right": any(right), "drr_db": drr[scene],
                    "all_scored": all_scored[scene]}
            for scene, right in answers.items()}


def counts(outcomes: dict) -> collections.Counter:
    """(sources in their half, sources, all right) -> scenes."""
    return collections.Counter((o["sources_in_half"], o["sources"], o["all_right"]) for o in outcomes.values())


def describe(name: str, outcomes: dict, axis: str) -> list[str]:
    """The lines of one folder's table."""
    table = counts(outcomes)
    opposite = sum(o["opposite"] for o in outcomes.values())
    mixed = sum(o["any_right"] and not o["all_right"] for o in outcomes.values())
    lines = [f"{name}: {len(outcomes)} scenes with E {axis.replace('_', '/')} questions, "
             f"{opposite} with two sources in opposite halves, {mixed} with right and wrong answers"]
    for total in sorted({total for _, total, _ in table}):
        for k in range(total, -1, -1):
            n = table[k, total, True] + table[k, total, False]
            lines.append(f"  {k} of {total} sources in their true half: {n} scenes, all questions right in "
                         f"{table[k, total, True]} ({100 * table[k, total, True] / max(n, 1):.1f} %)")
    by_drr = collections.Counter((drr_band(o["drr_db"]), o["all_right"]) for o in outcomes.values())
    for _, _, band in DRR_BANDS_DB:
        n = by_drr[band, True] + by_drr[band, False]
        lines.append(f"  direct-to-reverberant ratio {band}: {n} scenes, right {by_drr[band, True]}"
                     f" ({100 * by_drr[band, True] / max(n, 1):.1f} %)")
    if axis == "front_back":
        for far, where in ((True, f"every source at least {FRONT_BACK_MARGIN_DEG:g} deg from the frontal plane"),
                           (False, f"a source less than {FRONT_BACK_MARGIN_DEG:g} deg from it")):
            group = [o["all_right"] for o in outcomes.values() if o["all_scored"] == far]
            lines.append(f"  {where}: {len(group)} scenes, right {sum(group)} "
                         f"({100 * sum(group) / max(len(group), 1):.1f} %)")
    return lines


def fisher_lines(names: list[str], first: dict, second: dict) -> list[str]:
    """Fisher's exact tests between two folders' two-source scenes."""
    a, b = counts(first), counts(second)
    both = [[t[2, 2, True] + t[2, 2, False], t[1, 2, True] + t[1, 2, False] + t[0, 2, True] + t[0, 2, False]]
            for t in (a, b)]
    order = [[t[1, 2, True], t[1, 2, False]] for t in (a, b)]
    pair = f"{names[0]} vs {names[1]}"
    return [f"both sources in their half, {pair}: Fisher exact p = {fisher_exact(both).pvalue:.2g}",
            f"one source in its half, order right, {pair}: Fisher exact p = {fisher_exact(order).pvalue:.2g}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="evaluate-encoder report folders with heads_answers.csv")
    parser.add_argument("--names", nargs="+", help="a name per folder (default: the folders)")
    parser.add_argument("--axis", choices=("front_back", "above_below"), default="front_back")
    args = parser.parse_args()
    names = args.names or [str(f) for f in args.folders]
    if len(names) != len(args.folders):
        parser.error(f"--names gives {len(names)} names for {len(args.folders)} folders")
    outcomes = [scene_outcomes(folder, args.axis) for folder in args.folders]
    for name, folder_outcomes in zip(names, outcomes):
        print("\n".join(describe(name, folder_outcomes, args.axis)))
    if len(outcomes) == 2:
        print("\n".join(fisher_lines(names, *outcomes)))


if __name__ == "__main__":
    main()
