"""How good is the heard-sources line an encoder writes? Scored against the scenes' true sources.

The audio-LLM's yes/no answers (E, negative) can only be as right as the line it reads
(:mod:`spatial_alm.models.heard_sources`). For an encoder with class-wise heads, over a dataset's
scenes, at each threshold: recall (share of true sources whose class is heard), false sources per
scene (heard classes that are not in the scene) and, for heard true sources, the share on the right
side (left/right: sign of the azimuth; front/back: |azimuth| < 90 deg; above/below: sign of the
elevation), the share within 20 deg of the true direction (great circle, as type B's DoA accuracy) and of
its lateral angle (the angle to the median plane, all a sphere head can tell), the distance's (binned
to 0.5 m as in the line) mean absolute error and its correlation with the truth, and the share of
two-source scenes whose two heard distances order the sources correctly (ties count half).

    python experiments/diagnostics/heard_line_quality.py --encoder out/encoder_tiny_heads/model --data out/tiny_test
"""

import argparse

import numpy as np
import torch
from torch.utils.data import DataLoader

from spatial_alm.coordinates import cartesian_to_spherical, great_circle_deg
from spatial_alm.data.dataset import SpatialSceneDataset
from spatial_alm.models.encoder import SpatialEncoderModel
from spatial_alm.qa.templates import bin_distance_m, canonical_label


def collate(items: list[dict]) -> dict:
    return {"audio": torch.stack([it["audio"] for it in items]), "scenes": items}


@torch.no_grad()
def class_outputs(encoder: SpatialEncoderModel, dataset: SpatialSceneDataset, batch_size: int):
    """Per scene: class probabilities (K,), azimuth and elevation (K,) degrees, distance (K,) metres, and the
    scene's item (true sources)."""
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        prediction = encoder.predict(batch["audio"])
        azimuth, elevation, _ = cartesian_to_spherical(prediction.class_directions.double())
        for b, scene in enumerate(batch["scenes"]):
            yield (prediction.class_probs[b].numpy(), azimuth[b].numpy(), elevation[b].numpy(),
                   prediction.class_distances[b].numpy(), scene)


def lateral_deg(azimuth_deg: float, elevation_deg: float) -> float:
    """Lateral angle (degrees, -90..90, positive left): the angle between the direction and the median plane."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return float(np.degrees(np.arcsin(np.clip(np.sin(az) * np.cos(el), -1.0, 1.0))))


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
    present_probs, absent_probs, pairs = [], [], []  # pairs: (threshold-free) per true source
    scenes = 0
    for probs, azimuth, elevation, distance, scene in class_outputs(encoder, SpatialSceneDataset(args.data),
                                                                     args.batch_size):
        scenes += 1
        n = scene["num_sources"]
        truth = {canonical_label(label): k for k, label in enumerate(scene["labels"][:n])}
        absent_probs += [probs[c] for c, name in enumerate(names) if name not in truth]
        for name, k in truth.items():
            c = names.index(name)
            true_az, true_el = float(scene["azimuth_deg"][k]), float(scene["elevation_deg"][k])
            present_probs.append(probs[c])
            pairs.append({"scene": scenes, "prob": probs[c], "n": n,
                          "left_right": (azimuth[c] > 0) == (true_az > 0),
                          "front_back": (abs(azimuth[c]) < 90) == (abs(true_az) < 90),
                          "above_below": (elevation[c] > 0) == (true_el > 0),
                          "direction_20": float(great_circle_deg(azimuth[c], elevation[c], true_az, true_el)) <= 20,
                          "lateral_20": abs(lateral_deg(azimuth[c], elevation[c])
                                            - lateral_deg(true_az, true_el)) <= 20,
                          "distance": bin_distance_m(float(distance[c])),
                          "true_distance": float(scene["distance_m"][k])})
    present, absent = np.array(present_probs), np.array(absent_probs)
    print(f"{scenes} scenes, {len(present)} true sources, {len(names)} classes")
    for threshold in thresholds:
        heard = [p for p in pairs if p["prob"] >= threshold]
        sides = ", ".join(f"{axis} {100 * np.mean([p[axis] for p in heard]):.1f} %"
                          for axis in ("left_right", "front_back", "above_below"))
        within = ", ".join(f"{name} {100 * np.mean([p[key] for p in heard]):.1f} %"
                           for name, key in (("direction", "direction_20"), ("lateral angle", "lateral_20")))
        predicted = np.array([p["distance"] for p in heard])
        true = np.array([p["true_distance"] for p in heard])
        by_scene = {}
        for p in heard:
            if p["n"] == 2:
                by_scene.setdefault(p["scene"], []).append(p)
        orders = [0.5 if a["distance"] == b["distance"] else
                  float((a["distance"] < b["distance"]) == (a["true_distance"] < b["true_distance"]))
                  for a, b in (v for v in by_scene.values() if len(v) == 2)]
        print(f"threshold {threshold}: recall {100 * np.mean(present >= threshold):.1f} %, false sources per scene "
              f"{np.sum(absent >= threshold) / scenes:.2f}; heard sources on the right side: {sides}; within 20 deg: "
              f"{within}; distance "
              f"MAE {np.mean(np.abs(predicted - true)):.2f} m (corr {np.corrcoef(predicted, true)[0, 1]:.2f}); "
              f"two heard sources in distance order: {100 * np.mean(orders):.1f} % of {len(orders)} scenes")


if __name__ == "__main__":
    main()
