"""Ready-made component sets: ``tiny_pipeline`` (CPU training and tests) and ``flash_components`` (paper scale)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from transformers import ByT5Tokenizer, Qwen2Config, Qwen2ForCausalLM, T5EncoderModel

from .conditioning import MingConditioner
from .glyph import GlyphMapper, byt5_encoder_config
from .identity import IdentityEncoder
from .pipeline import MingImagePipeline
from .transformer import MingDiTTransformer2DModel
from .vae import PixelUnshuffleAutoencoder, autoencoder_kl_config

__all__ = ["flash_components", "tiny_language_model", "tiny_pipeline"]


def tiny_language_model(vocab_size: int = 384, hidden_size: int = 64, seed: int = 0) -> tuple[Qwen2ForCausalLM, Any]:
    """A 2-layer Qwen2 causal LM of width ``hidden_size`` with random weights, and a ``ByT5Tokenizer`` (bytes; no
    files needed) matching its 384-entry vocabulary. Stands in for the frozen LLM in tests and small runs."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    return Qwen2ForCausalLM(config).eval(), ByT5Tokenizer()


def tiny_pipeline(
    language_model: Any | None = None,
    tokenizer: Any | None = None,
    *,
    image_size: int = 32,
    vae: Literal["pixel", "kl"] = "pixel",
    glyph: bool = True,
    identity: bool = True,
    prediction_type: Literal["velocity", "sample"] = "velocity",
    seed: int = 0,
) -> MingImagePipeline:
    """A CPU-sized pipeline around ``language_model`` (default :func:`tiny_language_model`).

    Args:
        language_model: any transformers causal LM; its ``config.hidden_size`` sizes the queries.
        tokenizer: its tokenizer (must support ``padding_side="left"``); required with ``language_model``.
        image_size: default image side (32 or 64 for the shapes data).
        vae: ``"pixel"``: lossless :class:`~ming_imagegen.PixelUnshuffleAutoencoder` (factor 2, 12 channels; use this
            to train); ``"kl"``: a random tiny 16-channel ``AutoencoderKL`` (factor 2).
        glyph: include the Glyph-ByT5 branch (tiny T5 encoder, frozen; its mapper trains).
        identity: include the identity encoder.
        prediction_type: the DiT's output head (:class:`~ming_imagegen.MingDiTTransformer2DModel`): ``"velocity"``,
            or ``"sample"`` (clean latents, returned as a velocity; trains faster on the pixel autoencoder).
        seed: seed of the random initialisation.
    """
    if (language_model is None) != (tokenizer is None):
        raise ValueError("give both language_model and tokenizer, or neither")
    if language_model is None:
        language_model, tokenizer = tiny_language_model(seed=seed)
    torch.manual_seed(seed)
    autoencoder = PixelUnshuffleAutoencoder() if vae == "pixel" else AutoencoderKL(**autoencoder_kl_config("tiny"))
    channels = autoencoder.latent_channels if vae == "pixel" else autoencoder.config.latent_channels
    if image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 (VAE factor 2 × patch 2), got {image_size}")
    transformer = MingDiTTransformer2DModel(
        **MingDiTTransformer2DModel.tiny_config(channels, image_size // 2), prediction_type=prediction_type
    )
    dim = transformer.config.condition_dim
    conditioner = MingConditioner(**MingConditioner.tiny_config(language_model.config.hidden_size, dim))
    glyph_parts: dict[str, Any] = {}
    if glyph:
        encoder = T5EncoderModel(byt5_encoder_config("tiny")).eval()
        glyph_parts = {
            "glyph_encoder": encoder,
            "glyph_tokenizer": ByT5Tokenizer(),
            "glyph_mapper": GlyphMapper(encoder.config.d_model, dim),
        }
    identity_encoder = IdentityEncoder(channels, grid=2, crop_size=16, condition_dim=dim) if identity else None
    return MingImagePipeline(
        transformer=transformer,
        vae=autoencoder,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0),
        conditioner=conditioner,
        language_model=language_model,
        tokenizer=tokenizer,
        identity_encoder=identity_encoder,
        **glyph_parts,
    )


def flash_components(llm_hidden_size: int = 4096) -> dict[str, Any]:
    """The paper-scale trainable parts and VAE, built on the current default device (use ``torch.device("meta")`` to
    count without allocating): ``transformer``, ``conditioner``, ``glyph_encoder`` (ByT5-small encoder),
    ``glyph_mapper``, ``identity_encoder``, ``vae`` (16-channel AutoencoderKL) and the 30-step-ready ``scheduler``
    (SD3's shift 3). The LLM (Ling-flash-2.0, ming-moe) is not included."""
    return {
        "transformer": MingDiTTransformer2DModel(**MingDiTTransformer2DModel.flash_config()),
        "conditioner": MingConditioner(**MingConditioner.flash_config(llm_hidden_size)),
        "glyph_encoder": T5EncoderModel(byt5_encoder_config("flash")),
        "glyph_mapper": GlyphMapper(**GlyphMapper.flash_config()),
        "identity_encoder": IdentityEncoder(**IdentityEncoder.flash_config()),
        "vae": AutoencoderKL(**autoencoder_kl_config("flash")),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0),
    }
