"""Spatial-AST-style encoder: feature planes -> patch transformer with class / DoA / distance CLS tokens.

Data path (shapes for B clips, F feature planes, M mel bands, T frames, D = embed_dim)::

    features (B, F, M, T)                                  from spatial_alm.features
      -> per-plane BatchNorm, 3x3 conv fusing the F planes into ``stem_channels``, BatchNorm, GELU
      -> zero-pad T to a multiple of the patch width, patch embedding (conv, stride = patch)
      -> + learned positional embedding (a grid of M / pm rows x ceil(max_frames / pt) columns)
      -> [cls_class, cls_doa, cls_distance] (+ K class tokens) + patch tokens -> transformer blocks -> LayerNorm
      -> tokens (B, 3 + N, D), N = (M / pm) * ceil(T / pt); class tokens (B, K, D) apart

Patch tokens are in time order: token ``3 + t * (M / pm) + m`` covers frames [t pt, (t + 1) pt) and
mel bands [m pm, (m + 1) pm). Clips shorter than ``max_frames`` use the first columns of the
positional grid (positions count from the clip start; nothing is interpolated); longer clips raise
``ValueError``. Spatial-AST instead stretched every clip to 1024 frames; at paper scale (10 s at
32 kHz, 1001 frames, 16x16 patches) this encoder sees 3 + 8 * 63 = 507 tokens, Spatial-AST 3 + 512.

Heads and loss follow BAT: multi-label class logits from ``cls_class`` (BCE), azimuth (360) and
elevation (181) logits from ``cls_doa`` and distance (21) logits from ``cls_distance``
(cross-entropy on the scene's primary source, see ``EncoderTargets``, ignoring scenes without one);
bins in :mod:`spatial_alm.models.targets`. With ``class_direction_head`` (the default; not in BAT)
class-wise heads give every class's azimuth, elevation and distance logits in the same bins, so the
encoder carries every source's position, not only the primary one's: the per-class targets of DCASE
SELD's multi-ACCDDOA, as distributions rather than ACCDOA's regressed vectors (on a sphere head, which
cannot tell front from back, the regressed vector of a source averages its two mirror images and
points sideways; a distribution keeps both modes and its argmax the lateral angle). They read class
tokens: the sequence holds one learned token per class after the CLS tokens ([cls_class, cls_doa,
cls_distance, class_1 .. class_K] + patch tokens), and the class-wise heads, shared by all classes,
read class k's position (and a presence logit added to class k's detection logit) from class k's
token, so each class gets a D-wide token to attend to its own sound with. The class tokens are
returned apart (``EncoderOutput.tokens`` keeps its 3 + N layout). They replaced class-wise heads that
read every class from the CLS tokens: on the same data and wall time the class tokens raised detection
mAP and the heads' left/right and negative answers on both the sphere head and the tetrahedral array
(``experiments/results/README.md``, "Class tokens on the sphere head" and "Tetrahedral array with class
tokens"). :class:`SpatialEncoderModel` bundles features,
encoder and heads (audio in, logits out) and saves to / loads from a directory (``config.json`` +
``model.safetensors``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from spatial_alm.config import ConfigError, dataclass_from_dict
from spatial_alm.coordinates import spherical_to_cartesian
from spatial_alm.features.spatial import SpatialFeatureConfig, SpatialFeatures, num_planes
from spatial_alm.models.targets import (
    AZIMUTH_CLASSES,
    DISTANCE_CLASSES,
    ELEVATION_CLASSES,
    IGNORE_INDEX,
    EncoderTargets,
    class_to_azimuth,
    class_to_distance,
    class_to_elevation,
)
from spatial_alm.qa.generator import SIDE_MARGIN_DEG

CLS_TOKENS = ("class", "doa", "distance")  # order of the CLS tokens at the start of the sequence
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_TYPE = "spatial_alm.encoder"
# commits that load encoders saved with class-wise heads this version replaced (see from_pretrained)
LAST_COMMIT_WITH_ACCDOA_CLASS_HEADS = "61d7ee5"
LAST_COMMIT_WITH_CLS_CLASS_HEADS = "4333154"


def _fail(field: str, value, allowed: str):
    raise ConfigError(field, value, allowed)


@dataclass(frozen=True)
class EncoderConfig:
    """Encoder and head sizes; validated on construction (``ValueError`` naming the field).

    Defaults are ViT-B/16 at paper scale (Spatial-AST's size). ``patch_size`` is (mel bands, frames)
    and must divide ``n_mels``; ``stem_channels`` is the number of maps the fusion conv makes from the
    feature planes (Spatial-AST: 1).
    """

    num_planes: int  # feature planes F, see spatial_alm.features.num_planes
    num_classes: int  # sound classes of the multi-label head
    n_mels: int = 128
    max_frames: int = 1024
    patch_size: tuple[int, int] = (16, 16)
    stem_channels: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    class_direction_head: bool = True  # azimuth, elevation and distance of every class from its class token

    def __post_init__(self):
        for name in ("num_planes", "num_classes", "n_mels", "max_frames", "stem_channels", "embed_dim",
                     "depth", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                _fail(name, value, "an integer >= 1")
        patch = tuple(self.patch_size) if isinstance(self.patch_size, (list, tuple)) else (self.patch_size,)
        if len(patch) != 2 or not all(isinstance(p, int) and p >= 1 for p in patch):
            _fail("patch_size", self.patch_size, "(mel bands, frames), two integers >= 1")
        object.__setattr__(self, "patch_size", patch)
        if self.n_mels % patch[0]:
            _fail("patch_size", self.patch_size, f"a mel size dividing n_mels ({self.n_mels})")
        if self.embed_dim % self.num_heads:
            _fail("num_heads", self.num_heads, f"a divisor of embed_dim ({self.embed_dim})")
        if not (isinstance(self.mlp_ratio, (int, float)) and self.mlp_ratio > 0):
            _fail("mlp_ratio", self.mlp_ratio, "a number > 0")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            _fail("dropout", self.dropout, "a number in [0, 1)")
        if not isinstance(self.class_direction_head, bool):
            _fail("class_direction_head", self.class_direction_head, "true or false")

    @classmethod
    def tiny(cls, num_planes: int, num_classes: int, **overrides) -> "EncoderConfig":
        """Toy size (D 128, depth 4, 4 heads, 16x8 patches, up to 256 frames): trains on a CPU in minutes."""
        sizes = dict(embed_dim=128, depth=4, num_heads=4, patch_size=(16, 8), max_frames=256)
        return cls(num_planes=num_planes, num_classes=num_classes, **{**sizes, **overrides})

    @classmethod
    def vit_base(cls, num_planes: int, num_classes: int, **overrides) -> "EncoderConfig":
        """ViT-B/16 (D 768, depth 12, 12 heads, 16x16 patches, up to 1024 frames), as Spatial-AST."""
        return cls(num_planes=num_planes, num_classes=num_classes, **overrides)

    @property
    def grid_mels(self) -> int:
        """Patch rows along the mel axis."""
        return self.n_mels // self.patch_size[0]

    def num_tokens(self, num_frames: int) -> int:
        """Sequence length of a clip of ``num_frames`` frames: 3 CLS + patch tokens."""
        return len(CLS_TOKENS) + self.grid_mels * math.ceil(num_frames / self.patch_size[1])

    def to_dict(self) -> dict:
        d = asdict(self)
        d["patch_size"] = list(self.patch_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return dataclass_from_dict(cls, d, "encoder config")


class Attention(nn.Module):
    """Multi-head self-attention (timm ViT names: ``qkv``, ``proj``)."""

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, nh, N, hs)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@dataclass
class EncoderOutput:
    """Encoder tokens; the three CLS tokens are also given by name, and the class tokens (with
    ``class_direction_head``) apart from ``tokens``."""

    tokens: torch.Tensor  # (B, 3 + N, D): cls_class, cls_doa, cls_distance, then patch tokens in time order
    cls_class: torch.Tensor  # (B, D)
    cls_doa: torch.Tensor  # (B, D)
    cls_distance: torch.Tensor  # (B, D)
    class_tokens: torch.Tensor | None = None  # (B, K, D): class k's token, with EncoderConfig.class_direction_head


class SpatialEncoder(nn.Module):
    """Features (B, F, n_mels, frames) -> :class:`EncoderOutput`; see the module doc for the layout."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = c = config
        self.input_norm = nn.BatchNorm2d(c.num_planes)
        self.fusion = nn.Sequential(
            nn.Conv2d(c.num_planes, c.stem_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c.stem_channels),
            nn.GELU(),
        )
        self.patch_embed = nn.Conv2d(c.stem_channels, c.embed_dim, kernel_size=c.patch_size, stride=c.patch_size)
        grid_frames = math.ceil(c.max_frames / c.patch_size[1])
        self.pos_embed = nn.Parameter(torch.zeros(1, c.embed_dim, c.grid_mels, grid_frames))
        self.cls_tokens = nn.Parameter(torch.zeros(1, len(CLS_TOKENS), c.embed_dim))
        self.class_tokens = nn.Parameter(torch.zeros(1, c.num_classes, c.embed_dim)) if c.class_direction_head else None
        self.pos_drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.embed_dim, c.num_heads, c.mlp_ratio, c.dropout) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_tokens, std=0.02)
        if self.class_tokens is not None:
            nn.init.trunc_normal_(self.class_tokens, std=0.02)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, features: torch.Tensor) -> EncoderOutput:
        c = self.config
        if features.ndim != 4 or features.shape[1:3] != (c.num_planes, c.n_mels):
            raise ValueError(f"features must have shape (B, num_planes={c.num_planes}, n_mels={c.n_mels}, frames), "
                             f"got {tuple(features.shape)}")
        frames = features.shape[-1]
        if frames > c.max_frames:
            _fail("frames", frames, f"<= max_frames ({c.max_frames}); crop the clip or raise max_frames")
        x = self.fusion(self.input_norm(features))  # (B, S, M, T)
        x = F.pad(x, (0, -frames % c.patch_size[1]))  # (B, S, M, T'), T' a multiple of the patch width
        x = self.patch_embed(x)  # (B, D, M / pm, T' / pt)
        x = x + self.pos_embed[..., : x.shape[-1]]
        x = x.permute(0, 3, 2, 1).flatten(1, 2)  # (B, N, D), time-major
        starts = [self.cls_tokens] + ([] if self.class_tokens is None else [self.class_tokens])
        x = torch.cat([t.expand(x.shape[0], -1, -1) for t in starts] + [x], dim=1)  # (B, 3 [+ K] + N, D)
        x = self.pos_drop(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        class_tokens = None
        if self.class_tokens is not None:
            k = len(CLS_TOKENS) + c.num_classes
            class_tokens, x = x[:, len(CLS_TOKENS):k], torch.cat([x[:, :len(CLS_TOKENS)], x[:, k:]], dim=1)
        return EncoderOutput(tokens=x, cls_class=x[:, 0], cls_doa=x[:, 1], cls_distance=x[:, 2],
                             class_tokens=class_tokens)


@dataclass
class HeadLogits:
    classes: torch.Tensor  # (B, num_classes), multi-label
    azimuth: torch.Tensor  # (B, 360)
    elevation: torch.Tensor  # (B, 181)
    distance: torch.Tensor  # (B, 21)
    class_azimuth: torch.Tensor | None = None  # (B, num_classes, 360), with class_direction_head
    class_elevation: torch.Tensor | None = None  # (B, num_classes, 181)
    class_distance: torch.Tensor | None = None  # (B, num_classes, 21)


@dataclass
class Prediction:
    """Decoded head outputs: class probabilities, direction and distance in degrees / metres.

    Azimuth and distance are the argmax bins (BAT). Elevation is the posterior mean of the 181-bin
    distribution rounded to whole degrees: where the receiver cannot tell elevation apart (a sphere
    head's cone of confusion) the posterior is broad or bimodal and its mean errs far less than its
    argmax. Azimuth keeps the argmax because a front/back-confused posterior has two modes whose
    mean would point to the side. The class-wise heads decode the same way, and their distance as the
    posterior mean (metres, continuous: two sources' distances compare without ties).
    """

    class_probs: torch.Tensor  # (B, num_classes), sigmoid
    azimuth_deg: torch.Tensor  # (B,) in (-180, 180]
    elevation_deg: torch.Tensor  # (B,) in [-90, 90], whole degrees
    distance_m: torch.Tensor  # (B,) 0..10 step 0.5
    labels: list[list[str]] | None = None  # class names with probability >= threshold, when names are known
    class_directions: torch.Tensor | None = None  # (B, num_classes, 3) unit direction per class
    class_distances: torch.Tensor | None = None  # (B, num_classes) distance per class in metres
    class_azimuth_probs: torch.Tensor | None = None  # (B, num_classes, 360) azimuth posterior per class


def decode_logits(logits: HeadLogits, class_names: Sequence[str] | None = None,
                  threshold: float = 0.5) -> Prediction:
    """:class:`Prediction` of :class:`HeadLogits` (see there for the decoding); labels when
    ``class_names`` are given."""
    probs = torch.sigmoid(logits.classes)
    labels = None
    if class_names is not None:
        labels = [[class_names[k] for k in row.nonzero().flatten().tolist()] for row in probs >= threshold]
    class_directions = class_distances = class_azimuth_probs = None
    if logits.class_azimuth is not None:
        class_azimuth_probs = torch.softmax(logits.class_azimuth.float(), dim=-1)
        class_directions = spherical_to_cartesian(class_to_azimuth(logits.class_azimuth.argmax(-1)),
                                                  _mean_elevation(logits.class_elevation)).float()
        distance_bins = class_to_distance(torch.arange(DISTANCE_CLASSES, device=logits.class_distance.device))
        class_distances = (torch.softmax(logits.class_distance.float(), dim=-1) * distance_bins).sum(-1)
    return Prediction(class_probs=probs,
                      azimuth_deg=class_to_azimuth(logits.azimuth.argmax(-1)),
                      elevation_deg=_mean_elevation(logits.elevation),
                      distance_m=class_to_distance(logits.distance.argmax(-1)),
                      labels=labels, class_directions=class_directions, class_distances=class_distances,
                      class_azimuth_probs=class_azimuth_probs)


def _mean_elevation(logits: torch.Tensor) -> torch.Tensor:
    """Posterior-mean elevation in whole degrees of elevation logits (..., 181)."""
    bins = class_to_elevation(torch.arange(ELEVATION_CLASSES, device=logits.device))
    return torch.floor((torch.softmax(logits.float(), dim=-1) * bins).sum(-1) + 0.5)


class EncoderHeads(nn.Module):
    """Pretraining heads: classes from ``cls_class``, azimuth and elevation from ``cls_doa``, distance
    from ``cls_distance``; with ``class_direction_head`` also azimuth, elevation and distance logits per
    class in the primary heads' bins (trained on present classes only) from heads shared by the classes
    that read each class's own token, and a shared presence head on the class tokens that adds its
    logit to ``cls_class``'s class logits (class k is heard where its token finds it)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.class_head = nn.Linear(config.embed_dim, config.num_classes)
        self.azimuth_head = nn.Linear(config.embed_dim, AZIMUTH_CLASSES)
        self.elevation_head = nn.Linear(config.embed_dim, ELEVATION_CLASSES)
        self.distance_head = nn.Linear(config.embed_dim, DISTANCE_CLASSES)
        class_wise = config.class_direction_head
        self.class_direction_head = (nn.Linear(config.embed_dim, AZIMUTH_CLASSES + ELEVATION_CLASSES)
                                     if class_wise else None)
        self.class_distance_head = nn.Linear(config.embed_dim, DISTANCE_CLASSES) if class_wise else None
        self.class_presence_head = nn.Linear(config.embed_dim, 1) if class_wise else None
        for head in (self.class_head, self.azimuth_head, self.elevation_head, self.distance_head,
                     self.class_direction_head, self.class_distance_head, self.class_presence_head):
            if head is not None:
                nn.init.trunc_normal_(head.weight, std=0.02)
                nn.init.zeros_(head.bias)

    def forward(self, encoded: EncoderOutput) -> HeadLogits:
        class_azimuth = class_elevation = class_distance = None
        classes = self.class_head(encoded.cls_class)
        if self.class_direction_head is not None:
            directions = self.class_direction_head(encoded.class_tokens)  # (B, K, 360 + 181)
            class_azimuth, class_elevation = directions.split([AZIMUTH_CLASSES, ELEVATION_CLASSES], dim=-1)
            class_distance = self.class_distance_head(encoded.class_tokens)  # (B, K, 21)
            classes = classes + self.class_presence_head(encoded.class_tokens)[..., 0]  # (B, K)
        return HeadLogits(classes=classes,
                          azimuth=self.azimuth_head(encoded.cls_doa),
                          elevation=self.elevation_head(encoded.cls_doa),
                          distance=self.distance_head(encoded.cls_distance),
                          class_azimuth=class_azimuth, class_elevation=class_elevation,
                          class_distance=class_distance)

    def predict(self, encoded: EncoderOutput, class_names: Sequence[str] | None = None,
                threshold: float = 0.5) -> Prediction:
        return decode_logits(self(encoded), class_names, threshold)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms. Defaults of BAT's four: the class-heavy 125 : 0.75 : 0.75 : 0.5
    weighting in Spatial-AST's fine-tuning script (tuned for 355 AudioSet classes, where the mean BCE is
    small; lower ``classes`` for small vocabularies). The class-wise heads' terms are cross-entropies on
    the same bins, averaged over the classes present, and ``class_pair_order``, the order of two classes on
    opposite sides of an axis (:func:`class_pair_order_loss`), logged but not trained on by default."""

    classes: float = 125.0
    azimuth: float = 0.75
    elevation: float = 0.75
    distance: float = 0.5
    class_azimuth: float = 0.5  # class-wise heads only
    class_elevation: float = 0.25
    class_distance: float = 0.25
    class_pair_order: float = 0.0  # class-wise heads: the order of two sources on opposite sides (logged at 0)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                _fail(f.name, value, "a finite number >= 0")


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor, sigma_bins: float = 0.0,
                   circular: bool = False) -> torch.Tensor:
    """Mean cross-entropy over targets that are not IGNORE_INDEX; 0 (with a graph) when there are none.

    ``sigma_bins`` > 0 replaces the one-hot target with a Gaussian over neighbouring bins (standard
    deviation in bins, distances wrapped around when ``circular``), so a near miss costs less than a
    far one; 0 is the plain one-hot cross-entropy of BAT.
    """
    valid = target != IGNORE_INDEX
    if sigma_bins <= 0:
        total = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="sum")
        return total / valid.sum().clamp_min(1)
    num_bins = logits.shape[-1]
    offset = torch.arange(num_bins, device=logits.device)[None] - target.clamp_min(0)[:, None]  # (B, K)
    if circular:
        offset = torch.remainder(offset + num_bins // 2, num_bins) - num_bins // 2
    soft = torch.softmax(-0.5 * (offset.to(logits.dtype) / sigma_bins) ** 2, dim=-1)
    per_scene = -(soft * F.log_softmax(logits, dim=-1)).sum(-1)
    return (per_scene * valid).sum() / valid.sum().clamp_min(1)


PAIR_ORDER_SCALE = 4.0  # logistic slope on the difference of two expected components (each in [-1, 1])


def _expected_class_vectors(class_azimuth: torch.Tensor, class_elevation: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) each class's expected unit-vector components (x front, y left, z up) under its azimuth and
    elevation posteriors (independent): differentiable, where the decoded direction is an argmax."""
    azimuth = torch.deg2rad(class_to_azimuth(torch.arange(AZIMUTH_CLASSES, device=class_azimuth.device)))
    elevation = torch.deg2rad(class_to_elevation(torch.arange(ELEVATION_CLASSES, device=class_azimuth.device)))
    p_az, p_el = torch.softmax(class_azimuth.float(), -1), torch.softmax(class_elevation.float(), -1)
    cos_el = p_el @ torch.cos(elevation)
    return torch.stack([cos_el * (p_az @ torch.cos(azimuth)), cos_el * (p_az @ torch.sin(azimuth)),
                        p_el @ torch.sin(elevation)], dim=-1)


def class_pair_order_loss(class_azimuth: torch.Tensor, class_elevation: torch.Tensor, azimuth_target: torch.Tensor,
                          elevation_target: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss log(1 + exp(-PAIR_ORDER_SCALE * (e_k - e_l))) over every pair of classes (k, l) of a
    scene whose true directions lie on opposite sides of an axis (front/back, left/right, above/below; each at
    least the QA generator's SIDE_MARGIN_DEG from the axis' plane), k on the positive side: e is the class's expected
    component along the axis (:func:`_expected_class_vectors`). What an E question about the two asks is this
    order; the class-wise cross-entropies score each class alone, and are met as well by one half shared by
    both vectors as by each on its own side. Logits (B, K, 360) and (B, K, 181), targets (B, K) bins or
    IGNORE_INDEX; 0 (with a graph) without such pairs."""
    present = (azimuth_target != IGNORE_INDEX) & (elevation_target != IGNORE_INDEX)  # (B, K)
    truth = spherical_to_cartesian(class_to_azimuth(azimuth_target.clamp_min(0)),
                                   class_to_elevation(elevation_target.clamp_min(0))).to(class_azimuth.device)
    margin = math.sin(math.radians(SIDE_MARGIN_DEG))
    side = torch.where(truth > margin, 1, torch.where(truth < -margin, -1, 0)) * present[..., None]  # (B, K, 3)
    pairs = (side[:, :, None] > 0) & (side[:, None, :] < 0)  # (B, K, K, 3): k positive, l negative
    expected = _expected_class_vectors(class_azimuth, class_elevation)
    difference = expected[:, :, None] - expected[:, None, :]  # (B, K, K, 3): e_k - e_l
    losses = F.softplus(-PAIR_ORDER_SCALE * difference)
    return (losses * pairs).sum() / pairs.sum().clamp_min(1)


def multitask_loss(logits: HeadLogits, targets: EncoderTargets, weights: LossWeights | dict | None = None,
                   direction_sigma_deg: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of BCE (classes) and cross-entropy (azimuth, elevation, distance; scenes with
    ``IGNORE_INDEX`` skipped). ``direction_sigma_deg`` > 0 gives the azimuth (circular) and elevation
    targets a Gaussian width in degrees (1-degree bins). With the class-wise heads, ``class_azimuth``,
    ``class_elevation`` and ``class_distance`` are the same cross-entropies over every (scene, class
    present) pair, and ``class_pair_order`` the order of two classes on opposite sides
    (:func:`class_pair_order_loss`; weight 0 by default, still logged). Returns (total loss, detached terms by
    name)."""
    weights = LossWeights(**weights) if isinstance(weights, dict) else weights or LossWeights()
    terms = {
        "classes": F.binary_cross_entropy_with_logits(logits.classes, targets.classes.to(logits.classes.dtype)),
        "azimuth": _cross_entropy(logits.azimuth, targets.azimuth, direction_sigma_deg, circular=True),
        "elevation": _cross_entropy(logits.elevation, targets.elevation, direction_sigma_deg),
        "distance": _cross_entropy(logits.distance, targets.distance),
    }
    if logits.class_azimuth is not None:
        if targets.class_azimuth is None:
            raise ValueError("the encoder has class-wise heads; allowed targets: with class_azimuth, "
                             "class_elevation and class_distance (EncoderTargets.from_scenes gives them)")
        terms["class_azimuth"] = _cross_entropy(logits.class_azimuth.flatten(0, 1), targets.class_azimuth.flatten(),
                                                direction_sigma_deg, circular=True)
        terms["class_elevation"] = _cross_entropy(logits.class_elevation.flatten(0, 1),
                                                  targets.class_elevation.flatten(), direction_sigma_deg)
        terms["class_distance"] = _cross_entropy(logits.class_distance.flatten(0, 1),
                                                 targets.class_distance.flatten())
        terms["class_pair_order"] = class_pair_order_loss(logits.class_azimuth, logits.class_elevation,
                                                          targets.class_azimuth, targets.class_elevation)
    total = sum(getattr(weights, name) * term for name, term in terms.items())
    return total, {name: term.detach() for name, term in terms.items()}


class SpatialEncoderModel(nn.Module):
    """Audio (B, C, T) -> features -> encoder -> heads, saved and loaded as one directory.

    ``num_channels`` is the C the model is built for (it sets the number of feature planes);
    ``class_names`` (optional, K = ``encoder_config.num_classes`` names) label the predictions.
    """

    def __init__(self, feature_config: SpatialFeatureConfig, encoder_config: EncoderConfig, num_channels: int,
                 class_names: Sequence[str] | None = None):
        super().__init__()
        planes = num_planes(feature_config, num_channels)
        if encoder_config.num_planes != planes:
            _fail("encoder num_planes", encoder_config.num_planes,
                  f"{planes} (the feature planes of {num_channels} channels)")
        if encoder_config.n_mels != feature_config.n_mels:
            _fail("encoder n_mels", encoder_config.n_mels, f"the features' n_mels ({feature_config.n_mels})")
        if class_names is not None and len(class_names) != encoder_config.num_classes:
            _fail("class_names", class_names, f"{encoder_config.num_classes} names (num_classes)")
        self.num_channels = num_channels
        self.class_names = None if class_names is None else list(class_names)
        self.features = SpatialFeatures(feature_config)
        self.encoder = SpatialEncoder(encoder_config)
        self.heads = EncoderHeads(encoder_config)

    @property
    def window_samples(self) -> int:
        """The longest input the encoder takes, in samples: (max_frames - 1) hops, i.e. exactly max_frames STFT
        frames (pretraining sets max_frames to its clips' frames, so this is about the training clip length)."""
        return (self.encoder.config.max_frames - 1) * self.features.config.hop_length

    def encode(self, audio: torch.Tensor) -> EncoderOutput:
        """Encoder tokens of audio (B, C, T) float32 at the features' fs_hz."""
        if audio.ndim != 3 or audio.shape[1] != self.num_channels:
            raise ValueError(f"audio must have shape (B, C={self.num_channels}, T), got {tuple(audio.shape)}")
        return self.encoder(self.features(audio))

    def forward(self, audio: torch.Tensor, feature_transform: nn.Module | None = None) -> HeadLogits:
        """Head logits of audio (B, C, T); ``feature_transform`` (e.g. SpecAugment) acts on the
        features (B, F, n_mels, frames) before the encoder."""
        if audio.ndim != 3 or audio.shape[1] != self.num_channels:
            raise ValueError(f"audio must have shape (B, C={self.num_channels}, T), got {tuple(audio.shape)}")
        features = self.features(audio)
        if feature_transform is not None:
            features = feature_transform(features)
        return self.heads(self.encoder(features))

    @torch.no_grad()
    def predict(self, audio: torch.Tensor, threshold: float = 0.5) -> Prediction:
        """Class probabilities (and labels), direction and distance (:class:`Prediction`) of audio (B, C, T)."""
        return decode_logits(self(audio), self.class_names, threshold)

    def config_dict(self) -> dict:
        return {"model_type": MODEL_TYPE, "num_channels": self.num_channels, "class_names": self.class_names,
                "features": self.features.config.to_dict(), "encoder": self.encoder.config.to_dict()}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2) + "\n")
        state = {name: t.detach().contiguous().cpu() for name, t in self.state_dict().items()}
        save_file(state, directory / WEIGHTS_NAME, metadata={"format": "pt"})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "SpatialEncoderModel":
        """The model saved by :meth:`save_pretrained`, on ``device``, in eval mode."""
        directory = Path(directory)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                hint = (f"; did you mean {directory / 'model'}? (a run folder keeps its model in model/)"
                        if (directory / "model" / name).is_file() else "")
                raise FileNotFoundError(f"{directory / name} not found (a save_pretrained directory holds "
                                        f"{CONFIG_NAME} and {WEIGHTS_NAME}){hint}")
        config = json.loads((directory / CONFIG_NAME).read_text())
        if config.get("model_type") != MODEL_TYPE:
            _fail(f"model_type in {directory / CONFIG_NAME}", config.get("model_type"), repr(MODEL_TYPE))
        # encoders saved while class tokens were an option (commits up to 4333154) say so: the key goes
        encoder_config = {k: v for k, v in config["encoder"].items() if k != "class_tokens"}
        model = cls(SpatialFeatureConfig.from_dict(config["features"]), EncoderConfig.from_dict(encoder_config),
                    config["num_channels"], config["class_names"])
        weights = load_file(directory / WEIGHTS_NAME, device=str(device))
        saved_head = weights.get("heads.class_direction_head.weight")
        if saved_head is not None and "encoder.class_tokens" not in weights:
            accdoa = saved_head.shape[0] == 3 * model.encoder.config.num_classes
            raise ValueError(
                f"{directory} holds class-wise heads "
                f"{'of ACCDOA direction vectors' if accdoa else 'on the CLS tokens'}, which this version replaced "
                "by heads on one token per class; allowed: an encoder pretrained with this version (load that one "
                "with spatial_alm at commit "
                f"{LAST_COMMIT_WITH_ACCDOA_CLASS_HEADS if accdoa else LAST_COMMIT_WITH_CLS_CLASS_HEADS})")
        model.load_state_dict(weights)
        return model.to(device).eval()
