"""One entry point for the whole model (paper §2, Figure 2): understanding in, text, speech and images out.

:meth:`MingOmni.generate` takes a conversation (or a ming-contextasr :class:`~ming_contextasr.ContextASRRequest`)
and returns the answer's text, and on request its speech: the answer is re-tokenized for the talker, whose latent
patches the speech tokenizer's decoder turns into 16 kHz audio, streamed patch by patch if asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import LogitsProcessorList

from ming_contextasr import (
    ContextASRRequest,
    HotwordBiasingProcessor,
    Transcription,
    hotword_token_ids,
    parse_transcription,
    render_prompt,
)
from ming_speech_tokenizer import StreamingDecoder
from ming_tts_head import GenerationOptions, SpeechChunk, SpeechRequest, stream_speech, synthesize

from .configuration import MingOmniConfig
from .messages import AudioContent, Message, TextContent
from .modeling import MingOmniForConditionalGeneration
from .processor import MingOmniProcessor
from .tokens import make_tokenizer

__all__ = ["MingOmni", "OmniOptions", "OmniOutput", "Output"]

Output = Literal["text", "speech"]
"""What :meth:`MingOmni.generate` can return besides the token ids."""

_TINY_CORPUS = (
    "You are a helpful assistant. Describe the image, the video and the audio. A red circle, a blue square and a "
    "green triangle move on a white background. Transcribe the speech. Answer as language and transcript. English",
)


class OmniOptions(BaseModel):
    """Generation settings of :meth:`MingOmni.generate`; bad values raise a ``ValidationError`` naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(256, ge=1, description="Most tokens of the text answer.")
    do_sample: bool = Field(False, description="Sample (else greedy).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    think: bool = Field(False, description="Think mode: 'detailed thinking on' in the system prompt.")
    use_cache: bool = Field(True, description="Keep the LLM's KV cache (False: recompute every step).")
    seed: int = Field(0, ge=0, description="Seed of text sampling.")
    hotword_bonus: float = Field(2.0, ge=0, description="Score bonus per hotword token (ContextASR requests).")
    speech: GenerationOptions = Field(default_factory=GenerationOptions, description="Talker sampler settings.")
    stream_speech: bool = Field(False, description="Return speech as an iterator of chunks, patch by patch.")


@dataclass
class OmniOutput:
    """What :meth:`MingOmni.generate` returns.

    Attributes:
        text: the answer (without its ``<think>`` block).
        thinking: the ``<think>`` block's text, or None.
        token_ids: the generated ids (up to and including ``<|role_end|>`` when it came).
        speech: ``(samples,)`` 16 kHz waveform of the answer when ``"speech"`` was asked (not streaming), else None.
        speech_chunks: with ``stream_speech``: an iterator of :class:`ming_tts_head.SpeechChunk` (audio included).
        sample_rate: rate of ``speech``.
        transcription: for a ContextASR request, the parsed ``{language}\\t{transcript}`` answer.
    """

    text: str
    thinking: str | None
    token_ids: torch.Tensor
    speech: torch.Tensor | None = None
    speech_chunks: Iterator[SpeechChunk] | None = field(default=None, repr=False)
    sample_rate: int = 16_000
    transcription: Transcription | None = None


class MingOmni:
    """The composed model with its processor.

    Args:
        model: the model (evaluation mode is set here).
        processor: its processor.
    """

    def __init__(self, model: MingOmniForConditionalGeneration, processor: MingOmniProcessor) -> None:
        self.model = model.eval()
        self.processor = processor

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, dtype: torch.dtype | None = None, device_map: Any = None
    ) -> MingOmni:
        """Load model and processor from a local directory (see
        :meth:`MingOmniForConditionalGeneration.from_pretrained`)."""
        kwargs: dict[str, Any] = {}
        if dtype is not None:
            kwargs["dtype"] = dtype
        if device_map is not None:
            kwargs["device_map"] = device_map
        model = MingOmniForConditionalGeneration.from_pretrained(directory, **kwargs)
        return cls(model, MingOmniProcessor.from_pretrained(directory, config=model.config))

    def save_pretrained(self, directory: str | Path) -> None:
        """Write model (safetensors), config and tokenizer(s) to ``directory``."""
        self.model.save_pretrained(directory)
        self.processor.save_pretrained(directory)

    @classmethod
    def tiny(cls, seed: int = 0, texts: Iterable[str] = _TINY_CORPUS) -> MingOmni:
        """A randomly initialised tiny model with a small byte-level BPE tokenizer trained on ``texts``."""
        tokenizer = make_tokenizer(texts, vocab_size=512)
        torch.manual_seed(seed)
        config = MingOmniConfig.tiny(vocab_size=512)
        return cls(MingOmniForConditionalGeneration(config), MingOmniProcessor(tokenizer, config))

    @property
    def sample_rate(self) -> int:
        """Sample rate of generated speech (the speech tokenizer's)."""
        return self.model.config.speech_tokenizer_config.sampling_rate

    def generate(
        self,
        request: list[Message] | list[dict] | ContextASRRequest,
        outputs: Iterable[Output] = ("text",),
        options: OmniOptions | None = None,
    ) -> OmniOutput:
        """Answer a conversation (or transcribe a ContextASR request), optionally speaking the answer.

        Args:
            request: a list of messages (see :class:`~ming_omni.Message`), or a
                :class:`ming_contextasr.ContextASRRequest` (its context prompt and audio become a user turn, its
                hotwords bias decoding, and the answer is parsed into ``transcription``).
            outputs: ``"text"`` (always produced) and/or ``"speech"``.
            options: :class:`OmniOptions`.

        Raises:
            ValueError: an unknown output name, or a bad request (see :class:`~ming_omni.MingOmniProcessor`).
        """
        outputs = set(outputs)
        unknown = outputs - {"text", "speech"}
        if unknown:
            raise ValueError(f"outputs: unknown {sorted(unknown)}; choose from 'text', 'speech'")
        options = options or OmniOptions()
        processors = LogitsProcessorList()
        asr = isinstance(request, ContextASRRequest)
        if asr:
            prompt = render_prompt(request).text
            messages = [Message(role="user", content=[AudioContent(audio=request.audio), TextContent(text=prompt)])]
            if request.hotwords:
                words = hotword_token_ids(self.processor.tokenizer, list(request.hotwords))
                processors.append(HotwordBiasingProcessor(words, bonus=options.hotword_bonus))
        else:
            messages = request
        token_ids = self._generate_ids(messages, options, processors)
        response = self.processor.decode(token_ids)
        result = OmniOutput(text=response.text, thinking=response.thinking, token_ids=token_ids)
        if asr:
            result.transcription = parse_transcription(response.text, strict=False)
        if "speech" in outputs:
            if options.stream_speech:
                result.speech_chunks = self.stream_speech(response.text, options.speech)
            else:
                result.speech = self.speak(response.text, options.speech)
        return result

    @torch.no_grad()
    def _generate_ids(self, messages: Any, options: OmniOptions, processors: LogitsProcessorList) -> torch.Tensor:
        inputs = self.processor(messages, think=options.think).to(self.model.device, self.model.vision.dtype)
        torch.manual_seed(options.seed)
        sampling = {"temperature": options.temperature, "top_p": options.top_p} if options.do_sample else {}
        generated = self.model.generate(
            **inputs.model_kwargs(),
            max_new_tokens=options.max_new_tokens,
            do_sample=options.do_sample,
            use_cache=options.use_cache,
            eos_token_id=self.processor.eos_token_id,
            pad_token_id=self.processor.pad_token_id,
            logits_processor=processors,
            **sampling,
        )
        return generated[0, inputs.input_ids.shape[1] :].cpu()

    def _speech_request(self, text: str, options: GenerationOptions) -> SpeechRequest:
        return SpeechRequest(text_ids=self.processor.talker_ids(text), seed=options.seed)

    def speak(self, text: str, options: GenerationOptions | None = None) -> torch.Tensor:
        """Speech of ``text``: the talker's latents decoded in one go; ``(samples,)`` at :attr:`sample_rate`."""
        options = options or GenerationOptions()
        latents = synthesize(self.model.talker, [self._speech_request(text, options)], options)[0]
        if latents.shape[1] == 0:
            return torch.zeros(0)
        return self.model.speech_tokenizer.decode(latents)[0].float().cpu()

    def stream_speech(self, text: str, options: GenerationOptions | None = None) -> Iterator[SpeechChunk]:
        """Speech of ``text`` patch by patch: each chunk carries its latents and the audio the speech tokenizer's
        streaming decoder finished with them (then its flushed tail); the audio joined equals :meth:`speak`."""
        options = options or GenerationOptions()
        decoder = StreamingDecoder(self.model.speech_tokenizer)
        return stream_speech(self.model.talker, self._speech_request(text, options), options, decoder=decoder)
