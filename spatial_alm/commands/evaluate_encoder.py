"""Evaluate a pretrained encoder on a dataset beside the classical DoA baselines.

Writes OUT/report.json, OUT/report.md, OUT/predictions.csv (each scene's receiver and every method's direction) and
plots (predicted vs true azimuth, error histogram, polar error by direction). Metrics: detection mAP,
DoA accuracy at 20 degrees (great circle), mean angular error, lateral (front/back-folded) error,
distance error rate (0.5 m), DCASE SELD (clip-level), all beside a random-answer row, and
localisation per reverberation band and per band of the primary source's direct-to-reverberant ratio
(estimated from the room's size and RT60: below -6 dB, -6 to 0, at least 0), and per head where the
dataset was rendered through several (held-out CIPIC subjects, one per scene), for the encoder and the
baselines (SRP-PHAT and MUSIC for arrays, GCC-PHAT + Woodworth for heads), with scene-by-scene tests of
the encoder against each baseline (exact McNemar test on DoA within 20 degrees, Wilcoxon signed-rank test
on the lateral error). Every method also gets the elevation error and the front/back confusion rate
(share of sources at least 20 degrees from the frontal plane, i.e. in the horizontal plane from the
interaural axis, predicted in the wrong front/back half), and its elevation error is set against the
best constant answer (the true elevations' median) with a Wilcoxon signed-rank test: a method reads
elevation only where it beats it. The encoder's localisation is also given per class of the primary
source (a head's front/back and elevation cues lie at 2-8 kHz and above, which some classes lack).
An encoder with class-wise heads is also scored source by source: every labelled source from its own
class's direction vector (what a question naming the class reads), by the number of sources in the scene,
where two sources must keep their own directions, and by its direct sound's level (level in the mix - 20
log10 distance) against the loudest other source's, with the share of vectors that lie nearer the other
source's lateral angle than their own (a masked source drawn to the dominant one), and by its own
direct-to-reverberant ratio (a head's front/back colouring is the direct sound's); every pair of sources
on opposite sides of an axis, as E questions take them, by whether their vectors keep the order (both
halves right, swapped, or both in one half, and then whether on the louder source's side), beside the pairs
on one side, and whether their vectors take the primary head's half (one reading for the scene); those
sources are kept in OUT/class_wise_predictions.csv (experiments/diagnostics/compare_encoder_reports.py
--class-wise pairs two encoders on them).

Real recordings (--recordings FOLDER instead of --data): audio files of any format and sample rate with
a labels CSV (default FOLDER/labels.csv; columns file, azimuth_deg, elevation_deg required, distance_m
and label optional; channel 0 = left ear), e.g. written by `spatial-alm dataset from-sofa`. Each file
is resampled to the encoder's rate; a longer file is cut to its CENTRE WINDOW of the encoder's longest
input ((max_frames - 1) hops, about its training clip length; --window-s for a shorter one), a shorter
one zero-padded on both sides; the baselines see the same window (GCC-PHAT + Woodworth for 2 channels;
SRP-PHAT and MUSIC with --array NAME). Same metrics and paired tests; detection metrics (mAP, SELD) are
skipped, the distance error rate covers the files whose distance is labelled.

Other encoders (--compare NAME=DIR ...): scored on the same scenes or files as rows NAME, each with
the same paired tests against --checkpoint (e.g. an encoder trained on many heads against one trained
on a sphere).

Examples:
    spatial-alm evaluate-encoder --checkpoint out/encoder_tiny/model --data out/tiny_test --out out/eval_tiny
    spatial-alm dataset from-sofa --sofa ../shared/data/hrtf/mit_kemar_normal_pinna.sofa \\
        --clips ../shared/data/esc50 --out out/real_kemar --num-clips 40 --directions 20 --duration-s 2
    spatial-alm evaluate-encoder --checkpoint out/encoder_tiny/model --recordings out/real_kemar \\
        --out out/eval_real_kemar
    spatial-alm evaluate-encoder --checkpoint out/encoder_cipic/model --data out/cipic_test \\
        --compare sphere=out/encoder_tiny/model --out out/eval_cross_head
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spatial_alm.commands import require_dataset, require_model_dir, require_recordings, require_writable_dir
from spatial_alm.commands.choices import BASELINE_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="encoder directory (config.json + model.safetensors)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="dataset folder (held-out scenes)")
    source.add_argument("--recordings", type=Path,
                        help="folder of real recordings with a labels CSV (see above; e.g. `dataset from-sofa`)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="labels CSV of --recordings (default: RECORDINGS/labels.csv)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--baselines", nargs="*", choices=BASELINE_NAMES, default=None,
                        help="classical baselines to run (default: srp_phat music for arrays, "
                             "gcc_phat_woodworth for heads; give none to skip)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="NAME=DIR",
                        help="other encoders scored on the same audio as rows NAME, each with the paired tests "
                             "against --checkpoint (e.g. sphere=out/encoder_tiny/model)")
    parser.add_argument("--array", default=None,
                        help="--recordings only: the named microphone array that recorded them (array baselines)")
    parser.add_argument("--window-s", type=float, default=None,
                        help="--recordings only: seconds of each file's centre the encoder sees (default: its "
                             "longest input)")
    parser.add_argument("--max-scenes", type=int, default=None,
                        help="evaluate the first N scenes (or recordings) only")
    parser.add_argument("--batch-size", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    require_model_dir(args.checkpoint, "--checkpoint", "config.json", "`spatial-alm pretrain-encoder`")
    if args.data is not None:
        require_dataset(args.data)
        for option, value in (("--labels", args.labels), ("--array", args.array), ("--window-s", args.window_s)):
            if value is not None:
                raise ValueError(f"{option} {value}: only with --recordings (a dataset folder carries its labels "
                                 "and receiver)")
    else:
        require_recordings(args.recordings)
    for option, value in (("--max-scenes", args.max_scenes), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{option} {value}; allowed: >= 1")
    if args.window_s is not None and not args.window_s > 0:
        raise ValueError(f"--window-s {args.window_s}; allowed: > 0 seconds")
    compare = {}
    for item in args.compare:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--compare {item!r}; allowed: NAME=DIR, e.g. sphere=out/encoder_tiny/model")
        if name in compare:
            raise ValueError(f"--compare {item!r}: the name {name!r} is given twice; allowed: one folder per name")
        require_model_dir(Path(folder), f"--compare {name}", "config.json", "`spatial-alm pretrain-encoder`")
        compare[name] = Path(folder)
    require_writable_dir(args.out)

    from spatial_alm.evaluation.encoder_report import evaluate_encoder, evaluate_encoder_on_recordings

    if args.data is not None:
        evaluate_encoder(args.checkpoint, args.data, args.out, baselines=args.baselines, compare=compare,
                         max_scenes=args.max_scenes, batch_size=args.batch_size)
    else:
        evaluate_encoder_on_recordings(args.checkpoint, args.recordings, args.out, labels_csv=args.labels,
                                       baselines=args.baselines, compare=compare, array=args.array,
                                       window_s=args.window_s, max_files=args.max_scenes,
                                       batch_size=args.batch_size)
    print((args.out / "report.md").read_text())
    return 0
