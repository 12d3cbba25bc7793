"""Real audio corpora (ESC-50, CSV-labelled folders) behind the ``SourceLibrary`` interface.

Recipes are plain functions that read a folder and return an :class:`AudioCorpus`; ``load_corpus``
picks the procedural library or a recipe from a config mapping.

Splits never leak a recording: every entry carries a ``source_id`` (the recording the clip was cut
from) and clips sharing it share a split. Where a corpus gives no usable split, the split is a
deterministic hash of the source id (``hash_split``), identical on every machine and run.

Clips returned by :meth:`AudioCorpus.sample` follow the procedural library's convention: float32,
(samples,), mono, at the requested rate, RMS-normalised to ``TARGET_RMS``.

Example::

    corpus = load_corpus({"type": "esc50", "root": "data/ESC-50", "split": "train"})
    signal, clip_id = corpus.sample("dog", 16000, 2.0, np.random.default_rng(0))
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import logging
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import soundfile
import torch
import torchaudio

from spatial_alm.scenes.sources import ProceduralLibrary, SourceLibrary, check_rate_duration, rms_normalise

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class CorpusEntry:
    """One audio file of a corpus."""

    path: str  # relative to the corpus root, POSIX separators; also the clip_id
    label: str
    split: str  # e.g. "train", "test", or a CSV's own split names
    source_id: str  # recording the clip was cut from; entries sharing it share a split


class AudioCorpus:
    """Labelled audio files under ``root`` that scenes draw sources from.

    Args:
        root: folder the entries' paths are relative to.
        entries: the usable files.
        skipped: (relative path, reason) for each file the recipe left out.
        cache_mb: bound on the in-memory cache of decoded, resampled clips (least recently used
            evicted first); 0 disables it.
        crop_energy_fraction: a crop of a longer clip starts where the window keeps at least this
            fraction of the energy of the clip's most energetic window, so crops do not land in the
            silent padding many clips carry; 0 gives uniformly random crops.
    """

    def __init__(
        self,
        root: str | Path,
        entries: Iterable[CorpusEntry],
        *,
        skipped: Iterable[tuple[str, str]] = (),
        cache_mb: float = 256.0,
        crop_energy_fraction: float = 0.5,
    ):
        if cache_mb < 0:
            raise ValueError(f"cache_mb={cache_mb!r} must be >= 0")
        if not 0.0 <= crop_energy_fraction <= 1.0:
            raise ValueError(f"crop_energy_fraction={crop_energy_fraction!r} must be in [0, 1]")
        self.root = Path(root)
        self.entries: tuple[CorpusEntry, ...] = tuple(entries)
        self.skipped: tuple[tuple[str, str], ...] = tuple(skipped)
        self.cache_mb = cache_mb
        self.crop_energy_fraction = crop_energy_fraction
        self._by_label: dict[str, list[CorpusEntry]] = {}
        for entry in self.entries:
            self._by_label.setdefault(entry.label, []).append(entry)
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._cache_bytes = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return (
            f"AudioCorpus(root={str(self.root)!r}, entries={len(self)}, labels={len(self.labels)}, "
            f"skipped={len(self.skipped)})"
        )

    @property
    def labels(self) -> tuple[str, ...]:
        """Sorted class names."""
        return tuple(sorted(self._by_label))

    @property
    def splits(self) -> tuple[str, ...]:
        """Sorted split names present."""
        return tuple(sorted({e.split for e in self.entries}))

    def split(self, name: str) -> "AudioCorpus":
        """The entries of split ``name`` as a new corpus with the same settings (and an empty cache)."""
        if name not in self.splits:
            raise ValueError(f"split={name!r} is not in this corpus; allowed: {', '.join(self.splits)}")
        return AudioCorpus(
            self.root,
            (e for e in self.entries if e.split == name),
            skipped=self.skipped,
            cache_mb=self.cache_mb,
            crop_energy_fraction=self.crop_energy_fraction,
        )

    def load(self, entry: CorpusEntry, fs_hz: int) -> np.ndarray:
        """The whole file as mono at ``fs_hz``: read-only float32 (samples,), not normalised."""
        key = (entry.path, int(fs_hz))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path = self.root / entry.path
        try:
            data, file_fs_hz = soundfile.read(path, dtype="float32", always_2d=True)  # (frames, channels)
        except (soundfile.LibsndfileError, OSError) as err:
            raise OSError(f"cannot read audio file {path}: {err}") from err
        mono = data.mean(axis=1)
        if file_fs_hz != fs_hz:
            mono = torchaudio.functional.resample(torch.from_numpy(mono), file_fs_hz, int(fs_hz)).numpy()
        mono.flags.writeable = False  # shared with the cache
        self._remember(key, mono)
        return mono

    def _remember(self, key: tuple[str, int], clip: np.ndarray) -> None:
        limit = self.cache_mb * 2**20
        if clip.nbytes > limit:
            return
        self._cache[key] = clip
        self._cache_bytes += clip.nbytes
        while self._cache_bytes > limit:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.nbytes

    def sample(
        self, label: str, fs_hz: int, duration_s: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, str]:
        """A random clip of ``label``, cropped or zero-padded to ``duration_s``.

        Longer clips are cropped at a random start among the energetic ones (see
        ``crop_energy_fraction``); shorter clips are placed at a random offset in zeros. Files
        that are entirely silent are passed over.

        Returns:
            (float32 (round(duration_s * fs_hz),) RMS-normalised to ``TARGET_RMS``, clip_id = the
            file's path relative to the corpus root).
        """
        if label not in self._by_label:
            raise ValueError(f"label={label!r} is not in this corpus; allowed: {', '.join(self.labels)}")
        n = check_rate_duration(fs_hz, duration_s)
        candidates = self._by_label[label]
        for index in rng.permutation(len(candidates)):
            entry = candidates[index]
            clip = self.load(entry, fs_hz)
            if not np.any(clip):
                logger.warning("skipping silent audio file %s", self.root / entry.path)
                continue
            return rms_normalise(self._crop(clip, n, rng)), entry.path
        raise ValueError(f"every audio file of label={label!r} is silent")

    def excerpt(
        self, entry: CorpusEntry, fs_hz: int, duration_s: float | None, rng: np.random.Generator
    ) -> np.ndarray:
        """``entry``'s clip at ``fs_hz``, cropped or zero-padded to ``duration_s`` as :meth:`sample` does
        (None: the whole clip), RMS-normalised to ``TARGET_RMS``; ValueError naming the file if it is silent."""
        clip = self.load(entry, fs_hz)
        if not np.any(clip):
            raise ValueError(f"audio file {self.root / entry.path} is silent")
        if duration_s is not None:
            clip = self._crop(clip, check_rate_duration(fs_hz, duration_s), rng)
        return rms_normalise(clip)

    def _crop(self, clip: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) window of ``clip``: an energetic crop if longer, a randomly placed zero-pad if shorter."""
        if len(clip) < n:
            out = np.zeros(n, dtype=np.float32)
            offset = int(rng.integers(0, n - len(clip) + 1))
            out[offset:offset + len(clip)] = clip
            return out
        energy = np.concatenate([[0.0], np.cumsum(np.square(clip, dtype=np.float64))])
        window = energy[n:] - energy[:-n]  # energy of the crop starting at each sample
        starts = np.flatnonzero(window >= self.crop_energy_fraction * window.max())
        start = int(starts[rng.integers(len(starts))])
        return clip[start:start + n]


def hash_split(source_id: str, test_fraction: float) -> str:
    """The split of ``source_id``: "test" for a fixed ``test_fraction`` of ids (by SHA-1), else "train"."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction={test_fraction!r} must be in [0, 1]")
    u = int.from_bytes(hashlib.sha1(source_id.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return "test" if u < test_fraction else "train"


def _resolve(folder: Path, filename: str) -> Path:
    """``folder / filename``, or the same name with another audio suffix when only that exists."""
    path = folder / filename
    if path.exists():
        return path
    for suffix in AUDIO_SUFFIXES:
        for candidate in (path.with_suffix(suffix), Path(f"{path}{suffix}")):
            if candidate.exists():
                return candidate
    return path


def _check_file(path: Path) -> str | None:
    """Why ``path`` cannot be used (missing, unreadable header, no frames), or None when it can."""
    if not path.is_file():
        return "missing"
    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, OSError) as err:
        return f"unreadable ({err})"
    return None if info.frames > 0 else "no audio frames"


def _build(
    name: str,
    root: Path,
    rows: Sequence[tuple[Path, str, str, str]],
    strict: bool,
    skipped: Sequence[tuple[str, str]] = (),
    **corpus_kwargs: Any,
) -> AudioCorpus:
    """Check each (path, label, split, source_id) row's file and make the corpus.

    With ``strict`` the first bad file raises ``OSError`` naming it; otherwise bad files are skipped,
    listed after the already ``skipped`` rows in ``corpus.skipped`` and summarised in one warning.
    """
    entries, skipped = [], list(skipped)
    for path, label, split, source_id in rows:
        reason = _check_file(path)
        rel = Path(os.path.relpath(path, root)).as_posix()
        if reason is None:
            entries.append(CorpusEntry(rel, label, split, source_id))
        elif strict:
            raise OSError(f"{name}: audio file {path} is {reason}")
        else:
            skipped.append((rel, reason))
    if skipped:
        shown = "; ".join(f"{p}: {r}" for p, r in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        total = len(entries) + len(skipped)
        warnings.warn(f"{name}: skipped {len(skipped)} of {total} audio files: {shown}{more}", stacklevel=3)
    return AudioCorpus(root, entries, skipped=skipped, **corpus_kwargs)


def _finish(corpus: AudioCorpus, split: str | None) -> AudioCorpus:
    return corpus if split is None else corpus.split(split)


def load_esc50(
    root: str | Path,
    split: str | None = None,
    test_folds: Sequence[int] = (5,),
    test_fraction: float = 0.2,
    strict: bool = False,
    cache_mb: float = 256.0,
    crop_energy_fraction: float = 0.5,
) -> AudioCorpus:
    """ESC-50: ``root/audio/*.wav|flac`` and ``root/esc50.csv`` or ``root/meta/esc50.csv``.

    Labels are the ``category`` column; ``source_id`` is ``src_file``. Split rule: when the folds
    present include both a fold in ``test_folds`` and another fold, split by fold (ESC-50 keeps each
    source file inside one fold); otherwise (e.g. a single fold on disk) split by ``hash_split`` of
    ``src_file`` with ``test_fraction``.

    Args:
        root: the ESC-50 folder.
        split: "train" or "test" for that part only; None for all entries.
        test_folds: folds (1-5) that form the test split.
        test_fraction: fraction of source files in the test split when folds do not separate.
        strict: raise ``OSError`` naming the first missing or unreadable file instead of skipping it.
        cache_mb, crop_energy_fraction: passed to :class:`AudioCorpus`.
    """
    root = Path(root)
    csv_paths = [root / "esc50.csv", root / "meta" / "esc50.csv"]
    csv_path = next((p for p in csv_paths if p.is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(f"ESC-50 metadata not found; looked for {', '.join(map(str, csv_paths))}")
    with open(csv_path, newline="") as f:
        records = list(csv.DictReader(f))
    folds = {int(r["fold"]) for r in records}
    by_fold = bool(folds & set(test_folds)) and bool(folds - set(test_folds))
    rule = f"folds {sorted(test_folds)} as test" if by_fold else f"src_file hash, {test_fraction:.0%} test"
    logger.info("ESC-50 at %s: folds %s on disk, split %s", root, sorted(folds), rule)

    def split_of(r: dict[str, str]) -> str:
        if by_fold:
            return "test" if int(r["fold"]) in test_folds else "train"
        return hash_split(r["src_file"], test_fraction)

    rows = [
        (_resolve(root / "audio", r["filename"]), r["category"], split_of(r), r["src_file"]) for r in records
    ]
    corpus = _build(
        "ESC-50", root, rows, strict, cache_mb=cache_mb, crop_energy_fraction=crop_energy_fraction
    )
    return _finish(corpus, split)


def stem_prefix(filename: str, separator: str = "-") -> str:
    """Default source id of a file: its stem up to the first ``separator`` ("rec12-3.wav" -> "rec12")."""
    return Path(filename).stem.split(separator, 1)[0]


def load_csv_folder(
    root: str | Path,
    csv_path: str | Path,
    split: str | None = None,
    test_fraction: float = 0.2,
    source_id: Callable[[str], str] = stem_prefix,
    filename_column: str = "filename",
    label_column: str = "label",
    split_column: str = "split",
    strict: bool = False,
    cache_mb: float = 256.0,
    crop_energy_fraction: float = 0.5,
) -> AudioCorpus:
    """A folder of audio files with a CSV of ``filename,label[,split][,source_id]`` (FSD50K/AudioSet exports).

    Filenames are relative to ``root``; one without an audio suffix (FSD50K's ``fname``) is matched
    to the file with a ``.wav``/``.flac``/``.ogg`` suffix. Multi-label cells ("a,b") keep the first
    label (FSD50K lists the most specific label first). The source id is the ``source_id`` column
    when there is one, else ``source_id(filename)`` (default: the stem up to the first '-'). The
    split is the split column's value when there is one and the cell is not empty, else
    ``hash_split(source_id, test_fraction)``. Rows with an empty label are skipped like bad files.

    Args:
        root: folder the filenames are relative to.
        csv_path: the CSV file (a relative path is relative to the working directory).
        split: keep only this split (None: all entries).
        test_fraction: fraction of source ids in "test" when the CSV gives no split.
        source_id: maps a filename to its recording id when the CSV has no ``source_id`` column.
        filename_column, label_column, split_column: CSV column names.
        strict: raise ``OSError`` naming the first missing or unreadable file instead of skipping it.
        cache_mb, crop_energy_fraction: passed to :class:`AudioCorpus`.
    """
    root, csv_path = Path(root), Path(csv_path)
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        records = list(reader)
    for column in (filename_column, label_column):
        if column not in columns:
            raise ValueError(f"{csv_path}: column {column!r} missing; columns are {columns}")
    rows, skipped = [], []
    for r in records:
        filename = r[filename_column].strip()
        label = r[label_column].split(",")[0].strip()
        if not label:
            skipped.append((filename, "empty label"))
            continue
        sid = (r.get("source_id") or "").strip() or source_id(filename)
        part = (r.get(split_column) or "").strip() or hash_split(sid, test_fraction)
        rows.append((_resolve(root, filename), label, part, sid))
    corpus = _build(
        csv_path.name, root, rows, strict, skipped, cache_mb=cache_mb,
        crop_energy_fraction=crop_energy_fraction,
    )
    return _finish(corpus, split)


CORPUS_LOADERS: dict[str, Callable[..., SourceLibrary]] = {
    "procedural": ProceduralLibrary,
    "esc50": load_esc50,
    "csv": load_csv_folder,
}


def load_corpus(spec: str | Mapping[str, Any]) -> SourceLibrary:
    """A source library from a config: ``"procedural"`` or a mapping with ``type`` and the loader's arguments.

    Examples: ``"procedural"``, ``{"type": "procedural", "labels": ["siren", "bell"]}``,
    ``{"type": "esc50", "root": "data/ESC-50", "split": "train"}``,
    ``{"type": "csv", "root": "data/clips", "csv_path": "data/clips/labels.csv"}``.
    """
    params = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = params.pop("type", None)
    if kind not in CORPUS_LOADERS:
        raise ValueError(f"corpus type={kind!r} is not known; allowed: {', '.join(CORPUS_LOADERS)}")
    signature = inspect.signature(CORPUS_LOADERS[kind]).parameters
    unknown = sorted(set(params) - set(signature))
    if unknown:
        raise ValueError(f"corpus type={kind!r} got unknown keys {unknown}; allowed: {', '.join(signature)}")
    missing = [k for k, p in signature.items() if p.default is inspect.Parameter.empty and k not in params]
    if missing:
        raise ValueError(f"corpus type={kind!r} needs keys {missing}")
    return CORPUS_LOADERS[kind](**params)
