"""ming-imagegen: the image generator of Ming-Flash-Omni conditioned on a frozen LLM (paper §2.3, §2.4).

- :class:`MingConditioner`: multi-scale learnable queries (4, 8, 16 → 16 + 64 + 256) appended to the prompt of any
  causal LM, and the connector from the LM's states at the finest queries to unit condition tokens.
- :class:`MingDiTTransformer2DModel`: SD3-style MMDiT from diffusers' joint blocks with noise and reference refiners,
  3D rotary positions (20/22/22), condition MLP 2048 → 2048 → 4096, reference latents with concept vectors;
  ``flash_config()`` ≈ 2.4B.
- Glyph-ByT5 branch: :func:`extract_quoted_text`, :func:`byt5_encoder_config`, :class:`GlyphMapper`.
- :class:`IdentityEncoder`: VAE latents of a subject crop → identity tokens.
- Autoencoders: :func:`autoencoder_kl_config` (16-channel AutoencoderKL), lossless
  :class:`PixelUnshuffleAutoencoder` for CPU training.
- :class:`MingImagePipeline` (a diffusers ``DiffusionPipeline``; ``__call__`` and ``edit``) with
  :class:`ImageGenerationOptions`, batched :func:`text_guidance` / :func:`editing_guidance`, aspect-ratio buckets.
- Presets: :func:`tiny_pipeline`, :func:`tiny_language_model`, :func:`flash_components`.
- Training: :func:`train_image_generator` on :class:`GenerationSample` / :class:`EditingSample` with a
  :class:`TrainingRecipe` (LLM frozen, progress bar, checkpoints, exact resume, sample grids);
  :func:`flow_matching_pair`; :func:`pretrain_language_model` (next-token pretraining of a small stand-in LLM);
  the opt-in composite :func:`identity_loss` on :func:`predicted_clean`.
"""

from .attention import RotaryJointAttnProcessor
from .buckets import ASPECT_RATIO_BUCKETS_512, aspect_ratio_buckets, nearest_bucket
from .conditioning import MingConditioner
from .glyph import GlyphMapper, byt5_encoder_config, extract_quoted_text
from .guidance import editing_guidance, text_guidance
from .identity import IdentityEncoder
from .options import ImageGenerationOptions
from .pipeline import Condition, MingImagePipeline
from .presets import flash_components, tiny_language_model, tiny_pipeline
from .training import (
    EditingSample,
    GenerationSample,
    TrainingLog,
    TrainingRecipe,
    flow_matching_pair,
    identity_loss,
    predicted_clean,
    pretrain_language_model,
    train_image_generator,
)
from .transformer import CONDITION_TYPES, MingDiTTransformer2DModel
from .vae import PixelUnshuffleAutoencoder, autoencoder_kl_config, vae_scale_factor

__all__ = [
    "ASPECT_RATIO_BUCKETS_512",
    "CONDITION_TYPES",
    "Condition",
    "EditingSample",
    "GenerationSample",
    "GlyphMapper",
    "IdentityEncoder",
    "ImageGenerationOptions",
    "MingConditioner",
    "MingDiTTransformer2DModel",
    "MingImagePipeline",
    "PixelUnshuffleAutoencoder",
    "RotaryJointAttnProcessor",
    "TrainingLog",
    "TrainingRecipe",
    "aspect_ratio_buckets",
    "autoencoder_kl_config",
    "byt5_encoder_config",
    "editing_guidance",
    "extract_quoted_text",
    "flash_components",
    "flow_matching_pair",
    "identity_loss",
    "nearest_bucket",
    "predicted_clean",
    "pretrain_language_model",
    "text_guidance",
    "tiny_language_model",
    "tiny_pipeline",
    "train_image_generator",
    "vae_scale_factor",
]
