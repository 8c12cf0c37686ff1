"""The causal LM: generation with a cache, padding and packing, multimodal positions, checkpoints, bad input."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM
from ming_videorope import Modality, get_position_ids


def _greedy_by_recompute(model, ids, steps):
    for _ in range(steps):
        logits = model(ids, use_cache=False).logits
        ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
    return ids


def test_generate_with_cache_equals_greedy_full_recompute(tiny_model):
    prompt = torch.randint(0, 512, (2, 7))
    generated = tiny_model.generate(prompt, max_new_tokens=8, do_sample=False, min_new_tokens=8)
    assert torch.equal(generated, _greedy_by_recompute(tiny_model, prompt, 8))


def test_left_padded_batch_equals_samples_one_by_one(tiny_model):
    torch.manual_seed(1)
    a, b = torch.randint(0, 512, (1, 9)), torch.randint(0, 512, (1, 5))
    ids = torch.cat([a, torch.cat([torch.zeros(1, 4, dtype=torch.long), b], 1)])
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    batched = tiny_model(ids, attention_mask=mask).logits
    torch.testing.assert_close(batched[0], tiny_model(a).logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[1, 4:], tiny_model(b).logits[0], atol=1e-5, rtol=1e-5)
    generated = tiny_model.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False, min_new_tokens=5)
    assert torch.equal(
        generated[1, 9:], tiny_model.generate(b, max_new_tokens=5, do_sample=False, min_new_tokens=5)[0, 5:]
    )


def test_packed_row_equals_samples_one_by_one(tiny_model):
    torch.manual_seed(2)
    samples = [torch.randint(0, 512, (1, n)) for n in (6, 4, 7)]
    modalities = [
        torch.tensor([[0, 0, 1, 1, 1, 1]]),
        torch.tensor([[3, 3, 3, 0]]),
        torch.tensor([[0, 2, 2, 2, 2, 0, 0]]),
    ]
    grids = {"image": torch.tensor([[1, 2, 2]]), "video": torch.tensor([[2, 1, 2]])}
    singles = [
        tiny_model(samples[0], modality_ids=modalities[0], image_grid_thw=grids["image"]).logits,
        tiny_model(samples[1], modality_ids=modalities[1]).logits,
        tiny_model(samples[2], modality_ids=modalities[2], video_grid_thw=grids["video"]).logits,
    ]
    packed = tiny_model(
        torch.cat(samples, 1),
        modality_ids=torch.cat(modalities, 1),
        sequence_ids=torch.tensor([[0] * 6 + [1] * 4 + [2] * 7]),
        image_grid_thw=grids["image"],
        video_grid_thw=grids["video"],
    ).logits
    torch.testing.assert_close(packed, torch.cat(singles, 1), atol=1e-5, rtol=1e-5)


def test_positions_built_from_modalities_equal_explicit_videorope_positions(tiny_model):
    ids = torch.randint(0, 512, (1, 3 + 12 + 2))
    modality = torch.tensor([[0] * 3 + [int(Modality.VIDEO)] * 12 + [0] * 2])
    grid = torch.tensor([[3, 2, 2]])
    implicit = tiny_model(ids, modality_ids=modality, video_grid_thw=grid).logits
    positions = get_position_ids(modality, video_grid_thw=grid).position_ids
    explicit = tiny_model(ids, modality_ids=modality, position_ids=positions).logits
    torch.testing.assert_close(implicit, explicit)
    one_d = tiny_model(ids, modality_ids=modality, position_ids=torch.arange(17)[None]).logits
    assert not torch.allclose(implicit, one_d)  # the video layout matters


def test_text_positions_as_three_rows_equal_one_row(tiny_model):
    ids = torch.randint(0, 512, (2, 8))
    rows = torch.arange(8)[None].expand(2, -1)
    torch.testing.assert_close(
        tiny_model(ids, position_ids=rows).logits, tiny_model(ids, position_ids=rows[None].expand(3, -1, -1)).logits
    )


def test_save_and_load_give_identical_logits_in_the_original_layout(tiny_model, tmp_path):
    tiny_model.model.layers[2].mlp.image_gate.expert_bias.copy_(torch.linspace(-1, 1, 16))
    tiny_model.save_pretrained(tmp_path)
    keys = load_file(tmp_path / "model.safetensors").keys()
    assert "model.layers.1.mlp.experts.3.gate_proj.weight" in keys
    assert "model.layers.1.mlp.experts.gate_up_proj" not in keys
    assert "model.layers.2.mlp.image_gate.expert_bias" in keys
    assert "model.word_embeddings.weight" in keys
    assert "lm_head.weight" in keys
    loaded = BailingMoeV2ForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 512, (2, 11))
    modality = torch.tensor([[0, 1, 1, 1, 1, 0, 3, 3, 0, 0, 0]] * 2)
    kwargs = {"modality_ids": modality, "image_grid_thw": torch.tensor([[1, 2, 2]] * 2)}
    assert torch.equal(loaded(ids, **kwargs).logits, tiny_model(ids, **kwargs).logits)


def test_original_layout_written_by_hand_loads_to_the_same_model(tiny_model, tmp_path):
    """Write the original per-expert layout independently of transformers' converter and load it."""
    state = {}
    for name, tensor in tiny_model.state_dict().items():
        if name.endswith("experts.gate_up_proj"):
            prefix = name[: -len("gate_up_proj")]
            for j, stacked in enumerate(tensor):
                gate, up = stacked.chunk(2, dim=0)
                state[f"{prefix}{j}.gate_proj.weight"] = gate.clone()
                state[f"{prefix}{j}.up_proj.weight"] = up.clone()
        elif name.endswith("experts.down_proj"):
            prefix = name[: -len("down_proj")]
            for j, expert in enumerate(tensor):
                state[f"{prefix}{j}.down_proj.weight"] = expert.clone()
        else:
            state[name] = tensor.clone()
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text(json.dumps(tiny_model.config.to_dict()))
    loaded = BailingMoeV2ForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 512, (1, 10))
    assert torch.equal(loaded(ids).logits, tiny_model(ids).logits)

    del state["model.layers.3.mlp.experts.5.up_proj.weight"]
    state["model.layers.0.extra.weight"] = torch.zeros(2)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    missing, unexpected = r"model.layers.3.mlp.experts.5.up_proj.weight", r"model.layers.0.extra.weight"
    with pytest.raises(ValueError, match=rf"1 missing \[{missing}\], 1 unexpected \[{unexpected}\]"):
        BailingMoeV2ForCausalLM.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modality_ids": torch.zeros(2, 5, dtype=torch.long)}, r"modality_ids must be a \(B, L\) = \(2, 6\)"),
        ({"modality_ids": torch.full((2, 6), 9)}, r"modality_ids holds unknown values \[9\]"),
        ({"position_ids": torch.zeros(2, 3, 2, 6, dtype=torch.long)}, r"position_ids must be \(3, B, L\) or \(B, L\)"),
        ({"position_ids": torch.zeros(4, 2, 6, dtype=torch.long)}, r"position_ids must be \(3, B, L\) or \(B, L\)"),
        ({"sequence_ids": torch.zeros(2, 6)}, r"sequence_ids must be an integer tensor"),
    ],
)
def test_bad_inputs_are_rejected_with_the_field_named(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_model(torch.randint(0, 512, (2, 6)), **kwargs)


def test_bf16_forward_keeps_router_math_in_fp32(tiny_model):
    model = tiny_model.to(torch.bfloat16)
    ids = torch.randint(0, 512, (1, 6))
    out = model(ids, output_router_logits=True)
    assert out.logits.dtype == torch.bfloat16
    assert all(logits.dtype == torch.float32 for logits in out.router_logits)
    assert len(out.router_logits) == BailingMoeV2Config.tiny().num_hidden_layers - 1


def test_eager_and_sdpa_attention_agree_on_a_padded_batch(tiny_model):
    ids = torch.randint(0, 512, (2, 9))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    results = {}
    for implementation in ("eager", "sdpa"):
        tiny_model.set_attn_implementation(implementation)
        results[implementation] = tiny_model(ids, attention_mask=mask).logits
    torch.testing.assert_close(results["sdpa"][mask.bool()], results["eager"][mask.bool()], atol=1e-5, rtol=1e-5)


def test_generate_from_a_video_prompt_continues_the_videorope_positions(tiny_model):
    prompt = torch.randint(0, 512, (1, 3 + 12 + 2))
    modality = torch.tensor([[0] * 3 + [int(Modality.VIDEO)] * 12 + [0] * 2])
    grid = torch.tensor([[3, 2, 2]])
    generated = tiny_model.generate(
        prompt, modality_ids=modality, video_grid_thw=grid, max_new_tokens=6, min_new_tokens=6, do_sample=False
    )
    ids = prompt
    for _ in range(6):
        full_modality = torch.cat([modality, torch.zeros(1, ids.shape[1] - modality.shape[1], dtype=torch.long)], 1)
        logits = tiny_model(ids, modality_ids=full_modality, video_grid_thw=grid, use_cache=False).logits
        ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(generated, ids)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model):
    ids = torch.randint(0, 512, (2, 10))
    tiny_model.train()
    grads = []
    for checkpointing in (False, True):
        if checkpointing:
            tiny_model.activation_checkpointing_enable()
        tiny_model.zero_grad()
        tiny_model(ids, labels=ids, use_cache=False).loss.backward()
        grads.append({n: p.grad.clone() for n, p in tiny_model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5, msg=name)
