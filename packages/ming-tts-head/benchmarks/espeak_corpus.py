"""The corpus of the TTS head's small real training run, shared by ``train_espeak_tts.py`` and
``bench_espeak_tts.py``: sequences of two to six digit words ("seven two nine") spoken by one espeak-ng voice
(ming-testdata), one text id per word (as Qwen2.5's BPE gives one token to " seven") and their latents from the tiny
speech tokenizer (ming-speech-tokenizer). Held-out sentences are digit sequences that no training sentence has.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ming_speech_tokenizer import SpeechTokenizerModel
from ming_testdata import SAMPLE_RATE, speak

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICE, SPEED, PITCH = "en-us", 160, 50
WORDS_PER_SENTENCE = (2, 6)
N_TRAIN, N_HELD_OUT, N_VALIDATION = 2000, 40, 40
HELD_OUT_START = 400  # the held-out sentences are the draws after the first 400, whatever the training set's size
FRAME_SAMPLES = 320  # one latent frame = 20 ms at 16 kHz
LOUD = 0.02  # a 20 ms frame is speech when its RMS exceeds this share of the clip's loudest frame
TAIL_FRAMES = 4  # silence kept after the last loud frame when trailing silence is trimmed (speech_latents)
# ming-speech-tokenizer's recipe v9 (train_tiny_espeak.py's default); the head's folder names the tokenizer it learnt
# from, so a head trained on another tokenizer's latents (v1's, before) is never decoded by this one
TOKENIZER_DIR = Path.home() / ".cache" / "ming" / "speech-tokenizer" / "tiny-espeak-v9"
CHECKPOINT_DIR = Path.home() / ".cache" / "ming" / "tts-head" / "tiny-espeak-v9"


@dataclass(frozen=True)
class Clip:
    """One spoken sentence.

    Attributes:
        text: the digit words.
        audio: ``(samples,)`` float32 at 16 kHz, as espeak-ng said it.
        latents: ``(frames, 64)`` tokenizer latents at 50 frames/s.
    """

    text: str
    audio: torch.Tensor
    latents: torch.Tensor

    @property
    def text_ids(self) -> list[int]:
        """The TTS head's token ids of the text (:func:`text_ids`)."""
        return text_ids(self.text)

    def speech_latents(self, patch_size: int = 4) -> torch.Tensor:
        """The latents up to the last loud frame plus ``TAIL_FRAMES``, rounded up to whole patches: espeak-ng ends
        every clip with about 340 ms of silence, which taught the head to wait four silent patches before stopping,
        long enough for its flow head to start a new burst of sound."""
        kept = math.ceil((speech_frames(self.audio) + TAIL_FRAMES) / patch_size) * patch_size
        return self.latents[: min(kept, self.latents.shape[0])]


def speech_frames(audio: torch.Tensor) -> int:
    """Number of 20 ms frames of ``audio`` up to and including the last loud one (RMS above ``LOUD`` times the
    loudest frame's); 0 for silence."""
    frames = audio[: audio.numel() // FRAME_SAMPLES * FRAME_SAMPLES].view(-1, FRAME_SAMPLES)
    rms = frames.float().pow(2).mean(1).sqrt()
    loud = (rms > LOUD * rms.max()).nonzero()
    return int(loud[-1]) + 1 if rms.max() > 0 and loud.numel() else 0


def text_ids(text: str) -> list[int]:
    """One id per digit word, its index in ``DIGITS`` (the head's vocabulary is these ten words)."""
    return [DIGITS.index(word) for word in text.split()]


def sentences(n_train: int = N_TRAIN, n_held_out: int = N_HELD_OUT, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n_train`` training and ``n_held_out`` held-out digit sequences, all different. The held-out ones are the
    unique draws from ``HELD_OUT_START`` on, so they stay the same when ``n_train`` grows (the digit recogniser is
    trained without them)."""
    rng = random.Random(seed)
    texts: dict[str, None] = {}  # ordered and unique
    while len(texts) < n_train + n_held_out:
        texts[" ".join(rng.choices(DIGITS, k=rng.randint(*WORDS_PER_SENTENCE)))] = None
    ordered = list(texts)
    start = min(HELD_OUT_START, n_train)
    return ordered[:start] + ordered[start + n_held_out :], ordered[start : start + n_held_out]


def validation_sentences(n_validation: int = N_VALIDATION, seed: int = 0) -> list[str]:
    """Digit sequences in neither :func:`sentences` set (the unique draws after the default training and held-out
    ones): sampler settings are chosen on these, never on the held-out sentences."""
    train, held_out = sentences(seed=seed)
    rng = random.Random(seed)
    texts: dict[str, None] = {}
    while len(texts) < len(train) + len(held_out) + n_validation:
        texts[" ".join(rng.choices(DIGITS, k=rng.randint(*WORDS_PER_SENTENCE)))] = None
    return list(texts)[len(train) + len(held_out) :]


def load_tokenizer(path: Path) -> SpeechTokenizerModel:
    """The trained speech tokenizer saved at ``path`` (``save_pretrained``), in evaluation mode."""
    if not (path / "config.json").is_file():
        raise SystemExit(f"no speech tokenizer at {path}: train it first (see ming-speech-tokenizer's README)")
    return SpeechTokenizerModel.from_pretrained(path).eval()


def make_clips(texts: list[str], tokenizer: SpeechTokenizerModel) -> list[Clip]:
    """Speak ``texts`` with the corpus voice (cached on disk by ming-testdata) and encode them."""
    clips = []
    for text in texts:
        audio = torch.from_numpy(speak(text, VOICE, speed=SPEED, pitch=PITCH))
        clips.append(Clip(text, audio, tokenizer.encode(audio, SAMPLE_RATE)[0]))
    return clips
