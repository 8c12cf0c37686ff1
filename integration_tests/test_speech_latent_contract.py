"""The speech-latent contract between ming-speech-tokenizer and ming-tts-head: (B, frames, 64) at 50 Hz.

The TTS head trains on the tokenizer's latents of real (espeak-ng) speech, and its streamed patches decoded one by
one through the tokenizer's streaming decoder give exactly the tokenizer's full decoding of the same latents.
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


def test_streamed_patches_decode_like_the_whole_utterance():
    tokenizer, head = _models()
    head.eval()
    decoder = StreamingDecoder(tokenizer)
    options = GenerationOptions(min_patches=3, max_patches=3)
    chunks = list(stream_speech(head, [5, 6, 7], options, decoder=decoder.step))
    latents = torch.cat([chunk.latents for chunk in chunks], dim=1)
    streamed = torch.cat([*(chunk.audio for chunk in chunks), decoder.flush()], dim=-1)
    whole = tokenizer.decode(latents)
    assert latents.shape == (1, 3 * head.config.patch_size, 64)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-4)
