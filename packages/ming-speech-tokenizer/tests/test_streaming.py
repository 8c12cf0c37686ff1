"""Streaming decoding and chunked / streaming encoding equal one pass over everything."""

from itertools import pairwise

import pytest
import torch

from ming_speech_tokenizer import (
    CausalTransformer,
    SpeechTokenizerConfig,
    SpeechTokenizerModel,
    StreamingDecoder,
    StreamingEncoder,
)


@pytest.fixture
def long_speech(speech) -> torch.Tensor:
    """About 4 s: longer than the tiny preset's 64-frame attention window, so the state really slides."""
    wave = torch.cat(speech)[: 200 * 320 + 123]
    assert wave.numel() > 3 * 64 * 320
    return wave


def test_streaming_decoder_frame_by_frame_equals_full_decoding(tiny_model, long_speech):
    latents = tiny_model.encode(long_speech, 16_000)
    full = tiny_model.decode(latents)
    streamer = StreamingDecoder(tiny_model)
    pieces = []
    for t in range(latents.shape[1]):
        piece = streamer.step(latents[:, t : t + 1])
        # frame t finishes slot t − 3: 60 ms of latency, then 20 ms per frame
        assert piece.shape == (1, 0 if t < 3 else 320)
        pieces.append(piece)
    tail = streamer.flush()
    assert tail.shape == (1, 3 * 320)  # the last 3 slots, unfinished
    torch.testing.assert_close(torch.cat([*pieces, tail], dim=-1), full, rtol=1e-4, atol=1e-5)


def test_streaming_decoder_in_uneven_chunks_and_after_reset(tiny_model):
    latents = torch.randn(2, 90, 64, generator=torch.Generator().manual_seed(0))
    full = tiny_model.decode(latents)
    streamer = StreamingDecoder(tiny_model)
    streamer.step(torch.randn(2, 7, 64))  # another signal, then forgotten
    streamer.reset()
    bounds = [0, 1, 2, 5, 37, 38, 90]
    pieces = [streamer.step(latents[:, a:b]) for a, b in pairwise(bounds)]
    assert streamer.frames_done == 90
    with pytest.raises(ValueError, match="batch size"):
        streamer.step(latents[:1, :1])
    torch.testing.assert_close(torch.cat([*pieces, streamer.flush()], dim=-1), full, rtol=1e-4, atol=1e-5)
    assert streamer.frames_done == 0  # flush resets
    two_frames = latents[:, :2]  # shorter than the latency: everything comes from the flush
    assert streamer.step(two_frames).shape == (2, 0)
    torch.testing.assert_close(streamer.flush(), tiny_model.decode(two_frames), rtol=1e-4, atol=1e-5)


def test_chunked_encoding_and_decoding_equal_one_pass(tiny_model, long_speech):
    wave = long_speech[: 200 * 320]
    posterior, _ = tiny_model.encoder(wave[None])  # one pass over all 200 frames
    assert tiny_model.config.attention_window == 64  # so encode / decode chunk by default
    for chunk_frames in (None, 1, 13, 64, 500):
        chunked = tiny_model.encode(wave, 16_000, chunk_frames=chunk_frames)
        torch.testing.assert_close(chunked, posterior.mean, rtol=1e-4, atol=1e-5)
        drawn = tiny_model.encode(
            wave, 16_000, sample=True, generator=torch.Generator().manual_seed(3), chunk_frames=chunk_frames
        )
        expected = posterior.sample(torch.Generator().manual_seed(3))
        torch.testing.assert_close(drawn, expected, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        hidden, _ = tiny_model.decoder(posterior.mean)
        one_pass = tiny_model.decoder.head(hidden)
    for chunk_frames in (None, 7, 500):
        decoded = tiny_model.decode(posterior.mean, chunk_frames=chunk_frames)
        torch.testing.assert_close(decoded, one_pass, rtol=1e-4, atol=1e-5)


def test_encode_and_decode_are_inference_apis_without_gradients(tiny_model):
    wave = torch.randn(3200, requires_grad=True)
    latents = tiny_model.encode(wave, 16_000, sample=True)
    assert not latents.requires_grad
    assert not tiny_model.decode(latents.requires_grad_()).requires_grad
    assert tiny_model(wave.detach()[None]).reconstruction.requires_grad  # training goes through forward


def test_streaming_decoder_undoes_the_latent_scaling_factor(tiny_model, long_speech):
    scaled_model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(latent_scaling_factor=2.5)).eval()
    scaled_model.load_state_dict(tiny_model.state_dict())
    latents = tiny_model.encode(long_speech[: 20 * 320], 16_000)
    scaled = scaled_model.encode(long_speech[: 20 * 320], 16_000)
    torch.testing.assert_close(scaled, 2.5 * latents)
    streamer = StreamingDecoder(scaled_model)
    streamed = torch.cat([*(streamer.step(scaled[:, t : t + 1]) for t in range(20)), streamer.flush()], dim=-1)
    torch.testing.assert_close(streamed, tiny_model.decode(latents), rtol=1e-4, atol=1e-5)


def test_streaming_encoder_takes_pieces_of_any_size(tiny_model, long_speech):
    full = tiny_model.encode(long_speech, 16_000)
    streamer = StreamingEncoder(tiny_model, 16_000)
    sizes = torch.randint(1, 2000, (200,), generator=torch.Generator().manual_seed(0)).tolist()
    pieces, start = [], 0
    for size in sizes:
        if start >= long_speech.numel():
            break
        pieces.append(streamer.push(long_speech[start : start + size]))
        start += size
    pieces.append(streamer.flush())
    streamed = torch.cat(pieces, dim=1)
    torch.testing.assert_close(streamed, full, rtol=1e-4, atol=1e-5)
    assert streamer.frames_done == 0  # flush resets for the next signal
    assert streamer.push(torch.zeros(100)).shape == (1, 0, 64)


def test_streaming_encoder_checks_the_sample_rate_and_the_batch(tiny_model):
    with pytest.raises(ValueError, match="sample_rate is 48000 Hz"):
        StreamingEncoder(tiny_model, 48_000)
    with pytest.raises(TypeError, match="sample_rate"):
        StreamingEncoder(tiny_model, 16_000.0)
    streamer = StreamingEncoder(tiny_model, 16_000)
    streamer.push(torch.zeros(2, 500))
    with pytest.raises(ValueError, match="wave has batch size 1, this stream has 2"):
        streamer.push(torch.zeros(700))


def test_rotary_positions_stay_exact_far_into_a_stream():
    torch.manual_seed(0)
    transformer = CausalTransformer(SpeechTokenizerConfig.tiny(), num_layers=1)
    x = torch.randn(1, 8, 128)
    with torch.no_grad():
        at_start, _ = transformer(x)
        ten_days_in, _ = transformer(x, start=50 * 86_400 * 10)  # rotary attention only sees relative positions
    torch.testing.assert_close(ten_days_in, at_start, rtol=1e-4, atol=1e-5)
