"""Behaviour of the rotary layouts and their application: 1D equivalence, relative positions, peers' layouts."""

from __future__ import annotations

import math

import pytest
import torch

from ming_videorope import (
    Modality,
    RotaryEmbedding,
    apply_rotary,
    default_sections,
    frequency_axes,
    get_position_ids,
)

LAYOUTS = ["videorope", "mrope", "mrope_interleaved", "rope1d"]


def _reference_1d_rope(x: torch.Tensor, positions: torch.Tensor, rotary_dim: int, theta: float) -> torch.Tensor:
    """Plain RoPE, written independently in float64: pairs (d, d + rotary_dim/2) rotated by pos·θ^(−2d/rotary_dim)."""
    x = x.double()
    half = rotary_dim // 2
    out = x.clone()
    for d in range(half):
        angle = positions.double() * theta ** (-2.0 * d / rotary_dim)  # (B, L)
        cos, sin = torch.cos(angle)[:, None, :], torch.sin(angle)[:, None, :]
        a, b = x[..., d], x[..., d + half]
        out[..., d] = a * cos - b * sin
        out[..., d + half] = b * cos + a * sin
    return out


def _video_positions() -> torch.Tensor:
    ids = [0] * 3 + [int(Modality.VIDEO)] * 24 + [0] * 2 + [int(Modality.IMAGE)] * 6 + [0] * 3
    return get_position_ids(
        torch.tensor([ids]), torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]]), temporal_spacing=2.0
    ).position_ids


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("head_dim", "rotary_dim"), [(32, 32), (32, 16), (128, 64)])
def test_text_only_equals_1d_rope_for_every_layout(layout, head_dim, rotary_dim):
    torch.manual_seed(0)
    batch, heads, length, theta = 2, 3, 17, 600000.0
    q, k = torch.randn(batch, heads, length, head_dim), torch.randn(batch, heads, length, head_dim)
    positions = get_position_ids(torch.zeros(batch, length, dtype=torch.long)).position_ids
    rope = RotaryEmbedding(rotary_dim, theta=theta, layout=layout)
    cos, sin = rope(q, positions)
    q_rot, k_rot = apply_rotary(q, k, cos, sin)
    one_d = positions[0]
    torch.testing.assert_close(q_rot.double(), _reference_1d_rope(q, one_d, rotary_dim, theta), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k_rot.double(), _reference_1d_rope(k, one_d, rotary_dim, theta), rtol=1e-5, atol=1e-5)
    # the passed-through part is untouched
    assert torch.equal(q_rot[..., rotary_dim:], q[..., rotary_dim:])
    # 1D position ids give the same tables as three equal rows
    cos_1d, sin_1d = rope(q, one_d)
    assert torch.equal(cos_1d, cos)
    assert torch.equal(sin_1d, sin)


def test_matches_transformers_llama_rope_on_text():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    torch.manual_seed(1)
    q, k = torch.randn(1, 2, 9, 64), torch.randn(1, 2, 9, 64)
    positions = torch.arange(9)[None]
    cos, sin = RotaryEmbedding(64, theta=10000.0, layout="videorope")(q, positions)
    assert all(
        torch.equal(a, b)
        for a, b in zip(apply_rotary(q, k, cos, sin), apply_rotary_pos_emb(q, k, cos, sin), strict=True)
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_shifting_all_positions_leaves_attention_scores_unchanged(layout):
    torch.manual_seed(2)
    positions = _video_positions()
    length = positions.shape[-1]
    q, k = torch.randn(1, 2, length, 64, dtype=torch.float64), torch.randn(1, 2, length, 64, dtype=torch.float64)
    rope = RotaryEmbedding(48, theta=10000.0, layout=layout).double()
    scores = []
    for shift in (0, 37, 1000):
        cos, sin = rope(q, positions + shift)
        q_rot, k_rot = apply_rotary(q, k, cos, sin)
        scores.append(q_rot @ k_rot.transpose(-1, -2))
    torch.testing.assert_close(scores[1], scores[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(scores[2], scores[0], rtol=1e-4, atol=1e-4)


def test_layouts_differ_on_video_tokens():
    positions = _video_positions()
    x = torch.zeros(1)
    tables = {layout: RotaryEmbedding(64, layout=layout)(x, positions)[0] for layout in LAYOUTS}
    for a in LAYOUTS:
        for b in LAYOUTS:
            if a != b:
                assert not torch.equal(tables[a], tables[b]), (a, b)


def test_videorope_gives_time_the_lowest_frequencies():
    n = 32
    axes = frequency_axes("videorope", n)
    n_t, n_h, n_w = default_sections(n)
    assert (n_t, n_h, n_w) == (8, 12, 12)
    assert axes[-n_t:].eq(0).all()
    assert axes[: n - n_t].ne(0).all()
    # h and w alternate over the higher frequencies
    assert axes[: n - n_t].tolist() == [1, 2] * n_h
    inv_freq = RotaryEmbedding(2 * n, layout="videorope").inv_freq
    assert inv_freq[axes == 0].max() < inv_freq[axes != 0].min()


def test_mrope_layout_matches_transformers_qwen2vl():
    from transformers import Qwen2VLTextConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLRotaryEmbedding

    config = Qwen2VLTextConfig(
        hidden_size=256, num_attention_heads=2, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}
    )
    config.rope_parameters["mrope_section"] = [16, 24, 24]
    theirs = Qwen2VLRotaryEmbedding(config)
    ours = RotaryEmbedding(128, theta=10000.0, layout="mrope")
    positions, x = _video_positions(), torch.zeros(1)
    for a, b in zip(ours(x, positions), theirs(x, positions), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_interleaved_layout_matches_transformers_qwen3vl():
    from transformers import Qwen3VLTextConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRotaryEmbedding

    config = Qwen3VLTextConfig(
        hidden_size=256,
        num_attention_heads=2,
        head_dim=128,
        rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20]},
    )
    theirs = Qwen3VLTextRotaryEmbedding(config)
    ours = RotaryEmbedding(128, theta=5000000.0, layout="mrope_interleaved")
    assert default_sections(64, "mrope_interleaved") == (24, 20, 20)
    positions, x = _video_positions(), torch.zeros(1)
    for a, b in zip(ours(x, positions), theirs(x, positions), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rotation_preserves_norms_and_half_precision_follows_input():
    torch.manual_seed(3)
    positions = _video_positions()
    q = torch.randn(1, 1, positions.shape[-1], 128)
    rope = RotaryEmbedding(64, theta=600000.0)
    cos, sin = rope(q, positions)
    q_rot, _ = apply_rotary(q, q, cos, sin)
    torch.testing.assert_close(q_rot.norm(dim=-1), q.norm(dim=-1))
    cos_bf16, _ = rope(q.bfloat16(), positions)
    assert cos_bf16.dtype == torch.bfloat16
    assert math.isclose(float((cos_bf16.float() - cos).abs().max()), 0.0, abs_tol=1e-2)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: RotaryEmbedding(63), r"rotary_dim must be a positive even number"),
        (lambda: RotaryEmbedding(64, theta=1.0), r"theta must be > 1"),
        (lambda: RotaryEmbedding(64, layout="xpos"), r"layout must be one of"),
        (lambda: frequency_axes("videorope", 32, (8, 10, 14)), r"videorope interleaves h and w"),
        (lambda: frequency_axes("mrope", 32, (8, 8, 8)), r"sections must be three non-negative counts summing to 32"),
        (lambda: frequency_axes("mrope_interleaved", 32, (2, 15, 15)), r"at most a third each"),
    ],
)
def test_bad_rotary_arguments_are_rejected(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_shapes_are_rejected():
    rope = RotaryEmbedding(16)
    with pytest.raises(ValueError, match=r"position_ids must have shape \(3, B, L\) or \(B, L\)"):
        rope(torch.zeros(1), torch.zeros(2, 1, 4, dtype=torch.long))
    cos, sin = rope(torch.zeros(1), torch.arange(4)[None])
    with pytest.raises(ValueError, match=r"rotary_dim 16 exceeds head_dim"):
        apply_rotary(torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 4, 8), cos, sin)
