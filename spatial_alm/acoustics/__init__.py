"""Room acoustics: batched image-source engine, diffuse tail, microphone arrays and binaural heads."""

from spatial_alm.acoustics.arrays import NAMED_ARRAYS, MicArray, make_array
from spatial_alm.acoustics.cipic import CipicHead
from spatial_alm.acoustics.engine import BACKENDS, simulate_brir, simulate_rir
from spatial_alm.acoustics.heads import HeadModel, HRIRTable, MeasuredHead, SofaHead, SphereHead, make_head
from spatial_alm.acoustics.room import sabine_absorption, sabine_rt60
from spatial_alm.acoustics.structural_head import StructuralHead

__all__ = [
    "BACKENDS",
    "CipicHead",
    "HRIRTable",
    "HeadModel",
    "MeasuredHead",
    "MicArray",
    "NAMED_ARRAYS",
    "SofaHead",
    "SphereHead",
    "StructuralHead",
    "make_array",
    "make_head",
    "sabine_absorption",
    "sabine_rt60",
    "simulate_brir",
    "simulate_rir",
]
