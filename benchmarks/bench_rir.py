"""RIR throughput of the torch engine against pyroomacoustics, measured in the same run.

Reference configuration (issue #2): room 6 x 5 x 3 m, RT60 0.6 s, fs 32 kHz, 1 source, 2 receivers,
a batch of 64 rooms (source and microphones placed at random, seeded). Two modes:
  full   image sources to the order pyroomacoustics' inverse_sabine gives for the RT60 (both engines)
  tdiff  our engine with image sources to 0.08 s + diffuse tail, against pyroomacoustics at full order
Prints rooms per second for both engines and the ratio. On CUDA it also reports rooms per second at
batch 64 and 1024.

    python benchmarks/bench_rir.py                # CPU, the figures recorded in benchmarks/README.md
    python benchmarks/bench_rir.py --pra-rooms 4  # fewer pyroomacoustics rooms (its rate is per room)
"""

from __future__ import annotations

import argparse
import platform
import time

import pyroomacoustics as pra
import torch

from spatial_alm.acoustics import simulate_rir
from spatial_alm.coordinates import SPEED_OF_SOUND_M_S

ROOM = (6.0, 5.0, 3.0)
RT60_S = 0.6
FS = 32000
TDIFF_S = 0.08


def reference_batch(batch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    room = torch.tensor([ROOM] * batch, dtype=torch.float64)
    src = torch.rand(batch, 1, 3, generator=gen, dtype=torch.float64) * (room[:, None] - 1) + 0.5
    centre = torch.rand(batch, 1, 3, generator=gen, dtype=torch.float64) * (room[:, None] - 1.2) + 0.6
    mic = centre + torch.tensor([[[0.0, 0.1, 0.0], [0.0, -0.1, 0.0]]], dtype=torch.float64)
    return room, torch.full((batch,), RT60_S, dtype=torch.float64), src, mic


def timed(device, fn, /, *args, **kwargs) -> float:
    """Seconds that ``fn(*args, **kwargs)`` takes (CUDA synchronised)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="rooms per call of our engine (default 64)")
    parser.add_argument("--pra-rooms", type=int, default=8,
                        help="rooms simulated with pyroomacoustics to measure its per-room rate (default 8)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    _, full_order = pra.inverse_sabine(RT60_S, ROOM, c=SPEED_OF_SOUND_M_S)
    room, rt60, src, mic = reference_batch(args.batch)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"device {device}")
    print(f"reference: room {ROOM} m, RT60 {RT60_S} s, fs {FS} Hz, 1 source, 2 mics, batch {args.batch}, "
          f"full order {full_order}")

    n = args.pra_rooms
    pra_s = timed(torch.device("cpu"), simulate_rir, room[:n], rt60[:n], src[:n], mic[:n], FS, max_order=full_order,
                  backend="pyroomacoustics")
    pra_rate = n / pra_s
    print(f"pyroomacoustics full order: {pra_rate:8.2f} rooms/s ({pra_s / n:.3f} s per room, {n} rooms)")

    for mode, kwargs in (("full", dict(max_order=full_order)), ("tdiff", dict(tdiff=TDIFF_S, tmax=RT60_S + 0.05))):
        simulate_rir(room[:2], rt60[:2], src[:2], mic[:2], FS, device=device, seed=0, **kwargs)  # warm-up, same lengths
        secs = timed(device, simulate_rir, room, rt60, src, mic, FS, device=device, seed=0, **kwargs)
        rate = args.batch / secs
        print(f"torch engine {mode:5s}: {rate:8.2f} rooms/s ({secs:.2f} s for {args.batch} rooms)  "
              f"ratio vs pyroomacoustics full order: {rate / pra_rate:6.1f}x")

    if device.type == "cuda":
        for batch in (64, 1024):
            room_b, rt60_b, src_b, mic_b = reference_batch(batch, seed=1)
            secs = timed(device, simulate_rir, room_b, rt60_b, src_b, mic_b, FS, tdiff=TDIFF_S, tmax=RT60_S + 0.05,
                         device=device, seed=0)
            print(f"CUDA tdiff, batch {batch:5d}: {batch / secs:9.1f} rooms/s")


if __name__ == "__main__":
    main()
