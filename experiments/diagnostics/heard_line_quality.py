"""How good is the heard-sources line an encoder writes? Scored against the scenes' true sources.

The audio-LLM's yes/no answers (E, negative) can only be as right as the line it reads
(:mod:`spatial_alm.models.heard_sources`). For an encoder with class-wise heads, over a dataset's
scenes, at each threshold: recall (share of true sources whose class is heard), false sources per
scene (heard classes that are not in the scene) and, for heard true sources, the share on the right
side (left/right: sign of the azimuth; front/back: |azimuth| < 90 deg; above/below: sign of the
elevation), the share within 20 deg of the true direction (great circle, as type B's DoA accuracy) and of
its lateral angle (the angle to the median plane, all a sphere head can tell), the distance's (binned
to 0.5 m as in the line) mean absolute error and its correlation with the truth, the share of
two-source scenes with distances at least the QA generator's margin apart (0.5 m: those type E's
nearer/farther questions ask about) whose line lists the nearer source first ("nearest first"; also split
by the two sources' direct-to-reverberant gap, DRR_GAP_BINS_DB), and of
those with the two sources on opposite sides whose line puts them in the right left/right order (what
type E's left/right questions need). Each with the azimuths of the heard classes decoded each alone (argmax) and
jointly (:func:`spatial_alm.models.heard_sources.separated_azimuths`, what the audio-LLM reads).

    python experiments/diagnostics/heard_line_quality.py --encoder out/encoder_tiny_heads/model --data out/tiny_test
"""

import argparse

import numpy as np
import torch
from torch.utils.data import DataLoader

from spatial_alm.coordinates import great_circle_deg
from spatial_alm.data.dataset import SpatialSceneDataset
from spatial_alm.models.encoder import SpatialEncoderModel
from spatial_alm.models.heard_sources import heard_sources
from spatial_alm.qa.generator import DISTANCE_MARGIN_M, SIDE_MARGIN_DEG
from spatial_alm.qa.templates import canonical_label

# Bins of the two sources' direct-to-reverberant ratio difference, 20 log10(r_far / r_near) dB (the
# reverberant energy is the same for both in a diffuse field); listeners' DRR just-noticeable difference is
# 2-3 dB near 0 dB DRR and several times that at -10 dB (Larsen et al., JASA 124, 2008).
DRR_GAP_BINS_DB = ((0.0, 3.0), (3.0, 6.0), (6.0, np.inf))


def collate(items: list[dict]) -> dict:
    return {"audio": torch.stack([it["audio"] for it in items]), "scenes": items}


@torch.no_grad()
def predictions(encoder: SpatialEncoderModel, dataset: SpatialSceneDataset, batch_size: int):
    """Per batch: the encoder's :class:`~spatial_alm.models.encoder.Prediction` and the scenes' items."""
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        yield encoder.predict(batch["audio"]), batch["scenes"]


def lateral_deg(azimuth_deg: float, elevation_deg: float) -> float:
    """Lateral angle (degrees, -90..90, positive left): the angle between the direction and the median plane."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return float(np.degrees(np.arcsin(np.clip(np.sin(az) * np.cos(el), -1.0, 1.0))))


def off_the_median_plane(azimuth_deg: float) -> bool:
    """At least the QA generator's side margin from azimuth 0 and 180: a left/right question is asked."""
    return SIDE_MARGIN_DEG < abs(azimuth_deg) < 180.0 - SIDE_MARGIN_DEG


def score(scenes_and_lines) -> str:
    """One summary line for (scene item, heard sources) pairs."""
    heard_pairs, recalled, false_sources, orders, lateral_orders, true_count = [], [], 0, [], [], 0
    for scene, heard in scenes_and_lines:
        n = scene["num_sources"]
        truth = {canonical_label(label): k for k, label in enumerate(scene["labels"][:n])}
        true_count += len(truth)
        by_label = {source.label: source for source in heard}
        false_sources += sum(label not in truth for label in by_label)
        matched = []
        for label, k in truth.items():
            recalled.append(label in by_label)
            if label not in by_label:
                continue
            s = by_label[label]
            true_az, true_el = float(scene["azimuth_deg"][k]), float(scene["elevation_deg"][k])
            matched.append((s, true_az, float(scene["distance_m"][k])))
            heard_pairs.append({
                "left_right": (s.azimuth_deg > 0) == (true_az > 0),
                "front_back": (abs(s.azimuth_deg) < 90) == (abs(true_az) < 90),
                "above_below": (s.elevation_deg > 0) == (true_el > 0),
                "direction_20": float(great_circle_deg(s.azimuth_deg, s.elevation_deg, true_az, true_el)) <= 20,
                "lateral_20": abs(lateral_deg(s.azimuth_deg, s.elevation_deg) - lateral_deg(true_az, true_el)) <= 20,
                "distance": s.distance_m, "true_distance": float(scene["distance_m"][k])})
        if n == 2 and len(matched) == 2:
            (a, a_az, a_d), (b, b_az, b_d) = matched
            if abs(a_d - b_d) >= DISTANCE_MARGIN_M:
                orders.append((float((heard.index(a) < heard.index(b)) == (a_d < b_d)),
                               abs(20 * np.log10(a_d / b_d))))
            if off_the_median_plane(a_az) and off_the_median_plane(b_az) and (a_az > 0) != (b_az > 0):
                lateral_orders.append(float((np.sin(np.radians(a.azimuth_deg)) > np.sin(np.radians(b.azimuth_deg)))
                                            == (a_az > 0)))
    sides = ", ".join(f"{axis} {100 * np.mean([p[axis] for p in heard_pairs]):.1f} %"
                      for axis in ("left_right", "front_back", "above_below"))
    within = ", ".join(f"{name} {100 * np.mean([p[key] for p in heard_pairs]):.1f} %"
                       for name, key in (("direction", "direction_20"), ("lateral angle", "lateral_20")))
    predicted = np.array([p["distance"] for p in heard_pairs])
    true = np.array([p["true_distance"] for p in heard_pairs])
    scenes = len(scenes_and_lines)
    order_right, drr_gap_db = np.array(orders).reshape(-1, 2).T
    by_gap = ", ".join(f"{low:g}-{high:g} dB {100 * np.mean(order_right[inside]):.1f} % of {inside.sum()}"
                       for low, high in DRR_GAP_BINS_DB
                       if (inside := (drr_gap_db >= low) & (drr_gap_db < high)).any())
    return (f"recall {100 * np.mean(recalled):.1f} % of {true_count}, false sources per scene "
            f"{false_sources / scenes:.2f}; "
            f"heard sources on the right side: {sides}; within 20 deg: {within}; distance MAE "
            f"{np.mean(np.abs(predicted - true)):.2f} m (corr {np.corrcoef(predicted, true)[0, 1]:.2f}); two heard "
            f"sources >= {DISTANCE_MARGIN_M} m apart listed nearer first: {100 * np.mean(order_right):.1f} % of "
            f"{len(orders)} scenes (by their direct-to-reverberant gap: {by_gap}), on opposite sides in "
            f"left/right order: {100 * np.mean(lateral_orders):.1f} % of {len(lateral_orders)} scenes")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True, help="encoder model directory (with class-wise heads)")
    parser.add_argument("--data", required=True, help="dataset folder (held-out scenes)")
    parser.add_argument("--thresholds", default="0.3,0.5", help="comma-separated heard-sources thresholds")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    encoder = SpatialEncoderModel.from_pretrained(args.encoder).eval()
    if encoder.class_names is None or not encoder.encoder.config.class_direction_head:
        parser.error(f"--encoder {args.encoder}: no class-wise heads (pretrain with "
                     "encoder.class_direction_head: true)")
    names = [canonical_label(name) for name in encoder.class_names]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    outputs = list(predictions(encoder, SpatialSceneDataset(args.data), args.batch_size))
    print(f"{sum(len(scenes) for _, scenes in outputs)} scenes, {len(names)} classes")
    for threshold in thresholds:
        for decoding, azimuth_probs in (("each class alone (argmax)", False), ("jointly (separated)", True)):
            lines = [(scene, heard) for prediction, scenes in outputs for scene, heard in zip(scenes, heard_sources(
                prediction.class_probs, prediction.class_directions, prediction.class_distances, encoder.class_names,
                threshold, prediction.class_azimuth_probs if azimuth_probs else None))]
            print(f"threshold {threshold}, azimuths decoded {decoding}: {score(lines)}")


if __name__ == "__main__":
    main()
