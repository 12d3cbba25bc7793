"""Question-answering evaluation of an audio-LLM: generate, parse, score per question type (BAT's table).

:func:`evaluate_qa` answers a dataset's questions (greedy, batched), turns every answer into a structured
prediction with :func:`~spatial_alm.qa.parse_answer` (class vocabulary = the dataset's classes) and
scores each question type by its answer format (:data:`SCORERS`):

===========  ============================  =========================================================
format       types                         metrics
===========  ============================  =========================================================
labels       A, C                          detection mAP (%; score 1 for every class named, else 0):
                                           ``map`` over the classes with a positive among the
                                           questions, ``map_all_classes`` over all classes as BAT
                                           (one without a positive at AP 0)
direction    B, D                          DoA accuracy at 20 degrees (%), DER at 0.5 m (%; over the
                                           targets with a distance), mean angular error (degrees, parsed
                                           answers only); lateral (front/back-folded) accuracy at 20
                                           degrees and mean error, front/back confusion rate (%), as
                                           the encoder report
yes_no       E, negative                   accuracy and balanced accuracy (%; 50 for any constant
                                           answer), also per axis asked about: left/right,
                                           front/back, above/below and (E) distance; % answered yes
count        count                         accuracy (%)
elevation    elevation                     accuracy within 20 degrees (%), mean absolute error; every
                                           row also against the best constant answer
                                           (:func:`elevation_type_against_constant`)
room         room                          size and reverberation class accuracy (%)
description  description                   source precision and recall (%): label and direction
                                           within 20 degrees
===========  ============================  =========================================================

Unparseable answers are never dropped: they count as wrong (score 0 for detection) and are reported
per type. A *random* row answers every question with a random valid answer in its type's format,
rendered to text and parsed like the model's answers (BAT's random baseline). An *encoder head* row
answers, where its heads can, from the audio-LLM's own encoder (:func:`encoder_head_prediction`): the
most probable classes (A, C; the number above probability 0.5 for count) and the primary (loudest)
source's direction, distance and elevation (B, D, elevation; with a class-direction head, D and
elevation use the named class's direction vector, and E and negative are answered from the named
classes' vectors and distances, :func:`class_direction_answer`; for a model with a heard line the vectors
are decoded as the line decodes them, :func:`~spatial_alm.models.heard_sources.line_directions`) -- what the LLM reaches
by reading the encoder well; on the direction types (B, D) the model and the head are also compared
question by question (exact McNemar test, :func:`paired_vs_encoder_head`), and so are E and negative
where the head answers them. Writes ``report.json`` (also every question, answer and parse),
``report.md`` and ``scores.png``.

Axes (left_right, front_back, above_below, distance): a yes/no question's axis is its stored
``target["axis"]`` (:func:`question_axis`; datasets made before the generator stored it: read from the
question text, :func:`axis_of`). E and negative are also reported per axis (:func:`yes_no_by_axis`):
balanced accuracy beside the random row, a constant-answer row (the better of always-yes and always-no:
balanced accuracy 50 by construction, and its plain accuracy, which shows what the split gives a constant)
and the encoder head with the McNemar test. A receiver resolves only some axes (``scenes.receiver_axes``
of each scene's receiver: a rigid-sphere head hears left/right and distance, not front/back or up/down);
questions about the others (datasets made with ``qa.unresolvable_axes: ask`` or before that switch) are
not audible for that receiver: they are left out of the per-type tables and reported apart
(``report["not_audible"]``), and so are front/back and above/below questions naming a source whose sound
takes on less of a head's colouring than the recipe default ``qa.min_spectral_cue_db`` (its recorded
``front_back_cue_db`` / ``above_below_cue_db``; datasets made with ``qa.min_spectral_cue_db: null``).
Every yes/no number says which axes it covers. Two more splits: negative
probes about a class in the scene, whose answer is its side alone (:func:`negative_side_questions`; a probe
about an absent class tests detection, on every axis alike), and, for a model whose prompt carries the
heard line, yes/no questions by whether the encoder hears every class asked (:func:`yes_no_by_heard_line`).

Real recordings (:func:`evaluate_qa_on_recordings`: a folder of audio files with a labels CSV, see
:mod:`spatial_alm.data.recordings`): every recording is asked one type-B question
(:func:`recording_questions`), heard through the same centre window as ``evaluate-encoder
--recordings``, and answered, parsed, scored and reported by the same code as a dataset's questions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from spatial_alm.coordinates import AXES, cartesian_to_spherical, great_circle_deg
from spatial_alm.data import DatasetReader, SpatialQADataset, dataset_info, read_index
from spatial_alm.data.recordings import Recording, RecordingDataset, read_labelled_recordings
from spatial_alm.evaluation.encoder_report import (
    FRONT_BACK_MARGIN_DEG,
    by_spectral_cue,
    directions_sentence,
    elevation_against_constant,
    front_back_confusion_rate,
    recordings_summary,
)
from spatial_alm.evaluation.metrics import (
    DOA_THRESHOLD_DEG,
    detection_map,
    distance_error_rate,
    doa_accuracy,
    doa_correct,
    lateral_accuracy,
    lateral_error_deg,
    mcnemar_exact,
    mean_angular_error,
    yes_no_accuracy,
)
from spatial_alm.models.audio_llm import AudioLLM
from spatial_alm.models.heard_sources import describe_sources, line_directions
from spatial_alm.qa import (
    bin_azimuth_deg,
    bin_distance_m,
    bin_elevation_deg,
    canonical_label,
    get_question_type,
    is_yes_no,
    parse_answer,
)
from spatial_alm.qa.generator import REVERBERATION_CLASSES, ROOM_SIZE_CLASSES, SPECTRAL_CUE_FIELDS
from spatial_alm.qa.templates import (
    ANSWER_FORMATS,
    DISTANCE_AXIS,
    REGION_PHRASES,
    RELATION_PHRASES,
    SIDE_OF_PHRASE,
    named_labels,
    parse_yes_no_question,
)
from spatial_alm.scenes.metadata import SceneMeta
from spatial_alm.scenes.recipe import QAConfig
from spatial_alm.scenes.render import receiver_axes
from spatial_alm.training.finetune import collate_qa

# phrase of a type E relation or a negative probe's region -> the axis it asks about
_AXES = {"left": "left_right", "right": "left_right", "front": "front_back", "behind": "front_back",
         "above": "above_below", "below": "above_below", "nearer": "distance"}
AXIS_PHRASES = {**{phrase: _AXES[name] for name, phrases in RELATION_PHRASES.items() for phrase in phrases},
                **{phrase: _AXES[name] for name, phrase in REGION_PHRASES.items()}}
PRIMARY_METRIC = {"labels": "map", "direction": "doa_accuracy_20deg", "yes_no": "accuracy", "count": "accuracy",
                  "elevation": "accuracy_20deg", "room": "accuracy", "description": "recall"}


def _nan_if_empty(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _score_labels(records: list[dict], vocabulary: list[str]) -> dict:
    true_labels = {label for r in records for label in r["target"]["labels"]}
    names = sorted({canonical_label(v) for v in vocabulary} | true_labels)
    column = {name: k for k, name in enumerate(names)}
    scores, targets = np.zeros((len(records), len(names))), np.zeros((len(records), len(names)))
    for i, r in enumerate(records):
        for label in r["prediction"].get("labels") or []:
            if label in column:
                scores[i, column[label]] = 1.0
        for label in r["target"]["labels"]:
            targets[i, column[label]] = 1.0
    return {"map": detection_map(scores, targets, classes="present"),
            "map_all_classes": detection_map(scores, targets, classes="all")}


def _score_direction(records: list[dict], vocabulary: list[str]) -> dict:
    pred = {key: _nan_if_empty([r["prediction"].get(key) for r in records])
            for key in ("azimuth_deg", "elevation_deg", "distance_m")}
    true = {key: np.array([r["target"][key] for r in records], dtype=np.float64)
            for key in ("azimuth_deg", "elevation_deg", "distance_m")}
    pred["distance_m"] = np.abs(pred["distance_m"])  # a parsed negative distance is simply far off
    labelled = np.isfinite(true["distance_m"])  # a recording's distance may be unknown (target None)
    directions = (pred["azimuth_deg"], pred["elevation_deg"], true["azimuth_deg"], true["elevation_deg"])
    return {"doa_accuracy_20deg": doa_accuracy(*directions),
            "der_0.5m": (distance_error_rate(pred["distance_m"][labelled], true["distance_m"][labelled])
                         if labelled.any() else float("nan")),
            "mean_angular_error_deg": mean_angular_error(*directions),
            "lateral_accuracy_20deg": lateral_accuracy(*directions),
            "lateral_error_deg": lateral_error_deg(*directions),
            "front_back_confusion_rate": front_back_confusion_rate(*directions)}


def axis_of(question: str) -> str | None:
    """The axis (``left_right``, ``front_back``, ``above_below``, ``distance``) a type E relation or a
    negative probe's region asks about; None when the question names none."""
    text = question.lower()
    return next((axis for phrase, axis in AXIS_PHRASES.items() if phrase in text), None)


def question_axis(record: dict) -> str | None:
    """The axis a yes/no record asks about: its target's ``axis`` (stored by the QA generator), else
    :func:`axis_of` on the question text (datasets made before the generator stored it)."""
    return record["target"].get("axis") or axis_of(record["question"])


def audible(record: dict) -> bool:
    """False for a yes/no question about an axis its scene's receiver cannot resolve (``record["receiver_axes"]``,
    set by :func:`evaluate_qa`; a record without it counts every axis as resolved), or about a side the sound of
    a source it names does not carry (``record["below_spectral_cue"]``, :func:`below_spectral_cue`)."""
    if not is_yes_no(record["question_type"]):
        return True
    axis = question_axis(record)
    return axis is None or (axis in record.get("receiver_axes", AXES) and not record.get("below_spectral_cue", False))


def below_spectral_cue(question: str, axis: str | None, scene: SceneMeta, vocabulary: Sequence[str],
                       min_cue_db: float = QAConfig.min_spectral_cue_db) -> bool:
    """Whether a yes/no question about ``axis`` names a source of ``scene`` whose recorded spectral cue on that
    axis (``SourceMeta.front_back_cue_db`` / ``above_below_cue_db``) is below ``min_cue_db`` (default: the
    recipe default ``qa.min_spectral_cue_db``): its sound cannot tell that side, as the generator judges it."""
    field = SPECTRAL_CUE_FIELDS.get(axis)
    if field is None:
        return False
    named = set(named_labels(question, vocabulary))
    return any(canonical_label(source.label) in named and getattr(source, field) is not None
               and getattr(source, field) < min_cue_db for source in scene.sources)


def _axes_present(records: list[dict]) -> list[str]:
    """The axes asked about among ``records``, in :data:`~spatial_alm.coordinates.AXES` order."""
    present = {question_axis(r) for r in records}
    return [axis for axis in AXES if axis in present]


def _yes_no_scores(records: list[dict], key: str = "prediction") -> dict:
    return yes_no_accuracy([r[key].get("yes") for r in records], [bool(r["target"]["yes"]) for r in records])


def _score_yes_no(records: list[dict], vocabulary: list[str]) -> dict:
    overall = _yes_no_scores(records)
    out = {name: overall[name] for name in ("accuracy", "balanced_accuracy", "answered_yes")}
    axes = [question_axis(r) for r in records]
    for axis in _axes_present(records):
        scores = _yes_no_scores([r for r, a in zip(records, axes) if a == axis])
        out[f"balanced_accuracy_{axis}"] = scores["balanced_accuracy"]
        out[f"accuracy_{axis}"] = scores["accuracy"]
    return out


def constant_answer(records: list[dict]) -> dict:
    """The better constant answer to yes/no ``records`` (always yes or always no, by balanced accuracy, then
    plain accuracy): ``{"answer": "yes" | "no", "balanced_accuracy", "accuracy"}`` (percent). Balanced
    accuracy is 50 whenever both answers occur; the plain accuracy is the share of the more frequent answer,
    what the questions give a model that ignores the audio."""
    truth = [bool(r["target"]["yes"]) for r in records]
    scored = [(yes_no_accuracy([answer] * len(truth), truth), answer) for answer in (True, False)]
    scores, answer = max(scored, key=lambda pair: (pair[0]["balanced_accuracy"], pair[0]["accuracy"]))
    return {"answer": "yes" if answer else "no", "balanced_accuracy": scores["balanced_accuracy"],
            "accuracy": scores["accuracy"]}


def _yes_no_correct(records: list[dict], key: str) -> np.ndarray:
    """(N,) bool: the yes/no answer in ``record[key]`` equals the target (no answer: False)."""
    return np.array([r[key].get("yes") is not None and bool(r[key]["yes"]) == bool(r["target"]["yes"])
                     for r in records], dtype=bool)


def _yes_no_row(records: list[dict], axes: list[str]) -> dict:
    """One row of :func:`yes_no_by_axis` over ``records`` (which ask about ``axes``)."""
    pick = ("balanced_accuracy", "accuracy")
    row = {"axes": axes, "questions": len(records),
           "yes_share": 100.0 * float(np.mean([bool(r["target"]["yes"]) for r in records])),
           "model": {k: v for k, v in _yes_no_scores(records).items() if k in (*pick, "answered_yes")},
           "random": ({k: v for k, v in _yes_no_scores(records, "random_prediction").items() if k in pick}
                      if all("random_prediction" in r for r in records) else None),
           "constant": constant_answer(records), "encoder_head": None, "paired_vs_encoder_head": None}
    answered = [r for r in records if r.get("encoder_prediction")]
    if answered:
        row["encoder_head"] = {"questions": len(answered),
                               **{k: v for k, v in _yes_no_scores(answered, "encoder_prediction").items()
                                  if k in pick}}
        row["paired_vs_encoder_head"] = {"questions": len(answered), **mcnemar_exact(
            _yes_no_correct(answered, "prediction"), _yes_no_correct(answered, "encoder_prediction"))}
    return row


def yes_no_by_axis(records: list[dict]) -> dict:
    """Per yes/no type (E, negative) among ``records``: ``{"all": row, <axis>: row, ...}``, "all" over every
    axis asked (listed in its ``axes``), then one row per axis (:data:`~spatial_alm.coordinates.AXES` order).

    A row: ``axes``, ``questions``, ``yes_share`` (% of true answers that are yes), ``model`` and ``random``
    (``balanced_accuracy`` and ``accuracy``, %; random None when the records carry no random answers),
    ``constant`` (:func:`constant_answer`), ``encoder_head`` (``questions`` it answers, its balanced and plain
    accuracy on them) and ``paired_vs_encoder_head`` (exact McNemar test of right answers, model against
    head, on the questions the head answers), both None where the head answers none.
    """
    out = {}
    for question_type in sorted({r["question_type"] for r in records if is_yes_no(r["question_type"])}):
        subset = [r for r in records if r["question_type"] == question_type]
        axes = _axes_present(subset)
        out[question_type] = {"all": _yes_no_row(subset, axes),
                              **{axis: _yes_no_row([r for r in subset if question_axis(r) == axis], [axis])
                                 for axis in axes}}
    return out


def yes_no_by_heard_line(records: list[dict], vocabulary: Sequence[str]) -> dict:
    """Per yes/no type (E, negative), the records that carry the encoder's heard line split by whether the
    encoder hears every class the question names (``heard_labels``: the classes above the line's threshold):
    ``{type: {"every class asked heard": row, "a class asked not heard": row}}`` (rows of
    :func:`yes_no_by_axis`, an empty split left out). A class not heard is in the line only when the
    question presupposes it (E: :func:`~spatial_alm.models.heard_sources.presupposed_classes`), with its low
    probability; a negative probe's line leaves it out."""
    out = {}
    for question_type in sorted({r["question_type"] for r in records if is_yes_no(r["question_type"])}):
        subset = [r for r in records if r["question_type"] == question_type and r.get("heard_labels") is not None]
        splits = {"every class asked heard": [], "a class asked not heard": []}
        for r in subset:
            named = set(named_labels(r["question"], vocabulary))
            splits["every class asked heard" if named <= set(r["heard_labels"])
                   else "a class asked not heard"].append(r)
        rows = {name: _yes_no_row(split, _axes_present(split)) for name, split in splits.items() if split}
        if rows:
            out[question_type] = rows
    return out


def scene_labels(scene: SceneMeta) -> list[str]:
    """The canonical labels of a scene's sources, sorted, once each (a record's ``scene_labels``)."""
    return sorted({canonical_label(source.label) for source in scene.sources})


def negative_side_questions(records: list[dict], vocabulary: Sequence[str]) -> list[dict]:
    """The negative probes among ``records`` whose named class is in the scene (``scene_labels``): their answer
    is the class's side alone. The others (class absent: always "no") are answered by detection, so a per-axis
    score over all probes mixes detection into every axis."""
    return [r for r in records if r["question_type"] == "negative" and r.get("scene_labels") is not None
            and set(named_labels(r["question"], vocabulary)) <= set(r["scene_labels"])]


def _score_count(records: list[dict], vocabulary: list[str]) -> dict:
    return {"accuracy": 100.0 * float(np.mean([r["prediction"].get("count") == r["target"]["count"]
                                                for r in records]))}


def _score_elevation(records: list[dict], vocabulary: list[str]) -> dict:
    pred = _nan_if_empty([r["prediction"].get("elevation_deg") for r in records])
    error = np.abs(pred - np.array([r["target"]["elevation_deg"] for r in records], dtype=np.float64))
    return {"accuracy_20deg": 100.0 * float(np.mean(error <= DOA_THRESHOLD_DEG)),  # NaN compares False: wrong
            "mean_abs_error_deg": float(np.nanmean(error)) if np.isfinite(error).any() else float("nan")}


# the report's answer rows and the record field holding each (None where the encoder head does not answer)
ANSWER_ROWS = {"model": "prediction", "random": "random_prediction", "encoder_head": "encoder_prediction"}


def elevation_type_against_constant(records: list[dict]) -> dict | None:
    """The elevation questions' answers (model, random row and, where it answers, encoder head) against the best
    constant answer, the true elevations' median, question by question: :func:`~spatial_alm.evaluation.
    encoder_report.elevation_against_constant` (unparsed answers left out of the pairs, ``pairs`` says how many
    remain). The elevation questions' accuracy is read beside a random guess over -90..90 deg, which any model
    beats by answering near the horizon; only this test says whether the answers follow the audio. None without
    elevation questions."""
    subset = [r for r in records if r["question_type"] == "elevation"]
    if not subset:
        return None
    answers = {name: _nan_if_empty([(r.get(key) or {}).get("elevation_deg") for r in subset])
               for name, key in ANSWER_ROWS.items()}
    if np.isnan(answers["encoder_head"]).all():
        del answers["encoder_head"]
    return elevation_against_constant(answers, [r["target"]["elevation_deg"] for r in subset])


def _score_room(records: list[dict], vocabulary: list[str]) -> dict:
    out = {}
    for key in ("room_size", "reverberation"):
        out[f"accuracy_{key}"] = 100.0 * float(np.mean([r["prediction"].get(key) == r["target"][key]
                                                         for r in records]))
    out["accuracy"] = 100.0 * float(np.mean([all(r["prediction"].get(k) == r["target"][k]
                                                 for k in ("room_size", "reverberation")) for r in records]))
    return out


def _match_sources(predicted: list[dict], true: list[dict]) -> int:
    """Greedy one-to-one matches: same label and direction within 20 degrees."""
    used, matches = set(), 0
    for p in predicted:
        for j, t in enumerate(true):
            if j in used or p["label"] != t["label"]:
                continue
            error = float(great_circle_deg(float(p["azimuth_deg"]), float(p["elevation_deg"]),
                                           float(t["azimuth_deg"]), float(t["elevation_deg"])))
            if error <= DOA_THRESHOLD_DEG:
                used.add(j)
                matches += 1
                break
    return matches


def _score_description(records: list[dict], vocabulary: list[str]) -> dict:
    matched = predicted = true = 0
    for r in records:
        sources = r["prediction"].get("sources") or []
        matched += _match_sources(sources, r["target"]["sources"])
        predicted, true = predicted + len(sources), true + len(r["target"]["sources"])
    return {"precision": 100.0 * matched / predicted if predicted else 0.0,
            "recall": 100.0 * matched / true if true else float("nan")}


SCORERS: dict[str, Callable[[list[dict], list[str]], dict]] = {
    "labels": _score_labels, "direction": _score_direction, "yes_no": _score_yes_no, "count": _score_count,
    "elevation": _score_elevation, "room": _score_room, "description": _score_description,
}


def random_answer(question_type: str, vocabulary: list[str], rng: np.random.Generator) -> str:
    """A random valid answer in the type's format (labels from ``vocabulary``; directions uniform in
    azimuth and elevation, distance in BAT's 0.5-10 m classes)."""
    answer_format = get_question_type(question_type).answer_format

    def direction() -> dict:
        return {"azimuth_deg": int(rng.integers(-179, 181)), "elevation_deg": int(rng.integers(-90, 91)),
                "distance_m": float(rng.integers(1, 21)) / 2}

    labels = sorted(canonical_label(v) for v in vocabulary)
    draw = {
        "labels": lambda: {"labels": sorted(rng.choice(labels, size=1 if question_type == "A" else 2,
                                                       replace=False).tolist())},
        "direction": direction,
        "elevation": lambda: {"elevation_deg": int(rng.integers(-90, 91))},
        "yes_no": lambda: {"yes": bool(rng.random() < 0.5)},
        "count": lambda: {"count": int(rng.integers(1, 5))},
        "room": lambda: {"room_size": str(rng.choice([name for name, _ in ROOM_SIZE_CLASSES])),
                         "reverberation": str(rng.choice([name for name, _ in REVERBERATION_CLASSES]))},
        "description": lambda: {"sources": [{"label": str(rng.choice(labels)), **direction()}]},
    }
    return ANSWER_FORMATS[answer_format](draw[answer_format]())


def score_records(records: list[dict], vocabulary: list[str]) -> dict:
    """Per question type: ``{"format", "total", "unparseable", "metrics"}`` (yes/no types also ``axes``: those
    their numbers cover) from records holding ``question_type``, ``question``, ``target`` and ``prediction``
    (a :func:`parse_answer` result). Yes/no questions not :func:`audible` for their receiver are left out."""
    records = [r for r in records if audible(r)]
    table = {}
    for question_type in sorted({r["question_type"] for r in records}, key=lambda t: (len(t) > 1, t)):
        subset = [r for r in records if r["question_type"] == question_type]
        answer_format = get_question_type(question_type).answer_format
        metrics = SCORERS[answer_format](subset, vocabulary)
        table[question_type] = {"format": answer_format, "total": len(subset),
                                "unparseable": sum(not r["prediction"]["parsed"] for r in subset),
                                "metrics": metrics}
        if answer_format == "yes_no":
            table[question_type]["axes"] = _axes_present(subset)
    return table


def _direction_correct(records: list[dict], key: str) -> np.ndarray:
    """(N,) bool: the direction in ``record[key]`` within 20 degrees of the target (unparsed: False)."""
    pred = {name: _nan_if_empty([r[key].get(name) for r in records]) for name in ("azimuth_deg", "elevation_deg")}
    return doa_correct(pred["azimuth_deg"], pred["elevation_deg"],
                       np.array([r["target"]["azimuth_deg"] for r in records], dtype=np.float64),
                       np.array([r["target"]["elevation_deg"] for r in records], dtype=np.float64))


def _paired_by_type(records: list[dict], others: list[dict], other_key: str) -> dict:
    """Per direction type (B, D; DoA within 20 degrees) and yes/no type (E, negative; the :func:`audible`
    questions; the right yes or no): the exact McNemar test of ``records[i]["prediction"]`` against
    ``others[i][other_key]`` on the questions where the latter exists: ``{"questions", "a_only", "b_only",
    "p_value"}``."""
    correct = {"direction": _direction_correct, "yes_no": _yes_no_correct}
    out = {}
    for question_type in sorted({r["question_type"] for r in records}):
        rows = [i for i, r in enumerate(records) if r["question_type"] == question_type and audible(r)
                and others[i].get(other_key)]
        answer_format = get_question_type(question_type).answer_format
        if answer_format not in correct or not rows:
            continue
        test = mcnemar_exact(correct[answer_format]([records[i] for i in rows], "prediction"),
                             correct[answer_format]([others[i] for i in rows], other_key))
        out[question_type] = {"questions": len(rows), **test}
    return out


def paired_vs_encoder_head(records: list[dict]) -> dict:
    """Per direction type (B, D) and yes/no type (E, negative), the model's answers against the encoder
    head's on the same questions (those the head answers): :func:`_paired_by_type`, ``a_only``: the model
    alone right, ``b_only``: the head alone right."""
    return _paired_by_type(records, records, "encoder_prediction")


def paired_models(records_a: list[dict], records_b: list[dict]) -> dict:
    """Two models' evaluations of the same questions (``report.json`` ``answers`` of `evaluate`, in the
    same order), compared type by type as :func:`_paired_by_type` (``a_only``: A alone right). ValueError
    when the two lists do not hold the same questions."""
    if [(r["question"], r["answer"]) for r in records_a] != [(r["question"], r["answer"]) for r in records_b]:
        raise ValueError("records_a and records_b: different questions; allowed: two evaluations of the same "
                         "questions in the same order (same dataset, --max-questions and --seed)")
    return _paired_by_type(records_a, records_b, "prediction")


ENCODER_HEAD_FORMATS = ("labels", "direction", "elevation", "count")


def encoder_head_prediction(question_type: str, ranked_labels: Sequence[str], num_detected: int,
                            azimuth_deg: float, elevation_deg: float, distance_m: float,
                            named_direction: tuple[float, float] | None = None) -> dict | None:
    """The answer the encoder's heads give to a ``question_type`` question, in :func:`parse_answer`'s form.

    ``ranked_labels``: class names by decreasing probability; ``num_detected``: how many reach 0.5.
    A (one source): the top class; C (a mixture): the detected classes, at least the top two; count:
    the detected classes, at least one; B, D, elevation: the primary source's direction, distance and
    elevation, except that D and elevation take ``named_direction`` (azimuth, elevation in degrees:
    the class-direction head's vector for the class the question names) when given. None for types
    the heads cannot answer (yes/no relations, rooms, descriptions).
    """
    answer_format = get_question_type(question_type).answer_format
    if answer_format not in ENCODER_HEAD_FORMATS:
        return None
    if named_direction is not None and question_type in ("D", "elevation"):
        azimuth_deg, elevation_deg = named_direction
    named = {"A": 1, "C": max(num_detected, 2)}.get(question_type, max(num_detected, 1))
    direction = {"azimuth_deg": azimuth_deg, "elevation_deg": elevation_deg, "distance_m": distance_m}
    fields = {"labels": {"labels": sorted(canonical_label(label) for label in ranked_labels[:named])},
              "direction": direction,
              "elevation": {"elevation_deg": elevation_deg},
              "count": {"count": max(num_detected, 1)}}[answer_format]
    return {"parsed": True, **fields}


def class_direction_answer(question_type: str, phrase: str, classes: Sequence[int], class_probs: torch.Tensor,
                           class_directions: torch.Tensor, class_distances: torch.Tensor) -> bool:
    """The class-wise heads' yes/no answer: E ("is <a> <phrase> <b>?") compares the two classes'
    unit directions (``class_directions`` (K, 3)) along the phrase's axis, or their distances in metres
    (``class_distances`` (K,)) for nearer / farther; a negative probe ("is there <a> <phrase>?") is yes
    when the class's probability (``class_probs`` (K,)) is >= 0.5 and its vector points into the region."""
    axis, sign = SIDE_OF_PHRASE[question_type][phrase]
    if question_type == "E" and axis == DISTANCE_AXIS:
        return bool(sign * (class_distances[classes[1]] - class_distances[classes[0]]) > 0)
    if question_type == "E":
        return bool(sign * (class_directions[classes[0], axis] - class_directions[classes[1], axis]) > 0)
    return bool(class_probs[classes[0]] >= 0.5 and sign * class_directions[classes[0], axis] > 0)


def _class_direction_prediction(question_type: str, question: str, class_names: Sequence[str],
                                class_probs: torch.Tensor, class_directions: torch.Tensor | None,
                                class_distances: torch.Tensor | None) -> dict | None:
    """The class-wise heads' answer to a yes/no question in :func:`parse_answer`'s form, or None."""
    parsed = None if class_directions is None else parse_yes_no_question(question_type, question, class_names)
    if parsed is None:
        return None
    return {"parsed": True, "yes": class_direction_answer(question_type, *parsed, class_probs, class_directions,
                                                          class_distances)}


def _named_direction(class_directions: torch.Tensor | None, row: int, class_names: Sequence[str],
                     label: str | None) -> tuple[float, float] | None:
    """(azimuth, elevation) in degrees of the class-direction head's vector for ``label``, the class of the
    source a question names, or None (no such head, no named source, class unknown to the encoder)."""
    if class_directions is None or label is None or label not in class_names:
        return None
    azimuth, elevation, _ = cartesian_to_spherical(class_directions[row, class_names.index(label)].double().cpu())
    return float(azimuth), float(elevation)


def _select(num_qa: int, max_questions: int | None, seed: int) -> np.ndarray:
    if max_questions is None or max_questions >= num_qa:
        return np.arange(num_qa)
    if max_questions < 1:
        raise ValueError(f"max_questions = {max_questions!r}; allowed: an integer >= 1")
    return np.sort(np.random.default_rng(seed).permutation(num_qa)[:max_questions])


def _load_model(model_dir: str | Path, device: str | None) -> tuple[AudioLLM, str]:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return AudioLLM.from_pretrained(model_dir, device=device), device


def evaluate_qa(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *, max_questions: int | None = None,
                question_types: Sequence[str] | None = None, batch_size: int = 8, max_new_tokens: int = 48,
                seed: int = 0, device: str | None = None, progress: bool = True) -> dict:
    """Answer the questions of ``data_dir`` (all, or only those of ``question_types``; all of them, or
    ``max_questions`` drawn with ``seed``) with the AudioLLM at ``model_dir``; write ``report.json``,
    ``report.md`` and ``scores.png`` to ``out_dir`` and return the report (``model`` and ``random`` tables
    by question type, ``answers``)."""
    for name in question_types or ():
        get_question_type(name)  # an unknown type is refused with the valid ones
    model, device = _load_model(model_dir, device)
    index, fs_hz, channels = read_index(data_dir), model.encoder.features.config.fs_hz, model.encoder.num_channels
    if (index.fs_hz, index.num_channels) != (fs_hz, channels):  # the encoder's features assume its rate
        raise ValueError(f"dataset {data_dir}: {index.num_channels} channels at {index.fs_hz} Hz; allowed: the "
                         f"model's {channels} channels at {fs_hz} Hz (the rate and channels its encoder was "
                         "trained on; simulate the test set with the training recipe's fs_hz and receiver)")
    info = dataset_info(data_dir)
    vocabulary = sorted(set(info["class_counts"]) | set(model.encoder.class_names or []))
    dataset, reader = SpatialQADataset(data_dir, question_types), DatasetReader(data_dir)
    if len(dataset) == 0:
        raise ValueError(f"dataset {data_dir} has no question of the types {', '.join(question_types)}")
    chosen = _select(len(dataset), max_questions, seed)

    def label_of(scene_index: int, source_index: int) -> str | None:
        return None if source_index < 0 else reader.meta(scene_index).sources[source_index].label

    # answered grouped by type, so a batch's answers end together (a yes/no batch stops after two tokens
    # instead of waiting for a description), then put back in dataset order
    by_type = np.argsort(reader.qa_types()[dataset.qa_indices[chosen]], kind="stable")
    answered = _answer_questions(model, Subset(dataset, chosen[by_type]), vocabulary, label_of, batch_size=batch_size,
                                 max_new_tokens=max_new_tokens, seed=seed, device=device, progress=progress)
    records = [answered[k] for k in np.argsort(by_type)]
    # the axes each question's receiver resolves (a dataset may mix receivers: per scene, by name)
    scenes = [reader.meta(reader.qa_pair(int(dataset.qa_indices[j]))["scene_index"]) for j in chosen]
    axes_of = {name: [axis for axis in AXES if axis in receiver_axes(name)]
               for name in sorted({scene.receiver for scene in scenes})}
    records = [{**record, "receiver": scene.receiver, "receiver_axes": axes_of[scene.receiver],
                "scene_labels": scene_labels(scene),
                "below_spectral_cue": is_yes_no(record["question_type"]) and below_spectral_cue(
                    record["question"], question_axis(record), scene, vocabulary)}
               for record, scene in zip(records, scenes)]
    return _write_report({"model_dir": str(model_dir), "data": str(data_dir), "receiver_axes": axes_of},
                         records, vocabulary, out_dir, max_new_tokens=max_new_tokens, seed=seed)


RECORDING_QUESTION_TYPE = "B"  # "where is the sound?": direction and distance of the one source


def recording_questions(recordings: Sequence[Recording], seed: int = 0) -> list[dict]:
    """One type-B question per labelled recording, in a dataset question's form (``question_type``,
    ``question``, ``answer``, ``target``, ``template_index``).

    The wording is one of the QA generator's B templates, drawn per recording with ``seed`` (stream
    ``[seed, 1]``, drawn for every recording before any selection, so a recording keeps its question
    whatever subset is answered). The target is the labelled direction in the generator's classes (whole
    degrees, 0.5 m; :func:`~spatial_alm.qa.bin_azimuth_deg` and co.), ``distance_m`` None where the labels
    give no distance; the answer is the target's text (``distance unknown`` then, which does not parse).
    """
    question_type = get_question_type(RECORDING_QUESTION_TYPE)
    drawn = np.random.default_rng([seed, 1]).integers(len(question_type.templates), size=len(recordings))
    out = []
    for recording, k in zip(recordings, drawn):
        known = math.isfinite(recording.distance_m)
        target = {"azimuth_deg": bin_azimuth_deg(recording.azimuth_deg),
                  "elevation_deg": bin_elevation_deg(recording.elevation_deg),
                  "distance_m": bin_distance_m(recording.distance_m) if known else None}
        answer = (ANSWER_FORMATS[question_type.answer_format](target) if known else
                  f"azimuth {target['azimuth_deg']} deg, elevation {target['elevation_deg']} deg, distance unknown")
        out.append({"question_type": question_type.name, "question": question_type.templates[k].format(),
                    "answer": answer, "target": target, "template_index": int(k)})
    return out


class _RecordingQuestions(torch.utils.data.Dataset):
    """Recordings (their centre windows, :class:`RecordingDataset`) with their questions, as
    :class:`SpatialQADataset` items (scene index = position in the list, the one source = 0)."""

    def __init__(self, audio: RecordingDataset, questions: list[dict]):
        self.audio, self.questions = audio, questions

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, i: int) -> dict:
        return {**self.questions[i], "audio": self.audio[i]["audio"], "scene_index": i, "source_index": 0}


def evaluate_qa_on_recordings(model_dir: str | Path, recordings_dir: str | Path, out_dir: str | Path, *,
                              labels_csv: str | Path | None = None, max_questions: int | None = None,
                              batch_size: int = 8, max_new_tokens: int = 48, seed: int = 0,
                              device: str | None = None, progress: bool = True) -> dict:
    """Ask the AudioLLM at ``model_dir`` where the sound is in every labelled recording of ``recordings_dir``
    (or ``max_questions`` of them drawn with ``seed``); write ``report.json``, ``report.md`` and ``scores.png``
    to ``out_dir`` as :func:`evaluate_qa` does and return the report.

    ``recordings_dir`` and ``labels_csv`` (default ``recordings_dir/labels.csv``): see
    :func:`spatial_alm.data.recordings.read_labelled_recordings`. Questions: :func:`recording_questions`.
    Window as ``evaluate-encoder --recordings``: each file resampled to the encoder's rate, then cut to its
    centre window of the encoder's longest input (``SpatialEncoderModel.window_samples``) or zero-padded on both
    sides to it. A file whose channel count is not the encoder's is refused (ValueError). Scores: the
    direction scorer of the dataset path (DER over the files whose distance is labelled), beside the random
    and encoder-head rows and the McNemar test against the head; where the labels give the files' spectral cues
    (``dataset from-sofa`` writes them), also per cue group (``by_spectral_cue``, the groups of
    ``evaluate-encoder --recordings``).
    """
    model, device = _load_model(model_dir, device)
    recordings = read_labelled_recordings(recordings_dir, labels_csv)
    questions = recording_questions(recordings, seed)
    chosen = _select(len(recordings), max_questions, seed)
    asked, questions = [recordings[i] for i in chosen], [questions[i] for i in chosen]
    fs_hz, window = model.encoder.features.config.fs_hz, model.encoder.window_samples
    audio = RecordingDataset(asked, fs_hz, window, model.encoder.num_channels)
    vocabulary = sorted(set(model.encoder.class_names or []))
    records = _answer_questions(model, _RecordingQuestions(audio, questions), vocabulary,
                                lambda scene_index, source_index: asked[scene_index].label or None,
                                batch_size=batch_size, max_new_tokens=max_new_tokens, seed=seed, device=device,
                                progress=progress)
    records = [{"file": recording.file, **record} for recording, record in zip(asked, records)]
    cues = np.array([[r.front_back_cue_db, r.above_below_cue_db] for r in asked], dtype=np.float64)
    by_cue = by_spectral_cue(cues, lambda sel: _score_tables([records[i] for i in np.flatnonzero(sel)], vocabulary),
                             unit="recordings")
    header = {"model_dir": str(model_dir), **recordings_summary(recordings_dir, labels_csv, asked, fs_hz, window),
              "by_spectral_cue": by_cue,
              "recordings_in_labels": len(recordings),
              "distance_labelled": sum(math.isfinite(r.distance_m) for r in asked),
              "questions": {"type": RECORDING_QUESTION_TYPE,
                            "templates": list(get_question_type(RECORDING_QUESTION_TYPE).templates),
                            "rule": "one question per recording, its template drawn with the seed"}}
    return _write_report(header, records, vocabulary, out_dir, max_new_tokens=max_new_tokens, seed=seed)


def _answer_questions(model: AudioLLM, dataset, vocabulary: list[str],
                      label_of: Callable[[int, int], str | None], *, batch_size: int, max_new_tokens: int,
                      seed: int, device: str, progress: bool) -> list[dict]:
    """Greedy answers to every item of ``dataset`` (:class:`SpatialQADataset` items), parsed, with a random
    answer (drawn with ``seed``) and the encoder heads' answer beside each. ``label_of(scene_index,
    source_index)``: the class of the source a question names (None: none)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_qa)
    records, rng = [], np.random.default_rng(seed)
    with tqdm(total=len(dataset), desc="evaluate", unit="question", disable=not progress) as bar:
        for batch in loader:
            audio = batch["audio"].to(device)
            heads = model.encoder.predict(audio)
            heard = model.hear(audio, batch["questions"], heads)
            lines = None if heard is None else [describe_sources(sources) for sources in heard]
            generated = model.generate(audio, batch["questions"], max_new_tokens, heard=lines)
            directions = (heads.class_directions  # the class-wise directions as the heard line decodes them
                          if heads.class_directions is None or model.heard_sources_threshold is None else
                          line_directions(heads.class_probs, heads.class_directions, model.heard_sources_threshold,
                                          heads.class_azimuth_probs))
            class_names = model.encoder.class_names or []  # none saved: the heads name no class
            ranking = heads.class_probs.argsort(dim=-1, descending=True).tolist()
            for i, text in enumerate(generated):
                question_type = batch["question_types"][i]
                named = _named_direction(directions, i, class_names,
                                         label_of(batch["scene_indices"][i], batch["source_indices"][i]))
                guess = random_answer(question_type, vocabulary, rng)
                records.append({"question_type": question_type, "question": batch["questions"][i],
                                "answer": batch["answers"][i], "target": batch["targets"][i], "generated": text,
                                "prediction": parse_answer(question_type, text, vocabulary=vocabulary),
                                "random_answer": guess,
                                "heard_line": None if lines is None else lines[i],
                                "heard_labels": None if heard is None else [  # above the threshold
                                    source.label for source in heard[i]
                                    if source.probability >= model.heard_sources_threshold],
                                "random_prediction": parse_answer(question_type, guess, vocabulary=vocabulary),
                                "encoder_prediction": encoder_head_prediction(
                                    question_type, [class_names[k] for k in ranking[i] if k < len(class_names)],
                                    int((heads.class_probs[i] >= 0.5).sum()), float(heads.azimuth_deg[i]),
                                    float(heads.elevation_deg[i]), float(heads.distance_m[i]), named)
                                or _class_direction_prediction(
                                    question_type, batch["questions"][i], class_names, heads.class_probs[i],
                                    None if directions is None else directions[i],
                                    None if heads.class_distances is None else heads.class_distances[i])})
            bar.update(len(generated))
    return records


def _write_report(header: dict, records: list[dict], vocabulary: list[str], out_dir: str | Path, *,
                  max_new_tokens: int, seed: int) -> dict:
    """``header`` + the model, random and encoder-head tables and the paired test scored from ``records``;
    written to ``out_dir`` as report.json, report.md and scores.png (datasets and recordings alike)."""
    inaudible = [r for r in records if not audible(r)]
    report = {**header, "num_questions": len(records), "max_new_tokens": max_new_tokens, "seed": seed,
              "vocabulary": vocabulary, **_score_tables(records, vocabulary),
              "paired_vs_encoder_head": paired_vs_encoder_head(records),
              "elevation_against_constant": elevation_type_against_constant(records),
              "yes_no_by_axis": yes_no_by_axis([r for r in records if audible(r)]),
              "yes_no_by_heard_line": yes_no_by_heard_line([r for r in records if audible(r)], vocabulary),
              "negative_class_in_scene": yes_no_by_axis(negative_side_questions([r for r in records if audible(r)],
                                                                                vocabulary)),
              "not_audible": {"questions": len(inaudible), "yes_no_by_axis": yes_no_by_axis(inaudible)},
              "answers": records}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    (out_dir / "report.md").write_text(markdown_report(report))
    plot_scores(report, out_dir / "scores.png")
    return report


def _score_tables(records: list[dict], vocabulary: list[str]) -> dict:
    """``model``, ``random`` and ``encoder_head``: :func:`score_records` of the model's, the random and the
    encoder heads' answers (the last on the questions the heads answer)."""
    return {name: score_records([{**r, "prediction": r[key]} for r in records if r[key] is not None], vocabulary)
            for name, key in ANSWER_ROWS.items()}


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def format_value(value: float | None, digits: int = 2) -> str:
    """A table cell: ``value`` with ``digits`` decimals, or ``n/a`` for None and NaN."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_report(report: dict) -> str:
    """BAT-style table: one row per question type and metric, model beside the random and encoder-head rows."""
    decoding = (f"{report['num_questions']} questions, greedy decoding ({report['max_new_tokens']} new tokens at "
                "most). Unparseable answers count as wrong.")
    if "recordings_dir" in report:
        window, asked = report["window"], report["questions"]
        source = [f"Recordings `{report['recordings_dir']}` (labels `{report['labels_csv']}`): "
                  f"{report['num_recordings']} of its {report['recordings_in_labels']} files, at "
                  f"{', '.join(map(str, report['file_rates_hz']))} Hz, distance labelled for "
                  f"{report['distance_labelled']}. Each recording is asked one type-{asked['type']} question "
                  f"(where is the sound?), its wording drawn with seed {report['seed']} from the "
                  f"{len(asked['templates'])} {asked['type']} templates of the QA generator; {decoding}", "",
                  f"Window (as `evaluate-encoder --recordings`): each file is resampled to {window['fs_hz']} Hz and "
                  f"the model hears its centre {window['seconds']:.2f} s ({window['samples']} samples, the encoder's "
                  f"longest input): {window['longer_files']} longer files cropped, {window['shorter_files']} "
                  f"shorter ones zero-padded on both sides. {directions_sentence(report['directions'])} DER covers "
                  "the files whose distance is labelled (n/a when none is)."]
    else:
        source = [f"Data: `{report['data']}`, {decoding}"]
    lines = [f"# QA evaluation: {report['model_dir']}", "", *source, "",
             "| type | format | questions | unparseable | metric | model | random | encoder head |",
             "|---|---|---:|---:|---|---:|---:|---:|"]
    for question_type, row in report["model"].items():
        share = 100.0 * row["unparseable"] / row["total"]
        for k, (metric, value) in enumerate(row["metrics"].items()):
            lead = (f"| {question_type} | {row['format']} | {row['total']} | {row['unparseable']} ({share:.0f}%) "
                    if k == 0 else "| | | | ")
            random_value = report["random"][question_type]["metrics"][metric]
            head_value = report["encoder_head"].get(question_type, {"metrics": {}})["metrics"].get(metric)
            cells = " | ".join(format_value(v) for v in (value, random_value, head_value))
            covers = ("" if "axes" not in row or metric.endswith(tuple(AXES))
                      else f" ({', '.join(row['axes']) or 'no axis'})")
            lines.append(f"{lead}| {metric}{covers} | {cells} |")
    lines += ["", "Metrics: mAP and accuracies in percent; map = mean AP over the classes with a positive among "
              "the questions; map_all_classes = BAT's mean over all classes (a class without one counts 0); "
              "DER = answers more than 0.5 m off (percent); DoA correct "
              "within 20 degrees great-circle error; lateral = the front/back-folded lateral angle (left/right "
              "axis only: what a head blind to front and back can resolve), accuracy within 20 degrees and mean "
              "error; front/back confusion rate = answers in the wrong front/back half among the sources at least "
              f"{FRONT_BACK_MARGIN_DEG:g} degrees from the frontal plane (an unparsed answer counts as confused); "
              "yes/no accuracy also per axis asked about (in brackets: the axes a yes/no number covers). "
              "Encoder head: "
              "the encoder's own class, direction and distance heads (primary source), where they can answer; "
              "with a class-direction head also E and negative, from the named classes' direction vectors "
              "(decoded as the heard line where the prompt has one) and distances.", ""]
    paired = report.get("paired_vs_encoder_head") or {}
    if paired:
        lines += ["Model vs encoder head on the same questions, those the head answers (exact McNemar test; right "
                  "means DoA within 20 degrees for B and D, the right yes or no for E and negative):", "",
                  "| type | questions | model alone right | head alone right | p |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {t} | {row['questions']} | {row['a_only']} | {row['b_only']} | {row['p_value']:.3g} |"
                  for t, row in paired.items()]
        lines.append("")
    against_constant = report.get("elevation_against_constant")
    if against_constant:
        lines += ["## Elevation questions against the best constant answer", "",
                  f"Answering the true elevations' median, {against_constant['constant_deg']:.1f} deg, to every "
                  f"elevation question errs {against_constant['constant_error_deg']:.1f} deg on average, the least "
                  "any constant answer errs here: answers read elevation from the audio only where they err less, "
                  "question by question (Wilcoxon signed-rank test over the parsed answers; negative difference: "
                  "the answers err less). The random row's accuracy is no such reference: it guesses over -90..90 "
                  "deg.", "",
                  "| answers | parsed | mean absolute error (deg) | mean difference, answer - constant (deg) | p |",
                  "|---|---:|---:|---:|---:|"]
        for name, test in against_constant["paired"].items():
            error = report[name]["elevation"]["metrics"]["mean_abs_error_deg"]
            lines.append(f"| {name.replace('_', ' ')} | {test['pairs']} | {format_value(error, 1)} | "
                         f"{test['mean_difference']:+.1f} | {test['p_value']:.2g} |")
        lines.append("")
    if report.get("by_spectral_cue"):
        lines += ["## By the recordings' spectral cues", "", *_by_cue_table(report["by_spectral_cue"]), "",
                  "The recordings split by their labelled spectral cue on each axis (`front_back_cue_db`, "
                  "`above_below_cue_db`: how much the head's colouring of the sound changes between its direction "
                  f"and the mirror image; {QAConfig.min_spectral_cue_db:g} dB is `qa.min_spectral_cue_db`'s "
                  "default), as `evaluate-encoder --recordings` splits them: a front/back answer is only fair where "
                  "the cue is. Each cell: model / random / encoder head.", ""]
    if report.get("yes_no_by_axis"):
        lines += ["## Yes/no questions per axis", "",
                  *_yes_no_axis_table(report["yes_no_by_axis"]), "", YES_NO_AXIS_NOTE, ""]
    if report.get("negative_class_in_scene"):
        lines += ["## Negative probes about a class in the scene", "",
                  *_yes_no_axis_table(report["negative_class_in_scene"]), "",
                  "The negative probes whose named class is in the scene: \"is there a <class> <region>?\" is then "
                  "answered by the class's side alone. The other probes name an absent class (answer no) and test "
                  "detection, which the per-axis rows above mix into every axis. Columns as above.", ""]
    if report.get("yes_no_by_heard_line"):
        lines += ["## Yes/no questions by what the encoder hears", "",
                  *_yes_no_axis_table(report["yes_no_by_heard_line"], first="split (axes)"), "",
                  "Split by whether the encoder hears (above the heard line's threshold) every class the question "
                  "names. A class not heard is still in the line of an E question, which presupposes it, with its "
                  "low probability and the heads' direction and distance; a negative probe's line leaves it out. "
                  "Columns as above.", ""]
    not_audible = report.get("not_audible") or {}
    if not_audible.get("questions"):
        receivers = "; ".join(f"{name}: {', '.join(axes)}" for name, axes in report.get("receiver_axes", {}).items())
        lines += ["## Not audible for this receiver", "",
                  f"{not_audible['questions']} yes/no questions ask about an axis their scene's receiver cannot "
                  f"resolve (resolved axes: {receivers or 'n/a'}), or about the front/back or above/below side of "
                  f"a source whose sound takes on less than {QAConfig.min_spectral_cue_db:g} dB of the head's "
                  "colouring (its recorded spectral cue): the dataset was made with `qa.unresolvable_axes: ask` or "
                  "`qa.min_spectral_cue_db: null`, or before those settings. No model can hear their answers, so "
                  "they are left out of every table above and shown here alone.", "",
                  *_yes_no_axis_table(not_audible["yes_no_by_axis"]), ""]
    return "\n".join(lines)


YES_NO_AXIS_NOTE = ("Balanced accuracy: the mean of the percent right among the yes questions and among the no "
                    "questions (50 for any constant answer); yes (%): the share of yes among the true answers, "
                    "model answered yes: among the model's. Constant: the better of always-yes and always-no; its "
                    "accuracy is the share of the more frequent answer, what these questions give a model that "
                    "ignores the audio. Head: the encoder head on the questions it answers (n); p: exact McNemar "
                    "test of right answers, model vs head, on those questions. Axes: the axes a row covers.")


def _by_cue_table(by_cue: dict) -> list[str]:
    """Markdown rows of the direction metrics per spectral-cue group: model / random / encoder head."""
    metrics = {"doa_accuracy_20deg": "DoA acc@20 (%)", "front_back_confusion_rate": "front/back confusion (%)",
               "lateral_error_deg": "lateral error (deg)"}
    lines = ["| type | recordings | " + " | ".join(metrics.values()) + " |", "|---|---|" + "---|" * len(metrics)]
    for group, tables in by_cue.items():
        for question_type in tables["model"]:
            cells = [" / ".join(format_value(tables[name].get(question_type, {"metrics": {}})["metrics"].get(metric),
                                             1) for name in ("model", "random", "encoder_head"))
                     for metric in metrics]
            lines.append(f"| {question_type} | {group} | {' | '.join(cells)} |")
    return lines


def _yes_no_axis_table(by_axis: dict, first: str = "axes") -> list[str]:
    """Markdown rows of :func:`yes_no_by_axis` (or another split of the same rows, its row names under the
    column ``first``): model, random, constant and encoder head, per type and row."""
    lines = [f"| type | {first} | questions | yes (%) | model bal. acc. | model acc. | model answered yes (%) "
             "| random bal. acc. | constant bal. acc. | constant acc. | head n | head bal. acc. | head acc. "
             "| p vs head |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for question_type, rows in by_axis.items():
        for name, row in rows.items():
            axes = (f"all: {', '.join(row['axes'])}" if name == "all" else
                    name if first == "axes" else f"{name} ({', '.join(row['axes'])})")
            head, paired = row["encoder_head"] or {}, row["paired_vs_encoder_head"] or {}
            cells = [format_value(v) for v in (
                row["yes_share"], row["model"]["balanced_accuracy"], row["model"]["accuracy"],
                row["model"].get("answered_yes"),
                (row["random"] or {}).get("balanced_accuracy"), row["constant"]["balanced_accuracy"],
                row["constant"]["accuracy"])]
            cells += [str(head.get("questions", 0)), format_value(head.get("balanced_accuracy")),
                      format_value(head.get("accuracy")),
                      f"{paired['p_value']:.3g}" if paired else "n/a"]
            lines.append(f"| {question_type} | {axes} | {row['questions']} | {' | '.join(cells)} |")
    return lines


def plot_scores(report: dict, path: Path) -> None:
    """Bar chart of each type's primary metric: model, random and (where it answers) the encoder head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = list(report["model"])
    metric = [PRIMARY_METRIC[report["model"][t]["format"]] for t in types]
    model = [report["model"][t]["metrics"][m] for t, m in zip(types, metric)]
    random = [report["random"][t]["metrics"][m] for t, m in zip(types, metric)]
    head = [report["encoder_head"].get(t, {"metrics": {}})["metrics"].get(m, np.nan) for t, m in zip(types, metric)]
    x = np.arange(len(types))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(types) + 2), 3.5))
    ax.bar(x - 0.27, np.nan_to_num(model), 0.27, label="model")
    ax.bar(x, np.nan_to_num(random), 0.27, label="random")
    ax.bar(x + 0.27, np.nan_to_num(head), 0.27, label="encoder head")
    ax.set_xticks(x, [f"{t}\n{m}" for t, m in zip(types, metric)], fontsize=7)
    ax.set_ylabel("percent")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
