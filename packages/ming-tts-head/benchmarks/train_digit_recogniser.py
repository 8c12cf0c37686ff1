"""Train a small in-domain digit recogniser (ming-contextasr's ContextASRRecognizer) to measure the WER of the TTS
head's speech; bench_espeak_tts.py and integration_tests/test_tts_wer.py use it.

ming-contextasr's own tiny recogniser is trained on sentences with made-up names and cannot transcribe digit
sequences (158 % WER on the espeak-ng recordings), so this one is trained on the TTS corpus's kind of speech:
sequences of 2–6 digit words that are never one of espeak_corpus.py's held-out sentences (the ones the TTS head is
evaluated on), spoken by the TTS voice (en-us, speed 160, pitch 50) and by five more espeak-ng voices at varied speed
and pitch, so it does not only know one voice. It hears the recordings as they are, so it measures every tokenizer
alike: ``--round-trip-share`` passes a share of the clips through a speech tokenizer (encode → decode) instead, which
the recogniser of tokenizer recipe v1 needed (half of its clips; v1's artefacts otherwise read as errors) and which
with recipe v9 only weakened it (a half-round-trip recogniser: 48.0 % WER on the held-out recordings and 44.0 % on
their round trip; this one: 22.9 % and 21.1 %).

The model is ming-contextasr's tiny Whisper encoder preset + projector feeding a 2-layer, 128-wide Qwen2 decoder
over a closed word vocabulary (the ten digit words; the prompt's words all map to one unknown token). The answer is
the bare transcript: that vocabulary has no language names, so ``transcribe`` returns it with ``language=None``.
Training adds a CTC loss on the audio embeddings (joint CTC-attention training; the CTC head is not saved): with the
decoder's loss alone a 10-minute run stayed at the loss of a decoder that ignores the audio (89 % WER).

Remake the cached checkpoint (about 18 CPU minutes on one thread: about 1.5 minutes of speech synthesis (and any
tokenizer round trips), then a 16-CPU-minute training budget — 8 before, which left the decoder behind, at 46 % WER on
the recordings; the learning-rate schedule follows the CPU time used, so the step count depends on the machine):

    python packages/ming-tts-head/benchmarks/train_digit_recogniser.py

It writes the recogniser and ``training.json`` (recipe, losses, the sentences it must not be scored on being
absent from its training set, a validation WER) to ``~/.cache/ming/tts-head/digit-recogniser-plain/`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from espeak_corpus import DIGITS, PITCH, SPEED, TOKENIZER_DIR, VOICE, WORDS_PER_SENTENCE, load_tokenizer, sentences
from tokenizers import Tokenizer, models, pre_tokenizers
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from ming_contextasr import (
    AudioCTCHead,
    ContextASRRecognizer,
    ContextASRRequest,
    score_corpus,
    score_utterance,
    small_recognizer,
)
from ming_testdata import SAMPLE_RATE, speak

RECOGNISER_DIR = Path.home() / ".cache" / "ming" / "tts-head" / "digit-recogniser-plain"  # no tokenizer round trips
OTHER_VOICES = ("en-gb", "en-us+f3", "en-gb+m3", "en-029", "en-gb-x-rp")
UNSEEN_VOICE = "en-gb-scotland"  # never in training: the validation's second voice
SPEED_RANGE, PITCH_RANGE = (130, 190), (30, 70)
WIDTH = 128
CTC_SCALE = 30.0
_SPECIALS = ("<pad>", "</s>", "<unk>", "<audio>")


def word_tokenizer() -> PreTrainedTokenizerFast:
    """Whitespace-split word vocabulary: padding, EOS, unknown, the audio placeholder and the ten digit words."""
    vocabulary = {word: i for i, word in enumerate((*_SPECIALS, *DIGITS))}
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<audio>"],
    )


def build_recogniser(seed: int) -> ContextASRRecognizer:
    """A fresh recogniser: the tiny encoder preset projecting to ``WIDTH`` + a 2-layer Qwen2 over the words."""
    return small_recognizer(word_tokenizer(), "<audio>", width=WIDTH, num_layers=2, max_positions=512, seed=seed)


def training_sentences(count: int, seed: int, words: tuple[int, int] = WORDS_PER_SENTENCE) -> list[str]:
    """``count`` different sequences of ``words`` digit words, none of them one of espeak_corpus.py's held-out
    sentences."""
    excluded = set(sentences()[1])
    rng = random.Random(seed)
    texts: dict[str, None] = {}
    while len(texts) < count:
        text = " ".join(rng.choices(DIGITS, k=rng.randint(*words)))
        if text not in excluded:
            texts[text] = None
    return list(texts)


def training_clips(texts: list[str], tts_voice_share: float, seed: int) -> list[tuple[str, str, int, int]]:
    """``(text, voice, speed, pitch)`` per sentence: the TTS voice as the corpus speaks it for a share of them,
    otherwise one of the other voices at a random speed and pitch."""
    rng = random.Random(seed)
    clips = []
    for text in texts:
        if rng.random() < tts_voice_share:
            clips.append((text, VOICE, SPEED, PITCH))
        else:
            clips.append((text, rng.choice(OTHER_VOICES), rng.randint(*SPEED_RANGE), rng.randint(*PITCH_RANGE)))
    return clips


def word_error_rate(model: ContextASRRecognizer, audios: list[torch.Tensor], texts: list[str]) -> float:
    """Corpus WER of ``model``'s greedy transcripts of ``audios`` against ``texts`` (ming-contextasr's scorer)."""
    hypotheses = [t.text for t in model.transcribe([ContextASRRequest(audio=a) for a in audios], max_new_tokens=12)]
    return score_corpus(score_utterance(r, h) for r, h in zip(texts, hypotheses, strict=True)).wer


def learning_rate(step: int, progress: float, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of ``peak`` as ``progress`` (share of the budget) reaches 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RECOGNISER_DIR)
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    parser.add_argument("--sentences", type=int, default=2500)
    parser.add_argument("--words", type=int, nargs=2, default=WORDS_PER_SENTENCE, help="words per sentence")
    parser.add_argument("--tts-voice-share", type=float, default=0.4)
    parser.add_argument("--round-trip-share", type=float, default=0.0, help="clips passed through the tokenizer")
    parser.add_argument("--minutes", type=float, default=16.0, help="training budget, CPU minutes (data excluded)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--ctc-weight", type=float, default=1.0, help="auxiliary CTC loss on the audio embeddings")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)

    started = time.perf_counter()
    tokenizer = load_tokenizer(args.tokenizer) if args.round_trip_share > 0 else None
    texts = training_sentences(args.sentences, args.seed, tuple(args.words))
    specs = training_clips(texts, args.tts_voice_share, args.seed)
    rng = np.random.default_rng(args.seed)
    audios = []
    for text, voice, speed, pitch in tqdm(specs, desc="speak + tokenizer round trip"):
        audio = torch.from_numpy(speak(text, voice, speed=speed, pitch=pitch))
        if rng.random() < args.round_trip_share:
            audio = tokenizer.decode(tokenizer.encode(audio, SAMPLE_RATE))[0, : audio.numel()]
        audios.append(audio)
    data_seconds = time.perf_counter() - started
    print(f"{len(audios)} clips, {sum(a.numel() for a in audios) / SAMPLE_RATE / 60:.1f} min, {data_seconds:.0f} s")

    model = build_recogniser(args.seed).train()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{parameters:,} parameters")
    # Joint CTC-attention training (Watanabe et al. 2017): ming-contextasr's AudioCTCHead over the audio embeddings
    # (blank + ten words, dropped after training) pulls the encoder towards word-aligned features; with the decoder's
    # loss alone the embeddings stayed dominated by one shared direction and the loss near its no-audio value for
    # 3600 steps. The head reads the unit-length embeddings at a fixed scale (CTC_SCALE), as a cosine classifier does.
    ctc_head = AudioCTCHead(WIDTH, 1 + len(DIGITS), scale=CTC_SCALE)
    word_index = {word: 1 + i for i, word in enumerate(DIGITS)}
    optimizer = torch.optim.AdamW([*model.parameters(), *ctc_head.parameters()], lr=args.lr, weight_decay=0.01)
    budget, used, step = 60 * args.minutes, 0.0, 0
    losses: dict[str, list[float]] = {"decoder": [], "ctc": []}
    order: list[int] = []
    bar = tqdm(total=round(budget), desc="train (CPU s)")
    while used < budget:
        tick = time.process_time()
        if len(order) < args.batch:
            order += rng.permutation(len(audios)).tolist()
        batch, order = order[: args.batch], order[args.batch :]
        # A random gain per clip so loudness carries no information about the voice or the round trip.
        requests = [ContextASRRequest(audio=audios[i] * rng.uniform(0.3, 1.0)) for i in batch]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, used / budget, args.lr, args.warmup)
        output = model(requests, [texts[i] for i in batch])
        loss = lm_loss = output.loss
        ctc = torch.zeros(())
        if args.ctc_weight > 0:
            ctc = ctc_head.loss(output.audio, [[word_index[w] for w in texts[i].split()] for i in batch])
            loss = loss + args.ctc_weight * ctc
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses["decoder"].append(lm_loss.item())
        losses["ctc"].append(ctc.item())
        step += 1
        used += time.process_time() - tick
        bar.update(round(used) - bar.n)
        bar.set_postfix(
            step=step, decoder=f"{np.mean(losses['decoder'][-20:]):.3f}", ctc=f"{np.mean(losses['ctc'][-20:]):.3f}"
        )
    bar.close()
    model.eval()
    model.save_pretrained(args.out)

    # Sanity check on sentences of neither training set: the TTS held-out ones, in the TTS voice and an unseen one.
    held_out = sentences()[1]
    validation = {
        voice: word_error_rate(
            model, [torch.from_numpy(speak(t, voice, speed=SPEED, pitch=PITCH)) for t in held_out], held_out
        )
        for voice in (VOICE, UNSEEN_VOICE)
    }
    summary = {
        "parameters": parameters,
        "tokenizer": str(args.tokenizer) if tokenizer is not None else None,
        "voices": {"tts": [VOICE, SPEED, PITCH], "others": OTHER_VOICES, "speed": SPEED_RANGE, "pitch": PITCH_RANGE},
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "train_sentences": len(texts),
        "excluded_sentences": held_out,
        "steps": step,
        "cpu_seconds": used,
        "data_seconds": data_seconds,
        "validation_wer": validation,
        "losses": losses,
    }
    (args.out / "training.json").write_text(json.dumps(summary) + "\n")
    print(
        f"saved to {args.out}: {step} steps, {used / 60:.1f} CPU min, "
        f"last-20-step decoder loss {np.mean(losses['decoder'][-20:]):.3f}; "
        + ", ".join(f"WER on held-out sentences, {voice}: {100 * wer:.1f} %" for voice, wer in validation.items())
    )


if __name__ == "__main__":
    main()
