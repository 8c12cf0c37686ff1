"""Glyph-ByT5 text branch (paper §2.3 "High-Fidelity Text Rendering"): quoted text → byte-level T5 → mapper.

Text to be drawn is what the prompt quotes. :func:`extract_quoted_text` finds it; the pipeline encodes the quoted
strings of a prompt (joined by newlines) with a T5 encoder over ByT5's byte vocabulary (transformers'
``T5EncoderModel`` + ``ByT5Tokenizer``, which needs no vocabulary file), and :class:`GlyphMapper` maps the byte states
to unit condition tokens that join the LLM condition tokens with their own type embedding.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from transformers import T5Config

__all__ = ["GlyphMapper", "byt5_encoder_config", "extract_quoted_text"]

# Opening → closing quote. Straight double quotes do not nest; typographic and CJK corner quotes do.
_NESTING = {"“": "”", "「": "」"}


def extract_quoted_text(prompt: str) -> list[str]:
    """The texts a prompt quotes, in order.

    Rules: ``"…"`` (no nesting; ``\\"`` and ``\\\\`` inside are a literal quote and backslash), ``“…”`` and ``「…」``
    (nesting: the outermost span is returned with the inner quotes as text); inside one kind of quote the other kinds
    are plain characters; a backslash-escaped quote outside quotes opens nothing; single quotes are never delimiters
    (apostrophes: ``the cat's sign``); an unclosed quote and everything after it is ignored; empty or blank quotes are
    skipped.

    Example:
        ``extract_quoted_text('a sign saying "OPEN \\"24/7\\"" and “big “sale” now”')`` →
        ``['OPEN "24/7"', 'big “sale” now']``.
    """
    found: list[str] = []
    i, n = 0, len(prompt)
    while i < n:
        ch = prompt[i]
        if ch == "\\":
            i += 2
            continue
        if ch != '"' and ch not in _NESTING:
            i += 1
            continue
        closing = _NESTING.get(ch, '"')
        depth, j, text = 1, i + 1, []
        while j < n:
            c = prompt[j]
            if c == "\\" and j + 1 < n and prompt[j + 1] in {"\\", ch, closing}:
                text.append(prompt[j + 1])
                j += 2
                continue
            if c == closing:
                depth -= 1
                if depth == 0:
                    break
            elif c == ch and ch != '"':
                depth += 1
            text.append(c)
            j += 1
        if depth:
            break
        quoted = "".join(text)
        if quoted.strip():
            found.append(quoted)
        i = j + 1
    return found


def byt5_encoder_config(scale: str = "tiny") -> T5Config:
    """The T5 encoder configuration over ByT5's 384 byte ids: ``"flash"`` = ByT5-small's encoder (the Glyph-ByT5
    backbone: d_model 1472, 12 layers, 6 heads, gated-GELU FFN 3584), ``"tiny"`` = 2 layers of 64."""
    if scale == "flash":
        sizes = {"d_model": 1472, "d_kv": 64, "d_ff": 3584, "num_layers": 12, "num_heads": 6}
    elif scale == "tiny":
        sizes = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_heads": 4}
    else:
        raise ValueError(f"scale must be 'flash' or 'tiny', got {scale!r}")
    return T5Config(vocab_size=384, feed_forward_proj="gated-gelu", is_encoder_decoder=False, **sizes)


class GlyphMapper(ModelMixin, ConfigMixin):
    """Maps ByT5 encoder states to condition tokens: ``Linear → GELU → Linear`` then L2 norm (like the LLM tokens).

    Args:
        glyph_dim: width of the ByT5 encoder (1472 for ByT5-small).
        condition_dim: width of the condition tokens (2048).
    """

    @register_to_config
    def __init__(self, glyph_dim: int = 1472, condition_dim: int = 2048):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(glyph_dim, condition_dim), nn.GELU(approximate="tanh"), nn.Linear(condition_dim, condition_dim)
        )

    @staticmethod
    def flash_config() -> dict[str, Any]:
        """ByT5-small width → 2048."""
        return {"glyph_dim": 1472, "condition_dim": 2048}

    def forward(self, glyph_states: torch.Tensor) -> torch.Tensor:
        """``(B, L, glyph_dim)`` → ``(B, L, condition_dim)`` unit tokens."""
        return F.normalize(self.net(glyph_states), dim=-1)
