import pytest
import torch
from omni_helpers import noise_image, speech_like
from pydantic import ValidationError

from ming_contextasr import ContextASRRequest, render_prompt
from ming_omni import MingOmni, OmniOptions
from ming_tts_head import GenerationOptions, synthesize

SPEECH = GenerationOptions(min_patches=3, max_patches=8, seed=5)


def test_generate_returns_the_decoded_greedy_answer(omni):
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": noise_image(56, 56)}, {"type": "text", "text": "What?"}],
        }
    ]
    out = omni.generate(messages, options=OmniOptions(max_new_tokens=6))
    inputs = omni.processor(messages)
    with torch.no_grad():
        reference = omni.model.generate(
            **inputs.model_kwargs(),
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=omni.processor.eos_token_id,
            pad_token_id=0,
        )
    assert torch.equal(out.token_ids, reference[0, inputs.input_ids.shape[1] :])
    assert out.text == omni.processor.decode(out.token_ids).text
    assert out.speech is None


def test_speech_is_the_talker_latents_decoded_by_the_speech_tokenizer(omni):
    out = omni.generate(
        [{"role": "user", "content": "hi"}],
        outputs={"text", "speech"},
        options=OmniOptions(max_new_tokens=4, speech=SPEECH),
    )
    text = out.text or " "
    latents = synthesize(omni.model.talker, [omni._speech_request(text, SPEECH)], SPEECH)[0]
    expected = omni.model.speech_tokenizer.decode(latents)[0]
    assert out.speech.shape == (latents.shape[1] * 320,)
    assert torch.equal(out.speech, expected)


def test_streamed_speech_equals_speech_decoded_in_one_go(omni):
    text = "a red circle"
    whole = omni.speak(text, SPEECH)
    chunks = list(omni.stream_speech(text, SPEECH))
    assert len(chunks) >= 4  # patches, then the decoder's flushed tail
    assert chunks[-1].latents.shape[1] == 0
    streamed = torch.cat([c.audio[0] for c in chunks])
    assert streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-5)


def test_generate_can_stream_the_spoken_answer(omni):
    options = OmniOptions(max_new_tokens=4, speech=SPEECH, stream_speech=True)
    out = omni.generate([{"role": "user", "content": "hi"}], outputs={"speech"}, options=options)
    assert out.speech is None
    streamed = torch.cat([c.audio[0] for c in out.speech_chunks])
    assert torch.allclose(streamed, omni.speak(out.text, SPEECH), atol=1e-5)


def test_context_asr_request_goes_through_the_same_entry_point(omni):
    audio = speech_like(0.8)
    request = ContextASRRequest(audio=audio, topic="shapes", hotwords=["Zorbak"])
    out = omni.generate(request, options=OmniOptions(max_new_tokens=5))
    # the same as asking with the rendered context prompt after the audio
    messages = [
        {
            "role": "user",
            "content": [{"type": "audio", "audio": audio}, {"type": "text", "text": render_prompt(request).text}],
        }
    ]
    unbiased = omni.generate(messages, options=OmniOptions(max_new_tokens=5, hotword_bonus=0.0))
    biased = omni.generate(
        ContextASRRequest(audio=audio, topic="shapes", hotwords=["Zorbak"]),
        options=OmniOptions(max_new_tokens=5, hotword_bonus=0.0),
    )
    assert torch.equal(biased.token_ids, unbiased.token_ids)  # zero bonus: the plain conversation
    assert out.transcription is not None
    assert out.transcription.text == out.text.strip()


def test_hotword_bonus_steers_the_transcript_towards_the_hotword(omni):
    request = ContextASRRequest(audio=speech_like(0.8), hotwords=["Zorbak"])
    out = omni.generate(request, options=OmniOptions(max_new_tokens=8, hotword_bonus=100.0))
    assert "Zorbak" in out.text


def test_think_mode_output_is_split(omni, monkeypatch):
    ids = omni.processor.tokenizer("<think>two shapes</think>Two.<|role_end|>", add_special_tokens=False)["input_ids"]
    monkeypatch.setattr(MingOmni, "_generate_ids", lambda self, *a: torch.tensor(ids))
    out = omni.generate([{"role": "user", "content": "How many?"}], options=OmniOptions(think=True))
    assert (out.thinking, out.text) == ("two shapes", "Two.")


def test_unknown_output_is_rejected(omni):
    with pytest.raises(ValueError, match="outputs: unknown"):
        omni.generate([{"role": "user", "content": "hi"}], outputs={"smell"})


def test_bad_options_name_the_field():
    with pytest.raises(ValidationError, match="max_new_tokens"):
        OmniOptions(max_new_tokens=0)


def test_saved_omni_reloads_and_answers_the_same(omni, tmp_path):
    omni.save_pretrained(tmp_path)
    loaded = MingOmni.from_pretrained(tmp_path)
    messages = [
        {"role": "user", "content": [{"type": "audio", "audio": speech_like(0.4)}, {"type": "text", "text": "hi"}]}
    ]
    options = OmniOptions(max_new_tokens=5)
    assert torch.equal(
        loaded.generate(messages, options=options).token_ids, omni.generate(messages, options=options).token_ids
    )


def test_sampling_is_reproducible_per_seed(omni):
    messages = [{"role": "user", "content": "a red circle"}]

    def sample(seed):
        options = OmniOptions(max_new_tokens=10, do_sample=True, temperature=2.0, seed=seed)
        return omni.generate(messages, options=options).token_ids

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))


def test_output_reports_the_speech_tokenizer_rate(omni):
    out = omni.generate([{"role": "user", "content": "hi"}], options=OmniOptions(max_new_tokens=1))
    assert out.sample_rate == omni.model.config.speech_tokenizer_config.sampling_rate == 16000
