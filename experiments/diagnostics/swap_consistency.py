"""Check channel swaps on real data: SRP-PHAT on each swapped clip against the moved label.

For the one-source scenes among the first ``--scenes`` of a rendered array dataset, every receiver
symmetry (training.channel_swap) is applied to the audio and the labels; SRP-PHAT (pyroomacoustics)
localises the swapped audio and the great-circle error to the moved label is summarised per swap.
A swap whose audio and labels disagreed would show a much larger error than the identity.

    python experiments/diagnostics/swap_consistency.py --data out/tetra_train --scenes 60
"""

import argparse

import numpy as np
import torch

from spatial_alm.coordinates import great_circle_deg
from spatial_alm.data import SpatialSceneDataset, dataset_info
from spatial_alm.data.schema import read_index
from spatial_alm.evaluation.baselines import array_doa
from spatial_alm.scenes.recipe import SceneRecipe
from spatial_alm.training.channel_swap import ChannelSwap, channel_positions, receiver_symmetries


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset folder of a microphone-array recipe")
    parser.add_argument("--scenes", type=int, default=60, help="scenes read (one-source ones are used)")
    args = parser.parse_args()
    receiver = SceneRecipe.from_dict(read_index(args.data).recipe).receiver
    if receiver.type != "array":
        raise SystemExit(f"{args.data}: receiver type {receiver.type!r}; SRP-PHAT needs a microphone array")
    fs, positions = dataset_info(args.data)["fs_hz"], channel_positions(receiver)
    dataset = SpatialSceneDataset(args.data)
    items = [item for item in (dataset[i] for i in range(min(args.scenes, len(dataset)))) if item["num_sources"] == 1]
    print(f"{len(items)} one-source scenes; swaps of the {receiver.array} array:")
    for symmetry in receiver_symmetries(positions):
        audio, scenes = ChannelSwap([symmetry])(torch.stack([item["audio"] for item in items]), items)
        estimates = np.array([array_doa(clip.numpy(), positions.numpy(), fs, "SRP")[0] for clip in audio])
        truth = np.array([[float(s["azimuth_deg"][0]), float(s["elevation_deg"][0])] for s in scenes])
        errors = great_circle_deg(estimates[:, 0], estimates[:, 1], truth[:, 0], truth[:, 1]).numpy()
        print(f"channels {symmetry.source_channel}: median SRP-PHAT error to the moved label "
              f"{np.median(errors):.1f} deg")


if __name__ == "__main__":
    main()
