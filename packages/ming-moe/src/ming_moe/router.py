"""Group-limited sigmoid router with expert bias (Ling-flash-2.0, DeepSeek-V3 style; paper §2.1).

Scores are sigmoids of the router logits, in fp32 whatever the input dtype. The *choice* uses score + expert bias:
experts are split into ``n_group`` groups, a group's score is the sum of its two best biased scores, only the best
``topk_group`` groups are kept, and the top-k experts are picked inside them. The *weights* use the unbiased scores of
the chosen experts, normalised to sum to 1 and multiplied by ``routed_scaling_factor``. The bias therefore steers
load without entering the output; it is a buffer, updated by :class:`ming_moe.ExpertBiasUpdater`, never by gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import BailingMoeV2Config


class GroupLimitedRouter(nn.Module):
    """One router over all experts.

    Attributes:
        weight: ``(num_experts, hidden_size)`` router projection (kept in fp32).
        expert_bias: ``(num_experts,)`` fp32 buffer added to the scores for the choice only.
    """

    expert_bias: torch.Tensor

    def __init__(self, config: BailingMoeV2Config) -> None:
        super().__init__()
        self.num_experts = config.num_experts
        self.top_k = config.num_experts_per_tok
        self.n_group = config.n_group
        self.topk_group = config.topk_group
        self.norm_topk_prob = config.norm_topk_prob
        self.routed_scaling_factor = config.routed_scaling_factor
        self.weight = nn.Parameter(torch.empty(config.num_experts, config.hidden_size, dtype=torch.float32))
        self.register_buffer("expert_bias", torch.zeros(config.num_experts, dtype=torch.float32))

    def scores(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """fp32 ``(logits, sigmoid scores)`` of shape ``(N, num_experts)`` for ``(N, hidden)`` tokens."""
        logits = F.linear(hidden_states.float(), self.weight.float())
        return logits, logits.sigmoid()

    def select(
        self, scores: torch.Tensor, expert_bias: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Group-limited top-k on ``scores + bias``; returns ``(weights, indices)``, each ``(N, top_k)``.

        ``expert_bias`` may be ``(num_experts,)`` or one row per token ``(N, num_experts)``; default: this router's.
        """
        bias = self.expert_bias if expert_bias is None else expert_bias
        with torch.no_grad():  # only the choice: no gradient flows through it, so autograd records none of it
            for_choice = scores + bias
            if self.topk_group >= self.n_group:  # every group kept
                indices = for_choice.topk(self.top_k, dim=-1, sorted=False).indices
            else:
                indices = self._group_limited_top_k(for_choice)
        weights = scores.gather(1, indices)
        if self.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True).add_(1e-20)
        return weights * self.routed_scaling_factor, indices

    def _group_limited_top_k(self, for_choice: torch.Tensor) -> torch.Tensor:
        """Indices of the top-k of ``for_choice`` ``(N, E)`` among the experts of each token's best groups."""
        n_tokens = for_choice.shape[0]
        grouped = for_choice.view(n_tokens, self.n_group, self.num_experts // self.n_group)
        # the sum of a group's two best: its best plus the best of the rest (topk(2) on rows of a few dozen is ~5×
        # slower on CPU: 8.4 against 1.5 ms for one max over 2048 tokens × 256 experts)
        best, where = grouped.max(dim=-1, keepdim=True)
        group_scores = grouped.scatter(-1, where, float("-inf")).amax(dim=-1).add_(best.squeeze(-1))
        kept_groups = group_scores.topk(self.topk_group, dim=-1, sorted=False).indices
        # -inf on the experts of the other groups: one broadcast add (a boolean mask costs four ops more)
        dropped = torch.full_like(group_scores, float("-inf")).scatter_(1, kept_groups, 0.0)
        in_kept_groups = (grouped + dropped.unsqueeze(-1)).view(n_tokens, self.num_experts)
        return in_kept_groups.topk(self.top_k, dim=-1, sorted=False).indices

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Route ``(..., hidden)`` tokens; returns fp32 ``(logits, weights, indices)`` with tokens flattened."""
        logits, scores = self.scores(hidden_states.reshape(-1, hidden_states.shape[-1]))
        weights, indices = self.select(scores)
        return logits, weights, indices
