"""VideoRoPE in a few lines: positions for a text + video + text prompt, rotary applied to q and k, and decoding.

Run: python packages/ming-videorope/examples/quickstart.py
"""

import torch

from ming_videorope import Modality, RotaryEmbedding, apply_rotary, get_decode_position_ids, get_position_ids

# 5 text tokens, one video of T=4 frames × 3×4 tokens, 2 text tokens; a second, shorter prompt left-padded.
first = [Modality.TEXT] * 5 + [Modality.VIDEO] * 48 + [Modality.TEXT] * 2
second = [Modality.TEXT] * 3 + [Modality.IMAGE] * 4 + [Modality.TEXT] * 2
length = len(first)
modality = torch.zeros(2, length, dtype=torch.long)
modality[0] = torch.tensor(first)
modality[1, length - len(second) :] = torch.tensor(second)
mask = (torch.arange(length) >= torch.tensor([[0], [length - len(second)]])).long()

result = get_position_ids(
    modality,
    image_grid_thw=torch.tensor([[1, 2, 2]]),
    video_grid_thw=torch.tensor([[4, 3, 4]]),
    attention_mask=mask,
    temporal_spacing=2.0,  # δ: frames sit 2 positions apart
)
t, h, w = result.position_ids[:, 0]
print("frame starts t:", t[5:53:12].tolist(), "(δ = 2)")
print("first frame h:", h[5:17].tolist())
print("first frame w:", w[5:17].tolist())
print("text after the video resumes at", t[53].item(), "= 5 + 2·(4−1) + 1")
assert t[53].item() == 12

rope = RotaryEmbedding(rotary_dim=64, theta=600000.0, layout="videorope")
q = k = torch.randn(2, 8, length, 128)
cos, sin = rope(q, result.position_ids)
q_rot, k_rot = apply_rotary(q, k, cos, sin)
print("rotated the first 64 of 128 dims; the rest unchanged:", torch.equal(q_rot[..., 64:], q[..., 64:]))

next_positions = get_decode_position_ids(result.rope_deltas, torch.arange(length, length + 3))
print("next three decoding positions per sample:", next_positions[0].tolist())
