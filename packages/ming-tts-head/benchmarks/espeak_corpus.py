"""The corpus of the TTS head's small real training run, shared by ``train_espeak_tts.py`` and
``bench_espeak_tts.py``: sequences of two to six digit words ("seven two nine") spoken by one espeak-ng voice
(ming-testdata), their UTF-8 bytes as text ids (the tiny preset's 256-token vocabulary) and their latents from the
tiny speech tokenizer (ming-speech-tokenizer). Held-out sentences are digit sequences that no training sentence has.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ming_speech_tokenizer import SpeechTokenizerModel
from ming_testdata import SAMPLE_RATE, speak

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICE, SPEED, PITCH = "en-us", 160, 50
WORDS_PER_SENTENCE = (2, 6)
N_TRAIN, N_HELD_OUT = 400, 40
TOKENIZER_DIR = Path.home() / ".cache" / "ming" / "speech-tokenizer" / "tiny-espeak"
CHECKPOINT_DIR = Path.home() / ".cache" / "ming" / "tts-head" / "tiny-espeak"


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
        """The text's UTF-8 bytes: the TTS head's token ids."""
        return list(self.text.encode())


def sentences(n_train: int = N_TRAIN, n_held_out: int = N_HELD_OUT, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n_train`` training and ``n_held_out`` held-out digit sequences, all different."""
    rng = random.Random(seed)
    texts: dict[str, None] = {}  # ordered and unique
    while len(texts) < n_train + n_held_out:
        texts[" ".join(rng.choices(DIGITS, k=rng.randint(*WORDS_PER_SENTENCE)))] = None
    ordered = list(texts)
    return ordered[:n_train], ordered[n_train:]


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
