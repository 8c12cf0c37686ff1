import numpy as np
import pytest
import torch
from omni_helpers import noise_image
from PIL import Image

from ming_genseg import EditingPipeline
from ming_imagegen import ImageGenerationOptions
from ming_omni import MingOmni, OmniOptions
from ming_testdata import SceneOptions, make_scenes

FAST = ImageGenerationOptions(num_inference_steps=2, seed=3)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_condition_states_are_the_llm_states_at_the_appended_queries(omni):
    messages = [{"role": "user", "content": "a red circle"}]
    states = omni.condition_states(messages)
    conditioner = omni.image_generator.conditioner
    assert states.shape == (1, conditioner.num_condition_tokens, omni.model.config.llm_config.hidden_size)
    # independently: the LLM alone over [prompt embeddings, queries] with 1D positions (a text-only prompt)
    inputs = omni.processor(messages)
    embeds = omni.model.get_input_embeddings()(inputs.input_ids)
    embeds, mask, positions = conditioner.append_queries(embeds, inputs.attention_mask)
    with torch.no_grad():
        hidden = omni.model.model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, output_hidden_states=True
        )
    reference = conditioner.select_condition_states(hidden.hidden_states[-1][:, -conditioner.num_queries :])
    assert torch.allclose(states, reference, atol=1e-5)


def test_condition_states_see_the_conversation_images(omni):
    def states(seed):
        image = noise_image(56, 56, seed=seed)
        return omni.condition_states(
            [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "draw it"}]}]
        )

    assert not torch.allclose(states(0), states(1))
    assert torch.equal(states(0), states(0))


def test_drawing_is_the_pipeline_conditioned_on_the_llm_states(omni):
    prompt = "a blue square"
    drawn = omni.draw(prompt, FAST)
    states = omni.condition_states([{"role": "user", "content": prompt}])
    direct = omni.image_generator(prompt, llm_states=states, options=FAST, output_type="pil").images
    assert len(drawn) == 1
    assert drawn[0].size == (32, 32)
    assert np.array_equal(_pixels(drawn[0]), _pixels(direct[0]))
    assert np.array_equal(_pixels(omni.draw(prompt, FAST)[0]), _pixels(drawn[0]))  # seeded


def test_generate_with_image_output_draws_or_edits(omni):
    options = OmniOptions(max_new_tokens=2, image=FAST)
    drawn = omni.generate([{"role": "user", "content": "a blue square"}], outputs={"image"}, options=options)
    assert np.array_equal(_pixels(drawn.images[0]), _pixels(omni.draw("a blue square", FAST)[0]))
    scene = make_scenes(SceneOptions(n=1, seed=1, width=48, height=32))[0].image
    edit_request = [
        {"role": "user", "content": [{"type": "image", "image": scene}, {"type": "text", "text": "make it green"}]}
    ]
    edited = omni.generate(edit_request, outputs={"image"}, options=options).images[0]
    # an edit keeps the reference's aspect ratio bucket (3:2 here), a drawing is square
    assert edited.width > edited.height


def test_edit_with_zero_steps_returns_the_bucketed_reference(omni):
    """With no denoising step an edit is the reference itself: the reference really reaches the pipeline."""
    scene = make_scenes(SceneOptions(n=1, seed=2, width=32, height=32))[0].image
    messages = [{"role": "user", "content": [{"type": "image", "image": scene}, {"type": "text", "text": "no change"}]}]
    out = omni.generate(
        messages,
        outputs={"image"},
        options=OmniOptions(max_new_tokens=1, image=ImageGenerationOptions(num_inference_steps=0)),
    )
    assert np.abs(_pixels(out.images[0]) - _pixels(scene)).max() <= 1  # the pixel VAE is lossless up to rounding


def test_omni_is_an_editing_pipeline_for_segmentation(omni):
    assert isinstance(omni, EditingPipeline)
    scene = make_scenes(SceneOptions(n=1, seed=0))[0]
    result = omni.segment(scene.image, f"the {scene.objects[0].color} {scene.objects[0].shape}", seed=0)
    assert result.mask.shape == (scene.image.height, scene.image.width)
    assert result.mask.dtype == bool
    assert result.prompt.startswith("color the")
    assert result.edited.size == scene.image.size


def test_image_output_without_a_generator_is_a_clear_error(model, processor):
    bare = MingOmni(model, processor)
    with pytest.raises(ValueError, match="no image_generator"):
        bare.draw("a red circle")


def test_image_generator_conditioned_through_the_omni_llm_must_read_its_width(model, processor):
    from ming_imagegen import tiny_language_model, tiny_pipeline

    other = tiny_pipeline(*tiny_language_model(hidden_size=32))
    assert not MingOmni(model, processor, other).images_use_omni_llm  # keeps its own LM: any width
    other.register_modules(language_model=None, tokenizer=None)
    with pytest.raises(ValueError, match="width 32"):
        MingOmni(model, processor, other)


def test_omni_with_image_generator_round_trips(omni, tmp_path):
    omni.save_pretrained(tmp_path)
    loaded = MingOmni.from_pretrained(tmp_path)
    assert np.array_equal(_pixels(loaded.draw("a red circle", FAST)[0]), _pixels(omni.draw("a red circle", FAST)[0]))


def test_segmentation_request_goes_through_generate(omni):
    from ming_genseg import SegmentationRequest

    scene = make_scenes(SceneOptions(n=1, seed=3))[0]
    expression = f"the {scene.objects[0].color} {scene.objects[0].shape}"
    out = omni.generate(SegmentationRequest(image=scene.image, expression=expression), options=OmniOptions(image=FAST))
    direct = omni.segment(scene.image, expression, seed=FAST.seed)
    assert np.array_equal(out.segmentation.mask, direct.mask)
    assert out.text == direct.prompt
