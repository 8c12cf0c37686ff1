"""The processor: chat template, placeholder expansion and batching (paper §2; the original checkpoints' format).

A conversation becomes ``<role>SYSTEM</role>{system}detailed thinking on|off<|role_end|>`` followed by one
``<role>HUMAN</role>…<|role_end|>`` / ``<role>ASSISTANT</role>…<|role_end|>`` per turn, and, for generation, an
open ``<role>ASSISTANT</role>``. Each image, video and audio clip becomes its start token, as many patch tokens as its
encoder will output, and its end token. The counts come from the components: the Qwen2.5-VL resize rule
(transformers' ``smart_resize``) and 2×2 merge for images and videos, :func:`ming_contextasr.num_audio_tokens` for
audio. ``modality_ids`` marks the patch tokens (image, video, audio), which routes them to their MoE routers and
lays out their VideoRoPE positions; every other token is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize

from ming_contextasr import num_audio_tokens
from ming_videorope import Modality, temporal_spacing_from_seconds

from .configuration import MingOmniConfig
from .messages import ImageContent, Message, TextContent, VideoContent, validate_conversation
from .tokens import (
    AUDIO_END,
    AUDIO_PATCH,
    AUDIO_START,
    EOS,
    FRAME_PATCH,
    IMAGE_END,
    IMAGE_PATCH,
    IMAGE_START,
    ROLE_END,
    ROLE_START,
    SPECIAL_TOKENS,
    VIDEO_END,
    VIDEO_START,
)

__all__ = ["MingOmniProcessor", "OmniInputs", "Response"]

_ROLE_NAMES = {"system": "SYSTEM", "user": "HUMAN", "assistant": "ASSISTANT"}
_THINK = re.compile(r"^\s*<think>(?P<thinking>.*?)</think>\s*", re.DOTALL)
_TALKER_DIR = "talker_tokenizer"


@dataclass
class OmniInputs:
    """A processed batch; ``model(**inputs.model_kwargs())`` or ``model.generate(**inputs.model_kwargs())``.

    Attributes:
        input_ids: ``(B, L)`` token ids (left-padded, or one packed row).
        attention_mask: ``(B, L)``, 1 for real tokens.
        modality_ids: ``(B, L)`` :class:`ming_videorope.Modality` per token.
        sequence_ids: ``(1, L)`` sample index per token when packed, else None.
        pixel_values: ``(patches, 3 · 2 · 14 · 14)`` image patches of all images in order, or None.
        image_grid_thw: ``(images, 3)`` vision-patch grids (T = 1), or None.
        pixel_values_videos: video patches of all videos in order, or None.
        video_grid_thw: ``(videos, 3)`` vision-patch grids (T = sampled frames / 2), or None.
        temporal_spacing: ``(videos,)`` VideoRoPE δ per video from its frame interval, or None.
        audio: 16 kHz waveforms of all audio clips in order, or None.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    modality_ids: torch.Tensor
    sequence_ids: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None
    pixel_values_videos: torch.Tensor | None = None
    video_grid_thw: torch.Tensor | None = None
    temporal_spacing: torch.Tensor | None = None
    audio: list[torch.Tensor] | None = None

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> OmniInputs:
        """Move tensors to ``device``; pixel values and audio are also cast to ``dtype`` when given."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            cast = dtype if f.name in ("pixel_values", "pixel_values_videos", "audio") else None
            if isinstance(value, torch.Tensor):
                moved[f.name] = value.to(device, cast) if cast else value.to(device)
            elif isinstance(value, list):
                moved[f.name] = [v.to(device, cast) if cast else v.to(device) for v in value]
        return replace(self, **moved)

    def model_kwargs(self) -> dict[str, Any]:
        """The fields that are set, as keyword arguments of the model."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Response:
    """A generated answer split into its ``<think>…</think>`` part (think mode) and the answer proper."""

    text: str
    thinking: str | None = None


class MingOmniProcessor:
    """Turns conversations into model inputs for :class:`~ming_omni.MingOmniForConditionalGeneration`.

    Args:
        tokenizer: the LLM's tokenizer; every entry of :data:`~ming_omni.SPECIAL_TOKENS` must be one token in it.
        config: the model's config (image pixel budget, video sampling, encoder sizes, context length).
        talker_tokenizer: the talker's tokenizer (Qwen2.5's for the flash talker); default: ``tokenizer``.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: MingOmniConfig,
        talker_tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.talker_tokenizer = talker_tokenizer or tokenizer
        self.config = config
        vocab = tokenizer.get_vocab()
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}; every one of {SPECIAL_TOKENS} is needed")
        self.token_ids = {t: vocab[t] for t in SPECIAL_TOKENS}
        too_big = max(self.token_ids.values()) >= config.llm_config.vocab_size
        if len(tokenizer) > config.llm_config.vocab_size or too_big:
            raise ValueError(
                f"tokenizer has {len(tokenizer)} tokens, more than the LLM's vocab_size {config.llm_config.vocab_size}"
            )
        vision = config.vision_config
        self.image_processor = Qwen2VLImageProcessorPil(
            min_pixels=config.image_min_pixels,
            max_pixels=config.image_max_pixels,
            patch_size=vision.patch_size,
            merge_size=vision.spatial_merge_size,
            temporal_patch_size=vision.temporal_patch_size,
        )

    @classmethod
    def from_pretrained(cls, directory: str | Path, config: MingOmniConfig | None = None) -> MingOmniProcessor:
        """Load the tokenizer (and ``talker_tokenizer/`` when present) and the config from a local directory."""
        directory = Path(directory)
        if not directory.is_dir():
            raise ValueError(f"{directory} is not a local directory (nothing is downloaded)")
        talker = directory / _TALKER_DIR
        config = config or MingOmniConfig.from_pretrained(directory)
        return cls(
            AutoTokenizer.from_pretrained(directory, config=config),  # the tokenizer files name its class
            config,
            AutoTokenizer.from_pretrained(talker) if talker.is_dir() else None,
        )

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the tokenizer(s) and the config to ``directory``."""
        directory = Path(directory)
        self.tokenizer.save_pretrained(directory)
        self.config.save_pretrained(directory)
        if self.talker_tokenizer is not self.tokenizer:
            self.talker_tokenizer.save_pretrained(directory / _TALKER_DIR)

    @property
    def eos_token_id(self) -> int:
        """``<|role_end|>``: ends every turn, and generation."""
        return self.token_ids[EOS]

    @property
    def pad_token_id(self) -> int:
        """The padding id (the tokenizer's pad token)."""
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_token_id

    # -- placeholder counts -------------------------------------------------------------------------------------

    def image_grid(self, width: int, height: int) -> tuple[int, int]:
        """Vision-patch grid ``(rows, columns)`` of an image after Qwen2.5-VL's resize to a multiple of 28 px."""
        vision = self.config.vision_config
        resized_h, resized_w = smart_resize(
            height,
            width,
            factor=vision.patch_size * vision.spatial_merge_size,
            min_pixels=self.config.image_min_pixels,
            max_pixels=self.config.image_max_pixels,
        )
        return resized_h // vision.patch_size, resized_w // vision.patch_size

    def num_image_tokens(self, width: int, height: int) -> int:
        """``<imagePatch>`` tokens of a ``width × height`` image (= the vision tower's merged outputs)."""
        rows, columns = self.image_grid(width, height)
        return rows * columns // self.config.merge_size**2

    def sample_video(self, num_frames: int, fps: float) -> tuple[np.ndarray, float]:
        """Frame indices sampled at ``config.video_fps`` and the seconds between two sampled frames.

        The count is the clip's duration × ``video_fps``, clamped to ``[video_min_frames, video_max_frames]`` and
        rounded down to a multiple of the temporal patch; the indices are spread evenly over the clip.

        Raises:
            ValueError: the clip has fewer frames than ``video_min_frames``.
        """
        config, temporal = self.config, self.config.vision_config.temporal_patch_size
        if num_frames < config.video_min_frames:
            raise ValueError(f"video has {num_frames} frames, fewer than video_min_frames={config.video_min_frames}")
        duration = num_frames / fps
        wanted = min(max(round(duration * config.video_fps), config.video_min_frames), config.video_max_frames)
        count = min(wanted, num_frames) // temporal * temporal
        indices = np.linspace(0, num_frames - 1, count).round().astype(np.int64)
        return indices, duration / count

    def num_video_tokens(self, num_frames: int, fps: float, width: int, height: int) -> int:
        """``<framePatch>`` tokens of a video (= the vision tower's merged outputs for its sampled frames)."""
        sampled = len(self.sample_video(num_frames, fps)[0])
        temporal = self.config.vision_config.temporal_patch_size
        return sampled // temporal * self.num_image_tokens(width, height)

    def num_audio_tokens(self, num_samples: int) -> int:
        """``<audioPatch>`` tokens of a 16 kHz clip (ming-contextasr's count: 25 per second)."""
        return num_audio_tokens(num_samples, self.config.audio_config)

    # -- rendering ------------------------------------------------------------------------------------------------

    def _pieces(self, messages: list[Message], think: bool, add_generation_prompt: bool) -> list[Any]:
        """The conversation as text strings and media contents, in order."""
        system = [c.text for c in messages[0].content] if messages[0].role == "system" else []
        system_text = "".join(system)
        system_text = f"{system_text}\n\n" if system_text else ""
        pieces: list[Any] = [
            f"{ROLE_START}SYSTEM{ROLE_END}{system_text}detailed thinking {'on' if think else 'off'}{EOS}"
        ]
        for message in messages[1 if system else 0 :]:
            pieces.append(f"{ROLE_START}{_ROLE_NAMES[message.role]}{ROLE_END}")
            pieces.extend(c.text if isinstance(c, TextContent) else c for c in message.content)
            pieces.append(EOS)
        if add_generation_prompt:
            pieces.append(f"{ROLE_START}ASSISTANT{ROLE_END}")
        return pieces

    def _placeholder(self, content: Any) -> tuple[str, str, str, int]:
        """(start, patch, end, count) of a media content."""
        if isinstance(content, ImageContent):
            return IMAGE_START, IMAGE_PATCH, IMAGE_END, self.num_image_tokens(*content.image.size)
        if isinstance(content, VideoContent):
            width, height = content.frames[0].size
            return (
                VIDEO_START,
                FRAME_PATCH,
                VIDEO_END,
                self.num_video_tokens(len(content.frames), content.fps, width, height),
            )
        return AUDIO_START, AUDIO_PATCH, AUDIO_END, self.num_audio_tokens(content.audio.numel())

    def render(self, messages: Any, *, think: bool = False, add_generation_prompt: bool = True) -> str:
        """The prompt text, with every placeholder expanded (what :meth:`__call__` tokenizes)."""
        pieces = self._pieces(validate_conversation(messages), think, add_generation_prompt)
        out = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                start, patch, end, count = self._placeholder(piece)
                out.append(start + patch * count + end)
        return "".join(out)

    # -- tokenizing and batching -------------------------------------------------------------------------------------

    def _encode(self, messages: list[Message], think: bool, add_generation_prompt: bool, media: dict) -> tuple:
        ids: list[int] = []
        modality: list[int] = []
        kinds = {IMAGE_PATCH: Modality.IMAGE, FRAME_PATCH: Modality.VIDEO, AUDIO_PATCH: Modality.AUDIO}
        for piece in self._pieces(messages, think, add_generation_prompt):
            if isinstance(piece, str):
                text_ids = self.tokenizer(piece, add_special_tokens=False)["input_ids"]
                ids += text_ids
                modality += [Modality.TEXT] * len(text_ids)
                continue
            start, patch, end, count = self._placeholder(piece)
            ids += [self.token_ids[start], *[self.token_ids[patch]] * count, self.token_ids[end]]
            modality += [Modality.TEXT, *[kinds[patch]] * count, Modality.TEXT]
            if isinstance(piece, ImageContent):
                media["images"].append(piece.image)
            elif isinstance(piece, VideoContent):
                media["videos"].append(piece)
            else:
                media["audio"].append(piece.audio)
        return ids, modality

    def __call__(
        self,
        conversations: Any,
        *,
        think: bool = False,
        add_generation_prompt: bool = True,
        packing: bool = False,
    ) -> OmniInputs:
        """Process one conversation (a list of messages) or a batch of them.

        Args:
            conversations: a list of :class:`~ming_omni.Message` (or dicts), or a list of such lists.
            think: think mode: the system prompt ends with "detailed thinking on" (else "… off").
            add_generation_prompt: end with an open ``<role>ASSISTANT</role>`` turn.
            packing: put all conversations in one row with ``sequence_ids`` (else one left-padded row each).

        Raises:
            pydantic.ValidationError: a malformed message (named in the error).
            ValueError: a conversation needs more tokens than the LLM's context, or a video is too short.
        """
        batch = conversations if conversations and isinstance(conversations[0], (list, tuple)) else [conversations]
        media: dict[str, list] = {"images": [], "videos": [], "audio": []}
        rows = []
        limit = self.config.llm_config.max_position_embeddings
        for i, messages in enumerate(batch):
            ids, modality = self._encode(validate_conversation(messages), think, add_generation_prompt, media)
            if len(ids) > limit:
                raise ValueError(
                    f"conversation {i} needs {len(ids)} tokens, more than the LLM's context of {limit} "
                    "(max_position_embeddings); use fewer or smaller media, or shorter text"
                )
            rows.append((ids, modality))
        if packing:
            input_ids = torch.tensor([[t for ids, _ in rows for t in ids]])
            modality_ids = torch.tensor([[m for _, mod in rows for m in mod]])
            sequence_ids = torch.tensor([[i for i, (ids, _) in enumerate(rows) for _ in ids]])
            attention_mask = torch.ones_like(input_ids)
            if input_ids.shape[1] > limit:
                raise ValueError(f"the packed row needs {input_ids.shape[1]} tokens, more than the context of {limit}")
        else:
            longest = max(len(ids) for ids, _ in rows)
            input_ids = torch.full((len(rows), longest), self.pad_token_id)
            modality_ids = torch.zeros((len(rows), longest), dtype=torch.long)
            attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
            for r, (ids, modality) in enumerate(rows):  # left padding: generation appends on the right
                input_ids[r, longest - len(ids) :] = torch.tensor(ids)
                modality_ids[r, longest - len(ids) :] = torch.tensor(modality, dtype=torch.long)
                attention_mask[r, longest - len(ids) :] = 1
            sequence_ids = None
        inputs = OmniInputs(input_ids, attention_mask, modality_ids, sequence_ids)
        if media["images"]:
            processed = self.image_processor(images=media["images"], return_tensors="pt")
            inputs.pixel_values, inputs.image_grid_thw = processed["pixel_values"], processed["image_grid_thw"]
        if media["videos"]:
            videos = [self._video(v) for v in media["videos"]]
            inputs.pixel_values_videos = torch.cat([v[0] for v in videos])
            inputs.video_grid_thw = torch.stack([v[1] for v in videos])
            inputs.temporal_spacing = torch.tensor([v[2] for v in videos], dtype=torch.float32)
        if media["audio"]:
            inputs.audio = media["audio"]
        return inputs

    def _video(self, video: VideoContent) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Patches ``(T/2 · H · W, 3 · 2 · 14 · 14)``, grid ``(T/2, H, W)`` and δ of a video.

        Frames go through the image processor one by one (one frame per temporal slot), then pairs of consecutive
        frames are folded into the temporal patch, in Qwen2.5-VL's patch layout (channel, time, row, column).
        """
        indices, seconds_per_frame = self.sample_video(len(video.frames), video.fps)
        frames = [video.frames[i] for i in indices]
        processed = self.image_processor(images=frames, temporal_patch_size=1, return_tensors="pt")
        temporal = self.config.vision_config.temporal_patch_size
        _, rows, columns = processed["image_grid_thw"][0].tolist()
        steps = len(frames) // temporal
        patches = processed["pixel_values"].view(steps, temporal, rows * columns, 3, -1)
        patches = patches.permute(0, 2, 3, 1, 4).reshape(steps * rows * columns, -1)
        spacing = temporal_spacing_from_seconds(seconds_per_frame * temporal)
        return patches, torch.tensor([steps, rows, columns]), float(spacing)

    # -- outputs ------------------------------------------------------------------------------------------------------

    def decode(self, token_ids: torch.Tensor | list[int]) -> Response:
        """Text of generated ids (up to ``<|role_end|>``), split into thinking and answer."""
        ids = token_ids.tolist() if isinstance(token_ids, torch.Tensor) else list(token_ids)
        if self.eos_token_id in ids:
            ids = ids[: ids.index(self.eos_token_id)]
        return self.parse_response(self.tokenizer.decode(ids, skip_special_tokens=True))

    @staticmethod
    def parse_response(text: str) -> Response:
        """Split ``<think>…</think>answer`` into its parts (no think block: ``thinking`` is None)."""
        match = _THINK.match(text)
        if match is None:
            return Response(text=text.strip())
        return Response(text=text[match.end() :].strip(), thinking=match.group("thinking").strip())

    def talker_ids(self, text: str) -> list[int]:
        """The talker tokenizer's ids of ``text``, checked against the talker's vocabulary.

        Raises:
            ValueError: ``text`` is empty, or a token id is outside the talker's vocabulary.
        """
        ids = self.talker_tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError("nothing to speak: the text is empty")
        vocab = self.config.talker_config.vocab_size
        if max(ids) >= vocab:
            raise ValueError(f"talker token id {max(ids)} is outside the talker's vocabulary of {vocab}")
        return ids
