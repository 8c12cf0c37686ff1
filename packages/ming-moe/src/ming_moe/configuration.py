"""Configuration of the BailingMoeV2 (Ling-flash-2.0) decoder used as Ming-Flash-Omni's LLM (paper §2, §2.1).

``BailingMoeV2Config.flash()`` holds the full-scale numbers of DESIGN.md; ``tiny()`` trains on two CPU cores.
"""

from __future__ import annotations

from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

ROUTER_MODALITIES = ("text", "image", "audio")
"""Router names in the order of their index; ``router_modalities`` is a prefix of this tuple."""


@strict
class BailingMoeV2Config(PreTrainedConfig):
    r"""Configuration of :class:`BailingMoeV2ForCausalLM`.

    Architecture numbers live here only. Attention: fused ``query_key_value`` projection with grouped-query heads,
    RMSNorm on q and k before rotary, rotary on the first ``partial_rotary_factor`` of each head with a
    ``rotary_layout`` from ming-videorope. MLP: the first ``first_k_dense_replace`` layers are dense, the rest are
    MoE layers with ``num_experts`` routed experts (``num_experts_per_tok`` chosen per token by a group-limited sigmoid
    router with expert bias) plus ``num_shared_experts`` shared experts, and one router per entry of
    ``router_modalities``.

    Attributes:
        router_modalities: routers over the same experts, a prefix of ``("text", "image", "audio")``; image and video
            tokens use the image router, audio tokens the audio router, all others the text router.
        router_aux_loss_coef: weight of the per-router switch-style load-balancing loss added to the LM loss.
        bias_update_rate: step of the per-router expert-bias update ``bias += rate * sign(mean_load - load)``.
    """

    model_type = "ming_bailing_moe_v2"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["cache"]

    vocab_size: int = 157184
    hidden_size: int = 4096
    intermediate_size: int = 9216
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = 4
    head_dim: int = 128
    hidden_act: str = "silu"
    max_position_embeddings: int = 32768
    initializer_range: float = 0.006
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    tie_word_embeddings: bool = False
    rope_theta: float = 600000.0
    partial_rotary_factor: float = 0.5
    rotary_layout: str = "videorope"
    use_qk_norm: bool = True
    attention_dropout: float = 0.0
    num_experts: int = 256
    num_experts_per_tok: int = 8
    num_shared_experts: int = 1
    moe_intermediate_size: int = 1024
    n_group: int = 8
    topk_group: int = 4
    routed_scaling_factor: float = 2.5
    norm_topk_prob: bool = True
    first_k_dense_replace: int = 1
    router_modalities: list[str] | tuple[str, ...] = ROUTER_MODALITIES
    router_aux_loss_coef: float = 0.001
    bias_update_rate: float = 0.001
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self, **kwargs):
        self.router_modalities = list(self.router_modalities)
        if (
            self.router_modalities != list(ROUTER_MODALITIES[: len(self.router_modalities)])
            or not self.router_modalities
        ):
            raise ValueError(
                f"router_modalities must be a non-empty prefix of {list(ROUTER_MODALITIES)}, "
                f"got {self.router_modalities}"
            )
        if self.num_experts % self.n_group:
            raise ValueError(f"num_experts ({self.num_experts}) must be divisible by n_group ({self.n_group})")
        if not 1 <= self.topk_group <= self.n_group:
            raise ValueError(f"topk_group must be in [1, n_group={self.n_group}], got {self.topk_group}")
        if self.num_experts_per_tok > self.topk_group * (self.num_experts // self.n_group):
            raise ValueError("num_experts_per_tok exceeds the experts available in the kept groups")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        rotary_dim = int(self.head_dim * self.partial_rotary_factor)
        if rotary_dim <= 0 or rotary_dim % 2:
            raise ValueError(f"head_dim × partial_rotary_factor must be a positive even number, got {rotary_dim}")
        super().__post_init__(**kwargs)

    @property
    def rotary_dim(self) -> int:
        """Rotated dimensions per head (64 of 128 for Ling-flash-2.0)."""
        return int(self.head_dim * self.partial_rotary_factor)

    @classmethod
    def flash(cls, **overrides) -> BailingMoeV2Config:
        """Ling-flash-2.0 as used in Ming-Flash-Omni: about 103 B parameters, 6.1 B active per token."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides) -> BailingMoeV2Config:
        """A 4-layer model with 16 experts in 4 groups that runs and trains on a laptop CPU."""
        values = {
            "vocab_size": 512,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 2048,
            "initializer_range": 0.02,
            "rope_theta": 10000.0,
            "num_experts": 16,
            "num_experts_per_tok": 4,
            "moe_intermediate_size": 32,
            "n_group": 4,
            "topk_group": 2,
        }
        values.update(overrides)
        return cls(**values)
