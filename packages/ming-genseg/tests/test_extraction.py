"""Mask extraction: exact on perfect recolourings (any colour, size, edge), empty on no edit, noise cleaned."""

from __future__ import annotations

import numpy as np
import pytest
from genseg_helpers import shape_mask, textured_image
from PIL import Image
from pydantic import ValidationError
from scipy import ndimage

from ming_genseg import EDIT_COLORS, NAMED_COLORS, MaskOptions, clean_mask, extract_mask, recolor

NO_CLEANUP = MaskOptions(median_size=1, min_component_fraction=0.0, max_hole_fraction=0.0)


def _min_contrast(image: Image.Image, mask: np.ndarray, rgb: tuple[int, int, int]) -> float:
    pixels = np.asarray(image, dtype=np.float64)[mask]
    return float(np.linalg.norm(pixels - rgb, axis=-1).min())


@pytest.mark.parametrize("feather", [0.0, 1.5, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("kind", ["ellipse", "rectangle", "star"])
@pytest.mark.parametrize(("width", "height"), [(23, 41), (64, 64), (128, 96), (301, 173)])
def test_perfect_recoloring_gives_back_the_exact_mask(width, height, kind, feather):
    rng = np.random.default_rng(width * height)
    image = textured_image(width, height, rng)
    mask = shape_mask(width, height, kind, rng)
    for color in EDIT_COLORS:
        assert _min_contrast(image, mask, NAMED_COLORS[color]) >= 32  # the rule's precondition holds here
        edited = recolor(image, mask, color, feather)
        assert np.array_equal(extract_mask(image, edited, color), mask), (color, kind, feather)


def test_any_edge_blend_above_half_inside_and_below_half_outside_is_recovered():
    # Not our own feathering: per-pixel random blend weights near the boundary, as any anti-aliasing might make.
    rng = np.random.default_rng(1)
    image = textured_image(160, 120, rng)
    mask = shape_mask(160, 120, "star", rng)
    band = ndimage.binary_dilation(mask, iterations=2) & ~ndimage.binary_erosion(mask, iterations=2)
    alpha = np.where(mask, 1.0, 0.0)
    alpha[band & mask] = rng.uniform(0.55, 1.0, size=int((band & mask).sum()))
    alpha[band & ~mask] = rng.uniform(0.0, 0.45, size=int((band & ~mask).sum()))
    for color in ("purple", "yellow", (10, 240, 250)):
        rgb = NAMED_COLORS[color] if isinstance(color, str) else color
        pixels = alpha[..., None] * rgb + (1 - alpha[..., None]) * np.asarray(image, dtype=np.float64)
        edited = Image.fromarray(np.rint(pixels).astype(np.uint8), "RGB")
        assert np.array_equal(extract_mask(image, edited, color), mask)


@pytest.mark.parametrize("color", [*EDIT_COLORS, "black", "white", (100, 120, 70)])
def test_an_unchanged_image_gives_an_empty_mask(color):
    rng = np.random.default_rng(2)
    flat = Image.new("RGB", (40, 30), NAMED_COLORS["purple"])  # already the target colour for "purple"
    for image in (textured_image(90, 70, rng), flat):
        assert not extract_mask(image, image.copy(), color).any()
        assert not extract_mask(image, image.copy(), color, NO_CLEANUP).any()


def _noisy_edit(size: int, rng: np.random.Generator):
    image = Image.new("RGB", (size, size), (240, 240, 235))
    mask = np.zeros((size, size), dtype=bool)
    mask[40:90, 30:100] = True
    edited = np.asarray(recolor(image, mask, "blue"), dtype=np.uint8).copy()
    far = np.argwhere(~ndimage.binary_dilation(mask, iterations=8))  # well away from the object
    blue = NAMED_COLORS["blue"]
    for y, x in far[rng.choice(len(far), size=60, replace=False)]:  # speckle
        edited[y, x] = blue
    for y, x, side in ((5, 5, 2), (10, 115, 3), (110, 8, 3), (115, 110, 2)):  # small blobs
        edited[y : y + side, x : x + side] = blue
    for y, x, side in ((50, 50, 1), (60, 70, 2), (75, 45, 3)):  # pinholes left unpainted inside
        edited[y : y + side, x : x + side] = 240, 240, 235
    return image, Image.fromarray(edited, "RGB"), mask


def test_noise_outside_the_object_and_pinholes_inside_are_cleaned():
    image, edited, mask = _noisy_edit(128, np.random.default_rng(3))
    raw = extract_mask(image, edited, "blue", NO_CLEANUP)
    assert (raw & ~mask).sum() >= 60
    assert (mask & ~raw).sum() == 1 + 4 + 9
    assert np.array_equal(extract_mask(image, edited, "blue"), mask)


def test_gaussian_noise_on_every_pixel_barely_changes_the_mask():
    rng = np.random.default_rng(4)
    image = textured_image(128, 128, rng)
    mask = shape_mask(128, 128, "ellipse", rng)
    edited = np.asarray(recolor(image, mask, "magenta"), dtype=np.float64) + rng.normal(0, 6, (128, 128, 3))
    edited = Image.fromarray(np.clip(np.rint(edited), 0, 255).astype(np.uint8), "RGB")
    found = extract_mask(image, edited, "magenta")
    assert (found ^ mask).sum() <= 0.01 * mask.sum()


def test_off_target_changes_do_not_count():
    # An editor that repaints the object in another colour, or brightens the background, did not paint the target.
    rng = np.random.default_rng(5)
    image = textured_image(96, 96, rng)
    mask = shape_mask(96, 96, "rectangle", rng)
    assert not extract_mask(image, recolor(image, mask, "yellow"), "blue").any()
    brighter = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + 40, 0, 255).astype(np.uint8), "RGB")
    assert not extract_mask(image, brighter, "purple").any()


def test_pixels_already_near_the_target_are_recovered_by_hole_filling_only():
    image = np.full((100, 100, 3), 250, dtype=np.uint8)
    image[45:50, 45:50] = NAMED_COLORS["green"]  # a 25-pixel patch of the target colour inside the object
    image = Image.fromarray(image, "RGB")
    mask = np.zeros((100, 100), dtype=bool)
    mask[30:70, 30:70] = True
    edited = recolor(image, mask, "green")
    assert not extract_mask(image, edited, "green", NO_CLEANUP)[45:50, 45:50].any()
    small_holes = MaskOptions(max_hole_fraction=0.002)  # 20 pixels: the patch stays a hole
    assert extract_mask(image, edited, "green", small_holes)[45:50, 45:50].sum() == 0
    assert np.array_equal(extract_mask(image, edited, "green", MaskOptions(max_hole_fraction=0.0025)), mask)


def test_tiny_images_work():
    image = Image.new("RGB", (1, 1), (255, 255, 255))
    full = np.ones((1, 1), dtype=bool)
    assert extract_mask(image, recolor(image, full, "red"), "red").tolist() == [[True]]
    strip = Image.new("RGB", (7, 2), (0, 0, 0))
    mask = np.zeros((2, 7), dtype=bool)
    mask[:, 2:6] = True
    assert np.array_equal(extract_mask(strip, recolor(strip, mask, "yellow", 0.0), "yellow"), mask)


def test_clean_mask_component_and_hole_thresholds():
    mask = np.zeros((100, 100), dtype=bool)  # min component / max hole at the default 0.1 %: 10 pixels
    mask[10:14, 10:13] = True  # 12 pixels: kept
    mask[30:33, 30:33] = True  # 9 pixels: dropped
    mask[50:90, 50:90] = True
    mask[60:63, 60:63] = False  # 9-pixel hole: filled
    mask[70:85, 70:85] = False  # 225-pixel hole: kept (e.g. an occluding object)
    cleaned = clean_mask(mask)
    assert cleaned[10:14, 10:13].all()
    assert not cleaned[30:33, 30:33].any()
    assert cleaned[60:63, 60:63].all()
    assert not cleaned[70:85, 70:85].any()
    assert cleaned.sum() == 12 + 40 * 40 - 225


def _small_or_thin(size: int, kind: str) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    c = size // 2
    if kind == "square":  # 15x15 at 512², 30x30 at 1024²: under 0.1 % of the image
        side = 15 * size // 512
        mask[c : c + side, c : c + side] = True
    elif kind == "diagonal":  # a 1-pixel-wide, 8-connected line
        mask[np.arange(c, c + 120), np.arange(c - 60, c + 60)] = True
    else:  # a 1- or 2-pixel-wide pole, 120 pixels long
        mask[c - 60 : c + 60, c : c + int(kind[0])] = True
    return mask


@pytest.mark.parametrize("kind", ["square", "1px", "2px", "diagonal"])
@pytest.mark.parametrize("size", [512, 1024])
def test_small_and_thin_objects_come_back_exactly(size, kind):
    rng = np.random.default_rng(size)
    image = textured_image(size, size, rng)
    mask = _small_or_thin(size, kind)
    assert mask.sum() < 0.001 * size * size  # below min_component_fraction: kept as the largest component
    for color in ("purple", "yellow"):
        assert np.array_equal(extract_mask(image, recolor(image, mask, color), color), mask), (color, kind)


def test_component_selection():
    # 100x100: min_component_fraction 0.1 % = 10 pixels, large_component_factor 4 → 40 pixels.
    mask = np.zeros((100, 100), dtype=bool)
    mask[50:90, 50:90] = True  # the largest
    mask[49, 60] = mask[48, 60] = True  # a thin spur on it: part of its component, kept
    mask[5, 5:55] = True  # 1-px line, 50 pixels: no median seed, but large enough to keep
    mask[10:12, 5:30] = True  # 2-px line, 50 pixels: kept
    mask[20, 5:25] = True  # 1-px line, 20 pixels: unseeded and not large, dropped
    mask[30:34, 5:9] = True  # 16-pixel blob: seeded and at least 10 pixels, kept
    mask[40:43, 5:8] = True  # 9-pixel blob: under 10 pixels, dropped
    cleaned = clean_mask(mask)
    expected = mask.copy()
    expected[20] = expected[40:43] = False
    assert np.array_equal(cleaned, expected)
    without_size_rule = expected.copy()
    without_size_rule[5] = False  # only the median seed can keep the 1-px line now
    assert np.array_equal(clean_mask(mask, MaskOptions(large_component_factor=100)), without_size_rule)
    without_seed = expected.copy()
    without_seed[20, 5:25] = True  # median off: every component of at least 10 pixels is kept
    assert np.array_equal(clean_mask(mask, MaskOptions(median_size=1)), without_seed)
    tiny = np.zeros((100, 100), dtype=bool)
    tiny[3, 3:6] = tiny[70, 70] = True  # only specks: the largest one is still the painted object
    assert np.array_equal(np.argwhere(clean_mask(tiny)), [[3, 3], [3, 4], [3, 5]])


def test_bad_input_names_the_field():
    image = Image.new("RGB", (32, 32))
    cases = [
        ((image, image.resize((16, 32)), "red"), "edited", "16x32 but reference is 32x32"),
        ((image.convert("L"), image, "red"), "reference", "mode 'L'"),
        ((image, image.convert("RGBA"), "red"), "edited", "mode 'RGBA'"),
        ((np.zeros((32, 32, 3), np.uint8), image, "red"), "reference", "PIL.Image.Image"),
        ((image, image, "teal"), "color", "unknown colour name"),
        ((image, image, (0, 0, 256)), "color", "0-255"),
        ((image, image, b"abc"), "color", "0-255"),
    ]
    for args, field, message in cases:
        with pytest.raises(ValidationError, match=message) as error:
            extract_mask(*args)
        assert error.value.errors()[0]["loc"] == (field,)
    with pytest.raises(ValidationError, match="odd") as error:
        MaskOptions(median_size=4)
    assert error.value.errors()[0]["loc"] == ("median_size",)
    for args, loc, message in [
        ((np.full((4, 4), 255),), ("mask",), "mask must be boolean"),
        ((np.zeros((4, 4), bool), {"median_size": 4}), ("options", "median_size"), "odd"),
    ]:
        with pytest.raises(ValidationError, match=message) as error:
            clean_mask(*args)
        assert error.value.errors()[0]["loc"] == loc
    mask = np.zeros((9, 9), dtype=bool)
    mask[1, 1:4] = mask[5:8, 5:8] = True
    assert np.array_equal(clean_mask(mask, {"median_size": 1}), clean_mask(mask, MaskOptions(median_size=1)))


def test_colour_synonyms_and_case_read_as_the_named_colour():
    image = Image.new("RGB", (20, 20), "white")
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 5:15] = True
    for painted, asked in (("gray", "grey"), ("purple", "violet"), ("red", "Red")):
        assert np.array_equal(extract_mask(image, recolor(image, mask, painted), asked), mask)


def test_hole_filling_matches_scipy_binary_fill_holes():
    rng = np.random.default_rng(6)
    fill_everything = MaskOptions(median_size=1, min_component_fraction=0.0, max_hole_fraction=1.0)
    for _ in range(20):
        mask = ndimage.binary_opening(rng.random((40, 50)) > 0.45)
        filled = ndimage.binary_fill_holes(mask)
        assert not np.array_equal(filled, mask)  # there are holes to fill
        assert np.array_equal(clean_mask(mask, fill_everything), filled)
