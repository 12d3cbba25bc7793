"""Real recordings with known directions: build a labelled set from measured impulse responses (SOFA)
and real clips, and read any labelled folder of recordings for evaluation (sim-to-real).

A labelled recordings folder holds audio files of any format soundfile reads, at any sample rate, and
a labels CSV (default ``FOLDER/labels.csv``) with one row per file:

    file           path of the audio file, relative to the folder (or absolute)       required
    azimuth_deg    source azimuth, listener frame, [-180, 180], +90 = left            required
    elevation_deg  source elevation, [-90, 90], +90 = up                               required
    distance_m     source distance from the head centre in metres, >= 0; empty = unknown   optional
    label          the source's class name; empty = unknown                           optional
    front_back_cue_db, above_below_cue_db
                   the source's spectral cue on that axis in dB, >= 0 (how much the head's colouring
                   of this sound changes between its direction and the mirror image across the axis'
                   plane: :mod:`spatial_alm.acoustics.spectral_cues`); empty = unknown  optional

Other columns are kept out of the way (``build_from_sofa`` adds ``source_clip`` and ``measurement``).

:func:`build_from_sofa` writes such a folder: every chosen clip convolved with the measured binaural
impulse responses of every chosen direction, one float32 WAV per clip x direction under ``audio/``
(written with scipy, which adds no time stamp: libsndfile's float WAVs carry one in a PEAK chunk),
plus ``labels.csv`` (with each file's spectral cues, from the clip and the head's measured responses, as
simulated scenes record them) and ``recordings.json`` (how it was made). See ``datasets/README.md``.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import soundfile
import torch
import torchaudio
from torch.utils.data import Dataset
from tqdm.auto import tqdm

LABELS_FILENAME = "labels.csv"
PROVENANCE_FILENAME = "recordings.json"
REQUIRED_COLUMNS = ("file", "azimuth_deg", "elevation_deg")
CUE_COLUMNS = ("front_back_cue_db", "above_below_cue_db")  # as SceneMeta's sources: SPECTRAL_CUE_FIELDS
OPTIONAL_COLUMNS = ("distance_m", "label", *CUE_COLUMNS)


@dataclass(frozen=True)
class Recording:
    """One labelled audio file. distance_m and the cues are NaN and label "" when the CSV does not give them."""

    path: Path
    file: str  # as written in the CSV
    azimuth_deg: float
    elevation_deg: float
    distance_m: float
    label: str
    num_channels: int
    fs_hz: int
    num_frames: int
    front_back_cue_db: float = math.nan
    above_below_cue_db: float = math.nan


def _row_error(csv_path: Path, row: int, line: int, field: str, value, allowed: str) -> ValueError:
    return ValueError(f"{csv_path}: row {row} (line {line}): field {field!r} = {value!r}; allowed: {allowed}")


def _number(csv_path, row, line, field, text, lo, hi, unit) -> float:
    allowed = f"a number of {unit} in [{lo:g}, {hi:g}]" if math.isfinite(hi) else f"a number of {unit} >= {lo:g}"
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise _row_error(csv_path, row, line, field, text, allowed) from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise _row_error(csv_path, row, line, field, text, allowed)
    return value


def _optional_number(csv_path, row, line, field, text, unit) -> float:
    """A number >= 0 of an optional column; NaN for an empty cell or a missing column."""
    text = (text or "").strip()
    return _number(csv_path, row, line, field, text, 0, math.inf, unit) if text else math.nan


def read_labelled_recordings(folder: str | Path, csv_path: str | Path | None = None) -> list[Recording]:
    """The rows of a labels CSV (default ``folder/labels.csv``) as :class:`Recording` s, in CSV order.

    Every row is checked: the file exists and soundfile can read it, the azimuth is in [-180, 180]
    (-180 is stored as 180), the elevation in [-90, 90], the distance and the cues (when given) >= 0. A bad row
    raises ValueError naming the CSV, the row (1 = first data row), its line, the field and the value.
    """
    folder = Path(folder)
    csv_path = folder / LABELS_FILENAME if csv_path is None else Path(csv_path)
    if not folder.is_dir():
        raise ValueError(f"recordings folder {folder} is not a directory")
    if not csv_path.is_file():
        raise ValueError(f"labels CSV {csv_path} not found (columns: {', '.join(REQUIRED_COLUMNS)} required, "
                         f"{', '.join(OPTIONAL_COLUMNS)} optional)")
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{csv_path}: column(s) {missing} missing; columns are {columns}; required: "
                             f"{', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)}")
        reader.fieldnames = columns
        rows = [(reader.line_num, record) for record in reader]
    if not rows:
        raise ValueError(f"{csv_path}: no rows (one row per audio file is expected)")
    out = []
    for row, (line, record) in enumerate(rows, start=1):
        file = (record.get("file") or "").strip()
        path = folder / file
        if not file or not path.is_file():
            raise _row_error(csv_path, row, line, "file", file, f"an audio file relative to {folder} (not found)")
        try:
            info = soundfile.info(path)
        except (soundfile.LibsndfileError, OSError, RuntimeError) as err:
            raise _row_error(csv_path, row, line, "file", file, f"an audio file soundfile can read ({err})") from None
        if info.frames < 1:
            raise _row_error(csv_path, row, line, "file", file, "an audio file with at least one frame")
        azimuth = _number(csv_path, row, line, "azimuth_deg", record.get("azimuth_deg"), -180, 180, "degrees")
        elevation = _number(csv_path, row, line, "elevation_deg", record.get("elevation_deg"), -90, 90, "degrees")
        distance, front_back, above_below = (
            _optional_number(csv_path, row, line, field, record.get(field), unit)
            for field, unit in (("distance_m", "metres"), *((column, "dB") for column in CUE_COLUMNS)))
        out.append(Recording(path, file, 180.0 if azimuth == -180 else azimuth, elevation, distance,
                             (record.get("label") or "").strip(), info.channels, info.samplerate, info.frames,
                             front_back, above_below))
    return out


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """An audio file's samples (frames, channels) float32 and its rate in Hz. ValueError naming the file
    when soundfile cannot read it, it holds no samples, or a sample is NaN or infinite."""
    try:
        data, fs_hz = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as err:
        why = getattr(err, "error_string", None) or str(err)
        raise ValueError(f"{path}: not readable as audio ({why}); allowed: a sound file soundfile reads "
                         "(WAV, FLAC, OGG, ...)") from None
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no samples; allowed: a sound file with audio in it")
    bad = ~np.isfinite(data)
    if bad.any():
        first_s = np.argwhere(bad)[0][0] / fs_hz
        raise ValueError(f"{path}: {int(bad.sum())} NaN or infinite sample(s), the first at {first_s:.3f} s; "
                         "allowed: finite samples")
    return data, int(fs_hz)


def resample(data: np.ndarray, from_hz: int, to_hz: int) -> torch.Tensor:
    """(frames, channels) samples at ``from_hz`` -> (channels, samples) float32 at ``to_hz`` (torchaudio)."""
    audio = torch.from_numpy(np.ascontiguousarray(data.T))
    return audio if from_hz == to_hz else torchaudio.functional.resample(audio, int(from_hz), int(to_hz))


def load_audio(path: str | Path, fs_hz: int) -> torch.Tensor:
    """An audio file as float32 (channels, samples) at ``fs_hz``, checked by :func:`read_audio`."""
    data, file_fs_hz = read_audio(path)
    return resample(data, file_fs_hz, fs_hz)


def centre_window(audio: torch.Tensor, num_samples: int) -> torch.Tensor:
    """The centre ``num_samples`` of (C, T): cropped when longer, zero-padded on both sides when shorter."""
    length = audio.shape[-1]
    if length >= num_samples:
        start = (length - num_samples) // 2
        return audio[..., start:start + num_samples]
    before = (num_samples - length) // 2
    return torch.nn.functional.pad(audio, (before, num_samples - length - before))


class RecordingDataset(Dataset):
    """Labelled recordings as scene-like items for the encoder report.

    Each item: ``audio`` (C, num_samples) float32 at ``fs_hz`` (the file resampled, then its centre
    window, see :func:`centre_window`), ``file``, ``labels`` ([label]), ``azimuth_deg``,
    ``elevation_deg``, ``distance_m`` (one-element float64 tensors) and ``level_db`` None, as
    :class:`spatial_alm.data.SpatialSceneDataset` items with one source.
    """

    def __init__(self, recordings: list[Recording], fs_hz: int, num_samples: int, num_channels: int):
        wrong = [r for r in recordings if r.num_channels != num_channels]
        if wrong:
            raise ValueError(f"recording {wrong[0].path} has {wrong[0].num_channels} channel(s); allowed: "
                             f"{num_channels} (the encoder's input channels)")
        self.recordings = list(recordings)
        self.fs_hz = int(fs_hz)
        self.num_samples = int(num_samples)

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, i: int) -> dict:
        r = self.recordings[i]
        return {
            "audio": centre_window(load_audio(r.path, self.fs_hz), self.num_samples),
            "file": r.file,
            "labels": [r.label],
            "azimuth_deg": torch.tensor([r.azimuth_deg], dtype=torch.float64),
            "elevation_deg": torch.tensor([r.elevation_deg], dtype=torch.float64),
            "distance_m": torch.tensor([r.distance_m], dtype=torch.float64),
            "level_db": None,
        }


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} = {value!r}; allowed: an integer >= 1")
    return int(value)


def build_from_sofa(sofa: str | Path, clips: str | Path, out: str | Path, *, num_clips: int, num_directions: int,
                    fs_hz: int = 16000, seed: int = 0, duration_s: float | None = None,
                    elevation_range_deg: tuple[float, float] | None = None, clips_csv: str | Path | None = None,
                    split: str | None = None, azimuth_convention: str = "ccw", equalisation: str = "none",
                    progress: bool = True) -> dict:
    """Convolve real clips with the measured binaural impulse responses of a SOFA file into a labelled set.

    sofa: a SOFA file of measured binaural impulse responses with the SimpleFreeFieldHRIR layout
        (``Data.IR`` (M, 2, N), ``SourcePosition``): HRIRs, or room BRIRs (then directions are relative
        to ListenerPosition / ListenerView). Read by :class:`spatial_alm.acoustics.SofaHead`, which
        checks the azimuth sign against the interaural cues (``azimuth_convention``: "ccw", "cw", "auto") and
        with ``equalisation="diffuse_field"`` equalises them as simulated heads can be
        (:class:`~spatial_alm.acoustics.heads.MeasuredHead`).
    clips: an ESC-50 folder (``audio/`` + ``esc50.csv`` or ``meta/esc50.csv``), or with ``clips_csv`` a
        folder of clips labelled by a CSV (``filename,label[,split]``; :func:`load_csv_folder`).
    out: the output folder (created; must be empty): ``audio/*.wav`` (float32, 2 channels, ``fs_hz``),
        ``labels.csv`` (file, label, azimuth_deg, elevation_deg, distance_m, front_back_cue_db,
        above_below_cue_db, source_clip, measurement), ``recordings.json``. The cues: each clip's
        :func:`~spatial_alm.acoustics.spectral_cues.spectral_cues_db` at its direction through this head
        (the mirror images' responses the nearest measured ones, as in simulated scenes; for room BRIRs
        the whole response, reverberation included).
    num_clips: clips drawn (seeded, without replacement; silent files passed over) from the corpus
        (``split``: only that split, e.g. "test"). num_directions: measured directions drawn (seeded,
        without replacement) from the SOFA grid, only those with elevation in ``elevation_range_deg``
        (inclusive) when given. Every clip is rendered at every direction.
    fs_hz: output rate; clips and impulse responses are resampled to it with torchaudio.
    duration_s: each clip's length: an energetic crop of longer clips, zero-padding of shorter ones as
        scenes do (:meth:`AudioCorpus.excerpt`); None keeps whole clips. Clips are RMS-normalised
        (``TARGET_RMS``) before the convolution (torchaudio.functional.fftconvolve, output cut to the
        clip's length), the impulse responses keep their measured gains.
    seed: the same arguments and seed give byte-identical files.

    Returns the provenance written to ``recordings.json``.
    """
    from spatial_alm.acoustics.heads import SofaHead
    from spatial_alm.acoustics.spectral_cues import spectral_cues_db
    from spatial_alm.coordinates import cartesian_to_spherical
    from spatial_alm.scenes.corpus import load_csv_folder, load_esc50

    num_clips = _positive_int("num_clips", num_clips)
    num_directions = _positive_int("num_directions", num_directions)
    fs_hz = _positive_int("fs_hz", fs_hz)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed = {seed!r}; allowed: an integer >= 0")
    if duration_s is not None and not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s)
                                       and duration_s > 0):
        raise ValueError(f"duration_s = {duration_s!r}; allowed: a number of seconds > 0, or None (whole clips)")
    if elevation_range_deg is not None:
        lo, hi = (float(v) for v in elevation_range_deg)
        if not -90 <= lo <= hi <= 90:
            raise ValueError(f"elevation_range_deg = {elevation_range_deg!r}; allowed: LO <= HI within [-90, 90]")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output folder {out} exists and is not empty; allowed: a new or empty folder")

    head = SofaHead(sofa, azimuth_convention=azimuth_convention, equalisation=equalisation)
    table = head.table(fs_hz)
    azimuth, elevation, _ = cartesian_to_spherical(table.directions)
    distance = head.distances_m
    candidates = np.arange(len(azimuth))
    if elevation_range_deg is not None:
        keep = (elevation >= lo - 1e-9) & (elevation <= hi + 1e-9)
        candidates = candidates[keep.numpy()]
    if num_directions > len(candidates):
        where = "" if elevation_range_deg is None else f" with elevation in [{lo:g}, {hi:g}]"
        raise ValueError(f"num_directions (--directions) = {num_directions}; allowed: at most {len(candidates)} "
                         f"(the measured directions of {sofa}{where})")
    chosen = np.sort(np.random.default_rng([seed, 0]).choice(candidates, size=num_directions, replace=False))

    try:
        corpus = load_esc50(clips) if clips_csv is None else load_csv_folder(clips, clips_csv)
    except FileNotFoundError as err:
        raise ValueError(f"clips = {str(clips)!r}: {err}; allowed: an ESC-50 folder, or a folder of clips with "
                         f"clips_csv (--clips-csv) naming a CSV of filename,label") from None
    if split is not None:
        corpus = corpus.split(split)
    if num_clips > len(corpus):
        raise ValueError(f"num_clips = {num_clips}; allowed: at most {len(corpus)} (the usable clips in {clips}"
                         f"{'' if split is None else f', split {split!r}'})")
    clip_rng = np.random.default_rng([seed, 1])
    entries, signals = [], []
    for index in clip_rng.permutation(len(corpus)):
        entry = corpus.entries[index]
        if not np.any(corpus.load(entry, fs_hz)):
            continue  # a silent file
        entries.append(entry)
        signals.append(corpus.excerpt(entry, fs_hz, duration_s, np.random.default_rng([seed, 2, len(entries)])))
        if len(entries) == num_clips:
            break
    if len(entries) < num_clips:
        raise ValueError(f"num_clips = {num_clips}; only {len(entries)} clips in {clips} are not silent")

    hrirs = table.hrirs[torch.from_numpy(chosen)]  # (D, 2, L)
    directions = table.directions[torch.from_numpy(chosen)]  # (D, 3)
    labels = []
    for d in chosen:
        az = round(float(azimuth[d]), 4)
        labels.append((az + 360.0 if az <= -180.0 else az, round(float(elevation[d]), 4), round(float(distance[d]), 4)))
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    bar = tqdm(total=num_clips * num_directions, desc="from-sofa", unit="file", disable=not progress)
    for entry, signal in zip(entries, signals):
        x = torch.from_numpy(signal)
        rendered = torchaudio.functional.fftconvolve(x.expand(num_directions, 2, -1), hrirs)[..., :x.shape[-1]]
        cues = spectral_cues_db(head, directions, x.expand(num_directions, -1), fs_hz)
        stem = Path(entry.path).stem
        for d, (az, el, dist), audio, *cue in zip(chosen, labels, rendered, cues["front_back"], cues["above_below"]):
            name = f"audio/{len(rows):05d}_{stem}_az{az:+06.1f}_el{el:+05.1f}.wav"
            scipy.io.wavfile.write(out / name, fs_hz, audio.T.contiguous().numpy())  # float32 WAV
            rows.append([name, entry.label, f"{az:.4f}", f"{el:.4f}", f"{dist:.4f}", *(f"{c:.2f}" for c in cue),
                         entry.path, int(d)])
            bar.update()
    bar.close()
    with open(out / LABELS_FILENAME, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "azimuth_deg", "elevation_deg", "distance_m", *CUE_COLUMNS, "source_clip",
                         "measurement"])
        writer.writerows(rows)
    provenance = {
        "sofa": str(sofa), "azimuth_convention": azimuth_convention, "azimuth_flipped": head.azimuth_flipped,
        "equalisation": equalisation,
        "azimuth_check": asdict(head.azimuth_check), "clips": str(clips),
        "clips_csv": None if clips_csv is None else str(clips_csv), "split": split, "seed": seed, "fs_hz": fs_hz,
        "duration_s": duration_s, "elevation_range_deg": None if elevation_range_deg is None else [lo, hi],
        "num_clips": num_clips, "num_directions": num_directions, "num_files": len(rows),
        "measurements": [int(d) for d in chosen], "sample_format": "WAV float32, channel 0 = left ear",
    }
    (out / PROVENANCE_FILENAME).write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance
