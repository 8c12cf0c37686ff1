"""Multi-scale learnable queries and the connector (paper §2.3, §2.4; DESIGN "Image generator").

Learnable queries at scales 4, 8 and 16 (16 + 64 + 256 tokens) are appended to the prompt's token embeddings of a
frozen causal LM; the LM's last-layer states at the condition queries (by default the 256 of the finest scale) go
through ``Linear(LLM width → connector width)`` → a bidirectional transformer (diffusers' ``BasicTransformerBlock``
without cross-attention) → ``Linear(→ condition_dim)`` → L2 norm, and become the DiT's condition tokens. The coarser
queries still shape the finer ones through the LM's causal attention. The connector has no positional embedding: each
query state is already distinct (the queries are distinct vectors, read by a causal LM at distinct positions).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

__all__ = ["MingConditioner"]


class MingConditioner(ModelMixin, ConfigMixin):
    """Learnable multi-scale queries for the LLM plus the connector that turns their states into condition tokens.

    Args:
        llm_hidden_size: width of the LM whose states are read (4096 for Ling-flash-2.0).
        scales: query grid sides, coarse to fine; ``sum(s * s)`` queries are appended to the prompt in this order.
        condition_scales: the scales whose states feed the connector (default the finest).
        connector_width: width of the bidirectional transformer.
        connector_layers: its depth.
        connector_heads: its heads.
        condition_dim: width of the output condition tokens (2048).
    """

    @register_to_config
    def __init__(
        self,
        llm_hidden_size: int = 4096,
        scales: tuple[int, ...] = (4, 8, 16),
        condition_scales: tuple[int, ...] = (16,),
        connector_width: int = 1536,
        connector_layers: int = 6,
        connector_heads: int = 24,
        condition_dim: int = 2048,
    ):
        super().__init__()
        if not set(condition_scales) <= set(scales) or not condition_scales:
            raise ValueError(
                f"condition_scales {tuple(condition_scales)} must be a non-empty subset of scales {tuple(scales)}"
            )
        self.queries = nn.Parameter(torch.randn(sum(s * s for s in scales), llm_hidden_size) * 0.02)
        self.proj_in = nn.Linear(llm_hidden_size, connector_width)
        self.blocks = nn.ModuleList(
            [
                BasicTransformerBlock(
                    connector_width,
                    connector_heads,
                    connector_width // connector_heads,
                    activation_fn="gelu-approximate",
                )
                for _ in range(connector_layers)
            ]
        )
        self.norm_out = nn.LayerNorm(connector_width)
        self.proj_out = nn.Linear(connector_width, condition_dim)
        offsets, start = [], 0
        for s in scales:
            if s in condition_scales:
                offsets.extend(range(start, start + s * s))
            start += s * s
        self.register_buffer("_condition_index", torch.tensor(offsets), persistent=False)

    @staticmethod
    def flash_config(llm_hidden_size: int = 4096) -> dict[str, Any]:
        """Paper scale: queries 16 + 64 + 256 for a 4096-wide LM, 256 condition tokens of 2048. The connector's size is
        not published: 6 blocks of width 1536 (24 heads × 64) are our choice."""
        return {
            "llm_hidden_size": llm_hidden_size,
            "scales": (4, 8, 16),
            "condition_scales": (16,),
            "connector_width": 1536,
            "connector_layers": 6,
            "connector_heads": 24,
            "condition_dim": 2048,
        }

    @staticmethod
    def tiny_config(llm_hidden_size: int = 64, condition_dim: int = 64) -> dict[str, Any]:
        """CPU scale: queries at scales 2 and 4 (4 + 16), the 16 finest feed a 2-block connector of width 64."""
        return {
            "llm_hidden_size": llm_hidden_size,
            "scales": (2, 4),
            "condition_scales": (4,),
            "connector_width": 64,
            "connector_layers": 2,
            "connector_heads": 4,
            "condition_dim": condition_dim,
        }

    @property
    def num_queries(self) -> int:
        """Queries appended to each prompt."""
        return self.queries.shape[0]

    @property
    def num_condition_tokens(self) -> int:
        """Condition tokens produced per prompt."""
        return self._condition_index.numel()

    def append_queries(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Append the queries after left-padded prompt embeddings.

        Args:
            inputs_embeds: ``(B, T, llm_hidden_size)`` prompt embeddings, **left**-padded.
            attention_mask: ``(B, T)`` 1 for real tokens.

        Returns:
            ``(embeds, mask, position_ids)`` of length ``T + num_queries``; positions count real tokens only, so a
            prompt's query states do not depend on the padding of its batch.
        """
        if attention_mask[:, -1:].eq(0).any():
            raise ValueError("prompts must be left-padded (tokenizer padding_side='left') so the queries follow them")
        batch = inputs_embeds.shape[0]
        queries = self.queries.to(inputs_embeds.dtype).expand(batch, -1, -1)
        embeds = torch.cat([inputs_embeds, queries], dim=1)
        mask = torch.cat([attention_mask, attention_mask.new_ones(batch, self.num_queries)], dim=1)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return embeds, mask, positions

    def select_condition_states(self, query_states: torch.Tensor) -> torch.Tensor:
        """``(B, num_queries, H)`` states at all queries → ``(B, num_condition_tokens, H)`` at the condition scales."""
        if query_states.shape[1] != self.num_queries:
            raise ValueError(f"expected states at {self.num_queries} queries, got {query_states.shape[1]}")
        return query_states[:, self._condition_index]

    def forward(self, condition_states: torch.Tensor) -> torch.Tensor:
        """``(B, N, llm_hidden_size)`` LLM states at the condition queries → ``(B, N, condition_dim)`` unit tokens."""
        x = self.proj_in(condition_states)
        for block in self.blocks:
            x = block(x)
        return F.normalize(self.proj_out(self.norm_out(x)), dim=-1)
