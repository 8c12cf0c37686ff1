"""BailingMoeV2 (Ling-flash-2.0) decoder with per-modality routers and VideoRoPE positions (paper §2, §2.1).

Top to bottom: the decoder layer (attention + dense MLP or MoE block), the pretrained-model base, the model
(embeddings, layers, final norm, rotary), and the causal LM head with ``generate()`` support. Parameter names follow
the original checkpoints (``word_embeddings``, ``attention.query_key_value``, ``mlp.gate`` …) except the routed
experts, stored stacked (see :mod:`ming_moe.checkpoint` for the conversion).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask, packed_sequence_mask_function
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import MoeCausalLMOutputWithPast, MoeModelOutputWithPast

from ming_videorope import Modality, RotaryEmbedding, get_decode_position_ids, get_position_ids

from .attention import BailingMoeV2Attention
from .checkpoint import check_checkpoint
from .configuration import BailingMoeV2Config
from .experts import DenseMLP, MoeExperts
from .moe import SparseMoeBlock
from .router import GroupLimitedRouter

# Router of each Modality value: image and video tokens share the image router.
_ROUTER_OF_MODALITY = {Modality.TEXT: 0, Modality.IMAGE: 1, Modality.VIDEO: 1, Modality.AUDIO: 2}


@dataclass
class BailingMoeV2ModelOutput(MoeModelOutputWithPast):
    """:class:`transformers.modeling_outputs.MoeModelOutputWithPast` plus ``aux_loss``: the per-router balance losses
    summed over MoE layers (zero outside training mode)."""

    aux_loss: torch.Tensor | None = None


class BailingMoeV2DecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))`` with a dense MLP or the MoE block."""

    def __init__(self, config: BailingMoeV2Config, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.attention = BailingMoeV2Attention(config, layer_idx)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        if layer_idx < config.first_k_dense_replace:
            self.mlp: nn.Module = DenseMLP(config, config.intermediate_size)
        else:
            self.mlp = SparseMoeBlock(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        router_index: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Returns ``(hidden_states, attention weights or None, aux loss or None, router logits or None)``."""
        attended, weights = self.attention(
            self.input_layernorm(hidden_states), position_embeddings, attention_mask, cache=cache, **kwargs
        )
        hidden_states = hidden_states + attended
        normed = self.post_attention_layernorm(hidden_states)
        if isinstance(self.mlp, SparseMoeBlock):
            mlp_out, aux_loss, router_logits = self.mlp(normed, router_index, token_mask)
            return hidden_states + mlp_out, weights, aux_loss, router_logits
        return hidden_states + self.mlp(normed), weights, None, None


class BailingMoeV2PreTrainedModel(PreTrainedModel):
    """Weight initialisation and transformers integration shared by the model classes."""

    config_class = BailingMoeV2Config
    config: BailingMoeV2Config
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["BailingMoeV2DecoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _can_compile_fullgraph = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' ``from_pretrained`` (local directories; the original per-expert layout is converted), but
        strict: missing, unexpected or mismatched weights raise a ``ValueError`` listing them — nothing is left
        half-loaded with random weights."""
        want_info = kwargs.pop("output_loading_info", False)
        if Path(pretrained_model_name_or_path).is_dir():
            config = kwargs.get("config") or BailingMoeV2Config.from_pretrained(pretrained_model_name_or_path)
            check_checkpoint(pretrained_model_name_or_path, config)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        problems = {kind: info.get(kind) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        problems = {kind: sorted(map(str, keys)) for kind, keys in problems.items() if keys}
        if problems:
            listed = "; ".join(f"{kind}: {keys}" for kind, keys in problems.items())
            raise ValueError(f"checkpoint {pretrained_model_name_or_path} does not match {cls.__name__}: {listed}")
        return (model, info) if want_info else model

    @classmethod
    def _can_set_experts_implementation(cls) -> bool:
        # transformers looks for the experts decorator in this file's source; our experts live in experts.py.
        return True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, MoeExperts):
            init.normal_(module.gate_up_proj, mean=0.0, std=std)
            init.normal_(module.down_proj, mean=0.0, std=std)
        elif isinstance(module, GroupLimitedRouter):
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.expert_bias)
        elif isinstance(module, nn.RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, RotaryEmbedding):
            module.reset_buffers()  # non-persistent: not in checkpoints, so rebuilt after loading onto `meta`


class BailingMoeV2Model(BailingMoeV2PreTrainedModel):
    """Embeddings, decoder layers and final norm.

    Positions: pass ``position_ids`` as ``(3, B, L)`` (t, h, w) or ``(B, L)``, or let the model build them with
    ming-videorope from ``modality_ids`` (and the image/video grids) at prefill; decoding steps continue from the
    ``rope_deltas`` stored at prefill (as transformers' Qwen2-VL does).
    """

    def __init__(self, config: BailingMoeV2Config) -> None:
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(BailingMoeV2DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.rotary_dim, theta=config.rope_theta, layout=config.rotary_layout)
        self.gradient_checkpointing = False
        self.rope_deltas: torch.Tensor | None = None
        n_routers = len(config.router_modalities)
        # a modality whose router is not configured uses the text router
        self._router_of_modality = [
            _ROUTER_OF_MODALITY[m] if _ROUTER_OF_MODALITY[m] < n_routers else 0 for m in sorted(Modality)
        ]
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.word_embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        modality_ids: torch.LongTensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        temporal_spacing: float | torch.Tensor = 2.0,
        sequence_ids: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        output_router_logits: bool | None = None,
        **kwargs,
    ) -> BailingMoeV2ModelOutput:
        """Run the decoder.

        Args:
            input_ids: ``(B, L)`` token ids (or pass ``inputs_embeds``).
            attention_mask: ``(B, L_past + L)`` with 1 for real tokens, 0 for padding.
            position_ids: ``(3, B, L)`` or ``(B, L)``; built from ``modality_ids`` when omitted.
            modality_ids: ``(B, L)`` :class:`ming_videorope.Modality` per token: picks the router (image and video →
                image router, audio → audio router, others → text router) and lays out positions. Default: text.
            image_grid_thw: ``(N_images, 3)`` grids in LLM tokens, for the positions.
            video_grid_thw: ``(N_videos, 3)`` grids in LLM tokens, for the positions.
            temporal_spacing: δ between video frames (VideoRoPE's adjustable temporal spacing).
            sequence_ids: ``(B, L)`` sample id per token for packed rows: attention and positions do not cross samples.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch, length = inputs_embeds.shape[:2]
        device = inputs_embeds.device
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        past = cache.get_seq_length() if cache is not None else 0
        modality_ids = _check_per_token("modality_ids", modality_ids, batch, length)
        sequence_ids = _check_per_token("sequence_ids", sequence_ids, batch, length)
        if sequence_ids is not None and past:
            raise ValueError("sequence_ids (packed rows) are for full sequences, not for decoding with a cache")
        if modality_ids is not None and ((modality_ids < 0) | (modality_ids > max(Modality))).any():
            bad = sorted(set(modality_ids.unique().tolist()) - {int(m) for m in Modality})
            raise ValueError(
                f"modality_ids holds unknown values {bad}; expected Modality values 0..{int(max(Modality))}"
            )

        token_mask = None
        if attention_mask is not None and attention_mask.dim() == 2:
            token_mask = attention_mask[:, -length:].bool()
        if position_ids is None:
            position_ids = self._positions(
                modality_ids, token_mask, sequence_ids, image_grid_thw, video_grid_thw, temporal_spacing, past, batch,
                length, device,
            )  # fmt: skip
        elif (
            position_ids.dim() not in (2, 3)
            or position_ids.shape[-2:] != (batch, length)
            or (position_ids.dim() == 3 and position_ids.shape[0] != 3)
        ):
            raise ValueError(
                f"position_ids must be (3, B, L) or (B, L) with B, L = {batch}, {length}, "
                f"got {tuple(position_ids.shape)}"
            )

        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            and_mask_function=None if sequence_ids is None else packed_sequence_mask_function(sequence_ids),
        )
        router_index = None
        if modality_ids is not None:
            router_index = torch.tensor(self._router_of_modality, device=device)[modality_ids]
        position_embeddings = self.rotary_emb(inputs_embeds, position_ids)

        hidden_states = inputs_embeds
        all_hidden, all_attentions, all_router_logits = [], [], []
        aux_loss = inputs_embeds.new_zeros((), dtype=torch.float32)
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, weights, layer_aux, router_logits = layer(
                hidden_states,
                position_embeddings,
                attention_mask=causal_mask,
                router_index=router_index,
                token_mask=token_mask,
                cache=cache,
                **kwargs,
            )
            if layer_aux is not None:
                aux_loss = aux_loss + layer_aux
            if output_attentions:
                all_attentions.append(weights)
            if output_router_logits and router_logits is not None:
                all_router_logits.append(router_logits)
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return BailingMoeV2ModelOutput(
            last_hidden_state=hidden_states,
            cache=cache if use_cache else None,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
            router_logits=tuple(all_router_logits) if output_router_logits else None,
            aux_loss=aux_loss,
        )

    def _positions(
        self, modality_ids, token_mask, sequence_ids, image_grid_thw, video_grid_thw, temporal_spacing, past, batch,
        length, device,
    ) -> torch.Tensor:  # fmt: skip
        """Prefill: ming-videorope positions (and the deltas for decoding); decoding: continue from the deltas."""
        if past == 0:
            result = get_position_ids(
                modality_ids
                if modality_ids is not None
                else torch.zeros(batch, length, dtype=torch.long, device=device),
                image_grid_thw,
                video_grid_thw,
                attention_mask=token_mask,
                sequence_ids=sequence_ids,
                temporal_spacing=temporal_spacing,
            )
            self.rope_deltas = result.rope_deltas
            return result.position_ids
        deltas = self.rope_deltas
        if deltas is None or deltas.shape[0] != batch:
            deltas = torch.zeros(batch, 1, dtype=torch.long, device=device)
        return get_decode_position_ids(deltas, torch.arange(past, past + length, device=device))


class BailingMoeV2ForCausalLM(BailingMoeV2PreTrainedModel, GenerationMixin):
    """The decoder with an (untied) LM head. With ``labels``, the loss is the LM loss plus
    ``router_aux_loss_coef`` × the summed per-router balance losses (in training mode)."""

    _tied_weights_keys: ClassVar[dict] = {}

    def __init__(self, config: BailingMoeV2Config) -> None:
        super().__init__(config)
        self.model = BailingMoeV2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        modality_ids: torch.LongTensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        temporal_spacing: float | torch.Tensor = 2.0,
        sequence_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> MoeCausalLMOutputWithPast:
        """Logits for ``input_ids``; see :meth:`BailingMoeV2Model.forward` for the multimodal arguments."""
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            modality_ids=modality_ids,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            temporal_spacing=temporal_spacing,
            sequence_ids=sequence_ids,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size)
            if self.training:
                loss = loss + self.config.router_aux_loss_coef * outputs.aux_loss
        return MoeCausalLMOutputWithPast(
            loss=loss,
            aux_loss=outputs.aux_loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            router_logits=outputs.router_logits,
        )

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs) -> dict:
        """Prompt-only inputs (modalities, grids, packing) go to the first step; later tokens are text.

        Positions are always built by the model during generation (VideoRoPE at prefill, then from ``rope_deltas``):
        the 1D positions transformers derives from the attention mask would be wrong after an image or a video.
        """
        inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        inputs.pop("position_ids", None)
        if not is_first_iteration:
            for key in ("modality_ids", "image_grid_thw", "video_grid_thw", "sequence_ids"):
                inputs.pop(key, None)
        return inputs


def _check_per_token(name: str, tensor: torch.Tensor | None, batch: int, length: int) -> torch.Tensor | None:
    if tensor is None:
        return None
    if not isinstance(tensor, torch.Tensor) or tensor.shape != (batch, length):
        got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{name} must be a (B, L) = ({batch}, {length}) tensor like input_ids, got {got}")
    if tensor.is_floating_point():
        raise ValueError(f"{name} must be an integer tensor, got dtype {tensor.dtype}")
    return tensor.long()
