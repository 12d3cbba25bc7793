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

``linear`` and ``mlp2x_gelu`` keep every encoder token, so their Q grows with the clip length
(:meth:`~spatial_alm.models.encoder.EncoderConfig.num_tokens`); ``qformer`` gives a fixed Q.

``qformer`` with ``instruction_aware`` (InstructBLIP's instruction-aware Q-Former) also reads the
prompt: its text embeddings (B, L, D_llm), mapped to D_enc, join the queries in every block, so the
queries can attend to the question ("is the siren on your left?") before they read the audio and
the audio embeddings can depend on it. Only the Q query outputs go to the LLM.
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
    instruction_aware: bool = False  # qformer only: the queries also attend to the prompt's text

    def __post_init__(self):
        if self.type not in PROJECTORS:
            _fail("type", self.type, f"one of {sorted(PROJECTORS)}")
        if self.instruction_aware not in (True, False):
            _fail("instruction_aware", self.instruction_aware, "true or false")
        if self.instruction_aware and self.type != "qformer":
            _fail("instruction_aware", self.instruction_aware, f"false with projector type {self.type!r} "
                  "(only the qformer reads the prompt)")
        for name in ("num_queries", "num_layers", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                _fail(name, value, "an integer >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProjectorConfig":
        return dataclass_from_dict(cls, d, "projector config")


class LinearProjector(nn.Module):
    """(B, N, D_enc) -> (B, N, D_llm), one linear map per token."""

    def __init__(self, config: ProjectorConfig, encoder_dim: int, llm_dim: int):
        super().__init__()
        self.proj = nn.Linear(encoder_dim, llm_dim)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return num_input_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(tokens)


class MLPProjector(nn.Module):
    """LLaVA-1.5's ``mlp2x_gelu``: (B, N, D_enc) -> Linear -> GELU -> Linear -> (B, N, D_llm)."""

    def __init__(self, config: ProjectorConfig, encoder_dim: int, llm_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(encoder_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return num_input_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mlp(tokens)


class QFormerProjector(nn.Module):
    """Learned queries read the encoder tokens: (B, N, D_enc) -> (B, Q, D_llm), Q = ``num_queries``.

    Each block (``nn.TransformerDecoderLayer``, pre-norm) is
    ``q + self_attn(norm1(q))``, then ``q + cross_attn(norm2(q), tokens)``, then ``q + mlp(norm3(q))``.
    With ``instruction_aware`` the sequence ``q`` is the queries followed by the prompt's text
    embeddings mapped to D_enc (padding masked), and the first Q positions are the output.
    """

    def __init__(self, config: ProjectorConfig, encoder_dim: int, llm_dim: int):
        super().__init__()
        if encoder_dim % config.num_heads:
            _fail("num_heads", config.num_heads, f"a divisor of the encoder width ({encoder_dim})")
        self.query = nn.Parameter(torch.randn(1, config.num_queries, encoder_dim))  # N(0, 1), as SLAM-LLM
        self.instruction_proj = nn.Linear(llm_dim, encoder_dim) if config.instruction_aware else None
        self.blocks = nn.ModuleList(
            nn.TransformerDecoderLayer(encoder_dim, config.num_heads, dim_feedforward=4 * encoder_dim, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(encoder_dim)
        self.proj = nn.Linear(encoder_dim, llm_dim)
        self.out_norm = nn.LayerNorm(llm_dim)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return self.query.shape[1]

    def forward(self, tokens: torch.Tensor, instruction: torch.Tensor | None = None,
                instruction_mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, N, D_enc) -> (B, Q, D_llm); an instruction-aware projector also needs the prompt's
        text embeddings ``instruction`` (B, L, D_llm) and ``instruction_mask`` (B, L), True where real."""
        num_queries = self.query.shape[1]
        hidden_states = self.query.expand(tokens.shape[0], -1, -1)  # (B, Q, D_enc)
        padding = None
        if self.instruction_proj is not None:
            if instruction is None or instruction_mask is None:
                raise ValueError("instruction_aware projector: the prompt's text embeddings and mask are required")
            hidden_states = torch.cat([hidden_states, self.instruction_proj(instruction)], dim=1)  # (B, Q + L, D_enc)
            padding = torch.cat([instruction_mask.new_zeros(instruction_mask.shape[0], num_queries),
                                 ~instruction_mask.bool()], dim=1)  # True = ignored
        for block in self.blocks:
            hidden_states = block(hidden_states, tokens, tgt_key_padding_mask=padding)
        return self.out_norm(self.proj(self.norm(hidden_states[:, :num_queries])))  # (B, Q, D_llm)


PROJECTORS: dict[str, Callable[[ProjectorConfig, int, int], nn.Module]] = {
    "linear": LinearProjector,
    "mlp2x_gelu": MLPProjector,
    "qformer": QFormerProjector,
}


def build_projector(config: ProjectorConfig | str, encoder_dim: int, llm_dim: int) -> nn.Module:
    """The projector ``config.type`` (or a bare name, with default sizes) from D_enc to D_llm.

    The module maps (B, N, D_enc) -> (B, Q, D_llm) and has ``num_output_tokens(N) -> Q``.
    """
    if isinstance(config, str):
        if config not in PROJECTORS:
            _fail("projector type", config, f"one of {sorted(PROJECTORS)}")
        config = ProjectorConfig(type=config)
    return PROJECTORS[config.type](config, encoder_dim, llm_dim)
