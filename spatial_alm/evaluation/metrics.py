"""Scores for detection, localisation, distance and reasoning answers, BAT-comparable plus DCASE SELD.

Arrays in, plain floats or dicts out. Directions are in the listener frame of
:mod:`spatial_alm.coordinates` (azimuth in [-180, 180], 0 = front, +90 = left; elevation in [-90, 90];
degrees). Percentages are 0-100 as BAT reports them; the SELD metrics are fractions (0-1) and degrees
as in the DCASE formula.

Unparseable predictions (None or NaN, as the answer parser leaves them) count as wrong in every
accuracy and error rate; :func:`mean_angular_error` and :func:`lateral_error_deg` average over the
parsed ones only.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import binomtest, wilcoxon

from spatial_alm.coordinates import great_circle_deg

DOA_THRESHOLD_DEG = 20.0  # BAT and DCASE: a direction is correct within 20 degrees great-circle error
DISTANCE_TOLERANCE_M = 0.5  # BAT: one 0.5 m distance class
ROUNDING_SLACK = 1e-9  # errors exactly at a threshold count as correct despite float rounding

Event = tuple[Hashable, float, float]  # (label, azimuth_deg, elevation_deg)


def _values(name: str, values, *, allow_missing: bool) -> np.ndarray:
    """1-D float64 array; None becomes NaN (missing), which only predictions may contain."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if np.isinf(arr).any() or (not allow_missing and np.isnan(arr).any()):
        raise ValueError(f"{name} must be finite{'' if allow_missing else ' (no None/NaN)'}")
    return arr


def _directions(prefix: str, azimuth_deg, elevation_deg, *, allow_missing: bool) -> tuple[np.ndarray, np.ndarray]:
    az = _values(f"{prefix}_az", azimuth_deg, allow_missing=allow_missing)
    el = _values(f"{prefix}_el", elevation_deg, allow_missing=allow_missing)
    if az.shape != el.shape:
        raise ValueError(f"{prefix}_az has {az.size} values but {prefix}_el has {el.size}")
    for name, arr, bound in ((f"{prefix}_az", az, 180.0), (f"{prefix}_el", el, 90.0)):
        bad = np.abs(arr) > bound
        if bad.any():
            raise ValueError(f"{name} = {arr[bad][0]} out of range; allowed [-{bound:g}, {bound:g}] degrees")
    return az, el


def _check_same_size(pred_name: str, pred: np.ndarray, true_name: str, true: np.ndarray) -> None:
    if pred.shape != true.shape or true.size == 0:
        raise ValueError(f"{pred_name} and {true_name} must hold the same number (>= 1) of values, "
                         f"got {pred.size} and {true.size}")


def _angular_errors(pred_az, pred_el, true_az, true_el) -> np.ndarray:
    """Great-circle errors (N,) in degrees; NaN where the prediction is missing."""
    p_az, p_el = _directions("pred", pred_az, pred_el, allow_missing=True)
    t_az, t_el = _directions("true", true_az, true_el, allow_missing=False)
    _check_same_size("pred", p_az, "true", t_az)
    return great_circle_deg(p_az, p_el, t_az, t_el).numpy()


def average_precision(scores, targets) -> float:
    """Average precision (fraction) of one class: scores (N,), binary targets (N,) with >= 1 positive.

    The area under the step-wise precision-recall curve, sum_n (R_n - R_{n-1}) P_n over the distinct
    score thresholds in descending order (scikit-learn's ``average_precision_score``). Without ties it
    is the mean, over the positives, of the precision at each positive's rank; tied scores enter
    together.
    """
    scores = _values("scores", scores, allow_missing=False)
    targets = _values("targets", targets, allow_missing=False)
    if scores.shape != targets.shape:
        raise ValueError(f"scores has {scores.size} values but targets has {targets.size}")
    if not np.isin(targets, (0.0, 1.0)).all() or targets.sum() == 0:
        raise ValueError("targets must be 0/1 with at least one positive")
    order = np.argsort(-scores, kind="stable")
    scores, targets = scores[order], targets[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tp = np.cumsum(targets)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall_gain = np.diff(np.r_[0.0, tp]) / tp[-1]
    return float(np.sum(recall_gain * precision))


MAP_CLASSES = ("present", "all")


def detection_map(scores, targets, classes: str = "present") -> float:
    """Mean average precision in percent over the K classes: ``classes`` says which classes the mean covers.

    scores: (N, K) any real scores (higher = more confident); targets: (N, K) multi-hot 0/1.

    ``classes="present"``: the mean over the classes with at least one positive (a class without one
    has no defined AP and is left out). ``classes="all"``: the mean over all K columns, a class without
    a positive counting AP 0 -- what BAT and Spatial-AST report: they take scikit-learn's
    ``average_precision_score`` of each of their 355 classes and ``np.mean`` over all of them, and
    scikit-learn (since 1.1, with a warning; checked with 1.9.1) returns 0 for a column without
    positives (older releases returned NaN). The two agree when every class has a positive; "all" is
    lower otherwise. Both raise when no class has a positive.
    """
    if classes not in MAP_CLASSES:
        raise ValueError(f"classes = {classes!r}; allowed: {', '.join(map(repr, MAP_CLASSES))}")
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores and targets must both have shape (N, K), got {scores.shape} and {targets.shape}")
    if not np.isfinite(scores).all() or not np.isin(targets, (0.0, 1.0)).all():
        raise ValueError("scores must be finite and targets 0/1 in every column")
    present = np.flatnonzero(targets.sum(0) > 0)
    if present.size == 0:
        raise ValueError("targets has no positive in any class; mAP is undefined")
    total = sum(average_precision(scores[:, k], targets[:, k]) for k in present)
    return 100.0 * float(total / (present.size if classes == "present" else targets.shape[1]))


def doa_accuracy(pred_az, pred_el, true_az, true_el, threshold_deg: float = DOA_THRESHOLD_DEG) -> float:
    """Percent of predictions within ``threshold_deg`` degrees great-circle error (boundary included)."""
    return 100.0 * float(np.mean(doa_correct(pred_az, pred_el, true_az, true_el, threshold_deg)))


def doa_error_rate(pred_az, pred_el, true_az, true_el, threshold_deg: float = DOA_THRESHOLD_DEG) -> float:
    """Percent of predictions more than ``threshold_deg`` off (Spatial-AST's "DoA error rate at 20 degrees")."""
    return 100.0 - doa_accuracy(pred_az, pred_el, true_az, true_el, threshold_deg)


def doa_correct(pred_az, pred_el, true_az, true_el, threshold_deg: float = DOA_THRESHOLD_DEG) -> np.ndarray:
    """(N,) bool: prediction within ``threshold_deg`` degrees great-circle error (unparsed: False)."""
    return _angular_errors(pred_az, pred_el, true_az, true_el) <= threshold_deg + ROUNDING_SLACK


def mcnemar_exact(correct_a, correct_b) -> dict:
    """Exact McNemar test of two methods scored right/wrong on the same N items.

    Only the discordant items count: ``a_only`` (A right, B wrong) and ``b_only``; under the null
    hypothesis of equal accuracy each is Binomial(a_only + b_only, 1/2). Returns the counts and the
    two-sided ``p_value`` (1.0 when no item is discordant).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    _check_same_size("correct_a", a, "correct_b", b)
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p_value = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p_value)}


def wilcoxon_paired(errors_a, errors_b) -> dict:
    """Wilcoxon signed-rank test of two methods' errors on the same N items (pairs with a NaN dropped).

    Returns ``mean_difference`` (mean of a - b: negative when A errs less), the number of ``pairs`` and
    the two-sided ``p_value`` (1.0 when every difference is zero).
    """
    a = np.asarray(errors_a, dtype=np.float64)
    b = np.asarray(errors_b, dtype=np.float64)
    _check_same_size("errors_a", a, "errors_b", b)
    diff = (a - b)[np.isfinite(a) & np.isfinite(b)]
    p_value = float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    return {"mean_difference": float(diff.mean()) if diff.size else float("nan"), "pairs": int(diff.size),
            "p_value": p_value}


def mean_angular_error(pred_az, pred_el, true_az, true_el) -> float:
    """Mean great-circle error in degrees over the parsed predictions (NaN if none is parsed)."""
    errors = _angular_errors(pred_az, pred_el, true_az, true_el)
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def lateral_angle_deg(azimuth_deg, elevation_deg) -> np.ndarray:
    """Interaural-polar lateral angle asin(cos(el) sin(az)) in degrees, +90 = left; front/back-blind."""
    az = np.deg2rad(np.asarray(azimuth_deg, dtype=np.float64))
    el = np.deg2rad(np.asarray(elevation_deg, dtype=np.float64))
    return np.rad2deg(np.arcsin(np.clip(np.cos(el) * np.sin(az), -1.0, 1.0)))


def lateral_errors_deg(pred_az, pred_el, true_az, true_el) -> np.ndarray:
    """(N,) absolute lateral-angle error per item in degrees (NaN where the prediction is missing)."""
    p_az, p_el = _directions("pred", pred_az, pred_el, allow_missing=True)
    t_az, t_el = _directions("true", true_az, true_el, allow_missing=False)
    _check_same_size("pred", p_az, "true", t_az)
    return np.abs(lateral_angle_deg(p_az, p_el) - lateral_angle_deg(t_az, t_el))


def lateral_error_deg(pred_az, pred_el, true_az, true_el) -> float:
    """Mean absolute lateral-angle error in degrees over the parsed predictions: front/back folded.

    Directions mirrored front-to-back (azimuth 30 and 150) have the same lateral angle, so two-channel
    methods that cannot tell front from back are scored only on what they can resolve.
    """
    errors = lateral_errors_deg(pred_az, pred_el, true_az, true_el)
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def lateral_accuracy(pred_az, pred_el, true_az, true_el, threshold_deg: float = DOA_THRESHOLD_DEG) -> float:
    """Percent of predictions whose lateral angle is within ``threshold_deg`` (front/back folded;
    unparsed predictions are wrong): :func:`doa_accuracy` for receivers blind to front and back."""
    errors = lateral_errors_deg(pred_az, pred_el, true_az, true_el)
    return 100.0 * float(np.mean(np.nan_to_num(errors, nan=np.inf) <= threshold_deg + ROUNDING_SLACK))


def distance_error_rate(pred_m, true_m, tolerance_m: float = DISTANCE_TOLERANCE_M) -> float:
    """DER (BAT): percent of distance answers more than ``tolerance_m`` metres off (boundary is correct)."""
    pred = _values("pred_m", pred_m, allow_missing=True)
    true = _values("true_m", true_m, allow_missing=False)
    _check_same_size("pred_m", pred, "true_m", true)
    for name, arr in (("pred_m", pred), ("true_m", true)):
        if (arr < 0).any():
            raise ValueError(f"{name} = {arr[arr < 0][0]}; distances must be >= 0 metres")
    correct = np.abs(pred - true) <= tolerance_m + ROUNDING_SLACK  # NaN compares False: wrong
    return 100.0 * float(np.mean(~correct))


def distance_accuracy(pred_m, true_m, tolerance_m: float = DISTANCE_TOLERANCE_M) -> float:
    """Percent of distance answers within ``tolerance_m`` metres: 100 - DER."""
    return 100.0 - distance_error_rate(pred_m, true_m, tolerance_m)


def yes_no_accuracy(pred: Sequence[bool | None], true: Sequence[bool]) -> dict:
    """Yes/no reasoning answers: {"accuracy", "balanced_accuracy", "answered_yes" (percent), "unparseable"
    (count of None), "total" (N)}.

    None (an answer without yes or no) counts as wrong. Balanced accuracy is the mean over the true
    answers present (yes, no) of the percent right among them: 50 for any constant answer, whatever
    the share of yes in the truth. ``answered_yes``: percent of all answers that are yes.
    """
    if len(pred) != len(true) or len(true) == 0:
        raise ValueError(f"pred and true must hold the same number (>= 1) of answers, got {len(pred)} and {len(true)}")
    for name, values, allowed in (("pred", pred, "True, False or None"), ("true", true, "True or False")):
        bad = [v for v in values if not (isinstance(v, (bool, np.bool_)) or (v is None and name == "pred"))]
        if bad:
            raise ValueError(f"{name} contains {bad[0]!r}; allowed: {allowed}")
    right = [p is not None and bool(p) == bool(t) for p, t in zip(pred, true)]
    recalls = [np.mean([r for r, t in zip(right, true) if bool(t) == answer])
               for answer in (True, False) if any(bool(t) == answer for t in true)]
    return {"accuracy": 100.0 * sum(right) / len(true), "balanced_accuracy": 100.0 * float(np.mean(recalls)),
            "answered_yes": 100.0 * sum(p is not None and bool(p) for p in pred) / len(true),
            "unparseable": sum(p is None for p in pred), "total": len(true)}


def _check_events(name: str, scenes: Sequence[Sequence[Event]]) -> None:
    for i, scene in enumerate(scenes):
        for event in scene:
            if len(event) != 3:
                raise ValueError(f"{name}[{i}] has event {event!r}; expected (label, azimuth_deg, elevation_deg)")
            _directions(f"{name}[{i}]", [event[1]], [event[2]], allow_missing=False)


def seld_metrics(predictions: Sequence[Sequence[Event]], references: Sequence[Sequence[Event]],
                 threshold_deg: float = DOA_THRESHOLD_DEG, classes: Sequence[Hashable] | None = None) -> dict:
    """DCASE SELD metrics (Mesaros et al. 2019; Politis et al. 2020), clip-level, micro- and macro-averaged.

    Counts as the official DCASE 2022 and 2023 Task 3 code (``SELD_evaluation_metrics.py`` of the
    seld-dcase2022 / seld-dcase2023 baselines, identical there). DCASE 2021's code counts the same and
    gives the same ER20, LE_CD and LR_CD (micro; it has no macro), but its F20 weighs a pair more than
    ``threshold_deg`` off by 1/2 instead of 1. DCASE 2020's code differs (a far pair is a false negative).

    predictions, references: one list per scene of (label, azimuth_deg, elevation_deg) events. Ours is
    clip-level: each scene is one frame (no temporal activity, no track IDs). In each scene the
    predictions and references of one class are paired by the Hungarian algorithm on great-circle error:
    a pair within ``threshold_deg`` (included) is a true positive (TP); a pair further off is a false
    positive only (FP_far); unpaired predictions are false positives, unpaired references false
    negatives (FN). FP counts all false positives, FP_far included.

    classes: the classes the macro average runs over; None: every label that occurs in the predictions
    or references. The official code averages over its fixed class list, so pass the full list to
    match it: a class without any prediction or reference there scores F20 0, LE_CD 180, LR_CD 0.
    A label outside ``classes`` raises.

    Returns (fractions unless noted):
        ER20: (S + D + I) / N_ref, with per scene S = min(FP, FN), D = max(0, FN - FP),
            I = max(0, FP - FN) (the same under both averagings).
        F20_micro: TP / (TP + FP_far + (FP - FP_far + FN) / 2) over all counts.
        LE_CD_micro: mean great-circle error of all same-class pairs in degrees (180 when there is none).
        LR_CD_micro: pairs / N_ref, the share of references that got a same-class prediction.
        F20_macro, LE_CD_macro, LR_CD_macro: the same per class (a class without pairs: LE_CD 180;
            without references: LR_CD 0; without any event: F20 0), then the mean over ``classes``.
        SELD_micro, SELD_macro: (ER20 + (1 - F20) + LE_CD / 180 + (1 - LR_CD)) / 4; lower is better.
        TP, FP, FP_far, FN, num_references: the counts (ints); per_class: {label: {"F20", "LE_CD",
            "LR_CD", "TP", "FP", "FP_far", "FN", "num_references"}}; classes: the labels averaged over.
    """
    if len(predictions) != len(references):
        raise ValueError(f"predictions has {len(predictions)} scenes but references has {len(references)}")
    _check_events("predictions", predictions)
    _check_events("references", references)
    occurring = list(dict.fromkeys(e[0] for scene in (*references, *predictions) for e in scene))
    if classes is None:
        classes = occurring
    else:
        classes = list(dict.fromkeys(classes))
        unknown = [label for label in occurring if label not in classes]
        if unknown:
            raise ValueError(f"event label {unknown[0]!r} is not in classes; allowed: {classes}")
    keys = ("TP", "FP", "FP_far", "FN", "num_references")
    counts = {label: dict.fromkeys(keys, 0) for label in classes}
    pair_errors: dict[Hashable, list[float]] = {label: [] for label in classes}
    errors_per_scene = 0  # S + D + I
    for pred_scene, ref_scene in zip(predictions, references):
        scene_fp = scene_fn = 0
        for label in dict.fromkeys([e[0] for e in pred_scene] + [e[0] for e in ref_scene]):
            pred = np.array([e[1:] for e in pred_scene if e[0] == label], dtype=np.float64).reshape(-1, 2)
            ref = np.array([e[1:] for e in ref_scene if e[0] == label], dtype=np.float64).reshape(-1, 2)
            errors = great_circle_deg(pred[:, None, 0], pred[:, None, 1], ref[None, :, 0], ref[None, :, 1]).numpy()
            rows, cols = linear_sum_assignment(errors) if errors.size else ([], [])
            matched = errors[rows, cols]
            pair_errors[label].extend(matched.tolist())
            hits = int(np.sum(matched <= threshold_deg + ROUNDING_SLACK))
            far = len(matched) - hits
            c = counts[label]
            c["TP"] += hits
            c["FP_far"] += far
            c["FP"] += far + len(pred) - len(matched)
            c["FN"] += len(ref) - len(matched)
            c["num_references"] += len(ref)
            scene_fp += far + len(pred) - len(matched)
            scene_fn += len(ref) - len(matched)
        errors_per_scene += max(scene_fp, scene_fn)  # S + D + I = min + (max - min)
    total = {key: sum(c[key] for c in counts.values()) for key in keys}
    if total["num_references"] == 0:
        raise ValueError("references contain no events; ER20 and LR_CD are undefined")
    er = errors_per_scene / total["num_references"]

    def scores(c: dict, errors: list[float]) -> dict:
        denominator = c["TP"] + c["FP_far"] + 0.5 * (c["FP"] - c["FP_far"] + c["FN"])
        return {"F20": c["TP"] / denominator if denominator else 0.0,
                "LE_CD": float(np.mean(errors)) if errors else 180.0,
                "LR_CD": len(errors) / c["num_references"] if c["num_references"] else 0.0}

    def seld(f: float, le: float, lr: float) -> float:
        return (er + (1 - f) + le / 180 + (1 - lr)) / 4

    micro = scores(total, [e for errors in pair_errors.values() for e in errors])
    per_class = {label: {**scores(counts[label], pair_errors[label]), **counts[label]} for label in classes}
    macro = {name: float(np.mean([row[name] for row in per_class.values()])) for name in ("F20", "LE_CD", "LR_CD")}
    return {"ER20": er,
            **{f"{name}_micro": value for name, value in micro.items()}, "SELD_micro": seld(*micro.values()),
            **{f"{name}_macro": value for name, value in macro.items()}, "SELD_macro": seld(*macro.values()),
            **total, "per_class": per_class, "classes": classes}
