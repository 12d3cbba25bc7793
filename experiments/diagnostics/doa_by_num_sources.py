"""Encoder vs SRP-PHAT localisation of the primary source, split by the number of sources in the scene.

For each group of test scenes with 1, 2, 3 ... sources: DoA accuracy at 20 deg (great circle) and
azimuth-only accuracy (|azimuth error| <= 20 deg, elevation ignored), for the encoder and for the
SRP-PHAT baseline of the encoder report; then the spread of the predicted elevations and their
correlation with the true ones (a head stuck at the prior predicts one elevation for every scene).
Array datasets only (SRP-PHAT needs the microphone positions).

    python experiments/diagnostics/doa_by_num_sources.py --checkpoint out/encoder_tetra_srp/model --data out/tetra_test
"""

import argparse

import numpy as np

from spatial_alm.data import SpatialSceneDataset
from spatial_alm.data.reader import scene_table
from spatial_alm.data.schema import read_index
from spatial_alm.evaluation import metrics
from spatial_alm.evaluation.encoder_report import predict, run_baselines
from spatial_alm.models.encoder import SpatialEncoderModel
from spatial_alm.scenes.recipe import SceneRecipe
from spatial_alm.scenes.render import ArrayReceiver, load_receiver


def azimuth_accuracy(pred_az: np.ndarray, true_az: np.ndarray) -> float:
    """Percentage of scenes whose azimuth error, wrapped to [-180, 180), is at most 20 degrees."""
    return 100.0 * float(np.mean(np.abs((pred_az - true_az + 180.0) % 360.0 - 180.0) <= 20.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="encoder directory (config.json + model.safetensors)")
    parser.add_argument("--data", required=True, help="held-out array dataset folder")
    args = parser.parse_args()

    dataset = SpatialSceneDataset(args.data)
    index = read_index(args.data)
    receiver = load_receiver(SceneRecipe.from_dict(index.recipe).receiver)
    if not isinstance(receiver, ArrayReceiver):
        raise SystemExit(f"{args.data}: receiver {index.receiver!r} is not a microphone array; SRP-PHAT needs one")
    pred = predict(SpatialEncoderModel.from_pretrained(args.checkpoint), dataset)
    srp = run_baselines(dataset, receiver.array, ["srp_phat"], index.fs_hz)["srp_phat"]  # (N, 2)
    num_sources = scene_table(args.data)["num_sources"].astype(int)
    truth = pred["true_az"], pred["true_el"]

    print("| sources | scenes | encoder DoA acc@20 / azimuth acc@20 (%) | SRP-PHAT DoA acc@20 / azimuth acc@20 (%) |")
    print("|---|---|---|---|")
    for n in sorted(set(num_sources.tolist())):
        sel = num_sources == n
        rows = []
        for az, el in ((pred["pred_az"], pred["pred_el"]), (srp[:, 0], srp[:, 1])):
            doa = metrics.doa_accuracy(az[sel], el[sel], truth[0][sel], truth[1][sel])
            rows.append(f"{doa:.1f} / {azimuth_accuracy(az[sel], truth[0][sel]):.1f}")
        print(f"| {n} | {int(sel.sum())} | {rows[0]} | {rows[1]} |")
    for name, el in (("encoder", pred["pred_el"]), ("SRP-PHAT", srp[:, 1])):
        print(f"{name} elevation: std {np.std(el):.1f} deg, correlation with the truth "
              f"{np.corrcoef(el, truth[1])[0, 1]:.2f}")


if __name__ == "__main__":
    main()
