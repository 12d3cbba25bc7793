"""Inspect, verify, index and listen to a dataset folder written by `spatial-alm simulate`.

  info PATH          counts of scenes, shards, classes, sources and question types, and the spectral
                     cues a head gives each source, per class (--json for all)
  check PATH         verify every shard (size, sha256, attributes, scene ranges, audio chunks);
                     prints the problems by file and exits with 1 if there are any
  index PATH         (re)write PATH/index.json from the shard files, e.g. after a SLURM array
  export-wav PATH    write chosen scenes as WAV files with a JSON sidecar (metadata and QA pairs)
  from-sofa          real binaural recordings with known directions: real clips (ESC-50 or a CSV-labelled
                     folder) convolved with the measured impulse responses of a SOFA file (HRIRs or room
                     BRIRs), one WAV per clip x direction + labels.csv (directions and each file's
                     spectral cues), for `evaluate-encoder --recordings`

Examples:
    spatial-alm dataset info out/tiny
    spatial-alm dataset check out/tiny
    spatial-alm dataset export-wav out/tiny --scenes 0 1 2 --out out/tiny_wav
    spatial-alm dataset from-sofa --sofa ../shared/data/hrtf/mit_kemar_normal_pinna.sofa \\
        --clips ../shared/data/esc50 --out out/kemar_esc50 --num-clips 40 --directions 20 \\
        --elevation-range -30 30 --fs-hz 16000 --duration-s 2 --seed 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spatial_alm.commands import require_writable_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="summary of a dataset")
    info.add_argument("path", type=Path, help="dataset folder (holds index.json)")
    info.add_argument("--json", action="store_true", help="print the full summary as JSON")
    check = actions.add_parser("check", help="verify every shard; exit code 1 on any problem")
    check.add_argument("path", type=Path, help="dataset folder (holds index.json)")
    check.add_argument("--skip-sha256", action="store_true",
                       help="do not hash the shard files (faster on large datasets)")
    index = actions.add_parser("index", help="(re)build index.json from the shard files")
    index.add_argument("path", type=Path, help="dataset folder (holds the shards)")
    export = actions.add_parser("export-wav", help="write scenes as WAV + JSON for listening")
    export.add_argument("path", type=Path, help="dataset folder (holds index.json)")
    export.add_argument("--scenes", type=int, nargs="+", required=True, metavar="I",
                        help="global scene indices to export")
    export.add_argument("--out", type=Path, required=True, help="folder for the WAV files")
    add_from_sofa_arguments(actions.add_parser(
        "from-sofa", help="real clips x measured binaural impulse responses (SOFA) -> labelled WAV recordings",
        description=FROM_SOFA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter))


FROM_SOFA_HELP = """Build a labelled set of real binaural recordings: real clips convolved with the measured
impulse responses of a SOFA file, one WAV per clip x direction.

Writes OUT/audio/*.wav (float32, 2 channels, channel 0 = left ear, --fs-hz), OUT/labels.csv (file, label,
azimuth_deg, elevation_deg, distance_m, front_back_cue_db, above_below_cue_db, source_clip, measurement;
directions in the listener frame: azimuth counter-clockwise, +90 = left; the cues: how much the head's
colouring of the clip changes between its direction and the mirror image across the frontal / horizontal
plane, in dB, as simulated scenes record them) and OUT/recordings.json (how it was made). Directions are drawn
(seeded, without replacement) from the file's measured grid; every clip is rendered at every direction.
The SOFA file's azimuth sign is checked against its interaural level and time differences; clockwise
labels are refused unless --azimuth-convention cw or auto. Deterministic: the same arguments and seed
give byte-identical files. Evaluate an encoder on the result with
`spatial-alm evaluate-encoder --checkpoint MODEL --recordings OUT --out REPORT`.

Example:
    spatial-alm dataset from-sofa --sofa ../shared/data/hrtf/FHK_HRIR_L2354.sofa \\
        --clips ../shared/data/esc50 --out out/ku100_esc50 --num-clips 40 --directions 20 \\
        --elevation-range -30 30 --fs-hz 16000 --duration-s 2 --seed 0
"""


def add_from_sofa_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sofa", type=Path, required=True,
                        help="SOFA file of measured binaural impulse responses (SimpleFreeFieldHRIR layout: "
                             "Data.IR (M, 2, N), SourcePosition; HRIRs or room BRIRs)")
    parser.add_argument("--clips", type=Path, required=True,
                        help="folder of real clips: ESC-50 layout (audio/ + esc50.csv or meta/esc50.csv), "
                             "or any folder with --clips-csv")
    parser.add_argument("--clips-csv", type=Path, default=None,
                        help="CSV labelling the clips in --clips (filename,label[,split]) instead of ESC-50's")
    parser.add_argument("--split", default=None,
                        help="use only this split of the clips (e.g. test; default: all clips)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    parser.add_argument("--num-clips", type=int, required=True, help="clips to draw (seeded, without replacement)")
    parser.add_argument("--directions", type=int, required=True,
                        help="measured directions to draw from the SOFA grid (seeded, without replacement)")
    parser.add_argument("--elevation-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                        help="draw only directions with elevation in [LO, HI] degrees")
    parser.add_argument("--fs-hz", type=int, default=16000,
                        help="output sample rate; clips and impulse responses are resampled (default 16000)")
    parser.add_argument("--duration-s", type=float, default=None,
                        help="clip length in seconds: energetic crop or zero-pad (default: whole clips)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--azimuth-convention", choices=("ccw", "cw", "auto"), default="ccw",
                        help="the SOFA file's azimuth labels: ccw (default; refused if the interaural cues say "
                             "clockwise), cw (negate them), auto (negate when the cues say clockwise, with a warning)")
    parser.add_argument("--equalisation", choices=("none", "diffuse_field"), default="none",
                        help="none (default: the impulse responses as measured) or diffuse_field (flatten the head's "
                             "diffuse-field response first, as receiver.equalisation does for simulated scenes)")


def run(args: argparse.Namespace) -> int:
    if args.action == "from-sofa":
        return run_from_sofa(args)
    if not args.path.is_dir():
        raise ValueError(f"{args.path}: " + ("no such folder" if not args.path.exists() else
                                             "a file; allowed: a dataset folder written by `spatial-alm simulate`"))

    from spatial_alm.data import INDEX_FILENAME, check_dataset, dataset_info, export_wav, read_index
    from spatial_alm.data.generate import build_index
    from spatial_alm.data.reader import all_metas, spectral_cue_summary
    from spatial_alm.scenes.recipe import QAConfig

    if args.action == "index":
        index = build_index(args.path)
        print(f"wrote {args.path / INDEX_FILENAME}: {index.num_scenes} scenes in "
              f"{index.num_shards} shards, {index.num_qa} QA pairs")
        return 0
    if args.action == "check":
        problems = check_dataset(args.path, verify_sha256=not args.skip_sha256)
        for problem in problems:
            print(problem)
        if problems:
            print(f"{args.path}: {len(problems)} problem(s)")
            return 1
        index = read_index(args.path)
        print(f"{args.path}: OK ({index.num_scenes} scenes in {index.num_shards} shards verified)")
        return 0
    if not (args.path / INDEX_FILENAME).is_file():
        raise ValueError(f"{args.path}: no {INDEX_FILENAME} (if all shards exist, "
                         f"`spatial-alm dataset index {args.path}` writes it)")
    try:
        if args.action == "info":
            info = {**dataset_info(args.path), "spectral_cue_limit_db": QAConfig.min_spectral_cue_db,
                    "spectral_cues": spectral_cue_summary(all_metas(args.path))}
            print(json.dumps(info, indent=2) if args.json else format_info(args.path, info))
            return 0
        num_scenes = read_index(args.path).num_scenes
        require_writable_dir(args.out)
        bad = [i for i in args.scenes if not 0 <= i < num_scenes]
        if bad:
            raise ValueError(f"--scenes {bad} out of range [0, {num_scenes})")
        for path in export_wav(args.path, args.scenes, args.out):
            print(f"wrote {path} (+ {path.with_suffix('.json').name})")
    except BrokenPipeError:  # our output's reader closed (`| head`): not a shard problem
        raise
    except OSError as err:  # a missing or corrupt shard
        raise ValueError(f"{err} (`spatial-alm dataset check {args.path}` lists the problems)") from err
    return 0


def run_from_sofa(args: argparse.Namespace) -> int:
    from spatial_alm.data.recordings import LABELS_FILENAME, build_from_sofa

    for flag, path in (("--sofa", args.sofa), ("--clips", args.clips), ("--clips-csv", args.clips_csv)):
        if path is not None and not path.exists():
            raise ValueError(f"{flag} {path}: no such file or folder")
    made = build_from_sofa(args.sofa, args.clips, args.out, num_clips=args.num_clips,
                           num_directions=args.directions, fs_hz=args.fs_hz, seed=args.seed,
                           duration_s=args.duration_s, elevation_range_deg=args.elevation_range,
                           clips_csv=args.clips_csv, split=args.split, azimuth_convention=args.azimuth_convention,
                           equalisation=args.equalisation)
    flipped = " (azimuth labels negated)" if made["azimuth_flipped"] else ""
    print(f"wrote {made['num_files']} recordings ({made['num_clips']} clips x {made['num_directions']} directions "
          f"of {args.sofa.name}{flipped}) at {made['fs_hz']} Hz to {args.out / 'audio'}, "
          f"labels in {args.out / LABELS_FILENAME}")
    return 0


def format_info(path: Path, info: dict) -> str:
    """Human-readable lines of :func:`spatial_alm.data.dataset_info`'s summary."""

    def counts(d: dict) -> str:
        return ", ".join(f"{key} {value}" for key, value in d.items()) or "none"

    rt60_lo, rt60_hi = info["rt60_s_range"]
    cues = [f"{axis.replace('_', '/')} spectral cue per source: median {summary['median_db']:.1f} dB, at least "
            f"{info['spectral_cue_limit_db']:g} dB (qa.min_spectral_cue_db's default) for "
            f"{summary['at_least_pct']:.0f} % of {summary['sources']}; by class (%): "
            + ", ".join(f"{label} {pct:.0f}" for label, pct in summary["by_class"].items())
            for axis, summary in info.get("spectral_cues", {}).items()]
    return "\n".join([
        f"{path}: {info['num_scenes']} scenes in {info['num_shards']} shards, "
        f"{info['total_hours']:.3f} h of audio ({info['duration_s']:g} s per scene)",
        f"audio: {info['num_channels']} channels at {info['fs_hz']} Hz, "
        f"receiver {info['receiver']}",
        f"seed {info['seed']}, schema version {info['schema_version']}",
        f"sources per scene: {counts(info['num_sources_counts'])} (at most {info['max_sources']})",
        f"classes ({len(info['class_counts'])}): {counts(info['class_counts'])}",
        f"QA pairs: {info['num_qa']} ({counts(info['qa_type_counts'])})",
        f"RT60: {rt60_lo:.2f} to {rt60_hi:.2f} s",
        *cues,
    ])
