"""Evaluate a pretrained encoder on a dataset beside the classical DoA baselines; JSON, Markdown, plots.

The encoder predicts classes (multi-label), and one direction and distance: those of the scene's
primary (loudest) source, as it was trained (BAT's protocol). Baselines run on the same audio:
SRP-PHAT and MUSIC for microphone arrays, GCC-PHAT + Woodworth (lateral angle, front/back
ambiguous by construction) for heads. Every localisation metric is reported overall and per
reverberation band, and the lateral (front/back-folded) error is reported for all methods so that a
head's front/back confusions are visible rather than hidden. The encoder and each baseline are also
compared scene by scene (DoA within 20 degrees: exact McNemar test; lateral error: Wilcoxon
signed-rank test), overall and per band, and every method's prediction per scene is kept in
``predictions.csv`` for further analysis.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from spatial_alm.coordinates import great_circle_deg
from spatial_alm.data import DatasetReader, SpatialSceneDataset, read_index
from spatial_alm.evaluation import metrics
from spatial_alm.evaluation.baselines import BASELINES
from spatial_alm.models.encoder import SpatialEncoderModel
from spatial_alm.models.targets import primary_source
from spatial_alm.scenes import SceneRecipe
from spatial_alm.scenes.render import ArrayReceiver, load_receiver

RT60_BANDS_S = ((0.0, 0.4), (0.4, 0.7), (0.7, float("inf")))  # dry, medium, reverberant
ARRAY_BASELINES = ("srp_phat", "music")
HEAD_BASELINES = ("gcc_phat_woodworth",)


def _collate(items: list[dict]) -> dict:
    return {"audio": torch.stack([it["audio"] for it in items]), "scenes": items}


@torch.no_grad()
def predict(model: SpatialEncoderModel, dataset, batch_size: int = 32, progress: bool = True) -> dict:
    """Encoder predictions and truths (numpy arrays, one row per scene) over ``dataset``."""
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=_collate)
    vocab = {name: k for k, name in enumerate(model.class_names)}
    out = {key: [] for key in ("scores", "targets", "pred_az", "pred_el", "pred_dist",
                               "true_az", "true_el", "true_dist", "events")}
    for batch in tqdm(loader, desc="encoder", unit="batch", disable=not progress):
        prediction = model.predict(batch["audio"].to(device))
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
            out["events"].append([(lbl, float(a), float(e)) for lbl, a, e in
                                  zip(scene["labels"], scene["azimuth_deg"], scene["elevation_deg"]) if lbl])
    events = out.pop("events")
    arrays = {key: np.concatenate(value) for key, value in out.items()}
    arrays["events"] = events
    return arrays


def localisation_metrics(pred_az, pred_el, true_az, true_el) -> dict:
    """DoA accuracy at 20 degrees, mean angular error, mean lateral (front/back-folded) error and
    lateral accuracy at 20 degrees."""
    return {
        "doa_accuracy_20deg": metrics.doa_accuracy(pred_az, pred_el, true_az, true_el),
        "mean_angular_error_deg": metrics.mean_angular_error(pred_az, pred_el, true_az, true_el),
        "lateral_error_deg": metrics.lateral_error_deg(pred_az, pred_el, true_az, true_el),
        "lateral_accuracy_20deg": metrics.lateral_accuracy(pred_az, pred_el, true_az, true_el),
    }


def _by_band(rt60: np.ndarray, fn) -> dict:
    out = {}
    for lo, hi in RT60_BANDS_S:
        sel = (rt60 >= lo) & (rt60 < hi)
        if sel.any():
            out[f"rt60 {lo:g}-{hi:g} s ({int(sel.sum())} scenes)"] = fn(sel)
    return out


def run_baselines(dataset, receiver, names, fs_hz: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Predicted (azimuth, elevation) (N, 2) per baseline name for every scene of ``dataset``."""
    out = {}
    for name in names:
        preds = []
        for i in tqdm(range(len(dataset)), desc=name, unit="scene", disable=not progress):
            preds.append(BASELINES[name](dataset[i]["audio"].numpy(), receiver, fs_hz))
        out[name] = np.asarray(preds, dtype=np.float64)
    return out


def evaluate_encoder(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *,
                     baselines: list[str] | None = None, max_scenes: int | None = None,
                     batch_size: int = 32, progress: bool = True) -> dict:
    """Score the encoder saved in ``model_dir`` on the dataset ``data_dir``; write the report to ``out_dir``.

    ``baselines``: names from ``BASELINES`` (default: SRP-PHAT and MUSIC for arrays, GCC-PHAT +
    Woodworth for heads; [] for none). ``max_scenes``: evaluate the first N scenes only.
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
    receiver_arg = receiver.array if is_array else receiver.head

    pred = predict(model, dataset, batch_size, progress)
    reader = DatasetReader(data_dir)
    rt60 = np.array([reader.meta(i).rt60_s for i in range(len(pred["true_az"]))])
    truth = (pred["true_az"], pred["true_el"])
    rows = {"encoder": (pred["pred_az"], pred["pred_el"])}
    for name, values in run_baselines(dataset, receiver_arg, names, index.fs_hz, progress).items():
        rows[name] = (values[:, 0], values[:, 1])

    localisation = {}
    for name, (az, el) in rows.items():
        def band(sel, az=az, el=el):
            return localisation_metrics(az[sel], el[sel], truth[0][sel], truth[1][sel])

        localisation[name] = {"all": localisation_metrics(az, el, *truth), **_by_band(rt60, band)}
    correct = {name: metrics.doa_correct(az, el, *truth) for name, (az, el) in rows.items()}
    lateral = {name: metrics.lateral_errors_deg(az, el, *truth) for name, (az, el) in rows.items()}
    everything = np.ones(len(rt60), dtype=bool)
    paired, paired_lateral = {}, {}
    for name in names:
        def versus(sel, baseline=correct[name]):
            return metrics.mcnemar_exact(correct["encoder"][sel], baseline[sel])

        def versus_lateral(sel, baseline=lateral[name]):
            return metrics.wilcoxon_paired(lateral["encoder"][sel], baseline[sel])

        paired[name] = {"all": versus(everything), **_by_band(rt60, versus)}
        paired_lateral[name] = {"all": versus_lateral(everything), **_by_band(rt60, versus_lateral)}
    chance = _chance_row(pred, seed=0)
    report = {
        "model_dir": str(model_dir),
        "data_dir": str(data_dir),
        "num_scenes": int(len(pred["true_az"])),
        "receiver": index.receiver,
        "detection_map": metrics.detection_map(pred["scores"], pred["targets"], classes="present"),
        "detection_map_all_classes": metrics.detection_map(pred["scores"], pred["targets"], classes="all"),
        "distance_error_rate": metrics.distance_error_rate(pred["pred_dist"], pred["true_dist"]),
        # macro over the model's classes (and any other reference label), as DCASE over its class list
        "seld": metrics.seld_metrics(_predicted_events(pred, model.class_names), pred["events"], classes=list(
            dict.fromkeys([*model.class_names, *(e[0] for scene in pred["events"] for e in scene)]))),
        "localisation": localisation,
        "paired_doa_20deg": paired,
        "paired_lateral_error": paired_lateral,
        "chance": chance,
        "wall_time_s": time.perf_counter() - started,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_report(report))
    write_predictions(out_dir / "predictions.csv", pred, rt60, rows)
    plot_localisation(rows, truth, out_dir)
    return report


def write_predictions(path: Path, pred: dict, rt60: np.ndarray, rows: dict) -> None:
    """One CSV row per scene (dataset order): RT60 (s), number of sources, the primary source's true
    azimuth / elevation (deg) and distance (m), the encoder's distance, and each method's azimuth and
    elevation (deg)."""
    header = ["scene", "rt60_s", "num_sources", "true_azimuth_deg", "true_elevation_deg", "true_distance_m",
              "encoder_distance_m"] + [f"{name}_{key}_deg" for name in rows for key in ("azimuth", "elevation")]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(len(rt60)):
            writer.writerow([i, f"{rt60[i]:.3f}", len(pred["events"][i]), f"{pred['true_az'][i]:.2f}",
                             f"{pred['true_el'][i]:.2f}", f"{pred['true_dist'][i]:.2f}", f"{pred['pred_dist'][i]:.2f}"]
                            + [f"{values[i]:.2f}" for az, el in rows.values() for values in (az, el)])


def _predicted_events(pred: dict, class_names: list[str]) -> list[list[tuple]]:
    """Clip-level SELD events: the most probable class at the encoder's single predicted direction."""
    top = pred["scores"].argmax(1)
    return [[(class_names[k], float(a), float(e))] for k, a, e in zip(top, pred["pred_az"], pred["pred_el"])]


def _chance_row(pred: dict, seed: int) -> dict:
    """Random answers: uniform directions on the sphere (elevation within the data's range), random scores."""
    rng = np.random.default_rng(seed)
    n = len(pred["true_az"])
    el_lo, el_hi = float(pred["true_el"].min()), float(pred["true_el"].max())
    az = rng.uniform(-180, 180, n)
    el = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(el_lo)), np.sin(np.radians(el_hi)), n)))
    dist = rng.uniform(float(pred["true_dist"].min()), float(pred["true_dist"].max()), n)
    random_scores = rng.random(pred["scores"].shape)
    return {"detection_map": metrics.detection_map(random_scores, pred["targets"], classes="present"),
            "detection_map_all_classes": metrics.detection_map(random_scores, pred["targets"], classes="all"),
            "distance_error_rate": metrics.distance_error_rate(dist, pred["true_dist"]),
            **localisation_metrics(az, el, pred["true_az"], pred["true_el"])}


def markdown_report(report: dict) -> str:
    """The report as Markdown: headline metrics, then localisation per method and reverberation band."""
    lines = [f"# Encoder evaluation: {report['model_dir']}", "",
             f"Dataset `{report['data_dir']}`, {report['num_scenes']} scenes, receiver `{report['receiver']}`.", "",
             "| metric | encoder | chance |", "|---|---|---|",
             f"| detection mAP, classes with a positive (%) | {report['detection_map']:.1f} | "
             f"{report['chance']['detection_map']:.1f} |",
             f"| detection mAP, all classes, none = AP 0 as BAT (%) | {report['detection_map_all_classes']:.1f} | "
             f"{report['chance']['detection_map_all_classes']:.1f} |",
             f"| distance error rate, 0.5 m (%) | {report['distance_error_rate']:.1f} | "
             f"{report['chance']['distance_error_rate']:.1f} |"]
    enc = report["localisation"]["encoder"]["all"]
    for key, label in (("doa_accuracy_20deg", "DoA accuracy at 20 deg (%)"),
                       ("mean_angular_error_deg", "mean angular error (deg)"),
                       ("lateral_error_deg", "lateral (front/back-folded) error (deg)"),
                       ("lateral_accuracy_20deg", "lateral accuracy at 20 deg (%)")):
        lines.append(f"| {label} | {enc[key]:.1f} | {report['chance'][key]:.1f} |")
    seld = report["seld"]
    lines += ["", f"DCASE SELD (clip-level, one predicted event per scene; DCASE 2022-2023 counting): "
                  f"ER20 {seld['ER20']:.2f}; macro (per class, then the mean over {len(seld['classes'])} classes: "
                  "the model's and any other reference label, the DCASE default; a class without pairs at LE_CD "
                  "180): "
                  f"F20 {100 * seld['F20_macro']:.1f} %, LE_CD {seld['LE_CD_macro']:.1f} deg, "
                  f"LR_CD {100 * seld['LR_CD_macro']:.1f} %, SELD {seld['SELD_macro']:.3f}; micro (all events "
                  f"pooled): F20 {100 * seld['F20_micro']:.1f} %, LE_CD {seld['LE_CD_micro']:.1f} deg, "
                  f"LR_CD {100 * seld['LR_CD_micro']:.1f} %, SELD {seld['SELD_micro']:.3f}.", "",
              "## Localisation of the primary source, by method and reverberation", "",
              "| method | scenes | DoA acc@20 (%) | mean angular error (deg) | lateral error (deg) "
              "| lateral acc@20 (%) |",
              "|---|---|---|---|---|---|"]
    for name, bands in report["localisation"].items():
        for band, values in bands.items():
            lines.append(f"| {name} | {band} | {values['doa_accuracy_20deg']:.1f} | "
                         f"{values['mean_angular_error_deg']:.1f} | {values['lateral_error_deg']:.1f} | "
                         f"{values['lateral_accuracy_20deg']:.1f} |")
    if report["paired_doa_20deg"]:
        lines += ["", "## Encoder vs each baseline on the same scenes (DoA within 20 deg, exact McNemar test)", "",
                  "| baseline | scenes | only the encoder right | only the baseline right | p-value |",
                  "|---|---|---|---|---|"]
        for name, bands in report["paired_doa_20deg"].items():
            for band, test in bands.items():
                lines.append(f"| {name} | {band} | {test['a_only']} | {test['b_only']} | {test['p_value']:.2g} |")
        lines += ["", "Lateral error, scene by scene (Wilcoxon signed-rank test; negative difference: the encoder "
                      "errs less):", "", "| baseline | scenes | mean difference, encoder - baseline (deg) | p-value |",
                  "|---|---|---|---|"]
        for name, bands in report["paired_lateral_error"].items():
            for band, test in bands.items():
                lines.append(f"| {name} | {band} | {test['mean_difference']:+.1f} | {test['p_value']:.2g} |")
    lines += ["", "Plots: `azimuth_scatter.png` (predicted vs true azimuth), `error_histogram.png`, "
                  "`polar_error.png` (mean angular error by true azimuth). Per-scene predictions of every method: "
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

