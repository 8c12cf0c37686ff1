"""Memory per rank of the sharded model, computed from the configuration (paper §2: the ~103 B-parameter LLM needs
many accelerators; this says how many bytes each one holds for a given layout).

Counts follow :func:`ming_moe.shard_model`: routed experts split over ``ep`` and FSDP-sharded over ``dp``, all other
parameters FSDP-sharded over ``dp × ep`` ranks; FSDP2 splits dimension 0 into ``ceil(rows / shards)``-row pieces,
so the most loaded rank holds ``ceil`` rows of every tensor. Activations are not counted (they depend on batch and
sequence length), nor are the router bias buffers (``routers × E`` fp32 values per layer, replicated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .configuration import BailingMoeV2Config
from .sharding import ParallelLayout


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes on the most loaded rank.

    Attributes:
        parameters: this rank's parameter shards, in ``master_dtype``.
        gradients: gradient shards (same size and dtype as the parameters); 0 for inference.
        optimizer_states: ``optimizer_states`` tensors per parameter shard, in ``master_dtype``; 0 for inference.
        gathered_parameters: parameters gathered for computing, in ``compute_dtype``: the root unit (embeddings,
            final norm, LM head) plus two decoder-layer units (the one computing and the one prefetched).
        sharded_parameter_count: number of parameter elements this rank stores.
    """

    parameters: int
    gradients: int
    optimizer_states: int
    gathered_parameters: int
    sharded_parameter_count: int

    @property
    def total(self) -> int:
        """Sum of the byte counts."""
        return self.parameters + self.gradients + self.optimizer_states + self.gathered_parameters


def estimate_memory_per_rank(
    config: BailingMoeV2Config,
    layout: ParallelLayout,
    *,
    master_dtype: torch.dtype = torch.float32,
    compute_dtype: torch.dtype = torch.bfloat16,
    optimizer_states: int = 2,
    training: bool = True,
) -> MemoryEstimate:
    """Model-state bytes per rank of ``config`` sharded as ``layout`` (see :func:`ming_moe.shard_model`).

    Args:
        config: the model (``BailingMoeV2Config.flash()`` for the paper scale).
        layout: data- and expert-parallel sizes; ``expert_parallel`` must divide ``num_experts``.
        master_dtype: dtype of the stored (sharded) parameters, gradients and optimizer states.
        compute_dtype: dtype the parameters are gathered in (FSDP2 ``MixedPrecisionPolicy.param_dtype``).
        optimizer_states: state tensors per parameter (AdamW: 2).
        training: count gradients and optimizer states.
    """
    if config.num_experts % layout.expert_parallel:
        raise ValueError(
            f"layout.expert_parallel ({layout.expert_parallel}) must divide num_experts ({config.num_experts})"
        )
    if optimizer_states < 0:
        raise ValueError(f"optimizer_states must be >= 0, got {optimizer_states}")
    world, local_experts = layout.world_size, config.num_experts // layout.expert_parallel
    root, layers = _parameter_shapes(config)

    def sharded(shapes: list[tuple[int, ...]], shards: int) -> int:
        return sum(math.ceil(shape[0] / shards) * math.prod(shape[1:]) for shape in shapes)

    stored = sharded(root, world)
    gathered_layers = []
    for dense, experts in layers:
        stored += sharded(dense, world) + sharded([(local_experts, *s[1:]) for s in experts], layout.data_parallel)
        gathered_layers.append(sum(map(math.prod, dense)) + local_experts * sum(math.prod(s[1:]) for s in experts))
    gathered = sum(map(math.prod, root)) + 2 * max(gathered_layers)
    master = torch.finfo(master_dtype).bits // 8
    return MemoryEstimate(
        parameters=stored * master,
        gradients=stored * master if training else 0,
        optimizer_states=stored * master * optimizer_states if training else 0,
        gathered_parameters=gathered * (torch.finfo(compute_dtype).bits // 8),
        sharded_parameter_count=stored,
    )


def _parameter_shapes(config: BailingMoeV2Config) -> tuple[list[tuple[int, ...]], list[tuple[list, list]]]:
    """Parameter shapes from the config alone: the root's, and per layer ``(dense shapes, routed-expert shapes)``."""
    h, heads, kv_heads, head_dim = (
        config.hidden_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.head_dim,
    )
    root = [(config.vocab_size, h), (h,), (config.vocab_size, h)]  # embeddings, final norm, LM head
    attention = [(h,), (h,), ((heads + 2 * kv_heads) * head_dim, h), (h, heads * head_dim)]
    if config.use_qk_norm:
        attention += [(head_dim,), (head_dim,)]
    layers = []
    for index in range(config.num_hidden_layers):
        if index < config.first_k_dense_replace:
            mlp = _swiglu(h, config.intermediate_size)
            layers.append((attention + mlp, []))
            continue
        routers = [(config.num_experts, h)] * len(config.router_modalities)
        shared = (
            _swiglu(h, config.moe_intermediate_size * config.num_shared_experts) if config.num_shared_experts else []
        )
        i, e = config.moe_intermediate_size, config.num_experts
        layers.append((attention + routers + shared, [(e, 2 * i, h), (e, h, i)]))
    return root, layers


def _swiglu(hidden: int, intermediate: int) -> list[tuple[int, ...]]:
    return [(intermediate, hidden), (intermediate, hidden), (hidden, intermediate)]
