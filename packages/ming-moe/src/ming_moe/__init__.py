"""ming-moe: the Ling-flash-2.0 (BailingMoeV2) sparse MoE LLM of Ming-Flash-Omni (paper §2, §2.1).

- :class:`BailingMoeV2Config` (``flash()`` / ``tiny()``), :class:`BailingMoeV2Model`, :class:`BailingMoeV2ForCausalLM`
  (``generate()``, ``save_pretrained()``, ``from_pretrained(local_dir)``).
- :class:`GroupLimitedRouter`: sigmoid scores in fp32, group-limited top-k on score + expert bias.
- :class:`SparseMoeBlock`: one router per modality (text, image, audio) over the same experts, plus a shared expert.
- Hybrid balancing: the per-router auxiliary loss (added to the LM loss) and :class:`ExpertBiasUpdater`.
- Checkpoints: ``from_pretrained`` reads the original per-expert layout (and ``save_pretrained`` writes it), strictly.
"""

from .attention import BailingMoeV2Attention
from .balancing import ExpertBiasUpdater, expert_load_statistics, load_imbalance
from .checkpoint import ORIGINAL_LAYOUT, check_checkpoint, checkpoint_keys, original_checkpoint_keys
from .configuration import ROUTER_MODALITIES, BailingMoeV2Config
from .experts import DenseMLP, MoeExperts
from .modeling import (
    BailingMoeV2DecoderLayer,
    BailingMoeV2ForCausalLM,
    BailingMoeV2Model,
    BailingMoeV2ModelOutput,
    BailingMoeV2PreTrainedModel,
)
from .moe import ROUTER_ATTRIBUTES, SparseMoeBlock
from .router import GroupLimitedRouter
from .training import TrainingLog, random_windows, train_causal_lm

__all__ = [
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
    "GroupLimitedRouter",
    "MoeExperts",
    "SparseMoeBlock",
    "TrainingLog",
    "check_checkpoint",
    "checkpoint_keys",
    "expert_load_statistics",
    "load_imbalance",
    "original_checkpoint_keys",
    "random_windows",
    "train_causal_lm",
]
