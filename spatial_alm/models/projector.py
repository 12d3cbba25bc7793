"""Projectors: encoder tokens (B, N, D_enc) -> audio embeddings (B, Q, D_llm) spliced into the LLM prompt.

Chosen by name from :data:`PROJECTORS` (LLaVA's ``multimodal_projector/builder.py``):

=============  ======  =====================================================================
name           Q       layers
=============  ======  =====================================================================
linear         N       one ``nn.Linear(D_enc, D_llm)`` per token
mlp2x_gelu     N       Linear(D_enc, D_llm) -> GELU -> Linear(D_llm, D_llm) (LLaVA-1.5)
qformer        Q       ``num_queries`` learned queries of width D_enc; ``num_layers`` pre-norm blocks
                       of self-attention over the queries, cross-attention to the encoder tokens
                       and an MLP; then Linear(D_enc, D_llm) and LayerNorm (SLAM-LLM's Q-Former
                       projector; BAT used 64 queries)
=============  ======  =====================================================================

Scale: the audio embeddings start at the scale of the LLM's own input embeddings (``output_std``,
their standard deviation): the last linear map is drawn with that output standard deviation for
unit-variance inputs, the Q-Former's output LayerNorm gain starts at it, so that a frozen pretrained
LLM does not receive audio tokens many times larger than its words (SmolLM2: word embeddings of norm
3.2, a unit-gain LayerNorm's output 24). On the CPU quickstart this changed no score significantly
(``experiments/results/README.md``, Quickstart).

``linear`` and ``mlp2x_gelu`` keep every encoder token, so their Q grows with the clip length
(:meth:`~spatial_alm.models.encoder.EncoderConfig.num_tokens`); ``qformer`` gives a fixed Q.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from spatial_alm.config import ConfigError, dataclass_from_dict


def _fail(field: str, value, allowed: str):
    raise ConfigError(field, value, allowed)


@dataclass(frozen=True)
class ProjectorConfig:
    """Projector type and Q-Former sizes (``num_*`` are used by ``qformer`` only); validated on construction.

    ``num_heads`` must divide the encoder width D_enc (checked when the projector is built).
    """

    type: str = "qformer"
    num_queries: int = 64  # Q of the qformer (BAT: 64)
    num_layers: int = 2
    num_heads: int = 8

    def __post_init__(self):
        if self.type not in PROJECTORS:
            _fail("type", self.type, f"one of {sorted(PROJECTORS)}")
        for name in ("num_queries", "num_layers", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                _fail(name, value, "an integer >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProjectorConfig":
        return dataclass_from_dict(cls, d, "projector config")


def _init_output(layer: nn.Linear, output_std: float, input_std: float = 1.0) -> None:
    """Weights N(0, s^2) with s such that inputs of std ``input_std`` give outputs of std ``output_std``."""
    nn.init.normal_(layer.weight, std=output_std / (input_std * layer.in_features ** 0.5))
    nn.init.zeros_(layer.bias)


class LinearProjector(nn.Module):
    """(B, N, D_enc) -> (B, N, D_llm), one linear map per token."""

    def __init__(self, config: ProjectorConfig, encoder_dim: int, llm_dim: int, output_std: float = 1.0):
        super().__init__()
        self.proj = nn.Linear(encoder_dim, llm_dim)
        _init_output(self.proj, output_std)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return num_input_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(tokens)


class MLPProjector(nn.Module):
    """LLaVA-1.5's ``mlp2x_gelu``: (B, N, D_enc) -> Linear -> GELU -> Linear -> (B, N, D_llm)."""

    def __init__(self, config: ProjectorConfig, encoder_dim: int, llm_dim: int, output_std: float = 1.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(encoder_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))
        _init_output(self.mlp[2], output_std, input_std=0.5)  # GELU of a unit-variance input: std about 0.5

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return num_input_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mlp(tokens)


class QFormerProjector(nn.Module):
    """Learned queries read the encoder tokens: (B, N, D_enc) -> (B, Q, D_llm), Q = ``num_queries``.

    Each block (``nn.TransformerDecoderLayer``, pre-norm) is
    ``q + self_attn(norm1(q))``, then ``q + cross_attn(norm2(q), tokens)``, then ``q + mlp(norm3(q))``.
    """

    def __init__(self, config: ProjectorConfig, encoder_dim: int, llm_dim: int, output_std: float = 1.0):
        super().__init__()
        if encoder_dim % config.num_heads:
            _fail("num_heads", config.num_heads, f"a divisor of the encoder width ({encoder_dim})")
        self.query = nn.Parameter(torch.randn(1, config.num_queries, encoder_dim))  # N(0, 1), as SLAM-LLM
        self.blocks = nn.ModuleList(
            nn.TransformerDecoderLayer(encoder_dim, config.num_heads, dim_feedforward=4 * encoder_dim, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(encoder_dim)
        self.proj = nn.Linear(encoder_dim, llm_dim)
        self.out_norm = nn.LayerNorm(llm_dim)
        nn.init.constant_(self.out_norm.weight, output_std)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return self.query.shape[1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, D_enc) -> (B, Q, D_llm)."""
        hidden_states = self.query.expand(tokens.shape[0], -1, -1)  # (B, Q, D_enc)
        for block in self.blocks:
            hidden_states = block(hidden_states, tokens)
        return self.out_norm(self.proj(self.norm(hidden_states)))  # (B, Q, D_llm)


PROJECTORS: dict[str, Callable[[ProjectorConfig, int, int, float], nn.Module]] = {
    "linear": LinearProjector,
    "mlp2x_gelu": MLPProjector,
    "qformer": QFormerProjector,
}


def build_projector(config: ProjectorConfig | str, encoder_dim: int, llm_dim: int,
                    output_std: float = 1.0) -> nn.Module:
    """The projector ``config.type`` (or a bare name, with default sizes) from D_enc to D_llm, its
    outputs starting at standard deviation ``output_std`` (the LLM's input embeddings', see the module doc).

    The module maps (B, N, D_enc) -> (B, Q, D_llm) and has ``num_output_tokens(N) -> Q``.
    """
    if isinstance(config, str):
        if config not in PROJECTORS:
            _fail("projector type", config, f"one of {sorted(PROJECTORS)}")
        config = ProjectorConfig(type=config)
    return PROJECTORS[config.type](config, encoder_dim, llm_dim, output_std)
