"""Evaluation metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from spatial_alm.evaluation import (
    average_precision,
    detection_map,
    distance_accuracy,
    distance_error_rate,
    doa_accuracy,
    doa_error_rate,
    lateral_accuracy,
    lateral_angle_deg,
    lateral_error_deg,
    mcnemar_exact,
    mean_angular_error,
    seld_metrics,
    wilcoxon_paired,
    yes_no_accuracy,
)


def test_average_precision_of_a_known_ranking():
    # Positives at ranks 1, 3, 5: precisions 1/1, 2/3, 3/5.
    ap = average_precision([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 1])
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_average_precision_enters_tied_scores_together():
    # Threshold 0.5 takes both tied items (P = 1/2, R = 1/2), threshold 0.2 the third (P = 2/3, R = 1).
    assert average_precision([0.5, 0.5, 0.2], [1, 0, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision([0.5, 0.5, 0.2], [0, 1, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_detection_map_skips_classes_without_positives_and_reports_percent():
    scores = np.array([[0.9, 0.9, 0.3], [0.1, 0.8, 0.2], [0.2, 0.1, 0.9]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    # class 0: positive ranked first (AP 1); class 1: positive ranked second (AP 1/2); class 2 skipped
    assert detection_map(scores, targets) == pytest.approx(75.0)
    assert detection_map(scores, targets, classes="present") == pytest.approx(75.0)
    assert detection_map(targets[:, :2] + 0.1, targets[:, :2]) == pytest.approx(100.0)


def test_detection_map_over_all_classes_counts_a_class_without_positives_as_zero():
    # BAT / Spatial-AST: np.mean of sklearn's per-class AP over every class; sklearn (>= 1.1) gives 0
    # to a class without positives. Same case as above: (AP 1 + AP 1/2 + AP 0) / 3 = 50 %.
    scores = np.array([[0.9, 0.9, 0.3], [0.1, 0.8, 0.2], [0.2, 0.1, 0.9]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert detection_map(scores, targets, classes="all") == pytest.approx(50.0)
    # every class has a positive: the two agree (class 0: AP 1; class 1: positive ranked 2nd, AP 1/2)
    assert detection_map(scores[:, :2], targets[:, :2], classes="all") == pytest.approx(75.0)
    with pytest.raises(ValueError, match="classes = 'some'"):
        detection_map(scores, targets, classes="some")


@pytest.mark.parametrize(
    "scores, targets, field",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "shape"),
        (np.zeros((3, 2)), np.zeros((3, 2)), "no positive"),
        (np.zeros((2, 1)), np.array([[2], [0]]), "0/1"),
    ],
)
def test_detection_map_rejects_bad_input(scores, targets, field):
    with pytest.raises(ValueError, match=field):
        detection_map(scores, targets)


def test_doa_accuracy_counts_exactly_20_degrees_as_correct():
    assert doa_accuracy([20.0], [0.0], [0.0], [0.0]) == 100.0
    assert doa_accuracy([0.0], [-20.0], [0.0], [0.0]) == 100.0
    assert doa_accuracy([20.5], [0.0], [0.0], [0.0]) == 0.0
    assert doa_error_rate([20.5, 10.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]) == 50.0


def test_mcnemar_exact_matches_the_hand_computed_binomial_tail():
    # A right / B wrong on 1 item, B right / A wrong on 5: p = 2 * (C(6,0) + C(6,1)) / 2^6 = 14 / 64
    a = [True, True, False, False, False, False, False]
    b = [True, False, True, True, True, True, True]
    assert mcnemar_exact(a, b) == {"a_only": 1, "b_only": 5, "p_value": pytest.approx(14 / 64)}
    assert mcnemar_exact(b, a)["p_value"] == pytest.approx(mcnemar_exact(a, b)["p_value"])
    # concordant items carry no evidence; none discordant gives p = 1
    assert mcnemar_exact([True, False], [True, False]) == {"a_only": 0, "b_only": 0, "p_value": 1.0}
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_wilcoxon_paired_matches_the_exact_signed_rank_tail():
    # five differences, all positive: of the 2^5 equally likely sign patterns only "all +" and "all -"
    # are as extreme, so the exact two-sided p is 2 / 32
    test = wilcoxon_paired([2.0, 4.0, 6.0, 8.0, 10.0, np.nan], [1.0, 2.0, 3.0, 4.0, 5.0, 1.0])
    assert test == {"mean_difference": 3.0, "pairs": 5, "p_value": pytest.approx(2 / 32)}
    assert wilcoxon_paired([1.0, 2.0], [1.0, 2.0])["p_value"] == 1.0
    with pytest.raises(ValueError):
        wilcoxon_paired([1.0], [1.0, 2.0])


def test_azimuth_wraps_around_and_poles_ignore_azimuth():
    assert mean_angular_error([179.0], [0.0], [-179.0], [0.0]) == pytest.approx(2.0)
    assert mean_angular_error([123.0], [90.0], [-40.0], [90.0]) == pytest.approx(0.0, abs=1e-6)
    # 90 degrees of azimuth at elevation 60 is a great-circle angle of 2 asin(cos 60 sin 45) = 41.41 deg
    assert mean_angular_error([90.0], [60.0], [0.0], [60.0]) == pytest.approx(
        math.degrees(2 * math.asin(0.5 * math.sin(math.radians(45)))))


def test_unparsed_direction_is_wrong_but_left_out_of_the_mean_error():
    pred_az, pred_el = [10.0, None], [0.0, None]
    assert doa_accuracy(pred_az, pred_el, [0.0, 0.0], [0.0, 0.0]) == 50.0
    assert mean_angular_error(pred_az, pred_el, [0.0, 0.0], [0.0, 0.0]) == pytest.approx(10.0)
    assert math.isnan(mean_angular_error([None], [None], [0.0], [0.0]))


@pytest.mark.parametrize(
    "args, field",
    [
        (([0.0], [95.0], [0.0], [0.0]), "pred_el"),
        (([0.0], [0.0], [270.0], [0.0]), "true_az"),
        (([0.0], [0.0], [None], [0.0]), "true_az"),
        (([0.0, 1.0], [0.0, 1.0], [0.0], [0.0]), "same number"),
    ],
)
def test_doa_metrics_reject_bad_input(args, field):
    with pytest.raises(ValueError, match=field):
        doa_accuracy(*args)


def test_lateral_error_folds_front_and_back():
    assert lateral_error_deg([30.0], [0.0], [150.0], [0.0]) == pytest.approx(0.0, abs=1e-9)
    assert lateral_error_deg([-30.0], [0.0], [-150.0], [0.0]) == pytest.approx(0.0, abs=1e-9)
    assert lateral_error_deg([60.0], [0.0], [-60.0], [0.0]) == pytest.approx(120.0)
    assert lateral_angle_deg(90.0, 60.0) == pytest.approx(30.0)  # a source overhead-left is only 30 deg lateral
    # lateral errors 0 (mirrored), 20 (boundary, correct), 40 (wrong), unparsed (wrong) -> 50 %
    assert lateral_accuracy([30.0, 50.0, 70.0, None], [0.0] * 4, [150.0, 30.0, 30.0, 10.0], [0.0] * 4) == 50.0


def test_distance_error_rate_boundary_is_correct():
    # errors: 0.5 (boundary, correct), 1.1 (wrong), 0.8 - 0.3 = 0.5 + 1e-16 (correct), unparsed (wrong)
    pred, true = [2.5, 3.1, 0.3, None], [2.0, 2.0, 0.8, 1.0]
    assert distance_error_rate(pred, true) == 50.0
    assert distance_accuracy(pred, true) == 50.0
    assert distance_error_rate([2.6], [2.0]) == 100.0
    with pytest.raises(ValueError, match="pred_m"):
        distance_error_rate([-1.0], [2.0])


def test_yes_no_accuracy_counts_unparseable_as_wrong():
    result = yes_no_accuracy([True, False, None, True], [True, True, False, True])
    # truth yes: 2 of 3 right; truth no: 0 of 1 (unparseable) -> balanced (66.7 + 0) / 2
    assert result == pytest.approx({"accuracy": 50.0, "balanced_accuracy": 100.0 / 3, "answered_yes": 50.0,
                                    "unparseable": 1, "total": 4})
    constant = yes_no_accuracy([False] * 4, [True, False, False, False])  # always "no": 75 % right, balanced 50
    assert constant["accuracy"] == 75.0 and constant["balanced_accuracy"] == 50.0 and constant["answered_yes"] == 0
    assert yes_no_accuracy([np.bool_(True)], [True])["accuracy"] == 100.0
    with pytest.raises(ValueError, match="pred contains 'yes'"):
        yes_no_accuracy(["yes"], [True])
    with pytest.raises(ValueError, match="true contains None"):
        yes_no_accuracy([True], [None])


def test_seld_metrics_hand_computed_case():
    references = [
        [("dog", 0.0, 0.0)],
        [("car", 90.0, 0.0)],
        [("siren", -90.0, 0.0)],
        [],
    ]
    predictions = [
        [("dog", 10.0, 0.0)],  # correct class, 10 deg off: TP
        [("car", 140.0, 0.0)],  # correct class, 50 deg off: a false positive only (DCASE) -> one insertion
        [],  # missed: FN -> one deletion
        [("bird", 0.0, 0.0)],  # false alarm: FP -> one insertion
    ]
    m = seld_metrics(predictions, references)
    # TP = 1, FP = 2 (car far pair, bird), FP_far = 1, FN = 1 (siren), N_ref = 3
    # ER20 = (S + D + I) / N_ref = (0 + 1 + 2) / 3 = 1
    # F20 = TP / (TP + FP_far + (FP - FP_far + FN) / 2) = 1 / (1 + 1 + 1) = 1/3
    # LE_CD = mean of the same-class pairs (dog 10, car 50) = 30 deg; LR_CD = 2 pairs / 3 refs = 2/3
    # SELD = (1 + (1 - 1/3) + 30 / 180 + (1 - 2/3)) / 4 = 13/24
    assert (m["TP"], m["FP"], m["FP_far"], m["FN"], m["num_references"]) == (1, 2, 1, 1, 3)
    assert m["ER20"] == pytest.approx(1.0)
    assert m["F20_micro"] == pytest.approx(1 / 3)
    assert m["LE_CD_micro"] == pytest.approx(30.0)
    assert m["LR_CD_micro"] == pytest.approx(2 / 3)
    assert m["SELD_micro"] == pytest.approx(13 / 24)


def test_seld_far_pair_beside_a_missed_reference_is_one_substitution():
    # DCASE 2021-2023 code: the class-0 pair 60 deg off is a false positive only, the missed class-1
    # reference a false negative: per scene FP = 1, FN = 1 -> S = 1, D = I = 0; ER20 = 1 / 2 refs = 0.5.
    # (Counting the far pair also as a false negative gave FN = 2 -> S = 1, D = 1, ER20 = 1.0.)
    m = seld_metrics([[(0, 60.0, 0.0)]], [[(0, 0.0, 0.0), (1, 90.0, 0.0)]])
    assert m["ER20"] == pytest.approx(0.5)
    assert (m["TP"], m["FP"], m["FP_far"], m["FN"]) == (0, 1, 1, 1)
    # F20 = 0; LE_CD = 60 (one pair); LR_CD = 1 pair / 2 refs
    assert (m["F20_micro"], m["LE_CD_micro"], m["LR_CD_micro"]) == pytest.approx((0.0, 60.0, 0.5))


def test_seld_counts_a_wrong_class_in_one_scene_as_one_substitution():
    m = seld_metrics([[("bird", -90.0, 0.0)]], [[("siren", -90.0, 0.0)]])
    # FP = FN = 1: S = 1, ER = 1; F = 0; no same-class pair: LE = 180, LR = 0; SELD = (1 + 1 + 1 + 1) / 4
    micro = (m["ER20"], m["F20_micro"], m["LE_CD_micro"], m["LR_CD_micro"], m["SELD_micro"])
    assert micro == (1.0, 0.0, 180.0, 0.0, 1.0)
    # per class (bird, siren) the same worst values, so the macro means are too
    assert (m["F20_macro"], m["LE_CD_macro"], m["LR_CD_macro"], m["SELD_macro"]) == (0.0, 180.0, 0.0, 1.0)


def test_seld_pairs_same_class_events_by_hungarian_assignment():
    # Pairing in list order would match (85, 0) with (0, 0): 85 deg off. The optimum is 5 + 5 deg.
    m = seld_metrics([[("dog", 85.0, 0.0), ("dog", 5.0, 0.0)]], [[("dog", 0.0, 0.0), ("dog", 90.0, 0.0)]])
    assert (m["TP"], m["FP"], m["FN"]) == (2, 0, 0)
    assert m["LE_CD_micro"] == pytest.approx(5.0)
    assert m["SELD_micro"] == pytest.approx(5.0 / 180 / 4)


def test_seld_extra_prediction_of_an_absent_class():
    # dog found exactly; bird predicted but in no reference: FP = 1, FN = 0 -> I = 1; ER20 = 1 / 1 ref = 1
    m = seld_metrics([[("dog", 30.0, 10.0), ("bird", 90.0, 0.0)]], [[("dog", 30.0, 10.0)]])
    assert (m["TP"], m["FP"], m["FP_far"], m["FN"], m["num_references"]) == (1, 1, 0, 0, 1)
    assert m["ER20"] == pytest.approx(1.0)
    # micro: F20 = 1 / (1 + 0 + (1 + 0) / 2) = 2/3; the one pair is exact: LE_CD 0, LR_CD 1 / 1
    assert (m["F20_micro"], m["LE_CD_micro"], m["LR_CD_micro"]) == pytest.approx((2 / 3, 0.0, 1.0), abs=1e-6)
    # macro over dog and bird: bird has no pair and no reference, so the worst values F 0, LE 180, LR 0
    assert m["per_class"]["bird"]["F20"] == 0.0 and m["per_class"]["bird"]["LE_CD"] == 180.0
    assert m["per_class"]["bird"]["LR_CD"] == 0.0
    # F20 (1 + 0) / 2, LE_CD (0 + 180) / 2, LR_CD (1 + 0) / 2
    assert (m["F20_macro"], m["LE_CD_macro"], m["LR_CD_macro"]) == pytest.approx((0.5, 90.0, 0.5), abs=1e-6)
    # SELD_macro = (1 + 0.5 + 0.5 + 0.5) / 4
    assert m["SELD_macro"] == pytest.approx(0.625, abs=1e-6)


def test_seld_macro_and_micro_differ_by_hand():
    references = [[("dog", 0.0, 0.0)], [("dog", 0.0, 0.0)], [("bird", 90.0, 0.0)], [("bird", -90.0, 0.0)]]
    predictions = [[("dog", 10.0, 0.0)], [("dog", 0.0, 0.0)], [("bird", 150.0, 0.0)], []]
    m = seld_metrics(predictions, references)
    # dog: 2 TP (10 and 0 deg off); bird: one pair 60 deg off (FP_far, an insertion) and one miss (FN, a
    # deletion). ER20 = (0 + 1 + 1) / 4 = 0.5.
    assert m["ER20"] == pytest.approx(0.5)
    # micro: F20 = 2 / (2 + 1 + (0 + 1) / 2) = 4/7; LE_CD = (10 + 0 + 60) / 3 = 70/3; LR_CD = 3 pairs / 4 refs
    assert (m["F20_micro"], m["LE_CD_micro"], m["LR_CD_micro"]) == pytest.approx((4 / 7, 70 / 3, 0.75))
    # per class: dog F 2 / 2 = 1, LE 5, LR 1; bird F 0 / (0 + 1 + 1/2) = 0, LE 60, LR 1/2
    # macro: F20 (1 + 0) / 2 = 0.5; LE_CD (5 + 60) / 2 = 32.5; LR_CD (1 + 0.5) / 2 = 0.75
    assert (m["F20_macro"], m["LE_CD_macro"], m["LR_CD_macro"]) == pytest.approx((0.5, 32.5, 0.75))
    assert m["SELD_micro"] == pytest.approx((0.5 + 3 / 7 + 70 / 3 / 180 + 0.25) / 4)
    assert m["SELD_macro"] == pytest.approx((0.5 + 0.5 + 32.5 / 180 + 0.25) / 4)


def test_seld_macro_over_a_given_class_list_scores_absent_classes_at_worst_values():
    refs = [[("dog", 30.0, 10.0)]]
    m = seld_metrics(refs, refs, classes=["dog", "bird", "siren"])
    # dog perfect (F 1, LE 0, LR 1); bird and siren never occur: F 0, LE 180, LR 0 each (the DCASE code)
    assert m["classes"] == ["dog", "bird", "siren"]
    assert (m["F20_macro"], m["LE_CD_macro"], m["LR_CD_macro"]) == pytest.approx((1 / 3, 120.0, 1 / 3), abs=1e-6)
    assert (m["ER20"], m["F20_micro"], m["LR_CD_micro"]) == (0.0, 1.0, 1.0)  # micro ignores the absent classes
    with pytest.raises(ValueError, match="'car' is not in classes"):
        seld_metrics([[("car", 0.0, 0.0)]], refs, classes=["dog"])


def test_seld_metrics_perfect_and_bad_input():
    refs = [[("dog", 30.0, 10.0), ("car", -100.0, -5.0)], [("dog", 0.0, 0.0)]]
    perfect = seld_metrics(refs, refs)
    assert perfect["SELD_micro"] == pytest.approx(0.0, abs=1e-9) and perfect["F20_micro"] == 1.0
    assert perfect["ER20"] == 0.0 and (perfect["F20_macro"], perfect["LR_CD_macro"]) == (1.0, 1.0)
    assert perfect["LE_CD_macro"] == pytest.approx(0.0, abs=1e-6)
    assert perfect["SELD_macro"] == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="scenes"):
        seld_metrics(refs[:1], refs)
    with pytest.raises(ValueError, match="no events"):
        seld_metrics([[]], [[]])
    with pytest.raises(ValueError, match=r"predictions\[0\]_el"):
        seld_metrics([[("dog", 0.0, 100.0)]], [[("dog", 0.0, 0.0)]])
