"""Flow-matching DiT head (paper §2.2; DiTAR's LocDiT): predicts the rectified-flow velocity of the next patch.

The sequence the DiT attends over, bidirectionally, is
``[backbone condition, flow time, history frame 1 … H, noisy frame 1 … P]``: the backbone's last hidden state and the
time embedding are *prepended* as prefix tokens (not adaLN), the clean history (the latest ``history_frames`` frames
of prompt and generated speech) comes next, and the velocity is read at the noisy frames. Classifier-free guidance
replaces the backbone condition by a learned null condition; both branches run as one batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .configuration import TTSHeadConfig
from .transformer import BidirectionalTransformer

__all__ = ["FlowHead", "timestep_embedding"]

_TIME_FEATURES = 256


def timestep_embedding(t: torch.Tensor, dim: int = _TIME_FEATURES, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features ``(N, dim)`` of flow times ``t`` ``(N,)`` in [0, 1] (scaled by 1000, as in DiT).

    Written here (a few lines) because diffusers, which has it, is not a dependency of this package.
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = scale * t.float()[:, None] * frequencies[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class FlowHead(nn.Module):
    """The DiT: ``velocity(noisy, t, condition, history, history_mask)`` → ``(N, patch_size, latent_dim)``.

    Args:
        config: the head's configuration (``flow_*`` sizes, ``history_frames``, ``patch_size``).
        attn_implementation: attention backend of the layers.
    """

    def __init__(self, config: TTSHeadConfig, attn_implementation: str | None = None) -> None:
        super().__init__()
        width = config.flow_hidden_size
        self.patch_size = config.patch_size
        self.history_frames = config.history_frames
        self.condition_proj = nn.Linear(config.hidden_size, width)
        self.null_condition = nn.Parameter(torch.empty(config.hidden_size))
        self.time_mlp = nn.Sequential(nn.Linear(_TIME_FEATURES, width), nn.SiLU(), nn.Linear(width, width))
        self.history_proj = nn.Linear(config.latent_dim, width)
        self.noisy_proj = nn.Linear(config.latent_dim, width)
        self.transformer = BidirectionalTransformer(config.block_config("flow", attn_implementation))
        self.output_proj = nn.Linear(width, config.latent_dim)

    def forward(
        self,
        noisy: torch.Tensor,
        t: torch.Tensor,
        condition: torch.Tensor,
        history: torch.Tensor,
        history_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Velocity of each noisy patch.

        Args:
            noisy: ``(N, patch_size, latent_dim)`` patches at flow time ``t`` (0 = noise, 1 = data).
            t: ``(N,)`` flow times.
            condition: ``(N, hidden_size)`` backbone states (or the null condition for the unconditional branch).
            history: ``(N, history_frames, latent_dim)`` clean frames preceding the patch, oldest first.
            history_mask: ``(N, history_frames)`` True where a history frame exists (early patches have fewer).
        """
        prefix = torch.stack([self.condition_proj(condition), self.time_mlp(timestep_embedding(t).to(noisy.dtype))], 1)
        tokens = torch.cat([prefix, self.history_proj(history), self.noisy_proj(noisy)], dim=1)
        present = history_mask.new_ones(history_mask.shape[0], 2 + self.history_frames + self.patch_size)
        present[:, 2 : 2 + self.history_frames] = history_mask
        states = self.transformer(tokens, present)
        return self.output_proj(states[:, -self.patch_size :])

    def drop_condition(self, condition: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """Replace the rows of ``condition`` where ``drop`` ``(N,)`` is True by the null condition."""
        return torch.where(drop[:, None], self.null_condition.to(condition.dtype), condition)

    def guided_velocity(
        self,
        noisy: torch.Tensor,
        t: torch.Tensor,
        condition: torch.Tensor,
        history: torch.Tensor,
        history_mask: torch.Tensor,
        cfg_scale: float,
    ) -> torch.Tensor:
        """Classifier-free guided velocity ``v_u + cfg_scale · (v_c − v_u)``, the conditional and the unconditional
        branch computed in ONE batched forward (scale 0 gives the unconditional velocity). Scale 1 is the
        conditional velocity, computed alone."""
        if cfg_scale == 1:
            return self(noisy, t, condition, history, history_mask)
        null = self.null_condition.to(condition.dtype).expand_as(condition)
        both = self(
            torch.cat([noisy, noisy]),
            torch.cat([t, t]),
            torch.cat([condition, null]),
            torch.cat([history, history]),
            torch.cat([history_mask, history_mask]),
        )
        conditional, unconditional = both.chunk(2)
        return unconditional + cfg_scale * (conditional - unconditional)
