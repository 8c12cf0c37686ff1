"""Flow-matching training: loss goes down on real shape images, the LLM stays frozen, resume is exact."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ming_imagegen import (
    EditingSample,
    GenerationSample,
    TrainingRecipe,
    flow_matching_pair,
    identity_loss,
    predicted_clean,
    pretrain_language_model,
    tiny_language_model,
    tiny_pipeline,
    train_image_generator,
)
from ming_testdata import SceneOptions, make_scenes


@pytest.fixture(scope="module")
def samples():
    scenes = make_scenes(SceneOptions(n=24, width=32, height=32, max_objects=2, seed=4))
    data = [GenerationSample(prompt=s.caption, image=s.image) for s in scenes[:18]]
    # Editing triples: the scene with its background swapped to black, asked for in words.
    for s in scenes[18:]:
        shapes = np.any([o.mask for o in s.objects], axis=0)[..., None]
        target = Image.fromarray(np.where(shapes, np.asarray(s.image), 0).astype(np.uint8))
        data.append(EditingSample(references=s.image, instruction="make the background black", target=target))
    return data


def _fixed_loss(pipe, samples) -> float:
    """Flow-matching loss over all samples at fixed σ and noise (an evaluation independent of the trainer's draws)."""
    g = torch.Generator().manual_seed(123)
    total = 0.0
    with torch.no_grad():
        for sample in samples:
            image = sample.image if isinstance(sample, GenerationSample) else sample.target
            prompt = sample.prompt if isinstance(sample, GenerationSample) else sample.instruction
            refs = None if isinstance(sample, GenerationSample) else pipe.encode_images(sample.references)[None]
            x0 = pipe.encode_images([image])
            condition = pipe.encode_condition([prompt])
            for sigma in (0.2, 0.5, 0.8):
                x_t, v = flow_matching_pair(x0, torch.randn(x0.shape, generator=g), torch.tensor([sigma]))
                pred = pipe.transformer(x_t, torch.tensor([sigma * 1000]), *condition.astuple(), references=refs).sample
                total += torch.mean((pred - v) ** 2).item()
    return total / (3 * len(samples))


def _trained(pipe) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n in ("transformer", "conditioner", "glyph_mapper", "identity_encoder")
        for k, v in getattr(pipe, n).state_dict().items()
    }


def test_flow_matching_pair_interpolates_data_and_noise():
    x0, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    x_t, v = flow_matching_pair(x0, noise, torch.tensor([0.0, 1.0, 0.25]))
    assert torch.equal(x_t[0], x0[0])
    assert torch.equal(x_t[1], noise[1])
    torch.testing.assert_close(x_t[2], 0.75 * x0[2] + 0.25 * noise[2])
    torch.testing.assert_close(x_t + (0.0 - torch.tensor([0.0, 1.0, 0.25]).view(-1, 1, 1, 1)) * v, x0)


@pytest.mark.slow
def test_training_lowers_the_loss_and_keeps_the_llm_frozen(language_model, samples, tmp_path):
    lm, tokenizer = language_model
    pipe = tiny_pipeline(lm, tokenizer, seed=0)
    lm_before = {k: v.clone() for k, v in lm.state_dict().items()}
    queries_before = pipe.conditioner.queries.detach().clone()
    before = _fixed_loss(pipe, samples)
    recipe = TrainingRecipe(
        output_dir=tmp_path,
        steps=60,
        batch_size=8,
        learning_rate=1e-3,
        checkpoint_every=30,
        sample_prompts=[samples[0].prompt],
        sample_edits=[samples[-1]],
        sample_steps=3,
        progress=False,
    )
    log = train_image_generator(pipe, samples, recipe)
    after = _fixed_loss(pipe, samples)
    assert len(log.losses) == 60
    assert after < 0.7 * before, (before, after)
    assert all(torch.equal(v, lm.state_dict()[k]) for k, v in lm_before.items())
    assert not torch.equal(queries_before, pipe.conditioner.queries)  # the queries learn through the frozen LM
    assert (tmp_path / "samples" / "step-000060.png").exists()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-000030", "checkpoint-000060"]
    assert (tmp_path / "pipeline" / "model_index.json").exists()


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_resume_continues_the_identical_run(language_model, samples, tmp_path, ema_decay):
    lm, tokenizer = language_model

    def recipe(out, steps):
        return TrainingRecipe(
            output_dir=out,
            steps=steps,
            batch_size=4,
            checkpoint_every=2,
            ema_decay=ema_decay,
            progress=False,
            save_pipeline=False,
        )

    straight = tiny_pipeline(lm, tokenizer, seed=0)
    full = train_image_generator(straight, samples, recipe(tmp_path / "a", 4))

    interrupted = tiny_pipeline(lm, tokenizer, seed=0)
    train_image_generator(interrupted, samples, recipe(tmp_path / "b", 2))
    resumed_pipe = tiny_pipeline(lm, tokenizer, seed=1)  # a fresh process: different weights until resumed
    resumed = train_image_generator(resumed_pipe, samples, recipe(tmp_path / "b", 4))

    assert resumed.resumed_from == 2
    assert resumed.losses == full.losses
    a, b = _trained(straight), _trained(resumed_pipe)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_recipe(language_model, samples, tmp_path):
    lm, tokenizer = language_model
    base = {"output_dir": tmp_path, "steps": 1, "batch_size": 2, "progress": False, "save_pipeline": False}
    train_image_generator(tiny_pipeline(lm, tokenizer), samples, TrainingRecipe(**base))
    with pytest.raises(ValueError, match="learning_rate"):
        train_image_generator(tiny_pipeline(lm, tokenizer), samples, TrainingRecipe(**base, learning_rate=1e-2))


def test_bad_samples_are_explained(language_model, samples, tmp_path):
    lm, tokenizer = language_model
    recipe = TrainingRecipe(output_dir=tmp_path, steps=1, progress=False)
    mixed = [*samples[:2], GenerationSample(prompt="x", image=Image.new("RGB", (64, 64)))]
    with pytest.raises(ValueError, match="one size"):
        train_image_generator(tiny_pipeline(lm, tokenizer), mixed, recipe)
    with pytest.raises(ValueError, match="empty"):
        train_image_generator(tiny_pipeline(lm, tokenizer), [], recipe)
    with pytest.raises(ValueError, match="prompt"):
        GenerationSample(prompt="", image=samples[0].image)


def test_identity_samples_train_the_identity_encoder(language_model, samples, tmp_path):
    lm, tokenizer = language_model
    pipe = tiny_pipeline(lm, tokenizer, seed=0)
    before = {k: v.clone() for k, v in pipe.identity_encoder.state_dict().items()}
    crop = samples[0].image.crop((0, 0, 16, 16))
    mixed = [GenerationSample(prompt="the same subject", image=samples[1].image, identity=crop), *samples[:3]]
    recipe = TrainingRecipe(output_dir=tmp_path, steps=2, batch_size=4, progress=False, save_pipeline=False)
    train_image_generator(pipe, mixed, recipe)
    after = pipe.identity_encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def _query_spread(pipe, prompts: list[str]) -> float:
    """Mean distance of each prompt's query states from the prompts' mean, relative to the states' mean norm."""
    with torch.no_grad():
        states = pipe.llm_query_states(prompts)
    return ((states - states.mean(0)).norm(dim=-1).mean() / states.norm(dim=-1).mean()).item()


def test_pretraining_the_language_model_makes_the_queries_read_the_prompt():
    lm, tokenizer = tiny_language_model(seed=3)
    colours, shapes = ("red", "green", "blue", "yellow"), ("circle", "square", "triangle")
    texts = [f"a {c} {s} and a {d} {t}" for c in colours for s in shapes for d in colours for t in shapes if c != d]
    pipe = tiny_pipeline(lm, tokenizer, glyph=False, identity=False, seed=0)
    probe = ["a red circle and a blue square", "a green circle and a blue square", "a red triangle and a blue square"]
    random_spread = _query_spread(pipe, probe)
    # 300 steps: after 150 the spread had grown 1.4-2.3x depending on the CPU and seed, after 300 2.2-3.7x
    losses = pretrain_language_model(lm, tokenizer, texts, steps=300, batch_size=16, seed=0)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert not lm.training
    assert not any(p.requires_grad for p in lm.parameters())
    # Same queries, same LM architecture: only the pretraining differs.
    assert _query_spread(pipe, probe) > 1.5 * random_spread, (random_spread, _query_spread(pipe, probe))


def test_conditioner_learning_rate_slows_or_freezes_the_queries_and_connector(language_model, samples, tmp_path):
    lm, tokenizer = language_model
    moved = {}
    for rate in (None, 1e-4, 0.0):
        pipe = tiny_pipeline(lm, tokenizer, seed=0)
        conditioner, dit = _state(pipe.conditioner), _state(pipe.transformer)
        recipe = TrainingRecipe(
            output_dir=tmp_path / str(rate),
            steps=3,
            batch_size=4,
            learning_rate=1e-3,
            conditioner_learning_rate=rate,
            progress=False,
            save_pipeline=False,
        )
        train_image_generator(pipe, samples, recipe)
        moved[rate] = _distance(conditioner, _state(pipe.conditioner))
        assert _distance(dit, _state(pipe.transformer)) > 0  # the DiT learns at learning_rate whatever the rate
    assert moved[0.0] == 0.0
    assert 0 < moved[1e-4] < 0.2 * moved[None], moved


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return sum((a[k].float() - b[k].float()).norm().item() for k in a)


def test_cosine_decay_follows_decay_steps_across_chunks(language_model, samples, tmp_path):
    lm, tokenizer = language_model

    def lrs(out, steps):
        recipe = TrainingRecipe(
            output_dir=out,
            steps=steps,
            batch_size=2,
            learning_rate=1e-3,
            warmup_steps=2,
            decay_steps=6,
            checkpoint_every=1,
            keep_last=None,
            progress=False,
            save_pipeline=False,
        )
        train_image_generator(tiny_pipeline(lm, tokenizer, seed=0), samples, recipe)
        state = torch.load(out / f"checkpoint-{steps:06d}" / "trainer_state.pt", weights_only=True)
        return [g["lr"] for g in state["optimizer"]["param_groups"]]

    # After k steps the optimizer holds the rate of step k: warm-up 1/2, 2/2, then a cosine from 1e-3 to 0 at step 6.
    assert lrs(tmp_path / "a", 1)[0] == pytest.approx(1e-3)
    assert lrs(tmp_path / "b", 4)[0] == pytest.approx(0.5e-3)
    # Trained in two chunks (steps=3, then 6), the schedule is the one of decay_steps, not of each call's steps.
    lrs(tmp_path / "c", 3)
    assert lrs(tmp_path / "c", 6) == pytest.approx([0.0, 0.0])


def test_ema_is_the_moving_average_of_the_trained_weights(language_model, samples, tmp_path):
    lm, tokenizer = language_model
    pipe = tiny_pipeline(lm, tokenizer, seed=0)
    recipe = TrainingRecipe(
        output_dir=tmp_path,
        steps=3,
        batch_size=4,
        learning_rate=1e-3,
        ema_decay=0.2,
        checkpoint_every=1,
        keep_last=None,
        progress=False,
        save_pipeline=False,
    )
    train_image_generator(pipe, samples, recipe)
    raw = [
        load_file(tmp_path / f"checkpoint-{step:06d}" / "transformer" / "diffusion_pytorch_model.safetensors")
        for step in (1, 2, 3)
    ]
    # diffusers' EMAModel: the first update copies, the k-th after it decays by min(ema_decay, (1 + k) / (10 + k)).
    expected = dict(raw[0])
    for k, weights in enumerate(raw[1:], start=1):
        decay = min(0.2, (1 + k) / (10 + k))
        expected = {name: decay * expected[name] + (1 - decay) * weights[name] for name in weights}
    final = pipe.transformer.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(final[name], value)
    assert not torch.equal(final["proj_out.weight"], raw[2]["proj_out.weight"])


def _subject(picture):
    """The red square of the ``picture`` fixture as a pixel mask, and its crop."""
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[8:20, 8:20] = True
    return mask, picture.crop((8, 8, 20, 20))


@pytest.mark.parametrize("prediction_type", ["velocity", "sample"])
def test_predicted_clean_inverts_the_flow_pair(language_model, prediction_type):
    lm, tokenizer = language_model
    pipe = tiny_pipeline(lm, tokenizer, prediction_type=prediction_type)
    x0, noise, sigmas = torch.randn(3, 12, 16, 16), torch.randn(3, 12, 16, 16), torch.tensor([0.1, 0.5, 0.9])
    x_t, v = flow_matching_pair(x0, noise, sigmas)
    torch.testing.assert_close(predicted_clean(pipe.transformer, x_t, sigmas, v), x0)
    if prediction_type == "sample":  # below min_sigma the head's velocity is (x_σ − x̂₀) / min_sigma
        tiny = torch.tensor([0.01, 0.01, 0.01])
        x_t = flow_matching_pair(x0, noise, tiny)[0]
        torch.testing.assert_close(predicted_clean(pipe.transformer, x_t, tiny, (x_t - x0) / 0.05), x0)


def test_identity_loss_is_zero_at_the_target_and_reads_only_the_subject(pipe, picture):
    mask, _ = _subject(picture)
    target = pipe.encode_images([picture])
    zero_global, zero_local = identity_loss(pipe, target, target, mask[None])
    assert zero_global.abs().item() < 1e-6
    assert zero_local.item() == 0
    outside = target.clone()
    outside[..., 12:, :] += 1.0  # latent rows 12-15 = pixel rows 24-31, below the subject's box
    torch.testing.assert_close(torch.stack(identity_loss(pipe, outside, target, mask[None])), torch.zeros(2, 1))
    inside = target.clone()
    inside[..., 5:8, 5:8] -= 1.0  # inside the subject
    global_term, local_term = identity_loss(pipe, inside, target, mask[None])
    assert global_term.item() > 1e-4
    assert local_term.item() > 0.1
    with pytest.raises(ValueError, match="do not fit"):
        identity_loss(pipe, target, target, mask[None, :16])


def test_identity_loss_trains_the_generator_and_reaches_the_identity_encoder_through_the_condition(pipe, picture):
    mask, crop = _subject(picture)
    x0 = pipe.encode_images([picture])
    sigmas = torch.tensor([0.5])
    x_t, _ = flow_matching_pair(x0, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)), sigmas)
    condition = pipe.encode_condition(["a red square"], identity_images=[crop])
    velocity = pipe.transformer(x_t, sigmas * 1000, *condition.astuple()).sample
    global_term, local_term = identity_loss(
        pipe, predicted_clean(pipe.transformer, x_t, sigmas, velocity), x0, mask[None]
    )
    (global_term + local_term).sum().backward()
    encoder_grads = [p.grad for p in pipe.identity_encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in encoder_grads)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pipe.transformer.parameters())
    # The encoder is only a yardstick inside the loss: a prediction that does not depend on it gives it no gradient.
    pipe.identity_encoder.zero_grad(set_to_none=True)
    loose = x0.clone().add_(0.3).requires_grad_(True)
    sum(identity_loss(pipe, loose, x0, mask[None])).sum().backward()
    assert loose.grad.abs().sum() > 0
    assert all(p.grad is None for p in pipe.identity_encoder.parameters())


def test_identity_loss_weights_enter_the_training_loss(language_model, picture, tmp_path):
    lm, tokenizer = language_model
    mask, crop = _subject(picture)
    mask_image = Image.fromarray(mask.numpy().astype(np.uint8) * 255)
    data = [GenerationSample(prompt="a red square", image=picture, identity=crop, identity_mask=mask_image)]
    losses = {}
    for weight in (0.0, 1.0):
        recipe = TrainingRecipe(
            output_dir=tmp_path / str(weight),
            steps=1,
            batch_size=2,
            progress=False,
            save_pipeline=False,
            identity_global_weight=weight,
            identity_pixel_weight=weight,
        )
        losses[weight] = train_image_generator(tiny_pipeline(lm, tokenizer, seed=0), data, recipe).losses[0]
    assert np.isfinite(losses[1.0])
    assert losses[1.0] > losses[0.0]
    with pytest.raises(ValueError, match="needs an identity crop"):
        GenerationSample(prompt="a red square", image=picture, identity_mask=mask_image)
    with pytest.raises(ValueError, match="size"):
        GenerationSample(prompt="x", image=picture, identity=crop, identity_mask=mask_image.resize((16, 16)))
