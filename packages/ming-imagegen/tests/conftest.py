import pytest
import torch
from PIL import Image

from ming_imagegen import MingImagePipeline, tiny_language_model, tiny_pipeline

# Many small ops: on a shared 2-core runner intra-op threading costs more than it gains.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def language_model():
    return tiny_language_model(seed=0)


@pytest.fixture
def pipe(language_model) -> MingImagePipeline:
    """Tiny pipeline with the lossless pixel autoencoder, glyph branch and identity encoder (random weights)."""
    lm, tokenizer = language_model
    return tiny_pipeline(lm, tokenizer, image_size=32, seed=0)


@pytest.fixture
def kl_pipe(language_model) -> MingImagePipeline:
    """Tiny pipeline with a random 16-channel AutoencoderKL."""
    lm, tokenizer = language_model
    return tiny_pipeline(lm, tokenizer, image_size=32, vae="kl", seed=0)


@pytest.fixture
def picture() -> Image.Image:
    """A 32×32 picture with structure: a gradient plus a red square."""
    image = Image.new("RGB", (32, 32))
    image.putdata([(8 * (i % 32), 8 * (i // 32), 128) for i in range(32 * 32)])
    image.paste((220, 30, 30), (8, 8, 20, 20))
    return image
