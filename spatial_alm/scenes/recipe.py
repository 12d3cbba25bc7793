"""Scene recipes: the validated configuration that the sampler and the renderer read.

A recipe is a YAML file with the sections of :class:`SceneRecipe` (every field is documented in
``simulation/README.md``)::

    recipe = SceneRecipe.from_yaml("simulation/tiny_binaural.yaml", {"room.rt60_s": [0.3, 0.5]})
    text = recipe.to_yaml()  # canonical text, stored with every dataset shard

Ranges are ``[min, max]`` pairs (one number means a fixed value) and are sampled uniformly per
scene. Every check raises ``ValueError`` naming the field (``room.rt60_s``), the value and what is
allowed; an unknown key names itself and lists the valid keys of its section. Paths (corpus root,
SOFA file) may use environment variables; ``${SPATIAL_ALM_SHARED_DATA}`` defaults to
``../shared/data`` beside the repository. Paths are kept as written (so the canonical text is the
same on every machine) and expanded where they are used.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from spatial_alm.acoustics.arrays import NAMED_ARRAYS
from spatial_alm.acoustics.heads import EQUALISATIONS
from spatial_alm.acoustics.room import SABINE_CONSTANT
from spatial_alm.acoustics.structural_head import DRAW_RANGES, check_draw_ranges
from spatial_alm.config import load_yaml_file, merge_overrides
from spatial_alm.coordinates import ALL_AXES, SPEED_OF_SOUND_M_S
from spatial_alm.qa.generator import QUESTION_TYPES, types_for_stage
from spatial_alm.scenes.corpus import CORPUS_LOADERS, load_corpus
from spatial_alm.scenes.head_pool import (
    ALLOWED_SPECS,
    HEAD_SPLITS,
    SPEC_WORDS,
    heads_in_folder,
    spec_class,
    spec_name,
    split_heads,
)
from spatial_alm.scenes.sources import SourceLibrary

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA_ENV = "SPATIAL_ALM_SHARED_DATA"
DEFAULT_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

RECEIVER_TYPES = ("sphere_head", "sofa", "cipic", "structural", "heads", "array")  # implemented by render.RECEIVERS
NOISE_TYPES = ("none", "white", "pink", "diffuse")  # "none" plus render.NOISES
AUDIO_DTYPES = ("int16", "float16")  # on-disk sample formats of spatial_alm.data
CORPUS_PATH_KEYS = ("root", "csv_path")  # corpus options that are paths
UNRESOLVABLE_AXES_CHOICES = ("skip", "ask")  # qa.unresolvable_axes

Range = tuple[float, float]


def shortest_rt60_s(room_dim_m) -> float:
    """Sabine RT60 in seconds of a shoebox (3,) metres whose walls absorb everything (absorption 1)."""
    lx, ly, lz = room_dim_m
    return SABINE_CONSTANT * lx * ly * lz / (SPEED_OF_SOUND_M_S * 2 * (lx * ly + lx * lz + ly * lz))


def expand_path(path: str | os.PathLike) -> Path:
    """Expand ``$VARS``/``~`` in a recipe path; ``SPATIAL_ALM_SHARED_DATA`` defaults to ../shared/data."""
    env = {SHARED_DATA_ENV: str(DEFAULT_SHARED_DATA), **os.environ}
    text = os.path.expanduser(str(path))
    for name in sorted(env, key=len, reverse=True):  # longest first: $FOO_BAR before $FOO
        text = text.replace("${" + name + "}", env[name]).replace("$" + name, env[name])
    return Path(text)


# --- checks --------------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(where: str, value, *, minimum=-math.inf, maximum=math.inf, above=None) -> float:
    """A finite number in [minimum, maximum] (and > ``above`` when given)."""
    allowed = (f"a number > {above}" if above is not None else
               f"a number in [{minimum}, {maximum}]" if math.isfinite(minimum) or math.isfinite(maximum)
               else "a finite number")
    if not _is_number(value) or not minimum <= value <= maximum or (above is not None and value <= above):
        raise ValueError(f"{where} = {value!r}; allowed: {allowed}")
    return float(value)


def _integer(where: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where} = {value!r}; allowed: an integer >= {minimum}")
    return value


def _range(where: str, value, *, minimum=-math.inf, maximum=math.inf, above=None) -> Range:
    """A [min, max] pair (or one number, a fixed value) with min <= max, both allowed by ``_number``."""
    pair = [value, value] if _is_number(value) else value
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise ValueError(f"{where} = {value!r}; allowed: [min, max] or one number")
    lo, hi = (_number(where, v, minimum=minimum, maximum=maximum, above=above) for v in pair)
    if lo > hi:
        raise ValueError(f"{where} = {list(pair)}: min > max; allowed: [min, max] with min <= max")
    return lo, hi


def _choice(where: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{where} = {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


class _Section:
    """Base of the recipe sections: frozen dataclasses whose ``__post_init__`` validates and normalises."""

    SECTION: ClassVar[str]  # dotted prefix of the section's keys in messages ("" at the top level)

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)


# --- sections ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoomSize(_Section):
    """Shoebox dimensions in metres, each axis a [min, max] range."""

    SECTION: ClassVar[str] = "room.size_m"
    x: Range = (4.0, 8.0)
    y: Range = (3.0, 6.0)
    z: Range = (2.5, 3.5)

    def __post_init__(self):
        for axis in ("x", "y", "z"):
            self._set(axis, _range(f"room.size_m.{axis}", getattr(self, axis), above=0))


@dataclass(frozen=True)
class RoomConfig(_Section):
    """Shoebox room: size, reverberation time, start of the diffuse tail."""

    SECTION: ClassVar[str] = "room"
    size_m: RoomSize = field(default_factory=RoomSize)
    rt60_s: Range = (0.2, 0.8)
    tdiff_s: float | str | None = "auto"  # image sources up to here, then the diffuse tail

    def __post_init__(self):
        self._set("rt60_s", _range("room.rt60_s", self.rt60_s, above=0))
        if self.tdiff_s is not None and self.tdiff_s != "auto":
            if not _is_number(self.tdiff_s) or self.tdiff_s <= 0:
                raise ValueError(f"room.tdiff_s = {self.tdiff_s!r}; allowed: 'auto', null (image sources "
                                 "only) or seconds > 0")
            self._set("tdiff_s", float(self.tdiff_s))


@dataclass(frozen=True)
class ReceiverConfig(_Section):
    """The listener: a binaural head or a microphone array, placed and turned at random.

    Types "structural" and "heads" give every scene its own head (``spatial_alm.scenes.head_pool``).
    """

    SECTION: ClassVar[str] = "receiver"
    type: str = "sphere_head"
    sofa_path: str | None = None  # type "sofa": SimpleFreeFieldHRIR file
    cipic_path: str | None = None  # type "cipic": a CIPIC subject_NNN.mat file
    structural: Mapping[str, Any] | None = None  # types "structural", "heads": ranges over DRAW_RANGES
    heads: tuple[str, ...] | None = None  # type "heads": head specs (head_pool.ALLOWED_SPECS)
    heads_dir: str | None = None  # type "heads": a folder of .sofa / CIPIC .mat files (instead of heads)
    split: str = "all"  # type "heads": all | train (all but test_heads) | test (only test_heads)
    test_heads: tuple[str, ...] = ()  # type "heads": names of the held-out heads
    equalisation: str = "none"  # measured heads (types sofa, cipic, heads): none | diffuse_field (heads.EQUALISATIONS)
    array: str | None = None  # type "array": a name of acoustics.NAMED_ARRAYS
    height_m: Range = (1.2, 1.8)
    yaw_deg: Range = (-180.0, 180.0)
    min_wall_distance_m: float = 0.5

    def __post_init__(self):
        _choice("receiver.type", self.type, RECEIVER_TYPES)
        for name, needed_by, suffix in (("sofa_path", "sofa", ".sofa"), ("cipic_path", "cipic", ".mat")):
            if self.type == needed_by and not isinstance(getattr(self, name), str):
                raise ValueError(f"receiver.{name} = {getattr(self, name)!r}; allowed: a path to a {suffix} file "
                                 f"(required by receiver.type '{needed_by}')")
        if self.type == "array":
            _choice("receiver.array", self.array, sorted(NAMED_ARRAYS))
        pooled = ("structural", "heads")
        for name, needed_by in (("sofa_path", ("sofa",)), ("cipic_path", ("cipic",)), ("array", ("array",)),
                                ("structural", pooled), ("heads", ("heads",)), ("heads_dir", ("heads",))):
            if getattr(self, name) is not None and self.type not in needed_by:
                raise ValueError(f"receiver.{name} = {getattr(self, name)!r} is only used with receiver.type "
                                 f"{' or '.join(map(repr, needed_by))} (type is {self.type!r}); allowed: null")
        if self.structural is not None:
            if not isinstance(self.structural, Mapping):
                raise ValueError(f"receiver.structural = {self.structural!r}; allowed: a mapping of parameter "
                                 f"ranges with keys {', '.join(DRAW_RANGES)}")
            checked = check_draw_ranges(self.structural, "receiver.structural")
            self._set("structural", {k: list(v) for k, v in checked.items() if k in self.structural})
        self._check_heads()
        self._check_equalisation()
        self._set("height_m", _range("receiver.height_m", self.height_m, above=0))
        self._set("yaw_deg", _range("receiver.yaw_deg", self.yaw_deg, minimum=-180, maximum=180))
        self._set("min_wall_distance_m", _number("receiver.min_wall_distance_m",
                                                 self.min_wall_distance_m, minimum=0))

    def _check_heads(self) -> None:
        """Type "heads": a head list or folder, a split, test heads that name listed heads."""
        _choice("receiver.split", self.split, HEAD_SPLITS)
        if isinstance(self.test_heads, str) or not isinstance(self.test_heads, (list, tuple)) \
                or not all(isinstance(t, str) for t in self.test_heads):
            raise ValueError(f"receiver.test_heads = {self.test_heads!r}; allowed: a list of head names")
        self._set("test_heads", tuple(self.test_heads))
        if self.type != "heads":
            if self.split != "all" or self.test_heads:
                raise ValueError(f"receiver.split / receiver.test_heads are only used with receiver.type 'heads' "
                                 f"(type is {self.type!r}); allowed: split 'all', no test_heads")
            return
        if (self.heads is None) == (self.heads_dir is None):
            raise ValueError("receiver.type 'heads' needs exactly one of receiver.heads (a list of head specs) and "
                             f"receiver.heads_dir (a folder); got heads = {self.heads!r}, "
                             f"heads_dir = {self.heads_dir!r}")
        if self.heads_dir is not None and not isinstance(self.heads_dir, str):
            raise ValueError(f"receiver.heads_dir = {self.heads_dir!r}; allowed: a path to a folder")
        if self.split != "all" and not self.test_heads:
            raise ValueError(f"receiver.split = {self.split!r} needs receiver.test_heads (the held-out heads' names)")
        if self.heads is not None:
            if isinstance(self.heads, str) or not isinstance(self.heads, (list, tuple)) or not self.heads \
                    or any(spec_class(h) is None for h in self.heads):
                raise ValueError(f"receiver.heads = {self.heads!r}; allowed: a non-empty list of {ALLOWED_SPECS}")
            names = [spec_name(h) for h in self.heads]
            if len(set(names)) != len(names):
                raise ValueError(f"receiver.heads = {list(self.heads)}: two heads share a name ({names}); allowed: "
                                 "distinct files")
            self._set("heads", tuple(self.heads))
            split_heads(self.heads, self.split, self.test_heads)  # test heads must name listed heads

    def _check_equalisation(self) -> None:
        """Diffuse-field equalisation needs measured heads: type sofa or cipic, or heads of files only."""
        _choice("receiver.equalisation", self.equalisation, EQUALISATIONS)
        if self.equalisation == "none":
            return
        analytic = [h for h in self.heads or () if h in SPEC_WORDS]
        if self.type not in ("sofa", "cipic", "heads") or analytic:
            raise ValueError(f"receiver.equalisation = {self.equalisation!r} applies to measured heads only (types "
                             f"'sofa', 'cipic', or 'heads' of .sofa / .mat files); type is {self.type!r}"
                             f"{f' with {analytic}' if analytic else ''}; allowed: 'none'")

    def head_specs(self) -> list[str]:
        """Type "heads": the specs of ``split`` with paths expanded (``heads_dir`` is listed: every .sofa
        and CIPIC .mat file, sorted by name)."""
        if self.heads_dir is not None:
            specs = heads_in_folder(expand_path(self.heads_dir))
        else:
            specs = [h if h in SPEC_WORDS else str(expand_path(h)) for h in self.heads]
        return split_heads(specs, self.split, self.test_heads)

    def cache_key(self) -> tuple:
        """What identifies the receiver model (paths expanded)."""
        def path(value):
            return None if value is None else str(expand_path(value))
        heads = None if self.heads is None else tuple(h if h in SPEC_WORDS else path(h) for h in self.heads)
        return (self.type, path(self.sofa_path), path(self.cipic_path), self.array,
                json.dumps(self.structural, sort_keys=True), heads, path(self.heads_dir), self.split, self.test_heads,
                self.equalisation)


@dataclass(frozen=True)
class SourcesConfig(_Section):
    """How many sources, where (listener frame) and how loud."""

    SECTION: ClassVar[str] = "sources"
    count: tuple[int, int] = (1, 2)
    azimuth_deg: Range = (-180.0, 180.0)
    elevation_deg: Range = (-30.0, 30.0)
    distance_m: Range = (0.5, 3.0)
    min_separation_deg: float = 20.0  # great-circle angle between any two sources
    level_db: Range = (-6.0, 0.0)  # relative to the loudest source of the scene
    min_wall_distance_m: float = 0.3

    def __post_init__(self):
        count = [self.count, self.count] if isinstance(self.count, int) else self.count
        if not isinstance(count, (list, tuple)) or len(count) != 2:
            raise ValueError(f"sources.count = {self.count!r}; allowed: [min, max] or one integer >= 1")
        lo, hi = (_integer("sources.count", c, 1) for c in count)
        if lo > hi:
            raise ValueError(f"sources.count = {list(count)}: min > max; allowed: [min, max] with min <= max")
        self._set("count", (lo, hi))
        self._set("azimuth_deg", _range("sources.azimuth_deg", self.azimuth_deg, minimum=-180, maximum=180))
        self._set("elevation_deg", _range("sources.elevation_deg", self.elevation_deg, minimum=-90, maximum=90))
        self._set("distance_m", _range("sources.distance_m", self.distance_m, above=0))
        self._set("min_separation_deg", _number("sources.min_separation_deg", self.min_separation_deg,
                                                minimum=0, maximum=180))
        self._set("level_db", _range("sources.level_db", self.level_db, maximum=0))
        self._set("min_wall_distance_m", _number("sources.min_wall_distance_m",
                                                 self.min_wall_distance_m, minimum=0))


@dataclass(frozen=True)
class NoiseConfig(_Section):
    """Additive noise: one type per scene, drawn from ``type`` (a name or a list), at an SNR."""

    SECTION: ClassVar[str] = "noise"
    type: tuple[str, ...] = ("white",)
    snr_db: Range = (10.0, 30.0)  # mixture power (mean over channels) over noise power

    def __post_init__(self):
        types = (self.type,) if isinstance(self.type, str) else self.type
        if not isinstance(types, (list, tuple)) or not types:
            raise ValueError(f"noise.type = {self.type!r}; allowed: one of or a list of {', '.join(NOISE_TYPES)}")
        self._set("type", tuple(_choice("noise.type", t, NOISE_TYPES) for t in types))
        self._set("snr_db", _range("noise.snr_db", self.snr_db))


@dataclass(frozen=True)
class CorpusConfig(_Section):
    """Where source signals come from: ``type`` (procedural | esc50 | csv) and its loader's options."""

    SECTION: ClassVar[str] = "corpus"
    type: str = "procedural"
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. labels, root, split, strict

    def __post_init__(self):
        _choice("corpus.type", self.type, sorted(CORPUS_LOADERS))
        valid = inspect.signature(CORPUS_LOADERS[self.type]).parameters
        for key in self.options:
            if key not in valid:
                raise ValueError(f"unknown key 'corpus.{key}' for corpus.type {self.type!r}; valid keys: "
                                 f"type, {', '.join(valid)}")
        missing = [k for k, p in valid.items() if p.default is inspect.Parameter.empty and k not in self.options]
        if missing:
            raise ValueError(f"corpus.type {self.type!r} needs keys {missing}")
        self._set("options", dict(self.options))

    @classmethod
    def from_value(cls, value) -> "CorpusConfig":
        """From ``"procedural"`` or a mapping ``{type: ..., <loader options>}``."""
        if isinstance(value, str):
            return cls(type=value)
        if not isinstance(value, Mapping):
            raise ValueError(f"corpus = {value!r}; allowed: 'procedural' or a mapping with 'type'")
        options = dict(value)
        return cls(type=options.pop("type", "procedural"), options=options)

    def to_value(self) -> dict:
        return {"type": self.type, **self.options}

    def load_spec(self) -> dict:
        """The ``load_corpus`` mapping with paths expanded."""
        spec = self.to_value()
        for key in CORPUS_PATH_KEYS:
            if key in spec:
                spec[key] = str(expand_path(spec[key]))
        return spec


@dataclass(frozen=True)
class QAConfig(_Section):
    """Questions per scene: a curriculum stage, or an explicit list of types (which then wins).

    ``unresolvable_axes``: what yes/no questions (E, negative) do about the axes the receiver cannot
    resolve (``Receiver.resolved_axes``; e.g. front/back and above/below for a rigid-sphere head, whose
    audio is the same for a source and its mirror image): "skip" (default) asks only about resolved
    axes; "ask" asks about all axes, as datasets made before the switch did.

    ``min_spectral_cue_db``: a head hears a source's front/back and above/below side only through the
    colouring of its sound (``SourceMeta.front_back_cue_db`` / ``above_below_cue_db``,
    :mod:`spatial_alm.acoustics.spectral_cues`); a source whose cue on an axis is below this many dB is
    not asked about on it (E, negative). Default 1 dB, about the smallest change of spectral shape
    listeners detect (profile analysis): white noise gets 2-5 dB from the MIT KEMAR, a 440 Hz tone or
    noise below 500 Hz under 1. ``null`` (or ``unresolvable_axes: ask``) asks about every source, as
    datasets made before this setting did.
    """

    SECTION: ClassVar[str] = "qa"
    stage: str = "III"
    types: tuple[str, ...] | None = None
    per_type: int = 1
    unresolvable_axes: str = "skip"
    min_spectral_cue_db: float | None = 1.0

    def __post_init__(self):
        try:
            types_for_stage(self.stage)
        except (ValueError, AttributeError):
            raise ValueError(f"qa.stage = {self.stage!r}; allowed: I, II, III (or 1, 2, 3)") from None
        if self.types is not None:
            if (isinstance(self.types, str) or not isinstance(self.types, (list, tuple)) or not self.types
                    or any(name not in QUESTION_TYPES for name in self.types)):
                raise ValueError(f"qa.types = {self.types!r}; allowed: null or a non-empty list of question "
                                 f"types from {', '.join(QUESTION_TYPES)}")
            self._set("types", tuple(self.types))
        _integer("qa.per_type", self.per_type, 1)
        _choice("qa.unresolvable_axes", self.unresolvable_axes, UNRESOLVABLE_AXES_CHOICES)
        if self.min_spectral_cue_db is not None:
            self._set("min_spectral_cue_db", _number("qa.min_spectral_cue_db", self.min_spectral_cue_db, minimum=0.0))

    def question_types(self) -> list[str]:
        return list(self.types) if self.types is not None else types_for_stage(self.stage)

    def question_axes(self, resolved_axes) -> frozenset[str]:
        """The axes yes/no questions may ask about for a receiver resolving ``resolved_axes``."""
        return ALL_AXES if self.unresolvable_axes == "ask" else frozenset(resolved_axes)

    def spectral_cue_limit(self) -> float | None:
        """The smallest spectral cue (dB) of a source asked about on front/back or above/below; None (no
        limit) with ``unresolvable_axes: ask``, which asks what the audio cannot answer as before."""
        return None if self.unresolvable_axes == "ask" else self.min_spectral_cue_db


@dataclass(frozen=True)
class OutputConfig(_Section):
    """Stored sample format and the peak level every scene is scaled to."""

    SECTION: ClassVar[str] = "output"
    audio_dtype: str = "int16"
    peak_dbfs: float = -1.0

    def __post_init__(self):
        _choice("output.audio_dtype", self.audio_dtype, AUDIO_DTYPES)
        self._set("peak_dbfs", _number("output.peak_dbfs", self.peak_dbfs, minimum=-60, maximum=0))


@dataclass(frozen=True)
class SceneRecipe(_Section):
    """Everything that determines a dataset of scenes, together with the root seed."""

    SECTION: ClassVar[str] = ""
    description: str = ""
    fs_hz: int = 16000
    duration_s: float = 2.0
    room: RoomConfig = field(default_factory=RoomConfig)
    receiver: ReceiverConfig = field(default_factory=ReceiverConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    qa: QAConfig = field(default_factory=QAConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self):
        if not isinstance(self.description, str):
            raise ValueError(f"description = {self.description!r}; allowed: a string")
        _integer("fs_hz", self.fs_hz, 1)
        self._set("duration_s", _number("duration_s", self.duration_s, above=0))
        self._check_room_fits_receiver()
        self._check_rt60_reachable()

    def _check_rt60_reachable(self) -> None:
        smallest = [self.room.size_m.x[0], self.room.size_m.y[0], self.room.size_m.z[0]]
        if self.room.rt60_s[1] < shortest_rt60_s(smallest):
            raise ValueError(f"room.rt60_s = {list(self.room.rt60_s)} cannot be reached: even the smallest room "
                             f"{smallest} m has RT60 >= {shortest_rt60_s(smallest):.3f} s (Sabine, absorption 1); "
                             "allowed: a max RT60 above that, or smaller room.size_m")

    def _check_room_fits_receiver(self) -> None:
        wall = self.receiver.min_wall_distance_m
        for axis in ("x", "y"):
            largest = getattr(self.room.size_m, axis)[1]
            if largest <= 2 * wall:
                raise ValueError(f"room.size_m.{axis} (max {largest} m) leaves no room for the receiver "
                                 f"{wall} m from both walls (receiver.min_wall_distance_m); allowed: > {2 * wall}")
        lo, hi = self.receiver.height_m
        if lo > self.room.size_m.z[1] - wall or hi < wall:
            raise ValueError(f"receiver.height_m = {[lo, hi]} cannot be {wall} m from floor and ceiling in "
                             f"rooms up to room.size_m.z = {self.room.size_m.z[1]} m")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> "SceneRecipe":
        """Build from a nested mapping; ``overrides`` (nested or dotted keys, ``{"room.rt60_s": 0.5}``) win."""
        data = merge_overrides(_plain(data), overrides or {})
        return _build(cls, data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> "SceneRecipe":
        """Read a recipe file (see ``simulation/README.md``)."""
        data = load_yaml_file(path, "recipe")
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
        return cls.from_dict(data, overrides)

    def to_dict(self) -> dict:
        """Plain nested dict (lists for ranges) that ``from_dict`` turns back into an equal recipe."""
        return _to_plain(self)

    def to_yaml(self) -> str:
        """Canonical YAML text: fixed key order, ranges as ``[min, max]``."""
        return yaml.dump(self.to_dict(), Dumper=_CanonicalDumper, sort_keys=False, width=100)

    # -- derived --------------------------------------------------------------------------------

    @property
    def num_samples(self) -> int:
        return round(self.duration_s * self.fs_hz)

    def source_library(self) -> SourceLibrary:
        """The recipe's source library, loaded once per process."""
        return _load_library(json.dumps(self.corpus.load_spec(), sort_keys=True))


@functools.lru_cache(maxsize=8)
def _load_library(spec_json: str) -> SourceLibrary:
    return load_corpus(json.loads(spec_json))


class _CanonicalDumper(yaml.SafeDumper):
    """Block-style mappings, flow-style lists (``rt60_s: [0.2, 0.8]``)."""


_CanonicalDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True))


# --- mapping <-> dataclasses ---------------------------------------------------------------------

def _plain(data: Mapping) -> dict:
    """Copy nested mappings to dicts; ``corpus: <name>`` becomes ``{type: <name>}`` so overrides merge."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    if isinstance(out.get("corpus"), str):
        out["corpus"] = {"type": out["corpus"]}
    return out


def _build(cls, data):
    """Instantiate section ``cls`` from a mapping, recursing into nested sections; unknown keys fail."""
    if cls is CorpusConfig:
        return CorpusConfig.from_value(data)
    where = cls.SECTION or "recipe"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} = {data!r}; allowed: a mapping with keys {', '.join(_keys(cls))}")
    unknown = [k for k in data if k not in _keys(cls)]
    if unknown:
        prefix = f"{cls.SECTION}." if cls.SECTION else ""
        raise ValueError(f"unknown key '{prefix}{unknown[0]}'; valid keys: {', '.join(_keys(cls))}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _build(hints[k], v) if _is_section(hints[k]) else v for k, v in data.items()}
    return cls(**kwargs)


def _keys(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _is_section(hint) -> bool:
    return isinstance(hint, type) and issubclass(hint, _Section)


def _to_plain(section: _Section) -> dict:
    out = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if isinstance(value, CorpusConfig):
            value = value.to_value()
        elif isinstance(value, _Section):
            value = _to_plain(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    if isinstance(section, NoiseConfig) and len(section.type) == 1:
        out["type"] = section.type[0]
    return out
