"""Test helpers (a uniquely named module the test files import): segmentation samples from ming-testdata scenes,
shapes on textured backgrounds, a fake editor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from ming_genseg import NAMED_COLORS, color_words, describe_object, recolor
from ming_testdata import SceneOptions, make_scenes


@dataclass(frozen=True)
class Sample:
    """A referring-segmentation sample: image, the referred object's mask and an expression for it."""

    image: Image.Image
    mask: np.ndarray
    expression: str


def scene_samples(n: int, seed: int, size: int = 96, *, occlusion: bool = False) -> list[Sample]:
    """Every object of ``n`` ming-testdata scenes as a sample, e.g. "the red circle at the top left"."""
    options = SceneOptions(n=n, seed=seed, width=size, height=size, max_objects=4, occlusion=occlusion)
    samples = []
    for scene in make_scenes(options):
        samples.extend(
            Sample(scene.image, obj.mask, describe_object(obj.shape, obj.color, obj.position)) for obj in scene.objects
        )
    return samples


def shape_mask(width: int, height: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A random ellipse, rectangle or 5-pointed star covering a good part of a ``width`` × ``height`` canvas, as one
    8-connected object (PIL may rasterise a thin star tip as a stray pixel; that pixel is left out)."""
    canvas = Image.new("1", (width, height))
    draw = ImageDraw.Draw(canvas)
    cx, cy = rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height
    rx, ry = rng.uniform(0.15, 0.3) * width, rng.uniform(0.15, 0.3) * height
    if kind == "ellipse":
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=1)
    elif kind == "rectangle":
        draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=1)
    else:  # a 5-pointed star: sharp tips and concave corners
        angles = np.linspace(0, 2 * np.pi, 10, endpoint=False) + rng.uniform(0, np.pi)
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        draw.polygon(
            [(cx + r * rx * np.cos(a), cy + r * ry * np.sin(a)) for a, r in zip(angles, radii, strict=True)], fill=1
        )
    labels, _ = ndimage.label(np.asarray(canvas, dtype=bool), structure=np.ones((3, 3)))
    return labels == np.bincount(labels.ravel())[1:].argmax() + 1


def textured_image(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A smooth colour gradient with per-pixel noise: many colours, like a photo rather than a flat scene."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([60 + 80 * x / max(width, 1), 90 + 60 * y / max(height, 1), 70 + 0 * x], axis=-1)
    noisy = base + rng.normal(0, 6, size=(height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


@dataclass
class RecolorPipeline:
    """A fake editor that paints a fixed mask in the colour named at the end of the prompt (as a perfectly trained
    editor would), recording every prompt and seed it gets."""

    mask: np.ndarray
    feather: float = 2.0
    prompts: list[str] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)

    def edit(self, image: Image.Image, prompt: str, *, seed: int | None = None) -> Image.Image:
        self.prompts.append(prompt)
        self.seeds.append(seed)
        return recolor(image, self.mask, NAMED_COLORS[color_words(prompt)[-1]], self.feather)
