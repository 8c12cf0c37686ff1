import pytest
import torch

from ming_tts_head import TTSHeadConfig, TTSHeadModel

# The tiny preset runs many small ops: on a shared 2-core runner intra-op threading costs far more than it gains,
# so the tests use one thread.
torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> TTSHeadConfig:
    return TTSHeadConfig.tiny()


@pytest.fixture
def tiny_model(tiny_config) -> TTSHeadModel:
    torch.manual_seed(0)
    return TTSHeadModel(tiny_config).eval()
