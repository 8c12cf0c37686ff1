import pytest
import torch

from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM


@pytest.fixture
def tiny_config() -> BailingMoeV2Config:
    return BailingMoeV2Config.tiny()


@pytest.fixture
def tiny_model(tiny_config) -> BailingMoeV2ForCausalLM:
    torch.manual_seed(0)
    return BailingMoeV2ForCausalLM(tiny_config).eval()
