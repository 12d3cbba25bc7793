"""Scene rendering: a :class:`ScenePlan` -> multichannel audio, metadata, and questions.

For one scene: one RIR call for all its sources (:func:`spatial_alm.acoustics.simulate_brir` for a
head, :func:`~spatial_alm.acoustics.simulate_rir` for an array), source signals from the library,
FFT convolution cropped to the clip, per-source levels, additive noise at the planned SNR, then one
gain so that the peak sample is at ``output.peak_dbfs`` (nothing is clipped).

Example::

    recipe = SceneRecipe.from_yaml("simulation/tiny_binaural.yaml")
    record = make_scene(recipe, seed=0, index=7)  # record.audio (C, T) float32, record.meta, record.qa
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
import torch
import torchaudio
from scipy.fft import next_fast_len

from spatial_alm.acoustics import HeadModel, MicArray, SofaHead, make_array, make_head, simulate_brir, simulate_rir
from spatial_alm.acoustics.cipic import CipicHead
from spatial_alm.acoustics.diffuse import mixing_matrices, omni_diffuse_csd
from spatial_alm.acoustics.heads import HEADS
from spatial_alm.acoustics.spectral_cues import spectral_cues_db
from spatial_alm.coordinates import cartesian_to_spherical, room_to_listener, rotation_matrix
from spatial_alm.qa import QAPair, generate_qa
from spatial_alm.scenes.head_pool import HeadPool
from spatial_alm.scenes.metadata import SceneMeta, SourceMeta
from spatial_alm.scenes.recipe import ReceiverConfig, SceneRecipe, expand_path
from spatial_alm.scenes.sampler import ScenePlan, sample_scene
from spatial_alm.scenes.sources import SourceLibrary

CSD_FFT = 512  # frequency resolution of the receiver's diffuse-field cross-spectrum for diffuse noise


# --- receivers -----------------------------------------------------------------------------------

class Receiver(Protocol):
    """What the renderer needs from a head or an array."""

    name: str  # SceneMeta.receiver
    num_channels: int
    # Spatial axes (names from coordinates.AXES) the receiver's channels can tell apart, from its geometry:
    # the QA generator asks yes/no questions only about these unless the recipe says otherwise.
    resolved_axes: frozenset[str]

    def rirs(self, recipe: SceneRecipe, plan: ScenePlan) -> torch.Tensor:
        """Impulse responses (S, C, L) float32 from the plan's sources to the receiver's channels."""

    def diffuse_csd(self, fs_hz: int, n_fft: int) -> torch.Tensor:
        """Diffuse-field cross-spectral density (n_fft // 2 + 1, C, C) complex128."""

    def spectral_cues_db(self, directions: torch.Tensor, signals: torch.Tensor, fs_hz: int) -> dict[str, list[float]]:
        """Per axis, each source's spectral cue to its side in dB (:mod:`spatial_alm.acoustics.spectral_cues`),
        for sources at ``directions`` (S, 3) (listener frame) with dry ``signals`` (S, T); ``{}`` for a
        receiver whose sides are not in a colouring."""


def _room_args(plan: ScenePlan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch-of-one room (1, 3), RT60 (1,) and source positions (1, S, 3), float64."""
    positions = [s.position_m for s in plan.sources]
    return (torch.tensor([plan.room_dim_m], dtype=torch.float64), torch.tensor([plan.rt60_s], dtype=torch.float64),
            torch.tensor([positions], dtype=torch.float64))


@dataclass(frozen=True)
class HeadReceiver:
    """A binaural head (sphere or SOFA): channel 0 = left ear, 1 = right ear."""

    head: HeadModel
    num_channels: ClassVar[int] = 2

    @property
    def name(self) -> str:
        return self.head.name

    @property
    def resolved_axes(self) -> frozenset[str]:
        """The head's :attr:`HeadModel.resolved_axes` (a rigid sphere: left/right and distance)."""
        return self.head.resolved_axes

    def rirs(self, recipe: SceneRecipe, plan: ScenePlan) -> torch.Tensor:
        room, rt60, src = _room_args(plan)
        return simulate_brir(room, rt60, src, torch.tensor([plan.receiver_position_m], dtype=torch.float64),
                             recipe.fs_hz, head=self.head, head_yaw_deg=plan.receiver_yaw_deg,
                             tdiff=recipe.room.tdiff_s, seed=plan.rir_seed)[0]

    def diffuse_csd(self, fs_hz: int, n_fft: int) -> torch.Tensor:
        return self.head.diffuse_csd(fs_hz, n_fft)

    def spectral_cues_db(self, directions: torch.Tensor, signals: torch.Tensor, fs_hz: int) -> dict[str, list[float]]:
        """The head's front/back and above/below colouring of each source (``spectral_cues_db``)."""
        return {axis: cue.tolist() for axis, cue in spectral_cues_db(self.head, directions, signals, fs_hz).items()}


@dataclass(frozen=True)
class ArrayReceiver:
    """Omnidirectional microphones of a :class:`MicArray`, in its channel order."""

    array: MicArray

    @property
    def name(self) -> str:
        return self.array.name

    @property
    def num_channels(self) -> int:
        return self.array.num_channels

    @property
    def resolved_axes(self) -> frozenset[str]:
        """The array's :attr:`MicArray.resolved_axes`: the mirror planes not holding every microphone."""
        return self.array.resolved_axes

    def rirs(self, recipe: SceneRecipe, plan: ScenePlan) -> torch.Tensor:
        room, rt60, src = _room_args(plan)
        mics = self.array.positions(torch.tensor([plan.receiver_position_m], dtype=torch.float64),
                                    plan.receiver_yaw_deg)
        return simulate_rir(room, rt60, src, mics, recipe.fs_hz, tdiff=recipe.room.tdiff_s, seed=plan.rir_seed)[0]

    def diffuse_csd(self, fs_hz: int, n_fft: int) -> torch.Tensor:
        return omni_diffuse_csd(self.array.offsets_m[None], fs_hz, n_fft)[0]

    def spectral_cues_db(self, directions: torch.Tensor, signals: torch.Tensor, fs_hz: int) -> dict[str, list[float]]:
        """``{}``: an array's omnidirectional microphones tell the sides apart by time delays alone."""
        return {}


# "structural" and "heads" give a HeadPool: one head per scene (scene_receiver)
RECEIVERS: dict[str, Callable[[ReceiverConfig], Receiver | HeadPool]] = {
    "sphere_head": lambda config: HeadReceiver(make_head("sphere")),
    "sofa": lambda config: HeadReceiver(SofaHead(expand_path(config.sofa_path), equalisation=config.equalisation)),
    "cipic": lambda config: HeadReceiver(CipicHead(expand_path(config.cipic_path), equalisation=config.equalisation)),
    "structural": lambda config: HeadPool(["structural"], config.structural),
    "heads": lambda config: HeadPool(config.head_specs(), config.structural, config.equalisation),
    "array": lambda config: ArrayReceiver(make_array(config.array)),
}


def as_receiver(receiver: Receiver | HeadModel | MicArray) -> Receiver:
    """A :class:`Receiver`, or a head / microphone array wrapped as one."""
    if isinstance(receiver, HeadModel):
        return HeadReceiver(receiver)
    if isinstance(receiver, MicArray):
        return ArrayReceiver(receiver)
    return receiver


_RECEIVER_CACHE: dict[tuple, Receiver] = {}


def receiver_axes(name: str) -> frozenset[str]:
    """The ``resolved_axes`` of the receiver called ``name`` (``SceneMeta.receiver``) without loading its
    files, for reading datasets on machines that may lack them: a receiver loaded in this process answers
    for itself; a registered head class (``acoustics.heads.HEADS``, e.g. "sphere_head") gives its class
    attribute; a named array geometry ("tetrahedral", "circular6", "linear4", "pair") is built and asked;
    any other name is a head with pinnae (measured "sofa:<name>" heads and the like): all axes
    (``HeadModel.resolved_axes``)."""
    for receiver in _RECEIVER_CACHE.values():
        if getattr(receiver, "name", None) == name and hasattr(receiver, "resolved_axes"):
            return receiver.resolved_axes
    for head_class in HEADS.values():
        if getattr(head_class, "name", None) == name:
            return head_class.resolved_axes
    try:
        return make_array(name).resolved_axes
    except ValueError:
        return HeadModel.resolved_axes


def load_receiver(config: ReceiverConfig) -> Receiver | HeadPool:
    """The recipe's receiver, built once per process (a SOFA file is read once; HRIR tables are cached);
    for per-scene heads (types "structural", "heads") the :class:`HeadPool` (see :func:`scene_receiver`)."""
    key = config.cache_key()
    if key not in _RECEIVER_CACHE:
        _RECEIVER_CACHE[key] = RECEIVERS[config.type](config)
    return _RECEIVER_CACHE[key]


def scene_receiver(recipe: SceneRecipe, seed: int, index: int) -> Receiver:
    """Scene ``index``'s receiver: the recipe's one receiver, or the head its pool draws for (seed, index)."""
    receiver = load_receiver(recipe.receiver)
    if isinstance(receiver, HeadPool):
        return HeadReceiver(receiver.head_for_scene(seed, index))
    return receiver


# --- noise ---------------------------------------------------------------------------------------

def white_noise(receiver: Receiver, fs_hz: int, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """(C, T) float64 Gaussian noise, independent per channel."""
    return torch.randn(receiver.num_channels, num_samples, generator=generator, dtype=torch.float64)


def pink_noise(receiver: Receiver, fs_hz: int, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """(C, T) float64 noise with a 1/f power spectrum (-3 dB per octave, no DC), independent per channel."""
    spectrum = torch.fft.rfft(white_noise(receiver, fs_hz, num_samples, generator))
    bins = torch.arange(spectrum.shape[-1], dtype=torch.float64)
    return torch.fft.irfft(spectrum * torch.where(bins > 0, bins.clamp(min=1).rsqrt(), 0.0), n=num_samples)


def diffuse_noise(receiver: Receiver, fs_hz: int, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """(C, T) float64 noise from all directions at once: white noise mixed to the receiver's diffuse-field
    cross-spectrum (for a head this includes its diffuse-field colouring)."""
    spectrum = torch.fft.rfft(white_noise(receiver, fs_hz, num_samples, generator))  # (C, F)
    mix = mixing_matrices(receiver.diffuse_csd(fs_hz, CSD_FFT))  # (F0, C, C)
    # each rfft bin of the noise takes the mixing matrix of its frequency, interpolated linearly
    position = torch.arange(spectrum.shape[-1], dtype=torch.float64) * (CSD_FFT / num_samples)
    lo = position.floor().long().clamp(max=mix.shape[0] - 2)
    weight = (position - lo)[:, None, None]
    mix = mix[lo] * (1 - weight) + mix[lo + 1] * weight  # (F, C, C)
    return torch.fft.irfft(torch.einsum("fcd,df->cf", mix, spectrum), n=num_samples)


NOISES: dict[str, Callable[[Receiver, int, int, torch.Generator], torch.Tensor]] = {
    "white": white_noise,
    "pink": pink_noise,
    "diffuse": diffuse_noise,
}


# --- rendering -----------------------------------------------------------------------------------

def render_scene(recipe: SceneRecipe, plan: ScenePlan, library: SourceLibrary,
                 receiver: Receiver | HeadModel | MicArray, *,
                 timings: dict[str, float] | None = None) -> tuple[np.ndarray, SceneMeta]:
    """Audio (C, T) float32 with its peak at ``output.peak_dbfs``, and the scene's metadata.

    The noise is scaled so that (mean power over channels of the reverberant mixture) / (mean power
    over channels of the noise) is ``plan.snr_db``. ``timings``, when given, receives the seconds
    spent on the RIRs ("rirs") and on the rest ("render").
    """
    receiver = as_receiver(receiver)
    images, noise, dry, clip_ids = render_parts(recipe, plan, library, receiver, timings=timings)
    tic = time.perf_counter()
    mixture = images.sum(0).double() + noise  # (C, T)
    peak = float(mixture.abs().max())
    if not peak > 0:
        raise RuntimeError(f"scene {plan.index} rendered silent (peak {peak}); please report the recipe and seed")
    audio = (mixture * (10.0 ** (recipe.output.peak_dbfs / 20.0) / peak)).float().numpy()
    meta = _scene_meta(recipe, plan, receiver, clip_ids, dry)
    if timings is not None:
        timings["render"] += time.perf_counter() - tic
    return audio, meta


def render_parts(recipe: SceneRecipe, plan: ScenePlan, library: SourceLibrary,
                 receiver: Receiver | HeadModel | MicArray, *, timings: dict[str, float] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """A scene's parts before they are mixed: each source's reverberant image at the receiver (S, C, T)
    float32, the noise at the planned SNR (C, T) float64 (zeros without noise), the sources' dry signals at
    their levels (S, T) and their clip ids. ``images.sum(0).double() + noise`` is the mixture that
    :func:`render_scene` scales to its peak (which is why a diagnostic can tell each source's share of a
    time-frequency bin). ``timings``, when given, receives the seconds spent on the RIRs ("rirs") and on
    the rest ("render")."""
    receiver = as_receiver(receiver)
    tic = time.perf_counter()
    rirs = receiver.rirs(recipe, plan)  # (S, C, L)
    toc = time.perf_counter()
    num_samples = recipe.num_samples
    rng = np.random.default_rng(plan.signal_seed)
    signals, clip_ids = zip(*(library.sample(s.label, recipe.fs_hz, recipe.duration_s, rng) for s in plan.sources))
    gains = torch.tensor([10.0 ** (s.level_db / 20.0) for s in plan.sources])
    dry = torch.from_numpy(np.stack(signals)) * gains[:, None]  # (S, T)
    # zero-pad the RIRs so that the FFT length T + L - 1 factors into small primes (fast FFTs)
    rirs = torch.nn.functional.pad(rirs, (0, next_fast_len(num_samples + rirs.shape[-1] - 1) - num_samples
                                          + 1 - rirs.shape[-1]))
    images = torchaudio.functional.fftconvolve(dry[:, None, :], rirs)[..., :num_samples]  # (S, C, T)
    noise = torch.zeros(images.shape[1:], dtype=torch.float64)
    if plan.noise_type != "none":
        generator = torch.Generator().manual_seed(plan.noise_seed)
        noise = NOISES[plan.noise_type](receiver, recipe.fs_hz, num_samples, generator)
        target_power = images.sum(0).double().square().mean() / 10.0 ** (plan.snr_db / 10.0)
        noise = noise * torch.sqrt(target_power / noise.square().mean())
    if timings is not None:
        timings["rirs"] = toc - tic
        timings["render"] = time.perf_counter() - toc
    return images, noise, dry, clip_ids


def _scene_meta(recipe: SceneRecipe, plan: ScenePlan, receiver: Receiver, clip_ids,
                dry: torch.Tensor) -> SceneMeta:
    """Metadata with each source's direction and distance recomputed from the room positions, and its
    spectral cues (``Receiver.spectral_cues_db`` of its dry signal, (S, T))."""
    positions = torch.tensor([s.position_m for s in plan.sources], dtype=torch.float64)  # (S, 3)
    local = room_to_listener(positions, torch.tensor(plan.receiver_position_m, dtype=torch.float64),
                             rotation_matrix(plan.receiver_yaw_deg))
    azimuth, elevation, distance = (t.tolist() for t in cartesian_to_spherical(local))
    cues = receiver.spectral_cues_db(local, dry, recipe.fs_hz)
    no_cue = [None] * len(plan.sources)
    sources = tuple(
        SourceMeta(label=s.label, azimuth_deg=az, elevation_deg=el, distance_m=dist, position_m=s.position_m,
                   level_db=s.level_db, clip_id=clip_id, front_back_cue_db=front_back, above_below_cue_db=above_below)
        for s, az, el, dist, clip_id, front_back, above_below in zip(
            plan.sources, azimuth, elevation, distance, clip_ids, cues.get("front_back", no_cue),
            cues.get("above_below", no_cue))
    )
    return SceneMeta(
        index=plan.index, fs_hz=recipe.fs_hz, duration_s=recipe.duration_s, room_dim_m=plan.room_dim_m,
        rt60_s=plan.rt60_s, receiver=receiver.name, receiver_position_m=plan.receiver_position_m,
        receiver_yaw_deg=plan.receiver_yaw_deg, noise=plan.noise_type,
        snr_db=plan.snr_db if plan.noise_type != "none" else math.inf, sources=sources,
    )


@dataclass(frozen=True)
class SceneRecord:
    """One finished scene: what the dataset writer stores, plus the plan and stage timings."""

    meta: SceneMeta
    audio: np.ndarray  # (C, T) float32, peak at output.peak_dbfs
    qa: tuple[QAPair, ...]
    plan: ScenePlan
    timings: dict[str, float] = field(default_factory=dict)  # seconds: setup, sample, rirs, render, qa


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def make_scene(recipe: SceneRecipe, seed: int, index: int, *, library: SourceLibrary | None = None,
               receiver: Receiver | HeadModel | MicArray | None = None) -> SceneRecord:
    """Scene ``index`` of the dataset (recipe, seed): sample, render, ask; a function of its arguments only.

    Yes/no questions (E, negative) ask only about the receiver's ``resolved_axes`` unless the recipe
    says ``qa.unresolvable_axes: ask``, nor about the sides of sources whose spectral cue is below
    ``qa.min_spectral_cue_db`` (:meth:`QAConfig.spectral_cue_limit`).

    ``library`` and ``receiver`` (a :class:`Receiver`, head or array) default to the recipe's, loaded
    once per process (per-scene heads: the one :func:`scene_receiver` draws); the timings (seconds)
    are in ``SceneRecord.timings``. The scene is computed with one torch thread: a parallel reduction
    sums in an order that depends on the thread count, so only a fixed count makes the audio the same
    bit for bit in every process and on every machine with the same CPU instruction set.
    """
    with torch_threads(1):
        return _make_scene(recipe, seed, index, library, receiver)


def _make_scene(recipe: SceneRecipe, seed: int, index: int, library: SourceLibrary | None,
                receiver: Receiver | HeadModel | MicArray | None) -> SceneRecord:
    timings: dict[str, float] = {}
    tic = time.perf_counter()
    library = recipe.source_library() if library is None else library
    receiver = scene_receiver(recipe, seed, index) if receiver is None else as_receiver(receiver)
    timings["setup"] = time.perf_counter() - tic

    tic = time.perf_counter()
    plan = sample_scene(recipe, seed, index, labels=library.labels)
    timings["sample"] = time.perf_counter() - tic

    audio, meta = render_scene(recipe, plan, library, receiver, timings=timings)

    tic = time.perf_counter()
    qa = generate_qa(meta, np.random.default_rng(plan.qa_seed), types=recipe.qa.question_types(),
                     per_type=recipe.qa.per_type, label_vocabulary=library.labels,
                     axes=recipe.qa.question_axes(receiver.resolved_axes),
                     min_spectral_cue_db=recipe.qa.spectral_cue_limit())
    timings["qa"] = time.perf_counter() - tic
    return SceneRecord(meta=meta, audio=audio, qa=tuple(qa), plan=plan, timings=timings)
