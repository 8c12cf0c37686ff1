"""Behaviour of the position builder: VideoRoPE's layout, padding/packing invariance, decoding, errors."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch

from ming_videorope import Modality, get_decode_position_ids, get_position_ids, temporal_spacing_from_seconds

TXT, IMG, VID, AUD = Modality.TEXT, Modality.IMAGE, Modality.VIDEO, Modality.AUDIO


def _sample(*parts: tuple[Modality, object]) -> tuple[list[int], list[list[int]], list[list[int]]]:
    """Build one sample from (modality, count-or-grid) parts: its modality ids and its image / video grids."""
    ids, images, videos = [], [], []
    for kind, spec in parts:
        if kind in (IMG, VID):
            ids += [int(kind)] * (spec[0] * spec[1] * spec[2])
            (images if kind == IMG else videos).append(list(spec))
        else:
            ids += [int(kind)] * spec
    return ids, images, videos


SAMPLES = [
    _sample((TXT, 3), (IMG, (1, 2, 2)), (TXT, 2), (VID, (2, 2, 3)), (AUD, 4), (TXT, 1)),
    _sample((TXT, 2), (VID, (3, 1, 1)), (VID, (2, 3, 3)), (TXT, 3)),
    _sample((TXT, 5)),
    _sample((AUD, 3), (IMG, (1, 3, 5)), (IMG, (1, 1, 2))),
]


def _grids(rows: list[list[int]]) -> torch.Tensor | None:
    return torch.tensor(rows, dtype=torch.long) if rows else None


def _batch(samples, padding_side: str):
    length = max(len(ids) for ids, _, _ in samples)
    modality = torch.full((len(samples), length), int(TXT))
    mask = torch.zeros(len(samples), length, dtype=torch.long)
    for b, (ids, _, _) in enumerate(samples):
        span = slice(length - len(ids), length) if padding_side == "left" else slice(0, len(ids))
        modality[b, span] = torch.tensor(ids)
        mask[b, span] = 1
    images = [g for _, imgs, _ in samples for g in imgs]
    videos = [g for _, _, vids in samples for g in vids]
    return modality, mask, _grids(images), _grids(videos)


def _one_by_one(samples, **kwargs) -> list[torch.Tensor]:
    return [
        get_position_ids(
            torch.tensor([ids]), _grids(imgs), _grids(vids), temporal_spacing=kwargs.get("spacing", 2.0)
        ).position_ids[:, 0]
        for ids, imgs, vids in samples
    ]


def test_next_text_after_video_follows_the_temporal_spacing():
    ids, _, videos = _sample((TXT, 5), (VID, (4, 3, 4)), (TXT, 1))
    for spacing, expected in ((2.0, 12), (1.0, 9)):
        result = get_position_ids(torch.tensor([ids]), video_grid_thw=_grids(videos), temporal_spacing=spacing)
        assert result.position_ids[:, 0, -1].tolist() == [expected] * 3
        frame_starts = result.position_ids[0, 0, 5:53:12].tolist()
        assert frame_starts == [5 + int(spacing) * k for k in range(4)]


def test_text_and_audio_advance_all_three_rows_together():
    ids, _, _ = _sample((TXT, 4), (AUD, 6), (TXT, 3))
    positions = get_position_ids(torch.tensor([ids])).position_ids[:, 0]
    expected = torch.arange(13)
    for row in positions:
        assert torch.equal(row, expected)


@pytest.mark.parametrize("grid", [(2, 3, 5), (3, 5, 3), (1, 7, 7), (4, 1, 9)])
def test_centre_row_and_column_sit_on_the_frame_diagonal(grid):
    t_grid, h_grid, w_grid = grid
    ids, _, videos = _sample((TXT, 2), (VID, grid))
    positions = get_position_ids(torch.tensor([ids]), video_grid_thw=_grids(videos)).position_ids[:, 0, 2:]
    t, h, w = (row.reshape(t_grid, h_grid, w_grid) for row in positions)
    centre_row, centre_col = (h_grid - 1) // 2, (w_grid - 1) // 2
    assert torch.equal(h[:, centre_row, :], t[:, centre_row, :])
    assert torch.equal(w[:, :, centre_col], t[:, :, centre_col])
    # rows and columns step by one around the centre
    assert torch.equal(h[:, 1:, :] - h[:, :-1, :], torch.ones_like(h[:, 1:, :]))
    assert torch.equal(w[:, :, 1:] - w[:, :, :-1], torch.ones_like(w[:, :, 1:]))


def test_image_is_a_single_frame_and_next_text_follows_it():
    ids, images, _ = _sample((TXT, 3), (IMG, (1, 4, 4)), (TXT, 1))
    positions = get_position_ids(torch.tensor([ids]), image_grid_thw=_grids(images)).position_ids[:, 0]
    assert set(positions[0, 3:19].tolist()) == {3}
    assert positions[:, -1].tolist() == [4, 4, 4]
    assert positions[1, 3:19].min().item() == 3 - 1
    assert positions[1, 3:19].max().item() == 3 + 2


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_padded_batch_equals_one_by_one(padding_side):
    modality, mask, images, videos = _batch(SAMPLES, padding_side)
    batched = get_position_ids(modality, images, videos, attention_mask=mask).position_ids
    for b, expected in enumerate(_one_by_one(SAMPLES)):
        assert torch.equal(batched[:, b][:, mask[b].bool()], expected)
    assert (batched[:, ~mask.bool()] == 0).all()


def test_packed_rows_equal_one_by_one():
    order = [0, 2, 1, 3]
    ids = [t for k in order for t in SAMPLES[k][0]]
    sequence_ids = torch.tensor([[k for k in order for _ in SAMPLES[k][0]]])
    # sequence ids only need to change at boundaries, so use the packing order rather than the sample number
    sequence_ids = torch.cumsum(torch.cat([torch.ones(1), (sequence_ids[0, 1:] != sequence_ids[0, :-1]).float()]), 0)
    images = [g for k in order for g in SAMPLES[k][1]]
    videos = [g for k in order for g in SAMPLES[k][2]]
    packed = get_position_ids(
        torch.tensor([ids]), _grids(images), _grids(videos), sequence_ids=sequence_ids.long()[None]
    ).position_ids[:, 0]
    expected = torch.cat([_one_by_one(SAMPLES)[k] for k in order], dim=1)
    assert torch.equal(packed, expected)


def test_packed_and_padded_together():
    first = SAMPLES[0][0] + SAMPLES[1][0]
    second = SAMPLES[3][0]
    length = len(first)
    modality = torch.zeros(2, length, dtype=torch.long)
    modality[0] = torch.tensor(first)
    modality[1, -len(second) :] = torch.tensor(second)
    mask = torch.zeros(2, length, dtype=torch.long)
    mask[0] = 1
    mask[1, -len(second) :] = 1
    seq = torch.zeros(2, length, dtype=torch.long)
    seq[0, len(SAMPLES[0][0]) :] = 1
    images = _grids(SAMPLES[0][1] + SAMPLES[1][1] + SAMPLES[3][1])
    videos = _grids(SAMPLES[0][2] + SAMPLES[1][2] + SAMPLES[3][2])
    result = get_position_ids(modality, images, videos, attention_mask=mask, sequence_ids=seq).position_ids
    singles = _one_by_one(SAMPLES)
    assert torch.equal(result[:, 0], torch.cat([singles[0], singles[1]], dim=1))
    assert torch.equal(result[:, 1, -len(second) :], singles[3])


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_decode_positions_from_rope_deltas_equal_full_recompute(padding_side):
    new_tokens = 3
    modality, mask, images, videos = _batch(SAMPLES, "left")
    prompt = get_position_ids(modality, images, videos, attention_mask=mask)
    extended = [(ids + [int(TXT)] * new_tokens, imgs, vids) for ids, imgs, vids in SAMPLES]
    full = _one_by_one(extended)
    cache_position = torch.arange(modality.shape[1], modality.shape[1] + new_tokens)
    decoded = get_decode_position_ids(prompt.rope_deltas, cache_position)
    for b in range(len(SAMPLES)):
        assert torch.equal(decoded[:, b], full[b][:, -new_tokens:])
    if padding_side == "right":
        # with right padding each row continues right after its own last real token
        modality, mask, images, videos = _batch(SAMPLES, "right")
        prompt = get_position_ids(modality, images, videos, attention_mask=mask)
        lengths = mask.sum(1, keepdim=True)
        per_row = lengths + torch.arange(new_tokens)[None]
        decoded = get_decode_position_ids(prompt.rope_deltas, per_row)
        for b in range(len(SAMPLES)):
            assert torch.equal(decoded[:, b], full[b][:, -new_tokens:])


def test_per_video_spacing_and_seconds_helper():
    ids, _, videos = _sample((TXT, 1), (VID, (3, 1, 1)), (TXT, 1), (VID, (3, 1, 1)), (TXT, 1))
    spacing = temporal_spacing_from_seconds(torch.tensor([1.0, 2.0]))
    assert spacing.tolist() == [2.0, 4.0]
    positions = get_position_ids(torch.tensor([ids]), video_grid_thw=_grids(videos), temporal_spacing=spacing)
    t = positions.position_ids[0, 0].tolist()
    assert t == [0, 1, 3, 5, 6, 7, 11, 15, 16]
    assert temporal_spacing_from_seconds(0.5) == 1.0


def test_fractional_spacing_is_floored():
    ids, _, videos = _sample((VID, (4, 1, 1)), (TXT, 1))
    t = get_position_ids(torch.tensor([ids]), video_grid_thw=_grids(videos), temporal_spacing=1.5).position_ids[0, 0]
    assert t.tolist() == [0, 1, 3, 4, 5]


def test_rope1d_style_counts_every_token():
    modality, mask, images, videos = _batch(SAMPLES, "right")
    result = get_position_ids(modality, images, videos, attention_mask=mask, style="rope1d").position_ids
    for b in range(len(SAMPLES)):
        n = int(mask[b].sum())
        for row in result[:, b, :n]:
            assert torch.equal(row, torch.arange(n))


def _qwen2vl_rope_index(modality, mask, images, videos, merge):
    """transformers' Qwen2-VL get_rope_index, called without building the model (it only reads the merge size)."""
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

    fake = SimpleNamespace(config=SimpleNamespace(vision_config=SimpleNamespace(spatial_merge_size=merge)))
    fake.get_vision_position_ids = Qwen2VLModel.get_vision_position_ids.__get__(fake)
    scale = torch.tensor([1, merge, merge])
    return Qwen2VLModel.get_rope_index(
        fake,
        input_ids=torch.zeros_like(modality),
        mm_token_type_ids=modality,
        image_grid_thw=None if images is None else images * scale,
        video_grid_thw=None if videos is None else videos * scale,
        attention_mask=mask,
    )


def test_mrope_style_matches_transformers_qwen2vl():
    # Qwen2-VL resumes text after max(H, W); ours after the largest index — the same whenever T <= max(H, W). It also
    # needs text between two visual items (real prompts have start/end tokens there), so the samples have it.
    samples = [
        _sample((TXT, 3), (IMG, (1, 2, 2)), (TXT, 2), (VID, (2, 2, 3)), (TXT, 1)),
        _sample((TXT, 2), (VID, (3, 4, 3)), (TXT, 1), (IMG, (1, 3, 1)), (TXT, 4)),
        _sample((TXT, 5)),
        _sample((IMG, (1, 3, 5)), (TXT, 1), (IMG, (1, 1, 2))),
    ]
    modality, mask, images, videos = _batch(samples, "left")
    ours = get_position_ids(modality, images, videos, attention_mask=mask, style="mrope", temporal_spacing=1.0)
    theirs, their_deltas = _qwen2vl_rope_index(modality, mask, images, videos, merge=2)
    valid = mask.bool()
    assert torch.equal(ours.position_ids[:, valid], theirs[:, valid])
    # their delta is relative to the count of real tokens, ours to the column after the last token
    assert torch.equal(ours.rope_deltas, their_deltas - (mask.shape[1] - mask.sum(1, keepdim=True)))


def test_builder_is_invariant_to_batch_order():
    for perm in itertools.permutations(range(len(SAMPLES))):
        samples = [SAMPLES[k] for k in perm]
        modality, mask, images, videos = _batch(samples, "left")
        result = get_position_ids(modality, images, videos, attention_mask=mask).position_ids
        singles = _one_by_one(samples)
        for b in range(len(samples)):
            assert torch.equal(result[:, b][:, mask[b].bool()], singles[b])


# ---- errors -------------------------------------------------------------------------------------------------------


def test_too_few_video_tokens_names_the_sample_and_modality():
    modality, mask, images, videos = _batch(SAMPLES, "right")
    videos = videos.clone()
    videos[1] = torch.tensor([3, 2, 1])  # sample 1's first video claims 6 tokens, the run has 3 before the next video
    with pytest.raises(ValueError, match=r"sample 1: video"):
        get_position_ids(modality, images, videos, attention_mask=mask)


def test_missing_image_grids_names_the_sample():
    modality, mask, _, videos = _batch(SAMPLES, "right")
    with pytest.raises(ValueError, match=r"sample 0: image placeholder tokens .* no grid left in image_grid_thw"):
        get_position_ids(modality, None, videos, attention_mask=mask)


def test_unused_grids_are_reported():
    modality, mask, images, videos = _batch(SAMPLES, "right")
    extra = torch.cat([videos, torch.tensor([[1, 2, 2]])])
    with pytest.raises(ValueError, match=r"video_grid_thw describes 4 videos but .* only 3"):
        get_position_ids(modality, images, extra, attention_mask=mask)


def test_video_crossing_a_packed_boundary_is_rejected():
    ids, _, videos = _sample((TXT, 1), (VID, (2, 1, 2)), (TXT, 1))
    sequence_ids = torch.tensor([[0, 0, 0, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"sample 0: video 0 needs 4"):
        get_position_ids(torch.tensor([ids]), video_grid_thw=_grids(videos), sequence_ids=sequence_ids)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_grid_thw": torch.tensor([2, 2, 2])}, r"image_grid_thw must be an \(N, 3\) tensor"),
        ({"video_grid_thw": torch.tensor([[1.0, 2.0, 2.0]])}, r"video_grid_thw must be an integer tensor"),
        ({"attention_mask": torch.ones(1, 3)}, r"attention_mask must be a tensor of shape \(1, 4\)"),
        ({"style": "alibi"}, r"style must be one of"),
        ({"temporal_spacing": -1.0}, r"temporal_spacing must be a positive number"),
        ({"temporal_spacing": torch.ones(3)}, r"temporal_spacing must be a float or a \(0,\) tensor"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_position_ids(torch.zeros(1, 4, dtype=torch.long), **kwargs)


def test_unknown_modality_and_multi_frame_image_are_rejected():
    with pytest.raises(ValueError, match=r"modality_ids holds values \[7\]"):
        get_position_ids(torch.tensor([[0, 7]]))
    with pytest.raises(ValueError, match=r"images have T = 1"):
        get_position_ids(torch.tensor([[1, 1]]), image_grid_thw=torch.tensor([[2, 1, 1]]))
    with pytest.raises(ValueError, match=r"modality_ids must be an integer tensor"):
        get_position_ids(torch.zeros(1, 3))


def test_decode_positions_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"rope_deltas must have shape \(B, 1\)"):
        get_decode_position_ids(torch.zeros(2), torch.arange(3))
    with pytest.raises(ValueError, match=r"cache_position must have shape"):
        get_decode_position_ids(torch.zeros(2, 1), torch.zeros(3, 4))
