"""The MMDiT: masks mean absence, references are told apart, save → load is bit-identical."""

import pytest
import torch

from ming_imagegen import MingDiTTransformer2DModel


def _model() -> MingDiTTransformer2DModel:
    torch.manual_seed(0)
    model = MingDiTTransformer2DModel(**MingDiTTransformer2DModel.tiny_config()).eval()
    # A fresh model's null condition is zero; give it a value so dropping the condition is a visible change.
    model.null_condition.data.normal_()
    return model


def _inputs(batch=2, refs=2):
    g = torch.Generator().manual_seed(1)
    return {
        "hidden_states": torch.randn(batch, 12, 8, 8, generator=g),
        "timestep": torch.tensor([700.0, 250.0][:batch]),
        "condition": torch.randn(batch, 5, 64, generator=g),
        "references": torch.randn(batch, refs, 12, 8, 8, generator=g),
    }


@torch.no_grad()
def test_masked_condition_tokens_are_as_if_absent():
    model, x = _model(), _inputs()
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    garbage = x["condition"].clone()
    garbage[0, 3:] = 1e3
    masked = model(**(x | {"condition": garbage}), condition_mask=mask).sample
    short = model(
        **(
            x
            | {
                "condition": x["condition"][:1, :3],
                "references": x["references"][:1],
                "hidden_states": x["hidden_states"][:1],
                "timestep": x["timestep"][:1],
            }
        )
    ).sample
    torch.testing.assert_close(masked[0], short[0], atol=1e-5, rtol=0)


@torch.no_grad()
def test_dropped_reference_is_as_if_absent():
    model, x = _model(), _inputs()
    with_mask = model(**x, reference_mask=torch.tensor([[True, False], [False, False]])).sample
    only_first = model(**(x | {"references": x["references"][:, :1]})).sample
    none = model(**(x | {"references": None})).sample
    torch.testing.assert_close(with_mask[0], only_first[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(with_mask[1], none[1], atol=1e-5, rtol=0)
    assert (with_mask[0] - none[0]).abs().max() > 1e-3  # and a kept reference does matter


@torch.no_grad()
def test_drop_condition_uses_the_null_token_only():
    model, x = _model(), _inputs()
    dropped = model(**x, drop_condition=torch.tensor([True, False])).sample
    # Every token of the row becomes the null token, which replaces the typed token (no type embedding on it).
    scale = model.config.condition_dim**0.5  # the DiT scales unit tokens to unit RMS before adding the type
    null = ((model.null_condition - model.condition_type_embed.weight[0]) / scale).view(1, 1, -1)
    explicit = model(**(x | {"condition": null.expand(2, 5, -1)})).sample
    torch.testing.assert_close(dropped[0], explicit[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(dropped[1], model(**x).sample[1], atol=1e-5, rtol=0)


@torch.no_grad()
def test_references_are_told_apart_by_concept_vectors_and_frames():
    model, x = _model(), _inputs()
    swapped = x | {"references": x["references"].flip(1)}
    assert (model(**x).sample - model(**swapped).sample).abs().max() > 1e-3
    # With equal concept vectors the rotary frame index alone still tells them apart.
    model.concept_embed.weight.data[:] = model.concept_embed.weight.data[0]
    assert (model(**x).sample - model(**swapped).sample).abs().max() > 1e-3


@torch.no_grad()
def test_output_shape_follows_any_patch_multiple_size():
    model = _model()
    x = torch.randn(1, 12, 6, 10)
    out = model(x, torch.tensor([500.0]), torch.randn(1, 3, 64)).sample
    assert out.shape == x.shape


def test_gradient_checkpointing_gives_the_same_gradients():
    x = _inputs()
    grads = []
    for checkpointing in (False, True):
        model = _model().train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(**x).sample.square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_save_load_is_bit_identical(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = MingDiTTransformer2DModel.from_pretrained(tmp_path).eval()
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert torch.equal(model(**_inputs()).sample, loaded(**_inputs()).sample)


@torch.no_grad()
def test_sample_prediction_returns_the_velocity_to_its_clean_estimate():
    # The same weights read as a clean-image head: its output x̂₀ becomes the velocity (x_σ − x̂₀) / max(σ, 0.05).
    velocity_model = _model()
    sample_model = MingDiTTransformer2DModel(**{**velocity_model.config, "prediction_type": "sample"}).eval()
    sample_model.load_state_dict(velocity_model.state_dict())
    x = _inputs(batch=2, refs=0)
    x.pop("references")
    for sigmas in ([0.7, 0.25], [1.0, 0.01]):
        x["timestep"] = torch.tensor(sigmas) * 1000
        clean = velocity_model(**x).sample
        floored = torch.tensor(sigmas).clamp(min=0.05).view(-1, 1, 1, 1)
        torch.testing.assert_close(sample_model(**x).sample, (x["hidden_states"] - clean) / floored)
    with pytest.raises(ValueError, match="prediction_type"):
        MingDiTTransformer2DModel(**{**MingDiTTransformer2DModel.tiny_config(), "prediction_type": "epsilon"})
