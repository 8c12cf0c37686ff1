"""Generation: streaming = batch, KV cache = recompute, the stop head, voice prompts, decoders, option errors."""

import pytest
import torch
from pydantic import ValidationError

from ming_tts_head import GenerationOptions, SpeechRequest, stream_speech, synthesize

TEXTS = [[5, 6, 7, 8, 9, 10, 11], [1, 2, 3], [42]]


def _force_stop(model, stop: bool) -> None:
    with torch.no_grad():
        model.stop_head.weight.zero_()
        model.stop_head.bias.copy_(torch.tensor([-10.0, 10.0] if stop else [10.0, -10.0]))


def test_streaming_concatenated_equals_batch_output_for_the_same_seed(tiny_model):
    options = GenerationOptions(min_patches=2, max_patches=6, seed=3)
    batch = synthesize(tiny_model, TEXTS, options)
    for text, expected in zip(TEXTS, batch, strict=True):
        chunks = list(stream_speech(tiny_model, text, options))
        assert [c.index for c in chunks] == list(range(len(chunks)))
        assert all(c.latents.shape == (1, 4, 64) and c.audio is None for c in chunks)
        streamed = torch.cat([c.latents for c in chunks], dim=1)
        assert streamed.shape == expected.shape
        assert torch.allclose(streamed, expected, atol=1e-4)


def test_seed_and_guidance_change_the_output(tiny_model):
    options = GenerationOptions(min_patches=3, max_patches=3)
    base = synthesize(tiny_model, TEXTS[:1], options)[0]
    assert torch.equal(base, synthesize(tiny_model, TEXTS[:1], options)[0])
    assert not torch.allclose(base, synthesize(tiny_model, TEXTS[:1], options.model_copy(update={"seed": 1}))[0])
    assert not torch.allclose(base, synthesize(tiny_model, TEXTS[:1], options.model_copy(update={"cfg_scale": 1}))[0])


def test_kv_cached_generation_equals_recompute(tiny_model):
    cached = synthesize(tiny_model, TEXTS, GenerationOptions(min_patches=5, max_patches=5))
    recomputed = synthesize(tiny_model, TEXTS, GenerationOptions(min_patches=5, max_patches=5, use_cache=False))
    for a, b in zip(cached, recomputed, strict=True):
        assert a.shape == b.shape == (1, 20, 64)
        assert torch.allclose(a, b, atol=1e-4)


def test_stop_head_ends_generation_after_the_minimum_and_max_patches_guards(tiny_model):
    _force_stop(tiny_model, stop=True)
    options = GenerationOptions(min_patches=3, max_patches=50)
    assert [o.shape[1] for o in synthesize(tiny_model, TEXTS, options)] == [12, 12, 12]
    chunks = list(stream_speech(tiny_model, TEXTS[0], options))
    assert len(chunks) == 3
    assert all(c.stop_probability > 0.99 for c in chunks)
    assert synthesize(tiny_model, TEXTS[:1], GenerationOptions(min_patches=0))[0].shape == (1, 0, 64)
    _force_stop(tiny_model, stop=False)
    assert [o.shape[1] for o in synthesize(tiny_model, TEXTS, options)] == [200, 200, 200]


class _FirstRowStops(torch.nn.Module):
    """From the second step on, says "stop" for the first row still speaking and "go on" for the others."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, hidden):
        logits = hidden.new_tensor([10.0, -10.0]).repeat(hidden.shape[0], 1)
        if self.calls >= 1:
            logits[0] = hidden.new_tensor([-10.0, 10.0])
        self.calls += 1
        return logits


def test_rows_stop_independently_without_disturbing_the_others(tiny_model):
    solo = synthesize(tiny_model, TEXTS[2:], GenerationOptions(min_patches=3, max_patches=3))[0]
    tiny_model.stop_head = _FirstRowStops()
    outputs = synthesize(tiny_model, TEXTS, GenerationOptions(min_patches=1, max_patches=10))
    assert [o.shape[1] for o in outputs] == [4, 8, 12]
    assert torch.allclose(outputs[2], solo, atol=1e-4)  # rows removed from the batch and its KV cache mid-way


def test_flow_head_runs_steps_batched_evaluations_per_patch(tiny_model):
    calls = []
    hook = tiny_model.flow_head.register_forward_hook(lambda m, args, out: calls.append(out.shape[0]))
    synthesize(tiny_model, TEXTS[:2], GenerationOptions(min_patches=2, max_patches=2))
    synthesize(tiny_model, TEXTS[:1], GenerationOptions(min_patches=1, max_patches=1, schedule="uniform", steps=3))
    hook.remove()
    assert calls == [4] * 20 + [2] * 3  # both CFG branches of every row in one call; NFE = steps per patch


def test_voice_prompt_conditions_generation_and_only_whole_patches_count(tiny_model):
    prompt = torch.randn(10, 64, generator=torch.Generator().manual_seed(0))
    options = GenerationOptions(min_patches=2, max_patches=2)
    plain = synthesize(tiny_model, [TEXTS[1]], options)[0]
    cloned = synthesize(tiny_model, [SpeechRequest(text_ids=TEXTS[1], prompt_latents=prompt)], options)[0]
    trimmed = synthesize(tiny_model, [SpeechRequest(text_ids=TEXTS[1], prompt_latents=prompt[2:][None])], options)[0]
    assert cloned.shape == plain.shape == (1, 8, 64)  # the prompt is not part of the output
    assert not torch.allclose(cloned, plain, atol=1e-3)
    assert torch.allclose(cloned, trimmed, atol=1e-5)
    streamed = torch.cat(
        [
            c.latents
            for c in stream_speech(tiny_model, SpeechRequest(text_ids=TEXTS[1], prompt_latents=prompt), options)
        ],
        dim=1,
    )
    assert torch.allclose(streamed, cloned, atol=1e-5)


def test_decoder_gets_each_patch_in_order_and_its_audio_is_yielded(tiny_model):
    seen = []

    def decoder(latents):
        seen.append(latents.clone())
        return latents.mean(-1).repeat_interleave(320, dim=1)  # 320 samples per 50 Hz frame

    chunks = list(stream_speech(tiny_model, TEXTS[0], GenerationOptions(min_patches=3, max_patches=3), decoder))
    assert len(seen) == len(chunks) == 3  # a plain callable has nothing to flush: no tail chunk
    assert all(s.shape == (1, 4, 64) for s in seen)
    for chunk, latents in zip(chunks, seen, strict=True):
        assert torch.equal(chunk.latents, latents)
        assert chunk.audio.shape == (1, 4 * 320)


class _LaggingDecoder:
    """A stateful decoder with one frame of latency: each step returns the frame mean of the previous frames and
    holds back the last one, which ``flush`` returns."""

    def __init__(self) -> None:
        self.resets = 0
        self.held: torch.Tensor | None = None

    def reset(self) -> None:
        self.resets += 1
        self.held = None

    def step(self, latents: torch.Tensor) -> torch.Tensor:
        audio = latents.mean(-1)
        if self.held is not None:
            audio = torch.cat([self.held, audio], dim=-1)
        self.held = audio[:, -1:]
        return audio[:, :-1]

    def flush(self) -> torch.Tensor:
        tail, self.held = self.held, None
        return tail


def test_a_stateful_decoder_is_reset_first_and_flushed_into_a_tail_chunk(tiny_model):
    options = GenerationOptions(min_patches=3, max_patches=3)
    decoder = _LaggingDecoder()
    chunks = list(stream_speech(tiny_model, TEXTS[0], options, decoder))
    assert decoder.resets == 1
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    tail = chunks[-1]
    assert tail.latents.shape == (1, 0, 64)
    assert tail.stop_probability is None
    latents = torch.cat([c.latents for c in chunks], dim=1)
    assert latents.shape == (1, 12, 64)
    assert torch.equal(torch.cat([c.audio for c in chunks], dim=-1), latents.mean(-1))  # nothing lost at the end
    decoder.step(torch.ones(1, 4, 64))  # an abandoned utterance leaves state behind
    again = list(stream_speech(tiny_model, TEXTS[0], options, decoder))
    assert decoder.resets == 2
    assert all(torch.equal(a.audio, b.audio) for a, b in zip(chunks, again, strict=True))


def test_requests_are_checked_before_the_first_patch_is_asked_for(tiny_model):
    with pytest.raises(ValidationError, match="text_ids"):
        stream_speech(tiny_model, [])
    with pytest.raises(TypeError, match="decoder"):
        stream_speech(tiny_model, [1], decoder=object())
    options = GenerationOptions(min_patches=0, max_patches=tiny_model.config.max_position_embeddings - 4)
    stream_speech(tiny_model, [1, 2, 3], options)  # 3 + separator + max_patches fits exactly
    with pytest.raises(ValueError, match=r"request: .*max_position_embeddings=1024"):
        stream_speech(tiny_model, [1, 2, 3, 4], options)
    with pytest.raises(ValueError, match=r"requests\[0\]: .*prompt patches \(2\).*max_position_embeddings"):
        synthesize(tiny_model, [SpeechRequest(text_ids=[1, 2], prompt_latents=torch.zeros(9, 64))], options)


def test_generation_stops_at_max_patches_without_another_backbone_or_aggregator_pass(tiny_model):
    calls = {"backbone": 0, "aggregator": 0}
    hooks = [
        getattr(tiny_model, name).register_forward_hook(
            lambda m, a, o, name=name: calls.__setitem__(name, calls[name] + 1)
        )
        for name in calls
    ]
    chunks = list(stream_speech(tiny_model, TEXTS[0], GenerationOptions(min_patches=3, max_patches=3)))
    for hook in hooks:
        hook.remove()
    assert len(chunks) == 3
    assert calls == {"backbone": 3, "aggregator": 2}  # the state after the last patch is never needed


def test_a_request_seed_overrides_the_options_seed_and_streams_like_the_batch(tiny_model):
    options = GenerationOptions(min_patches=2, max_patches=2, seed=1)
    requests = [SpeechRequest(text_ids=TEXTS[1], seed=1), SpeechRequest(text_ids=TEXTS[1], seed=2), TEXTS[1]]
    own, other, default = synthesize(tiny_model, requests, options)
    assert torch.equal(own, default)
    assert not torch.allclose(own, other, atol=1e-3)
    streamed = torch.cat([c.latents for c in stream_speech(tiny_model, requests[1], options)], dim=1)
    assert torch.allclose(streamed, other, atol=1e-4)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"cfg_scale": -1.0}, "cfg_scale"),
        ({"steps": 4}, "steps"),
        ({"max_patches": 0}, "max_patches"),
        ({"min_patches": 5, "max_patches": 3}, "must be at least min_patches"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(ValidationError, match=field):
        GenerationOptions(**options)


def test_bad_requests_name_the_field(tiny_model):
    with pytest.raises(ValidationError, match="text_ids"):
        synthesize(tiny_model, [[]])
    with pytest.raises(ValueError, match=r"requests\[1\]\.text_ids"):
        synthesize(tiny_model, [[1], [tiny_model.config.vocab_size]])
    with pytest.raises(ValidationError, match="prompt_latents"):
        SpeechRequest(text_ids=[1], prompt_latents=torch.zeros(2, 3, 64))
    with pytest.raises(ValueError, match="prompt_latents"):
        synthesize(tiny_model, [SpeechRequest(text_ids=[1], prompt_latents=torch.zeros(3, 64))])
    with pytest.raises(ValueError, match="requests"):
        synthesize(tiny_model, [])
