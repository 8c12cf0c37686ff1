import numpy as np
import pytest
from pydantic import ValidationError

from ming_testdata import COLORS, VideoOptions, make_videos


@pytest.fixture(scope="module")
def clips():
    return make_videos(VideoOptions(n=12, seed=0, max_objects=3, frames=12, fps=6.0))


def test_frames_are_uint8_rgb_with_fps(clips):
    for clip in clips:
        assert clip.frames.shape == (12, 64, 64, 3)
        assert clip.frames.dtype == np.uint8
        assert clip.fps == 6.0
        assert clip.duration_s == pytest.approx(2.0)


def test_centres_move_with_the_labelled_velocity(clips):
    for clip in clips:
        for obj in clip.objects:
            present = obj.present
            steps = np.diff(obj.centers[present], axis=0)
            np.testing.assert_allclose(steps, np.broadcast_to(obj.velocity, steps.shape), atol=1e-9)
            assert np.isnan(obj.centers[~present]).all()
            speed = float(np.hypot(*obj.velocity))
            assert speed <= 3.0 + 1e-9
            # The whole shape stays inside the frame.
            half = obj.size / 2
            assert (obj.centers[present] >= half - 1e-9).all()
            assert (obj.centers[present, 0] <= 64 - half + 1e-9).all()
            assert (obj.centers[present, 1] <= 64 - half + 1e-9).all()


def test_drawn_pixels_follow_the_labelled_centre():
    for clip in make_videos(VideoOptions(n=6, seed=3, max_objects=1, frames=10, late_entry=False)):
        (obj,) = clip.objects
        assert obj.present.all()
        centroids = []
        for t in range(len(clip.frames)):
            rows, cols = np.nonzero(np.all(clip.frames[t] == obj.rgb, axis=-1))
            centroids.append((cols.mean() + 0.5, rows.mean() + 0.5))
        centroids = np.array(centroids)
        # Rasterisation moves a centroid by under a pixel; over the clip it travels velocity × (T − 1).
        assert np.abs(centroids - obj.centers).max() < 1.5
        travelled = centroids[-1] - centroids[0]
        np.testing.assert_allclose(travelled, np.array(obj.velocity) * (len(clip.frames) - 1), atol=1.5)


def test_masks_and_boxes_are_the_pixels_of_each_object(clips):
    for clip in clips:
        for obj in clip.objects:
            assert obj.rgb == COLORS[obj.color]
            for t in range(len(clip.frames)):
                pixels = np.all(clip.frames[t] == obj.rgb, axis=-1)
                np.testing.assert_array_equal(obj.masks[t], pixels)
                if pixels.any():
                    rows, cols = np.nonzero(pixels)
                    assert tuple(obj.bboxes[t]) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
                else:
                    assert tuple(obj.bboxes[t]) == (-1, -1, -1, -1)


def test_objects_appear_at_their_appear_frame(clips):
    late = 0
    for clip in clips:
        for obj in clip.objects:
            assert not obj.masks[: obj.appear_frame].any()
            assert obj.visible[obj.appear_frame] or any(o.visible[obj.appear_frame] for o in clip.objects)
            late += obj.appear_frame > 0
    assert late > 0
    for clip in make_videos(VideoOptions(n=4, seed=0, late_entry=False)):
        assert all(obj.appear_frame == 0 for obj in clip.objects)


def test_labels_are_json_ready(clips):
    label = clips[0].label()
    obj = clips[0].objects[0]
    assert label["frames"] == 12
    assert label["objects"][0]["centers"][obj.appear_frame] == pytest.approx(obj.centers[obj.appear_frame].tolist())
    assert all(c is None for c in label["objects"][0]["centers"][: obj.appear_frame])


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
    ],
)
def test_bad_video_options_name_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        VideoOptions(**kwargs)
