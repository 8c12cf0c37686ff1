"""The composed tiny Ming-Flash-Omni on ming-testdata's offline media: a scene image, a moving-shape video and
espeak-ng speech go through the vision tower, the audio encoder and the MoE LLM (ming-moe with VideoRoPE from
ming-videorope), and the answer comes back as text, as speech (ming-tts-head + ming-speech-tokenizer) and as a
ContextASR transcription (ming-contextasr's prompt, biasing and answer format)."""

from __future__ import annotations

import pytest
import torch

from ming_contextasr import ContextASRRequest, num_audio_tokens
from ming_omni import MingOmni, OmniOptions
from ming_testdata import SceneOptions, SpeechOptions, VideoOptions, make_scenes, make_speech, make_videos
from ming_tts_head import GenerationOptions
from ming_videorope import Modality

torch.set_num_threads(1)

SPEECH = GenerationOptions(min_patches=4, max_patches=10, seed=1)


@pytest.fixture(scope="module")
def omni() -> MingOmni:
    return MingOmni.tiny(seed=0)


@pytest.fixture(scope="module")
def media():
    scene = make_scenes(SceneOptions(n=1, seed=4))[0]
    clip = make_videos(VideoOptions(n=1, seed=4))[0]
    utterance = make_speech(SpeechOptions(n=1, seed=4))[0]
    return scene, clip, utterance


def _conversation(media):
    scene, clip, utterance = media
    return [
        {"role": "system", "content": "Answer briefly."},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": scene.image},
                {"type": "video", "frames": clip.frames, "fps": clip.fps},
                {"type": "audio", "audio": utterance.audio, "sample_rate": utterance.sample_rate},
                {"type": "text", "text": "What moves, and what is said?"},
            ],
        },
    ]


def test_real_media_fill_exactly_their_placeholders(omni, media):
    scene, clip, utterance = media
    inputs = omni.processor(_conversation(media))
    modality = inputs.modality_ids[0]
    assert int((modality == Modality.AUDIO).sum()) == num_audio_tokens(len(utterance.audio))
    assert int((modality == Modality.IMAGE).sum()) == omni.processor.num_image_tokens(*scene.image.size)
    height, width = clip.frames.shape[1:3]
    assert int((modality == Modality.VIDEO).sum()) == omni.processor.num_video_tokens(
        len(clip.frames), clip.fps, width, height
    )
    with torch.no_grad():
        logits = omni.model(**inputs.model_kwargs()).logits
    assert torch.isfinite(logits).all()


def test_understanding_to_text_and_streamed_speech(omni, media):
    options = OmniOptions(max_new_tokens=8, speech=SPEECH)
    whole = omni.generate(_conversation(media), outputs={"text", "speech"}, options=options)
    streamed = omni.generate(
        _conversation(media), outputs={"speech"}, options=options.model_copy(update={"stream_speech": True})
    )
    assert streamed.text == whole.text
    audio = torch.cat([chunk.audio[0] for chunk in streamed.speech_chunks])
    assert whole.speech.numel() % 320 == 0  # 20 ms per latent frame at 16 kHz
    assert torch.allclose(audio, whole.speech, atol=1e-5)


def test_cached_and_recomputed_answers_agree_on_real_media(omni, media):
    cached = omni.generate(_conversation(media), options=OmniOptions(max_new_tokens=8))
    recomputed = omni.generate(_conversation(media), options=OmniOptions(max_new_tokens=8, use_cache=False))
    assert torch.equal(cached.token_ids, recomputed.token_ids)


def test_context_asr_request_on_espeak_speech_biases_towards_its_entities(omni, media):
    utterance = media[2]
    names = [entity.text for entity in utterance.entities][:2]
    assert names
    request = ContextASRRequest(audio=utterance.audio, topic="a meeting", hotwords=names, language="English")
    plain = omni.generate(request, options=OmniOptions(max_new_tokens=12, hotword_bonus=0.0))
    biased = omni.generate(request, options=OmniOptions(max_new_tokens=12, hotword_bonus=50.0))
    assert plain.transcription is not None
    assert any(name in biased.text for name in names)
