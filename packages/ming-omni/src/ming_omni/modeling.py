"""The composed Ming-Flash-Omni model (paper §2, Figure 2): perception into the MoE LLM, and the generation heads.

Images and video frames go through transformers' Qwen2.5-VL vision tower and a projector, audio through
ming-contextasr's Whisper encoder and projector; both are L2-normalised and written into the LLM's input
embeddings at their placeholder tokens. The ming-moe LLM routes each token by its modality (``modality_ids``) and
builds VideoRoPE positions from the grids at prefill, then continues them from its ``rope_deltas`` while decoding.
The talker (ming-tts-head) and the speech tokenizer (ming-speech-tokenizer) turn answers into speech.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import MoeCausalLMOutputWithPast
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

from ming_contextasr import ContextASRAudioModel
from ming_moe import BailingMoeV2ForCausalLM
from ming_speech_tokenizer import SpeechTokenizerModel
from ming_tts_head import TTSHeadModel
from ming_videorope import Modality

from .configuration import MingOmniConfig
from .original_layout import register_original_layout

__all__ = ["MingOmniForConditionalGeneration", "VisionProjector"]

# Inputs that describe the prompt only: decoding steps (which see just the new token) do without them.
_PROMPT_INPUTS = (
    "modality_ids",
    "sequence_ids",
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "temporal_spacing",
    "audio",
)

register_original_layout(MingOmniConfig.model_type)


class VisionProjector(nn.Module):
    """``Linear(vision out → LLM width) → GELU → Linear → L2-normalise`` (the vision side's projector, paper §2)."""

    def __init__(self, in_features: int, hidden_size: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc2(F.gelu(self.fc1(features))), dim=-1)


class MingOmniForConditionalGeneration(PreTrainedModel, GenerationMixin):
    """Vision tower + projector, audio encoder + projector, the MoE LLM, the talker and the speech tokenizer.

    ``forward`` / ``generate`` take :class:`~ming_omni.OmniInputs` fields (``model.generate(**inputs.model_kwargs(),
    max_new_tokens=…)``); the LLM builds positions itself, so do not pass ``position_ids``. For whole answers with
    speech and images use :class:`~ming_omni.MingOmni`.

    Submodules: ``vision`` (transformers' ``Qwen2_5_VisionTransformerPretrainedModel``), ``linear_proj``
    (:class:`VisionProjector`), ``audio`` (:class:`ming_contextasr.ContextASRAudioModel`), ``model``
    (:class:`ming_moe.BailingMoeV2ForCausalLM`), ``talker`` (:class:`ming_tts_head.TTSHeadModel`),
    ``speech_tokenizer`` (:class:`ming_speech_tokenizer.SpeechTokenizerModel`).
    """

    config_class = MingOmniConfig
    config: MingOmniConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules: ClassVar[list[str]] = []  # collected from the components
    _tied_weights_keys: ClassVar[dict] = {}

    def __init__(self, config: MingOmniConfig) -> None:
        super().__init__(config)
        self.vision = Qwen2_5_VisionTransformerPretrainedModel._from_config(config.vision_config)
        self.linear_proj = VisionProjector(config.vision_config.out_hidden_size, config.llm_config.hidden_size)
        self.audio = ContextASRAudioModel._from_config(config.audio_config)
        self.model = BailingMoeV2ForCausalLM._from_config(config.llm_config)
        self.talker = TTSHeadModel._from_config(config.talker_config)
        self.speech_tokenizer = SpeechTokenizerModel._from_config(config.speech_tokenizer_config)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' ``from_pretrained`` from a local directory (weights memory-mapped onto a ``meta``-built
        model; ``dtype=torch.bfloat16`` and ``device_map`` work as usual), strictly: the shard headers are checked
        first (:func:`~ming_omni.check_omni_checkpoint`) and any missing, unexpected or mismatched weight raises a
        ``ValueError`` naming it.

        Raises:
            ValueError: not a local directory, or the checkpoint does not match the config.
        """
        from .loading import check_omni_checkpoint

        directory = Path(pretrained_model_name_or_path)
        if not directory.is_dir():
            raise ValueError(f"{directory} is not a local directory (checkpoints are never downloaded)")
        config = kwargs.get("config") or MingOmniConfig.from_pretrained(directory)
        check_omni_checkpoint(directory, config)
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(directory, *args, output_loading_info=True, **kwargs)
        problems = {kind: sorted(map(str, info.get(kind) or ())) for kind in ("missing_keys", "unexpected_keys")}
        problems["mismatched_keys"] = sorted(str(m[0]) for m in info.get("mismatched_keys") or ())
        listed = "; ".join(f"{kind}: {keys}" for kind, keys in problems.items() if keys)
        if listed:
            raise ValueError(f"checkpoint {directory} does not match {cls.__name__}: {listed}")
        return (model, info) if want_info else model

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, VisionProjector):
            for linear in (module.fc1, module.fc2):
                init.normal_(linear.weight, mean=0.0, std=self.config.llm_config.initializer_range)
                init.zeros_(linear.bias)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.model.get_output_embeddings()

    def image_features(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """LLM embeddings of images or videos: ``(Σ T·H·W / merge², llm hidden)``, L2-normalised."""
        pixel_values = pixel_values.to(self.vision.device, self.vision.dtype)
        merged = self.vision(pixel_values, grid_thw=grid_thw.to(pixel_values.device)).pooler_output
        return self.linear_proj(merged.to(self.linear_proj.fc1.weight.dtype))

    def audio_features(self, audio: list[torch.Tensor]) -> torch.Tensor:
        """LLM embeddings of audio clips, concatenated: ``(Σ tokens, llm hidden)``, L2-normalised."""
        return torch.cat(self.audio(audio).unpadded())

    def embed(
        self,
        input_ids: torch.Tensor,
        modality_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
        audio: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Token embeddings with the encoders' outputs written at the image, video and audio patch tokens.

        Raises:
            ValueError: the number of patch tokens of a modality differs from what its encoder produced, or media
                come without ``modality_ids`` marking where they go.
        """
        embeds = self.model.get_input_embeddings()(input_ids)
        sources = (
            (Modality.IMAGE, "pixel_values", pixel_values, lambda: self.image_features(pixel_values, image_grid_thw)),
            (
                Modality.VIDEO,
                "pixel_values_videos",
                pixel_values_videos,
                lambda: self.image_features(pixel_values_videos, video_grid_thw),
            ),
            (Modality.AUDIO, "audio", audio, lambda: self.audio_features(audio)),
        )
        for modality, name, given, encode in sources:
            mask = (
                (modality_ids == modality)
                if modality_ids is not None
                else torch.zeros_like(input_ids, dtype=torch.bool)
            )
            slots = int(mask.sum())
            if given is None:
                if slots:
                    raise ValueError(f"modality_ids marks {slots} {modality.name.lower()} tokens but {name} is None")
                continue
            features = encode()
            if features.shape[0] != slots:
                raise ValueError(
                    f"{name} gives {features.shape[0]} {modality.name.lower()} embeddings but modality_ids marks "
                    f"{slots} {modality.name.lower()} tokens; build inputs with MingOmniProcessor"
                )
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), features.to(embeds.dtype))
        return embeds

    def llm_grids(self, grid_thw: torch.Tensor | None) -> torch.Tensor | None:
        """Vision-patch grids → LLM-token grids (rows and columns divided by the 2×2 merge)."""
        if grid_thw is None:
            return None
        merge = self.config.merge_size
        return torch.stack([grid_thw[:, 0], grid_thw[:, 1] // merge, grid_thw[:, 2] // merge], dim=1)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        modality_ids: torch.LongTensor | None = None,
        sequence_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        temporal_spacing: float | torch.Tensor | None = None,
        audio: list[torch.Tensor] | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> MoeCausalLMOutputWithPast:
        """Logits (and the LM loss with ``labels``) of a processed batch.

        Args:
            input_ids: ``(B, L)`` ids with the processor's placeholders (or pass ``inputs_embeds``).
            attention_mask: ``(B, L_past + L)``, 1 for real tokens.
            modality_ids: ``(B, L)`` :class:`ming_videorope.Modality` per token (default: all text).
            sequence_ids: ``(B, L)`` sample index per token for packed rows.
            pixel_values: image patches; ``image_grid_thw`` their vision-patch grids.
            pixel_values_videos: video patches; ``video_grid_thw`` their grids, ``temporal_spacing`` their δ.
            audio: 16 kHz waveforms, one per audio clip.
            cache: the LLM's KV cache.
            labels: ``(B, L)`` targets (−100: ignored).
        """
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids or inputs_embeds")
            inputs_embeds = self.embed(
                input_ids, modality_ids, pixel_values, image_grid_thw, pixel_values_videos, video_grid_thw, audio
            )
        return self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            modality_ids=modality_ids,
            image_grid_thw=self.llm_grids(image_grid_thw),
            video_grid_thw=self.llm_grids(video_grid_thw),
            temporal_spacing=2.0 if temporal_spacing is None else temporal_spacing,
            sequence_ids=sequence_ids,
            **kwargs,
        )

    def prepare_inputs_for_generation(
        self, input_ids: torch.LongTensor, *args, cache: Cache | None = None, is_first_iteration: bool = False, **kwargs
    ) -> dict:
        """The media and ``modality_ids`` go with every step that runs over the whole sequence (the first, or all of
        them without a cache; generated tokens are text); later cached steps see only the new token. Positions are
        always the LLM's own (VideoRoPE at prefill, then ``rope_deltas``)."""
        inputs = super().prepare_inputs_for_generation(
            input_ids, *args, cache=cache, is_first_iteration=is_first_iteration, **kwargs
        )
        inputs.pop("position_ids", None)
        whole = is_first_iteration or cache is None or cache.get_seq_length() == 0
        if not whole:
            for key in _PROMPT_INPUTS:
                inputs.pop(key, None)
            return inputs
        for key in ("modality_ids", "sequence_ids"):
            value = inputs.get(key)
            if value is not None and value.shape[1] < inputs["input_ids"].shape[1]:
                grown = inputs["input_ids"].shape[1] - value.shape[1]
                fill = 0 if key == "modality_ids" else value[:, -1:]
                inputs[key] = torch.cat([value, (value.new_zeros(value.shape[0], grown) + fill)], dim=1)
        return inputs
