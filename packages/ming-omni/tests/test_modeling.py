import numpy as np
import pytest
import torch
from omni_helpers import noise_image, short_and_long, speech_like

from ming_moe import SparseMoeBlock
from ming_videorope import Modality, get_position_ids


def _multimodal(processor, seed: int = 0):
    video = np.stack([noise_image(56, 56, seed=seed + i) for i in range(6)])
    return processor(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look at"},
                    {"type": "image", "image": noise_image(84, 56, seed=seed)},
                    {"type": "video", "frames": video, "fps": 4.0},
                    {"type": "audio", "audio": speech_like(0.6, seed=seed)},
                    {"type": "text", "text": "and describe it."},
                ],
            }
        ]
    )


def test_encoder_outputs_land_at_their_placeholders(model, processor):
    inputs = _multimodal(processor)
    with torch.no_grad():
        embeds = model.embed(
            **{k: v for k, v in inputs.model_kwargs().items() if k not in ("attention_mask", "temporal_spacing")}
        )
        image = model.image_features(inputs.pixel_values, inputs.image_grid_thw)
        video = model.image_features(inputs.pixel_values_videos, inputs.video_grid_thw)
        audio = model.audio_features(inputs.audio)
        text = model.get_input_embeddings()(inputs.input_ids)
    modality = inputs.modality_ids[0]
    assert torch.equal(embeds[0, modality == Modality.IMAGE], image)
    assert torch.equal(embeds[0, modality == Modality.VIDEO], video)
    assert torch.equal(embeds[0, modality == Modality.AUDIO], audio)
    assert torch.equal(embeds[0, modality == Modality.TEXT], text[0, modality == Modality.TEXT])
    # both projectors end with an L2 normalisation
    for features in (image, video, audio):
        assert torch.allclose(features.norm(dim=-1), torch.ones(features.shape[0]), atol=1e-5)


def test_modality_mask_routes_image_video_and_audio_tokens_to_their_routers(model, processor):
    inputs = _multimodal(processor)
    blocks = [m for m in model.model.modules() if isinstance(m, SparseMoeBlock)]
    model.train()
    try:
        for block in blocks:
            block.expert_load.zero_()
        with torch.no_grad():
            model(**inputs.model_kwargs())
    finally:
        model.eval()
    modality = inputs.modality_ids[0]
    top_k = model.config.llm_config.num_experts_per_tok
    expected = [
        int((modality == Modality.TEXT).sum()),
        int(((modality == Modality.IMAGE) | (modality == Modality.VIDEO)).sum()),
        int((modality == Modality.AUDIO).sum()),
    ]
    assert all(n > 0 for n in expected)
    for block in blocks:
        assert block.expert_load.sum(dim=1).tolist() == [float(n * top_k) for n in expected]


def test_llm_positions_are_videorope_over_merged_grids(model, processor):
    inputs = _multimodal(processor)
    with torch.no_grad():
        model(**inputs.model_kwargs())
    merged = lambda grid: torch.stack([grid[:, 0], grid[:, 1] // 2, grid[:, 2] // 2], 1)  # noqa: E731
    reference = get_position_ids(
        inputs.modality_ids,
        merged(inputs.image_grid_thw),
        merged(inputs.video_grid_thw),
        temporal_spacing=inputs.temporal_spacing,
    )
    assert torch.equal(model.model.model.rope_deltas, reference.rope_deltas)
    assert reference.rope_deltas[0, 0] < 0  # the grids compress the positions: not 1D RoPE


def test_text_only_prompt_matches_the_llm_alone(model, processor):
    inputs = processor([{"role": "user", "content": "a red circle"}])
    with torch.no_grad():
        composed = model(**inputs.model_kwargs()).logits
        alone = model.model(inputs.input_ids, attention_mask=inputs.attention_mask).logits
    assert torch.equal(composed, alone)


def test_generate_with_cache_equals_full_recompute(model, processor):
    inputs = _multimodal(processor, seed=1)
    settings = {"max_new_tokens": 12, "do_sample": False, "eos_token_id": None, "pad_token_id": processor.pad_token_id}
    with torch.no_grad():
        cached = model.generate(**inputs.model_kwargs(), use_cache=True, **settings)
        recomputed = model.generate(**inputs.model_kwargs(), use_cache=False, **settings)
    assert cached.shape[1] == inputs.input_ids.shape[1] + 12
    assert torch.equal(cached, recomputed)


def test_greedy_generation_picks_the_argmax_of_a_full_forward(model, processor):
    inputs = _multimodal(processor, seed=2)
    with torch.no_grad():
        generated = model.generate(
            **inputs.model_kwargs(), max_new_tokens=3, do_sample=False, eos_token_id=None, pad_token_id=0
        )
        kwargs = inputs.model_kwargs()
        for step in range(3):
            length = inputs.input_ids.shape[1] + step
            kwargs["input_ids"] = generated[:, :length]
            kwargs["attention_mask"] = torch.ones_like(generated[:, :length])
            kwargs["modality_ids"] = torch.nn.functional.pad(inputs.modality_ids, (0, step))
            logits = model(**kwargs).logits
            assert logits[0, -1].argmax() == generated[0, length]


def test_padded_batch_equals_one_by_one(model, processor):
    short, long = short_and_long()
    batch = processor([short, long])
    with torch.no_grad():
        both = model(**batch.model_kwargs()).logits[:, -1]
        for row, conversation in enumerate((short, long)):
            alone = model(**processor(conversation).model_kwargs()).logits[0, -1]
            assert torch.allclose(both[row], alone, atol=1e-5)


def test_placeholder_count_mismatch_is_a_clear_error(model, processor):
    inputs = _multimodal(processor)
    kwargs = inputs.model_kwargs()
    kwargs["audio"] = [speech_like(1.2)]
    with pytest.raises(ValueError, match="audio embeddings but modality_ids marks"):
        model(**kwargs)
    kwargs = inputs.model_kwargs()
    del kwargs["pixel_values"]
    with pytest.raises(ValueError, match="image tokens but pixel_values is None"):
        model(**kwargs)


def test_training_loss_backpropagates_into_every_encoder(model, processor):
    inputs = _multimodal(processor)
    labels = inputs.input_ids.masked_fill(inputs.modality_ids != Modality.TEXT, -100)
    model.zero_grad()
    model.train()
    try:
        loss = model(**inputs.model_kwargs(), labels=labels).loss
        loss.backward()
    finally:
        model.eval()
    assert torch.isfinite(loss)
    for part in (model.vision, model.linear_proj, model.audio):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    model.zero_grad(set_to_none=True)
