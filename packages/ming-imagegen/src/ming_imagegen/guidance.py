"""Guidance rules (paper §2.3; DESIGN: editing guidance ``u + s_img·(c_img − u) + s_txt·(c_full − c_img)``)."""

from __future__ import annotations

import torch

__all__ = ["editing_guidance", "text_guidance"]


def text_guidance(unconditional: torch.Tensor, conditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``u + s·(c − u)``; ``s = 1`` gives ``c``."""
    return unconditional + scale * (conditional - unconditional)


def editing_guidance(
    unconditional: torch.Tensor,
    image_conditional: torch.Tensor,
    full_conditional: torch.Tensor,
    image_scale: float,
    text_scale: float,
) -> torch.Tensor:
    """InstructPix2Pix-style editing guidance ``u + s_img·(c_img − u) + s_txt·(c_full − c_img)``.

    ``u``: neither reference nor text; ``c_img``: reference only; ``c_full``: both. Scales 1 and 1 give ``c_full``.
    """
    return (
        unconditional
        + image_scale * (image_conditional - unconditional)
        + text_scale * (full_conditional - image_conditional)
    )
