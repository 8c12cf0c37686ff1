"""ming-testdata videos through ming-videorope: placeholder counts from real clips, and Adjustable Temporal Spacing
tying temporal ids to seconds whatever the frame rate."""

from __future__ import annotations

import torch

from ming_testdata import VideoOptions, make_videos
from ming_videorope import Modality, get_position_ids, temporal_spacing_from_seconds

PATCH, TEMPORAL_PATCH, MERGE = 14, 2, 2  # Qwen2.5-VL vision tower: the LLM sees one token per 28×28 px per 2 frames


def _llm_grid(frames) -> tuple[int, int, int]:
    t, h, w, _ = frames.shape
    return t // TEMPORAL_PATCH, h // (PATCH * MERGE), w // (PATCH * MERGE)


def _video_prompt_positions(clips, fps_list):
    grids = [_llm_grid(clip.frames) for clip in clips]
    ids = []
    for grid in grids:
        ids += [Modality.TEXT] * 3 + [Modality.VIDEO] * (grid[0] * grid[1] * grid[2])
    ids += [Modality.TEXT]
    spacing = temporal_spacing_from_seconds(torch.tensor([TEMPORAL_PATCH / fps for fps in fps_list]))
    result = get_position_ids(torch.tensor([ids]), video_grid_thw=torch.tensor(grids), temporal_spacing=spacing)
    return grids, result.position_ids[:, 0], torch.tensor(ids)


def test_temporal_ids_track_seconds_not_frames():
    seconds = 4
    clips, fps_list = [], [2.0, 4.0, 8.0]
    for fps in fps_list:
        options = VideoOptions(n=1, seed=3, frames=int(seconds * fps), fps=fps, width=112, height=84)
        clips.append(make_videos(options)[0])
    grids, positions, ids = _video_prompt_positions(clips, fps_list)
    video_columns = (ids == Modality.VIDEO).nonzero().squeeze(1)
    start = 0
    for clip, grid, fps in zip(clips, grids, fps_list, strict=True):
        assert clip.duration_s == seconds
        n = grid[0] * grid[1] * grid[2]
        t = positions[0, video_columns[start : start + n]].reshape(grid[0], -1)
        start += n
        first = t[0, 0].item()
        # every token of a frame group shares its temporal id, and the id is 2 positions per second of video time
        assert (t == t[:, :1]).all()
        group_seconds = torch.arange(grid[0]) * TEMPORAL_PATCH / fps
        assert torch.equal(t[:, 0] - first, torch.floor(group_seconds * 2).long())
    # the same four-second clip spans the same temporal range at every frame rate (up to the last group's start)
    spans = []
    start = 0
    for grid in grids:
        n = grid[0] * grid[1] * grid[2]
        t = positions[0, video_columns[start : start + n]]
        spans.append((t.max() - t.min()).item())
        start += n
    assert max(spans) - min(spans) <= 2


def test_placeholder_count_of_a_clip_matches_the_positions():
    clip = make_videos(VideoOptions(n=1, seed=5, frames=8, fps=4.0, width=140, height=112))[0]
    grid = _llm_grid(clip.frames)
    assert grid == (4, 4, 5)
    ids = [Modality.TEXT] * 2 + [Modality.VIDEO] * (grid[0] * grid[1] * grid[2]) + [Modality.TEXT] * 2
    positions = get_position_ids(torch.tensor([ids]), video_grid_thw=torch.tensor([grid])).position_ids[:, 0]
    t, h, w = positions[:, 2:-2].reshape(3, *grid)
    # the diagonal layout: every frame's centre cell sits at h = w = t
    assert torch.equal(h[:, (grid[1] - 1) // 2, (grid[2] - 1) // 2], t[:, 0, 0])
    assert torch.equal(w[:, (grid[1] - 1) // 2, (grid[2] - 1) // 2], t[:, 0, 0])
    assert positions[0, -2].item() == 2 + 2 * (grid[0] - 1) + 1
