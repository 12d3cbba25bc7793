"""Heads drawn per scene: a synthetic head per scene, or one of a list or folder of heads with per-head splits.

Recipe receiver types (``receiver.type``, see ``simulation/README.md``):

* ``structural``: every scene gets a new Brown & Duda head
  (:class:`~spatial_alm.acoustics.structural_head.StructuralHead`) with parameters drawn from
  ``receiver.structural`` (ranges overriding ``DRAW_RANGES``).
* ``heads``: every scene gets one head drawn uniformly from ``receiver.heads`` (head specs) or the
  head files in ``receiver.heads_dir``, after the split: ``split: train`` keeps every head except
  ``receiver.test_heads``, ``split: test`` only those, ``split: all`` every head. So test heads are
  never trained on.

Head specs: ``"sphere"`` (the analytic rigid sphere), ``"structural"`` (a Brown & Duda head drawn per
scene), a path to a SOFA file (``*.sofa``) or to a CIPIC subject file (``*.mat``). Head names (what
``SceneMeta.receiver`` records): ``sphere_head``, ``structural:<hash of the drawn parameters>``,
``sofa:<file stem>``, ``cipic:<file stem>``. A ``test_heads`` entry matches a head by its spec, its
name, the part of the name after the colon (``subject_003`` for ``cipic:subject_003``) or its file
name.

Determinism: scene i's head comes from ``numpy.random.default_rng([seed, i, HEAD_STREAM])``, a stream
of its own, so the rest of the scene (drawn from ``default_rng([seed, i])`` by the sampler) does not
depend on the head and scene i stays a function of (recipe, seed, i).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.io

from spatial_alm.acoustics.cipic import CipicHead
from spatial_alm.acoustics.heads import HeadModel, SofaHead, SphereHead
from spatial_alm.acoustics.structural_head import StructuralHead

HEAD_STREAM = 0x4EAD  # third element of the per-scene seed sequence of the head draw
HEAD_SPLITS = ("all", "train", "test")
SPEC_WORDS = {"sphere": SphereHead, "structural": StructuralHead}
SPEC_SUFFIXES = {".sofa": SofaHead, ".mat": CipicHead}
ALLOWED_SPECS = "'sphere', 'structural', or a path to a .sofa file or a CIPIC subject .mat file"


def spec_class(spec: str) -> type[HeadModel] | None:
    """The head class a spec names, or None when it is not a head spec."""
    if not isinstance(spec, str):
        return None
    if spec in SPEC_WORDS:
        return SPEC_WORDS[spec]
    return SPEC_SUFFIXES.get(Path(spec).suffix.lower())


def spec_name(spec: str) -> str:
    """The name a spec's heads get (``sphere_head``, ``structural``, ``sofa:<stem>``, ``cipic:<stem>``)
    without loading any file; drawn structural heads add ``:<hash>`` to theirs."""
    head_class = spec_class(spec)
    if head_class is SphereHead:
        return SphereHead.name
    if head_class is StructuralHead:
        return "structural"
    return f"{'sofa' if head_class is SofaHead else 'cipic'}:{Path(spec).stem}"


def spec_matches(entry: str, spec: str) -> bool:
    """Whether a ``test_heads`` entry names the heads of ``spec``: the spec itself, its head name, the
    part of the name after the colon, or the spec's file name."""
    name = spec_name(spec)
    return entry in (spec, name, name.split(":", 1)[-1], Path(spec).name)


def heads_in_folder(folder: Path) -> list[str]:
    """The head files of a folder, sorted by name: every ``*.sofa`` and every ``*.mat`` holding CIPIC's
    ``hrir_l`` (so CIPIC's ``anthro.mat`` is left out). Raises ValueError when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"receiver.heads_dir = {str(folder)!r} is not a folder; allowed: a folder of .sofa "
                         "files and/or CIPIC subject .mat files")
    found = []
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if suffix == ".sofa":
            found.append(str(path))
        elif suffix == ".mat":
            try:
                fields = {name for name, _, _ in scipy.io.whosmat(str(path))}
            except Exception:  # noqa: BLE001 -- an unreadable .mat is not a head; CipicHead names it if listed
                continue
            if "hrir_l" in fields:
                found.append(str(path))
    if not found:
        raise ValueError(f"receiver.heads_dir = {str(folder)!r} holds no head files; allowed: a folder of .sofa "
                         "files and/or CIPIC subject .mat files (with hrir_l, hrir_r)")
    return found


def split_heads(specs: Sequence[str], split: str, test_heads: Sequence[str]) -> list[str]:
    """The specs of ``split`` ("all", "train": all but the test heads, "test": only those). Every
    ``test_heads`` entry must match a spec; ValueError naming the field otherwise, or when the split is
    empty."""
    names = [spec_name(s) for s in specs]
    unknown = [entry for entry in test_heads if not any(spec_matches(entry, s) for s in specs)]
    if unknown:
        raise ValueError(f"receiver.test_heads = {list(test_heads)}: {unknown} match no head; allowed: names of "
                         f"the listed heads: {', '.join(names)}")
    is_test = [any(spec_matches(entry, s) for entry in test_heads) for s in specs]
    keep = [s for s, t in zip(specs, is_test) if split == "all" or t == (split == "test")]
    if not keep:
        raise ValueError(f"receiver.split = {split!r} leaves no head (heads: {', '.join(names)}; test_heads: "
                         f"{list(test_heads)})")
    return keep


class HeadPool:
    """The heads a recipe draws from, one per scene (:meth:`head_for_scene`).

    specs: head specs (paths expanded); structural_ranges: ``StructuralHead.draw`` ranges; equalisation:
    the SOFA and CIPIC heads' (:class:`~spatial_alm.acoustics.heads.MeasuredHead`). SOFA and
    CIPIC heads are read on first use and kept (with their HRIR tables) for the process; structural
    heads are new for every scene. ``name``, ``num_channels`` and ``resolved_axes`` (the axes every
    head of the pool resolves) describe the pool as a whole.
    """

    num_channels = 2

    def __init__(self, specs: Sequence[str], structural_ranges: Mapping | None = None, equalisation: str = "none"):
        if not specs:
            raise ValueError("a head pool needs at least one head spec")
        for spec in specs:
            if spec_class(spec) is None:
                raise ValueError(f"head spec {spec!r}; allowed: {ALLOWED_SPECS}")
        self.specs = tuple(specs)
        self.structural_ranges = dict(structural_ranges or {})
        self.equalisation = equalisation
        self.names = tuple(spec_name(s) for s in self.specs)
        self.name = f"heads[{', '.join(self.names)}]"
        self.resolved_axes = frozenset.intersection(*(spec_class(s).resolved_axes for s in self.specs))
        self._loaded: dict[str, HeadModel] = {}

    def __repr__(self):
        return (f"HeadPool({list(self.specs)!r}, structural_ranges={self.structural_ranges!r}, "
                f"equalisation={self.equalisation!r})")

    def head_for_scene(self, seed: int, index: int) -> HeadModel:
        """Scene ``index``'s head: uniform over the specs, drawn from ``default_rng([seed, index, HEAD_STREAM])``
        (a structural spec then draws its parameters from the same generator)."""
        rng = np.random.default_rng([int(seed), int(index), HEAD_STREAM])
        spec = self.specs[int(rng.integers(len(self.specs)))]
        if spec == "structural":
            return StructuralHead.draw(rng, self.structural_ranges)
        if spec not in self._loaded:
            self._loaded[spec] = (SphereHead() if spec == "sphere"
                                  else spec_class(spec)(spec, equalisation=self.equalisation))
        return self._loaded[spec]
