import socket

import pytest
import torch
from omni_helpers import CORPUS

from ming_imagegen import tiny_pipeline
from ming_omni import MingOmni, MingOmniConfig, MingOmniForConditionalGeneration, MingOmniProcessor, make_tokenizer

# tiny models: one thread is faster, and two thrash when the machine is busy
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (checkpoints and tokenizers are local only)."""

    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer(CORPUS, vocab_size=400)


@pytest.fixture(scope="session")
def config() -> MingOmniConfig:
    return MingOmniConfig.tiny()


@pytest.fixture(scope="session")
def processor(tokenizer, config) -> MingOmniProcessor:
    return MingOmniProcessor(tokenizer, config)


@pytest.fixture(scope="session")
def model(config) -> MingOmniForConditionalGeneration:
    torch.manual_seed(0)
    return MingOmniForConditionalGeneration(config).eval()


@pytest.fixture(scope="session")
def omni(model, processor, tokenizer) -> MingOmni:
    image_generator = tiny_pipeline(model.model, tokenizer, image_size=32, seed=0)
    image_generator.register_modules(language_model=None, tokenizer=None)
    return MingOmni(model, processor, image_generator)


@pytest.fixture(scope="session")
def saved(omni, tmp_path_factory):
    """The tiny omni (model, tokenizer, image generator) written to a local directory."""
    directory = tmp_path_factory.mktemp("omni")
    omni.save_pretrained(directory)
    return directory
