"""The text-to-image and editing pipeline (paper §2.3, §2.4): frozen LLM + queries → connector → MMDiT → VAE.

``__call__`` reads as the recipe: condition tokens from the prompt (LLM states at the learnable queries, Glyph-ByT5
tokens of quoted text, identity tokens of a subject crop), reference latents for editing, Euler flow-matching steps
with batched guidance, decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import PIL.Image
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from .buckets import nearest_bucket
from .conditioning import MingConditioner
from .glyph import GlyphMapper, extract_quoted_text
from .guidance import editing_guidance, text_guidance
from .identity import IdentityEncoder
from .options import ImageGenerationOptions
from .transformer import CONDITION_TYPES, MingDiTTransformer2DModel
from .vae import vae_scale_factor

__all__ = ["Condition", "MingImagePipeline"]


@dataclass
class Condition:
    """Condition tokens of a batch, as the DiT reads them.

    Attributes:
        tokens: ``(B, L, condition_dim)``.
        mask: ``(B, L)`` bool, True for real tokens.
        types: ``(B, L)`` indices into :data:`~ming_imagegen.CONDITION_TYPES`.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    types: torch.Tensor

    def repeat(self, times: int) -> Condition:
        """Each row repeated ``times`` times in place (row order ``0, 0, …, 1, 1, …``)."""
        return Condition(*(t.repeat_interleave(times, dim=0) for t in (self.tokens, self.mask, self.types)))

    def cat(self, other: Condition) -> Condition:
        """Tokens of ``other`` appended after this one's, row by row."""
        return Condition(*(torch.cat(pair, dim=1) for pair in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tokens, mask, types)``."""
        return self.tokens, self.mask, self.types


class MingImagePipeline(DiffusionPipeline):
    """Ming-Flash-Omni's image generator: generation from a prompt (or LLM states) and reference-image editing.

    Args:
        transformer: the MMDiT.
        vae: ``AutoencoderKL`` (or :class:`~ming_imagegen.PixelUnshuffleAutoencoder`).
        scheduler: a flow-matching scheduler (``FlowMatchEulerDiscreteScheduler``).
        conditioner: learnable queries + connector.
        language_model: a causal LM with a transformers interface (frozen); None if only ``llm_states`` are given.
        tokenizer: its tokenizer.
        glyph_encoder: a transformers ``T5EncoderModel`` over ByT5 bytes (optional).
        glyph_tokenizer: ``ByT5Tokenizer`` (optional).
        glyph_mapper: ByT5 states → condition tokens (optional).
        identity_encoder: subject crop latents → identity tokens (optional).
        default_options: this pipeline's defaults for :class:`ImageGenerationOptions` fields (e.g. the guidance scale
            chosen for a trained checkpoint), saved in ``model_index.json``; fields not named keep the class
            defaults. A call's ``options`` and keyword arguments override them.
    """

    model_cpu_offload_seq = (
        "language_model->conditioner->glyph_encoder->glyph_mapper->identity_encoder->transformer->vae"
    )
    _optional_components: ClassVar[list[str]] = [
        "language_model",
        "tokenizer",
        "glyph_encoder",
        "glyph_tokenizer",
        "glyph_mapper",
        "identity_encoder",
    ]

    def __init__(
        self,
        transformer: MingDiTTransformer2DModel,
        vae: Any,
        scheduler: FlowMatchEulerDiscreteScheduler,
        conditioner: MingConditioner,
        language_model: Any = None,
        tokenizer: Any = None,
        glyph_encoder: Any = None,
        glyph_tokenizer: Any = None,
        glyph_mapper: GlyphMapper | None = None,
        identity_encoder: IdentityEncoder | None = None,
        default_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.register_modules(
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
            conditioner=conditioner,
            language_model=language_model,
            tokenizer=tokenizer,
            glyph_encoder=glyph_encoder,
            glyph_tokenizer=glyph_tokenizer,
            glyph_mapper=glyph_mapper,
            identity_encoder=identity_encoder,
        )
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.size_multiple, do_resize=False)
        self.set_default_options(**(default_options or {}))

    @property
    def default_options(self) -> ImageGenerationOptions:
        """The options a call starts from: the class defaults updated by this pipeline's ``default_options``."""
        return ImageGenerationOptions.model_validate(self.config.default_options)

    def set_default_options(self, **fields: Any) -> None:
        """Replace this pipeline's option defaults by ``fields`` (validated; saved with ``save_pretrained``).

        Raises:
            pydantic.ValidationError: a bad field name or value.
        """
        ImageGenerationOptions.model_validate(fields)
        self.register_to_config(default_options=dict(fields))

    # ---- geometry ----------------------------------------------------------------------------------------------
    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell."""
        return vae_scale_factor(self.vae)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (VAE factor × patch size)."""
        return self.vae_scale_factor * self.transformer.config.patch_size

    @property
    def default_size(self) -> int:
        """Default image side: the transformer's ``sample_size`` × the VAE factor."""
        return self.transformer.config.sample_size * self.vae_scale_factor

    def _check_size(self, height: int, width: int, what: str) -> None:
        m = self.size_multiple
        if height % m or width % m:
            raise ValueError(
                f"{what} size {height}×{width} must be a multiple of {m} on both sides (VAE factor × patch)"
            )

    # ---- conditions --------------------------------------------------------------------------------------------
    def llm_query_states(self, prompts: list[str]) -> torch.Tensor:
        """The language model's last-layer states at the condition queries appended to each prompt.

        Returns:
            ``(len(prompts), conditioner.num_condition_tokens, llm_hidden_size)``. Gradients flow to the queries
            (the LM's own weights are frozen by the trainer, not here).
        """
        if self.language_model is None or self.tokenizer is None:
            raise ValueError("this pipeline has no language_model/tokenizer: pass llm_states instead of a prompt")
        device = self._execution_device
        batch = self.tokenizer(prompts, padding=True, padding_side="left", return_tensors="pt")
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        embeds = self.language_model.get_input_embeddings()(ids)
        embeds, mask, positions = self.conditioner.append_queries(embeds, mask)
        out = self.language_model(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=positions,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        states = out.hidden_states[-1][:, -self.conditioner.num_queries :]
        return self.conditioner.select_condition_states(states)

    def glyph_condition(self, prompts: list[str]) -> Condition | None:
        """Glyph-ByT5 tokens of each prompt's quoted text (None when no prompt quotes anything or no glyph branch)."""
        if self.glyph_encoder is None or self.glyph_tokenizer is None or self.glyph_mapper is None:
            return None
        texts = ["\n".join(extract_quoted_text(p)) for p in prompts]
        if not any(texts):
            return None
        device = self._execution_device
        batch = self.glyph_tokenizer(texts, padding=True, return_tensors="pt")
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device).bool()
        states = self.glyph_encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        tokens = self.glyph_mapper(states.to(self.glyph_mapper.dtype))
        mask &= torch.tensor([bool(t) for t in texts], device=device)[:, None]  # no text → only the EOS byte: drop it
        return Condition(tokens, mask, torch.full_like(ids, CONDITION_TYPES["glyph"]))

    def identity_condition(self, crops: list[PIL.Image.Image]) -> Condition:
        """Identity tokens of subject crops (one per row), resized to the encoder's ``crop_size``."""
        if self.identity_encoder is None:
            raise ValueError("this pipeline has no identity_encoder; identity_image needs one")
        side = self.identity_encoder.config.crop_size
        latents = self.encode_images(
            [c.convert("RGB").resize((side, side), PIL.Image.Resampling.BICUBIC) for c in crops]
        )
        tokens = self.identity_encoder(latents.to(self.identity_encoder.dtype))
        shape = tokens.shape[:2]
        return Condition(
            tokens,
            torch.ones(shape, dtype=torch.bool, device=tokens.device),
            torch.full(shape, CONDITION_TYPES["identity"], device=tokens.device),
        )

    def encode_condition(
        self,
        prompts: list[str] | None = None,
        llm_states: torch.Tensor | None = None,
        identity_images: list[PIL.Image.Image] | None = None,
    ) -> Condition:
        """All condition tokens of a batch: connector(LLM states) ‖ glyph tokens ‖ identity tokens.

        Args:
            prompts: the prompts (for the LLM unless ``llm_states`` is given, and for the glyph branch).
            llm_states: ``(B, num_condition_tokens, llm_hidden_size)`` LLM states at the condition queries.
            identity_images: one subject crop per row, or None.
        """
        if llm_states is None:
            if prompts is None:
                raise ValueError("give a prompt or llm_states")
            llm_states = self.llm_query_states(prompts)
        tokens = self.conditioner(llm_states.to(self.conditioner.dtype))
        shape = tokens.shape[:2]
        condition = Condition(
            tokens,
            torch.ones(shape, dtype=torch.bool, device=tokens.device),
            torch.full(shape, CONDITION_TYPES["query"], device=tokens.device),
        )
        glyph = self.glyph_condition(prompts) if prompts is not None else None
        if glyph is not None:
            condition = condition.cat(glyph)
        if identity_images is not None:
            condition = condition.cat(self.identity_condition(identity_images))
        return condition

    # ---- images ------------------------------------------------------------------------------------------------
    def encode_images(self, images: list[PIL.Image.Image] | torch.Tensor) -> torch.Tensor:
        """PIL images (or ``(B, 3, H, W)`` in [-1, 1]) → normalised latents ``(z − shift) · scale`` (VAE mode)."""
        if not isinstance(images, torch.Tensor):
            images = self.image_processor.preprocess([im.convert("RGB") for im in images])
        images = images.to(self._execution_device, self.vae.dtype)
        latents = self.vae.encode(images).latent_dist.mode()
        shift = self.vae.config.shift_factor or 0.0
        return (latents - shift) * self.vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents → ``(B, 3, H, W)`` images in [-1, 1]."""
        shift = self.vae.config.shift_factor or 0.0
        images = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor + shift).sample
        return images.clamp(-1, 1)

    # ---- denoiser ----------------------------------------------------------------------------------------------
    def guided_velocity(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        condition: Condition,
        references: torch.Tensor | None,
        options: ImageGenerationOptions,
    ) -> torch.Tensor:
        """The guided velocity of ``latents`` at ``timestep``.

        Without references: ``text_guidance(u, c, guidance_scale)`` with ``u`` the learned null condition. With
        references: ``editing_guidance(u, c_img, c_full, image_guidance_scale, s_txt)`` with ``s_txt`` the
        ``edit_guidance_scale`` (``guidance_scale`` when None), ``u`` dropping both
        the text and the references. ``options.batched_guidance`` runs the branches as one batch (masks select what each
        branch sees) rather than one forward each.
        """
        batch = latents.shape[0]
        no = torch.zeros(batch, dtype=torch.bool, device=latents.device)
        yes = ~no
        if references is None:  # (drop text,) per branch: u, c
            branches = [(yes, None), (no, None)]
        else:  # (drop text, keep references): u, c_img, c_full
            ref_on = torch.ones(references.shape[:2], dtype=torch.bool, device=latents.device)
            branches = [(yes, ~ref_on), (yes, ref_on), (no, ref_on)]
        n = len(branches)

        def forward(rows: int, drop: torch.Tensor, ref_mask: torch.Tensor | None) -> torch.Tensor:
            def rep(x: torch.Tensor | None) -> torch.Tensor | None:
                return None if x is None else x.repeat(rows, *([1] * (x.dim() - 1)))

            return self.transformer(
                rep(latents),
                rep(timestep),
                rep(condition.tokens),
                rep(condition.mask),
                rep(condition.types),
                rep(references),
                ref_mask,
                drop,
            ).sample

        if options.batched_guidance:
            drop = torch.cat([d for d, _ in branches])
            ref_mask = None if references is None else torch.cat([m for _, m in branches])
            outs = forward(n, drop, ref_mask).chunk(n)
        else:
            outs = [forward(1, d, m) for d, m in branches]
        if references is None:
            return text_guidance(outs[0], outs[1], options.guidance_scale)
        return editing_guidance(*outs, options.image_guidance_scale, options.edit_text_scale)

    # ---- the recipe --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        *,
        llm_states: torch.Tensor | None = None,
        reference_images: list[PIL.Image.Image] | list[list[PIL.Image.Image]] | None = None,
        identity_image: PIL.Image.Image | None = None,
        options: ImageGenerationOptions | None = None,
        progress: bool = False,
        **option_overrides: Any,
    ) -> ImagePipelineOutput:
        """Generate images from prompts (or LLM states), optionally editing reference images.

        Args:
            prompt: one prompt or a list. With ``llm_states``, only used for its quoted text (glyph branch).
            llm_states: ``(B, num_condition_tokens, llm_hidden_size)`` states at the condition queries, e.g. from
                ming-omni's LLM; replaces running ``language_model`` on ``prompt``.
            reference_images: editing: a list of images shared by all prompts, or one list per prompt; all of one
                size (a multiple of ``size_multiple``), at most ``transformer.config.max_references`` per prompt.
                Reference ``i`` carries concept vector ``i``.
            identity_image: a subject crop whose identity tokens join every prompt's condition.
            options: :class:`ImageGenerationOptions`; keyword arguments override its fields
                (``pipe("a cat", num_inference_steps=20)``). Fields set in neither take the pipeline's
                :attr:`default_options`.
            progress: show a progress bar over the steps.

        Returns:
            ``ImagePipelineOutput`` whose ``images`` follow ``options.output_type``; rows are prompt-major
            (prompt 0's images first).

        Raises:
            pydantic.ValidationError: bad option values (the error names the field).
            ValueError: inconsistent inputs (sizes, counts, missing prompt), naming what is wrong.
        """
        given = options.model_dump(exclude_unset=True) if options is not None else {}
        options = ImageGenerationOptions.model_validate({**self.config.default_options, **given, **option_overrides})
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if prompts is not None and (not prompts or not all(isinstance(p, str) for p in prompts)):
            raise ValueError("prompt must be a string or a non-empty list of strings")
        if llm_states is not None and prompts is not None and len(prompts) != llm_states.shape[0]:
            raise ValueError(f"prompt has {len(prompts)} entries but llm_states has {llm_states.shape[0]} rows")
        num_prompts = len(prompts) if prompts is not None else (llm_states.shape[0] if llm_states is not None else 0)
        if num_prompts == 0:
            raise ValueError("give a prompt or llm_states")
        references = self._reference_lists(reference_images, num_prompts)
        if references is None and options.num_inference_steps == 0:
            raise ValueError("num_inference_steps=0 is only meaningful for editing (it returns the reference)")

        height, width = options.height, options.width
        if options.aspect_ratio is not None:
            height, width = nearest_bucket(
                1000, round(1000 * options.aspect_ratio), self.default_size, self.size_multiple
            )
        elif height is None:
            height, width = (
                (references[0][0].height, references[0][0].width) if references else (self.default_size,) * 2
            )
        self._check_size(height, width, "output")

        # 1. condition tokens (one row per prompt, then per image)
        k = options.num_images_per_prompt
        identity = None if identity_image is None else [identity_image] * num_prompts
        condition = self.encode_condition(prompts, llm_states, identity).repeat(k)
        condition.tokens = condition.tokens.to(self.transformer.dtype)  # the LM and the DiT may differ in dtype
        ref_latents = None
        if references is not None:
            flat = [im for refs in references for im in refs]
            per = len(references[0])
            ref_latents = self.encode_images(flat).to(self.transformer.dtype)
            ref_latents = ref_latents.reshape(num_prompts, per, *ref_latents.shape[1:]).repeat_interleave(k, dim=0)

        # 2. timesteps and starting latents (editing starts from the noised first reference, per `strength`)
        rows, device = num_prompts * k, self._execution_device
        shape = (
            rows,
            self.transformer.config.in_channels,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        seed = options.seed if options.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(rows)]
        # Drawn in fp32 whatever the model's dtype, so a seed gives the same noise in bf16 as in fp32.
        noise = randn_tensor(shape, generator=generators, device=device, dtype=torch.float32).to(self.transformer.dtype)
        timesteps = self._timesteps(options)
        if ref_latents is None:
            latents = noise
        elif len(timesteps) == 0:
            latents = ref_latents[:, 0]
        else:
            latents = self.scheduler.scale_noise(ref_latents[:, 0], timesteps[:1].repeat(rows), noise)

        # 3. denoise: Euler steps on the guided velocity
        for t in tqdm(timesteps, disable=not progress, desc="denoising"):
            velocity = self.guided_velocity(latents, t.expand(rows).to(device), condition, ref_latents, options)
            latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]

        # 4. decode
        if options.output_type == "latent":
            return ImagePipelineOutput(images=latents)
        images = self.decode_latents(latents)
        return ImagePipelineOutput(images=self.image_processor.postprocess(images, output_type=options.output_type))

    def _timesteps(self, options: ImageGenerationOptions) -> torch.Tensor:
        steps = options.num_inference_steps
        if steps == 0:
            return torch.zeros(0)
        self.scheduler.set_timesteps(steps, device=self._execution_device)
        start = steps - min(steps, max(1, round(steps * options.strength)))
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start * self.scheduler.order)
        return self.scheduler.timesteps[start * self.scheduler.order :]

    def _reference_lists(
        self, reference_images: list[PIL.Image.Image] | list[list[PIL.Image.Image]] | None, num_prompts: int
    ) -> list[list[PIL.Image.Image]] | None:
        if reference_images is None:
            return None
        if isinstance(reference_images, PIL.Image.Image):
            reference_images = [reference_images]
        if all(isinstance(r, PIL.Image.Image) for r in reference_images):
            lists = [list(reference_images)] * num_prompts
        elif all(isinstance(r, list | tuple) for r in reference_images):
            lists = [list(r) for r in reference_images]
        else:
            raise ValueError("reference_images must be a list of PIL images or one such list per prompt")
        if len(lists) != num_prompts:
            raise ValueError(f"reference_images has {len(lists)} lists for {num_prompts} prompts")
        counts = {len(r) for r in lists}
        if len(counts) != 1 or 0 in counts:
            raise ValueError(f"every prompt needs the same, non-zero number of reference images, got {sorted(counts)}")
        limit = self.transformer.config.max_references
        if counts.pop() > limit:
            raise ValueError(f"at most {limit} reference images per prompt (max_references)")
        sizes = {im.size for r in lists for im in r}
        if len(sizes) != 1:
            raise ValueError(f"reference images must share one size, got {sorted(sizes)}")
        w, h = sizes.pop()
        self._check_size(h, w, "reference image")
        return lists

    def edit(self, image: PIL.Image.Image, prompt: str, *, seed: int | None = None) -> PIL.Image.Image:
        """Edit ``image`` as ``prompt`` says (ming-genseg's ``EditingPipeline`` protocol), with default options.

        The image is resized to the aspect-ratio bucket nearest its shape at the pipeline's default resolution (the
        edit comes back at that size); ``image`` itself is not modified.
        """
        if not isinstance(image, PIL.Image.Image):
            raise TypeError(f"image must be a PIL image, got {type(image).__name__}")
        h, w = nearest_bucket(image.height, image.width, self.default_size, self.size_multiple)
        reference = image.convert("RGB")
        if reference.size != (w, h):
            reference = reference.resize((w, h), PIL.Image.Resampling.BICUBIC)
        out = self(prompt, reference_images=[reference], seed=seed, output_type="pil")
        return out.images[0]
