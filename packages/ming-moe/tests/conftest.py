import pytest
import torch

from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM

# tiny models: one thread is faster, and two thrash when the machine is busy
torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> BailingMoeV2Config:
    return BailingMoeV2Config.tiny()


@pytest.fixture
def tiny_model(tiny_config) -> BailingMoeV2ForCausalLM:
    torch.manual_seed(0)
    return BailingMoeV2ForCausalLM(tiny_config).eval()
