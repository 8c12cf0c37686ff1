"""The DiTAR-style TTS head (paper §2.2): Qwen2.5 backbone over ``[text ids, separator, patch embeddings]``, patch
aggregator, flow-matching DiT head conditioned on the backbone's last hidden state, and stop head.

The backbone state at the separator predicts patch 0, the state at patch ``k`` predicts patch ``k + 1`` (through the
flow head) and whether speech ends there (through the stop head: class 1 = stop). :meth:`TTSHeadModel.forward` is
the teacher-forced training loss; generation lives in :mod:`ming_tts_head.streaming`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, Qwen2Model
from transformers import initialization as init
from transformers.utils import ModelOutput

from ._inputs import check_token_ids
from .aggregator import PatchAggregator
from .configuration import TTSHeadConfig
from .flow_head import FlowHead

__all__ = ["TTSHeadModel", "TTSHeadOutput", "history_windows"]


@dataclass
class TTSHeadOutput(ModelOutput):
    """Training losses: ``loss = flow_loss + stop_loss_weight · stop_loss (+ regression_loss_weight ·
    regression_loss)``.

    Attributes:
        loss: the total.
        flow_loss: rectified-flow MSE between predicted and true velocity over all patches.
        stop_loss: cross-entropy of the stop head at the separator and every patch (stop only after the last).
        regression_loss: MSE of the regression head's patches (None without one: ``regression_loss_weight`` 0).
    """

    loss: torch.Tensor | None = None
    flow_loss: torch.Tensor | None = None
    stop_loss: torch.Tensor | None = None
    regression_loss: torch.Tensor | None = None


def history_windows(frames: torch.Tensor, patch_size: int, history_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The flow head's history of every patch of ``frames`` ``(B, N·patch_size, D)``: the ``history_frames`` frames
    before the patch, zero where they would precede the start.

    Returns:
        ``(B, N, history_frames, D)`` windows and their ``(N, history_frames)`` presence mask.
    """
    patches = frames.shape[1] // patch_size
    padded = F.pad(frames, (0, 0, history_frames, 0))
    windows = padded.unfold(1, history_frames, patch_size)[:, :patches].transpose(2, 3)
    index = torch.arange(patches, device=frames.device)[:, None] * patch_size
    present = index - history_frames + torch.arange(history_frames, device=frames.device)[None] >= 0
    return windows, present


class TTSHeadModel(PreTrainedModel):
    """Backbone (transformers ``Qwen2Model``), separator embedding, :class:`PatchAggregator`, :class:`FlowHead`,
    the stop head ``Linear(hidden_size → 2)`` and, only when ``config.regression_loss_weight > 0``, the training-only
    regression head ``Linear(hidden_size → patch_size · latent_dim)``.

    ``save_pretrained(dir)`` writes ``config.json`` and safetensors; ``from_pretrained(local_dir)`` reads them
    strictly. ``attn_implementation`` (``"sdpa"`` by default, or ``"eager"``) applies to all three transformers.
    """

    config_class = TTSHeadConfig
    config: TTSHeadConfig
    base_model_prefix = "tts_head"
    main_input_name = "text_ids"
    _no_split_modules: ClassVar[list[str]] = ["Qwen2DecoderLayer"]
    _supports_sdpa = True

    def __init__(self, config: TTSHeadConfig) -> None:
        super().__init__(config)
        implementation = config._attn_implementation
        self.backbone = Qwen2Model(config.backbone_config(implementation))
        self.speech_start = nn.Parameter(torch.empty(config.hidden_size))
        self.aggregator = PatchAggregator(config, implementation)
        self.flow_head = FlowHead(config, implementation)
        self.stop_head = nn.Linear(config.hidden_size, 2)
        self.regression_head = (
            nn.Linear(config.hidden_size, config.patch_size * config.latent_dim)
            if config.regression_loss_weight > 0
            else None
        )
        self.post_init()

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any
    ) -> TTSHeadModel | tuple[TTSHeadModel, dict[str, Any]]:
        """transformers' ``from_pretrained`` (local directories, safetensors), but strict: missing, unexpected or
        mismatched weights raise a ``ValueError`` listing them instead of leaving random weights in place."""
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        problems = {kind: sorted(map(str, info.get(kind) or ())) for kind in ("missing_keys", "unexpected_keys")}
        problems["mismatched_keys"] = sorted(str(m[0]) for m in info.get("mismatched_keys") or ())
        listed = "; ".join(f"{kind}: {keys}" for kind, keys in problems.items() if keys)
        if listed:
            raise ValueError(f"checkpoint {pretrained_model_name_or_path} does not match {cls.__name__}: {listed}")
        return (model, info) if want_info else model

    def set_attn_implementation(self, attn_implementation: str | dict, **kwargs: Any) -> None:
        """transformers' switch of the attention backend, applied to the aggregator and the DiT too."""
        super().set_attn_implementation(attn_implementation, **kwargs)
        for block in (self.aggregator.transformer, self.flow_head.transformer):
            block.config._attn_implementation = self.config._attn_implementation

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)  # Linear, Embedding, Qwen2 RMS norms and rotary buffers
        std = self.config.initializer_range
        if isinstance(module, TTSHeadModel):
            init.normal_(module.speech_start, mean=0.0, std=std)
        elif isinstance(module, PatchAggregator):
            init.normal_(module.summary_token, mean=0.0, std=std)
        elif isinstance(module, FlowHead):
            init.normal_(module.null_condition, mean=0.0, std=std)

    def embed_text(self, text_ids: torch.Tensor) -> torch.Tensor:
        """``(…)`` token ids → ``(…, hidden_size)`` backbone input embeddings."""
        return self.backbone.embed_tokens(text_ids)

    def forward(
        self,
        text_ids: torch.Tensor,
        latents: torch.Tensor,
        text_lengths: torch.Tensor | None = None,
        latent_lengths: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> TTSHeadOutput:
        """Teacher-forced training loss on a right-padded batch.

        Args:
            text_ids: ``(B, L)`` token ids.
            latents: ``(B, T, latent_dim)`` speech latents (the speech tokenizer's contract); a last partial patch is
                completed with zero frames.
            text_lengths: ``(B,)`` real tokens per row (default: all ``L``).
            latent_lengths: ``(B,)`` real frames per row (default: all ``T``).
            generator: source of flow times, noise and condition dropout (default: torch's global generator).
        """
        config = self.config
        size, history = config.patch_size, config.history_frames
        text_lengths, latent_lengths = self._check_batch(text_ids, latents, text_lengths, latent_lengths)
        batch, device = text_ids.shape[0], text_ids.device
        counts = (latent_lengths + size - 1) // size
        patches_max = int(counts.max())
        frames = latents.new_zeros(batch, patches_max * size, config.latent_dim)
        length = min(latents.shape[1], frames.shape[1])
        real = torch.arange(length, device=device)[None] < latent_lengths[:, None]
        frames[:, :length] = torch.where(real[..., None], latents[:, :length], 0.0)  # padding may be non-finite
        patches = frames.view(batch, patches_max, size, config.latent_dim)

        # backbone input, right-padded: text, separator, one aggregated embedding per patch
        total = text_lengths + 1 + counts
        embeds = frames.new_zeros(batch, int(total.max()), config.hidden_size)
        text_rows, text_columns = (
            torch.arange(text_ids.shape[1], device=device)[None] < text_lengths[:, None]
        ).nonzero(as_tuple=True)
        embeds = embeds.index_put((text_rows, text_columns), self.embed_text(text_ids[text_rows, text_columns]))
        embeds = embeds.index_put(
            (torch.arange(batch, device=device), text_lengths), self.speech_start.expand(batch, -1)
        )
        rows, index = (torch.arange(patches_max, device=device)[None] < counts[:, None]).nonzero(as_tuple=True)
        embeds = embeds.index_put((rows, text_lengths[rows] + 1 + index), self.aggregator(patches[rows, index]))
        attention_mask = (torch.arange(embeds.shape[1], device=device)[None] < total[:, None]).long()
        hidden = self.backbone(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).last_hidden_state

        # flow matching: the state before patch k conditions its velocity (x_t = (1 − t)·noise + t·patch)
        condition = hidden[rows, text_lengths[rows] + index]
        windows, present = history_windows(frames, size, history)
        target = patches[rows, index]
        regression_loss = None
        if self.regression_head is not None:
            predicted = self.regression_head(condition).view_as(target)
            regression_loss = F.mse_loss(predicted.float(), target.float())
        t = torch.rand(target.shape[0], device=device, generator=generator)
        noise = torch.randn(target.shape, device=device, dtype=target.dtype, generator=generator)
        noisy = (1 - t[:, None, None]) * noise + t[:, None, None] * target
        if self.training and config.condition_dropout > 0:
            drop = torch.rand(target.shape[0], device=device, generator=generator) < config.condition_dropout
            condition = self.flow_head.drop_condition(condition, drop)
        velocity = self.flow_head(noisy, t, condition, windows[rows, index], present[index])
        flow_loss = F.mse_loss(velocity.float(), (target - noise).float())

        # stop: class 1 only at the last patch's state
        state_rows, state_index = (torch.arange(patches_max + 1, device=device)[None] <= counts[:, None]).nonzero(
            as_tuple=True
        )
        stop_logits = self.stop_head(hidden[state_rows, text_lengths[state_rows] + state_index])
        stop_loss = F.cross_entropy(stop_logits.float(), (state_index == counts[state_rows]).long())
        loss = flow_loss + config.stop_loss_weight * stop_loss
        if regression_loss is not None:
            loss = loss + config.regression_loss_weight * regression_loss
        return TTSHeadOutput(loss=loss, flow_loss=flow_loss, stop_loss=stop_loss, regression_loss=regression_loss)

    def _check_batch(
        self,
        text_ids: torch.Tensor,
        latents: torch.Tensor,
        text_lengths: torch.Tensor | None,
        latent_lengths: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.config
        if text_ids.dim() != 2 or text_ids.dtype != torch.long:
            raise ValueError(f"text_ids must be (batch, length) int64, got {tuple(text_ids.shape)} {text_ids.dtype}")
        if latents.dim() != 3 or latents.shape[-1] != config.latent_dim or latents.shape[0] != text_ids.shape[0]:
            raise ValueError(
                f"latents must be (batch={text_ids.shape[0]}, frames, {config.latent_dim}), got {tuple(latents.shape)}"
            )
        batch, device = text_ids.shape[0], text_ids.device
        if text_lengths is None:
            text_lengths = torch.full((batch,), text_ids.shape[1], device=device)
        if latent_lengths is None:
            latent_lengths = torch.full((batch,), latents.shape[1], device=device)
        for name, lengths, limit in (
            ("text_lengths", text_lengths, text_ids.shape[1]),
            ("latent_lengths", latent_lengths, latents.shape[1]),
        ):
            if lengths.shape != (batch,) or bool((lengths < 1).any()) or bool((lengths > limit).any()):
                raise ValueError(f"{name} must be ({batch},) with values in [1, {limit}], got {lengths.tolist()}")
        check_token_ids(text_ids, config.vocab_size, "text_ids")
        return text_lengths.to(device=device, dtype=torch.long), latent_lengths.to(device=device, dtype=torch.long)
