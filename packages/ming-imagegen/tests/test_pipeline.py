"""The pipeline: the sampler recovers an exact flow, guidance batching and reductions, editing, seeds, save → load."""

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from ming_imagegen import (
    ImageGenerationOptions,
    MingImagePipeline,
    editing_guidance,
    text_guidance,
)


def test_sampler_recovers_a_point_mass_from_its_exact_velocity(pipe):
    # For data = one point x*, the flow x_σ = (1 − σ)·x* + σ·ε has velocity (x_σ − x*) / σ; Euler integration of a
    # linear path is exact, so any number of steps lands on x* whatever the noise.
    target = torch.randn(1, 12, 16, 16, generator=torch.Generator().manual_seed(3))

    def exact_velocity(latents, timestep, *args, **kwargs):
        sigma = timestep.view(-1, 1, 1, 1) / 1000
        return (latents - target) / sigma

    pipe.guided_velocity = exact_velocity
    for steps in (1, 7, 30):
        for seed in (0, 1):
            out = pipe("anything", num_inference_steps=steps, seed=seed, output_type="latent").images
            torch.testing.assert_close(out, target, atol=1e-5, rtol=1e-5)


def _condition_and_latents(pipe, refs: bool):
    condition = pipe.encode_condition(['a "SALE" sign', "a blue square"])
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 12, 16, 16, generator=g)
    references = torch.randn(2, 2, 12, 16, 16, generator=g) if refs else None
    return condition, latents, references


@pytest.mark.parametrize("refs", [False, True])
@torch.no_grad()
def test_batched_guidance_equals_separate_branches(pipe, refs):
    pipe.transformer.null_condition.data.normal_()
    condition, latents, references = _condition_and_latents(pipe, refs)
    t = torch.tensor([600.0, 600.0])
    options = ImageGenerationOptions(guidance_scale=4.0, image_guidance_scale=1.7)
    batched = pipe.guided_velocity(latents, t, condition, references, options)
    separate = pipe.guided_velocity(
        latents, t, condition, references, options.model_copy(update={"batched_guidance": False})
    )
    torch.testing.assert_close(batched, separate, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("refs", [False, True])
@torch.no_grad()
def test_guidance_scales_of_one_give_the_conditional_prediction(pipe, refs):
    pipe.transformer.null_condition.data.normal_()
    condition, latents, references = _condition_and_latents(pipe, refs)
    t = torch.tensor([300.0, 800.0])
    options = ImageGenerationOptions(guidance_scale=1.0, image_guidance_scale=1.0)
    guided = pipe.guided_velocity(latents, t, condition, references, options)
    conditional = pipe.transformer(latents, t, *condition.astuple(), references=references).sample
    torch.testing.assert_close(guided, conditional, atol=1e-5, rtol=1e-5)
    stronger = pipe.guided_velocity(
        latents, t, condition, references, options.model_copy(update={"guidance_scale": 3.0})
    )
    assert (stronger - conditional).abs().max() > 1e-3


@pytest.mark.parametrize("refs", [False, True])
@torch.no_grad()
def test_edit_guidance_scale_sets_the_text_scale_of_editing_only(pipe, refs):
    pipe.transformer.null_condition.data.normal_()
    condition, latents, references = _condition_and_latents(pipe, refs)
    t = torch.tensor([500.0, 500.0])

    def velocity(**fields):
        return pipe.guided_velocity(latents, t, condition, references, ImageGenerationOptions(**fields))

    separate = velocity(guidance_scale=1.5, edit_guidance_scale=4.0)
    if refs:
        torch.testing.assert_close(separate, velocity(guidance_scale=4.0))
        assert not torch.allclose(separate, velocity(guidance_scale=1.5))
    else:
        torch.testing.assert_close(separate, velocity(guidance_scale=1.5))


def test_guidance_formulas():
    u, ci, cf = torch.tensor(1.0), torch.tensor(3.0), torch.tensor(4.0)
    assert editing_guidance(u, ci, cf, 2.0, 5.0) == 1 + 2 * 2 + 5 * 1
    assert text_guidance(u, cf, 1.0) == cf
    assert text_guidance(u, cf, 0.0) == u


def test_editing_with_zero_steps_returns_the_reference(pipe, picture):
    out = pipe("make the square green", reference_images=[picture], num_inference_steps=0).images[0]
    assert np.array_equal(np.asarray(out), np.asarray(picture))  # the pixel autoencoder is lossless


def test_editing_with_zero_steps_returns_the_vae_reconstruction(kl_pipe, picture):
    out = kl_pipe("make the square green", reference_images=[picture], num_inference_steps=0, output_type="pt").images
    with torch.no_grad():
        vae = kl_pipe.vae
        x = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        reconstruction = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    torch.testing.assert_close(out, (reconstruction + 1) / 2, atol=1e-5, rtol=0)
    assert (out - (x + 1) / 2).abs().max() > 1e-2  # a random VAE does not reproduce the picture: reconstruction ≠ input


def test_same_seed_same_image_and_different_seed_different(pipe):
    def run(seed, prompts=("a red circle",)):
        return pipe(list(prompts), num_inference_steps=3, seed=seed, output_type="np").images

    assert np.array_equal(run(5), run(5))
    assert np.abs(run(5) - run(6)).max() > 1e-2
    # Image i of a call uses seed + i, so a batch's second image is the single image of seed + 1.
    batch = run(5, ("a red circle", "a red circle"))
    np.testing.assert_allclose(batch[1], run(6)[0], atol=1e-5)


def test_bf16_follows_fp32(pipe):
    fp32 = pipe('a "HI" sign', num_inference_steps=3, seed=0, guidance_scale=1.0, output_type="pt").images
    pipe.transformer.to(torch.bfloat16)  # the LLM and the rest stay fp32: mixed dtypes must work too
    bf16 = pipe('a "HI" sign', num_inference_steps=3, seed=0, guidance_scale=1.0, output_type="pt").images
    assert (bf16.float() - fp32).abs().mean() < 0.01


def test_llm_states_replace_the_prompt(language_model):
    from ming_imagegen import tiny_pipeline

    pipe = tiny_pipeline(*language_model, glyph=False)
    prompts = ["a green triangle", "two blue squares below a red circle"]
    states = pipe.llm_query_states(prompts)
    assert states.shape == (2, pipe.conditioner.num_condition_tokens, 64)
    a = pipe(prompts, num_inference_steps=2, seed=0, output_type="pt").images
    b = pipe(llm_states=states, num_inference_steps=2, seed=0, output_type="pt").images
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_query_states_do_not_depend_on_batch_padding(pipe):
    alone = pipe.llm_query_states(["a dot"])
    batched = pipe.llm_query_states(["a dot", "a much longer prompt about many shapes"])
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=1e-5)


def test_identity_tokens_depend_only_on_the_crop(pipe, picture):
    crop = picture.crop((8, 8, 20, 20))
    a = pipe.identity_condition([crop]).tokens
    other = Image.new("RGB", (64, 64), (0, 200, 0))
    other.paste(picture, (30, 5))
    b = pipe.identity_condition([other.crop((38, 13, 50, 25))]).tokens  # the same pixels, from another picture
    assert torch.equal(a, b)
    assert a.shape == (1, 4, 64)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(1, 4))
    with_id = pipe("a person", identity_image=crop, num_inference_steps=2, seed=0, output_type="pt").images
    without = pipe("a person", num_inference_steps=2, seed=0, output_type="pt").images
    assert (with_id - without).abs().max() > 1e-4


def test_edit_follows_the_editing_pipeline_protocol(pipe, picture):
    wide = picture.resize((48, 24))
    before = np.asarray(wide).copy()
    out = pipe.edit(wide, "color the square purple", seed=0)
    assert isinstance(out, Image.Image)
    assert out.mode == "RGB"
    assert out.size == (48, 24)  # 2:1 is itself a bucket at the 32² resolution (sides multiples of 4)
    assert pipe.edit(picture.resize((40, 20)), "x", seed=0).size == (48, 24)
    assert np.array_equal(np.asarray(wide), before)
    assert np.array_equal(np.asarray(pipe.edit(wide, "color the square purple", seed=0)), np.asarray(out))


def test_aspect_ratio_picks_the_nearest_bucket(pipe):
    wide = pipe("a wide view", aspect_ratio="2:1", num_inference_steps=1, seed=0).images[0]
    assert wide.size == (48, 24)
    assert pipe("a tall view", aspect_ratio=0.5, num_inference_steps=1, seed=0).images[0].size == (24, 48)


def test_several_references_and_images_per_prompt(pipe, picture):
    other = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = pipe(
        ["subject from image 1, background from image 2"],
        reference_images=[picture, other],
        num_images_per_prompt=2,
        num_inference_steps=2,
        seed=0,
    ).images
    assert len(out) == 2
    assert out[0].size == picture.size


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_inference_steps": -1}, "num_inference_steps"),
        ({"guidance_scale": -2}, "guidance_scale"),
        ({"height": 32}, "give both height and width"),
        ({"strength": 0}, "strength"),
        ({"output_type": "jpeg"}, "output_type"),
        ({"num_steps": 3}, "num_steps"),
        ({"aspect_ratio": "wide"}, "aspect_ratio"),
        ({"aspect_ratio": "16:9", "height": 32, "width": 32}, "not both"),
    ],
)
def test_bad_options_name_the_field(pipe, kwargs, field):
    with pytest.raises(ValidationError, match=field):
        pipe("x", **kwargs)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"height": 30, "width": 32}, "multiple of 4"),
        ({"num_inference_steps": 0}, "only meaningful for editing"),
        ({"reference_images": [Image.new("RGB", (30, 30))]}, "reference image size 30×30"),
        ({"reference_images": [Image.new("RGB", (32, 32))] * 4}, "max_references"),
    ],
)
def test_bad_inputs_are_explained(pipe, call, message):
    with pytest.raises(ValueError, match=message):
        pipe("x", **call)


def test_pipeline_save_load_is_bit_identical(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = MingImagePipeline.from_pretrained(tmp_path)
    for name in ("transformer", "conditioner", "glyph_mapper", "identity_encoder", "language_model", "glyph_encoder"):
        a, b = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    prompt = 'a "HI" sign'
    assert torch.equal(
        pipe(prompt, num_inference_steps=2, seed=0, output_type="pt").images,
        loaded(prompt, num_inference_steps=2, seed=0, output_type="pt").images,
    )
    assert not list(tmp_path.rglob("*.bin"))


def test_default_options_are_saved_and_give_way_to_the_call(pipe, tmp_path):
    assert pipe.default_options == ImageGenerationOptions()
    pipe.set_default_options(guidance_scale=2.0, num_inference_steps=2)
    pipe.save_pretrained(tmp_path)
    loaded = MingImagePipeline.from_pretrained(tmp_path)
    assert loaded.default_options.guidance_scale == 2.0
    assert loaded.default_options.image_guidance_scale == ImageGenerationOptions().image_guidance_scale

    def images(**kwargs):
        return loaded("a red circle", seed=0, output_type="pt", **kwargs).images

    stated = images(guidance_scale=2.0, num_inference_steps=2)
    assert torch.equal(images(), stated)
    assert torch.equal(images(options=ImageGenerationOptions(seed=0)), stated)  # unset fields: pipeline defaults
    assert not torch.equal(images(guidance_scale=5.0), stated)
    assert not torch.equal(images(options=ImageGenerationOptions(guidance_scale=5.0)), stated)
    with pytest.raises(ValidationError, match="guidance_scale"):
        pipe.set_default_options(guidance_scale=-1.0)
    with pytest.raises(ValidationError, match="guidance"):
        pipe.set_default_options(guidance=2.0)
