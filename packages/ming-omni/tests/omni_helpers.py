"""Inputs made on the fly for the ming-omni tests."""

import numpy as np
import torch

CORPUS = ["Describe the picture: a red circle, a blue square and a green triangle on a white background."] * 4


def noise_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def speech_like(seconds: float, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(int(16000 * seconds), generator=torch.Generator().manual_seed(seed))


def short_and_long() -> tuple[list[dict], list[dict]]:
    """Two conversations of different lengths (audio + text, image + text) for padding tests."""
    short = [
        {"role": "user", "content": [{"type": "audio", "audio": speech_like(0.3)}, {"type": "text", "text": "hi"}]}
    ]
    image = {"type": "image", "image": noise_image(56, 84)}
    return short, [{"role": "user", "content": [image, {"type": "text", "text": "what is this shape"}]}]
