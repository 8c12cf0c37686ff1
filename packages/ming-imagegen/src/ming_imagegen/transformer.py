"""The MMDiT image generator (paper §2.3; DESIGN "Image generator"): SD3's joint blocks from diffusers with noise and
reference-image refiners, 3D rotary positions, an LLM-condition MLP, reference latents and concept vectors.

Token streams. The *image stream* holds the noisy target latents (frame 0) followed by each reference image's
latents (frame ``r + 1``), each reference patchified by its own patch embedding and tagged with its learned
*concept vector* (``concept_embed[r]``); the *context stream* holds the condition tokens (LLM queries through the
connector, Glyph-ByT5 tokens of quoted text, identity tokens: unit vectors, scaled by √condition_dim to unit RMS),
each tagged with a learned type embedding and mapped by the condition MLP ``2048 → 2048 → 4096`` before SD3's
``context_embedder``. Rotary positions are 3D ``(frame, row, column)`` over axes 20/22/22 of each 64-dim head;
context tokens sit at position 0 (no rotation), as in Flux. Before the joint blocks, the target tokens pass through
the noise refiner and each reference through the reference refiner (single-stream SD3 blocks, timestep-modulated).
Only the target tokens are decoded.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import JointTransformerBlock
from diffusers.models.embeddings import CombinedTimestepTextProjEmbeddings, PatchEmbed
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormContinuous
from diffusers.models.transformers.transformer_flux import FluxPosEmbed
from diffusers.models.transformers.transformer_sd3 import SD3SingleTransformerBlock
from torch import nn

from .attention import RotaryJointAttnProcessor

__all__ = ["CONDITION_TYPES", "MingDiTTransformer2DModel"]

#: Index of each kind of condition token in the type embedding.
CONDITION_TYPES: dict[str, int] = {"query": 0, "glyph": 1, "identity": 2}


class _RefinerBlock(SD3SingleTransformerBlock):
    """SD3's single-stream block, with the rotary table passed to its attention (the parent's forward passes none)."""

    def __init__(self, dim: int, num_attention_heads: int, attention_head_dim: int, qk_norm: str | None):
        super().__init__(dim, num_attention_heads, attention_head_dim)
        if qk_norm is not None:  # the parent builds its Attention without QK-norm; match the joint blocks
            self.attn.norm_q = nn.RMSNorm(attention_head_dim, eps=1e-6)
            self.attn.norm_k = nn.RMSNorm(attention_head_dim, eps=1e-6)
        self.attn.set_processor(RotaryJointAttnProcessor())

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor, image_rotary_emb: Any) -> torch.Tensor:
        norm_hidden, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, emb=temb)
        hidden_states = hidden_states + gate_msa.unsqueeze(1) * self.attn(
            norm_hidden, image_rotary_emb=image_rotary_emb
        )
        norm_hidden = self.norm2(hidden_states) * (1 + scale_mlp.unsqueeze(1)) + shift_mlp.unsqueeze(1)
        return hidden_states + gate_mlp.unsqueeze(1) * self.ff(norm_hidden)


class MingDiTTransformer2DModel(ModelMixin, ConfigMixin):
    """SD3-style MMDiT conditioned on LLM-derived tokens, with reference-image editing.

    Args:
        sample_size: default latent side (the pipeline's default image side is this × the VAE factor).
        patch_size: latent patch side.
        in_channels: latent channels (16 for the paper's ``AutoencoderKL``).
        num_layers: joint (MMDiT) blocks.
        num_refiner_layers: noise-refiner blocks over the target tokens.
        num_reference_refiner_layers: refiner blocks over each reference image's tokens.
        attention_head_dim: head dim; equals ``sum(axes_dims_rope)``.
        num_attention_heads: heads; width = heads × head dim.
        condition_dim: width of the condition tokens (connector output, 2048) and of the pooled vector.
        joint_attention_dim: output of the condition MLP (4096), the input of SD3's ``context_embedder``.
        axes_dims_rope: rotary dims of the (frame, row, column) axes.
        rope_theta: rotary base.
        max_references: reference images a sample may have (one concept vector each).
        num_condition_types: size of the condition type embedding (:data:`CONDITION_TYPES`).
        qk_norm: ``"rms_norm"`` or None.
        prediction_type: what the network's output head predicts. ``"velocity"``: the flow-matching velocity
            directly. ``"sample"``: the clean latents ``x̂₀``, returned as the velocity ``(x_σ − x̂₀) / max(σ,
            min_sigma)`` (JiT, Li & He 2025), so the trainer, guidance and sampler are the same for both. A narrow DiT
            in pixel-like latent space cannot carry every token's noise through to a velocity output; what it fails to
            carry stays in the image as speckle, while a predicted clean image holds no noise to leave behind.
        min_sigma: floor of σ in the ``"sample"`` conversion, so that the velocity stays bounded as σ → 0.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["JointTransformerBlock", "_RefinerBlock"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 64,
        patch_size: int = 2,
        in_channels: int = 16,
        num_layers: int = 24,
        num_refiner_layers: int = 2,
        num_reference_refiner_layers: int = 2,
        attention_head_dim: int = 64,
        num_attention_heads: int = 24,
        condition_dim: int = 2048,
        joint_attention_dim: int = 4096,
        axes_dims_rope: tuple[int, int, int] = (20, 22, 22),
        rope_theta: float = 10000.0,
        max_references: int = 4,
        num_condition_types: int = len(CONDITION_TYPES),
        qk_norm: str | None = "rms_norm",
        prediction_type: Literal["velocity", "sample"] = "velocity",
        min_sigma: float = 0.05,
    ):
        super().__init__()
        if prediction_type not in ("velocity", "sample"):
            raise ValueError(f"prediction_type must be 'velocity' or 'sample', got {prediction_type!r}")
        if sum(axes_dims_rope) != attention_head_dim:
            raise ValueError(
                f"axes_dims_rope {tuple(axes_dims_rope)} must sum to attention_head_dim {attention_head_dim}"
            )
        dim = num_attention_heads * attention_head_dim
        self.inner_dim = dim

        def patch_embed() -> PatchEmbed:
            return PatchEmbed(sample_size, sample_size, patch_size, in_channels, dim, pos_embed_type=None)

        self.pos_embed = patch_embed()
        self.reference_embed = patch_embed()
        self.concept_embed = nn.Embedding(max_references, dim)
        self.rope = FluxPosEmbed(theta=rope_theta, axes_dim=list(axes_dims_rope))
        self.time_text_embed = CombinedTimestepTextProjEmbeddings(dim, condition_dim)
        self.condition_type_embed = nn.Embedding(num_condition_types, condition_dim)
        # Small next to the (unit-RMS) condition tokens at first, so that the tokens' content drives the DiT.
        nn.init.normal_(self.condition_type_embed.weight, std=0.02)
        self.null_condition = nn.Parameter(torch.zeros(condition_dim))
        self.condition_mlp = nn.Sequential(
            nn.Linear(condition_dim, condition_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(condition_dim, joint_attention_dim),
        )
        self.context_embedder = nn.Linear(joint_attention_dim, dim)

        def refiner() -> _RefinerBlock:
            return _RefinerBlock(dim, num_attention_heads, attention_head_dim, qk_norm)

        self.noise_refiner = nn.ModuleList([refiner() for _ in range(num_refiner_layers)])
        self.reference_refiner = nn.ModuleList([refiner() for _ in range(num_reference_refiner_layers)])
        self.transformer_blocks = nn.ModuleList(
            [
                JointTransformerBlock(dim, num_attention_heads, attention_head_dim, i == num_layers - 1, qk_norm)
                for i in range(num_layers)
            ]
        )
        for block in self.transformer_blocks:
            block.attn.set_processor(RotaryJointAttnProcessor())
        self.norm_out = AdaLayerNormContinuous(dim, dim, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * in_channels)
        self.gradient_checkpointing = False
        self._rope_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def flash_config() -> dict[str, Any]:
        """The paper-scale configuration (≈ 2.4B parameters; build it on ``meta`` to inspect it).

        SD3-medium's width (24 heads × 64 = 1536) and joint attention dim 4096 with pooled 2048 as DESIGN fixes them;
        26 joint blocks (our choice: the count that brings the total, with 2 noise and 2 reference refiners and the
        condition MLP, to ≈ 2.4B); 512² images through a 16-channel VAE of factor 8 → 64² latents.
        """
        return {
            "sample_size": 64,
            "patch_size": 2,
            "in_channels": 16,
            "num_layers": 26,
            "num_refiner_layers": 2,
            "num_reference_refiner_layers": 2,
            "attention_head_dim": 64,
            "num_attention_heads": 24,
            "condition_dim": 2048,
            "joint_attention_dim": 4096,
            "axes_dims_rope": (20, 22, 22),
            "max_references": 4,
            "qk_norm": "rms_norm",
        }

    @staticmethod
    def tiny_config(in_channels: int = 12, sample_size: int = 16) -> dict[str, Any]:
        """A CPU-trainable configuration: width 96 (4 heads × 24), 4 joint blocks, 1 + 1 refiners."""
        return {
            "sample_size": sample_size,
            "patch_size": 2,
            "in_channels": in_channels,
            "num_layers": 4,
            "num_refiner_layers": 1,
            "num_reference_refiner_layers": 1,
            "attention_head_dim": 24,
            "num_attention_heads": 4,
            "condition_dim": 64,
            "joint_attention_dim": 128,
            "axes_dims_rope": (8, 8, 8),
            "max_references": 3,
            "qk_norm": "rms_norm",
        }

    def _grid_ids(self, frame: int, rows: int, cols: int, device: torch.device) -> torch.Tensor:
        r, c = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
        return torch.stack([torch.full_like(r, frame), r, c], dim=-1).reshape(-1, 3)

    def _rope(self, grids: tuple[tuple[int, int, int], ...], device: torch.device) -> Any:
        """Rotary ``(cos, sin)`` of the tokens of ``(frame, rows, cols)`` grids, in order."""
        # The tables depend only on the token layout, the same at every denoising step: compute each layout once.
        key = (grids, device)
        if key not in self._rope_cache:
            if len(self._rope_cache) >= 32:
                self._rope_cache.clear()
            self._rope_cache[key] = self.rope(torch.cat([self._grid_ids(f, r, c, device) for f, r, c in grids]))
        return self._rope_cache[key]

    def _block(self, block: nn.Module, *args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(block, *args, **kwargs)
        return block(*args, **kwargs)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        condition: torch.Tensor,
        condition_mask: torch.Tensor | None = None,
        condition_types: torch.Tensor | None = None,
        references: torch.Tensor | None = None,
        reference_mask: torch.Tensor | None = None,
        drop_condition: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """Predict the flow-matching velocity (``noise − data``) of the target latents.

        Args:
            hidden_states: ``(B, C, H, W)`` noisy target latents.
            timestep: ``(B,)`` flow time × 1000 (the scheduler's timesteps).
            condition: ``(B, L, condition_dim)`` condition tokens.
            condition_mask: ``(B, L)`` bool, True for real tokens; default all.
            condition_types: ``(B, L)`` indices into :data:`CONDITION_TYPES`; default all ``"query"``.
            references: ``(B, R, C, h, w)`` clean reference latents, or None.
            reference_mask: ``(B, R)`` bool, False drops that reference for that row (guidance / padding).
            drop_condition: ``(B,)`` bool, True replaces every condition token of the row by the learned null token.
            return_dict: return a ``Transformer2DModelOutput`` rather than a tuple.
        """
        batch, _, height, width = hidden_states.shape
        p, device = self.config.patch_size, hidden_states.device
        if height % p or width % p:
            raise ValueError(f"latent size {height}×{width} is not a multiple of patch_size {p}")
        if condition_mask is None:
            condition_mask = torch.ones(condition.shape[:2], dtype=torch.bool, device=device)
        if condition_types is None:
            condition_types = torch.zeros(condition.shape[:2], dtype=torch.long, device=device)
        # Unit tokens have elements of size 1/√dim, far below what the condition MLP's default init expects; scaled
        # to unit RMS, the prompt's part of each token is not buried under the MLP's biases.
        condition = condition * self.config.condition_dim**0.5 + self.condition_type_embed(condition_types)
        if drop_condition is not None:  # every token of a dropped row becomes the null token (padding stays masked)
            condition = torch.where(drop_condition[:, None, None], self.null_condition.to(condition.dtype), condition)
        weights = condition_mask.to(condition.dtype).unsqueeze(-1)
        pooled = (condition * weights).sum(1) / weights.sum(1)
        temb = self.time_text_embed(timestep, pooled)
        context = self.context_embedder(self.condition_mlp(condition))

        target_grid = (0, height // p, width // p)
        target_tokens = target_grid[1] * target_grid[2]
        image = self.pos_embed(hidden_states).contiguous()
        for block in self.noise_refiner:
            image = self._block(block, image, temb, self._rope((target_grid,), device))
        streams, grids, image_mask = (
            [image],
            [target_grid],
            [torch.ones(image.shape[:2], dtype=torch.bool, device=device)],
        )
        if references is not None:
            if reference_mask is None:
                reference_mask = torch.ones(references.shape[:2], dtype=torch.bool, device=device)
            if references.shape[1] > self.config.max_references:
                raise ValueError(f"{references.shape[1]} references exceed max_references={self.config.max_references}")
            rows, cols = references.shape[-2] // p, references.shape[-1] // p
            for r in range(references.shape[1]):
                ref_grid = (r + 1, rows, cols)
                tokens = self.reference_embed(references[:, r]).contiguous() + self.concept_embed.weight[r]
                for block in self.reference_refiner:
                    tokens = self._block(block, tokens, temb, self._rope((ref_grid,), device))
                streams.append(tokens)
                grids.append(ref_grid)
                image_mask.append(reference_mask[:, r : r + 1].expand(-1, tokens.shape[1]))
        image = torch.cat(streams, dim=1)
        mask = torch.cat([*image_mask, condition_mask], dim=1)
        # SDPA without a mask takes the faster fused path; a mask of all-True keys changes nothing.
        rope = self._rope(tuple(grids), device)
        kwargs = {"image_rotary_emb": rope, "attention_mask": None if mask.all() else mask}
        for block in self.transformer_blocks:
            context, image = self._block(block, image, context, temb, kwargs)

        out = self.proj_out(self.norm_out(image[:, :target_tokens], temb))
        c = self.config.in_channels
        out = out.reshape(batch, height // p, width // p, p, p, c).permute(0, 5, 1, 3, 2, 4)
        out = out.reshape(batch, c, height, width)
        if self.config.prediction_type == "sample":  # x_σ = x̂₀ + σ·v
            sigma = (timestep.to(out.dtype) / 1000).clamp(min=self.config.min_sigma).view(-1, 1, 1, 1)
            out = (hidden_states - out) / sigma
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)
