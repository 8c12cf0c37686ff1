"""The flash preset has the Qwen2.5-0.5B backbone plus the reported head sizes (built on `meta`, never allocated)."""

import pytest
import torch

from ming_tts_head import TTSHeadConfig, TTSHeadModel

QWEN25_05B_PARAMETERS = 494_032_768  # published size of Qwen2.5-0.5B (tied embeddings: no separate LM head)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _qwen2_layer(width: int, heads: int, kv_heads: int, intermediate: int) -> int:
    head_dim = width // heads
    attention = width * heads * head_dim + heads * head_dim  # q with bias
    attention += 2 * (width * kv_heads * head_dim + kv_heads * head_dim)  # k, v with bias
    attention += heads * head_dim * width  # o, no bias
    return attention + 3 * width * intermediate + 2 * width  # SwiGLU MLP and two RMS norms


@pytest.fixture(scope="module")
def flash_model() -> TTSHeadModel:
    with torch.device("meta"):
        return TTSHeadModel(TTSHeadConfig.flash())


def test_flash_numbers():
    config = TTSHeadConfig.flash()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (896, 24, 14)
    assert (config.num_key_value_heads, config.intermediate_size, config.vocab_size) == (2, 4864, 151936)
    assert (config.latent_dim, config.patch_size, config.history_frames) == (64, 4, 32)
    assert (config.flow_num_layers, config.flow_hidden_size, config.flow_num_heads) == (8, 1024, 16)
    assert (config.aggregator_num_layers, config.aggregator_hidden_size, config.aggregator_num_heads) == (8, 1024, 16)
    assert config.condition_dropout == 0.1


def test_flash_backbone_is_qwen25_05b(flash_model):
    backbone = _count(flash_model.backbone)
    independent = 151936 * 896 + 24 * _qwen2_layer(896, 14, 2, 4864) + 896
    assert backbone == independent == QWEN25_05B_PARAMETERS
    assert type(flash_model.backbone).__name__ == "Qwen2Model"


def test_flash_heads_split(flash_model):
    width, hidden, latent = 1024, 896, 64
    blocks = 8 * _qwen2_layer(width, 16, 16, 4096) + width  # layers + final norm
    aggregator = (latent * width + width) + width + blocks + (width * hidden + hidden)
    flow = (
        (hidden * width + width)  # condition projection
        + hidden  # null condition
        + (256 * width + width)
        + (width * width + width)  # time MLP
        + 2 * (latent * width + width)  # history and noisy frame projections
        + blocks
        + (width * latent + latent)
    )
    stop = hidden * 2 + 2
    assert _count(flash_model.aggregator) == aggregator == 135_245_696
    assert _count(flash_model.flow_head) == flow == 136_690_624
    assert _count(flash_model.stop_head) == stop
    total = _count(flash_model)
    assert total == QWEN25_05B_PARAMETERS + hidden + aggregator + flow + stop == 765_971_778  # + separator


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="flow_hidden_size"):
        TTSHeadConfig.tiny(flow_hidden_size=66)
    with pytest.raises(ValueError, match="num_key_value_heads"):
        TTSHeadConfig.tiny(num_key_value_heads=3)
    with pytest.raises(ValueError, match="patch_size"):
        TTSHeadConfig.tiny(patch_size=0)
    with pytest.raises(ValueError, match="condition_dropout"):
        TTSHeadConfig.tiny(condition_dropout=1.0)
    with pytest.raises(ValueError, match="regression_loss_weight"):
        TTSHeadConfig.tiny(regression_loss_weight=-1.0)
