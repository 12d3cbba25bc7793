"""The end-to-end report of a quickstart run: dataset, encoder beside the baseline, audio-LLM per type.

:func:`write_run_report` reads what the earlier stages wrote (the datasets, ``encoder_eval/report.json``
and ``qa_eval/report.json``) and writes into one self-contained folder:

- ``report.md``: what ran and how long each stage took; a dataset summary (scenes, classes, rooms,
  RT60, directions); encoder metrics beside the classical baseline and chance, overall and in the
  reverberant band; the audio-LLM's per-type table beside the random and encoder-head rows; example
  questions with the model's answer and the truth;
- ``summary.json``: the headline numbers (the ones printed at the end of ``spatial-alm quickstart``);
- ``dataset.png`` (class counts, RT60, source azimuth and room volume histograms) and copies of
  ``polar_error.png``, ``azimuth_scatter.png``, ``error_histogram.png`` (encoder vs baseline) and
  ``qa_scores.png`` (per-type model vs random vs encoder head).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import yaml

from spatial_alm.data import dataset_info, scene_table
from spatial_alm.evaluation.encoder_report import RT60_BANDS_S
from spatial_alm.evaluation.qa_report import PRIMARY_METRIC, format_value

ENCODER_PLOTS = ("polar_error.png", "azimuth_scatter.png", "error_histogram.png")
LOCALISATION_KEYS = (("doa_accuracy_20deg", "DoA accuracy at 20 deg (%)"),
                     ("mean_angular_error_deg", "mean angular error (deg)"),
                     ("lateral_error_deg", "lateral (front/back-folded) error (deg)"),
                     ("lateral_accuracy_20deg", "lateral accuracy at 20 deg (%)"))


def _fmt(value) -> str:
    return format_value(value, digits=1)


def _range(values: np.ndarray, unit: str, digits: int = 1) -> str:
    values = values[np.isfinite(values)]
    return f"{values.min():.{digits}f} - {values.max():.{digits}f} {unit}" if values.size else "n/a"


def dataset_summary(data_dir: Path) -> dict:
    """Counts and ranges of a dataset's scenes (from its index and flat per-scene arrays)."""
    info, table = dataset_info(data_dir), scene_table(data_dir)
    volume = np.prod(table["room_dim_m"], axis=1)
    return {"info": info, "volume_m3": volume, "rt60_s": table["rt60_s"], "snr_db": table["snr_db"],
            "azimuth_deg": table["source_azimuth_deg"].ravel(), "elevation_deg": table["source_elevation_deg"].ravel(),
            "distance_m": table["source_distance_m"].ravel()}


def _dataset_section(train: dict, test: dict) -> list[str]:
    lines = ["## Dataset", "", "| | train | test |", "|---|---|---|"]
    rows = [
        ("scenes (seed)", lambda d: f"{d['info']['num_scenes']} (seed {d['info']['seed']})"),
        ("audio", lambda d: f"{d['info']['num_channels']} ch, {d['info']['fs_hz']} Hz, {d['info']['duration_s']:g} s"),
        ("receiver", lambda d: f"`{d['info']['receiver']}`"),
        ("sources per scene", lambda d: ", ".join(f"{k}: {v}" for k, v in d["info"]["num_sources_counts"].items())),
        ("classes", lambda d: str(len(d["info"]["class_counts"]))),
        ("room volume", lambda d: _range(d["volume_m3"], "m^3", 0)),
        ("RT60", lambda d: _range(d["rt60_s"], "s", 2)),
        ("SNR", lambda d: _range(d["snr_db"], "dB")),
        ("source azimuth", lambda d: _range(d["azimuth_deg"], "deg", 0)),
        ("source elevation", lambda d: _range(d["elevation_deg"], "deg", 0)),
        ("source distance", lambda d: _range(d["distance_m"], "m", 2)),
        ("QA pairs", lambda d: str(d["info"]["num_qa"])),
    ]
    lines += [f"| {name} | {fn(train)} | {fn(test)} |" for name, fn in rows]
    classes = ", ".join(f"{name} {count}" for name, count in train["info"]["class_counts"].items())
    lines += ["", f"Training sources per class: {classes}.", "", "![dataset](dataset.png)", ""]
    return lines


def _encoder_section(encoder: dict) -> tuple[list[str], dict]:
    localisation = encoder["localisation"]
    methods = list(localisation)
    most_reverberant = f"rt60 {RT60_BANDS_S[-1][0]:g}-"  # band labels as encoder_report._by_band writes them
    reverberant = next((band for band in localisation["encoder"] if band.startswith(most_reverberant)), None)
    lines = ["## Encoder beside the classical baseline", "",
             f"{encoder['num_scenes']} held-out scenes; the encoder predicts the primary (loudest) source. "
             "Baselines: " + ", ".join(f"`{m}`" for m in methods[1:]) + " (on the same audio).", "",
             "| metric | " + " | ".join(methods) + " | chance |", "|---|" + "---|" * (len(methods) + 1)]
    for key, label in LOCALISATION_KEYS:
        values = [_fmt(localisation[m]["all"].get(key)) for m in methods]  # .get: reports of older versions
        lines.append(f"| {label} | " + " | ".join(values) + f" | {_fmt(encoder['chance'].get(key))} |")
    if reverberant is not None:
        for key, label in LOCALISATION_KEYS:
            values = [_fmt(localisation[m].get(reverberant, {}).get(key)) for m in methods]
            lines.append(f"| {label}, {reverberant} | " + " | ".join(values) + " | |")
    lines += [f"| detection mAP, classes with a positive (%) | {_fmt(encoder['detection_map'])} |"
              + " — |" * (len(methods) - 1) + f" {_fmt(encoder['chance']['detection_map'])} |",
              "| detection mAP, all classes, none = AP 0 as BAT (%) | "
              f"{_fmt(encoder.get('detection_map_all_classes'))} |"
              + " — |" * (len(methods) - 1) + f" {_fmt(encoder['chance'].get('detection_map_all_classes'))} |",
              f"| distance error rate, 0.5 m (%) | {_fmt(encoder['distance_error_rate'])} |"
              + " — |" * (len(methods) - 1) + f" {_fmt(encoder['chance']['distance_error_rate'])} |", "",
              "Lateral error folds front and back together: a binaural baseline (interaural delay) cannot tell them "
              "apart, and a spherical head gives the encoder almost no cue for it either.", "",
              "![polar error](polar_error.png) ![azimuth scatter](azimuth_scatter.png)", ""]
    headline = {"detection_map": encoder["detection_map"],
                "detection_map_all_classes": encoder.get("detection_map_all_classes"),  # .get: older reports
                "distance_error_rate": encoder["distance_error_rate"],
                **{m: localisation[m]["all"] for m in methods}, "chance": encoder["chance"]}
    return lines, headline


def _qa_section(qa: dict) -> tuple[list[str], dict]:
    lines = ["## Audio-LLM, per question type", "",
             f"{qa['num_questions']} questions drawn from the held-out scenes, greedy decoding; unparseable answers "
             "count as wrong. Random: a random valid answer in the type's format. Encoder head: the encoder's own "
             "class / direction / distance heads where they can answer (primary source).", "",
             "| type | questions | unparseable | metric | model | random | encoder head |",
             "|---|---:|---:|---|---:|---:|---:|"]
    headline = {}
    for question_type, row in qa["model"].items():
        head = qa["encoder_head"].get(question_type, {"metrics": {}})["metrics"]
        for k, (metric, value) in enumerate(row["metrics"].items()):
            lead = f"| {question_type} | {row['total']} | {row['unparseable']} " if k == 0 else "| | | "
            lines.append(f"{lead}| {metric} | {_fmt(value)} | {_fmt(qa['random'][question_type]['metrics'][metric])}"
                         f" | {_fmt(head.get(metric))} |")
        metric = PRIMARY_METRIC[row["format"]]
        headline[question_type] = {"metric": metric, "model": row["metrics"][metric],
                                   "random": qa["random"][question_type]["metrics"][metric],
                                   "encoder_head": head.get(metric), "questions": row["total"]}
    lines += ["", "mAP and accuracies in percent (map: over the classes with a positive among the questions, "
                  "not BAT's mean over all classes); DER: distance answers more than 0.5 m off (percent, lower is "
                  "better); yes/no accuracy also per axis asked about.", "", "![scores](qa_scores.png)", ""]
    return lines, headline


def _examples(qa: dict, count: int, seed: int) -> list[str]:
    """Up to ``count`` answered questions, one type after another, drawn with ``seed``."""
    if count == 0:
        return []
    rng = np.random.default_rng(seed)
    by_type: dict[str, list[dict]] = {}
    for record in qa["answers"]:
        by_type.setdefault(record["question_type"], []).append(record)
    queues = {t: [records[i] for i in rng.permutation(len(records))] for t, records in sorted(by_type.items())}
    chosen = []
    while len(chosen) < count and any(queues.values()):
        for queue in queues.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    lines = ["## Example answers", "", "| type | question | model | truth |", "|---|---|---|---|"]
    for r in chosen:
        cells = [r["question_type"], r["question"], r["generated"] or "(empty)", r["answer"]]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return lines + [""]


def plot_dataset(train: dict, path: Path) -> None:
    """Class counts, RT60, source azimuth and room volume histograms of the training scenes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    counts = Counter(train["info"]["class_counts"])
    axes[0].barh(list(counts), list(counts.values()))
    axes[0].set(title="sources per class", xlabel="sources")
    axes[0].tick_params(axis="y", labelsize=7)
    for ax, key, title, unit in ((axes[1], "rt60_s", "RT60", "s"), (axes[2], "azimuth_deg", "source azimuth", "deg"),
                                 (axes[3], "volume_m3", "room volume", "m^3")):
        values = train[key][np.isfinite(train[key])]
        ax.hist(values, bins=36 if key == "azimuth_deg" else 20)
        ax.set(title=title, xlabel=unit, ylabel="count")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _machine() -> str:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {device}; "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; Python {platform.python_version()}")


def write_run_report(config, paths: dict[str, Path], stages: dict, out_dir: Path) -> dict:
    """Write ``report.md``, ``summary.json`` and the plots of a quickstart run into ``out_dir``.

    ``config``: the :class:`~spatial_alm.quickstart.QuickstartConfig`; ``paths``: the stage folders
    (``train``, ``test``, ``encoder_eval``, ``qa_eval``); ``stages``: per stage its ``wall_time_s``.
    Returns the summary (headline numbers, wall times).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test = dataset_summary(paths["train"]), dataset_summary(paths["test"])
    encoder = json.loads((paths["encoder_eval"] / "report.json").read_text())
    qa = json.loads((paths["qa_eval"] / "report.json").read_text())
    plot_dataset(train, out_dir / "dataset.png")
    for name in ENCODER_PLOTS:
        shutil.copyfile(paths["encoder_eval"] / name, out_dir / name)
    shutil.copyfile(paths["qa_eval"] / "scores.png", out_dir / "qa_scores.png")

    wall = {name: record["wall_time_s"] for name, record in stages.items() if record.get("done")}
    encoder_lines, encoder_headline = _encoder_section(encoder)
    qa_lines, qa_headline = _qa_section(qa)
    lines = ["# spatial_alm quickstart report", "",
             *([config.description, ""] if config.description else []),
             f"Machine: {_machine()}.", "",
             "Stage wall times: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in wall.items())
             + f" (total {sum(wall.values()) / 60:.1f} min, the report excluded).", "",
             "Configs: recipe `" + Path(config.recipe).name + "`, encoder `" + Path(config.encoder_config).name
             + "`, LLM `" + Path(config.llm_config).name + "`, with the overrides below.", "",
             "```yaml", yaml.safe_dump({k: v for k, v in config.to_dict().items() if k.endswith("overrides")},
                                       sort_keys=False, default_flow_style=None).rstrip(), "```", "",
             *_dataset_section(train, test), *encoder_lines, *qa_lines,
             *_examples(qa, config.num_examples, config.seed)]
    (out_dir / "report.md").write_text("\n".join(lines))
    summary = {"encoder": encoder_headline, "audio_llm": qa_headline, "wall_time_s": wall,
               "train_scenes": train["info"]["num_scenes"], "test_scenes": test["info"]["num_scenes"]}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def headline_lines(summary: dict) -> list[str]:
    """The few numbers printed at the end of a quickstart run."""
    encoder = summary["encoder"]
    baselines = [name for name in encoder if name not in ("encoder", "chance", "detection_map",
                                                          "detection_map_all_classes", "distance_error_rate")]
    lines = [f"encoder: DoA accuracy at 20 deg {_fmt(encoder['encoder']['doa_accuracy_20deg'])} % "
             f"(chance {_fmt(encoder['chance']['doa_accuracy_20deg'])} %), lateral error "
             f"{_fmt(encoder['encoder']['lateral_error_deg'])} deg, detection mAP {_fmt(encoder['detection_map'])} % "
             f"(classes with a positive; all classes {_fmt(encoder.get('detection_map_all_classes'))} %)"]
    for name in baselines:
        lines.append(f"baseline {name}: DoA accuracy at 20 deg {_fmt(encoder[name]['doa_accuracy_20deg'])} %, "
                     f"lateral error {_fmt(encoder[name]['lateral_error_deg'])} deg")
    for question_type, row in summary["audio_llm"].items():
        lines.append(f"audio-LLM {question_type}: {row['metric']} {_fmt(row['model'])} "
                     f"(random {_fmt(row['random'])}, encoder head {_fmt(row['encoder_head'])})")
    return lines
