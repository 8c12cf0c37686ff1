"""encode / decode contracts: lengths, causality, resampling, channels, scaling, save → load, bad inputs."""

import math

import numpy as np
import pytest
import torch
import torchaudio
from safetensors.torch import load_file, save_file

from ming_speech_tokenizer import (
    GaussianPosterior,
    SpeechTokenizerConfig,
    SpeechTokenizerModel,
    estimate_latent_scaling_factor,
)


@pytest.mark.parametrize("samples", [320, 3200, 3201, 3519, 16_000])
def test_n_samples_give_ceil_n_over_320_frames_and_back(tiny_model, samples):
    wave = torch.randn(samples) * 0.1
    latents = tiny_model.encode(wave, 16_000)
    frames = -(-samples // 320)
    assert latents.shape == (1, frames, 64)
    assert tiny_model.decode(latents).shape == (1, frames * 320)


def test_a_partial_last_frame_is_completed_with_zeros_not_cut(tiny_model):
    wave = torch.randn(3300) * 0.1
    padded = torch.cat((wave, torch.zeros(3520 - 3300)))
    torch.testing.assert_close(tiny_model.encode(wave, 16_000), tiny_model.encode(padded, 16_000), rtol=0, atol=0)


def test_encoder_is_causal_appending_audio_keeps_earlier_latents(tiny_model, speech):
    wave = speech[0][: 100 * 320]
    prefix = tiny_model.encode(wave[: 40 * 320], 16_000)
    full = tiny_model.encode(wave, 16_000)
    torch.testing.assert_close(full[:, :40], prefix, rtol=1e-5, atol=1e-5)
    changed = tiny_model.encode(torch.cat((wave[: 40 * 320], torch.randn(60 * 320))), 16_000)
    torch.testing.assert_close(changed[:, :40], prefix, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(changed[:, 40:], full[:, 40:], atol=1e-3)  # what comes later does change


def test_the_log_spectrum_encoder_input_is_causal_exact_in_chunks_and_blind_to_the_sign(speech, tmp_path):
    torch.manual_seed(0)
    model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(encoder_log_spectrum=True)).eval()
    wave = speech[0][: 100 * 320]
    full = model.encode(wave, 16_000)
    assert full.shape == (1, 100, 64)
    torch.testing.assert_close(model.encode(wave[: 40 * 320], 16_000), full[:, :40], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        one_pass, _ = model.encoder(wave[None])
    torch.testing.assert_close(model.encode(wave, 16_000, chunk_frames=7), one_pass.mean, rtol=1e-4, atol=1e-5)
    model.save_pretrained(tmp_path)
    torch.testing.assert_close(
        SpeechTokenizerModel.from_pretrained(tmp_path).encode(wave, 16_000), full, rtol=0, atol=0
    )
    assert not torch.allclose(model.encode(-wave, 16_000), full, atol=1e-3)  # the waveform convolution sees the sign
    with torch.no_grad():
        model.encoder.conv.weight.zero_()
    # what is left, the log-magnitude spectrum, does not
    torch.testing.assert_close(model.encode(-wave, 16_000), model.encode(wave, 16_000), rtol=0, atol=1e-6)
    assert SpeechTokenizerModel(SpeechTokenizerConfig.tiny()).encoder.spectrum is None  # off by default


def test_decoder_is_causal_with_three_frames_of_latency(tiny_model):
    latents = torch.randn(1, 30, 64)
    other = latents.clone()
    other[:, 20:] = torch.randn(1, 10, 64)
    first, second = tiny_model.decode(latents), tiny_model.decode(other)
    # frame 20 writes slots 17 … 20 (what encoder frame 20 saw): sample n depends on latents ≤ n // 320 + 3
    assert tiny_model.config.latency_frames == 3
    torch.testing.assert_close(first[:, : 17 * 320], second[:, : 17 * 320], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(first[:, 17 * 320 : 18 * 320], second[:, 17 * 320 : 18 * 320], atol=1e-4)


def test_output_sample_s_depends_only_on_input_samples_before_s_plus_n_fft(tiny_model, speech):
    wave = speech[0][: 40 * 320]
    base = tiny_model.decode(tiny_model.encode(wave, 16_000))[0]
    for poked_sample in (5 * 320 + 17, 20 * 320, 33 * 320 + 319):
        poked = wave.clone()
        poked[poked_sample] += 0.5
        changed = (tiny_model.decode(tiny_model.encode(poked, 16_000))[0] - base).abs() > 1e-7
        first_changed = int(changed.nonzero()[0])
        # encoder frames k … k + 3 see slot k = poked_sample // 320 and decoder frame k writes from slot k − 3 on:
        # measured, the horizon is n_fft = 1280 samples (20 ms frame + 60 ms latency)
        assert first_changed + 1280 > poked_sample
        slot = poked_sample // 320
        assert 320 * (slot - 3) <= first_changed < 320 * (slot - 2)  # the bound is reached (to the slot)


def test_batch_rows_are_encoded_independently(tiny_model):
    waves = torch.randn(3, 1, 4800) * 0.1
    batched = tiny_model.encode(waves, 16_000)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], tiny_model.encode(waves[i, 0], 16_000), rtol=1e-5, atol=1e-5)
    decoded = tiny_model.decode(batched)
    torch.testing.assert_close(decoded[1:2], tiny_model.decode(batched[1:2]), rtol=1e-5, atol=1e-6)


def test_other_sample_rates_are_resampled_with_torchaudio(tiny_model):
    wave = torch.randn(48_000) * 0.1  # 1 s at 48 kHz
    latents = tiny_model.encode(wave, 48_000)
    assert latents.shape == (1, 50, 64)
    expected = tiny_model.encode(torchaudio.functional.resample(wave, 48_000, 16_000), 16_000)
    torch.testing.assert_close(latents, expected, rtol=0, atol=0)


def test_stereo_is_averaged_and_numpy_is_accepted(tiny_model):
    stereo = np.random.default_rng(0).normal(0, 0.1, (2, 4000)).astype(np.float32)
    expected = tiny_model.encode(torch.from_numpy(stereo.mean(0)), 16_000)
    torch.testing.assert_close(tiny_model.encode(stereo[None], 16_000), expected, rtol=1e-6, atol=1e-6)
    reversed_view = stereo[:, ::-1]  # negative strides
    torch.testing.assert_close(
        tiny_model.encode(reversed_view[None], 16_000),
        tiny_model.encode(torch.from_numpy(reversed_view.mean(0).copy()), 16_000),
        rtol=1e-6,
        atol=1e-6,
    )


def test_a_batch_of_mono_clips_is_not_averaged_and_round_trips(tiny_model):
    clips = torch.randn(3, 4000) * 0.1
    latents = tiny_model.encode(clips, 16_000)
    assert latents.shape == (3, 13, 64)
    torch.testing.assert_close(latents[2:], tiny_model.encode(clips[2], 16_000), rtol=1e-5, atol=1e-5)
    assert tiny_model.encode(tiny_model.decode(latents), 16_000).shape == latents.shape
    with pytest.raises(ValueError, match="channels ≤ 2"):
        tiny_model.encode(torch.zeros(1, 3, 4000), 16_000)


def test_sampling_draws_around_the_mean_and_follows_the_generator(tiny_model):
    wave = torch.randn(6400) * 0.1
    mean = tiny_model.encode(wave, 16_000)
    first = tiny_model.encode(wave, 16_000, sample=True, generator=torch.Generator().manual_seed(1))
    again = tiny_model.encode(wave, 16_000, sample=True, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, mean)


def test_a_posterior_draw_has_the_posterior_standard_deviation():
    posterior = GaussianPosterior(torch.full((4, 500, 64), 3.0), torch.full((4, 500, 64), math.log(4.0)))
    draw = posterior.sample(torch.Generator().manual_seed(0))
    assert draw.mean().item() == pytest.approx(3.0, abs=0.01)
    assert draw.std().item() == pytest.approx(2.0, rel=0.01)  # exp(log 4 / 2)


def test_latent_scaling_factor_scales_encode_and_is_undone_by_decode(tiny_model, tmp_path):
    wave = torch.randn(3200) * 0.1
    tiny_model.save_pretrained(tmp_path)
    scaled = SpeechTokenizerModel.from_pretrained(tmp_path, latent_scaling_factor=2.0).eval()
    torch.testing.assert_close(scaled.encode(wave, 16_000), 2 * tiny_model.encode(wave, 16_000))
    latents = tiny_model.encode(wave, 16_000)
    torch.testing.assert_close(scaled.decode(2 * latents), tiny_model.decode(latents))


def test_save_then_load_is_bit_identical(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = SpeechTokenizerModel.from_pretrained(tmp_path).eval()
    ignored = {"_name_or_path"}
    assert {k: v for k, v in loaded.config.to_dict().items() if k not in ignored} == {
        k: v for k, v in tiny_model.config.to_dict().items() if k not in ignored
    }
    saved = load_file(tmp_path / "model.safetensors")
    assert set(saved) == set(tiny_model.state_dict())
    for name, tensor in loaded.state_dict().items():  # nothing random left behind
        assert torch.equal(tensor, tiny_model.state_dict()[name]), name
    wave = torch.randn(4000) * 0.1
    assert torch.equal(loaded.encode(wave, 16_000), tiny_model.encode(wave, 16_000))
    assert torch.equal(
        loaded.decode(torch.randn(1, 5, 64, generator=torch.Generator().manual_seed(0))),
        tiny_model.decode(torch.randn(1, 5, 64, generator=torch.Generator().manual_seed(0))),
    )


@pytest.mark.parametrize(
    ("wave", "sample_rate", "error", "message"),
    [
        (torch.zeros(0), 16_000, ValueError, "wave is empty"),
        (torch.zeros(100), 16_000, ValueError, "wave is too short"),
        (torch.zeros(900), 48_000, ValueError, "wave is too short"),
        (torch.tensor([0.1, float("nan")] * 400), 16_000, ValueError, "wave contains NaN"),
        (torch.tensor([0.1, float("inf")] * 400), 16_000, ValueError, "wave contains NaN"),
        (torch.zeros(800, dtype=torch.int16), 16_000, TypeError, "wave must hold floating-point"),
        (np.zeros(800, dtype=np.int32), 16_000, TypeError, "wave must hold floating-point"),
        (torch.zeros(1, 1, 1, 800), 16_000, ValueError, "wave must be"),
        ([0.0] * 800, 16_000, TypeError, "wave must be a torch.Tensor or numpy array"),
        (torch.zeros(800), 0, ValueError, "sample_rate"),
        (torch.zeros(800), 16_000.0, TypeError, "sample_rate"),
        (torch.zeros(800), True, TypeError, "sample_rate"),
    ],
)
def test_bad_waves_get_errors_naming_the_argument(tiny_model, wave, sample_rate, error, message):
    with pytest.raises(error, match=message):
        tiny_model.encode(wave, sample_rate)


@pytest.mark.parametrize(
    ("latents", "message"),
    [
        (torch.zeros(1, 0, 64), "latents is empty"),
        (torch.zeros(1, 4, 32), "latents must be"),
        (torch.zeros(4, 64), "latents must be"),
        (torch.full((1, 4, 64), float("nan")), "latents contains NaN"),
    ],
)
def test_bad_latents_get_errors_naming_the_argument(tiny_model, latents, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.decode(latents)


def test_integer_latents_are_refused(tiny_model):
    with pytest.raises(TypeError, match="latents must hold floating-point"):
        tiny_model.decode(torch.zeros(1, 4, 64, dtype=torch.long))


def test_chunk_frames_must_be_positive_integers(tiny_model):
    with pytest.raises(ValueError, match="chunk_frames"):
        tiny_model.encode(torch.zeros(800), 16_000, chunk_frames=0)
    with pytest.raises(TypeError, match="chunk_frames"):
        tiny_model.decode(torch.zeros(1, 4, 64), chunk_frames=2.0)


def test_forward_rejects_lengths_that_are_not_whole_frames():
    model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny())
    with pytest.raises(ValueError, match="multiple of 320"):
        model(torch.zeros(2, 1000))


def test_loading_a_checkpoint_with_missing_weights_fails(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["decoder.head.proj.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"decoder\.head\.proj\.weight"):
        SpeechTokenizerModel.from_pretrained(tmp_path)


def test_loading_a_checkpoint_with_unexpected_or_mismatched_weights_fails(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file(
        {**weights, "decoder.extra.weight": torch.zeros(3)}, tmp_path / "model.safetensors", metadata={"format": "pt"}
    )
    with pytest.raises(ValueError, match=r"unexpected_keys: \['decoder\.extra\.weight'\]"):
        SpeechTokenizerModel.from_pretrained(tmp_path)
    weights["decoder.head.proj.bias"] = torch.zeros(7)
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"mismatched_keys: \['decoder\.head\.proj\.bias'\]"):
        SpeechTokenizerModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True)


def test_the_estimated_latent_scaling_factor_gives_unit_std_latents_and_is_saved(tiny_model, speech, tmp_path):
    raw_std = torch.cat([tiny_model.encode(clip, 16_000).flatten() for clip in speech]).std().item()
    factor = estimate_latent_scaling_factor(tiny_model, speech, 16_000)
    assert factor == pytest.approx(1 / raw_std, rel=1e-4)
    assert tiny_model.config.latent_scaling_factor == factor
    scaled = torch.cat([tiny_model.encode(clip, 16_000).flatten() for clip in speech])
    assert scaled.std().item() == pytest.approx(1.0, rel=1e-4)
    assert estimate_latent_scaling_factor(tiny_model, speech, 16_000) == pytest.approx(factor, rel=1e-6)  # idempotent
    tiny_model.save_pretrained(tmp_path)
    saved = SpeechTokenizerModel.from_pretrained(tmp_path).config.latent_scaling_factor
    assert saved == tiny_model.config.latent_scaling_factor
    with pytest.raises(ValueError, match="clips is empty"):
        estimate_latent_scaling_factor(tiny_model, [], 16_000)
