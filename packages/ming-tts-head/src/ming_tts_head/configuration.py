"""Configuration of the DiTAR-style TTS head (paper §2.2: a Qwen2.5-based audio head whose last hidden state
conditions a flow-matching head over patches of continuous speech latents; Jia et al. 2025).

The only place the architecture numbers live. ``flash()`` has the numbers of DESIGN.md: the Qwen2.5-0.5B backbone
(hidden 896, 24 layers, 14 query / 2 KV heads, MLP 4864, Qwen2.5 vocabulary, rope θ 10⁶), patches of 4 latent frames
of 64 dims, 32 frames of history, and a flow DiT and an aggregator each of depth 8, width 1024 with 16 heads. The
MLP width of the DiT and the aggregator (4 × width) is not reported and is our choice. ``tiny()`` trains on two CPU
cores in seconds.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, Qwen2Config

__all__ = ["TTSHeadConfig"]


@strict
class TTSHeadConfig(PreTrainedConfig):
    r"""Sizes of the backbone, the patch aggregator, the flow-matching DiT and the stop head.

    The backbone fields (``vocab_size`` … ``rms_norm_eps``) describe a transformers ``Qwen2Model``; the DiT and the
    aggregator are stacks of bidirectional Qwen2 decoder layers (see :class:`~ming_tts_head.BidirectionalTransformer`).

    Attributes:
        vocab_size: text vocabulary of the backbone (Qwen2.5's 151936).
        hidden_size: backbone width; also the width of the aggregator's output and the stop head's input.
        intermediate_size: backbone MLP width.
        num_hidden_layers: backbone decoder layers.
        num_attention_heads: backbone query heads.
        num_key_value_heads: backbone key/value heads (grouped-query attention).
        max_position_embeddings: longest backbone sequence (text + separator + patches).
        rope_theta: rotary base of the backbone.
        rms_norm_eps: epsilon of every RMS norm.
        latent_dim: channels of a latent frame (the speech tokenizer's 64).
        patch_size: latent frames generated per autoregressive step (4 frames = 80 ms at 50 Hz).
        history_frames: latest latent frames (prompt or generated) the flow head sees besides the noisy patch.
        flow_hidden_size: width of the flow-matching DiT.
        flow_num_layers: layers of the DiT.
        flow_num_heads: attention heads of the DiT.
        flow_intermediate_size: MLP width of the DiT.
        flow_rope_theta: rotary base of the DiT and the aggregator (their sequences are short).
        aggregator_hidden_size: width of the patch aggregator.
        aggregator_num_layers: layers of the aggregator.
        aggregator_num_heads: attention heads of the aggregator.
        aggregator_intermediate_size: MLP width of the aggregator.
        condition_dropout: probability, in training, of replacing a patch's backbone condition by the learned null
            condition (what classifier-free guidance contrasts against).
        stop_loss_weight: weight of the stop head's cross-entropy in the training loss.
        regression_loss_weight: weight of an auxiliary training loss (not in the paper): a linear head regresses
            each patch from the backbone state that conditions it (MSE). It gives the backbone a direct,
            low-variance signal of what comes next — the text-to-speech alignment a small head on a small corpus
            does not learn through the flow loss alone. 0 (default) builds no such head.
        initializer_range: standard deviation of the random initialisation.
    """

    model_type = "ming_tts_head"

    vocab_size: int = 151936
    hidden_size: int = 896
    intermediate_size: int = 4864
    num_hidden_layers: int = 24
    num_attention_heads: int = 14
    num_key_value_heads: int = 2
    max_position_embeddings: int = 32768
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    latent_dim: int = 64
    patch_size: int = 4
    history_frames: int = 32
    flow_hidden_size: int = 1024
    flow_num_layers: int = 8
    flow_num_heads: int = 16
    flow_intermediate_size: int = 4096
    flow_rope_theta: float = 10_000.0
    aggregator_hidden_size: int = 1024
    aggregator_num_layers: int = 8
    aggregator_num_heads: int = 16
    aggregator_intermediate_size: int = 4096
    condition_dropout: float = 0.1
    stop_loss_weight: float = 1.0
    regression_loss_weight: float = 0.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any) -> None:
        for prefix in ("", "flow_", "aggregator_"):
            width = getattr(self, f"{prefix}hidden_size")
            heads = getattr(self, f"{prefix}num_heads" if prefix else "num_attention_heads")
            if width % heads or (width // heads) % 2:
                raise ValueError(f"{prefix}hidden_size ({width}) must split into {heads} heads of even size (rotary)")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        for name in ("latent_dim", "patch_size", "history_frames", "flow_num_layers", "aggregator_num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.condition_dropout < 1.0:
            raise ValueError(f"condition_dropout must be in [0, 1), got {self.condition_dropout}")
        for name in ("stop_loss_weight", "regression_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        super().__post_init__(**kwargs)

    def backbone_config(self, attn_implementation: str | None = None) -> Qwen2Config:
        """The transformers ``Qwen2Config`` of the backbone (no sliding window, no LM head)."""
        return Qwen2Config(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            initializer_range=self.initializer_range,
            tie_word_embeddings=False,
            attn_implementation=attn_implementation,
        )

    def block_config(self, part: str, attn_implementation: str | None = None) -> Qwen2Config:
        """The ``Qwen2Config`` of the layers of ``part`` (``"flow"`` or ``"aggregator"``): full multi-head attention
        (as many KV heads as query heads) at that part's width and depth."""
        if part not in ("flow", "aggregator"):
            raise ValueError(f"part must be 'flow' or 'aggregator', got {part!r}")
        heads = getattr(self, f"{part}_num_heads")
        return Qwen2Config(
            vocab_size=1,  # unused: the blocks take embeddings
            hidden_size=getattr(self, f"{part}_hidden_size"),
            intermediate_size=getattr(self, f"{part}_intermediate_size"),
            num_hidden_layers=getattr(self, f"{part}_num_layers"),
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=2 + self.history_frames + self.patch_size,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.flow_rope_theta},
            initializer_range=self.initializer_range,
            attn_implementation=attn_implementation,
        )

    @classmethod
    def flash(cls, **overrides) -> TTSHeadConfig:
        """Ming-Flash-Omni's talker: Qwen2.5-0.5B backbone, patch 4, history 32, DiT and aggregator 8 × 1024 / 16."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides) -> TTSHeadConfig:
        """Two-layer backbone, DiT and aggregator of width 64 over a 256-token vocabulary, for tests and examples."""
        values = {
            "vocab_size": 256,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "rope_theta": 10_000.0,
            "history_frames": 8,
            "flow_hidden_size": 64,
            "flow_num_layers": 2,
            "flow_num_heads": 4,
            "flow_intermediate_size": 128,
            "aggregator_hidden_size": 64,
            "aggregator_num_layers": 2,
            "aggregator_num_heads": 4,
            "aggregator_intermediate_size": 128,
        }
        values.update(overrides)
        return cls(**values)
