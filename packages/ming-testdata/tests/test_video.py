import json

import numpy as np
import pytest
from pydantic import ValidationError

from ming_testdata import COLORS, VideoOptions, make_videos
from ming_testdata._draw import shape_mask


@pytest.fixture(scope="module")
def clips():
    return make_videos(VideoOptions(n=12, seed=0, max_objects=3, frames=12, fps=6.0))


def pixels_of(frame, rgb):
    return np.all(frame == rgb, axis=-1)


def touches(mask, other):
    """Whether a pixel of ``other`` is a 4-neighbour of a pixel of ``mask``."""
    near = np.zeros_like(mask)
    near[1:] |= mask[:-1]
    near[:-1] |= mask[1:]
    near[:, 1:] |= mask[:, :-1]
    near[:, :-1] |= mask[:, 1:]
    return bool((near & other).any())


def full_mask(obj, t):
    height, width = obj.masks.shape[1:]
    return shape_mask(obj.shape, tuple(obj.centers[t]), obj.size, height, width)


def centroid(mask):
    # Pixel (col, row) covers [col, col + 1) × [row, row + 1) in label units, so its middle is at col + 0.5.
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])


def test_frames_hold_the_background_and_the_present_objects(clips):
    for clip in clips:
        assert clip.frames.shape == (12, 64, 64, 3)
        assert clip.frames.dtype == np.uint8
        assert clip.fps == 6.0
        assert clip.duration_s == pytest.approx(2.0)
        for t, frame in enumerate(clip.frames):
            colours = {tuple(c) for c in np.unique(frame.reshape(-1, 3), axis=0)}
            present = {obj.rgb for obj in clip.objects if obj.present[t]}
            assert colours == {COLORS[clip.background]} | present
            covered = np.sum([obj.masks[t] for obj in clip.objects], axis=0)
            assert covered.max() <= 1
            np.testing.assert_array_equal(covered == 0, pixels_of(frame, COLORS[clip.background]))


def test_centres_and_velocity_follow_the_drawn_pixels(clips):
    checked = 0
    for clip in clips:
        for k, obj in enumerate(clip.objects):
            later = [o.rgb for o in clip.objects[k + 1 :]]
            frames, centroids = [], []
            for t in np.flatnonzero(obj.present):
                mine = pixels_of(clip.frames[t], obj.rgb)
                # Only where no later object touches it: then it is whole and its centroid is its centre.
                if any(touches(mine, pixels_of(clip.frames[t], rgb)) for rgb in later):
                    continue
                frames.append(t)
                centroids.append(centroid(mine))
            # Rasterisation moves a centroid by about half a pixel at most.
            if frames:
                np.testing.assert_allclose(centroids, obj.centers[frames], atol=0.75)
            if len(frames) >= 2:
                travelled = centroids[-1] - centroids[0]
                np.testing.assert_allclose(travelled, np.multiply(obj.velocity, frames[-1] - frames[0]), atol=1.2)
                checked += 1
            assert np.isnan(obj.centers[~obj.present]).all()
            assert float(np.hypot(*obj.velocity)) <= 3.0 + 1e-9
            # The whole shape stays inside the frame.
            half = obj.size / 2
            assert (obj.centers[obj.present] >= half - 1e-9).all()
            assert (obj.centers[obj.present] <= 64 - half + 1e-9).all()
    assert checked >= 20


def test_single_objects_travel_velocity_times_frames():
    for clip in make_videos(VideoOptions(n=6, seed=3, max_objects=1, frames=10, late_entry=False)):
        (obj,) = clip.objects
        assert obj.present.all()
        centroids = np.array([centroid(pixels_of(frame, obj.rgb)) for frame in clip.frames])
        np.testing.assert_allclose(centroids, obj.centers, atol=0.75)
        travelled = centroids[-1] - centroids[0]
        np.testing.assert_allclose(travelled, np.array(obj.velocity) * (len(clip.frames) - 1), atol=1.2)


def test_masks_and_boxes_are_the_pixels_of_each_object(clips):
    for clip in clips:
        for obj in clip.objects:
            assert obj.rgb == COLORS[obj.color]
            for t in range(len(clip.frames)):
                pixels = pixels_of(clip.frames[t], obj.rgb)
                np.testing.assert_array_equal(obj.masks[t], pixels)
                if pixels.any():
                    rows, cols = np.nonzero(pixels)
                    assert tuple(obj.bboxes[t]) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
                else:
                    assert tuple(obj.bboxes[t]) == (-1, -1, -1, -1)


def test_objects_show_from_their_appear_frame_and_only_later_objects_hide_them(clips):
    late = occluded = 0
    for clip in clips:
        for k, obj in enumerate(clip.objects):
            assert not obj.masks[: obj.appear_frame].any()
            np.testing.assert_array_equal(obj.visible, obj.present)
            for t in np.flatnonzero(obj.present):
                full = full_mask(obj, t)
                later = [full_mask(o, t) for o in clip.objects[k + 1 :] if o.present[t]]
                under_later = full & np.any(later or [np.zeros_like(full)], axis=0)
                np.testing.assert_array_equal(full & ~obj.masks[t], under_later)
                assert obj.masks[t].sum() >= 0.3 * full.sum()  # the default min_visible
                occluded += bool(under_later.any())
            late += obj.appear_frame > 0
    assert late > 0
    assert occluded > 0
    for clip in make_videos(VideoOptions(n=4, seed=0, late_entry=False)):
        assert all(obj.appear_frame == 0 for obj in clip.objects)


def test_min_visible_holds_in_every_frame():
    options = VideoOptions(n=6, seed=1, min_objects=3, max_objects=3, min_size=0.3, max_size=0.4, min_visible=0.8)
    occluded = 0
    for clip in make_videos(options):
        for obj in clip.objects:
            for t in np.flatnonzero(obj.present):
                shown, full = obj.masks[t].sum(), full_mask(obj, t).sum()
                assert shown >= 0.8 * full
                occluded += bool(shown < full)
    assert occluded > 0


def test_impossible_min_visible_raises():
    options = VideoOptions(n=1, min_objects=4, max_objects=4, min_size=0.9, max_size=1.0, min_visible=1.0)
    with pytest.raises(ValueError, match="min_visible"):
        make_videos(options)


def test_labels_survive_strict_json(clips):
    for clip in clips:
        label = clip.label()
        assert json.loads(json.dumps(label, allow_nan=False)) == label
        for obj, obj_label in zip(clip.objects, label["objects"], strict=True):
            assert obj_label["centers"][: obj.appear_frame] == [None] * obj.appear_frame
            assert obj_label["bboxes"][: obj.appear_frame] == [None] * obj.appear_frame
            np.testing.assert_allclose(obj_label["centers"][obj.appear_frame :], obj.centers[obj.present])
            np.testing.assert_array_equal(obj_label["bboxes"][obj.appear_frame :], obj.bboxes[obj.present])


def test_videos_are_deterministic_per_seed():
    a, b = make_videos(VideoOptions(n=2, seed=9)), make_videos(VideoOptions(n=2, seed=9))
    assert all(np.array_equal(x.frames, y.frames) for x, y in zip(a, b, strict=True))
    c = make_videos(VideoOptions(n=2, seed=10))
    assert not all(np.array_equal(x.frames, y.frames) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_speed": 4.0, "max_speed": 2.0}, "min_speed"),
        ({"frames": 1}, "frames"),
        ({"fps": 0}, "fps"),
        ({"max_objects": 11}, "max_objects"),
        ({"min_visible": -0.1}, "min_visible"),
        ({"colors": ("red", "blue"), "backgrounds": ("red",), "max_objects": 2}, "colors"),
    ],
)
def test_bad_video_options_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as error:
        VideoOptions(**kwargs)
    assert error.value.errors()[0]["loc"] == (field,)
