"""Evaluate a pretrained encoder on a dataset beside the classical DoA baselines; JSON, Markdown, plots.

The encoder predicts classes (multi-label), and one direction and distance: those of the scene's primary
(loudest) source, as it was trained (BAT's protocol). Baselines run on the same audio: SRP-PHAT and MUSIC for
microphone arrays, GCC-PHAT + Woodworth (lateral angle, front/back ambiguous by construction) for heads. Every
localisation metric is reported overall and per reverberation band, and the lateral (front/back-folded) error is
reported for all methods so that a head's front/back confusions are visible rather than hidden. The encoder and
each baseline are also compared scene by scene (DoA within 20 degrees: exact McNemar test; lateral error:
Wilcoxon signed-rank test), overall and per band, and every method's prediction per scene is kept in
``predictions.csv`` for further analysis (every labelled source's own class vector in
``class_wise_predictions.csv``, :func:`write_class_wise_predictions`). Besides the lateral error, the front/back
confusion rate (:func:`front_back_confusion_rate`) and the elevation error are reported for every method, the
latter also against the best constant answer (:func:`elevation_against_constant`), and the encoder's
localisation per class of the primary source (:func:`localisation_by_class`: which sources carry the pinna
cues), every labelled source from its own class's direction vector by the number of sources in its scene
(:func:`class_wise_by_sources`) and by its direct sound's level against the scene's other sources
(:func:`class_wise_by_relative_level`: a masked source's vector drawn to the dominant one) and by its own
direct-to-reverberant ratio (:func:`class_wise_by_drr`), and every pair of sources on opposite sides of an axis
by whether their vectors keep the order E questions ask about (:func:`class_wise_pairs`), and, where the dataset
records the sources' spectral cues (heads), every metric also for the scenes whose primary source's sound
carries the head's front/back (above/below) colouring, at least ``qa.min_spectral_cue_db`` by default, and for
the others (:func:`by_spectral_cue`). Simulated scenes are also grouped by the primary source's
direct-to-reverberant ratio (:func:`direct_to_reverberant_db`): a head's front/back colouring fades where the
room's diffuse field, the same from every direction, dominates; and, where the dataset was rendered through
several heads (held-out CIPIC subjects), by head (:func:`by_head`).

Real recordings (:func:`evaluate_encoder_on_recordings`: a folder of audio files with a labels CSV, e.g.
from ``spatial-alm dataset from-sofa``) go through the same scoring, report and plots
(:func:`_evaluate`), without the detection metrics and the reverberation bands; the groups by spectral cue
where the labels CSV gives the cues (``from-sofa`` writes them).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from spatial_alm.acoustics.room import critical_distance_m
from spatial_alm.coordinates import cartesian_to_spherical, great_circle_deg, spherical_to_cartesian
from spatial_alm.data import DatasetReader, SpatialSceneDataset, read_index
from spatial_alm.data.recordings import LABELS_FILENAME, RecordingDataset, read_labelled_recordings
from spatial_alm.evaluation import metrics
from spatial_alm.evaluation.baselines import BASELINES
from spatial_alm.models.encoder import SpatialEncoderModel
from spatial_alm.models.targets import primary_source
from spatial_alm.qa.generator import REGIONS, RELATION_AXIS, SPECTRAL_CUE_FIELDS
from spatial_alm.qa.templates import RELATION_PHRASES, SIDE_OF_PHRASE
from spatial_alm.scenes import SceneRecipe
from spatial_alm.scenes.metadata import SceneMeta
from spatial_alm.scenes.recipe import QAConfig
from spatial_alm.scenes.render import ArrayReceiver, load_receiver

RT60_BANDS_S = ((0.0, 0.4), (0.4, 0.7), (0.7, float("inf")))  # dry, medium, reverberant
# (low, high, label) dB: the primary source beyond twice the critical distance, between it and twice it, within it
DRR_BANDS_DB = ((-float("inf"), -6.0, "< -6 dB"), (-6.0, 0.0, "-6 to 0 dB"), (0.0, float("inf"), ">= 0 dB"))
ARRAY_BASELINES = ("srp_phat", "music")
HEAD_BASELINES = ("gcc_phat_woodworth",)


def _collate(items: list[dict]) -> dict:
    return {"audio": torch.stack([it["audio"] for it in items]), "scenes": items}


def _direct_levels_db(scene: dict) -> np.ndarray | None:
    """(S,) each source's direct sound at the receiver (dB): its level in the mix minus 20 log10 of its distance
    (m), the free-field 1/r law; None when the scene gives no levels or distances (recordings)."""
    if scene.get("level_db") is None or scene.get("distance_m") is None:
        return None
    return np.asarray(scene["level_db"], dtype=np.float64) - 20.0 * np.log10(
        np.asarray(scene["distance_m"], dtype=np.float64))


def class_wise_sources(scenes: list[dict], class_directions: torch.Tensor, vocab: dict[str, int],
                       first_position: int = 0) -> list[dict]:
    """One row per source of ``scenes`` (:class:`SpatialSceneDataset` items) whose class is in ``vocab``, keyed by
    :data:`CLASS_WISE_COLUMNS`: the scene's position in the dataset (``first_position`` for the first of
    ``scenes``) and the source's index in it, the number of labelled sources in its scene, its true azimuth and
    elevation, the azimuth and elevation of its own class's direction vector, its direct sound's level relative
    to the loudest other labelled source's (dB, :func:`_direct_levels_db`) and that source's azimuth and
    elevation, angles in degrees; the last three NaN for a source heard alone or without levels.
    ``class_directions``: (S, K, 3), the class-wise heads' vectors. What a question naming the class reads: in a
    scene of several sources each needs its own class's direction."""
    class_az, class_el, _ = cartesian_to_spherical(class_directions.double())  # (S, K) each
    rows = []
    for position, (scene, pred_az, pred_el) in enumerate(zip(scenes, class_az.tolist(), class_el.tolist()),
                                                         start=first_position):
        labelled = [j for j, label in enumerate(scene["labels"]) if label]
        direct = _direct_levels_db(scene)
        for j in labelled:
            if scene["labels"][j] not in vocab:
                continue
            k = vocab[scene["labels"][j]]
            others = [m for m in labelled if m != j]
            relative, other_az, other_el = math.nan, math.nan, math.nan
            if others and direct is not None:
                m = max(others, key=lambda i: direct[i])
                relative = float(direct[j] - direct[m])
                other_az, other_el = float(scene["azimuth_deg"][m]), float(scene["elevation_deg"][m])
            rows.append(dict(zip(CLASS_WISE_COLUMNS, (
                position, j, len(labelled), float(scene["azimuth_deg"][j]), float(scene["elevation_deg"][j]),
                pred_az[k], pred_el[k], relative, other_az, other_el))))
    return rows


CLASS_WISE_COLUMNS = ("scene", "source", "num_sources", "true_azimuth_deg", "true_elevation_deg",
                      "class_azimuth_deg", "class_elevation_deg", "relative_level_db", "other_azimuth_deg",
                      "other_elevation_deg")


def _class_wise_columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """:func:`class_wise_sources` rows as one float64 array per column (:data:`CLASS_WISE_COLUMNS`)."""
    return {name: np.array([row[name] for row in rows], dtype=np.float64) for name in CLASS_WISE_COLUMNS}


def _percent(values) -> float:
    """100 x the mean of the finite ``values`` (booleans or 0/1, NaN where not scored); NaN without any."""
    scored = np.asarray(values, dtype=np.float64)
    scored = scored[np.isfinite(scored)]
    return 100.0 * float(scored.mean()) if scored.size else math.nan


def _class_wise_metrics(columns: dict[str, np.ndarray], sel: np.ndarray) -> dict:
    """``sources`` and :func:`localisation_metrics` of the selected class-wise rows."""
    return {"sources": int(sel.sum()), **localisation_metrics(
        columns["class_azimuth_deg"][sel], columns["class_elevation_deg"][sel], columns["true_azimuth_deg"][sel],
        columns["true_elevation_deg"][sel])}


def class_wise_by_sources(rows: list[dict]) -> dict | None:
    """:func:`localisation_metrics` of :func:`class_wise_sources` rows: ``all`` and per number of sources in the
    scene ("1 source", "2 sources", ...), each with its number of ``sources``; None without rows."""
    if not rows:
        return None
    columns = _class_wise_columns(rows)
    groups = {"all": np.ones(len(columns["num_sources"]), dtype=bool)}
    for n in sorted(set(columns["num_sources"].astype(int))):
        groups[f"{n} source{'s' if n > 1 else ''}"] = columns["num_sources"] == n
    return {name: _class_wise_metrics(columns, sel) for name, sel in groups.items()}


# (low, high, label) dB: a source's direct sound against the loudest other source's in its scene
RELATIVE_LEVEL_BANDS_DB = ((-math.inf, -10.0, "< -10 dB"), (-10.0, -4.0, "-10 to -4 dB"), (-4.0, 0.0, "-4 to 0 dB"),
                           (0.0, 4.0, "0 to 4 dB"), (4.0, 10.0, "4 to 10 dB"), (10.0, math.inf, ">= 10 dB"))
SEPARATION_DEG = 20.0  # lateral separation from the other source below which "nearer the other" is not scored


def class_wise_by_relative_level(rows: list[dict]) -> dict | None:
    """The sources of scenes with several (:func:`class_wise_sources` rows) by their direct sound's level relative
    to the loudest other source's (:data:`RELATIVE_LEVEL_BANDS_DB`): :func:`localisation_metrics`, ``sources``,
    and ``nearer_other_pct``, the percent of the ``separated`` sources (lateral angles at least
    :data:`SEPARATION_DEG` apart) whose class vector's lateral angle is nearer the other source's than their own:
    a masked source's vector pulled to the dominant one. None when no row has a relative level."""
    columns = _class_wise_columns(rows)
    several = np.isfinite(columns["relative_level_db"])  # NaN: a source heard alone, or no levels
    if not several.any():
        return None
    columns = {name: values[several] for name, values in columns.items()}
    relative = columns["relative_level_db"]
    own = metrics.lateral_angle_deg(columns["true_azimuth_deg"], columns["true_elevation_deg"])
    other = metrics.lateral_angle_deg(columns["other_azimuth_deg"], columns["other_elevation_deg"])
    predicted = metrics.lateral_angle_deg(columns["class_azimuth_deg"], columns["class_elevation_deg"])
    separated = np.abs(own - other) >= SEPARATION_DEG
    nearer_other = np.abs(predicted - other) < np.abs(predicted - own)
    groups = {}
    for low, high, label in RELATIVE_LEVEL_BANDS_DB:
        sel = (relative >= low) & (relative < high)
        if sel.any():
            scored = sel & separated
            groups[label] = {**_class_wise_metrics(columns, sel), "separated": int(scored.sum()),
                             "nearer_other_pct": _percent(nearer_other[scored])}
    return groups


def class_wise_by_drr(rows: list[dict], sources_drr_db: Sequence[Sequence[float]]) -> dict | None:
    """:func:`class_wise_sources` rows by each source's own direct-to-reverberant ratio (``sources_drr_db[scene]
    [source]`` in dB, :func:`sources_direct_to_reverberant_db`; bands :data:`DRR_BANDS_DB`): ``sources`` and
    :func:`localisation_metrics` per band, empty bands left out. A head's front/back and elevation colouring is
    the direct sound's: where the room's diffuse field dominates it fades for every source. None without rows."""
    if not rows:
        return None
    columns = _class_wise_columns(rows)
    drr = np.array([sources_drr_db[row["scene"]][row["source"]] for row in rows], dtype=np.float64)
    return {label: _class_wise_metrics(columns, sel) for low, high, label in DRR_BANDS_DB
            if (sel := (drr >= low) & (drr < high)).any()}


SIDE_RELATIONS = ("left", "front", "above")  # the E relations about a side (REGIONS' names; not "nearer")
# two vectors' components along an axis closer than this are tied (the class-wise heads' angles come from bins, so
# two classes often share an elevation; a predictions file's 0.01-degree angles tie them exactly)
TIED_COMPONENT = 1e-6


def class_wise_pairs(rows: list[dict], primary_directions: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> dict | None:
    """Every pair of labelled sources of one scene (:func:`class_wise_sources` rows) that lie on opposite sides of an
    axis, as the QA generator's E questions take them (its side margins, :data:`~spatial_alm.qa.generator.REGIONS`; not
    its spectral-cue rule), read from their class vectors, per axis (left_right, front_back, above_below): ``pairs``;
    ``order_right_pct``, the vectors' components along the axis in the true order (the class-wise heads' answer to every
    E question about the pair; a tie, :data:`TIED_COMPONENT`, counts 1/2); and how the two halves fall:
    ``both_right_pct``, ``swapped_pct`` (both wrong: the order wrong too), ``one_half_pct`` (both vectors on one side:
    the order then rests on the sizes of two components), ``order_right_in_one_half_pct`` and
    ``one_half_louder_side_pct``: of the pairs in one half whose direct levels differ, the percent in the true half of
    the source with the louder direct sound (``relative_level_db``): 50 when the shared half does not follow the louder
    source, 100 when the weaker one's vector is drawn to its side. ``half_right_pct``: each vector of these pairs in its
    own source's half; ``same_side_pairs`` and ``same_side_half_right_pct``: the same for the pairs whose sources lie on
    one side (NaN without any): a scene-wide half shared by the vectors raises the second and lowers the first. With
    ``primary_directions`` (the primary head's azimuth and elevation in degrees, (num_scenes,) each, indexed by the
    rows' ``scene``), ``primary_half_pct``: each vector of the opposite pairs in the primary head's half, 50 when each
    vector reads its own source (one agrees, one does not) or reads at random, 100 when every vector takes the scene's
    one reading (NaN without them). With independent per-source rates p an E answer is right with probability
    p^2 + (1 - p)^2 only when a pair in one half goes either way at even odds. None without opposite pairs."""
    opposite, same_side, primary_half = _side_pairs(rows, primary_directions)
    table = {}
    for axis, found in opposite.items():
        if found:
            order = np.array([row[0] for row in found])
            both, swapped, one_half = np.array([row[1:4] for row in found], dtype=bool).T
            louder_side = [row[4] for row in found]
            table[axis] = {"pairs": len(found), "order_right_pct": 100.0 * order.mean(),
                           "both_right_pct": 100.0 * both.mean(), "swapped_pct": 100.0 * swapped.mean(),
                           "one_half_pct": 100.0 * one_half.mean(),
                           "order_right_in_one_half_pct": _percent(order[one_half]),
                           "one_half_louder_side_pct": _percent(louder_side),
                           "half_right_pct": 100.0 * both.mean() + 50.0 * one_half.mean(),  # one half: one right
                           "same_side_pairs": len(same_side[axis]) // 2,
                           "same_side_half_right_pct": _percent(same_side[axis]),
                           "primary_half_pct": _percent(primary_half[axis])}
    return table or None


def class_wise_pair_orders(rows: list[dict]) -> dict[str, np.ndarray]:
    """Per axis with opposite pairs (as :func:`class_wise_pairs` finds them), one score per pair: 1 when its vectors'
    components lie in the true order, 0 when reversed, 1/2 when tied. The pairs follow the rows' scenes and sources and
    depend on the true directions only, so two encoders' reports on the same scenes give the same pairs in the same
    order (a paired test)."""
    opposite, _, _ = _side_pairs(rows)
    return {axis: np.array([row[0] for row in found]) for axis, found in opposite.items() if found}


def _side_pairs(rows: list[dict], primary_directions: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[dict, dict, dict]:
    """The pairs of :func:`class_wise_pairs`, per axis: ``opposite`` (order right: 1, 1/2 when tied, 0; both
    right, swapped, one half, louder side) per pair of sources on opposite sides; ``same_side`` (each vector in its
    source's half) and ``primary_half`` (each vector of an opposite pair in the primary head's half; empty without
    ``primary_directions``) per vector."""
    columns = _class_wise_columns(rows)
    vectors = spherical_to_cartesian(columns["class_azimuth_deg"], columns["class_elevation_deg"]).tolist()
    truths = [SimpleNamespace(azimuth_deg=row["true_azimuth_deg"], elevation_deg=row["true_elevation_deg"])
              for row in rows]
    # each source's direct level over its scene's loudest (dB; 0 for the loudest): a row's relative level is
    # against the loudest other source, so any two sources' levels compare through these
    level_over_loudest = np.minimum(columns["relative_level_db"], 0.0)
    primary = None if primary_directions is None else spherical_to_cartesian(*primary_directions).tolist()
    by_scene = defaultdict(list)
    for i, row in enumerate(rows):
        by_scene[row["scene"]].append(i)
    opposite = {RELATION_AXIS[name]: [] for name in SIDE_RELATIONS}
    same_side = {RELATION_AXIS[name]: [] for name in SIDE_RELATIONS}  # per vector: in its source's half
    primary_half = {RELATION_AXIS[name]: [] for name in SIDE_RELATIONS}  # per vector of opposite pairs
    for indices in by_scene.values():
        for a, b in combinations(indices, 2):
            for name in SIDE_RELATIONS:
                side_a, side_b = REGIONS[name](truths[a]), REGIONS[name](truths[b])  # on the positive side
                if side_a is None or side_b is None:
                    continue
                component, _ = SIDE_OF_PHRASE["E"][RELATION_PHRASES[name][0]]  # the listener-frame axis
                read_a, read_b = vectors[a][component] > 0, vectors[b][component] > 0
                axis = RELATION_AXIS[name]
                if side_a == side_b:
                    same_side[axis] += [read_a == side_a, read_b == side_b]
                    continue
                gap = vectors[a][component] - vectors[b][component]
                order_right = 0.5 if abs(gap) < TIED_COMPONENT else float((gap > 0) == side_a)
                louder_side = math.nan
                if read_a == read_b and np.isfinite(level_over_loudest[a] - level_over_loudest[b]) \
                        and level_over_loudest[a] != level_over_loudest[b]:
                    a_louder = level_over_loudest[a] > level_over_loudest[b]
                    louder_side = float(read_a == (side_a == a_louder))  # the shared half is the louder's true half
                opposite[axis].append((order_right, read_a == side_a and read_b == side_b,
                                       read_a != side_a and read_b != side_b, read_a == read_b, louder_side))
                if primary is not None:
                    primary_positive = primary[int(rows[a]["scene"])][component] > 0
                    primary_half[axis] += [read_a == primary_positive, read_b == primary_positive]
    return opposite, same_side, primary_half


@torch.no_grad()
def predict(model: SpatialEncoderModel, dataset, batch_size: int = 32, progress: bool = True) -> dict:
    """Encoder predictions and truths (numpy arrays, one row per scene; ``true_label``: the primary source's
    class, "" when unlabelled) over ``dataset``; ``class_wise``: :func:`class_wise_sources` rows (empty for a
    model without class-wise heads)."""
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=_collate)
    vocab = {name: k for k, name in enumerate(model.class_names)}
    out = {key: [] for key in ("scores", "targets", "pred_az", "pred_el", "pred_dist",
                               "true_az", "true_el", "true_dist", "true_label", "events")}
    class_wise, position = [], 0
    for batch in tqdm(loader, desc="encoder", unit="batch", disable=not progress):
        prediction = model.predict(batch["audio"].to(device))
        if prediction.class_directions is not None:
            class_wise += class_wise_sources(batch["scenes"], prediction.class_directions.cpu(), vocab, position)
        position += len(batch["scenes"])
        out["scores"].append(prediction.class_probs.cpu().numpy())
        out["pred_az"].append(prediction.azimuth_deg.cpu().numpy())
        out["pred_el"].append(prediction.elevation_deg.cpu().numpy())
        out["pred_dist"].append(prediction.distance_m.cpu().numpy())
        for scene in batch["scenes"]:
            k = primary_source(scene)
            hot = np.zeros(len(vocab))
            for label in scene["labels"]:
                if label in vocab:
                    hot[vocab[label]] = 1.0
            out["targets"].append(hot[None])
            out["true_az"].append([float(scene["azimuth_deg"][k])])
            out["true_el"].append([float(scene["elevation_deg"][k])])
            out["true_dist"].append([float(scene["distance_m"][k])])
            out["true_label"].append([str(scene["labels"][k])])
            out["events"].append([(lbl, float(a), float(e)) for lbl, a, e in
                                  zip(scene["labels"], scene["azimuth_deg"], scene["elevation_deg"]) if lbl])
    events = out.pop("events")
    arrays = {key: np.concatenate(value) for key, value in out.items()}
    arrays["events"], arrays["class_wise"] = events, class_wise
    return arrays


FRONT_BACK_MARGIN_DEG = 20.0  # sources closer than this to the frontal plane are not scored for front/back


def front_back_confusions(pred_az, pred_el, true_az, true_el, margin_deg: float = FRONT_BACK_MARGIN_DEG
                          ) -> np.ndarray:
    """(N,) per source: 1.0 where the prediction lies in the other front/back half than the truth, 0.0 where it
    lies in the same half, NaN where the true direction is less than ``margin_deg`` from the frontal plane
    (x = 0, the vertical plane through the interaural axis; in the horizontal plane: less than ``margin_deg``
    from the interaural axis), whose front/back half is not scored. A missing (NaN) prediction or one exactly
    on the frontal plane counts as confused."""
    p_az, p_el, t_az, t_el = (np.asarray(v, dtype=np.float64).ravel() for v in (pred_az, pred_el, true_az, true_el))
    if not p_az.shape == p_el.shape == t_az.shape == t_el.shape:
        raise ValueError(f"pred and true directions must hold the same number of values, got {p_az.size}, "
                         f"{p_el.size}, {t_az.size}, {t_el.size}")
    true_x = np.cos(np.radians(t_el)) * np.cos(np.radians(t_az))  # front component of the unit vector
    pred_x = np.cos(np.radians(p_el)) * np.cos(np.radians(p_az))
    confused = ~(np.sign(pred_x) == np.sign(true_x))  # NaN compares False: confused
    return np.where(np.abs(true_x) >= np.sin(np.radians(margin_deg)), confused.astype(np.float64), np.nan)


def front_back_confusion_rate(pred_az, pred_el, true_az, true_el, margin_deg: float = FRONT_BACK_MARGIN_DEG
                              ) -> float:
    """Percent of the sources at least ``margin_deg`` from the frontal plane whose predicted front/back half is
    wrong (:func:`front_back_confusions`); NaN when no source is that far from it."""
    scored = front_back_confusions(pred_az, pred_el, true_az, true_el, margin_deg)
    scored = scored[~np.isnan(scored)]
    return 100.0 * float(scored.mean()) if scored.size else float("nan")


def elevation_error_deg(pred_el, true_el) -> float:
    """Mean absolute elevation error in degrees over the non-missing predictions (NaN when none)."""
    errors = np.abs(np.asarray(pred_el, dtype=np.float64) - np.asarray(true_el, dtype=np.float64))
    errors = errors[~np.isnan(errors)]
    return float(errors.mean()) if errors.size else float("nan")


def elevation_against_constant(pred_el: dict[str, np.ndarray], true_el) -> dict | None:
    """Each method's elevation errors against the best constant answer: the truths' median elevation (deg),
    the constant with the smallest mean absolute error on these sources (an oracle, so a conservative
    reference). ``pred_el``: method -> (N,) predicted elevations (deg). Returns ``constant_deg``,
    ``constant_error_deg`` and per method ``paired``, the Wilcoxon signed-rank test of its absolute errors
    against the constant's, source by source (negative mean difference: the method errs less); a method
    reads elevation only where it beats that constant. None when every truth has the same elevation."""
    true_el = np.asarray(true_el, dtype=np.float64)
    if true_el.size == 0 or np.ptp(true_el) == 0:
        return None
    constant = float(np.median(true_el))
    constant_errors = np.abs(true_el - constant)
    return {"constant_deg": constant, "constant_error_deg": float(constant_errors.mean()),
            "paired": {name: metrics.wilcoxon_paired(np.abs(np.asarray(el, dtype=np.float64) - true_el),
                                                     constant_errors) for name, el in pred_el.items()}}


def localisation_metrics(pred_az, pred_el, true_az, true_el) -> dict:
    """DoA accuracy at 20 degrees, mean angular error, mean lateral (front/back-folded) error, lateral
    accuracy at 20 degrees, mean absolute elevation error and the front/back confusion rate (%)."""
    return {
        "doa_accuracy_20deg": metrics.doa_accuracy(pred_az, pred_el, true_az, true_el),
        "mean_angular_error_deg": metrics.mean_angular_error(pred_az, pred_el, true_az, true_el),
        "lateral_error_deg": metrics.lateral_error_deg(pred_az, pred_el, true_az, true_el),
        "lateral_accuracy_20deg": metrics.lateral_accuracy(pred_az, pred_el, true_az, true_el),
        "elevation_error_deg": elevation_error_deg(pred_el, true_el),
        "front_back_confusion_rate": front_back_confusion_rate(pred_az, pred_el, true_az, true_el),
    }


def localisation_by_class(pred_az, pred_el, true_az, true_el, labels) -> dict:
    """:func:`localisation_metrics` of the sources of each class (sorted by name; unlabelled "" left out),
    each with its number of ``sources``. A head hears front/back and elevation through the colouring of
    its pinnae, at 2-8 kHz and above: per class, the report shows which sources carry those cues."""
    p_az, p_el, t_az, t_el = (np.asarray(v, dtype=np.float64) for v in (pred_az, pred_el, true_az, true_el))
    labels = np.asarray(labels, dtype=str)
    out = {}
    for label in sorted(set(labels.tolist()) - {""}):
        sel = labels == label
        out[label] = {"sources": int(sel.sum()), **localisation_metrics(p_az[sel], p_el[sel], t_az[sel], t_el[sel])}
    return out


def _by_bands(values: np.ndarray, bands, name: str, fn) -> dict:
    """``{"NAME LABEL (n scenes)": fn(mask)}`` for the scenes whose ``values`` (N,) lie in each band of ``bands``
    ((low, high, label): low <= value < high), empty bands left out."""
    out = {}
    for lo, hi, label in bands:
        sel = (values >= lo) & (values < hi)
        if sel.any():
            out[f"{name} {label} ({int(sel.sum())} scenes)"] = fn(sel)
    return out


def _by_band(rt60: np.ndarray, fn) -> dict:
    return _by_bands(rt60, [(lo, hi, f"{lo:g}-{hi:g} s") for lo, hi in RT60_BANDS_S], "rt60", fn)


def by_head(receivers: Sequence[str], fn) -> dict:
    """``{"head NAME (n scenes)": fn(mask)}`` for every receiver of a dataset rendered through several heads
    (``SceneMeta.receiver`` per scene, e.g. held-out CIPIC subjects), sorted by name; {} with one receiver."""
    values = np.array(receivers)
    names = sorted(set(receivers))
    if len(names) < 2:
        return {}
    return {f"head {name} ({int((values == name).sum())} scenes)": fn(values == name) for name in names}


def _primary_index(meta: SceneMeta) -> int:
    """Index of the scene's primary (loudest) source in ``meta.sources``."""
    return primary_source({"level_db": [s.level_db for s in meta.sources]})


def _primary(meta: SceneMeta):
    """The scene's primary (loudest) source's metadata."""
    return meta.sources[_primary_index(meta)]


def sources_direct_to_reverberant_db(meta: SceneMeta) -> list[float]:
    """Every source's direct-to-reverberant ratio in dB, 20 log10(critical distance / its distance), from the room's
    size and RT60 (:func:`~spatial_alm.acoustics.room.critical_distance_m`), in the scene's source order."""
    critical = critical_distance_m(meta.room_dim_m, meta.rt60_s)
    return [20.0 * math.log10(critical / source.distance_m) for source in meta.sources]


def direct_to_reverberant_db(meta: SceneMeta) -> float:
    """The primary source's direct-to-reverberant ratio in dB (:func:`sources_direct_to_reverberant_db`; NaN
    without sources)."""
    if not meta.sources:
        return math.nan
    return sources_direct_to_reverberant_db(meta)[_primary_index(meta)]


def _by_drr(drr_db: np.ndarray, fn) -> dict:
    return _by_bands(drr_db, DRR_BANDS_DB, "direct-to-reverberant", fn)


def primary_cues_db(meta: SceneMeta) -> tuple[float, float]:
    """The primary (loudest) source's recorded front/back and above/below spectral cues in dB (NaN: none)."""
    if not meta.sources:
        return math.nan, math.nan
    source = _primary(meta)
    cues = (getattr(source, field) for field in SPECTRAL_CUE_FIELDS.values())  # front/back, above/below
    return tuple(math.nan if cue is None else cue for cue in cues)


def by_spectral_cue(cues: np.ndarray, fn, min_cue_db: float = QAConfig.min_spectral_cue_db,
                     unit: str = "scenes") -> dict:
    """Groups of scenes (or recordings: ``unit``) by whether the primary source's cue (``cues`` (N, 2):
    front/back, above/below, dB; NaN where not recorded) reaches ``min_cue_db``: ``{label: fn(mask)}``, empty
    groups left out."""
    out = {}
    for column, axis in enumerate(("front/back", "above/below")):
        recorded = np.isfinite(cues[:, column])
        for name, sel in ((">=", recorded & (cues[:, column] >= min_cue_db)),
                          ("<", recorded & (cues[:, column] < min_cue_db))):
            if sel.any():
                out[f"{axis} cue {name} {min_cue_db:g} dB ({int(sel.sum())} {unit})"] = fn(sel)
    return out


def run_baselines(dataset, receiver, names, fs_hz: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Predicted (azimuth, elevation) (N, 2) per baseline name for every scene of ``dataset``."""
    out = {}
    for name in names:
        preds = []
        for i in tqdm(range(len(dataset)), desc=name, unit="scene", disable=not progress):
            item = dataset[i]
            try:
                preds.append(BASELINES[name](item["audio"].numpy(), receiver, fs_hz))
            except ValueError as err:
                raise ValueError(f"baseline {name} on {item.get('file', f'scene {i}')}: {err}") from None
        out[name] = np.asarray(preds, dtype=np.float64)
    return out


def evaluate_encoder(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *,
                     baselines: list[str] | None = None, compare: dict[str, str | Path] | None = None,
                     max_scenes: int | None = None, batch_size: int = 32, progress: bool = True) -> dict:
    """Score the encoder saved in ``model_dir`` on the dataset ``data_dir``; write the report to ``out_dir``.

    ``baselines``: names from ``BASELINES`` (default: SRP-PHAT and MUSIC for arrays, GCC-PHAT +
    Woodworth for heads; [] for none). ``compare``: other encoders (row name -> model folder) scored on
    the same audio as further rows, each with the paired tests against this encoder (e.g. one trained on
    other heads). ``max_scenes``: evaluate the first N scenes only.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = SpatialEncoderModel.from_pretrained(model_dir)
    index = read_index(data_dir)
    if index.num_channels != model.num_channels:
        raise ValueError(f"dataset {data_dir} has {index.num_channels} channels but the encoder in {model_dir} "
                         f"expects {model.num_channels}")
    if index.fs_hz != model.features.config.fs_hz:
        raise ValueError(f"dataset {data_dir} is at {index.fs_hz} Hz but the encoder expects "
                         f"{model.features.config.fs_hz} Hz")
    dataset = SpatialSceneDataset(data_dir)
    if max_scenes is not None:
        dataset = Subset(dataset, range(min(max_scenes, len(dataset))))
    receiver = load_receiver(SceneRecipe.from_dict(index.recipe).receiver)
    is_array = isinstance(receiver, ArrayReceiver)
    names = list(baselines) if baselines is not None else list(ARRAY_BASELINES if is_array else HEAD_BASELINES)
    receiver_arg = receiver.array if is_array else getattr(receiver, "head", None)  # None: per-scene heads

    reader = DatasetReader(data_dir)
    metas = [reader.meta(i) for i in range(len(dataset))]
    rt60 = np.array([meta.rt60_s for meta in metas])
    cues = np.array([primary_cues_db(meta) for meta in metas], dtype=np.float64).reshape(-1, 2)
    drr = np.array([direct_to_reverberant_db(meta) for meta in metas], dtype=np.float64)
    sources_drr = [sources_direct_to_reverberant_db(meta) for meta in metas]
    receivers = [meta.receiver for meta in metas]
    header = {"model_dir": str(model_dir), "data_dir": str(data_dir), "num_scenes": len(dataset),
              "receiver": index.receiver}
    return _evaluate(model, dataset, out_dir, names=names, receiver=receiver_arg, fs_hz=index.fs_hz,
                     others=_load_others(compare, model, longest=index.num_samples),
                     by_group=lambda fn: {**_by_band(rt60, fn), **_by_drr(drr, fn), **by_spectral_cue(cues, fn),
                                          **by_head(receivers, fn)},
                     header=header,
                     detection=True,
                     columns={"scene": list(range(len(rt60))), "receiver": receivers,
                              "rt60_s": [f"{v:.3f}" for v in rt60],
                              "direct_to_reverberant_db": [f"{v:.1f}" for v in drr]},
                     sources_drr_db=sources_drr, batch_size=batch_size, progress=progress, started=started)


def recordings_summary(recordings_dir: str | Path, labels_csv: str | Path | None, recordings: list,
                       fs_hz: int, window: int) -> dict:
    """What a report on labelled ``recordings`` (:class:`~spatial_alm.data.recordings.Recording` s) says about
    them: folder, labels CSV, count, the files' rates, and the window of ``window`` samples at ``fs_hz`` each file
    is cut to (:class:`~spatial_alm.data.recordings.RecordingDataset`), with how many files were longer (cropped
    to their centre) and shorter (zero-padded on both sides), and how many distinct labelled directions they
    hold (``directions``: all, and those at least ``FRONT_BACK_MARGIN_DEG`` from the frontal plane, which the
    front/back rate scores). A set built as clips x directions measures front/back on those directions, not on
    its files: a model's answer at one direction is much the same for every clip. Shared by the encoder and
    the audio-LLM reports."""
    directions = {(round(r.azimuth_deg, 2), round(r.elevation_deg, 2)) for r in recordings}
    az, el = (np.array([d[k] for d in directions], dtype=np.float64) for k in (0, 1))
    scored = ~np.isnan(front_back_confusions(az, el, az, el))  # the front/back rate's own margin rule
    return {
        "recordings_dir": str(recordings_dir),
        "labels_csv": str(labels_csv if labels_csv is not None else Path(recordings_dir) / LABELS_FILENAME),
        "num_recordings": len(recordings),
        "file_rates_hz": sorted({r.fs_hz for r in recordings}),
        "window": {"samples": window, "seconds": window / fs_hz, "fs_hz": fs_hz,
                   "rule": "each file resampled to the encoder's rate, then its centre window (longer files) or "
                           "zero-padded on both sides (shorter files)",
                   "longer_files": sum(r.num_frames * fs_hz / r.fs_hz > window for r in recordings),
                   "shorter_files": sum(r.num_frames * fs_hz / r.fs_hz < window for r in recordings)},
        "directions": {"distinct": len(directions), "front_back_scored": int(scored.sum())},
    }


def directions_sentence(directions: dict) -> str:
    """The reports' sentence on the ``directions`` of :func:`recordings_summary`."""
    return (f"The files hold {directions['distinct']} distinct directions, {directions['front_back_scored']} of them "
            f"at least {FRONT_BACK_MARGIN_DEG:g} deg from the frontal plane: front/back is measured on those "
            "directions (a model answers one direction much alike for every clip).")


def evaluate_encoder_on_recordings(model_dir: str | Path, recordings_dir: str | Path, out_dir: str | Path, *,
                                   labels_csv: str | Path | None = None, baselines: list[str] | None = None,
                                   compare: dict[str, str | Path] | None = None, array: str | None = None,
                                   window_s: float | None = None, max_files: int | None = None,
                                   batch_size: int = 32, progress: bool = True) -> dict:
    """Score the encoder in ``model_dir`` on a folder of labelled real recordings; write the report to ``out_dir``.

    ``recordings_dir`` and ``labels_csv`` (default ``recordings_dir/labels.csv``): see
    :func:`spatial_alm.data.recordings.read_labelled_recordings`. Each file is resampled to the
    encoder's rate and cut to its centre window of ``window_s`` seconds (default: the encoder's longest
    input, ``SpatialEncoderModel.window_samples``) or zero-padded on both sides to it; the baselines see the
    same window. Metrics, report and plots are those of :func:`evaluate_encoder`, without the
    detection metrics (mAP, SELD: a recording has one labelled source and no absent-class targets) and
    with the distance error rate over the files whose distance is labelled; the groups by spectral cue over
    the files whose cues are labelled (each file's source is its primary one). ``baselines``: default
    GCC-PHAT + Woodworth for 2 channels (channel 0 = left ear; head radius 8.75 cm), SRP-PHAT and MUSIC
    when ``array`` names the microphone array (``spatial_alm.acoustics.arrays.make_array``), none
    otherwise. ``compare``: as in :func:`evaluate_encoder` (each must take the window). ``max_files``:
    the first N rows of the CSV only.
    """
    started = time.perf_counter()
    model = SpatialEncoderModel.from_pretrained(model_dir)
    recordings = read_labelled_recordings(recordings_dir, labels_csv)
    if max_files is not None:
        recordings = recordings[:max_files]
    fs_hz = model.features.config.fs_hz
    longest = model.window_samples
    if window_s is None:
        window = longest
    else:
        window = round(window_s * fs_hz) if isinstance(window_s, (int, float)) and window_s > 0 else 0
        if not 1 <= window <= longest:
            raise ValueError(f"window_s = {window_s!r}; allowed: (0, {longest / fs_hz:g}] seconds (the encoder's "
                             f"max_frames {model.encoder.config.max_frames} at hop {model.features.config.hop_length})")
    dataset = RecordingDataset(recordings, fs_hz, window, model.num_channels)
    if model.num_channels == 2 and array is None:
        defaults, receiver = HEAD_BASELINES, None
    else:
        defaults, receiver = (ARRAY_BASELINES if array is not None else ()), array
    names = list(baselines) if baselines is not None else list(defaults)
    needs_array = [name for name in names if name not in HEAD_BASELINES]
    if needs_array and array is None:
        raise ValueError(f"baselines {needs_array} need a microphone array: give array (--array NAME)")
    header = {
        "model_dir": str(model_dir), **recordings_summary(recordings_dir, labels_csv, recordings, fs_hz, window),
        "receiver": f"array {array}" if array is not None else f"{model.num_channels}-channel recordings",
        "detection": "skipped: recordings carry one labelled source each, no detection targets (mAP, SELD)",
    }
    columns = {"file": [r.file for r in recordings], "label": [r.label for r in recordings]}
    cues = np.array([[r.front_back_cue_db, r.above_below_cue_db] for r in recordings], dtype=np.float64)
    return _evaluate(model, dataset, out_dir, names=names, receiver=receiver, fs_hz=fs_hz,
                     others=_load_others(compare, model, longest=window),
                     by_group=lambda fn: by_spectral_cue(cues, fn, unit="recordings"),
                     header=header, detection=False, columns=columns, batch_size=batch_size, progress=progress,
                     started=started)


def _load_others(compare: dict[str, str | Path] | None, model: SpatialEncoderModel,
                 longest: int) -> dict[str, SpatialEncoderModel]:
    """The ``compare`` encoders (name -> folder), loaded and checked against ``model``: same channels and
    rate, a name that is not a method already, and an input window of ``longest`` samples they take."""
    others = {}
    for name, folder in (compare or {}).items():
        if name in ("encoder", "chance") or name in BASELINES:
            raise ValueError(f"compare name {name!r} is taken; allowed: a name other than encoder, chance and "
                             f"the baselines ({', '.join(sorted(BASELINES))})")
        other = SpatialEncoderModel.from_pretrained(folder)
        if (other.num_channels, other.features.config.fs_hz) != (model.num_channels, model.features.config.fs_hz):
            raise ValueError(f"compare {name}={folder}: {other.num_channels} channels at {other.features.config.fs_hz}"
                             f" Hz; allowed: the evaluated encoder's {model.num_channels} channels at "
                             f"{model.features.config.fs_hz} Hz")
        if other.window_samples < longest:
            raise ValueError(f"compare {name}={folder}: takes at most {other.window_samples} samples; "
                             f"allowed: an encoder that takes the {longest}-sample window")
        others[name] = other
    return others


def _evaluate(model: SpatialEncoderModel, dataset, out_dir: str | Path, *, names: list[str], receiver,
              fs_hz: int, others: dict[str, SpatialEncoderModel], by_group, header: dict, detection: bool,
              columns: dict, batch_size: int, progress: bool, started: float,
              sources_drr_db: Sequence[Sequence[float]] | None = None) -> dict:
    """What scenes and recordings share: encoder predictions, baselines and ``others`` (encoders compared
    with it) on the same audio, localisation
    metrics overall and per group (``by_group(fn)`` -> {label: fn(mask)}), paired tests, chance row; writes
    report.json, report.md, predictions.csv (``columns`` first), :data:`CLASS_WISE_PREDICTIONS` (an encoder with
    class-wise heads on labelled sources) and the plots to ``out_dir``. ``sources_drr_db`` (simulated scenes:
    every source's direct-to-reverberant ratio) adds the class-wise table by it (:func:`class_wise_by_drr`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pred = predict(model, dataset, batch_size, progress)
    truth = (pred["true_az"], pred["true_el"])
    rows = {"encoder": (pred["pred_az"], pred["pred_el"])}
    for name, values in run_baselines(dataset, receiver, names, fs_hz, progress).items():
        rows[name] = (values[:, 0], values[:, 1])
    for name, other in others.items():
        other_pred = predict(other, dataset, batch_size, progress)
        rows[name] = (other_pred["pred_az"], other_pred["pred_el"])

    localisation = {}
    for name, (az, el) in rows.items():
        def band(sel, az=az, el=el):
            return localisation_metrics(az[sel], el[sel], truth[0][sel], truth[1][sel])

        localisation[name] = {"all": localisation_metrics(az, el, *truth), **by_group(band)}
    correct = {name: metrics.doa_correct(az, el, *truth) for name, (az, el) in rows.items()}
    lateral = {name: metrics.lateral_errors_deg(az, el, *truth) for name, (az, el) in rows.items()}
    everything = np.ones(len(truth[0]), dtype=bool)
    paired, paired_lateral = {}, {}
    for name in [*names, *others]:
        def versus(sel, baseline=correct[name]):
            return metrics.mcnemar_exact(correct["encoder"][sel], baseline[sel])

        def versus_lateral(sel, baseline=lateral[name]):
            return metrics.wilcoxon_paired(lateral["encoder"][sel], baseline[sel])

        paired[name] = {"all": versus(everything), **by_group(versus)}
        paired_lateral[name] = {"all": versus_lateral(everything), **by_group(versus_lateral)}
    report = dict(header)
    if detection:
        report.update({
            "detection_map": metrics.detection_map(pred["scores"], pred["targets"], classes="present"),
            "detection_map_all_classes": metrics.detection_map(pred["scores"], pred["targets"], classes="all")})
    labelled = np.isfinite(pred["true_dist"])
    report["distance_error_rate"] = (metrics.distance_error_rate(pred["pred_dist"][labelled],
                                                                 pred["true_dist"][labelled])
                                     if labelled.any() else None)
    if not detection:
        report["distance_labelled"] = int(labelled.sum())
    if detection:
        # macro over the model's classes (and any other reference label), as DCASE over its class list
        report["seld"] = metrics.seld_metrics(_predicted_events(pred, model.class_names), pred["events"], classes=list(
            dict.fromkeys([*model.class_names, *(e[0] for scene in pred["events"] for e in scene)])))
    report.update({
        "localisation": localisation,
        "encoder_localisation_by_class": localisation_by_class(*rows["encoder"], *truth, pred["true_label"]),
        "class_wise_by_sources": class_wise_by_sources(pred["class_wise"]),
        "class_wise_by_relative_level": class_wise_by_relative_level(pred["class_wise"]),
        "class_wise_by_drr": (class_wise_by_drr(pred["class_wise"], sources_drr_db) if sources_drr_db is not None
                              else None),
        "class_wise_pairs": class_wise_pairs(pred["class_wise"], rows["encoder"]),
        "paired_doa_20deg": paired,
        "paired_lateral_error": paired_lateral,
        "elevation_against_constant": elevation_against_constant({name: el for name, (_, el) in rows.items()},
                                                                 truth[1]),
        "chance": _chance_row(pred, seed=0, detection=detection),
        "wall_time_s": time.perf_counter() - started,
    })
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_report(report))
    write_predictions(out_dir / "predictions.csv", pred, rows, columns)
    if pred["class_wise"]:
        write_class_wise_predictions(out_dir / CLASS_WISE_PREDICTIONS, pred["class_wise"])
    else:
        (out_dir / CLASS_WISE_PREDICTIONS).unlink(missing_ok=True)  # no stale file from an earlier run
    plot_localisation(rows, truth, out_dir)
    return report


def write_predictions(path: Path, pred: dict, rows: dict, columns: dict) -> None:
    """One CSV row per scene or recording (dataset order): the ``columns`` given (e.g. scene, receiver and RT60 (s), or
    file and label), the number of sources, the primary source's true azimuth / elevation (deg) and distance
    (m; empty when unknown), the encoder's distance, and each method's azimuth and elevation (deg)."""
    header = [*columns, "num_sources", "true_azimuth_deg", "true_elevation_deg", "true_distance_m",
              "encoder_distance_m"] + [f"{name}_{key}_deg" for name in rows for key in ("azimuth", "elevation")]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(len(pred["true_az"])):
            true_dist = "" if np.isnan(pred["true_dist"][i]) else f"{pred['true_dist'][i]:.2f}"
            writer.writerow([values[i] for values in columns.values()]
                            + [len(pred["events"][i]), f"{pred['true_az'][i]:.2f}", f"{pred['true_el'][i]:.2f}",
                               true_dist, f"{pred['pred_dist'][i]:.2f}"]
                            + [f"{values[i]:.2f}" for az, el in rows.values() for values in (az, el)])


def read_predictions(report_dir: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ``predictions.csv`` of an evaluate-encoder report folder (:func:`write_predictions`): the primary
    sources' true (N, 2) azimuth and elevation (deg) and, per method in column order, its (N, 2) prediction.
    FileNotFoundError, naming the command that writes it, when the folder has none."""
    path = Path(report_dir) / "predictions.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `spatial-alm evaluate-encoder ... --out {report_dir}` first")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    methods = [key.removesuffix("_azimuth_deg") for key in (rows[0] if rows else {})
               if key.endswith("_azimuth_deg") and key != "true_azimuth_deg"]

    def directions(prefix: str) -> np.ndarray:
        return np.array([[float(row[f"{prefix}_{angle}_deg"]) for angle in ("azimuth", "elevation")]
                         for row in rows], dtype=np.float64).reshape(-1, 2)

    return directions("true"), {name: directions(name) for name in methods}


CLASS_WISE_PREDICTIONS = "class_wise_predictions.csv"


def write_class_wise_predictions(path: Path, rows: list[dict]) -> None:
    """:func:`class_wise_sources` rows as a CSV (header :data:`CLASS_WISE_COLUMNS`; angles and levels to 0.01,
    empty where NaN): every labelled source beside its own class's direction vector."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CLASS_WISE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({name: value if isinstance(value, int) else "" if math.isnan(value) else f"{value:.2f}"
                             for name, value in row.items()})


def read_class_wise_predictions(report_dir: str | Path) -> dict[str, np.ndarray]:
    """The :data:`CLASS_WISE_PREDICTIONS` file of an evaluate-encoder report folder as one float64 array per
    column of :data:`CLASS_WISE_COLUMNS` (NaN where empty). FileNotFoundError, naming the command that writes it,
    when the folder has none."""
    path = Path(report_dir) / CLASS_WISE_PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: `spatial-alm evaluate-encoder ... --out {report_dir}` writes it "
                                "for an encoder with class-wise heads on labelled scenes")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {name: np.array([float(row[name]) if row[name] else math.nan for row in rows], dtype=np.float64)
            for name in CLASS_WISE_COLUMNS}


def _predicted_events(pred: dict, class_names: list[str]) -> list[list[tuple]]:
    """Clip-level SELD events: the most probable class at the encoder's single predicted direction."""
    top = pred["scores"].argmax(1)
    return [[(class_names[k], float(a), float(e))] for k, a, e in zip(top, pred["pred_az"], pred["pred_el"])]


def _chance_row(pred: dict, seed: int, detection: bool = True) -> dict:
    """Random answers: uniform directions on the sphere (elevation within the data's range), uniform distances
    within the labelled range, random scores (``detection`` only). When the labelled distances span less
    than one distance class (a measured HRIR set at one radius) a guess within their range would be right
    by construction: the chance distance is then None."""
    rng = np.random.default_rng(seed)
    n = len(pred["true_az"])
    el_lo, el_hi = float(pred["true_el"].min()), float(pred["true_el"].max())
    az = rng.uniform(-180, 180, n)
    el = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(el_lo)), np.sin(np.radians(el_hi)), n)))
    out = {}
    labelled = np.isfinite(pred["true_dist"])
    true_span = np.ptp(pred["true_dist"][labelled]) if labelled.any() else 0.0
    if true_span >= metrics.DISTANCE_TOLERANCE_M:
        true_dist = pred["true_dist"][labelled]
        dist = rng.uniform(float(true_dist.min()), float(true_dist.max()), n)[labelled]
        out["distance_error_rate"] = metrics.distance_error_rate(dist, true_dist)
    else:
        out["distance_error_rate"] = None
    if detection:
        random_scores = rng.random(pred["scores"].shape)
        out["detection_map"] = metrics.detection_map(random_scores, pred["targets"], classes="present")
        out["detection_map_all_classes"] = metrics.detection_map(random_scores, pred["targets"], classes="all")
    return {**out, **localisation_metrics(az, el, pred["true_az"], pred["true_el"])}


def _fmt(value, spec: str = ".1f") -> str:
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)


LOCALISATION_ROWS = (("doa_accuracy_20deg", "DoA accuracy at 20 deg (%)"),
                     ("mean_angular_error_deg", "mean angular error (deg)"),
                     ("lateral_error_deg", "lateral (front/back-folded) error (deg)"),
                     ("lateral_accuracy_20deg", "lateral accuracy at 20 deg (%)"),
                     ("elevation_error_deg", "elevation error (deg)"),
                     ("front_back_confusion_rate", "front/back confusion rate (%)"))


def _counted_localisation_table(groups: dict, first: str, count: str) -> list[str]:
    """Markdown rows of :data:`LOCALISATION_ROWS` per group (column ``first``), each with its ``sources``
    (column ``count``)."""
    lines = [f"| {first} | {count} | DoA acc@20 (%) | mean angular error (deg) | lateral error (deg) "
             "| lateral acc@20 (%) | elevation error (deg) | front/back confusion (%) |",
             "|---|---|---|---|---|---|---|---|"]
    for group, values in groups.items():
        lines.append(f"| {group} | {values['sources']} | "
                     + " | ".join(_fmt(values.get(key)) for key, _ in LOCALISATION_ROWS) + " |")
    return lines


def markdown_report(report: dict) -> str:
    """The report as Markdown: headline metrics, then localisation per method (and reverberation band for
    scenes), then the paired tests. Reports of scenes (``data_dir``) and of recordings (``recordings_dir``)."""
    recordings = "recordings_dir" in report
    unit = "recording" if recordings else "scene"
    if recordings:
        window = report["window"]
        source = [f"Recordings `{report['recordings_dir']}` (labels `{report['labels_csv']}`), "
                  f"{report['num_recordings']} files at {', '.join(map(str, report['file_rates_hz']))} Hz, "
                  f"receiver `{report['receiver']}`. Each file is resampled to {window['fs_hz']} Hz and the encoder "
                  f"and the baselines see its centre {window['seconds']:.2f} s ({window['samples']} samples; the "
                  f"encoder's longest input unless --window-s): {window['longer_files']} longer files cropped, "
                  f"{window['shorter_files']} shorter ones zero-padded on both sides. "
                  f"{directions_sentence(report['directions'])}", "",
                  "Detection metrics (mAP, SELD) are skipped for recordings: each file has one labelled source "
                  "and no absent-class targets."]
    else:
        source = [f"Dataset `{report['data_dir']}`, {report['num_scenes']} scenes, receiver `{report['receiver']}`."]
    lines = [f"# Encoder evaluation: {report['model_dir']}", "", *source, "",
             "| metric | encoder | chance |", "|---|---|---|"]
    if "detection_map" in report:
        lines += [f"| detection mAP, classes with a positive (%) | {report['detection_map']:.1f} | "
                  f"{report['chance']['detection_map']:.1f} |",
                  f"| detection mAP, all classes, none = AP 0 as BAT (%) | {report['detection_map_all_classes']:.1f} | "
                  f"{report['chance']['detection_map_all_classes']:.1f} |"]
    if report["distance_error_rate"] is None:
        lines.append("| distance error rate, 0.5 m (%) | not labelled | — |")
    else:
        labelled = f", {report['distance_labelled']} labelled files" if "distance_labelled" in report else ""
        lines.append(f"| distance error rate, 0.5 m{labelled} (%) | {report['distance_error_rate']:.1f} | "
                     f"{_fmt(report['chance']['distance_error_rate'])} |")
    enc = report["localisation"]["encoder"]["all"]
    for key, label in LOCALISATION_ROWS:
        lines.append(f"| {label} | {_fmt(enc.get(key))} | {_fmt(report['chance'].get(key))} |")
    lines += ["", f"Front/back confusion: the share of sources at least {FRONT_BACK_MARGIN_DEG:g} deg from the frontal "
                  "plane (in the horizontal plane: from the interaural axis) predicted in the wrong front/back half. "
                  "GCC-PHAT + Woodworth always answers in the front half."]
    if report["distance_error_rate"] is not None and report["chance"]["distance_error_rate"] is None:
        lines += ["", "Chance distance: none, the labelled distances lie within one 0.5 m class (a guess within "
                      "their range would be right by construction)."]
    if "seld" in report:
        seld = report["seld"]
        lines += ["", f"DCASE SELD (clip-level, one predicted event per scene; DCASE 2022-2023 counting): "
                      f"ER20 {seld['ER20']:.2f}; macro (per class, then the mean over {len(seld['classes'])} classes: "
                      "the model's and any other reference label, the DCASE default; a class without pairs at LE_CD "
                      "180): "
                      f"F20 {100 * seld['F20_macro']:.1f} %, LE_CD {seld['LE_CD_macro']:.1f} deg, "
                      f"LR_CD {100 * seld['LR_CD_macro']:.1f} %, SELD {seld['SELD_macro']:.3f}; micro (all events "
                      f"pooled): F20 {100 * seld['F20_micro']:.1f} %, LE_CD {seld['LE_CD_micro']:.1f} deg, "
                      f"LR_CD {100 * seld['LR_CD_micro']:.1f} %, SELD {seld['SELD_micro']:.3f}."]
    lines += ["", "## Localisation by method" if recordings else
              "## Localisation of the primary source, by method and reverberation", "",
              f"| method | {unit}s | DoA acc@20 (%) | mean angular error (deg) | lateral error (deg) "
              "| lateral acc@20 (%) | elevation error (deg) | front/back confusion (%) |",
              "|---|---|---|---|---|---|---|---|"]
    for name, bands in report["localisation"].items():
        for band, values in bands.items():
            lines.append(f"| {name} | {band} | " + " | ".join(_fmt(values.get(key)) for key, _ in LOCALISATION_ROWS)
                         + " |")
    by_class = report.get("encoder_localisation_by_class")
    if by_class:
        lines += ["", "## Encoder localisation of the primary source, by its class", "",
                  "Which sources the encoder localises. For a head, front/back and elevation cues are the pinnae's "
                  "colouring at 2-8 kHz and above: a class with little energy there cannot carry them.", "",
                  *_counted_localisation_table(by_class, "class", f"{unit}s")]
    class_wise = report.get("class_wise_by_sources")
    if class_wise:
        lines += ["", "## Every source from its own class's direction vector", "",
                  "The class-wise heads' direction for each labelled source's class (what a question naming the "
                  "class reads), by the number of sources in the scene: with several sources each must keep its "
                  "own direction.", "", *_counted_localisation_table(class_wise, f"{unit}s", "sources")]
    by_level = report.get("class_wise_by_relative_level")
    if by_level:
        lines += ["", "The sources of scenes with several, by their direct sound's level (level in the mix - "
                      "20 log10 distance) against the loudest other source's: a masked source's class vector may "
                      f"point at the dominant one (nearer the other: of the sources at least {SEPARATION_DEG:g} deg "
                      "of lateral angle from it, those whose vector's lateral angle lies nearer the other's).", "",
                  "| relative level | sources | DoA acc@20 (%) | lateral error (deg) | elevation error (deg) "
                  "| front/back confusion (%) | nearer the other (%) |", "|---|---|---|---|---|---|---|"]
        for band, values in by_level.items():
            lines.append(f"| {band} | {values['sources']} | " + " | ".join(_fmt(values[key]) for key in (
                "doa_accuracy_20deg", "lateral_error_deg", "elevation_error_deg", "front_back_confusion_rate"))
                + f" | {_fmt(values['nearer_other_pct'])} (of {values['separated']}) |")
    by_drr = report.get("class_wise_by_drr")
    if by_drr:
        lines += ["", "Every source by its own direct-to-reverberant ratio (20 log10 of the room's critical distance "
                      "over its distance): a head's front/back and elevation colouring is the direct sound's, and "
                      "fades where the room's diffuse field dominates.", "",
                  *_counted_localisation_table(by_drr, "direct-to-reverberant", "sources")]
    pairs = report.get("class_wise_pairs")
    if pairs:
        lines += ["", "Pairs of sources of one scene on opposite sides of an axis (the QA generator's side margins, as "
                      "its E questions take them, without its spectral-cue rule), read from their class vectors: the "
                      "order of their components along the axis is the heads' answer to every E question about the "
                      "pair (two equal components count 1/2); both halves right gives the order, both wrong "
                      "reverses it, both vectors in one half leaves it to the sizes of two components. On the "
                      "louder's side: of the pairs in one half whose direct levels differ, the percent in the "
                      "louder source's true half (50: the shared half does "
                      "not follow the louder source). The last two columns: each vector in its own source's half, "
                      "in these pairs and in the pairs of sources on one side (a scene-wide half shared by the "
                      "vectors raises the second and lowers the first); in the primary head's half: each vector "
                      "of these pairs on the primary head's side (50: each vector reads its own source or at "
                      "random; 100: every vector takes the scene's one reading).", "",
                  "| axis | pairs | order right (%) | both halves right (%) | swapped (%) | one half (%) "
                  "| order right in one half (%) | one half on the louder's side (%) | each half right (%) "
                  "| same-side pairs: each half right (%) | in the primary head's half (%) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for axis, values in pairs.items():
            lines.append(f"| {axis} | {values['pairs']} | " + " | ".join(_fmt(values[key]) for key in (
                "order_right_pct", "both_right_pct", "swapped_pct", "one_half_pct", "order_right_in_one_half_pct",
                "one_half_louder_side_pct", "half_right_pct")) + f" | {_fmt(values['same_side_half_right_pct'])} "
                f"(of {values['same_side_pairs']}) | {_fmt(values['primary_half_pct'])} |")
    if report["paired_doa_20deg"]:
        lines += ["", f"## Encoder vs each baseline on the same {unit}s (DoA within 20 deg, exact McNemar test)", "",
                  f"| baseline | {unit}s | only the encoder right | only the baseline right | p-value |",
                  "|---|---|---|---|---|"]
        for name, bands in report["paired_doa_20deg"].items():
            for band, test in bands.items():
                lines.append(f"| {name} | {band} | {test['a_only']} | {test['b_only']} | {test['p_value']:.2g} |")
        lines += ["", f"Lateral error, {unit} by {unit} (Wilcoxon signed-rank test; negative difference: the encoder "
                      "errs less):", "",
                  f"| baseline | {unit}s | mean difference, encoder - baseline (deg) | p-value |", "|---|---|---|---|"]
        for name, bands in report["paired_lateral_error"].items():
            for band, test in bands.items():
                lines.append(f"| {name} | {band} | {test['mean_difference']:+.1f} | {test['p_value']:.2g} |")
    against_constant = report.get("elevation_against_constant")
    if against_constant:
        lines += ["", "## Elevation against the best constant answer", "",
                  f"Answering the truths' median elevation, {against_constant['constant_deg']:.1f} deg, for every "
                  f"{unit} errs {against_constant['constant_error_deg']:.1f} deg on average, the least any constant "
                  f"answer errs on these {unit}s: a method reads elevation only where it errs less ({unit} by {unit}, "
                  "Wilcoxon signed-rank test; negative difference: the method errs less).", "",
                  "| method | elevation error (deg) | mean difference, method - constant (deg) | p-value |",
                  "|---|---|---|---|"]
        for name, test in against_constant["paired"].items():
            lines.append(f"| {name} | {_fmt(report['localisation'][name]['all']['elevation_error_deg'])} | "
                         f"{test['mean_difference']:+.1f} | {test['p_value']:.2g} |")
    lines += ["", "Plots: `azimuth_scatter.png` (predicted vs true azimuth), `error_histogram.png`, "
                  f"`polar_error.png` (mean angular error by true azimuth). Per-{unit} predictions of every method: "
                  "`predictions.csv`.", ""]
    return "\n".join(lines)


def plot_localisation(rows: dict, truth: tuple, out_dir: Path) -> None:
    """Predicted vs true azimuth, angular-error histogram and polar mean error by direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    true_az, true_el = truth
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 4), squeeze=False)
    for ax, (name, (az, _)) in zip(axes[0], rows.items()):
        ax.scatter(true_az, az, s=6, alpha=0.6)
        ax.plot([-180, 180], [-180, 180], "k--", lw=0.8)
        ax.set(title=name, xlabel="true azimuth (deg)", ylabel="predicted azimuth (deg)", xlim=(-180, 180),
               ylim=(-180, 180))
    fig.tight_layout()
    fig.savefig(out_dir / "azimuth_scatter.png", dpi=110)
    plt.close(fig)

    errors = {name: great_circle_deg(az, el, true_az, true_el).numpy() for name, (az, el) in rows.items()}
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, err in errors.items():
        ax.hist(err, bins=np.arange(0, 185, 5), alpha=0.5, label=name)
    ax.axvline(20, color="k", ls="--", lw=0.8)
    ax.set(xlabel="great-circle error (deg)", ylabel="scenes", title="localisation error")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "error_histogram.png", dpi=110)
    plt.close(fig)

    sectors = np.arange(-180, 180, 30)
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_zero_location("N")  # front up; azimuth counter-clockwise = left, as in the convention
    for name, err in errors.items():
        means = [err[(true_az >= s) & (true_az < s + 30)].mean() if ((true_az >= s) & (true_az < s + 30)).any()
                 else np.nan for s in sectors]
        theta = np.radians(np.append(sectors + 15, sectors[0] + 15))
        ax.plot(theta, np.append(means, means[0]), marker="o", label=name)
    ax.set_title("mean angular error (deg) by true azimuth")
    ax.legend(loc="lower left", bbox_to_anchor=(-0.1, -0.15))
    fig.tight_layout()
    fig.savefig(out_dir / "polar_error.png", dpi=110)
    plt.close(fig)

