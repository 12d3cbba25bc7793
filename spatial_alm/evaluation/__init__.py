"""Evaluation: BAT-comparable metrics, DCASE SELD metrics and classical DoA baselines."""

from spatial_alm.evaluation.baselines import (
    BASELINES,
    DOA_METHODS,
    array_doa,
    binaural_lateral_angle,
    gcc_phat_itd_s,
    woodworth_itd_s,
    woodworth_lateral_deg,
)
from spatial_alm.evaluation.metrics import (
    average_precision,
    detection_map,
    distance_accuracy,
    distance_error_rate,
    doa_accuracy,
    doa_error_rate,
    lateral_accuracy,
    lateral_angle_deg,
    lateral_error_deg,
    mean_angular_error,
    seld_metrics,
    yes_no_accuracy,
)

__all__ = [
    "BASELINES",
    "DOA_METHODS",
    "array_doa",
    "average_precision",
    "binaural_lateral_angle",
    "detection_map",
    "distance_accuracy",
    "distance_error_rate",
    "doa_accuracy",
    "doa_error_rate",
    "gcc_phat_itd_s",
    "lateral_accuracy",
    "lateral_angle_deg",
    "lateral_error_deg",
    "mean_angular_error",
    "seld_metrics",
    "woodworth_itd_s",
    "woodworth_lateral_deg",
    "yes_no_accuracy",
]
