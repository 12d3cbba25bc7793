"""Scene metadata: everything the QA generator, the HDF5 writer and the evaluation read about a scene.

Directions are in the listener/array frame of :mod:`spatial_alm.coordinates` (azimuth 0 = front,
+90 = left, elevation +90 = up, degrees); positions are in the room frame (metres).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SourceMeta:
    """One sound source of a scene."""

    label: str  # class name, e.g. "siren"
    azimuth_deg: float  # (-180, 180], listener frame
    elevation_deg: float  # [-90, 90]
    distance_m: float  # from the head / array centre
    position_m: tuple[float, float, float]  # room frame
    level_db: float  # level in the mix relative to the loudest source (<= 0)
    clip_id: str = ""  # corpus file or procedural seed the signal came from
    # the direct sound's spectral cue to its side, dB (acoustics.spectral_cues), for heads: how much the
    # colouring differs from the mirror image's across the frontal / horizontal plane; None where not
    # computed (arrays, whose sides are in the time delays; recordings; datasets made before the field)
    front_back_cue_db: float | None = None
    above_below_cue_db: float | None = None


@dataclass(frozen=True)
class SceneMeta:
    """One rendered scene; ``index`` with the dataset seed determines it fully."""

    index: int
    fs_hz: int
    duration_s: float
    room_dim_m: tuple[float, float, float]
    rt60_s: float
    receiver: str  # receiver name, e.g. "sphere_head", "sofa:mit_kemar_normal_pinna", "tetrahedral"
    receiver_position_m: tuple[float, float, float]  # head / array centre, room frame
    receiver_yaw_deg: float  # look direction in the room (0 = room +x axis, counter-clockwise)
    noise: str  # noise type, e.g. "white", "pink", "diffuse_babble", "none"
    snr_db: float  # direct-plus-reverberant signal to noise ratio
    sources: tuple[SourceMeta, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SceneMeta":
        d = dict(d)
        d["room_dim_m"] = tuple(d["room_dim_m"])
        d["receiver_position_m"] = tuple(d["receiver_position_m"])
        d["sources"] = tuple(
            SourceMeta(**{**s, "position_m": tuple(s["position_m"])}) for s in d["sources"]
        )
        return cls(**d)
