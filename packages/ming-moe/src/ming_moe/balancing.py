"""Hybrid expert balancing (paper §2.1): an auxiliary load-balancing loss per router (in :mod:`ming_moe.moe`, added
to the LM loss by the model) plus a per-router expert-bias update after each optimizer step, as in Ling-flash-2.0.

The bias update is ``bias += rate · sign(mean_load − load)``: experts that received more than their share of a
router's tokens since the last step become less attractive *to that router*, and vice versa. It is a plain callable
you attach to any training loop::

    updater = ExpertBiasUpdater(model)
    for batch in data:
        loss = model(**batch).loss
        loss.backward(); optimizer.step(); optimizer.zero_grad()
        updater()  # after the optimizer step

Under data or expert parallelism each rank counts the loads of its own tokens; the updater sums them over the ranks
(an all-reduce) before the update, so every rank applies the same update and the biases stay identical.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .moe import SparseMoeBlock


def _moe_blocks(model: nn.Module) -> dict[str, SparseMoeBlock]:
    return {name: module for name, module in model.named_modules() if isinstance(module, SparseMoeBlock)}


class ExpertBiasUpdater:
    """Apply the per-router expert-bias update to every MoE block of ``model``, then reset the loads.

    Args:
        model: any module containing :class:`ming_moe.SparseMoeBlock` layers (they count loads in training mode).
        rate: update step; default ``model.config.bias_update_rate`` (1e-3).
        process_group: ranks whose loads are summed before the update; default: all ranks when
            ``torch.distributed`` is initialised (a single process counts only its own).
    """

    def __init__(
        self, model: nn.Module, rate: float | None = None, process_group: dist.ProcessGroup | None = None
    ) -> None:
        self.blocks = _moe_blocks(model)
        if not self.blocks:
            raise ValueError("model has no SparseMoeBlock layers to balance")
        self.rate = float(rate if rate is not None else model.config.bias_update_rate)
        if self.rate < 0:
            raise ValueError(f"rate must be >= 0, got {self.rate}")
        self.process_group = process_group

    @torch.no_grad()
    def __call__(self) -> None:
        """Update every router's bias from the loads counted since the last call (summed over the ranks), and reset
        the counts."""
        blocks = list(self.blocks.values())
        loads = torch.stack([block.expert_load for block in blocks])
        if dist.is_initialized():
            dist.all_reduce(loads, group=self.process_group)  # one collective for all layers
        for block, load in zip(blocks, loads, strict=True):
            step = self.rate * torch.sign(load.mean(dim=-1, keepdim=True) - load)
            for router, router_step in zip(block.routers, step, strict=True):
                router.expert_bias += router_step  # a router that saw no token has a zero step
            block.reset_load()


def expert_load_statistics(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """Loads counted since the last reset: ``{block name: {modality router name: (num_experts,) counts}}``."""
    return {
        name: {router: block.expert_load[r].clone() for r, router in enumerate(block.router_names)}
        for name, block in _moe_blocks(model).items()
    }


def load_imbalance(load: torch.Tensor) -> float:
    """``max / mean`` of an expert-load vector (1.0 is perfectly balanced); ``nan`` when it counted nothing."""
    mean = load.float().mean()
    return float(load.max() / mean) if mean > 0 else float("nan")
