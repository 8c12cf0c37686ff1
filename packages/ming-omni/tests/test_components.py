"""MingOmni.tiny with components saved by their own packages (as the demo does with the trained checkpoints)."""

import numpy as np
import pytest
import torch

from ming_imagegen import ImageGenerationOptions, tiny_pipeline
from ming_omni import MingOmni, byte_tokenizer, word_tokenizer
from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel
from ming_tts_head import GenerationOptions, SpeechRequest, TTSHeadConfig, TTSHeadModel, synthesize

SPEECH = GenerationOptions(min_patches=3, max_patches=6, seed=1)


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    """A byte-vocabulary talker of another width, a speech tokenizer and a pipeline with its own LM, all saved."""
    root = tmp_path_factory.mktemp("components")
    torch.manual_seed(1)
    talker = TTSHeadModel(TTSHeadConfig.tiny(vocab_size=256, hidden_size=32, num_attention_heads=2)).eval()
    talker.save_pretrained(root / "talker")
    speech_tokenizer = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(latent_scaling_factor=0.5)).eval()
    speech_tokenizer.save_pretrained(root / "speech_tokenizer")
    pipeline = tiny_pipeline(image_size=32, seed=3)  # ming-imagegen's own tiny conditioning LM
    pipeline.save_pretrained(root / "image_generator")
    return root, talker, speech_tokenizer


@pytest.fixture(scope="module")
def composed(components):
    root, _, _ = components
    return MingOmni.tiny(
        talker=root / "talker",
        talker_tokenizer=byte_tokenizer(),
        speech_tokenizer=root / "speech_tokenizer",
        image_generator=root / "image_generator",
    )


def test_byte_tokenizer_ids_are_utf8_bytes():
    text = "seven two nine – é"
    ids = byte_tokenizer()(text, add_special_tokens=False)["input_ids"]
    assert ids == list(text.encode())
    assert byte_tokenizer().decode(ids) == text


def test_word_tokenizer_ids_are_vocabulary_indices_and_unknown_words_share_one_id(tmp_path):
    digits = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    tokenizer = word_tokenizer(digits)
    ids = tokenizer("seven  two nine\tred four", add_special_tokens=False)["input_ids"]
    assert ids == [7, 2, 9, 10, 4]
    assert tokenizer.decode([7, 2, 9]) == "seven two nine"
    tokenizer.save_pretrained(tmp_path)
    reloaded = type(tokenizer).from_pretrained(tmp_path)
    assert reloaded("nine one", add_special_tokens=False)["input_ids"] == [9, 1]
    for bad in ([], ["one", "one"], ["one two"], ["<unk>"]):
        with pytest.raises(ValueError, match="vocabulary"):
            word_tokenizer(bad)


def test_saved_components_replace_the_random_ones(components, composed):
    _, talker, speech_tokenizer = components
    config = composed.model.config
    assert (config.talker_config.vocab_size, config.talker_config.hidden_size) == (256, 32)
    assert config.speech_tokenizer_config.latent_scaling_factor == 0.5
    for module, saved in ((composed.model.talker, talker), (composed.model.speech_tokenizer, speech_tokenizer)):
        state = module.state_dict()
        assert all(torch.equal(state[k], v) for k, v in saved.state_dict().items())
    assert composed.processor.talker_ids("two") == list(b"two")


def test_speech_goes_through_the_saved_talker_and_decoder(components, composed):
    _, talker, speech_tokenizer = components
    latents = synthesize(talker, [SpeechRequest(text_ids=list(b"seven two"), seed=SPEECH.seed)], SPEECH)[0]
    assert torch.equal(composed.speak("seven two", SPEECH), speech_tokenizer.decode(latents)[0])


def test_a_pipeline_with_its_own_language_model_conditions_itself(composed):
    assert not composed.images_use_omni_llm
    options = ImageGenerationOptions(num_inference_steps=2, seed=4)
    drawn = composed.draw("a red circle", options)[0]
    reference = composed.image_generator("a red circle", options=options, output_type="pil").images[0]
    assert np.array_equal(np.asarray(drawn), np.asarray(reference))


def test_the_default_pipeline_reads_the_omni_llm():
    assert MingOmni.tiny().images_use_omni_llm


def test_a_directory_without_a_checkpoint_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"talker: .* is not a saved checkpoint directory"):
        MingOmni.tiny(talker=tmp_path)
