"""Special tokens of the original checkpoints' chat format (paper §2) and a small offline tokenizer for tiny presets.

Turns are ``<role>SYSTEM</role>``, ``<role>HUMAN</role>`` and ``<role>ASSISTANT</role>``, each ended by
``<|role_end|>`` (also the end-of-sequence token). Media become ``<image><imagePatch>…</image>``,
``<video><framePatch>…</video>`` and ``<audio><audioPatch>…</audio>``, one patch token per encoder output.
``<think>…</think>`` is plain text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

__all__ = [
    "AUDIO_END",
    "AUDIO_PATCH",
    "AUDIO_START",
    "EOS",
    "FRAME_PATCH",
    "IMAGE_END",
    "IMAGE_PATCH",
    "IMAGE_START",
    "PAD",
    "ROLE_END",
    "ROLE_START",
    "SPECIAL_TOKENS",
    "VIDEO_END",
    "VIDEO_START",
    "byte_tokenizer",
    "make_tokenizer",
    "word_tokenizer",
]

ROLE_START, ROLE_END, EOS = "<role>", "</role>", "<|role_end|>"
IMAGE_START, IMAGE_PATCH, IMAGE_END = "<image>", "<imagePatch>", "</image>"
VIDEO_START, FRAME_PATCH, VIDEO_END = "<video>", "<framePatch>", "</video>"
AUDIO_START, AUDIO_PATCH, AUDIO_END = "<audio>", "<audioPatch>", "</audio>"
PAD = "<|endoftext|>"

SPECIAL_TOKENS = (
    PAD,
    ROLE_START,
    ROLE_END,
    EOS,
    IMAGE_START,
    IMAGE_PATCH,
    IMAGE_END,
    VIDEO_START,
    FRAME_PATCH,
    VIDEO_END,
    AUDIO_START,
    AUDIO_PATCH,
    AUDIO_END,
)
"""Tokens that must each be one id in the tokenizer (the processor checks this)."""


def make_tokenizer(
    texts: Iterable[str], vocab_size: int = 512, directory: str | Path | None = None
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with :data:`SPECIAL_TOKENS` on ``texts``, offline (for tiny presets).

    Every byte is in the vocabulary, so any text encodes. The special tokens take the first ids.

    Args:
        texts: training text.
        vocab_size: vocabulary size, at least 256 bytes + the special tokens.
        directory: where to save it (``tokenizer.json`` + config), for ``MingOmniProcessor.from_pretrained``.

    Raises:
        ValueError: ``vocab_size`` is too small to hold the bytes and the special tokens.
    """
    minimum = 256 + len(SPECIAL_TOKENS)
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (256 bytes + special tokens), got {vocab_size}")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD)
    if directory is not None:
        fast.save_pretrained(directory)
    return fast


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer whose ids are a text's UTF-8 bytes (256 ids, no special tokens): the text vocabulary of
    ming-tts-head's trained tiny head (its benchmark trains on ``list(text.encode())``), as a talker tokenizer."""
    byte_char = _bytes_to_unicode()
    tokenizer = Tokenizer(models.BPE(vocab={byte_char[b]: b for b in range(256)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


def word_tokenizer(vocabulary: Sequence[str], unk_token: str = "<unk>") -> PreTrainedTokenizerFast:
    """A tokenizer with one id per whitespace-separated word: its index in ``vocabulary``, and
    ``len(vocabulary)`` (``unk_token``) for any other word; no special tokens are added. This is the text vocabulary
    of ming-tts-head's trained espeak-ng head (one id per digit word, its ``training.json["text_vocabulary"]``), as
    a talker tokenizer.

    Raises:
        ValueError: an empty vocabulary, or one with repeated words, blanks or ``unk_token``.
    """
    words = list(vocabulary)
    if (
        not words
        or len(set(words)) != len(words)
        or unk_token in words
        or any(not w or w.split() != [w] for w in words)
    ):
        raise ValueError(f"vocabulary must be distinct single words without {unk_token!r}, got {words!r}")
    vocab = {word: i for i, word in enumerate([*words, unk_token])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk_token))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token=unk_token)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table, which the ``ByteLevel`` pre-tokenizer applies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars
