"""The MoE block: per-modality routers over one set of experts, plus the ungated shared expert (paper §2.1).

Every token is routed by the router of its modality — image and video tokens by ``image_gate``, audio tokens by
``audio_gate``, all others by ``gate`` (the text router) — over the same experts. A block with one router is the
same block with one modality. The block also produces what hybrid balancing needs: the per-router auxiliary loss on
that router's own tokens, and per-router expert loads accumulated for the bias update (see :mod:`ming_moe.balancing`).
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration import BailingMoeV2Config
from .experts import DenseMLP, MoeExperts
from .router import GroupLimitedRouter

ROUTER_ATTRIBUTES = {"text": "gate", "image": "image_gate", "audio": "audio_gate"}
"""Module name of each modality's router (the names of the original checkpoints)."""


class SparseMoeBlock(nn.Module):
    """Routed experts + shared expert, with one :class:`GroupLimitedRouter` per configured modality.

    Attributes:
        expert_load: ``(routers, num_experts)`` fp32 buffer of tokens sent to each expert by each router since the
            last :meth:`reset_load` (counted in training mode, padding excluded); not saved with the weights.
    """

    expert_load: torch.Tensor

    def __init__(self, config: BailingMoeV2Config) -> None:
        super().__init__()
        self.router_names = [ROUTER_ATTRIBUTES[m] for m in config.router_modalities]
        for name in self.router_names:
            self.add_module(name, GroupLimitedRouter(config))
        self.experts = MoeExperts(config)
        shared = config.moe_intermediate_size * config.num_shared_experts
        self.shared_experts = DenseMLP(config, shared) if shared else None
        self.num_experts = config.num_experts
        self.top_k = config.num_experts_per_tok
        self.register_buffer("expert_load", torch.zeros(len(self.router_names), config.num_experts), persistent=False)

    @property
    def routers(self) -> list[GroupLimitedRouter]:
        """The routers in modality order (text, image, audio)."""
        return [getattr(self, name) for name in self.router_names]

    def reset_load(self) -> None:
        """Zero the accumulated expert loads."""
        self.expert_load.zero_()

    def route(
        self, hidden_states: torch.Tensor, router_index: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Route ``(N, H)`` tokens, each by router ``router_index[n]``.

        Returns fp32 ``(logits, scores, weights, indices)``: logits and sigmoid scores ``(N, E)`` of each token's own
        router, and the chosen ``(N, top_k)`` weights and expert indices.
        """
        routers = self.routers
        if len(routers) == 1 or router_index is None:
            logits, scores = routers[0].scores(hidden_states)
            weights, indices = routers[0].select(scores)
            return logits, scores, weights, indices
        outputs = [router.scores(hidden_states) for router in routers]  # the router GEMMs are ~1% of the experts'
        pick = router_index[None, :, None].expand(1, -1, self.num_experts)
        logits = torch.stack([o[0] for o in outputs]).gather(0, pick)[0]
        scores = torch.stack([o[1] for o in outputs]).gather(0, pick)[0]
        bias = torch.stack([router.expert_bias for router in routers])[router_index]
        weights, indices = routers[0].select(scores, bias)  # same group/top-k settings for every router
        return logits, scores, weights, indices

    def forward(
        self,
        hidden_states: torch.Tensor,
        router_index: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply the block.

        Args:
            hidden_states: ``(B, L, H)``.
            router_index: ``(B, L)`` long, the router of each token (0 text, 1 image, 2 audio); ``None``: all text.
            token_mask: ``(B, L)`` bool, real tokens (padding is left out of the aux loss and the loads).

        Returns:
            ``(output (B, L, H), aux_loss (scalar, fp32, summed over routers), router_logits (B·L, E))``.
        """
        shape = hidden_states.shape
        flat = hidden_states.reshape(-1, shape[-1])
        flat_router = None if router_index is None else router_index.reshape(-1)
        logits, scores, weights, indices = self.route(flat, flat_router)
        output = self._experts_and_shared(flat, indices, weights.to(flat.dtype))

        aux_loss = scores.new_zeros(())
        if self.training:
            # padding is counted for an extra router that is then dropped
            group = flat_router
            if token_mask is not None:
                real = token_mask.reshape(-1)
                group = torch.zeros_like(real, dtype=torch.long) if group is None else group
                group = group.masked_fill(~real, len(self.router_names))
            with torch.no_grad():
                counts = self._slot_counts(indices, group)
                self.expert_load[: counts.shape[0]] += counts
            aux_loss = self._aux_loss(scores, counts, group)
        return output.view(shape), aux_loss, logits

    def _experts_and_shared(self, flat: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The routed experts plus the shared expert. ``fused_loop`` takes the shared expert with the routed ones: in
        inference it runs on the loop's lanes (see :func:`ming_moe.experts.fused_loop_experts_forward`)."""
        experts, shared = self.experts, self.shared_experts
        fused_loop = isinstance(experts, MoeExperts) and experts.config._experts_implementation == "fused_loop"
        if shared is not None and fused_loop:
            return experts(flat, indices, weights, shared_expert=shared)
        output = experts(flat, indices, weights)
        return output if shared is None else output + shared(flat)

    def _slot_counts(self, indices: torch.Tensor, group: torch.Tensor | None) -> torch.Tensor:
        """fp32 ``(routers, E)`` slots each router gave each expert, where ``group`` holds each token's router and
        the value ``routers`` for padding (not counted); ``group=None``: all tokens are router 0's, ``(1, E)``."""
        experts = self.num_experts
        if group is None:
            return torch.bincount(indices.reshape(-1), minlength=experts).float()[None]
        routers = len(self.router_names)
        slots = (group[:, None] * experts + indices).reshape(-1)
        return torch.bincount(slots, minlength=(routers + 1) * experts)[: routers * experts].view(routers, -1).float()

    def _aux_loss(self, scores: torch.Tensor, counts: torch.Tensor, group: torch.Tensor | None) -> torch.Tensor:
        """Switch-style balance loss per router on its own tokens, summed over routers: ``E · Σ_e f_e · P_e`` (1 when
        balanced), where ``f_e`` is the fraction of the router's top-k slots given to expert e (``counts`` and
        ``group`` as for :meth:`_slot_counts`) and ``P_e`` its mean normalised score over the router's tokens.

        Summed per token instead: ``Σ_t (s_t · c_r) / (Σ_e s_te) · E / (k · n_r²)`` for token t of router r with
        scores ``s_t``, slot counts ``c_r`` and ``n_r`` tokens: one matrix product and a few ops on ``(N,)``, where the
        normalised scores would be a full ``(N, E)`` tensor in the forward and in the backward."""
        scale = self.num_experts / self.top_k
        if group is None:  # one router, every token real: n is known without counting
            return (scores @ counts[0] / scores.sum(dim=-1)).sum() * (scale / max(scores.shape[0], 1) ** 2)
        n_tokens = (counts.sum(-1) / self.top_k).clamp(min=1)
        weighted = torch.cat([counts * (scale / n_tokens.square())[:, None], counts.new_zeros(1, self.num_experts)])
        per_token = (scores @ weighted.T).gather(1, group[:, None]).squeeze(1)  # padding: the zero row
        return (per_token / scores.sum(dim=-1)).sum()
