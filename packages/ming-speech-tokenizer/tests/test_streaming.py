"""Streaming decoding and chunked / streaming encoding equal one pass over everything."""

from itertools import pairwise

import pytest
import torch

from ming_speech_tokenizer import StreamingDecoder, StreamingEncoder


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
        assert piece.shape == (1, 320)  # 20 ms per frame, no look-ahead
        pieces.append(piece)
    torch.testing.assert_close(torch.cat(pieces, dim=-1), full, rtol=1e-4, atol=1e-5)


def test_streaming_decoder_in_uneven_chunks_and_after_reset(tiny_model):
    latents = torch.randn(2, 90, 64, generator=torch.Generator().manual_seed(0))
    full = tiny_model.decode(latents)
    streamer = StreamingDecoder(tiny_model)
    streamer.step(torch.randn(2, 7, 64))  # another signal, then forgotten
    streamer.reset()
    bounds = [0, 1, 5, 37, 38, 90]
    audio = torch.cat([streamer.step(latents[:, a:b]) for a, b in pairwise(bounds)], dim=-1)
    torch.testing.assert_close(audio, full, rtol=1e-4, atol=1e-5)
    assert streamer.frames_done == 90
    with pytest.raises(ValueError, match="batch size"):
        streamer.step(latents[:1, :1])


def test_chunked_encoding_has_no_seams(tiny_model, long_speech):
    full = tiny_model.encode(long_speech, 16_000)
    for chunk_frames in (1, 13, 64, 500):
        chunked = tiny_model.encode(long_speech, 16_000, chunk_frames=chunk_frames)
        torch.testing.assert_close(chunked, full, rtol=1e-4, atol=1e-5)


def test_streaming_encoder_takes_pieces_of_any_size(tiny_model, long_speech):
    full = tiny_model.encode(long_speech, 16_000)
    streamer = StreamingEncoder(tiny_model)
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
