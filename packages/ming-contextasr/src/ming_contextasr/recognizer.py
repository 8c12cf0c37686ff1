"""A complete context-aware recogniser: audio encoder + projector feeding a causal language model (paper §2.2).

One row of the token sequence is::

    <render_prompt(request).text> "\\n" <audio placeholder × num_audio_tokens> <answer> <eos>

where the answer is ``{language}\\t{transcript}`` (:func:`format_transcription`). The placeholders' input embeddings
are replaced by :class:`ContextASRAudioModel`'s output, so any transformers causal LM whose input width is the
projector's output width fits; training puts the loss on the answer and EOS only. Decoding is the LM's own
``generate()``, optionally with :class:`HotwordBiasingProcessor`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Lfm2Config,
    Lfm2ForCausalLM,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.modeling_outputs import CausalLMOutputWithPast

from .biasing import HotwordBiasingProcessor, hotword_token_ids
from .modeling import AudioEncoderOutput, ContextASRAudioConfig, ContextASRAudioModel
from .prompt import ContextASRRequest, PromptOptions, Transcription, parse_transcription, render_prompt

__all__ = ["ContextASRRecognizer", "RecognizerOutput", "small_recognizer"]

_IGNORE = -100  # label of positions without loss (transformers' convention)
_SUBDIRS = {"audio": "audio", "language_model": "language_model", "tokenizer": "tokenizer"}
_SETTINGS = "recognizer.json"


def _biasing_ids(tokenizer: Any, words: Sequence[str]) -> list[list[int]]:
    """:func:`hotword_token_ids`, less spellings that end with another spelling.

    With a byte- or character-level tokenizer " Zorbak" is the space token followed by "Zorbak": the shorter
    spelling already matches there, and the longer one would put a bonus on every space.
    """
    ids = hotword_token_ids(tokenizer, words)
    return [
        word
        for word in ids
        if not any(len(other) < len(word) and word[len(word) - len(other) :] == other for other in ids)
    ]


@dataclass
class RecognizerOutput(CausalLMOutputWithPast):
    """The LM's teacher-forced output plus ``audio``, the audio model's output for the batch (e.g. for an auxiliary
    :class:`AudioCTCHead` loss)."""

    audio: AudioEncoderOutput | None = None


class _RowBiasing(LogitsProcessor):
    """One :class:`HotwordBiasingProcessor` (or none) per row of a greedy batch, whose rows keep their order."""

    def __init__(self, processors: Sequence[HotwordBiasingProcessor | None]) -> None:
        self.processors = processors

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = [
            scores[i : i + 1] if p is None else p(input_ids[i : i + 1], scores[i : i + 1])
            for i, p in enumerate(self.processors)
        ]
        return torch.cat(rows)


class ContextASRRecognizer(nn.Module):
    """Audio model + causal LM + tokenizer: trains on ``(request, answer)`` pairs and transcribes requests.

    Args:
        audio_model: the encoder + projector.
        language_model: a transformers causal LM whose embedding width is ``audio_model.config.llm_hidden_size``.
        tokenizer: the LM's tokenizer; it needs EOS and padding tokens.
        audio_token_id: id of the audio placeholder token (never produced by tokenising prompt text).
        prompt_options: truncation limits of the rendered context.

    Raises:
        ValueError: the widths differ, the tokenizer lacks EOS or padding, or ``audio_token_id`` is outside the
            LM's vocabulary.
    """

    def __init__(
        self,
        audio_model: ContextASRAudioModel,
        language_model: PreTrainedModel,
        tokenizer: Any,
        audio_token_id: int,
        prompt_options: PromptOptions | None = None,
    ) -> None:
        super().__init__()
        width = language_model.get_input_embeddings().embedding_dim
        if width != audio_model.config.llm_hidden_size:
            raise ValueError(
                f"the language model is {width} wide but the projector outputs {audio_model.config.llm_hidden_size}"
            )
        if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs an EOS and a padding token")
        vocab = language_model.get_input_embeddings().num_embeddings
        if not 0 <= audio_token_id < vocab:
            raise ValueError(f"audio_token_id {audio_token_id} is outside the vocabulary of {vocab} tokens")
        self.audio_model = audio_model
        self.language_model = language_model
        self.tokenizer = tokenizer
        self.audio_token_id = audio_token_id
        self.prompt_options = prompt_options or PromptOptions()

    def _text_ids(self, text: str) -> list[int]:
        # Special tokens spelled inside user text (a hotword "<audio>") stay text: only _inputs places audio slots.
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def _prompt_ids(self, request: ContextASRRequest) -> list[int]:
        return self._text_ids(render_prompt(request, self.prompt_options).text + "\n")

    def _inputs(
        self, requests: Sequence[ContextASRRequest], answers: Sequence[str] | None
    ) -> tuple[dict[str, torch.Tensor], AudioEncoderOutput]:
        """Input ids, embeddings, attention mask (and labels with ``answers``): right-padded for training,
        left-padded for generation; and the audio model's output."""
        audio = self.audio_model([r.audio for r in requests])
        rows, labels = [], []
        for i, request in enumerate(requests):
            prompt = self._prompt_ids(request) + [self.audio_token_id] * int(audio.lengths[i])
            answer = []
            if answers is not None:
                answer = [*self._text_ids(answers[i]), self.tokenizer.eos_token_id]
            rows.append(prompt + answer)
            labels.append([_IGNORE] * len(prompt) + answer)
        longest = max(len(row) for row in rows)
        device = self.audio_model.device

        def pad(row: list[int], value: int) -> list[int]:
            filler = [value] * (longest - len(row))
            return row + filler if answers is not None else filler + row

        ids = torch.tensor([pad(row, self.tokenizer.pad_token_id) for row in rows], device=device)
        mask = torch.tensor([pad([1] * len(row), 0) for row in rows], device=device)
        embeds = self.language_model.get_input_embeddings()(ids)
        valid = torch.arange(audio.embeddings.shape[1], device=device) < audio.lengths[:, None]
        # Placeholders sit in row order and, within a row, in time order: the same order as the valid embeddings.
        placeholders = (ids == self.audio_token_id) & mask.bool()
        embeds = embeds.masked_scatter(placeholders[..., None], audio.embeddings[valid].to(embeds.dtype))
        inputs = {"input_ids": ids, "inputs_embeds": embeds, "attention_mask": mask}
        if answers is not None:
            inputs["labels"] = torch.tensor([pad(row, _IGNORE) for row in labels], device=device)
        return inputs, audio

    def forward(self, requests: Sequence[ContextASRRequest], answers: Sequence[str]) -> RecognizerOutput:
        """Teacher-forced LM output; ``loss`` is the mean cross-entropy over answer and EOS tokens, ``audio`` the
        audio model's output.

        Args:
            requests: the inputs (audio and context).
            answers: one target per request, ``{language}\\t{transcript}`` (see :func:`format_transcription`).
        """
        if len(answers) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(answers)} answers")
        inputs, audio = self._inputs(requests, answers)
        del inputs["input_ids"]
        return RecognizerOutput(**self.language_model(**inputs), audio=audio)

    @torch.no_grad()
    def transcribe(
        self,
        requests: Sequence[ContextASRRequest],
        *,
        bias_hotwords: Sequence[Sequence[str]] | None = None,
        bonus: float = 2.0,
        max_new_tokens: int = 256,
        batch_size: int = 16,
    ) -> list[Transcription]:
        """Greedy transcription of each request (its hotwords and topic go into the prompt).

        Args:
            requests: what to transcribe.
            bias_hotwords: optional decoding-time hotwords, one list per request (independent of the prompt's
                list): each request with a non-empty list is decoded with its own :class:`HotwordBiasingProcessor`.
            bonus: the biasing bonus per matched token.
            max_new_tokens: longest answer, in tokens.
            batch_size: requests decoded together.

        Returns:
            One :class:`Transcription` per request (``language`` is ``None`` for an answer without a tab).
        """
        if bias_hotwords is not None and len(bias_hotwords) != len(requests):
            raise ValueError(f"{len(requests)} requests but {len(bias_hotwords)} bias_hotwords lists")
        results = []
        for start in range(0, len(requests), batch_size):
            group = requests[start : start + batch_size]
            processors = LogitsProcessorList()
            if bias_hotwords is not None:
                words = bias_hotwords[start : start + batch_size]
                rows = [HotwordBiasingProcessor(_biasing_ids(self.tokenizer, w), bonus) if w else None for w in words]
                if any(rows):
                    processors.append(_RowBiasing(rows))
            inputs, _ = self._inputs(group, None)
            output = self.language_model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                logits_processor=processors,
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            texts = self.tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            results += [parse_transcription(text, strict=False) for text in texts]
        return results

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the audio model, LM (safetensors) and tokenizer to subfolders of ``directory``."""
        directory = Path(directory)
        self.audio_model.save_pretrained(directory / _SUBDIRS["audio"])
        self.language_model.save_pretrained(directory / _SUBDIRS["language_model"])
        self.tokenizer.save_pretrained(directory / _SUBDIRS["tokenizer"])
        settings = {"audio_token_id": self.audio_token_id, "prompt_options": self.prompt_options.model_dump()}
        (directory / _SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ContextASRRecognizer:
        """Load what :meth:`save_pretrained` wrote (local files only), in eval mode."""
        directory = Path(directory)
        settings = json.loads((directory / _SETTINGS).read_text())
        return cls(
            ContextASRAudioModel.from_pretrained(directory / _SUBDIRS["audio"]),
            AutoModelForCausalLM.from_pretrained(directory / _SUBDIRS["language_model"]),
            AutoTokenizer.from_pretrained(directory / _SUBDIRS["tokenizer"]),
            settings["audio_token_id"],
            PromptOptions(**settings["prompt_options"]),
        ).eval()


def small_recognizer(
    tokenizer: Any,
    audio_token: str,
    *,
    width: int = 128,
    num_layers: int = 4,
    max_positions: int = 1024,
    seed: int = 0,
    decoder: Literal["qwen2", "lfm2"] = "qwen2",
) -> ContextASRRecognizer:
    """A freshly initialised recogniser for small experiments: the tiny encoder preset projecting to ``width`` and a
    small decoder (4 heads, 2 KV heads, MLP ``2 × width``, tied embeddings) over ``tokenizer``.

    ``decoder="qwen2"`` is a Qwen2 of ``num_layers`` attention layers. ``decoder="lfm2"`` is transformers' LFM2 with
    short causal convolutions (kernel 3) and attention layers alternating (conv first): a conv layer puts each
    token's predecessor into its state, so a single attention layer can find where the current token occurred
    before and copy what followed it. A plain transformer must first grow a previous-token head and an induction
    head together; trained from scratch on a CPU budget, the Qwen2 decoder copies names from a hotword list
    about half right, the LFM2 one almost always (see the docs).

    Args:
        tokenizer: the decoder's tokenizer (EOS and padding tokens required); its size sets the vocabulary.
        audio_token: the tokenizer's token that marks audio slots.
        width: decoder width, also the projector's output width.
        num_layers: decoder layers (for ``"lfm2"``, convolution and attention layers together).
        max_positions: decoder position limit (prompt + audio + answer).
        seed: ``torch.manual_seed`` before the weights are drawn.
        decoder: ``"qwen2"`` or ``"lfm2"``.
    """
    torch.manual_seed(seed)
    audio_config = ContextASRAudioConfig.tiny()
    audio_config.llm_hidden_size = width
    shared = {
        "vocab_size": len(tokenizer),
        "hidden_size": width,
        "intermediate_size": 2 * width,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": max_positions,
        "tie_word_embeddings": True,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": None,
    }
    if decoder == "qwen2":
        language_model = Qwen2ForCausalLM(Qwen2Config(**shared))
    elif decoder == "lfm2":
        layer_types = ["conv" if i % 2 == 0 else "full_attention" for i in range(num_layers)]
        # block_auto_adjust_ff_dim off: LFM2 would otherwise rescale the MLP to 2/3 and round it up to 256
        config = Lfm2Config(**shared, layer_types=layer_types, block_auto_adjust_ff_dim=False)
        language_model = Lfm2ForCausalLM(config)
    else:
        raise ValueError(f"decoder must be 'qwen2' or 'lfm2', got {decoder!r}")
    audio_token_id = tokenizer.convert_tokens_to_ids(audio_token)
    return ContextASRRecognizer(ContextASRAudioModel(audio_config), language_model, tokenizer, audio_token_id)
