"""Names of the audio encoder + projector in the original Ming-Omni checkpoints (BailingMM / BailingMM2).

The released models keep the audio side in two top-level modules: ``audio`` (an OpenAI-Whisper-style encoder:
``conv1``, ``conv2``, ``positional_embedding``, ``blocks.{i}.attn.{query,key,value,out}``, ``attn_ln``,
``mlp.{0,2}``, ``mlp_ln``, ``ln_post``) and ``linear_proj_audio`` (``nn.Sequential(Conv1d, Transpose, GELU, Linear,
Transpose)``, so the conv is ``0`` and the linear ``3``). :class:`~ming_contextasr.ContextASRAudioModel` holds
transformers' ``WhisperEncoder`` under ``encoder`` and the projector as ``projector_conv`` / ``projector_linear``.
The tables below pair the names, relative to each part; ``*`` stands for a layer index. A model that embeds the
audio model places each part under its own prefix.
"""

from __future__ import annotations

__all__ = ["ORIGINAL_AUDIO_ENCODER_NAMES", "ORIGINAL_AUDIO_PROJECTOR_NAMES"]

ORIGINAL_AUDIO_ENCODER_NAMES: tuple[tuple[str, str], ...] = (
    ("conv1.", "encoder.conv1."),
    ("conv2.", "encoder.conv2."),
    ("positional_embedding", "encoder.embed_positions.weight"),
    ("blocks.*.attn.query.", "encoder.layers.*.self_attn.q_proj."),
    ("blocks.*.attn.key.", "encoder.layers.*.self_attn.k_proj."),
    ("blocks.*.attn.value.", "encoder.layers.*.self_attn.v_proj."),
    ("blocks.*.attn.out.", "encoder.layers.*.self_attn.out_proj."),
    ("blocks.*.attn_ln.", "encoder.layers.*.self_attn_layer_norm."),
    ("blocks.*.mlp.0.", "encoder.layers.*.fc1."),
    ("blocks.*.mlp.2.", "encoder.layers.*.fc2."),
    ("blocks.*.mlp_ln.", "encoder.layers.*.final_layer_norm."),
    ("ln_post.", "encoder.layer_norm."),
)
"""(original name under the original ``audio.`` module, name in :class:`ContextASRAudioModel`) prefix pairs."""

ORIGINAL_AUDIO_PROJECTOR_NAMES: tuple[tuple[str, str], ...] = (
    ("0.", "projector_conv."),
    ("3.", "projector_linear."),
)
"""(original name under the original ``linear_proj_audio.`` module, name in :class:`ContextASRAudioModel`) pairs."""
