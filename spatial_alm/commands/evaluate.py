"""Evaluate an audio-LLM on a dataset's questions (or real recordings): BAT's per-type table beside baselines.

Every question (or only those of --types; or --max-questions of them drawn with --seed) is answered by
greedy decoding; the answer parser turns each answer into a prediction using the dataset's class names.
Scores per type: detection mAP (A, C), DoA accuracy at 20 degrees and DER at 0.5 m (B, D), yes/no
accuracy with direction and distance relations (E), and count, elevation, room, negative and
description scores.
Unparseable answers count as wrong and are reported per type. The random row answers each
question with a random valid answer in its format. The encoder-head row answers from the model's own
encoder heads where they can (A-D, count, elevation; with a class-direction head also E and
negative, from the named classes' direction vectors, decoded as the heard line decodes them, and
distances); B, D, E and negative are also compared with it
question by question (exact McNemar test). Yes/no types get balanced accuracy (50 for any constant
answer) and the share answered yes beside accuracy, also per axis (left/right, front/back, above/below,
distance) beside random, the better constant answer (with its plain accuracy: what the split gives a
constant) and the encoder head; every yes/no number names the axes it covers. For a model whose prompt
carries the encoder's heard-sources line, yes/no questions are also split by whether the encoder hears
(above the line's threshold) every class the question names (each record keeps the line it read:
heard_line; an E question's line lists both classes it names, on opposite sides of a side relation's
axis, as the question presupposes), and negative probes
about a class that is in the scene (their answer is its side alone; a probe about an absent class tests
detection) are scored per axis apart. Questions about an axis
the scene's receiver cannot resolve (a rigid-sphere head: front/back, above/below; datasets made with
qa.unresolvable_axes: ask) are reported apart, as not audible for this receiver. The dataset must be at
the model's sample rate and channel count (those its encoder was trained on); another rate is refused,
not resampled.

Direction answers (B, D) also get the lateral (front/back-folded) accuracy at 20 degrees and mean
error, and the front/back confusion rate, as in `evaluate-encoder`. Elevation answers (model, random,
encoder head) are also set against the best constant answer (the true elevations' median), question by
question with a Wilcoxon signed-rank test, as in `evaluate-encoder`: the random row guesses over
-90..90 degrees, so beating it does not show that the answers follow the audio.

Real recordings (--recordings FOLDER instead of --data; exactly one of them): audio files of any format
and sample rate with a labels CSV (default FOLDER/labels.csv; columns file, azimuth_deg, elevation_deg
required, distance_m and label optional; channel 0 = left ear), e.g. written by `spatial-alm dataset
from-sofa`. Every recording (or --max-questions of them, drawn with --seed) is asked ONE type-B
question ("where is the sound?"), its wording drawn with --seed from the QA generator's B templates;
the target is the labelled direction. Window, as `evaluate-encoder --recordings`: each file is
resampled to the model's rate; a longer file is cut to its CENTRE WINDOW of the encoder's longest
input ((max_frames - 1) hops, about its training clip length), a shorter one zero-padded on both
sides. The files must have the encoder's channel count. Same scoring, random and encoder-head rows and
McNemar test as for a dataset's B questions; DER covers the files whose distance is labelled.

Writes OUT/report.json (tables plus every question, answer and parse), OUT/report.md, OUT/scores.png.

Examples:
    spatial-alm evaluate --model out/llm_tiny/model --data out/tiny_test --out out/llm_tiny/eval \\
        --max-questions 500
    spatial-alm evaluate --model out/llm_tiny/model --data out/tiny_test1k --types E negative \\
        --out out/llm_tiny/eval_yes_no
    spatial-alm evaluate --model out/llm_tiny/model --recordings out/real_kemar --out out/llm_tiny/eval_real
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spatial_alm.commands import (
    require_dataset,
    require_model_dir,
    require_recordings,
    require_writable_dir,
    resolve_device,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True,
                        help="audio-LLM directory (the model/ folder of `spatial-alm finetune`)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="dataset folder written by `spatial-alm simulate`")
    source.add_argument("--recordings", type=Path,
                        help="folder of real recordings with a labels CSV (see above; e.g. `dataset from-sofa`): "
                             "each asked one type-B question, heard through its centre window")
    parser.add_argument("--labels", type=Path, default=None,
                        help="labels CSV of --recordings (default: RECORDINGS/labels.csv)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--max-questions", type=int, default=None, metavar="N",
                        help="answer N questions (with --recordings: N recordings) drawn at random (seeded) "
                             "instead of all")
    parser.add_argument("--types", nargs="+", default=None, metavar="TYPE",
                        help="answer only questions of these types (e.g. `--types E negative` for the yes/no "
                             "types: a tighter E figure on more scenes in the same time); default: all; not with "
                             "--recordings")
    parser.add_argument("--batch-size", type=int, default=8, help="questions generated together (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest answer in tokens (default 48)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the question draw, the random answers and (--recordings) the B templates")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")


def run(args: argparse.Namespace) -> int:
    require_model_dir(args.model, "--model", "audio_llm.json", "`spatial-alm finetune`")
    if args.data is not None:
        require_dataset(args.data)
        if args.labels is not None:
            raise ValueError(f"--labels {args.labels}: only with --recordings (a dataset folder carries its labels)")
    else:
        if args.types is not None:
            raise ValueError(f"--types {' '.join(args.types)}: only with --data (a recording is asked one type-B "
                             "question)")
        require_recordings(args.recordings)
    for option, value in (("--max-questions", args.max_questions), ("--batch-size", args.batch_size),
                          ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise ValueError(f"{option} {value}; allowed: >= 1")
    device = resolve_device(args.device)
    require_writable_dir(args.out)

    from spatial_alm.evaluation.qa_report import evaluate_qa, evaluate_qa_on_recordings, markdown_report

    options = dict(max_questions=args.max_questions, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                   seed=args.seed, device=device)
    if args.data is not None:
        report = evaluate_qa(args.model, args.data, args.out, question_types=args.types, **options)
    else:
        report = evaluate_qa_on_recordings(args.model, args.recordings, args.out, labels_csv=args.labels, **options)
    print(markdown_report(report))
    return 0
