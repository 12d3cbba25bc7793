"""Encoder throughput: training and inference samples/s, and whether the HDF5 loader keeps up.

Measured in the same run on the same dataset: the DataLoader alone (HDF5 read + int16 decode +
collate, with --num-workers processes), a training step (features + encoder + heads + backward +
AdamW) on pre-loaded batches, and inference. The loader keeps up when its rate exceeds the
training rate (ratio > 1). With no dataset given, --scenes scenes of --recipe are simulated first.
The training step runs under the config's mixed precision (bf16 autocast on CUDA by default), as
`spatial-alm pretrain-encoder` does.

    python benchmarks/bench_encoder.py --data out/tiny_train --config experiments/encoder/tiny_binaural.yaml
    python benchmarks/bench_encoder.py --device cuda --config experiments/encoder/bat_vit_base.yaml \
        --recipe simulation/bat_binaural.yaml --num-workers 8      # paper scale on a GPU
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from spatial_alm.data import SpatialSceneDataset, dataset_info
from spatial_alm.data.generate import generate_dataset
from spatial_alm.models.encoder import multitask_loss
from spatial_alm.models.targets import EncoderTargets
from spatial_alm.scenes import SceneRecipe
from spatial_alm.training.common import resolve_mixed_precision
from spatial_alm.training.pretrain import PretrainConfig, build_model, collate_scenes

REPO = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loader_rate(data: Path, batch_size: int, num_workers: int, num_batches: int) -> float:
    """Samples/s the DataLoader delivers (after its first batch, which pays the worker start-up)."""
    loader = DataLoader(SpatialSceneDataset(data), batch_size=batch_size, shuffle=True, collate_fn=collate_scenes,
                        num_workers=num_workers)
    it = iter(loader)
    next(it)
    start, count = time.perf_counter(), 0
    for _, batch in zip(range(num_batches), it):
        count += batch["audio"].shape[0]
    return count / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (default: simulate --scenes scenes of --recipe)")
    parser.add_argument("--recipe", type=Path, default=REPO / "simulation/tiny_binaural.yaml",
                        help="scene recipe simulated when no --data is given (default tiny_binaural)")
    parser.add_argument("--scenes", type=int, default=256, help="scenes simulated when no --data is given")
    parser.add_argument("--config", type=Path, default=REPO / "experiments/encoder/tiny_binaural.yaml")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per measurement (default 10)")
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader worker processes (default 1)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    config = PretrainConfig.from_yaml(args.config)
    data = args.data
    if data is None:
        data = Path(tempfile.mkdtemp()) / "bench"
        generate_dataset(SceneRecipe.from_yaml(args.recipe), data, seed=0, num_scenes=args.scenes,
                         num_shards=max(1, args.num_workers), workers=max(1, args.num_workers), progress=False)
    info = dataset_info(data)
    model = build_model(config, info).to(device)
    mixed = resolve_mixed_precision(config.mixed_precision) if device.type == "cuda" else "no"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if mixed == "bf16" else torch.float16,
                              enabled=mixed != "no")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"device {device}, torch threads {torch.get_num_threads()}, encoder preset {config.preset} "
          f"({n_params / 1e6:.2f} M parameters), batch {config.batch_size}, clips {info['duration_s']} s at "
          f"{info['fs_hz']} Hz x {info['num_channels']} channels, mixed precision {mixed}")

    loader = DataLoader(SpatialSceneDataset(data), batch_size=config.batch_size, shuffle=True,
                        collate_fn=collate_scenes)
    batches = [b for _, b in zip(range(args.batches + 1), loader)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)

    def train_step(batch):
        targets = EncoderTargets.from_scenes(batch["scenes"], model.class_names).to(device)
        with autocast:
            outputs = model(batch["audio"].to(device))
        loss, _ = multitask_loss(outputs, targets, config.loss_weights, config.direction_sigma_deg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.train()
    train_step(batches[0])  # warm-up
    sync(device)
    start = time.perf_counter()
    for batch in batches[1:]:
        train_step(batch)
    sync(device)
    samples = sum(b["audio"].shape[0] for b in batches[1:])
    train_rate = samples / (time.perf_counter() - start)

    model.eval()
    with torch.no_grad(), autocast:
        model(batches[0]["audio"].to(device))
        sync(device)
        start = time.perf_counter()
        for batch in batches[1:]:
            model(batch["audio"].to(device))
        sync(device)
    infer_rate = samples / (time.perf_counter() - start)

    load_rate = loader_rate(data, config.batch_size, args.num_workers, args.batches)
    print(f"training:  {train_rate:8.1f} samples/s")
    print(f"inference: {infer_rate:8.1f} samples/s")
    print(f"HDF5 loader ({args.num_workers} worker(s)): {load_rate:8.1f} samples/s  "
          f"ratio loader/training {load_rate / train_rate:.1f}x "
          f"({'keeps up' if load_rate > train_rate else 'BOTTLENECK'})")


if __name__ == "__main__":
    main()
