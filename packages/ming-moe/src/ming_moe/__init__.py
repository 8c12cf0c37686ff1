"""ming-moe: the Ling-flash-2.0 (BailingMoeV2) sparse MoE LLM of Ming-Flash-Omni (paper §2, §2.1).

- :class:`BailingMoeV2Config` (``flash()`` / ``tiny()``), :class:`BailingMoeV2Model`, :class:`BailingMoeV2ForCausalLM`
  (``generate()``, ``save_pretrained()``, ``from_pretrained(local_dir)``).
- :class:`GroupLimitedRouter`: sigmoid scores in fp32, group-limited top-k on score + expert bias.
- :class:`SparseMoeBlock`: one router per modality (text, image, audio) over the same experts, plus a shared expert.
- Hybrid balancing: the per-router auxiliary loss (added to the LM loss) and :class:`ExpertBiasUpdater`.
- Checkpoints: ``from_pretrained`` reads the original per-expert layout (and ``save_pretrained`` writes it), strictly.
- Scale-out over ``torch.distributed``: :func:`apply_expert_parallel` (experts split across ranks, tokens dispatched
  with ``all_to_all_single``), :func:`shard_model` (FSDP2 composed with expert parallelism on a ``(dp, ep)`` mesh),
  DCP checkpoints (:func:`save_distributed_checkpoint`, :func:`load_distributed_checkpoint`,
  :func:`convert_distributed_checkpoint` to safetensors), and :func:`estimate_memory_per_rank`.
"""

from .attention import BailingMoeV2Attention
from .balancing import ExpertBiasUpdater, expert_load_statistics, load_imbalance
from .checkpoint import ORIGINAL_LAYOUT, check_checkpoint, checkpoint_keys, original_checkpoint_keys
from .configuration import ROUTER_MODALITIES, BailingMoeV2Config
from .distributed_checkpoint import (
    convert_distributed_checkpoint,
    load_distributed_checkpoint,
    materialize_model,
    save_distributed_checkpoint,
)
from .expert_parallel import ExpertParallelExperts, apply_expert_parallel
from .experts import DenseMLP, MoeExperts
from .memory import MemoryEstimate, estimate_memory_per_rank
from .modeling import (
    BailingMoeV2DecoderLayer,
    BailingMoeV2ForCausalLM,
    BailingMoeV2Model,
    BailingMoeV2ModelOutput,
    BailingMoeV2PreTrainedModel,
)
from .moe import ROUTER_ATTRIBUTES, SparseMoeBlock
from .router import GroupLimitedRouter
from .sharding import MESH_DIMS, ParallelLayout, build_device_mesh, shard_model
from .training import TrainingLog, random_windows, train_causal_lm

__all__ = [
    "MESH_DIMS",
    "ORIGINAL_LAYOUT",
    "ROUTER_ATTRIBUTES",
    "ROUTER_MODALITIES",
    "BailingMoeV2Attention",
    "BailingMoeV2Config",
    "BailingMoeV2DecoderLayer",
    "BailingMoeV2ForCausalLM",
    "BailingMoeV2Model",
    "BailingMoeV2ModelOutput",
    "BailingMoeV2PreTrainedModel",
    "DenseMLP",
    "ExpertBiasUpdater",
    "ExpertParallelExperts",
    "GroupLimitedRouter",
    "MemoryEstimate",
    "MoeExperts",
    "ParallelLayout",
    "SparseMoeBlock",
    "TrainingLog",
    "apply_expert_parallel",
    "build_device_mesh",
    "check_checkpoint",
    "checkpoint_keys",
    "convert_distributed_checkpoint",
    "estimate_memory_per_rank",
    "expert_load_statistics",
    "load_distributed_checkpoint",
    "load_imbalance",
    "materialize_model",
    "original_checkpoint_keys",
    "random_windows",
    "save_distributed_checkpoint",
    "shard_model",
    "train_causal_lm",
]
