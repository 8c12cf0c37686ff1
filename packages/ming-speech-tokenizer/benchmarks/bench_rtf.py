"""Encode and decode real-time factor on CPU: the tokenizer (tiny and flash) beside Mimi, DAC and EnCodec.

Run: python packages/ming-speech-tokenizer/benchmarks/bench_rtf.py [--seconds 5] [--repeats 3]
Every model has random weights (speed does not depend on them; nothing is downloaded): the tokenizer's presets and
transformers' ``MimiModel``, ``DacModel`` and ``EncodecModel`` built from their default configs. All encode and
decode the same espeak-ng clip, resampled beforehand to each model's rate (not timed), in one process on one thread.
RTF = seconds of compute / seconds of audio (below 1: faster than real time); the median of ``--repeats`` timed
calls after one warm-up call. The peers encode to discrete codes and decode from them (their quantizers included).
For the tokenizer (its presets and two sizes matched to the peers), the streaming column times one 20 ms frame
through ``StreamingEncoder.push`` and ``StreamingDecoder.step`` (median over the first 50 frames), and the latency
column is the algorithmic one: the input frame plus the decoder's look-ahead (``config.latency_frames`` frames) before
a decoded slot is final, compute not included. The tiny preset also runs with ``head_subframes=4``, the head whose
look-ahead is one frame. Writes results/rtf.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from report import write_result
from torch import nn
from torchaudio.functional import resample
from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel, MimiConfig, MimiModel

from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel, StreamingDecoder, StreamingEncoder
from ming_testdata import SpeechOptions, make_speech
from ming_testdata.timing import median_seconds

CLIP_RATE = 16_000
STREAM_FRAMES = 50  # frames timed one by one; the per-frame cost hardly grows with the history (matmuls dominate)
# Sizes between the presets, to compare with the peers at comparable parameter counts (about 15 M and 86 M).
ENCODEC_SIZED = {
    "hidden_size": 384,
    "num_attention_heads": 6,
    "intermediate_size": 1536,
    "encoder_layers": 4,
    "decoder_layers": 4,
}
MIMI_SIZED = {"encoder_layers": 6, "decoder_layers": 6}


@dataclass
class Codec:
    """A model under test: its name, rate, frame length and its encode / decode as plain functions."""

    name: str
    model: nn.Module
    sample_rate: int
    frame_ms: float
    encode: Callable[[torch.Tensor], object]
    decode: Callable[[object], torch.Tensor]


def tokenizer(name: str, config: SpeechTokenizerConfig) -> Codec:
    model = SpeechTokenizerModel(config).eval()
    return Codec(
        name,
        model,
        config.sampling_rate,
        1000 / config.frame_rate,
        lambda wave: model.encode(wave, config.sampling_rate),
        model.decode,
    )


def mimi() -> Codec:
    model = MimiModel(MimiConfig()).eval()
    return Codec(
        "Mimi (transformers, default config)",
        model,
        model.config.sampling_rate,
        1000 / model.config.frame_rate,
        lambda wave: model.encode(wave).audio_codes,
        lambda codes: model.decode(codes).audio_values,
    )


def dac() -> Codec:
    model = DacModel(DacConfig()).eval()
    return Codec(
        "DAC (transformers, default config)",
        model,
        model.config.sampling_rate,
        1000 * model.config.hop_length / model.config.sampling_rate,
        lambda wave: model.encode(wave).audio_codes,
        lambda codes: model.decode(audio_codes=codes).audio_values,
    )


def encodec() -> Codec:
    model = EncodecModel(EncodecConfig()).eval()
    return Codec(
        "EnCodec (transformers, default config)",
        model,
        model.config.sampling_rate,
        1000 / model.config.frame_rate,
        lambda wave: model.encode(wave),
        lambda out: model.decode(out.audio_codes, out.audio_scales, last_frame_pad_length=out.last_frame_pad_length)[0],
    )


def streaming_ms(model: SpeechTokenizerModel, wave: torch.Tensor) -> tuple[float, float]:
    """Median milliseconds to push one frame of audio through the streaming encoder and one latent frame through
    the streaming decoder, over the first ``STREAM_FRAMES`` frames of the clip."""
    hop = model.config.hop_length
    encoder, decoder = StreamingEncoder(model, model.config.sampling_rate), StreamingDecoder(model)
    encode_times, decode_times = [], []
    for start in range(0, min(wave.shape[-1] - hop + 1, STREAM_FRAMES * hop), hop):
        t0 = time.perf_counter()
        latent = encoder.push(wave[:, start : start + hop])
        t1 = time.perf_counter()
        decoder.step(latent)
        t2 = time.perf_counter()
        encode_times.append(t1 - t0)
        decode_times.append(t2 - t1)
    return 1000 * statistics.median(encode_times), 1000 * statistics.median(decode_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rtf.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread for every model: a shared two-core machine
    speech = torch.cat([torch.from_numpy(u.audio) for u in make_speech(SpeechOptions(n=4, seed=2))])
    clip = speech[: int(args.seconds * CLIP_RATE)]
    seconds = clip.numel() / CLIP_RATE

    builders = [
        lambda: tokenizer("tokenizer tiny", SpeechTokenizerConfig.tiny()),
        lambda: tokenizer("tokenizer tiny, head_subframes=4", SpeechTokenizerConfig.tiny(head_subframes=4)),
        lambda: tokenizer("tokenizer, EnCodec-sized (4 + 4 × 384)", SpeechTokenizerConfig.flash(**ENCODEC_SIZED)),
        lambda: tokenizer("tokenizer, Mimi/DAC-sized (6 + 6 × 768)", SpeechTokenizerConfig.flash(**MIMI_SIZED)),
        lambda: tokenizer("tokenizer flash", SpeechTokenizerConfig.flash()),
        mimi,
        dac,
        encodec,
    ]
    rows = []
    for build in builders:  # one model in memory at a time: the flash preset and DAC hold hundreds of MB
        torch.manual_seed(0)
        codec = build()
        wave = resample(clip, CLIP_RATE, codec.sample_rate)[None, None]
        with torch.inference_mode():
            code = codec.encode(wave)
            encode_rtf = median_seconds(lambda c=codec, w=wave: c.encode(w), args.repeats) / seconds
            decode_rtf = median_seconds(lambda c=codec, z=code: c.decode(z), args.repeats) / seconds
        ours = isinstance(codec.model, SpeechTokenizerModel)
        stream = streaming_ms(codec.model, wave[0]) if ours else None
        rows.append(
            {
                "model": codec.name,
                "params (M)": f"{sum(p.numel() for p in codec.model.parameters()) / 1e6:.2f}",
                "rate (kHz)": f"{codec.sample_rate / 1000:g}",
                "frame (ms)": f"{codec.frame_ms:.1f}",
                "encode RTF": f"{encode_rtf:.4f}",
                "decode RTF": f"{decode_rtf:.4f}",
                "encode + decode RTF": f"{encode_rtf + decode_rtf:.4f}",
                "stream: encode / decode one frame (ms)": "—"
                if stream is None
                else f"{stream[0]:.2f} / {stream[1]:.2f}",
                "streaming latency (ms)": f"{codec.frame_ms * (1 + codec.model.config.latency_frames):.0f}"
                if ours
                else "—",
            }
        )
        print(" | ".join(rows[-1].values()), flush=True)

    write_result(
        args.out,
        "Encode / decode real-time factor on CPU, random weights, one thread",
        "bench_rtf.py",
        rows,
        f"One {seconds:.1f} s espeak-ng clip, resampled to each model's rate; median of {args.repeats} calls "
        "after a warm-up. Peers: transformers' MimiModel, DacModel and EncodecModel from their default configs "
        "(codes in and out, quantizers included). The tokenizer's middle rows are flash() with fewer or narrower "
        "blocks, to match the peers' sizes. Its streaming latency is one 20 ms frame of input plus the decoder's "
        "look-ahead (60 ms with the presets' head, 20 ms with head_subframes=4), plus the two one-frame compute "
        "times shown. "
        "Timings on a machine shared with other jobs: compare rows of the same run.",
    )


if __name__ == "__main__":
    main()
