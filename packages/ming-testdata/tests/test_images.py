import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydantic import ValidationError

from ming_testdata import (
    COLORS,
    SceneOptions,
    TextImageOptions,
    VideoOptions,
    make_scenes,
    make_text_images,
)
from ming_testdata._draw import shape_mask
from ming_testdata._options import CanvasOptions, ShapeOptions
from ming_testdata.text_images import _PADDING


def pixels_of(image, rgb):
    return np.all(np.asarray(image) == rgb, axis=-1)


def full_mask(obj):
    height, width = obj.mask.shape
    return shape_mask(obj.shape, obj.center, obj.size, height, width)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(SceneOptions(n=40, seed=0, max_objects=4, max_size=0.5))


def test_each_mask_is_exactly_the_pixels_of_its_colour(scenes):
    for scene in scenes:
        for obj in scene.objects:
            np.testing.assert_array_equal(obj.mask, pixels_of(scene.image, obj.rgb))
            assert obj.area == pixels_of(scene.image, obj.rgb).sum() > 0
            assert obj.rgb == COLORS[obj.color]


def test_bbox_is_the_extent_of_the_object_pixels(scenes):
    for scene in scenes:
        for obj in scene.objects:
            rows, cols = np.nonzero(pixels_of(scene.image, obj.rgb))
            assert obj.bbox == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_count_is_the_number_of_coloured_objects_in_the_image(scenes):
    counts = set()
    for scene in scenes:
        colours = {tuple(c) for c in np.unique(np.asarray(scene.image).reshape(-1, 3), axis=0)}
        assert colours == {COLORS[scene.background]} | {obj.rgb for obj in scene.objects}
        assert scene.count == len(colours) - 1 == len(scene.objects)
        counts.add(scene.count)
    assert counts == {1, 2, 3, 4}


def test_masks_and_background_tile_the_image(scenes):
    for scene in scenes:
        coverage = np.sum([obj.mask for obj in scene.objects], axis=0)
        assert coverage.max() == 1  # visible masks never overlap
        np.testing.assert_array_equal(coverage == 0, pixels_of(scene.image, COLORS[scene.background]))


def test_later_shapes_cover_earlier_ones(scenes):
    occluded = 0
    for scene in scenes:
        for k, obj in enumerate(scene.objects):
            full = full_mask(obj)
            hidden = full & ~obj.mask
            later = np.any([full_mask(o) for o in scene.objects[k + 1 :]] or [np.zeros_like(full)], axis=0)
            np.testing.assert_array_equal(hidden, full & later)
            assert obj.area >= 0.3 * full.sum()  # min_visible
            occluded += bool(hidden.any())
    assert occluded > 0


def test_no_overlap_when_occlusion_is_off():
    for scene in make_scenes(SceneOptions(n=20, seed=1, occlusion=False, max_objects=3)):
        for obj in scene.objects:
            np.testing.assert_array_equal(obj.mask, full_mask(obj))


# Area of each shape relative to its circumscribed circle (radius r): the pixels must look like the label says.
AREA_PER_R2 = {
    "circle": math.pi,
    "square": 2.0,
    "diamond": 2.0,
    "triangle": 3 * math.sqrt(3) / 4,
    "pentagon": 5 / 2 * math.sin(2 * math.pi / 5),
    "hexagon": 3 * math.sqrt(3) / 2,
    "star": 5 * 0.45 * math.sin(math.pi / 5),  # ten triangles between outer and inner (0.45 r) vertices
}

# Outline length relative to r: PIL fills every pixel the outline touches, which adds about half a pixel along it.
PERIMETER_PER_R = {
    "circle": 2 * math.pi,
    "square": 4 * math.sqrt(2),
    "diamond": 4 * math.sqrt(2),
    "triangle": 3 * math.sqrt(3),
    "pentagon": 10 * math.sin(math.pi / 5),
    "hexagon": 6.0,
    "star": 10 * math.sqrt(1 + 0.45**2 - 2 * 0.45 * math.cos(math.pi / 5)),
}

# Fraction of the bounding box a shape fills: tells a square from a diamond of the same area.
FILL_OF_BBOX = {"square": 1.0, "diamond": 0.5, "circle": math.pi / 4}


def test_shape_label_matches_the_drawn_area():
    options = SceneOptions(n=30, seed=2, max_objects=1, width=96, height=96, min_size=0.4, max_size=0.6)
    seen = set()
    for scene in make_scenes(options):
        (obj,) = scene.objects
        seen.add(obj.shape)
        r = obj.size / 2
        assert obj.area == pytest.approx(AREA_PER_R2[obj.shape] * r**2 + PERIMETER_PER_R[obj.shape] * r / 2, rel=0.08)
        if obj.shape in FILL_OF_BBOX:
            x0, y0, x1, y1 = obj.bbox
            assert obj.area / ((x1 - x0) * (y1 - y0)) == pytest.approx(FILL_OF_BBOX[obj.shape], rel=0.12)
        # Pixel (col, row) covers [col, col + 1) × [row, row + 1) in label units, so its middle is at col + 0.5.
        rows, cols = np.nonzero(obj.mask)
        np.testing.assert_allclose((cols.mean() + 0.5, rows.mean() + 0.5), obj.center, atol=0.5)
    assert len(seen) >= 5


def test_position_names_the_grid_cell_of_the_drawn_shape():
    width, height = 96, 72
    options = SceneOptions(n=40, seed=6, width=width, height=height, occlusion=False, min_size=0.15, max_size=0.3)
    names, checked = set(), 0
    for scene in make_scenes(options):
        for obj in scene.objects:
            # Unoccluded, so the mask is the whole shape; +0.5 moves pixel indices to pixel middles.
            rows, cols = np.nonzero(obj.mask)
            x, y = cols.mean() + 0.5, rows.mean() + 0.5
            # Rasterisation moves a centroid by under a pixel: skip shapes that close to a grid line.
            if min(abs(x - k * width / 3) for k in (1, 2)) < 1 or min(abs(y - k * height / 3) for k in (1, 2)) < 1:
                continue
            column = ("left", "center", "right")[int(3 * x / width)]
            row = ("top", "middle", "bottom")[int(3 * y / height)]
            expected = column if row == "middle" else row if column == "center" else f"{row} {column}"
            assert obj.position == expected
            assert obj.label()["position"] == expected
            names.add(expected)
            checked += 1
    assert checked >= 40
    assert len(names) == 9


def test_caption_follows_the_labels(scenes):
    for scene in scenes:
        assert scene.caption.startswith(f"{scene.count} shape")
        for obj in scene.objects:
            assert f"{obj.color} {obj.shape}" in scene.caption
        assert scene.label()["count"] == scene.count


def test_scenes_are_deterministic_per_seed():
    a, b = make_scenes(SceneOptions(n=3, seed=4)), make_scenes(SceneOptions(n=3, seed=4))
    assert all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b, strict=True))
    c = make_scenes(SceneOptions(n=3, seed=5))
    assert not all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, c, strict=True))


def test_impossible_placement_raises():
    options = SceneOptions(n=1, min_objects=6, max_objects=6, min_size=0.9, max_size=1.0, occlusion=False)
    with pytest.raises(ValueError, match="could not place"):
        make_scenes(options)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_objects": 4, "max_objects": 2}, "min_objects"),
        ({"min_size": 0.5, "max_size": 0.3}, "min_size"),
        ({"shapes": ("blob",)}, "shapes"),
        ({"colors": ("red", "blue"), "max_objects": 3}, "colors"),
        ({"width": 4}, "width"),
        ({"min_visible": 1.5}, "min_visible"),
    ],
)
def test_bad_scene_options_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as error:
        SceneOptions(**kwargs)
    assert error.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    ("model", "base", "name"),
    [
        (TextImageOptions, CanvasOptions, "width"),
        (TextImageOptions, CanvasOptions, "height"),
        (VideoOptions, ShapeOptions, "max_objects"),
        (VideoOptions, ShapeOptions, "min_size"),
        (VideoOptions, ShapeOptions, "max_size"),
    ],
)
def test_options_that_change_a_default_keep_the_limits(model, base, name):
    field, inherited = model.model_fields[name], base.model_fields[name]
    assert field.default != inherited.default
    assert (field.annotation, field.metadata, field.description) == (
        inherited.annotation,
        inherited.metadata,
        inherited.description,
    )


def test_text_images_hold_their_string_without_anti_aliasing():
    samples = make_text_images(TextImageOptions(n=6, seed=0))
    assert len({s.text for s in samples}) > 1
    for sample in samples:
        colours = np.unique(np.asarray(sample.image).reshape(-1, 3), axis=0)
        assert {tuple(c) for c in colours} == {COLORS[sample.color], COLORS[sample.background]}
        np.testing.assert_array_equal(sample.mask, pixels_of(sample.image, COLORS[sample.color]))
        x0, y0, x1, y1 = sample.bbox
        assert _PADDING <= x0 < x1 <= sample.image.width - _PADDING  # nothing cut off at the border
        assert _PADDING <= y0 < y1 <= sample.image.height - _PADDING
        # Drawing the labelled string at the labelled size gives the same glyph pixels.
        redraw = Image.new("1", (400, 100), 0)
        draw = ImageDraw.Draw(redraw)
        draw.fontmode = "1"
        draw.text((10, 10), sample.text, fill=1, font=ImageFont.load_default(size=sample.font_size))
        ref = np.asarray(redraw)
        rows, cols = np.nonzero(ref)
        ref = ref[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        np.testing.assert_array_equal(sample.mask[y0:y1, x0:x1], ref)


def fits(text, size, width, height):
    x0, y0, x1, y1 = ImageDraw.Draw(Image.new("1", (1, 1))).textbbox(
        (0, 0), text, font=ImageFont.load_default(size=size)
    )
    return x1 - x0 + 2 * _PADDING <= width and y1 - y0 + 2 * _PADDING <= height


def test_text_images_use_given_texts_and_shrink_to_fit():
    long = "A rather long line of text to fit"
    options = TextImageOptions(n=3, texts=("Hello", long), min_font_size=12, max_font_size=40)
    samples = make_text_images(options)
    assert [s.text for s in samples] == ["Hello", long, "Hello"]
    assert not fits(long, options.max_font_size, options.width, options.height)
    # Shrunk to the largest size that fits, not just to min_font_size.
    assert options.min_font_size < samples[1].font_size < options.max_font_size
    assert fits(long, samples[1].font_size, options.width, options.height)
    assert not fits(long, samples[1].font_size + 1, options.width, options.height)
    # A text that only just fits is not cut off at the border.
    assert samples[1].bbox[0] >= _PADDING
    assert samples[1].bbox[2] <= options.width - _PADDING
    with pytest.raises(ValueError, match="does not fit"):
        make_text_images(TextImageOptions(n=1, texts=("x" * 200,), width=32, min_font_size=12))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_font_size": 30, "max_font_size": 20}, "min_font_size"),
        ({"texts": ("two\nlines",)}, "texts"),
        ({"texts": ("   ",)}, "texts"),
        ({"colors": ("white",), "backgrounds": ("white",)}, "colors"),
        ({"width": 3000}, "width"),
    ],
)
def test_bad_text_image_options_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as error:
        TextImageOptions(**kwargs)
    assert error.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(("text", "missing"), [("naïve", "ï"), ("北京 Beijing", "北"), ("tab\there", "\t")])
def test_texts_the_font_cannot_draw_are_rejected(text, missing):
    # PIL's default font would draw these characters as boxes, so the label would not match the image.
    with pytest.raises(ValueError, match="texts") as error:
        TextImageOptions(texts=("fine", text))
    assert error.value.errors()[0]["loc"] == ("texts",)
    assert repr(missing) in str(error.value)
