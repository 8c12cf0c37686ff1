"""3D position ids for interleaved text / image / video / audio sequences (paper §2.1; VideoRoPE, Wei et al. 2025).

Every token gets three position rows (t, h, w). Text and audio tokens advance all three together by one. A video of
T×H×W tokens starting at position ``s`` uses VideoRoPE's *Diagonal Layout* with *Adjustable Temporal Spacing* δ:

    t = s + ⌊δ·k⌋,   h = t + i − (H−1)//2,   w = t + j − (W−1)//2          (frame k, row i, column j)

so the spatial grid sits centred on the diagonal of its frame, and the text after the video resumes at
``s + ⌊δ·(T−1)⌋ + 1``. An image is a one-frame video. Two other conventions are available for comparison:
``"mrope"`` (Qwen2-VL: t = s + ⌊δ·k⌋, h = s + i, w = s + j, text resumes after the largest index) and ``"rope1d"``
(every token, visual or not, advances by one).

The builder is vectorized over the batch: no Python loop over tokens, samples or images, and a single host
synchronisation (to validate the placeholders against the grids) besides reading the small grid tensors, which the
processor makes on the CPU anyway. Per-cell work runs over the visual tokens only, from per-row tables built on the
CPU. Only when validation fails does a slow path walk the samples to say which one is wrong.
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
    modality = modality_ids
    valid = torch.ones_like(modality, dtype=torch.bool) if attention_mask is None else attention_mask.to(device).bool()
    image_grids = _as_grids(image_grid_thw, "image_grid_thw")
    video_grids = _as_grids(video_grid_thw, "video_grid_thw")
    if (image_grids[:, 0] != 1).any():
        raise ValueError(
            f"image_grid_thw: images have T = 1 (a video is passed as video_grid_thw), got {image_grids.tolist()}"
        )
    spacing = _as_spacing(temporal_spacing, video_grids.shape[0])
    segments = None if sequence_ids is None else sequence_ids.to(device)

    # Each token contributes `advance` to the running position, put on the token that closes its block, so an
    # exclusive cumulative sum gives every token the start position of its block; visual tokens add their offsets.
    is_image = valid & (modality == Modality.IMAGE)
    is_video = valid & (modality == Modality.VIDEO)
    text_like = valid & ((modality == Modality.TEXT) | (modality == Modality.AUDIO))
    advance = text_like.long()
    problems = [(valid & ~(text_like | is_image | is_video)).any()]
    placed = []
    for is_kind, grids, delta in (
        (is_image, image_grids, torch.ones(image_grids.shape[0], dtype=torch.float64)),
        (is_video, video_grids, spacing),
    ):
        placed.append(_place_visual_tokens(is_kind, grids, delta, style, segments, advance.view(-1), problems))
    if segments is not None:
        problems.append((valid[:, 1:] & valid[:, :-1] & (segments[:, 1:] < segments[:, :-1])).any())

    if torch.stack(problems).any():  # the one host synchronisation
        _raise_mismatch(modality, valid, segments, image_grids, video_grids)

    inclusive = torch.cumsum(advance, dim=1)
    exclusive = advance.neg_().add_(inclusive)  # in place: large temporaries are what this function spends time on
    if segments is not None:
        columns = torch.arange(length, device=device)
        first = torch.zeros_like(valid)
        first[:, 1:] = (segments[:, 1:] != segments[:, :-1]) | ~valid[:, :-1]
        first[:, 0] = True
        last_start = torch.cummax(torch.where(valid & first, columns, 0), dim=1).values
        base = exclusive.gather(1, last_start)
        exclusive = exclusive - base
        inclusive = inclusive - base
    block_start = exclusive.masked_fill_(~valid, 0).view(-1)
    position_ids = block_start.expand(3, -1).clone()
    for token, cell_offsets in placed:
        if token is not None:
            position_ids.index_copy_(1, token, block_start[token] + cell_offsets)
    position_ids = position_ids.view(3, batch, length)

    # column after the last real token (0 for an empty row, whose delta is then 0)
    after_last = torch.where(valid.any(1), length - valid.flip(1).to(torch.uint8).argmax(1), 0)[:, None]
    next_position = inclusive.gather(1, (after_last - 1).clamp(min=0)) * (after_last > 0)
    rope_deltas = next_position - after_last
    return PositionIds(position_ids=position_ids, rope_deltas=rope_deltas)


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


def _place_visual_tokens(
    is_kind: torch.Tensor,
    grids: torch.Tensor,
    delta: torch.Tensor,
    style: str,
    segments: torch.Tensor | None,
    advance: torch.Tensor,
    problems: list[torch.Tensor],
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Lay out the tokens of one visual kind: add each block's advance to ``advance`` (flat, in place) and return
    the flat index of every token of the kind with its (3, K) offsets from its block's start.

    The k-th token of the kind in reading order is the k-th grid cell. Per-row tables (one entry per row of each
    frame) are built on the CPU from the small grid tensor; the per-cell work is then one expansion and one lookup
    over the kind's tokens only. Device-side flags of placeholder/grid mismatches are appended to ``problems``.
    """
    t_grid, h_grid, w_grid = grids.unbind(-1)
    sizes = t_grid * h_grid * w_grid
    total = int(sizes.sum())
    problems.append(is_kind.sum() != total)
    if total == 0:
        return None, None
    device, length = is_kind.device, is_kind.shape[1]

    rows_per_item = t_grid * h_grid
    row_item = torch.repeat_interleave(torch.arange(len(grids)), rows_per_item)
    row_in_item = torch.arange(len(row_item)) - torch.repeat_interleave(
        torch.cumsum(rows_per_item, 0) - rows_per_item, rows_per_item
    )
    frame, row = row_in_item // h_grid[row_item], row_in_item % h_grid[row_item]
    frame_offset = torch.floor(delta[row_item] * frame).long()
    last_frame_offset = torch.floor(delta * (t_grid - 1)).long()
    row_width = w_grid[row_item]
    if style == "videorope":
        row_offsets = (
            frame_offset,
            frame_offset + row - (h_grid[row_item] - 1) // 2,
            frame_offset - (row_width - 1) // 2,
        )
        block_advance = last_frame_offset + 1
    elif style == "mrope":
        row_offsets = (frame_offset, row, torch.zeros_like(row))
        block_advance = torch.maximum(last_frame_offset, torch.maximum(h_grid, w_grid) - 1) + 1
    else:
        row_offsets = (row_in_item * row_width,) * 3
        block_advance = sizes
    row_start = torch.cumsum(row_width, 0) - row_width
    item_start = torch.cumsum(sizes, 0) - sizes
    col_axes = torch.tensor([style == "rope1d", style == "rope1d", True])
    table = torch.stack([*row_offsets, row_start]).to(device)

    # Sized by the grids rather than by the data, so no synchronisation; a count mismatch is flagged above.
    token = torch.nonzero_static(is_kind.reshape(-1), size=total, fill_value=0).squeeze(1)
    cell_row = torch.repeat_interleave(
        torch.arange(table.shape[1], device=device), row_width.to(device), output_size=total
    )
    cell = table[:, cell_row]
    col = torch.arange(total, device=device) - cell[3]
    cell_offsets = cell[:3] + col * col_axes.to(device)[:, None]
    advance.index_add_(0, token[(item_start + sizes - 1).to(device)], block_advance.to(device))

    # Consecutive cells of one image/video must be consecutive columns of one row and one packed sample.
    continues = torch.ones(total, dtype=torch.bool)
    continues[item_start] = False
    step_ok = (token[1:] - token[:-1] == 1) & (token[1:] % length != 0)
    if segments is not None:
        flat_segments = segments.reshape(-1)
        step_ok &= flat_segments[token[1:]] == flat_segments[token[:-1]]
    problems.append((~step_ok & continues[1:].to(device)).any())
    return token, cell_offsets


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


def _as_grids(grids: torch.Tensor | None, name: str) -> torch.Tensor:
    """Grids as a CPU long tensor: they are tiny, and their sizes set the shapes of the per-kind work."""
    if grids is None:
        return torch.zeros(0, 3, dtype=torch.long)
    if not isinstance(grids, torch.Tensor) or grids.dim() != 2 or grids.shape[1] != 3:
        got = tuple(grids.shape) if isinstance(grids, torch.Tensor) else type(grids).__name__
        raise ValueError(f"{name} must be an (N, 3) tensor of (T, H, W) grids in LLM tokens, got {got}")
    if grids.is_floating_point():
        raise ValueError(f"{name} must be an integer tensor, got dtype {grids.dtype}")
    grids = grids.to("cpu", torch.long)
    if (grids <= 0).any():
        raise ValueError(f"{name} must hold positive (T, H, W) sizes, got {grids.tolist()}")
    return grids


def _as_spacing(spacing: float | torch.Tensor, n_videos: int) -> torch.Tensor:
    """Per-video δ as a CPU float64 tensor (one small read if it lives on an accelerator)."""
    if isinstance(spacing, torch.Tensor):
        if spacing.dim() == 0:
            spacing = spacing.expand(n_videos)
        if spacing.shape != (n_videos,):
            raise ValueError(
                f"temporal_spacing must be a float or a ({n_videos},) tensor (one δ per video), "
                f"got shape {tuple(spacing.shape)}"
            )
        spacing = spacing.to("cpu", torch.float64)
        if not bool((spacing > 0).all()):
            raise ValueError(f"temporal_spacing must be > 0 for every video, got {spacing.tolist()}")
        return spacing
    if not isinstance(spacing, (int, float)) or spacing <= 0:
        raise ValueError(f"temporal_spacing must be a positive number or a per-video tensor, got {spacing!r}")
    return torch.full((n_videos,), float(spacing), dtype=torch.float64)


def _raise_mismatch(
    modality: torch.Tensor,
    valid: torch.Tensor,
    segments: torch.Tensor | None,
    image_grids: torch.Tensor,
    video_grids: torch.Tensor,
) -> None:
    """Slow path, only on bad input: find the first sample whose placeholders disagree with the grids."""
    values = set(torch.unique(modality[valid]).tolist())
    unknown = sorted(values - {int(m) for m in Modality})
    if unknown:
        raise ValueError(f"modality_ids holds values {unknown}; expected Modality values {[int(m) for m in Modality]}")
    if segments is not None:
        for b in range(modality.shape[0]):
            seg = segments[b][valid[b]].tolist()
            if any(later < earlier for earlier, later in itertools.pairwise(seg)):
                raise ValueError(f"sample {b}: sequence_ids must not decrease along a row (packed samples in order)")
    for kind, grids, name in ((Modality.IMAGE, image_grids, "image"), (Modality.VIDEO, video_grids, "video")):
        field = f"{name}_grid_thw"
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
