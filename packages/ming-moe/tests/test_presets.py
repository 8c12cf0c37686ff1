"""The flash preset has Ling-flash-2.0's sizes (built on the meta device, never allocated)."""

import pytest
import torch

from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM


def _build_on_meta(config):
    with torch.device("meta"):
        return BailingMoeV2ForCausalLM(config)


def _count(model, predicate=lambda name: True) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if predicate(name))


def test_flash_preset_numbers():
    config = BailingMoeV2Config.flash()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (4096, 32, 32)
    assert (config.num_key_value_heads, config.head_dim, config.vocab_size) == (4, 128, 157184)
    assert (config.num_experts, config.num_experts_per_tok, config.n_group, config.topk_group) == (256, 8, 8, 4)
    assert config.rotary_dim == 64
    assert config.rope_theta == 600000.0
    assert config.routed_scaling_factor == 2.5


def test_flash_with_one_router_has_102_89_billion_parameters_and_6_15_billion_active():
    model = _build_on_meta(BailingMoeV2Config.flash(router_modalities=["text"]))
    total = _count(model)
    assert total == pytest.approx(102.89e9, rel=5e-4)
    # independent count from the architecture
    h, v, layers, e, i_moe, i_dense = 4096, 157184, 32, 256, 1024, 9216
    attention = h * (32 + 2 * 4) * 128 + 32 * 128 * h + 2 * 128 + 2 * h
    moe_layer = attention + e * 3 * h * i_moe + 3 * h * i_moe + e * h
    dense_layer = attention + 3 * h * i_dense
    assert total == 2 * v * h + h + dense_layer + (layers - 1) * moe_layer
    routed = _count(model, lambda name: ".experts." in name)
    active = total - routed * (1 - 8 / 256)
    assert active == pytest.approx(6.15e9, rel=5e-3)


def test_three_routers_add_only_the_two_extra_gates():
    one = _count(_build_on_meta(BailingMoeV2Config.flash(router_modalities=["text"])))
    three_model = _build_on_meta(BailingMoeV2Config.flash())
    three = _count(three_model)
    assert three - one == 31 * 2 * 256 * 4096
    assert 102.9e9 <= three <= 103.0e9
    assert [name for name, _ in three_model.model.layers[1].mlp.named_children()][:3] == [
        "gate",
        "image_gate",
        "audio_gate",
    ]


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="router_modalities"):
        BailingMoeV2Config.tiny(router_modalities=["image"])
    with pytest.raises(ValueError, match="divisible by n_group"):
        BailingMoeV2Config.tiny(num_experts=10)
    with pytest.raises(ValueError, match="topk_group"):
        BailingMoeV2Config.tiny(topk_group=9)
