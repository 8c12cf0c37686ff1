"""Autoencoders for the generator (paper §2.3; DESIGN: 16-channel ``AutoencoderKL``).

Full scale uses diffusers' ``AutoencoderKL`` with SD3's 16-channel layout (:func:`autoencoder_kl_config`). For
CPU-sized training there is :class:`PixelUnshuffleAutoencoder`: an exact, parameter-free ``pixel_unshuffle`` of the
image (factor 2: 3 × 4 = 12 channels at half resolution), with AutoencoderKL's ``encode`` / ``decode`` interface. A
random tiny AutoencoderKL would have to be trained first and would blur 32-px shapes; the lossless one lets a few
minutes of training go entirely into the DiT, and makes a reference's reconstruction exactly the reference.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKLOutput
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_utils import ModelMixin

__all__ = ["PixelUnshuffleAutoencoder", "autoencoder_kl_config", "vae_scale_factor"]


def autoencoder_kl_config(scale: str = "flash") -> dict[str, Any]:
    """``AutoencoderKL`` kwargs: ``"flash"`` = SD3's 16-channel VAE (factor 8, scaling 1.5305, shift 0.0609);
    ``"tiny"`` = 16 channels, factor 2, 2 small blocks (random weights, for tests of the VAE path)."""
    if scale == "flash":
        blocks, channels, layers, scaling, shift = (128, 256, 512, 512), 16, 2, 1.5305, 0.0609
    elif scale == "tiny":
        blocks, channels, layers, scaling, shift = (16, 32), 16, 1, 1.0, 0.0
    else:
        raise ValueError(f"scale must be 'flash' or 'tiny', got {scale!r}")
    return {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": channels,
        "block_out_channels": blocks,
        "down_block_types": ("DownEncoderBlock2D",) * len(blocks),
        "up_block_types": ("UpDecoderBlock2D",) * len(blocks),
        "layers_per_block": layers,
        "norm_num_groups": min(32, blocks[0]),
        "scaling_factor": scaling,
        "shift_factor": shift,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    }


def vae_scale_factor(vae: Any) -> int:
    """Pixels per latent cell of ``vae`` (an ``AutoencoderKL`` or a :class:`PixelUnshuffleAutoencoder`)."""
    factor = getattr(vae.config, "factor", None)
    return int(factor) if factor is not None else 2 ** (len(vae.config.block_out_channels) - 1)


class PixelUnshuffleAutoencoder(ModelMixin, ConfigMixin):
    """Exact space-to-depth "autoencoder": ``encode`` = ``pixel_unshuffle(x, factor)``, ``decode`` its inverse.

    Args:
        in_channels: image channels.
        factor: spatial factor; latents have ``in_channels × factor²`` channels.
        scaling_factor: kept for the AutoencoderKL interface (latents are ``(z − shift) · scale``); 1.
        shift_factor: likewise; 0.
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, factor: int = 2, scaling_factor: float = 1.0, shift_factor: float = 0.0):
        super().__init__()
        # Carries .device / .dtype; saved so save_pretrained writes the weights file from_pretrained expects.
        self.register_buffer("_anchor", torch.zeros(()))

    @property
    def latent_channels(self) -> int:
        """Channels of the latents."""
        return self.config.in_channels * self.config.factor**2

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """``(B, C, H, W)`` images in [-1, 1] → a deterministic latent distribution of ``(B, C·f², H/f, W/f)``."""
        f = self.config.factor
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of factor {f}")
        z = F.pixel_unshuffle(x, f)
        dist = DiagonalGaussianDistribution(torch.cat([z, torch.zeros_like(z)], dim=1), deterministic=True)
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple:
        """Latents → images (exact inverse of :meth:`encode`)."""
        x = F.pixel_shuffle(z, self.config.factor)
        return DecoderOutput(sample=x) if return_dict else (x,)
