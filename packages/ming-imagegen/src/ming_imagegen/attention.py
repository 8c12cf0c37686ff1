"""Joint attention with 3D rotary positions and a key mask (paper §2.3; DESIGN: 3D rotary axes 20/22/22).

diffusers' ``JointAttnProcessor2_0`` (SD3) takes neither rotary embeddings nor a mask, and Flux's processor expects
Flux's fused projections; the MMDiT here needs both on SD3's ``Attention`` modules: rotary frames tell the target
from each reference image, and the mask drops padded condition tokens and dropped references inside one batched
forward (so every guidance branch runs in one call).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import apply_rotary_emb

__all__ = ["RotaryJointAttnProcessor"]


class RotaryJointAttnProcessor:
    """SD3 joint attention over ``[image tokens, context tokens]`` with rotary positions and a key mask.

    Works for joint blocks (``encoder_hidden_states`` given) and single-stream blocks (``None``).
    ``image_rotary_emb`` is a ``(cos, sin)`` pair of shape ``(image tokens, head_dim)`` (diffusers' interleaved
    layout, the same for every row); context tokens are not rotated (position 0); ``attention_mask`` is a
    ``(batch, tokens)`` bool mask of the keys to keep.
    """

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        batch, image_tokens = hidden_states.shape[:2]

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)

        query, key, value = (
            heads(attn.to_q(hidden_states)),
            heads(attn.to_k(hidden_states)),
            heads(attn.to_v(hidden_states)),
        )
        if attn.norm_q is not None:
            query, key = attn.norm_q(query), attn.norm_k(key)
        if image_rotary_emb is not None:  # context tokens sit at position 0 (no rotation): only image tokens turn
            query, key = apply_rotary_emb(query, image_rotary_emb), apply_rotary_emb(key, image_rotary_emb)
        if encoder_hidden_states is not None:
            c_query = heads(attn.add_q_proj(encoder_hidden_states))
            c_key = heads(attn.add_k_proj(encoder_hidden_states))
            c_value = heads(attn.add_v_proj(encoder_hidden_states))
            if attn.norm_added_q is not None:
                c_query, c_key = attn.norm_added_q(c_query), attn.norm_added_k(c_key)
            query, key, value = (torch.cat(pair, dim=2) for pair in ((query, c_query), (key, c_key), (value, c_value)))

        mask = None if attention_mask is None else attention_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * query.shape[-1]).to(query.dtype)

        image_out = attn.to_out[1](attn.to_out[0](out[:, :image_tokens]))
        if encoder_hidden_states is None:
            return image_out
        context_out = out[:, image_tokens:]
        if not attn.context_pre_only:
            context_out = attn.to_add_out(context_out)
        return image_out, context_out
