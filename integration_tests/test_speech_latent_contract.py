"""The speech-latent contract between ming-speech-tokenizer and ming-tts-head: (B, frames, 64) at 50 Hz.

The TTS head trains on the tokenizer's latents of real (espeak-ng) speech, and its streamed patches decoded one by
one through the tokenizer's streaming decoder (reset first, flushed into the last chunk by ``stream_speech``) give
exactly the tokenizer's full decoding of the same latents, utterance after utterance with one decoder.
"""

from __future__ import annotations

import math

import torch

from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel, StreamingDecoder
from ming_testdata import SpeechOptions, make_speech
from ming_tts_head import GenerationOptions, TTSHeadConfig, TTSHeadModel, stream_speech


def _models() -> tuple[SpeechTokenizerModel, TTSHeadModel]:
    torch.manual_seed(0)
    tokenizer = SpeechTokenizerModel(SpeechTokenizerConfig.tiny()).eval()
    head = TTSHeadModel(TTSHeadConfig.tiny())
    return tokenizer, head


def test_tts_head_trains_on_tokenizer_latents_of_real_speech():
    tokenizer, head = _models()
    assert head.config.latent_dim == tokenizer.config.latent_dim
    assert tokenizer.config.sampling_rate / tokenizer.config.hop_length == 50
    utterance = make_speech(SpeechOptions(n=1, seed=2))[0]
    latents = tokenizer.encode(torch.from_numpy(utterance.audio), 16000)
    assert latents.shape == (1, math.ceil(len(utterance.audio) / 320), 64)
    text_ids = torch.tensor([list(utterance.transcript.encode()[:40])])
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    head.train()
    losses = []
    for _ in range(8):
        loss = head(text_ids, latents).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(math.isfinite(value) for value in losses)
    assert losses[-1] < losses[0]


def test_streamed_patches_decode_like_the_whole_utterance_with_one_reused_decoder():
    tokenizer, head = _models()
    head.eval()
    decoder = StreamingDecoder(tokenizer)
    for text, patches in (([5, 6, 7], 3), ([9, 8], 2)):
        decoder.step(torch.randn(1, 2, 64))  # an abandoned stream's state, which stream_speech must reset
        options = GenerationOptions(min_patches=patches, max_patches=patches)
        chunks = list(stream_speech(head, text, options, decoder=decoder))
        latents = torch.cat([chunk.latents for chunk in chunks], dim=1)
        streamed = torch.cat([chunk.audio for chunk in chunks], dim=-1)
        whole = tokenizer.decode(latents)
        assert latents.shape == (1, patches * head.config.patch_size, 64)
        assert chunks[-1].latents.shape[1] == 0  # the tail chunk: the decoder's flushed latency
        assert streamed.shape == whole.shape
        torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-4)
