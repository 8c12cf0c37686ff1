"""3D position ids for interleaved text / image / video / audio sequences (paper §2.1; VideoRoPE, Wei et al. 2025).

Every token gets three position rows (t, h, w). Text and audio tokens advance all three together by one. A video of
T×H×W tokens starting at position ``s`` uses VideoRoPE's *Diagonal Layout* with *Adjustable Temporal Spacing* δ:

    t = s + ⌊δ·k⌋,   h = t + i − (H−1)//2,   w = t + j − (W−1)//2          (frame k, row i, column j)

so the spatial grid sits centred on the diagonal of its frame, and the text after the video resumes at
``s + ⌊δ·(T−1)⌋ + 1``. An image is a one-frame video. Two other conventions are available for comparison:
``"mrope"`` (Qwen2-VL: t = s + ⌊δ·k⌋, h = s + i, w = s + j, text resumes after the largest index) and ``"rope1d"``
(every token, visual or not, advances by one).

The builder is vectorized over the batch: no Python loop over tokens or samples, and a single host synchronisation
(to validate the placeholders against the grids). Only when validation fails does a slow path walk the samples to say
which one is wrong.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from .modality import Modality

PositionStyle = Literal["videorope", "mrope", "rope1d"]
"""How visual tokens are placed: VideoRoPE's diagonal layout, Qwen2-VL's M-RoPE, or plain 1D positions."""


@dataclass(frozen=True)
class PositionIds:
    """Result of :func:`get_position_ids`.

    Attributes:
        position_ids: ``(3, B, L)`` long tensor of (t, h, w) positions; padding positions hold 0.
        rope_deltas: ``(B, 1)`` long tensor. The token that follows row ``b`` at column ``c`` (a decoding step
            appended after the last valid token) has position ``c + rope_deltas[b]`` on all three rows; see
            :func:`get_decode_position_ids`. For packed rows it continues the last sample of the row.
    """

    position_ids: torch.Tensor
    rope_deltas: torch.Tensor


def temporal_spacing_from_seconds(
    seconds_per_frame: float | torch.Tensor, positions_per_second: float = 2.0
) -> float | torch.Tensor:
    """δ for videos sampled every ``seconds_per_frame`` seconds (per temporal grid step).

    Adjustable Temporal Spacing ties the temporal index to wall-clock time: with the default 2 positions per second,
    frames one second apart (2 fps with a temporal patch of 2) are δ = 2 positions apart, the VideoRoPE default.
    Accepts a scalar or a per-video tensor; the result can be passed as ``temporal_spacing``.
    """
    if positions_per_second <= 0:
        raise ValueError(f"positions_per_second must be > 0, got {positions_per_second}")
    if isinstance(seconds_per_frame, torch.Tensor):
        return seconds_per_frame.to(torch.float32) * positions_per_second
    if seconds_per_frame <= 0:
        raise ValueError(f"seconds_per_frame must be > 0, got {seconds_per_frame}")
    return float(seconds_per_frame) * positions_per_second


def get_position_ids(
    modality_ids: torch.Tensor,
    image_grid_thw: torch.Tensor | None = None,
    video_grid_thw: torch.Tensor | None = None,
    *,
    attention_mask: torch.Tensor | None = None,
    sequence_ids: torch.Tensor | None = None,
    temporal_spacing: float | torch.Tensor = 2.0,
    style: PositionStyle = "videorope",
) -> PositionIds:
    """Build (t, h, w) position ids and decoding deltas for a batch.

    Args:
        modality_ids: ``(B, L)`` integer tensor of :class:`Modality` values, one per token. Each image / video is a
            contiguous run of placeholder tokens whose count is the product of its grid.
        image_grid_thw: ``(N_images, 3)`` grids (T, H, W) of the images in order of appearance (row by row), in LLM
            tokens (after any spatial merge). Images have T = 1.
        video_grid_thw: ``(N_videos, 3)`` grids of the videos, in order of appearance, in LLM tokens.
        attention_mask: ``(B, L)`` with 1 for real tokens and 0 for padding (left or right). Default: all real.
        sequence_ids: ``(B, L)`` sample id per token for packed rows (several samples in one row); positions restart
            wherever the id changes. Default: one sample per row.
        temporal_spacing: δ, the temporal distance between consecutive frames of a video (default 2). A float for all
            videos or a ``(N_videos,)`` tensor; non-integer products are floored. See
            :func:`temporal_spacing_from_seconds`.
        style: ``"videorope"`` (default), ``"mrope"`` or ``"rope1d"``.

    Returns:
        :class:`PositionIds` with ``position_ids`` of shape ``(3, B, L)`` and ``rope_deltas`` of shape ``(B, 1)``.

    Raises:
        ValueError: when an argument has the wrong shape or type, or when the placeholder tokens do not match the
            grids; the message names the sample and the modality.
    """
    batch, length = _check_inputs(modality_ids, attention_mask, sequence_ids, style)
    device = modality_ids.device
    modality = modality_ids.long()
    valid = torch.ones_like(modality, dtype=torch.bool) if attention_mask is None else attention_mask.to(device).bool()
    image_grids = _as_grids(image_grid_thw, "image_grid_thw", device)
    video_grids = _as_grids(video_grid_thw, "video_grid_thw", device)
    spacing = _as_spacing(temporal_spacing, video_grids.shape[0], device)
    segments = None if sequence_ids is None else sequence_ids.to(device)

    columns = torch.arange(length, device=device)
    same_segment_as_prev = torch.zeros_like(valid)
    if segments is not None:
        same_segment_as_prev[:, 1:] = segments[:, 1:] == segments[:, :-1]
    else:
        same_segment_as_prev[:, 1:] = True

    text_like = valid & ((modality == Modality.TEXT) | (modality == Modality.AUDIO))
    # Each token contributes `advance` to the running position, put on the token that closes its block, so an
    # exclusive cumulative sum gives every token the start position of its block.
    advance = text_like.long()
    offsets = torch.zeros(3, batch, length, dtype=torch.long, device=device)
    problems = [((modality < 0) | (modality > max(Modality))).any()]
    for kind, grids, delta, name in (
        (Modality.IMAGE, image_grids, torch.ones(image_grids.shape[0], device=device), "image"),
        (Modality.VIDEO, video_grids, spacing, "video"),
    ):
        is_kind = valid & (modality == kind)
        problems.append(is_kind.sum() != grids.prod(-1).sum())
        problems.append((grids <= 0).any())
        if name == "image":
            problems.append((grids[:, 0] != 1).any())
        if grids.shape[0] == 0:
            continue
        local, item = _index_within_item(is_kind, grids)
        t_grid, h_grid, w_grid = grids[item].unbind(-1)
        frame, row, col = local // (h_grid * w_grid), (local // w_grid) % h_grid, local % w_grid
        frame_offset = torch.floor(delta[item] * frame).long()
        last_frame_offset = torch.floor(delta[item] * (t_grid - 1)).long()
        if style == "videorope":
            kind_offsets = (
                frame_offset,
                frame_offset + row - (h_grid - 1) // 2,
                frame_offset + col - (w_grid - 1) // 2,
            )
            block_advance = last_frame_offset + 1
        elif style == "mrope":
            kind_offsets = (frame_offset, row, col)
            block_advance = torch.maximum(last_frame_offset, torch.maximum(h_grid, w_grid) - 1) + 1
        else:
            kind_offsets = (local, local, local)
            block_advance = local + 1
        for axis in range(3):
            offsets[axis] = torch.where(is_kind, kind_offsets[axis], offsets[axis])
        closes_block = is_kind & (local == (t_grid * h_grid * w_grid) - 1)
        advance = advance + torch.where(closes_block, block_advance, 0)
        # A block continues only from a token of the same kind, in the same row and sample.
        prev_is_kind = torch.zeros_like(is_kind)
        prev_is_kind[:, 1:] = is_kind[:, :-1]
        problems.append((is_kind & (local > 0) & ~(prev_is_kind & same_segment_as_prev)).any())
    if segments is not None:
        problems.append((valid[:, 1:] & valid[:, :-1] & (segments[:, 1:] < segments[:, :-1])).any())

    if torch.stack(problems).any():  # the one host synchronisation
        _raise_mismatch(modality, valid, segments, image_grids, video_grids, spacing)

    inclusive = torch.cumsum(advance, dim=1)
    exclusive = inclusive - advance
    if segments is not None:
        starts = valid & ~(same_segment_as_prev & torch.roll(valid, 1, dims=1))
        last_start = torch.cummax(torch.where(starts, columns, 0), dim=1).values
        base = exclusive.gather(1, last_start)
    else:
        base = torch.zeros_like(exclusive)
    block_start = exclusive - base
    position_ids = torch.where(valid, block_start + offsets, 0)

    last_col = torch.where(valid, columns, -1).max(dim=1).values
    next_position = (inclusive - base).gather(1, last_col.clamp(min=0)[:, None])[:, 0]
    rope_deltas = torch.where(last_col >= 0, next_position - (last_col + 1), 0)
    return PositionIds(position_ids=position_ids, rope_deltas=rope_deltas[:, None])


def get_decode_position_ids(rope_deltas: torch.Tensor, cache_position: torch.Tensor) -> torch.Tensor:
    """Positions of tokens appended during decoding, without recomputing the prompt.

    Args:
        rope_deltas: ``(B, 1)`` from :func:`get_position_ids` on the prompt.
        cache_position: column indices of the new tokens, ``(L_new,)`` shared by the batch or ``(B, L_new)``.

    Returns:
        ``(3, B, L_new)`` long tensor; the three rows are equal (generated tokens are text-like).
    """
    if rope_deltas.dim() != 2 or rope_deltas.shape[1] != 1:
        raise ValueError(f"rope_deltas must have shape (B, 1), got {tuple(rope_deltas.shape)}")
    if cache_position.dim() == 1:
        cache_position = cache_position[None, :]
    if cache_position.dim() != 2 or cache_position.shape[0] not in (1, rope_deltas.shape[0]):
        raise ValueError(
            f"cache_position must have shape (L_new,) or (B, L_new) with B = {rope_deltas.shape[0]}, "
            f"got {tuple(cache_position.shape)}"
        )
    positions = cache_position.long() + rope_deltas.to(cache_position.device).long()
    return positions.unsqueeze(0).expand(3, -1, -1)


def _index_within_item(is_kind: torch.Tensor, grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every token of one visual kind: its index inside its image/video and which image/video it belongs to.

    Items are assigned in reading order (row by row, left to right). Tokens beyond the grids are clamped to the last
    item; the caller's count check reports them.
    """
    running = torch.cumsum(is_kind.reshape(-1).long(), dim=0).reshape(is_kind.shape) - 1
    ends = torch.cumsum(grids.prod(-1), dim=0)
    item = torch.searchsorted(ends, running.clamp(min=0), right=True).clamp(max=grids.shape[0] - 1)
    local = running - (ends - grids.prod(-1))[item]
    return torch.where(is_kind, local, 0), item


def _check_inputs(
    modality_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    sequence_ids: torch.Tensor | None,
    style: str,
) -> tuple[int, int]:
    if not isinstance(modality_ids, torch.Tensor) or modality_ids.dim() != 2:
        raise ValueError("modality_ids must be a (B, L) integer tensor of Modality values")
    if modality_ids.is_floating_point() or modality_ids.is_complex():
        raise ValueError(f"modality_ids must be an integer tensor, got dtype {modality_ids.dtype}")
    for name, tensor in (("attention_mask", attention_mask), ("sequence_ids", sequence_ids)):
        if tensor is not None and (not isinstance(tensor, torch.Tensor) or tensor.shape != modality_ids.shape):
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(
                f"{name} must be a tensor of shape {tuple(modality_ids.shape)} like modality_ids, got {got}"
            )
    if style not in get_args(PositionStyle):
        raise ValueError(f"style must be one of {get_args(PositionStyle)}, got {style!r}")
    return modality_ids.shape[0], modality_ids.shape[1]


def _as_grids(grids: torch.Tensor | None, name: str, device: torch.device) -> torch.Tensor:
    if grids is None:
        return torch.zeros(0, 3, dtype=torch.long, device=device)
    if not isinstance(grids, torch.Tensor) or grids.dim() != 2 or grids.shape[1] != 3:
        got = tuple(grids.shape) if isinstance(grids, torch.Tensor) else type(grids).__name__
        raise ValueError(f"{name} must be an (N, 3) tensor of (T, H, W) grids in LLM tokens, got {got}")
    if grids.is_floating_point():
        raise ValueError(f"{name} must be an integer tensor, got dtype {grids.dtype}")
    return grids.to(device=device, dtype=torch.long)


def _as_spacing(spacing: float | torch.Tensor, n_videos: int, device: torch.device) -> torch.Tensor:
    if isinstance(spacing, torch.Tensor):
        if spacing.dim() == 0:
            spacing = spacing.expand(n_videos)
        if spacing.shape != (n_videos,):
            raise ValueError(
                f"temporal_spacing must be a float or a ({n_videos},) tensor (one δ per video), "
                f"got shape {tuple(spacing.shape)}"
            )
        return spacing.to(device=device, dtype=torch.float64)
    if not isinstance(spacing, (int, float)) or spacing <= 0:
        raise ValueError(f"temporal_spacing must be a positive number or a per-video tensor, got {spacing!r}")
    return torch.full((n_videos,), float(spacing), dtype=torch.float64, device=device)


def _raise_mismatch(
    modality: torch.Tensor,
    valid: torch.Tensor,
    segments: torch.Tensor | None,
    image_grids: torch.Tensor,
    video_grids: torch.Tensor,
    spacing: torch.Tensor,
) -> None:
    """Slow path, only on bad input: find the first sample whose placeholders disagree with the grids."""
    values = set(torch.unique(modality[valid]).tolist())
    unknown = sorted(values - {int(m) for m in Modality})
    if unknown:
        raise ValueError(f"modality_ids holds values {unknown}; expected Modality values {[int(m) for m in Modality]}")
    if (spacing <= 0).any():
        raise ValueError("temporal_spacing must be > 0 for every video")
    if segments is not None:
        for b in range(modality.shape[0]):
            seg = segments[b][valid[b]].tolist()
            if any(later < earlier for earlier, later in itertools.pairwise(seg)):
                raise ValueError(f"sample {b}: sequence_ids must not decrease along a row (packed samples in order)")
    for kind, grids, name in ((Modality.IMAGE, image_grids, "image"), (Modality.VIDEO, video_grids, "video")):
        field = f"{name}_grid_thw"
        if (grids <= 0).any():
            raise ValueError(f"{field} must hold positive (T, H, W) sizes, got {grids.tolist()}")
        if kind == Modality.IMAGE and (grids[:, 0] != 1).any():
            raise ValueError(f"{field}: images have T = 1 (a video is passed as video_grid_thw), got {grids.tolist()}")
        sizes = grids.prod(-1).tolist()
        item = 0
        for b in range(modality.shape[0]):
            mods = modality[b].tolist()
            ok = valid[b].tolist()
            seg = segments[b].tolist() if segments is not None else [0] * len(mods)
            col = 0
            while col < len(mods):
                if not (ok[col] and mods[col] == kind):
                    col += 1
                    continue
                end = col
                while end < len(mods) and ok[end] and mods[end] == kind and seg[end] == seg[col]:
                    end += 1
                run = end - col
                while run > 0:
                    if item >= len(sizes):
                        raise ValueError(
                            f"sample {b}: {name} placeholder tokens at column {end - run} onwards have no grid left "
                            f"in {field} ({len(sizes)} {name}s given for the whole batch)"
                        )
                    if run < sizes[item]:
                        raise ValueError(
                            f"sample {b}: {name} {item} needs {sizes[item]} placeholder tokens "
                            f"({field}[{item}] = {grids[item].tolist()}) but the run at columns {col}..{end - 1} "
                            f"leaves only {run}"
                        )
                    run -= sizes[item]
                    item += 1
                col = end
        if item != len(sizes):
            raise ValueError(
                f"{field} describes {len(sizes)} {name}s but the batch holds placeholder tokens for only {item} "
                f"(the first unmatched is {name} {item} with grid {grids[item].tolist()})"
            )
    raise ValueError("placeholder tokens do not match the grids")  # unreachable when the checks above are complete
