"""Autoregressive generation of speech latents (paper §2.2): per step, the backbone's last state feeds the stop head
and, unless speech ends, the flow head, whose patch (Euler sampling with classifier-free guidance) is aggregated into
the next backbone input. The backbone keeps a transformers ``DynamicCache`` across steps.

:func:`stream_speech` yields each patch (and its audio, given a decoder) as soon as it exists; :func:`synthesize`
generates many texts in one batch. A text's output does not depend on the batch it is in: every row draws its
noise from its own generator (seeded with its request's ``seed``, else ``options.seed``), and left padding is masked
out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from ._inputs import check_token_ids
from .modeling import TTSHeadModel
from .options import GenerationOptions, SpeechRequest
from .sampler import euler_sample
from .schedule import flow_timesteps

__all__ = ["SpeechChunk", "StreamingAudioDecoder", "stream_speech", "synthesize"]


class StreamingAudioDecoder(Protocol):
    """A stateful latent → audio decoder, e.g. ``ming_speech_tokenizer.StreamingDecoder``.

    ``step(latents)`` takes ``(1, patch_size, latent_dim)`` latents, patch after patch, and returns the audio they
    finish. Optional: ``reset()`` (forget the previous utterance; :func:`stream_speech` calls it first) and
    ``flush()`` (the audio still held back at the end, then reset; :func:`stream_speech` yields it as a last chunk).
    """

    def step(self, latents: torch.Tensor) -> torch.Tensor: ...


_Decoder = StreamingAudioDecoder | Callable[[torch.Tensor], torch.Tensor]


@dataclass
class SpeechChunk:
    """One generated patch, or the decoder's flushed tail.

    Attributes:
        index: chunk number (0 for the first generated patch).
        latents: ``(1, patch_size, latent_dim)`` latents, the speech tokenizer's contract; ``(1, 0, latent_dim)`` in
            the tail chunk.
        audio: the decoder's output for these latents (the tail chunk: its ``flush()``), or None without a decoder.
        stop_probability: the stop head's probability at the state that produced this patch; None in the tail chunk.
    """

    index: int
    latents: torch.Tensor
    audio: torch.Tensor | None
    stop_probability: float | None


def _as_request(request: SpeechRequest | Sequence[int] | torch.Tensor) -> SpeechRequest:
    return request if isinstance(request, SpeechRequest) else SpeechRequest(text_ids=request)


def _check_request(model: TTSHeadModel, request: SpeechRequest, options: GenerationOptions, name: str) -> None:
    config = model.config
    check_token_ids(torch.tensor(request.text_ids), config.vocab_size, f"{name}.text_ids")
    prompt = request.prompt_latents
    if prompt is not None and (prompt.shape[-1] != config.latent_dim or prompt.shape[0] < config.patch_size):
        raise ValueError(
            f"{name}.prompt_latents: need at least patch_size={config.patch_size} frames of latent_dim="
            f"{config.latent_dim}, got {tuple(prompt.shape)}"
        )
    prompt_patches = 0 if prompt is None else prompt.shape[0] // config.patch_size
    longest = len(request.text_ids) + 1 + prompt_patches + options.max_patches
    if longest > config.max_position_embeddings:
        raise ValueError(
            f"{name}: text ({len(request.text_ids)}) + separator + prompt patches ({prompt_patches}) + max_patches "
            f"({options.max_patches}) = {longest} exceeds the model's max_position_embeddings="
            f"{config.max_position_embeddings}"
        )


def _generate(
    model: TTSHeadModel, requests: list[SpeechRequest], options: GenerationOptions
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield ``(rows, patches, stop probabilities)`` per step for the rows still speaking."""
    config = model.config
    size, history_frames, dim = config.patch_size, config.history_frames, config.latent_dim
    device, dtype = model.device, model.dtype
    timesteps = flow_timesteps(options.steps, options.schedule, options.sway_coefficient)

    prefixes, histories, present = [], [], []
    for request in requests:
        parts = [model.embed_text(torch.tensor(request.text_ids, device=device)), model.speech_start[None]]
        history = torch.zeros(history_frames, dim, device=device, dtype=dtype)
        mask = torch.zeros(history_frames, dtype=torch.bool, device=device)
        if request.prompt_latents is not None:
            prompt = request.prompt_latents.to(device=device, dtype=dtype)
            prompt = prompt[prompt.shape[0] % size :]  # whole patches only, keeping the latest frames
            parts.append(model.aggregator(prompt.view(-1, size, dim)))
            kept = min(history_frames, prompt.shape[0])
            history[history_frames - kept :] = prompt[prompt.shape[0] - kept :]
            mask[history_frames - kept :] = True
        prefixes.append(torch.cat(parts))
        histories.append(history)
        present.append(mask)
    longest = max(p.shape[0] for p in prefixes)
    # left padding, so every row's latest state is the last column
    embeds = torch.stack([torch.cat([p.new_zeros(longest - p.shape[0], p.shape[1]), p]) for p in prefixes])
    attention_mask = torch.stack(
        [torch.arange(longest, device=device) >= longest - p.shape[0] for p in prefixes]
    ).long()
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    history, present = torch.stack(histories), torch.stack(present)
    generators = [torch.Generator(device).manual_seed(options.seed if r.seed is None else r.seed) for r in requests]
    rows = list(range(len(requests)))
    cache = DynamicCache(config=model.backbone.config) if options.use_cache else None
    step_inputs, step_positions = embeds, positions

    for produced in range(options.max_patches):
        hidden = model.backbone(
            inputs_embeds=step_inputs,
            attention_mask=attention_mask,
            position_ids=step_positions,
            cache=cache,
            use_cache=options.use_cache,
        ).last_hidden_state[:, -1]
        stop = model.stop_head(hidden).float().softmax(-1)[:, 1]
        keep = stop <= options.stop_threshold
        if produced >= options.min_patches and not bool(keep.all()):
            index = keep.nonzero().flatten()
            rows = [rows[i] for i in index.tolist()]
            generators = [generators[i] for i in index.tolist()]
            if not rows:
                return
            hidden, stop, history, present = hidden[index], stop[index], history[index], present[index]
            embeds, attention_mask, positions = embeds[index], attention_mask[index], positions[index]
            if cache is not None:
                cache.batch_select_indices(index)

        noise = torch.stack([torch.randn(size, dim, generator=g, device=device) for g in generators]).to(dtype)
        patches = euler_sample(
            lambda x, t, h=hidden, hist=history, mask=present: model.flow_head.guided_velocity(
                x, t, h, hist, mask, options.cfg_scale
            ),
            noise,
            timesteps,
        )
        yield rows, patches, stop
        if produced + 1 == options.max_patches:
            return  # the limit: no backbone step for a patch that may not follow

        history = torch.cat([history, patches], dim=1)[:, -history_frames:]
        present = torch.cat([present, present.new_ones(len(rows), size)], dim=1)[:, -history_frames:]
        new_embeds = model.aggregator(patches)[:, None]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=1)
        positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
        if cache is None:  # recompute the whole sequence
            embeds = torch.cat([embeds, new_embeds], dim=1)
            step_inputs, step_positions = embeds, positions
        else:
            step_inputs, step_positions = new_embeds, positions[:, -1:]


def stream_speech(
    model: TTSHeadModel,
    request: SpeechRequest | Sequence[int] | torch.Tensor,
    options: GenerationOptions | None = None,
    decoder: _Decoder | None = None,
) -> Iterator[SpeechChunk]:
    """Generate the speech latents of one text, yielding each patch as soon as it is sampled.

    The request is checked here, before the first chunk is asked for.

    Args:
        model: the TTS head (evaluation mode is the caller's choice; dropout-free either way).
        request: a :class:`SpeechRequest` or the text's token ids.
        options: sampler settings (default :class:`GenerationOptions`).
        decoder: a callable taking ``(1, patch_size, latent_dim)`` latents, patch after patch, and returning that
            stretch of audio, or a :class:`StreamingAudioDecoder` such as
            ``ming_speech_tokenizer.StreamingDecoder(tokenizer)``: its ``reset()`` runs before the first patch and
            its ``flush()`` output (the audio held back by its latency) comes as a last, latent-free chunk.

    Yields:
        :class:`SpeechChunk` per patch (then the tail chunk, for a decoder with ``flush``); concatenating
        ``latents`` gives :func:`synthesize`'s output, concatenating ``audio`` the decoding of all of them.
    """
    request = _as_request(request)
    options = options or GenerationOptions()
    _check_request(model, request, options, "request")
    if decoder is None or hasattr(decoder, "step"):
        step = getattr(decoder, "step", None)
    elif callable(decoder):
        step = decoder
    else:
        raise TypeError(f"decoder must be callable or have a step method, got {type(decoder).__name__}")
    return _stream(model, request, options, step, getattr(decoder, "reset", None), getattr(decoder, "flush", None))


@torch.no_grad()
def _stream(
    model: TTSHeadModel,
    request: SpeechRequest,
    options: GenerationOptions,
    step: Callable[[torch.Tensor], torch.Tensor] | None,
    reset: Callable[[], object] | None,
    flush: Callable[[], torch.Tensor] | None,
) -> Iterator[SpeechChunk]:
    if reset is not None:
        reset()  # a reused decoder must not carry the previous utterance into this one
    produced = 0
    for _, patches, stop in _generate(model, [request], options):
        audio = step(patches) if step is not None else None
        yield SpeechChunk(index=produced, latents=patches, audio=audio, stop_probability=float(stop[0]))
        produced += 1
    if flush is not None:
        empty = torch.zeros(1, 0, model.config.latent_dim, device=model.device, dtype=model.dtype)
        yield SpeechChunk(index=produced, latents=empty, audio=flush(), stop_probability=None)


@torch.no_grad()
def synthesize(
    model: TTSHeadModel,
    requests: Sequence[SpeechRequest | Sequence[int] | torch.Tensor],
    options: GenerationOptions | None = None,
    *,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Generate the speech latents of many texts as one batch.

    Args:
        model: the TTS head.
        requests: :class:`SpeechRequest` objects or token-id sequences.
        options: sampler settings (default :class:`GenerationOptions`).
        progress: show a tqdm bar over generation steps.

    Returns:
        One ``(1, frames, latent_dim)`` tensor per request (the generated speech only, without the prompt).
    """
    if len(requests) == 0:
        raise ValueError("requests is empty")
    checked = [_as_request(r) for r in requests]
    options = options or GenerationOptions()
    for i, request in enumerate(checked):
        _check_request(model, request, options, f"requests[{i}]")
    outputs: list[list[torch.Tensor]] = [[] for _ in checked]
    for rows, patches, _ in tqdm(_generate(model, checked, options), disable=not progress, desc="synthesize"):
        for row, patch in zip(rows, patches, strict=True):
            outputs[row].append(patch)
    empty = torch.zeros(1, 0, model.config.latent_dim, device=model.device, dtype=model.dtype)  # stopped at once
    return [torch.cat(p)[None] if p else empty for p in outputs]
