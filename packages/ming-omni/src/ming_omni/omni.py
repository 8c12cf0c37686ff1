"""One entry point for the whole model (paper §2, Figure 2): understanding in, text, speech and images out.

:meth:`MingOmni.generate` takes a conversation (or a ming-contextasr :class:`~ming_contextasr.ContextASRRequest`)
and returns the answer's text, and on request its speech: the answer is re-tokenized for the talker, whose latent
patches the speech tokenizer's decoder turns into 16 kHz audio, streamed patch by patch if asked.

Images (paper §2.3): ming-imagegen's learnable queries are appended to the whole conversation (images, video and
audio included) and the LLM's last-layer states at them condition the diffusion pipeline. A conversation whose
last user turn holds an image is an edit of that image (its VAE latents are the pipeline's reference). A pipeline
saved with a conditioning LM of its own (one trained with it, e.g. ming-imagegen's shapes checkpoint) keeps it and
reads the last user turn's text through it instead: it was not trained on the omni LLM's states. Segmentation is
editing too: :meth:`MingOmni.segment` hands ming-genseg's colouring edit to :meth:`MingOmni.edit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from transformers import LogitsProcessorList, PreTrainedTokenizerBase

from ming_contextasr import (
    ContextASRRequest,
    HotwordBiasingProcessor,
    Transcription,
    hotword_token_ids,
    parse_transcription,
    render_prompt,
)
from ming_genseg import Segmentation, SegmentationOptions, SegmentationRequest, segment
from ming_imagegen import ImageGenerationOptions, MingImagePipeline, nearest_bucket, tiny_pipeline
from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel, StreamingDecoder
from ming_tts_head import (
    GenerationOptions,
    SpeechChunk,
    SpeechRequest,
    TTSHeadConfig,
    TTSHeadModel,
    stream_speech,
    synthesize,
)

from .configuration import MingOmniConfig
from .loading import load_checkpoint
from .messages import AudioContent, ImageContent, Message, TextContent, validate_conversation
from .modeling import MingOmniForConditionalGeneration
from .processor import MingOmniProcessor
from .tokens import make_tokenizer

__all__ = ["MingOmni", "OmniOptions", "OmniOutput", "Output"]

Output = Literal["text", "speech", "image"]
"""What :meth:`MingOmni.generate` can return besides the token ids."""

_IMAGE_GENERATOR_DIR = "image_generator"
_TINY_CORPUS = (
    "You are a helpful assistant. Describe the image, the video and the audio. A red circle, a blue square and a "
    "green triangle move on a white background. Transcribe the speech. Answer as language and transcript. English",
)


def _component_dir(directory: str | Path, name: str) -> Path:
    path = Path(directory)
    if not (path / "config.json").is_file() and not (path / "model_index.json").is_file():
        raise ValueError(f"{name}: {path} is not a saved checkpoint directory (no config.json / model_index.json)")
    return path


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
    image: ImageGenerationOptions = Field(
        default_factory=ImageGenerationOptions, description="Image sampler settings (steps, guidance, size, seed)."
    )


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
        images: with ``"image"``: the drawn images, or the edit of the last user turn's image.
        segmentation: for a segmentation request, ming-genseg's result (mask, edit, prompt, colour).
    """

    text: str
    thinking: str | None
    token_ids: torch.Tensor
    speech: torch.Tensor | None = None
    speech_chunks: Iterator[SpeechChunk] | None = field(default=None, repr=False)
    sample_rate: int = 16_000
    transcription: Transcription | None = None
    images: list[Image.Image] | None = None
    segmentation: Segmentation | None = None


class MingOmni:
    """The composed model with its processor.

    Args:
        model: the model (evaluation mode is set here).
        processor: its processor.
        image_generator: ming-imagegen's pipeline; None: no image output. Without a ``language_model`` of its own
            it is conditioned through this model's LLM (its conditioner must read states of the LLM's width); with
            one (a pipeline trained with its own conditioning LM) that LM reads the last user turn's text, as the
            pipeline was trained.

    Raises:
        ValueError: an image generator without a language model whose conditioner reads another width than the
            LLM's.
    """

    def __init__(
        self,
        model: MingOmniForConditionalGeneration,
        processor: MingOmniProcessor,
        image_generator: MingImagePipeline | None = None,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.image_generator = image_generator
        if image_generator is not None and image_generator.language_model is None:
            width = image_generator.conditioner.config.llm_hidden_size
            if width != model.config.llm_config.hidden_size:
                raise ValueError(
                    f"image_generator's conditioner reads LLM states of width {width}, the LLM's is "
                    f"{model.config.llm_config.hidden_size}"
                )

    @property
    def images_use_omni_llm(self) -> bool:
        """Whether images are conditioned on the omni LLM's states (False: on the image generator's own LM)."""
        return self.image_generator is not None and self.image_generator.language_model is None

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, dtype: torch.dtype | None = None, device_map: Any = None
    ) -> MingOmni:
        """Load model, processor and image generator (when saved) from a local directory.

        Without ``device_map`` the weights go through :func:`~ming_omni.load_checkpoint` (peak memory near the
        checkpoint's size); with one, through transformers' ``from_pretrained`` and accelerate (see
        :meth:`MingOmniForConditionalGeneration.from_pretrained`).
        """
        if device_map is None:
            model = load_checkpoint(directory, dtype=dtype)
        else:
            kwargs = {"dtype": dtype} if dtype is not None else {}
            model = MingOmniForConditionalGeneration.from_pretrained(directory, device_map=device_map, **kwargs)
        image_dir = Path(directory) / _IMAGE_GENERATOR_DIR
        image_generator = None
        if image_dir.is_dir():
            image_generator = MingImagePipeline.from_pretrained(image_dir, **({"torch_dtype": dtype} if dtype else {}))
            image_generator.to(model.device)
        return cls(model, MingOmniProcessor.from_pretrained(directory, config=model.config), image_generator)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write model (safetensors), config and tokenizer(s) to ``directory``, and the image generator to its
        ``image_generator/`` folder."""
        self.model.save_pretrained(directory)
        self.processor.save_pretrained(directory)
        if self.image_generator is not None:
            self.image_generator.save_pretrained(Path(directory) / _IMAGE_GENERATOR_DIR)

    @classmethod
    def tiny(
        cls,
        seed: int = 0,
        texts: Iterable[str] = _TINY_CORPUS,
        *,
        talker: str | Path | None = None,
        talker_tokenizer: PreTrainedTokenizerBase | None = None,
        speech_tokenizer: str | Path | None = None,
        image_generator: str | Path | None = None,
    ) -> MingOmni:
        """A randomly initialised tiny model with a small byte-level BPE tokenizer trained on ``texts``, and
        ming-imagegen's tiny pipeline (32×32 images) reading its LLM; components saved by their own packages
        replace the random ones.

        Args:
            seed: seed of the random weights.
            texts: training text of the tokenizer.
            talker: a :class:`ming_tts_head.TTSHeadModel` directory (``save_pretrained``): its config and weights
                become the talker's.
            talker_tokenizer: the talker's text tokenizer (e.g. :func:`~ming_omni.byte_tokenizer` for a head trained
                on UTF-8 bytes); default: the LLM's tokenizer.
            speech_tokenizer: a :class:`ming_speech_tokenizer.SpeechTokenizerModel` directory: its config and
                weights become the speech tokenizer's (its ``latent_dim`` must be the talker's).
            image_generator: a :class:`ming_imagegen.MingImagePipeline` directory, used as saved (with its own
                conditioning LM if it has one).

        Raises:
            ValueError: a directory that does not hold its component, or components that do not fit together.
        """
        tokenizer = make_tokenizer(texts, vocab_size=512)
        overrides = {}
        if talker is not None:
            overrides["talker_config"] = TTSHeadConfig.from_pretrained(_component_dir(talker, "talker"))
        if speech_tokenizer is not None:
            directory = _component_dir(speech_tokenizer, "speech_tokenizer")
            overrides["speech_tokenizer_config"] = SpeechTokenizerConfig.from_pretrained(directory)
        torch.manual_seed(seed)
        config = MingOmniConfig.tiny(vocab_size=512, **overrides)
        model = MingOmniForConditionalGeneration(config)
        if talker is not None:
            model.talker.load_state_dict(TTSHeadModel.from_pretrained(talker).state_dict())
        if speech_tokenizer is not None:
            model.speech_tokenizer.load_state_dict(SpeechTokenizerModel.from_pretrained(speech_tokenizer).state_dict())
        if image_generator is None:
            pipeline = tiny_pipeline(model.model, tokenizer, image_size=32, seed=seed)
            pipeline.register_modules(language_model=None, tokenizer=None)  # conditioned through MingOmni
        else:
            pipeline = MingImagePipeline.from_pretrained(_component_dir(image_generator, "image_generator"))
        processor = MingOmniProcessor(tokenizer, config, talker_tokenizer=talker_tokenizer)
        return cls(model, processor, pipeline)

    @property
    def sample_rate(self) -> int:
        """Sample rate of generated speech (the speech tokenizer's)."""
        return self.model.config.speech_tokenizer_config.sampling_rate

    def generate(
        self,
        request: list[Message] | list[dict] | ContextASRRequest | SegmentationRequest,
        outputs: Iterable[Output] = ("text",),
        options: OmniOptions | None = None,
    ) -> OmniOutput:
        """Answer a conversation (or transcribe a ContextASR request), optionally speaking the answer.

        Args:
            request: a list of messages (see :class:`~ming_omni.Message`), or a
                :class:`ming_contextasr.ContextASRRequest` (its context prompt and audio become a user turn, its
                hotwords bias decoding, and the answer is parsed into ``transcription``), or a
                :class:`ming_genseg.SegmentationRequest` (answered by :meth:`segment`, seeded by
                ``options.image.seed``; ``outputs`` is ignored).
            outputs: ``"text"`` (always produced), ``"speech"`` and/or ``"image"`` (drawn from the conversation,
                or an edit of the image in the last user turn).
            options: :class:`OmniOptions`.

        Raises:
            ValueError: an unknown output name, ``"image"`` without an image generator, or a bad request (see
                :class:`~ming_omni.MingOmniProcessor`).
        """
        outputs = set(outputs)
        unknown = outputs - {"text", "speech", "image"}
        if unknown:
            raise ValueError(f"outputs: unknown {sorted(unknown)}; choose from 'text', 'speech', 'image'")
        options = options or OmniOptions()
        if isinstance(request, SegmentationRequest):
            found = self.segment(request.image, request.expression, request.options, seed=options.image.seed)
            empty = torch.zeros(0, dtype=torch.long)
            return OmniOutput(
                text=found.prompt, thinking=None, token_ids=empty, images=[found.edited], segmentation=found
            )
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
        result = OmniOutput(response.text, response.thinking, token_ids, sample_rate=self.sample_rate)
        if asr:
            result.transcription = parse_transcription(response.text, strict=False)
        if "speech" in outputs:
            if options.stream_speech:
                result.speech_chunks = self.stream_speech(response.text, options.speech)
            else:
                result.speech = self.speak(response.text, options.speech)
        if "image" in outputs:
            result.images = self._images(validate_conversation(messages), options.image)
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

    # -- images ---------------------------------------------------------------------------------------------------

    def _pipeline(self) -> MingImagePipeline:
        if self.image_generator is None:
            raise ValueError("this MingOmni has no image_generator: image output, edit and segment need one")
        return self.image_generator

    @torch.no_grad()
    def condition_states(self, messages: Any) -> torch.Tensor:
        """The LLM's last-layer states at ming-imagegen's learnable queries appended to the conversation (after the
        open assistant turn), at the condition scales: ``(1, num_condition_tokens, llm hidden)``."""
        conditioner = self._pipeline().conditioner
        inputs = self.processor(messages).to(self.model.device, self.model.vision.dtype)
        kwargs = inputs.model_kwargs()
        embeds = self.model.embed(
            **{k: v for k, v in kwargs.items() if k not in ("attention_mask", "temporal_spacing", "sequence_ids")}
        )
        embeds, mask, _ = conditioner.append_queries(embeds, inputs.attention_mask)
        queries = conditioner.num_queries
        kwargs.update(
            input_ids=None,
            inputs_embeds=embeds,
            attention_mask=mask,
            modality_ids=F.pad(inputs.modality_ids, (0, queries)),  # the queries are routed as text
            use_cache=False,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        states = self.model(**kwargs).hidden_states[-1][:, -queries:]
        return conditioner.select_condition_states(states)

    def _images(self, messages: list[Message], options: ImageGenerationOptions) -> list[Image.Image]:
        pipeline = self._pipeline()
        last_user = next(m for m in reversed(messages) if m.role == "user")
        prompt = " ".join(c.text for c in last_user.content if isinstance(c, TextContent))
        reference = next((c.image for c in reversed(last_user.content) if isinstance(c, ImageContent)), None)
        # a pipeline with its own conditioning LM reads the prompt itself (as it was trained)
        condition = {"llm_states": self.condition_states(messages)} if self.images_use_omni_llm else {}
        if reference is None:
            return pipeline(prompt, options=options, output_type="pil", **condition).images
        height, width = nearest_bucket(reference.height, reference.width, pipeline.default_size, pipeline.size_multiple)
        reference = reference.resize((width, height), Image.Resampling.BICUBIC)
        return pipeline(prompt, reference_images=[reference], options=options, output_type="pil", **condition).images

    def draw(self, prompt: str, options: ImageGenerationOptions | None = None) -> list[Image.Image]:
        """Images of ``prompt`` (a one-turn conversation), conditioned through the LLM (or the image generator's own
        LM, see :class:`MingOmni`)."""
        options = options or ImageGenerationOptions()
        return self._images(validate_conversation([{"role": "user", "content": prompt}]), options)

    def edit(self, image: Image.Image, prompt: str, *, seed: int | None = None) -> Image.Image:
        """Edit ``image`` as ``prompt`` says (ming-genseg's ``EditingPipeline`` protocol): the LLM reads the image
        and the instruction; the image, resized to its nearest aspect-ratio bucket, is the pipeline's reference."""
        messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}]
        return self._images(validate_conversation(messages), ImageGenerationOptions(seed=seed))[0]

    def segment(
        self,
        image: Image.Image,
        expression: str,
        options: SegmentationOptions | None = None,
        *,
        seed: int | None = None,
    ) -> Segmentation:
        """Segment what ``expression`` refers to, as ming-genseg does it: a colouring edit read back as a mask."""
        return segment(image, expression, self, options, seed=seed)
