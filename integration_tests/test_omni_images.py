"""The composed tiny Ming-Flash-Omni drawing, editing and segmenting ming-testdata scenes: ming-imagegen's queries
read the omni LLM's states over the whole conversation, an image in the last turn is the edit's reference, and
ming-genseg's segmentation-as-editing runs with MingOmni as its editing pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ming_genseg import EditingPipeline, segment
from ming_imagegen import ImageGenerationOptions
from ming_omni import MingOmni, OmniOptions
from ming_testdata import SceneOptions, make_scenes

torch.set_num_threads(1)

FAST = ImageGenerationOptions(num_inference_steps=2, seed=0)


@pytest.fixture(scope="module")
def omni() -> MingOmni:
    return MingOmni.tiny(seed=1)


@pytest.fixture(scope="module")
def scene():
    return make_scenes(SceneOptions(n=1, seed=7, width=32, height=32))[0]


def test_understanding_to_image_out(omni, scene):
    conversation = [
        {"role": "user", "content": [{"type": "image", "image": scene.image}, {"type": "text", "text": "describe it"}]},
        {"role": "assistant", "content": "shapes"},
        {"role": "user", "content": "now draw a green triangle"},
    ]
    out = omni.generate(conversation, outputs={"text", "image"}, options=OmniOptions(max_new_tokens=3, image=FAST))
    assert out.images[0].size == (32, 32)
    # the image seen two turns earlier conditions the drawing through the LLM states
    without_image = [{"role": "user", "content": "now draw a green triangle"}]
    other = omni.generate(without_image, outputs={"image"}, options=OmniOptions(max_new_tokens=1, image=FAST))
    assert not np.array_equal(np.asarray(out.images[0]), np.asarray(other.images[0]))


def test_image_edit_request_keeps_the_reference_without_denoising(omni, scene):
    request = [
        {"role": "user", "content": [{"type": "image", "image": scene.image}, {"type": "text", "text": "keep it"}]}
    ]
    options = OmniOptions(max_new_tokens=1, image=ImageGenerationOptions(num_inference_steps=0))
    edited = omni.generate(request, outputs={"image"}, options=options).images[0]
    difference = np.abs(np.asarray(edited, dtype=int) - np.asarray(scene.image, dtype=int))
    assert difference.max() <= 1


def test_segmentation_request_runs_genseg_with_the_omni_editor(omni, scene):
    assert isinstance(omni, EditingPipeline)
    target = scene.objects[0]
    expression = f"the {target.color} {target.shape}"
    result = segment(scene.image, expression, omni, seed=0)
    assert result.mask.shape == (32, 32)
    assert result.edited.size == scene.image.size
    assert omni.segment(scene.image, expression, seed=0).prompt == result.prompt
