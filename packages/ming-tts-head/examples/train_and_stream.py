"""Train the tiny TTS head on a toy latent language, then stream speech latents for held-out texts.

Run: python packages/ming-tts-head/examples/train_and_stream.py [--steps 200] [--out DIR]
Shows: the latent contract (patches of 4 × 64 at 50 frames/s), the loss falling, streaming generation with the
paper's sampler (10 EPSS Euler steps, CFG 2 in one batched forward, stop head), time to the first patch, generated vs
reference durations on held-out texts, and — when ming-speech-tokenizer is installed (the ``examples`` extra) — audio
chunks from its streaming decoder as each patch arrives (an untrained tokenizer: the plumbing, not the sound).
The toy language stands in for real speech latents: token t is "spoken" as 4, 8 or 12 frames of its own latent
vector plus noise, so durations depend on the text. Under a minute on two CPU cores; this short run learns the
durations, not yet the content (see the last line it prints).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ming_tts_head import GenerationOptions, TrainingRecipe, TTSHeadConfig, TTSHeadModel, stream_speech, train_tts_head

VOCAB = 12


SOUNDS = torch.randn(VOCAB, 64, generator=torch.Generator().manual_seed(1234))


def toy_examples(n: int, seed: int) -> list[tuple[list[int], torch.Tensor]]:
    """``n`` texts of 3–7 tokens and their latents: token t lasts 4·(1 + t mod 3) frames of its own vector."""
    g = torch.Generator().manual_seed(seed)
    examples = []
    for _ in range(n):
        text = torch.randint(0, VOCAB, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g).tolist()
        frames = torch.cat([SOUNDS[t].expand(4 * (1 + t % 3), 64) for t in text])
        examples.append((text, frames + 0.1 * torch.randn(frames.shape, generator=g)))
    return examples


def speech_decoder():
    """ming-speech-tokenizer's streaming decoder (tiny, untrained) if installed, else None."""
    try:
        from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel, StreamingDecoder
    except ImportError:
        return None
    torch.manual_seed(0)
    return StreamingDecoder(SpeechTokenizerModel(SpeechTokenizerConfig.tiny()).eval())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small ops: 1 is fastest on 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train, held_out = toy_examples(256, seed=0), toy_examples(12, seed=1)
    torch.manual_seed(0)
    model = TTSHeadModel(TTSHeadConfig.tiny())
    print(f"tiny TTS head: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; flash() is 766 M")
    out = args.out or Path(tempfile.mkdtemp(prefix="tts-head-"))
    recipe = TrainingRecipe(output_dir=out, steps=args.steps, batch_size=16, learning_rate=2e-3, checkpoint_every=100)
    log = train_tts_head(model, train, recipe)
    first, last = (sum(part) / len(part) for part in (log.losses["total"][:20], log.losses["total"][-20:]))
    print(f"training loss (flow + stop): {first:.3f} → {last:.3f} over {args.steps} steps; checkpoints in {out}")

    options = GenerationOptions(min_patches=1, max_patches=40)  # EPSS 10 steps, CFG 2; toy texts are short
    decoder = speech_decoder()
    start = time.perf_counter()
    chunks = list(stream_speech(model, held_out[0][0], options, decoder))
    patches = sum(c.latents.shape[1] > 0 for c in chunks)  # a decoder's flushed tail comes as a latent-free chunk
    print(
        f"held-out text {held_out[0][0]}: {patches} patches of {tuple(chunks[0].latents.shape)} streamed in "
        f"{time.perf_counter() - start:.2f} s"
    )
    if decoder is not None:
        sizes = [c.audio.shape[-1] for c in chunks]
        print(
            f"  each patch decoded on arrival by ming-speech-tokenizer's StreamingDecoder: chunks of {sizes} samples "
            "(1280 = 80 ms at 16 kHz; the first is shorter by the decoder's latency, which the last, flushed, returns)"
        )

    generated, reference, right, compared = [], [], 0, 0
    for text, latents in held_out:
        frames = torch.cat([c.latents[0] for c in stream_speech(model, text, options)])
        generated.append(frames.shape[0])
        reference.append(latents.shape[0])
        length = min(frames.shape[0], latents.shape[0])
        nearest = torch.cdist(frames[:length], SOUNDS).argmin(-1)  # which toy "phone" each generated frame is
        right += int((nearest == torch.cdist(latents[:length], SOUNDS).argmin(-1)).sum())
        compared += length
    pair = torch.tensor([generated, reference], dtype=torch.float64)
    correlation = torch.corrcoef(pair)[0, 1].item()
    error = (pair[0] - pair[1]).abs().mean().item()
    print(f"held-out durations (frames), generated vs reference: {list(zip(generated, reference, strict=True))}")
    print(f"  correlation {correlation:.2f}, mean absolute error {error:.1f} frames ({error * 20:.0f} ms)")
    print(
        f"  generated frames nearest to the reference frame's toy sound: {right / compared:.1%} (chance "
        f"{1 / VOCAB:.1%}; durations come first, the content needs far more steps — a 2-text overfit gets it right)"
    )


if __name__ == "__main__":
    main()
