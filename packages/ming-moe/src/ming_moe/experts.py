"""Routed experts as stacked 3D weights, run through transformers' experts interface, and the dense SwiGLU MLP.

``experts_implementation`` (``"eager"``, ``"batched_mm"``, ``"grouped_mm"``) picks the kernel: transformers
dispatches :class:`MoeExperts.forward` to its own batched/grouped implementations, so we only write the eager loop.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.integrations import use_experts_implementation

from .configuration import BailingMoeV2Config


@use_experts_implementation
class MoeExperts(nn.Module):
    """``num_experts`` SwiGLU experts: ``gate_up_proj`` ``(E, 2·I, H)`` (gate rows first) and ``down_proj``
    ``(E, H, I)``."""

    def __init__(self, config: BailingMoeV2Config) -> None:
        super().__init__()
        self.num_experts = config.num_experts
        self.hidden_dim = config.hidden_size
        self.intermediate_dim = config.moe_intermediate_size
        self.gate_up_proj = nn.Parameter(torch.empty(self.num_experts, 2 * self.intermediate_dim, self.hidden_dim))
        self.down_proj = nn.Parameter(torch.empty(self.num_experts, self.hidden_dim, self.intermediate_dim))
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        """Eager path: loop over the experts that received tokens. ``hidden_states`` is ``(N, H)``."""
        output = torch.zeros_like(hidden_states)
        token_index = torch.arange(hidden_states.shape[0], device=hidden_states.device)
        token_index = token_index[:, None].expand_as(top_k_index).reshape(-1)
        flat_experts = top_k_index.reshape(-1)
        flat_weights = top_k_weights.reshape(-1)
        order = torch.argsort(flat_experts, stable=True)
        counts = torch.bincount(flat_experts, minlength=self.num_experts).tolist()
        start = 0
        for expert, count in enumerate(counts):
            if count == 0:
                continue
            rows = order[start : start + count]
            start += count
            tokens = token_index[rows]
            gate, up = nn.functional.linear(hidden_states[tokens], self.gate_up_proj[expert]).chunk(2, dim=-1)
            out = nn.functional.linear(self.act_fn(gate) * up, self.down_proj[expert])
            output.index_add_(0, tokens, (out * flat_weights[rows, None]).to(output.dtype))
        return output


class DenseMLP(nn.Module):
    """SwiGLU MLP (layer 0 and the shared experts): ``down(act(gate(x)) · up(x))``."""

    def __init__(self, config: BailingMoeV2Config, intermediate_size: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
