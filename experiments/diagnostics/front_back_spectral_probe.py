"""Do a dataset's ear signals hold front/back and elevation? A small network on long-term ear spectra.

A head with pinnae colours a source differently in front and behind (CIPIC subject_008 at azimuth 0, 30
and 60 deg against their mirror images behind: 2-8 kHz is 2-12 dB weaker behind, in both ears) and at
different elevations, but a model sees that colouring
multiplied by an unknown source spectrum. This probe measures how much of front/back and elevation a
simple, independent learner can read from the spectra alone, so the encoder's figures on the same
scenes can be told apart into "the cue is not in the data" and "the encoder does not learn it".

For every one-source scene: the time-averaged power spectrum of each ear (periodic Hann STFT, n_fft
512 at 16 kHz, in dB; ``--spectra onsets``: weighted to the onsets, where the direct sound leads the room;
``--spectra coherent``: weighted to the time-frequency bins where the two ears hear one coherent signal)
-> 2 x (n_fft / 2 + 1) numbers, standardised with the training set's statistics.
A two-layer MLP (256 units, GELU, dropout 0.2; AdamW) learns two outputs: front (logit) and elevation
(degrees, L1 loss). Front/back is scored by the encoder report's rule (sources at least
``FRONT_BACK_MARGIN_DEG`` = 20 deg from the frontal plane, i.e. in the horizontal plane from the
interaural axis), elevation as the mean absolute error beside
answering the training median. Per-class front/back accuracies show which sources carry the cue.

``--multi-source VIEW ...`` asks the same of every source of the scenes with two or more sources: is a
source's front/back in the mixture at all, and in the time-frequency bins where it dominates? Each view gets
its own probe (:func:`mixture_source_spectra`), scored on the same sources.

    python experiments/diagnostics/front_back_spectral_probe.py --train out/cipic_train12k \\
        --test out/cipic_test_seenheads out/cipic_test
    python experiments/diagnostics/front_back_spectral_probe.py --train out/cipic_train12k_snr60 \\
        --test out/cipic_test1k_s3 --spectra coherent --multi-source mixture masked alone
"""

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torchaudio
from tqdm import tqdm

from spatial_alm.coordinates import spherical_to_cartesian
from spatial_alm.data.reader import DatasetReader
from spatial_alm.evaluation.encoder_report import FRONT_BACK_MARGIN_DEG
from spatial_alm.evaluation.metrics import mcnemar_exact
from spatial_alm.features.spatial import SpatialFeatureConfig, band_coherence, mel_weights
from spatial_alm.scenes import SceneRecipe, render_parts, sample_scene
from spatial_alm.scenes.render import scene_receiver, torch_threads


def onset_weighted_power(power: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Each ear's power spectrum (2, F) from the onsets of a power spectrogram ``power`` (2, F, T): frame t
    of bin f is weighted by how much the two ears' mean level rose from frame t - 1, in dB (clipped to 0-20
    dB), times ``weight`` (F, T) where given. A rise is where the direct sound leads its reverberation, and a
    fixed filter (the head's) does not change it, so the weights do not depend on the direction."""
    level = 10.0 * torch.log10(power.mean(0) + 1e-10)  # (F, T)
    rise = (level[:, 1:] - level[:, :-1]).clamp(0.0, 20.0)  # (F, T - 1)
    if weight is not None:
        rise = rise * weight[:, 1:]
    return (power[..., 1:] * rise).sum(-1) / (rise.sum(-1) + 1e-6)


def coherence_weighted_power(stft: torch.Tensor, hop_s: float, smoothing_s: float = 0.03,
                             exponent: float = 16.0, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Each ear's power spectrum (2, F) from a complex STFT ``stft`` (2, F, T) whose frames are ``hop_s`` seconds
    apart: frame t of bin f is weighted by its interaural coherence raised to ``exponent``, the coherence from
    cross- and auto-spectra smoothed over frames with time constant ``smoothing_s`` (the encoder's coherence
    plane, :func:`~spatial_alm.features.spatial.band_coherence`, per STFT bin instead of per mel band; Faller and
    Merimaa's cue selection, 2004), times ``weight`` (F, T) where given. The direct sound reaches the ears as
    two filtered copies of one signal (coherence near 1); the room's reflections from many directions lower it.
    The weights depend on the ears' similarity, not on which ear is louder, so they do not single out a
    direction."""
    alpha = float(np.exp(-hop_s / smoothing_s))
    power = stft.abs() ** 2  # (2, F, T)
    per_bin = torch.eye(stft.shape[1], dtype=power.dtype)  # "bands" of one STFT bin each
    coherence = band_coherence(stft[None], power[None], [(0, 1)], per_bin, alpha)[0, 0]  # (F, T), 0..1
    weight = coherence ** exponent if weight is None else coherence ** exponent * weight
    return (power * weight).sum(-1) / (weight.sum(-1) + 1e-12)


def ear_power(stft: torch.Tensor, spectra: str, hop_s: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Each ear's power spectrum (2, F) of a complex STFT ``stft`` (2, F, T) with frames ``hop_s`` seconds apart,
    as ``spectra`` says (long_term: the mean over frames; onsets: :func:`onset_weighted_power`; coherent:
    :func:`coherence_weighted_power`), its time-frequency bins also weighted by ``weight`` (F, T) where given."""
    if spectra == "coherent":
        return coherence_weighted_power(stft, hop_s, weight=weight)
    power = stft.abs() ** 2
    if spectra == "onsets":
        return onset_weighted_power(power, weight)
    if weight is None:
        return power.mean(-1)
    return (power * weight).sum(-1) / (weight.sum(-1) + 1e-12)


def ear_bands(fs_hz: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """The encoder's mel weights (n_fft // 2 + 1, n_mels) for this probe's STFT (hop n_fft / 4)."""
    return mel_weights(SpatialFeatureConfig(fs_hz=fs_hz, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels))


def ear_spectra(path, n_fft: int, n_mels: int | None = None, spectra: str = "long_term") -> dict[str, np.ndarray]:
    """One-source scenes of a dataset -> spectra (N, 2 * (n_fft // 2 + 1)) float32 dB (with ``n_mels``:
    (N, 2 * n_mels), the power averaged over the encoder's mel bands first; ``spectra``: the long-term
    mean power, the onset-weighted power, :func:`onset_weighted_power`, or the coherence-weighted power,
    :func:`coherence_weighted_power`), azimuth
    and elevation (N,) degrees, labels (N,), scene indices in the dataset (N,)."""
    reader = DatasetReader(path)
    spectrogram = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=n_fft // 4, power=None)
    bands = None if n_mels is None else ear_bands(reader.index.fs_hz, n_fft, n_mels)
    rows, azimuth, elevation, labels, scenes = [], [], [], [], []
    for i in tqdm(range(len(reader)), desc=f"spectra {path}", unit="scene"):
        meta = reader.meta(i)
        if len(meta.sources) != 1:
            continue
        audio, _, _ = reader.scene(i)
        stft = spectrogram(torch.as_tensor(audio))  # (2, n_fft // 2 + 1, T) complex
        power = ear_power(stft, spectra, hop_s=(n_fft // 4) / reader.index.fs_hz)
        if bands is not None:
            power = power @ bands  # (2, n_mels)
        rows.append((10.0 * torch.log10(power + 1e-10)).flatten().numpy())
        source = meta.sources[0]
        azimuth.append(source.azimuth_deg)
        elevation.append(source.elevation_deg)
        labels.append(source.label)
        scenes.append(i)
    if not rows:
        raise SystemExit(f"{path}: no one-source scenes")
    return {"x": np.stack(rows).astype(np.float32), "azimuth": np.array(azimuth), "elevation": np.array(elevation),
            "label": np.array(labels), "scene": np.array(scenes)}


MIXTURE_VIEWS = ("mixture", "masked", "alone")
MASK_EXPONENT = 4.0  # the ideal ratio mask's power in the "masked" view's weights


def source_masks(parts: torch.Tensor) -> torch.Tensor:
    """Ideal ratio masks (S, F, T) in 0..1 from the STFTs ``parts`` (S + 1, 2, F, T) of a scene's S source images
    and its noise (last): each source's power summed over the ears, over the sum of every part's power."""
    power = (parts.abs() ** 2).sum(1)  # (S + 1, F, T)
    return power[:-1] / (power.sum(0) + 1e-20)


def mixture_source_spectra(path, n_fft: int, n_mels: int | None = None, spectra: str = "long_term",
                           views: tuple[str, ...] = MIXTURE_VIEWS) -> dict[str, dict[str, np.ndarray]]:
    """Every source of a dataset's scenes with two or more sources, read three ways -> per view the fields of
    :func:`ear_spectra` (one row per source, in the same order for every view) plus ``source`` (N,), the
    source's index in its scene.

    The scenes are rendered again from the dataset's recipe and seed (:func:`~spatial_alm.scenes.render_parts`,
    one torch thread as the simulator; the mixture is checked against the stored audio) so that each source's
    own image is known. Views: ``mixture``, the scene's ear spectra (the same row for each of its sources:
    what a reading that does not tell the sources apart has); ``masked``, the mixture's time-frequency bins
    weighted by the source's ideal ratio mask to the power ``MASK_EXPONENT`` (:func:`source_masks`; an oracle
    separation, the best a reading that pools its class's bins could have); ``alone``, the source's image plus
    the scene's noise, without the other sources (its room and noise, no masking). Every signal is scaled to
    its peak, as the datasets store audio."""
    reader = DatasetReader(path)
    recipe = SceneRecipe.from_dict(reader.index.recipe)
    library = recipe.source_library()
    fs_hz = reader.index.fs_hz
    spectrogram = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=n_fft // 4, power=None)
    bands = None if n_mels is None else ear_bands(fs_hz, n_fft, n_mels)
    hop_s = (n_fft // 4) / fs_hz
    fields = {view: defaultdict(list) for view in views}
    for i in tqdm(range(len(reader)), desc=f"sources of mixtures {path}", unit="scene"):
        meta = reader.meta(i)
        if len(meta.sources) < 2:
            continue
        with torch_threads(1):
            plan = sample_scene(recipe, reader.index.seed, meta.index, labels=library.labels)
            images, noise, _, _ = render_parts(recipe, plan, library, scene_receiver(recipe, reader.index.seed,
                                                                                     meta.index))
        mixture = images.sum(0).double() + noise  # (C, T)
        stored, _, _ = reader.scene(i)
        if np.abs(mixture.numpy() / mixture.abs().max().item() * 10.0 ** (recipe.output.peak_dbfs / 20.0)
                  - stored).max() > 1e-3:
            raise SystemExit(f"{path}: scene {i} renders differently from its stored audio; this probe needs the "
                             f"code that wrote the dataset")
        parts = spectrogram((torch.cat([images.double(), noise[None]]) / mixture.abs().max()).float())  # (S+1, 2, F, T)
        mixture_stft = parts.sum(0)
        masks = source_masks(parts)
        for k, source in enumerate(meta.sources):
            for view in views:
                if view == "alone":
                    alone = images[k].double() + noise
                    power = ear_power(spectrogram((alone / alone.abs().max()).float()), spectra, hop_s)
                else:
                    weight = masks[k] ** MASK_EXPONENT if view == "masked" else None
                    power = ear_power(mixture_stft, spectra, hop_s, weight)
                if bands is not None:
                    power = power @ bands
                row = fields[view]
                row["x"].append((10.0 * torch.log10(power + 1e-10)).flatten().float().numpy())
                row["azimuth"].append(source.azimuth_deg)
                row["elevation"].append(source.elevation_deg)
                row["label"].append(source.label)
                row["scene"].append(i)
                row["source"].append(k)
    if not fields[views[0]]["x"]:
        raise SystemExit(f"{path}: no scenes with two or more sources")
    return {view: {k: np.stack(v).astype(np.float32) if k == "x" else np.array(v) for k, v in rows.items()}
            for view, rows in fields.items()}


def opposite_pairs(predictions: dict) -> dict:
    """Of the two-source scenes whose sources are both scored and in opposite front/back halves (what an E question
    about front/back compares): ``pairs``, their count; ``both_right_pct``, the share (%) where both sources'
    halves are right; ``order_right_pct``, where the front source's front logit is the larger (the probe's answer
    to "is A in front of B?"; equal logits, as the mixture view gives both sources, count as a coin flip: 1/2);
    ``order_right``, that answer per scene (1, 1/2 or 0; for paired tests between probes on the same scenes)."""
    by_scene = defaultdict(list)
    for scene, truth, logit, correct in zip(predictions["scene"], predictions["front_truth"],
                                            predictions["front_logit"], predictions["front_correct"]):
        by_scene[scene].append((int(truth), float(logit), bool(correct)))
    pairs = {scene: sorted(rows) for scene, rows in by_scene.items()
             if len(rows) == 2 and {rows[0][0], rows[1][0]} == {0, 1}}
    if not pairs:
        return {"pairs": 0, "both_right_pct": float("nan"), "order_right_pct": float("nan"), "order_right": {}}
    both = [back[2] and front[2] for back, front in pairs.values()]
    order = {scene: 0.5 if front[1] == back[1] else float(front[1] > back[1]) for scene, (back, front) in pairs.items()}
    return {"pairs": len(pairs), "both_right_pct": 100.0 * np.mean(both),
            "order_right_pct": 100.0 * np.mean(list(order.values())), "order_right": order}


def front_labels(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """1 front, 0 back, -1 within ``FRONT_BACK_MARGIN_DEG`` of the frontal plane (not scored), as
    :func:`~spatial_alm.evaluation.encoder_report.front_back_confusions` scores."""
    front = spherical_to_cartesian(azimuth_deg, elevation_deg)[..., 0].numpy()
    return np.where(np.abs(front) >= np.sin(np.radians(FRONT_BACK_MARGIN_DEG)), (front > 0).astype(int), -1)


def _probe_loss(net, x, front, elevation) -> torch.Tensor:
    """L1 elevation loss (in units of 30 deg) plus the front logit's BCE on the scored sources."""
    out = net(x)
    scored = front >= 0
    loss = torch.nn.functional.l1_loss(out[:, 1] * 30.0, elevation) / 30.0
    if scored.any():
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(out[scored, 0], front[scored])
    return loss


def train_probe(data: dict, epochs: int, seed: int, val_fraction: float = 0.0
                ) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """The MLP trained on ``data`` -> (network, feature mean, feature std). With ``val_fraction`` > 0 the
    last share of the scenes is held out and the network of the epoch with the lowest loss there is kept
    (early stopping, so that small and large training sets are compared each at its best epoch)."""
    torch.manual_seed(seed)
    num_val = int(round(val_fraction * len(data["x"])))
    fit = slice(0, len(data["x"]) - num_val)
    mean, std = data["x"][fit].mean(0), data["x"][fit].std(0) + 1e-6
    x = torch.tensor((data["x"] - mean) / std)
    front = torch.tensor(front_labels(data["azimuth"], data["elevation"]), dtype=torch.float32)
    elevation = torch.tensor(data["elevation"], dtype=torch.float32)
    val = slice(len(x) - num_val, len(x))
    x_val, front_val, elevation_val = x[val], front[val], elevation[val]
    x, front, elevation = x[fit], front[fit], elevation[fit]
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, 2))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    best_loss, best_state = float("inf"), None
    for _ in tqdm(range(epochs), desc="probe epochs", unit="epoch"):
        net.train()
        for batch in torch.randperm(len(x)).split(128):
            loss = _probe_loss(net, x[batch], front[batch], elevation[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if num_val:
            with torch.no_grad():
                val_loss = float(_probe_loss(net.eval(), x_val, front_val, elevation_val))
            if val_loss < best_loss:
                best_loss, best_state = val_loss, {k: v.clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), mean, std


def score(net, mean, std, data: dict, median_elevation: float) -> dict:
    """Front/back accuracy (all and per class) and elevation MAE of the probe and of the median answer, and the
    per-scene answers (``predictions``: one row per scene, for :func:`write_predictions`)."""
    with torch.no_grad():
        out = net(torch.tensor((data["x"] - mean) / std)).numpy()
    truth = front_labels(data["azimuth"], data["elevation"])
    scored = truth >= 0
    correct = (out[:, 0] > 0).astype(int) == truth
    per_class = defaultdict(list)
    for label, ok in zip(data["label"][scored], correct[scored]):
        per_class[label].append(ok)
    return {"front_back_correct_pct": 100.0 * correct[scored].mean(), "scored": int(scored.sum()),
            "front_share_pct": 100.0 * truth[scored].mean(),
            "elevation_mae_deg": float(np.abs(out[:, 1] * 30.0 - data["elevation"]).mean()),
            "median_elevation_mae_deg": float(np.abs(median_elevation - data["elevation"]).mean()),
            "per_class": {k: (100.0 * np.mean(v), len(v)) for k, v in sorted(per_class.items())},
            "predictions": {"scene": data["scene"], "label": data["label"], "front_truth": truth,
                            "front_logit": out[:, 0], "front_correct": correct,
                            "elevation_deg": data["elevation"], "elevation_estimate_deg": out[:, 1] * 30.0}}


def write_predictions(path: Path, predictions: dict) -> None:
    """One CSV row per scene: scene index, class, front_truth (1 front, 0 back, -1 not scored), front_logit,
    front_correct (False where not scored: no answer matches -1), elevation and its estimate (deg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(predictions))
        for row in zip(*predictions.values()):
            writer.writerow([f"{v:.3f}" if isinstance(v, (float, np.floating)) else v for v in row])


def _subset(data: dict, n: int) -> dict:
    return {k: v[:n] for k, v in data.items()}


def multi_source_probe(args) -> None:
    """``--multi-source``: one probe per view of the sources of mixtures, a markdown table per test set."""
    views = tuple(dict.fromkeys(args.multi_source))
    train = mixture_source_spectra(args.train, args.n_fft, args.n_mels, args.spectra, views)
    tests = {path: mixture_source_spectra(path, args.n_fft, args.n_mels, args.spectra, views) for path in args.test}
    results = {path: {} for path in tests}
    for view in views:
        net, mean, std = train_probe(train[view], args.epochs, args.seed, val_fraction=0.1)
        median = float(np.median(train[view]["elevation"]))
        for path, data in tests.items():
            results[path][view] = score(net, mean, std, data[view], median)
            if args.predictions:
                write_predictions(args.predictions / f"{Path(path).name}_{view}_{len(train[view]['x'])}.csv",
                                  results[path][view]["predictions"])
    print(f"trained on the {len(train[views[0]]['x'])} sources of the scenes of {args.train} with two or more "
          f"sources ({args.spectra} spectra; the last 10 % for early stopping)")
    for path, by_view in results.items():
        first = by_view[views[0]]
        print(f"\n{path}: {len(tests[path][views[0]]['x'])} sources, front/back scored on {first['scored']} "
              f"(front share {first['front_share_pct']:.1f} %)\n")
        print(f"| view | front/back correct (%) | paired with {views[0]} | opposite-half pairs | both halves right (%) "
              f"| front logit larger for the front source (%) "
              f"| elevation MAE (deg; median answer {first['median_elevation_mae_deg']:.1f}) |")
        print("|---|---|---|---|---|---|---|")
        for view, result in by_view.items():
            scored = result["predictions"]["front_truth"] >= 0
            test = mcnemar_exact(result["predictions"]["front_correct"][scored],
                                 first["predictions"]["front_correct"][scored])
            paired = "" if view == views[0] else f"{test['a_only']} vs {test['b_only']} alone right, p = " \
                                                 f"{test['p_value']:.2g}"
            pairs = opposite_pairs(result["predictions"])
            print(f"| {view} | {result['front_back_correct_pct']:.1f} | {paired} | {pairs['pairs']} "
                  f"| {pairs['both_right_pct']:.1f} | {pairs['order_right_pct']:.1f} "
                  f"| {result['elevation_mae_deg']:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="dataset folder the probe trains on (its one-source scenes; "
                        "with --multi-source every source of its scenes with two or more)")
    parser.add_argument("--test", nargs="+", required=True, help="dataset folders to score")
    parser.add_argument("--n-fft", type=int, default=512, help="STFT size (default 512)")
    parser.add_argument("--n-mels", type=int, help="average the spectra over this many mel bands first (the "
                        "encoder's representation: tiny_binaural.yaml has 64); default: every STFT bin")
    parser.add_argument("--spectra", choices=["long_term", "onsets", "coherent"], default="long_term",
                        help="each ear's long-term mean power (default), its onset-weighted power (frames weighted "
                             "by the rise of their level: the direct sound before its reverberation) or its "
                             "coherence-weighted power (time-frequency bins weighted by the interaural coherence, "
                             "high where the direct sound dominates)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    parser.add_argument("--train-sizes", type=int, nargs="+",
                        help="a learning curve instead: train on the first N one-source scenes for each N (nested "
                             "subsets), each with early stopping on its last 10 %%, and print one row per N")
    parser.add_argument("--predictions", type=Path, help="write each test set's per-scene answers to "
                        "DIR/<test folder name>_<training scenes>.csv (for paired tests and splits by scene)")
    parser.add_argument("--multi-source", nargs="+", choices=MIXTURE_VIEWS, metavar="VIEW",
                        help="read every source of the scenes with two or more sources instead, one probe per view "
                             "(mixture: the scene's spectra; masked: the mixture's bins weighted by the source's "
                             "ideal ratio mask, an oracle separation; alone: the source's image plus the noise), "
                             "each with early stopping on its last 10 %% of sources, scored on the same sources, "
                             "each view paired with the first (exact McNemar test); the scenes are rendered again "
                             "from each dataset's recipe and seed; predictions go to "
                             "DIR/<test folder name>_<view>_<training sources>.csv")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.multi_source and args.train_sizes:
        parser.error("--multi-source and --train-sizes do not combine: run them one at a time")
    if args.multi_source:
        multi_source_probe(args)
        return
    train = ear_spectra(args.train, args.n_fft, args.n_mels, args.spectra)
    median = float(np.median(train["elevation"]))
    tests = {path: ear_spectra(path, args.n_fft, args.n_mels, args.spectra) for path in args.test}
    if args.train_sizes:
        print("| one-source training scenes (10 % for early stopping) | "
              + " | ".join(f"{path}: front/back correct (%) / elevation MAE (deg)" for path in tests) + " |")
        print("|---|" + "---|" * len(tests))
        for n in args.train_sizes:
            if n > len(train["x"]):
                raise SystemExit(f"--train-sizes {n}: {args.train} has only {len(train['x'])} one-source scenes")
            net, mean, std = train_probe(_subset(train, n), args.epochs, args.seed, val_fraction=0.1)
            cells = [score(net, mean, std, data, median) for data in tests.values()]
            if args.predictions:
                for path, cell in zip(tests, cells):
                    write_predictions(args.predictions / f"{Path(path).name}_{n}.csv", cell["predictions"])
            print(f"| {n} | " + " | ".join(f"{c['front_back_correct_pct']:.1f} of {c['scored']} / "
                                          f"{c['elevation_mae_deg']:.1f} (median {c['median_elevation_mae_deg']:.1f})"
                                          for c in cells) + " |", flush=True)
        return
    net, mean, std = train_probe(train, args.epochs, args.seed)
    print(f"trained on {len(train['x'])} one-source scenes of {args.train}")
    for path, data in [(args.train, train), *tests.items()]:
        result = score(net, mean, std, data, median)
        if args.predictions and path != args.train:
            write_predictions(args.predictions / f"{Path(path).name}_{len(train['x'])}.csv", result["predictions"])
        print(f"\n{path}: front/back correct {result['front_back_correct_pct']:.1f} % of {result['scored']} "
              f"(front share {result['front_share_pct']:.1f} %); elevation MAE {result['elevation_mae_deg']:.1f} deg "
              f"(median answer {result['median_elevation_mae_deg']:.1f} deg)")
        by_class = ", ".join(f"{k} {acc:.0f} % ({n})" for k, (acc, n) in result["per_class"].items())
        print(f"  front/back by class: {by_class}")


if __name__ == "__main__":
    main()
