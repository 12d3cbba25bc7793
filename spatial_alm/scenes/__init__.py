"""Scenes: recipes, the per-scene sampler, the renderer, and the sound sources they draw from.

Example::

    from spatial_alm.scenes import SceneRecipe, make_scene

    recipe = SceneRecipe.from_yaml("simulation/tiny_binaural.yaml")
    record = make_scene(recipe, seed=0, index=0)  # .audio (C, T) float32, .meta, .qa, .timings
"""

from spatial_alm.scenes.corpus import AudioCorpus, load_corpus
from spatial_alm.scenes.metadata import SceneMeta, SourceMeta
from spatial_alm.scenes.recipe import SceneRecipe, expand_path
from spatial_alm.scenes.render import (
    NOISES,
    RECEIVERS,
    ArrayReceiver,
    HeadReceiver,
    Receiver,
    SceneRecord,
    as_receiver,
    load_receiver,
    make_scene,
    receiver_axes,
    render_parts,
    render_scene,
)
from spatial_alm.scenes.sampler import ScenePlan, SourcePlan, sample_scene
from spatial_alm.scenes.sources import PROCEDURAL_CLASSES, ProceduralLibrary, SourceLibrary

__all__ = [
    "NOISES",
    "PROCEDURAL_CLASSES",
    "RECEIVERS",
    "ArrayReceiver",
    "AudioCorpus",
    "HeadReceiver",
    "ProceduralLibrary",
    "Receiver",
    "SceneMeta",
    "SceneRecipe",
    "ScenePlan",
    "SceneRecord",
    "SourceLibrary",
    "SourceMeta",
    "SourcePlan",
    "as_receiver",
    "expand_path",
    "load_corpus",
    "load_receiver",
    "make_scene",
    "receiver_axes",
    "render_parts",
    "render_scene",
    "sample_scene",
]
