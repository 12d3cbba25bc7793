"""Simulate scenes from a recipe and write them, with their questions, as a sharded HDF5 dataset.

Determinism: scene i is rendered from (recipe, --seed, i) alone, so the same recipe and seed give
byte-identical shard files whatever --workers is, and any shard can be regenerated on its own.

Resume: after an interruption run the same command again. Complete shards are kept; the leftover
*.h5.tmp of a killed run is deleted and that shard is written again. A folder holding shards of
another recipe, seed or scene count is refused unless --overwrite (which replaces them).

Disk space: the shards to write are sized first (audio uncompressed, plus metadata and QA: an upper
bound) and a folder with less space free is refused before anything is written; a disk that others
fill meanwhile stops the run before the next scene, the unfinished shard deleted (exit 1). Free
space or choose another --out, then run the same command again to resume.

Sharding: shard k of --num-shards K holds scenes [k*N//K, (k+1)*N//K). --workers processes write
shards in parallel (one shard each at a time, so use K >= --workers). For a SLURM array, give each
task its shards with --shard-index; the task that completes the last shard writes index.json
(otherwise `spatial-alm dataset index DIR` does):

    #SBATCH --array=0-7
    spatial-alm simulate --recipe simulation/bat_binaural.yaml --out data/bat --num-scenes 80000 \\
        --num-shards 8 --shard-index $SLURM_ARRAY_TASK_ID

Examples:
    spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out out/tiny --num-scenes 200 \\
        --workers 2
    spatial-alm simulate --recipe simulation/tiny_binaural.yaml --out out/tiny_rt60 \\
        --set room.rt60_s=[0.3,0.5] --set duration_s=1.0
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from spatial_alm.commands import parse_overrides, require_file, require_writable_dir

SCENES_PER_SHARD = 250  # default shard size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", type=Path, required=True,
                        help="scene recipe YAML (see simulation/README.md)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder")
    parser.add_argument("--num-scenes", type=int, default=100, metavar="N",
                        help="scenes in the whole dataset (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--num-shards", type=int, metavar="K",
                        help=f"shards in the whole dataset, 1 .. N (default: one per {SCENES_PER_SHARD} "
                             "scenes, rounded up)")
    parser.add_argument("--shard-index", type=int, nargs="+", metavar="k",
                        help="write only these shards, 0 .. K-1, e.g. $SLURM_ARRAY_TASK_ID "
                             "(default: all)")
    parser.add_argument("--workers", type=int, default=1,
                        help="parallel worker processes (>= 1), one torch thread each (default 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files of another recipe, seed or layout in --out")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a recipe field, dotted keys, YAML values: "
                             "--set duration_s=1.0 --set room.rt60_s=[0.3,0.5] (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    require_file(args.recipe, "--recipe")
    overrides = parse_overrides(args.overrides)
    if args.num_scenes < 1:
        raise ValueError(f"--num-scenes {args.num_scenes}; allowed: >= 1")
    if args.num_shards is not None and not 1 <= args.num_shards <= args.num_scenes:
        raise ValueError(f"--num-shards {args.num_shards}; allowed: 1 .. --num-scenes ({args.num_scenes})")
    num_shards = args.num_shards or math.ceil(args.num_scenes / SCENES_PER_SHARD)
    bad = [k for k in args.shard_index or () if not 0 <= k < num_shards]
    if bad:
        raise ValueError(f"--shard-index {' '.join(map(str, bad))}; allowed: 0 .. {num_shards - 1} "
                         f"(shards are numbered from 0 of --num-shards {num_shards})")
    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}; allowed: >= 1")
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed}; allowed: >= 0")

    from spatial_alm.data.generate import generate_dataset
    from spatial_alm.scenes import SceneRecipe

    recipe = SceneRecipe.from_yaml(args.recipe, overrides)
    require_writable_dir(args.out)
    summary = generate_dataset(
        recipe, args.out, seed=args.seed, num_scenes=args.num_scenes, num_shards=num_shards,
        shard_indices=args.shard_index, workers=args.workers, overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    kept = len(summary.shards_kept)
    if summary.shards_written:
        print(f"{summary.out_dir}: wrote {summary.scenes_written} scenes and "
              f"{summary.num_qa_written} QA pairs in {len(summary.shards_written)} shard(s), "
              f"{summary.wall_s:.1f} s, {summary.scenes_per_s:.2f} scenes/s"
              + (f"; kept {kept} complete shard(s) from an earlier run" if kept else ""))
    else:
        print(f"{summary.out_dir}: nothing to write, the {kept} requested shard(s) are complete")
    total = sum(summary.stage_s.values())
    if total > 0:
        print("time per stage: " + ", ".join(
            f"{stage} {100 * seconds / total:.0f}%" for stage, seconds in summary.stage_s.items()))
    if summary.corpus_skipped:
        print(f"corpus: {summary.corpus_skipped} audio file(s) skipped as missing or unreadable "
              "(named in the warning above)")
    if summary.index_path is not None:
        print(f"dataset complete ({summary.num_scenes} scenes in {summary.num_shards} shards): "
              f"{summary.index_path}")
    else:
        print(f"{summary.shards_remaining} of {summary.num_shards} shards still missing; "
              "index.json is written with the last of them")
    return 0
