from pathlib import Path

import pytest
import torch

from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel
from ming_testdata import SpeechOptions, make_speech

# The tiny preset runs thousands of small ops: on a shared 2-core runner, intra-op threading costs far more than it
# gains (measured ~30× slower per op with 2 threads under load), so the tests use one thread.
torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> SpeechTokenizerConfig:
    return SpeechTokenizerConfig.tiny()


@pytest.fixture
def tiny_model(tiny_config) -> SpeechTokenizerModel:
    torch.manual_seed(0)
    return SpeechTokenizerModel(tiny_config).eval()


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> list[torch.Tensor]:
    """Four espeak-ng utterances (16 kHz float32, several voices), made offline."""
    cache = Path(tmp_path_factory.mktemp("speech-cache"))
    utterances = make_speech(SpeechOptions(n=4, seed=0, cache_dir=cache))
    return [torch.from_numpy(u.audio) for u in utterances]
