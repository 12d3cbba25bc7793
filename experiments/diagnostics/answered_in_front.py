"""Where an encoder puts the primary source: the share answered in front against the share that is.

    python experiments/diagnostics/answered_in_front.py REPORT [REPORT ...]

For every ``spatial-alm evaluate-encoder`` report folder (its ``predictions.csv``) one line: the scenes, the
share of primary sources in front (|azimuth| < 90 deg), the share the encoder answered in front, the share of
frontal sources answered in front and of rear ones (|azimuth| >= 90) answered behind. A head whose colouring
common to all directions differs from the training heads' (the KU100's diffuse-field equalisation against raw
CIPIC measurements, results README "Ear colouring") shows as answers leaning to one half.
"""

import argparse
from pathlib import Path

import numpy as np

from spatial_alm.evaluation.encoder_report import read_predictions


def answered_in_front(true_azimuth_deg: np.ndarray, answered_azimuth_deg: np.ndarray) -> str:
    """The line's figures for the primary sources' true and answered azimuths (deg, one per scene)."""
    front, said_front = np.abs(true_azimuth_deg) < 90, np.abs(answered_azimuth_deg) < 90
    if front.all() or not front.any():
        raise SystemExit(f"{len(front)} scenes, all {'in front' if front.any() else 'behind'}: no half to compare")

    def right(side: bool) -> float:
        return float(np.mean(said_front[front == side] == side))

    return (f"{len(front)} scenes, in front {100 * front.mean():.1f} %, answered in front "
            f"{100 * said_front.mean():.1f} %; frontal answered in front {100 * right(True):.1f} %, "
            f"rear answered behind {100 * right(False):.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="evaluate-encoder report folders (predictions.csv)")
    args = parser.parse_args()
    for report in args.reports:
        try:
            truth, methods = read_predictions(report)
        except FileNotFoundError as error:
            raise SystemExit(str(error)) from None
        print(f"{report}: {answered_in_front(truth[:, 0], methods['encoder'][:, 0])}")


if __name__ == "__main__":
    main()
