"""The model: teacher-forced loss, padding, history windows, checkpoints, attention backends, input errors."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from ming_tts_head import GenerationOptions, SpeechRequest, TTSHeadConfig, TTSHeadModel, history_windows, synthesize


def _batch(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    text_ids = torch.randint(0, config.vocab_size, (2, 6), generator=g)
    latents = torch.randn(2, 19, config.latent_dim, generator=g)
    return text_ids, latents, torch.tensor([6, 3]), torch.tensor([19, 10])


def _loss(model, *batch, seed=0):
    return model(*batch, generator=torch.Generator().manual_seed(seed))


def test_loss_is_flow_plus_weighted_stop_and_trains_every_part(tiny_config):
    torch.manual_seed(0)
    model = TTSHeadModel(TTSHeadConfig.tiny(stop_loss_weight=0.5)).train()
    out = _loss(model, *_batch(tiny_config))
    assert out.loss.item() == pytest.approx(out.flow_loss.item() + 0.5 * out.stop_loss.item(), rel=1e-6)
    assert 0 < out.stop_loss.item() < 5
    assert out.flow_loss.item() > 0.5
    out.loss.backward()
    for part in (model.backbone, model.aggregator, model.flow_head, model.stop_head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert model.speech_start.grad.abs().sum() > 0


def test_the_optional_regression_head_regresses_each_patch_from_the_state_that_conditions_it(tiny_config):
    torch.manual_seed(0)
    assert TTSHeadModel(tiny_config).regression_head is None  # weight 0: the paper's model, no extra head
    model = TTSHeadModel(TTSHeadConfig.tiny(regression_loss_weight=2.0)).train()
    g = torch.Generator().manual_seed(1)
    text_ids, latents = torch.randint(0, 256, (1, 5), generator=g), torch.randn(1, 12, 64, generator=g)
    states = []
    hook = model.backbone.register_forward_hook(lambda m, args, out: states.append(out.last_hidden_state))
    out = _loss(model, text_ids, latents)
    hook.remove()
    # the state at the separator (index 5) predicts patch 0, the state at patch k predicts patch k + 1
    predicted = model.regression_head(states[0][0, 5:8]).view(3, 4, 64)
    expected = torch.nn.functional.mse_loss(predicted, latents.view(3, 4, 64))
    assert out.regression_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(
        out.flow_loss.item() + out.stop_loss.item() + 2.0 * out.regression_loss.item(), rel=1e-6
    )
    out.regression_loss.backward()
    assert model.backbone.embed_tokens.weight.grad.abs().sum() > 0
    assert model.flow_head.output_proj.weight.grad is None  # it teaches the backbone, not the flow head


def test_padding_content_does_not_change_the_loss(tiny_model, tiny_config):
    text_ids, latents, text_lengths, latent_lengths = _batch(tiny_config)
    base = _loss(tiny_model, text_ids, latents, text_lengths, latent_lengths)
    text_ids[1, 3:] = 7
    latents[1, 10:] = 5.0
    moved = _loss(tiny_model, text_ids, latents, text_lengths, latent_lengths)
    assert torch.allclose(base.loss, moved.loss, atol=1e-6)
    latents[1, 10:] = float("nan")
    latents[1, 12] = float("inf")
    assert torch.allclose(base.loss, _loss(tiny_model, text_ids, latents, text_lengths, latent_lengths).loss, atol=1e-6)
    latents[1, 9] += 1.0  # a real frame
    assert not torch.allclose(
        base.flow_loss, _loss(tiny_model, text_ids, latents, text_lengths, latent_lengths).flow_loss
    )


def test_eval_has_no_condition_dropout_and_training_uses_the_null_condition(tiny_config):
    torch.manual_seed(0)
    model = TTSHeadModel(TTSHeadConfig.tiny(condition_dropout=0.5))
    batch = _batch(tiny_config)
    used = []
    hook = model.flow_head.register_forward_hook(lambda m, args, out: used.append(args[2].clone()))
    model.eval()
    _loss(model, *batch)
    assert not (used[-1] == model.flow_head.null_condition).all(-1).any()
    model.train()
    _loss(model, *batch)
    dropped = (used[-1] == model.flow_head.null_condition).all(-1)
    hook.remove()
    assert 0 < int(dropped.sum()) < dropped.numel()


def _flow_head_inputs(model, call):
    """Run ``call()`` and return the (condition, history, history mask) of every flow-head forward."""
    seen = []
    hook = model.flow_head.register_forward_hook(lambda m, args, out: seen.append(args[2:5]))
    with torch.no_grad():
        call()
    hook.remove()
    return seen


def test_a_patch_conditions_only_the_patches_after_it(tiny_model, tiny_config):
    text_ids, latents = torch.tensor([[3, 4, 5]]), torch.randn(1, 20, 64, generator=torch.Generator().manual_seed(2))
    ((base, _, _),) = _flow_head_inputs(tiny_model, lambda: _loss(tiny_model, text_ids, latents))
    for k in range(5):
        changed = latents.clone()
        changed[:, 4 * k : 4 * k + 4] += 1.0
        ((moved, _, _),) = _flow_head_inputs(tiny_model, lambda changed=changed: _loss(tiny_model, text_ids, changed))
        assert torch.allclose(moved[: k + 1], base[: k + 1], atol=1e-6)  # condition of patch j: state before it
        assert all(not torch.allclose(moved[j], base[j], atol=1e-4) for j in range(k + 1, 5))


def test_training_builds_the_flow_inputs_that_generation_builds_after_a_voice_prompt(tiny_model, tiny_config):
    text = [3, 4, 5]
    latents = torch.randn(1, 20, 64, generator=torch.Generator().manual_seed(2))
    ((conditions, histories, masks),) = _flow_head_inputs(
        tiny_model, lambda: _loss(tiny_model, torch.tensor([text]), latents)
    )
    options = GenerationOptions(min_patches=1, max_patches=1, cfg_scale=1.0)  # conditional branch only
    for k in range(5):
        request = SpeechRequest(text_ids=text, prompt_latents=latents[0, : 4 * k]) if k else text
        condition, history, mask = _flow_head_inputs(
            tiny_model, lambda r=request: synthesize(tiny_model, [r], options)
        )[0]
        assert torch.allclose(condition[0], conditions[k], atol=1e-5)
        assert torch.equal(mask[0], masks[k])
        assert torch.equal(history[0], histories[k])  # missing frames are zeros in both


def test_history_windows_match_a_loop():
    frames = torch.randn(2, 12, 3)
    windows, present = history_windows(frames, patch_size=4, history_frames=6)
    assert windows.shape == (2, 3, 6, 3)
    for k in range(3):
        for j in range(6):
            index = 4 * k - 6 + j
            assert bool(present[k, j]) == (index >= 0)
            expected = frames[:, index] if index >= 0 else torch.zeros(2, 3)
            assert torch.equal(windows[:, k, j], expected)


def test_save_load_is_bit_identical(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    loaded = TTSHeadModel.from_pretrained(tmp_path).eval()
    original, restored = tiny_model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    saved, read = tiny_model.config.to_dict(), loaded.config.to_dict()
    assert {k: v for k, v in read.items() if k != "_name_or_path"} == {
        k: v for k, v in saved.items() if k != "_name_or_path"
    }
    batch = _batch(tiny_model.config)
    assert torch.equal(_loss(tiny_model, *batch).loss, _loss(loaded, *batch).loss)


def test_loading_is_strict(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["stop_head.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"stop_head\.weight"):
        TTSHeadModel.from_pretrained(tmp_path)


def test_eager_and_sdpa_agree(tiny_model):
    batch = _batch(tiny_model.config)
    sdpa = _loss(tiny_model, *batch)
    tiny_model.set_attn_implementation("eager")
    assert tiny_model.flow_head.transformer.config._attn_implementation == "eager"
    assert tiny_model.aggregator.transformer.config._attn_implementation == "eager"
    eager = _loss(tiny_model, *batch)
    assert torch.allclose(sdpa.loss, eager.loss, atol=1e-5)


def test_bad_inputs_name_the_argument(tiny_model, tiny_config):
    text_ids, latents, text_lengths, _latent_lengths = _batch(tiny_config)
    with pytest.raises(ValueError, match="latents"):
        tiny_model(text_ids, latents[..., :10])
    with pytest.raises(ValueError, match="text_lengths"):
        tiny_model(text_ids, latents, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="latent_lengths"):
        tiny_model(text_ids, latents, text_lengths, torch.tensor([20, 3]))
    with pytest.raises(ValueError, match="text_ids"):
        tiny_model(text_ids + tiny_config.vocab_size, latents)
