"""Where an encoder puts the primary source: the share answered in front against the share that is.

    python experiments/diagnostics/answered_in_front.py REPORT [REPORT ...]

For every ``spatial-alm evaluate-encoder`` report folder (its ``predictions.csv``) one line: the scenes, the
share of primary sources in front (|azimuth| < 90 deg), the share the encoder answered in front, the share of
frontal sources answered in front and of rear ones (|azimuth| >= 90) answered behind. A head whose colouring
common to all directions differs from the training heads' (the KU100's diffuse-field equalisation against raw
CIPIC measurements, results README "Ear colouring") shows as answers leaning to one half.
"""

import argparse
import csv
from pathlib import Path


def answered_in_front(rows: list[dict]) -> str:
    """The line's figures for ``predictions.csv`` rows (true_azimuth_deg, encoder_azimuth_deg)."""
    front = [abs(float(r["true_azimuth_deg"])) < 90 for r in rows]
    if all(front) or not any(front):
        raise SystemExit(f"{len(rows)} scenes, all {'in front' if any(front) else 'behind'}: no half to compare")
    said_front = [abs(float(r["encoder_azimuth_deg"])) < 90 for r in rows]

    def right(side: bool) -> float:
        return sum(s == side for f, s in zip(front, said_front) if f == side) / front.count(side)

    return (f"{len(rows)} scenes, in front {100 * sum(front) / len(rows):.1f} %, answered in front "
            f"{100 * sum(said_front) / len(rows):.1f} %; frontal answered in front {100 * right(True):.1f} %, "
            f"rear answered behind {100 * right(False):.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="evaluate-encoder report folders (predictions.csv)")
    args = parser.parse_args()
    for report in args.reports:
        path = report / "predictions.csv"
        if not path.is_file():
            raise SystemExit(f"{path} not found: a report folder of `spatial-alm evaluate-encoder --data`")
        with open(path, newline="") as f:
            print(f"{report}: {answered_in_front(list(csv.DictReader(f)))}")


if __name__ == "__main__":
    main()
