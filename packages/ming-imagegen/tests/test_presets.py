"""Paper-scale presets on the meta device: counts against independently computed formulas, and the DESIGN numbers."""

import pytest
import torch
from diffusers import AutoencoderKL

from ming_imagegen import (
    ImageGenerationOptions,
    MingConditioner,
    MingDiTTransformer2DModel,
    flash_components,
)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _linear(i: int, o: int) -> int:
    return i * o + o


def test_flash_dit_is_about_2_4b_and_every_part_matches_its_formula():
    with torch.device("meta"):
        parts = flash_components()
    dit = parts["transformer"]
    d, head = 1536, 64
    # SD3 joint block: two AdaLayerNormZero (6d), q/k/v/out for both streams, 4 RMS QK-norms, two GELU FFNs (4d).
    joint = 2 * _linear(d, 6 * d) + 8 * _linear(d, d) + 4 * head + 2 * (_linear(d, 4 * d) + _linear(4 * d, d))
    # The last joint block only reads the context: AdaLayerNormContinuous (2d), no context output or FFN.
    last = _linear(d, 6 * d) + _linear(d, 2 * d) + 7 * _linear(d, d) + 4 * head + _linear(d, 4 * d) + _linear(4 * d, d)
    refiner = _linear(d, 6 * d) + 4 * _linear(d, d) + 2 * head + _linear(d, 4 * d) + _linear(4 * d, d)
    patch = 16 * 2 * 2 * d + d
    time_text = _linear(256, d) + _linear(d, d) + _linear(2048, d) + _linear(d, d)
    expected = {
        "transformer_blocks": 25 * joint + last,
        "noise_refiner": 2 * refiner,
        "reference_refiner": 2 * refiner,
        "pos_embed": patch,
        "reference_embed": patch,
        "condition_mlp": _linear(2048, 2048) + _linear(2048, 4096),
        "context_embedder": _linear(4096, d),
        "time_text_embed": time_text,
        "norm_out": _linear(d, 2 * d),
        "proj_out": _linear(d, 2 * 2 * 16),
        "concept_embed": 4 * d,
        "condition_type_embed": 3 * 2048,
        "null_condition": 2048,
    }
    counted = {name: _count(child) for name, child in dit.named_children()}
    counted["null_condition"] = dit.null_condition.numel()
    counted.pop("rope")
    print("\n".join(f"{k:22s} {v / 1e6:10.2f} M" for k, v in counted.items()))
    assert counted == expected
    assert 2.3e9 < _count(dit) < 2.5e9
    assert dit.device.type == "meta"


def test_flash_numbers_match_the_design():
    with torch.device("meta"):
        parts = flash_components()
    dit, conditioner = parts["transformer"].config, parts["conditioner"]
    assert (dit.num_attention_heads * dit.attention_head_dim, dit.attention_head_dim) == (1536, 64)
    assert tuple(dit.axes_dims_rope) == (20, 22, 22)
    assert (dit.condition_dim, dit.joint_attention_dim, dit.in_channels) == (2048, 4096, 16)
    assert (dit.num_refiner_layers, dit.num_reference_refiner_layers) == (2, 2)
    assert conditioner.num_queries == 16 + 64 + 256
    assert conditioner.num_condition_tokens == 256
    assert conditioner.proj_in.in_features == 4096
    assert conditioner.proj_out.out_features == 2048
    vae = parts["vae"]
    assert isinstance(vae, AutoencoderKL)
    assert vae.config.latent_channels == 16
    assert 2 ** (len(vae.config.block_out_channels) - 1) == 8
    assert parts["glyph_encoder"].config.d_model == 1472
    assert parts["glyph_mapper"].config.condition_dim == 2048
    assert type(parts["scheduler"]).__name__ == "FlowMatchEulerDiscreteScheduler"
    options = ImageGenerationOptions()
    assert (options.num_inference_steps, options.image_guidance_scale, options.guidance_scale) == (30, 2.0, 5.0)


def test_condition_queries_are_the_finest_scale():
    conditioner = MingConditioner(**MingConditioner.tiny_config())
    states = torch.arange(20.0).view(1, 20, 1).expand(1, 20, 64)
    # Scales (2, 4): 4 coarse queries then 16 fine ones; the condition reads the last 16.
    assert torch.equal(conditioner.select_condition_states(states)[0, :, 0], torch.arange(4.0, 20.0))


def test_rotary_axes_must_fill_the_head():
    config = MingDiTTransformer2DModel.tiny_config() | {"axes_dims_rope": (8, 8, 6)}
    with pytest.raises(ValueError, match="axes_dims_rope"):
        MingDiTTransformer2DModel(**config)
