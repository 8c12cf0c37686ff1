"""Discriminator layout and the loss terms' defining properties."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ming_speech_tokenizer import (
    CompressedComplexSTFTLoss,
    GaussianPosterior,
    ISTFTHead,
    MelBandEnergyLoss,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    SpeechDiscriminator,
    SpeechTokenizerConfig,
    compressed_complex_distance,
    feature_matching_loss,
    log_magnitude_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    phase_loss,
    pitch_loss,
)


def test_one_output_per_period_and_resolution_with_feature_maps():
    config = SpeechTokenizerConfig.tiny()
    discriminator = SpeechDiscriminator(config)
    outputs = discriminator(torch.randn(2, 3200))
    assert len(outputs) == 5 + 3
    assert [d.period for d in discriminator.multi_period.discriminators] == [2, 3, 5, 7, 11]
    for logits, features in outputs:
        assert logits.shape[0] == 2
        assert len(features) == 6
        assert torch.equal(features[-1].flatten(1), logits)
    # the period discriminator sees the waveform folded into `period` columns
    assert outputs[1][1][0].shape[-1] == 3


def test_a_period_discriminator_is_its_conv_stack_on_the_folded_waveform():
    discriminator = SpeechDiscriminator(SpeechTokenizerConfig.tiny()).multi_period.discriminators[2]
    assert discriminator.period == 5
    wave = torch.randn(2, 3200)  # a multiple of 5: no padding
    x = wave.view(2, 1, -1, 5)
    features = []
    for layer in discriminator.layers:
        x = torch.nn.functional.leaky_relu(layer(x), 0.1)
        features.append(x)
    x = discriminator.post(x)
    logits, maps = discriminator(wave)
    torch.testing.assert_close(logits, x.flatten(1))
    for ours, expected in zip(maps, [*features, x], strict=True):
        torch.testing.assert_close(ours, expected)


def test_lsgan_losses_vanish_at_their_targets_and_grow_away_from_them():
    ones, zeros = [(torch.ones(2, 5), [])] * 3, [(torch.zeros(2, 5), [])] * 3
    assert lsgan_discriminator_loss(ones, zeros) == 0
    assert lsgan_discriminator_loss(zeros, ones) == 6  # 3 discriminators × (1 + 1)
    assert lsgan_generator_loss(ones) == 0
    assert lsgan_generator_loss(zeros) == 3


def test_feature_matching_is_l1_and_does_not_push_the_real_branch():
    real_map = torch.zeros(2, 4, requires_grad=True)
    fake_map = torch.ones(2, 4, requires_grad=True)
    loss = feature_matching_loss([(None, [real_map, real_map])], [(None, [fake_map, 3 * fake_map])])
    assert loss.item() == 1 + 3
    loss.backward()
    assert real_map.grad is None
    assert fake_map.grad is not None
    assert feature_matching_loss([(None, [real_map])], [(None, [real_map.detach().clone()])]) == 0


def test_multiscale_mel_loss_is_zero_for_identical_audio_and_grows_with_distortion():
    loss = MultiScaleMelLoss(16_000)
    wave = torch.randn(2, 8000) * 0.1
    assert loss(wave, wave) == 0
    small, large = loss(wave + 0.003 * torch.randn_like(wave), wave), loss(wave + 0.03 * torch.randn_like(wave), wave)
    assert 0 < small < large
    # halving the amplitude shifts every log10 mel magnitude by log10(2), summed over the 4 scales (as DAC)
    torch.testing.assert_close(loss(0.5 * wave, wave), torch.tensor(4 * 0.30103), atol=8e-3, rtol=0)


def test_mel_band_energy_loss_is_zero_for_identical_audio_and_sees_the_level():
    loss = MelBandEnergyLoss(16_000)
    assert loss.mel.n_fft == 1280
    assert loss.mel.hop_length == 320
    assert loss.mel.mel_scale.n_mels == 64
    wave = torch.randn(2, 8000) * 0.1
    assert loss(wave, wave) == 0
    small, large = loss(wave + 0.003 * torch.randn_like(wave), wave), loss(wave + 0.03 * torch.randn_like(wave), wave)
    assert 0 < small < large
    # the mel of half the wave is half the mel: every compressed band magnitude M^0.3 shrinks by (1 - 0.5^0.3)
    compressed = loss.mel(wave).clamp(min=1e-5) ** 0.3
    torch.testing.assert_close(loss(0.5 * wave, wave), (1 - 0.5**0.3) * compressed.mean(), rtol=1e-4, atol=0)
    # unlike the log-mel loss, the same ratio costs more in a loud clip than in a quiet one
    assert loss(0.5 * wave, wave) > loss(0.05 * wave, 0.1 * wave) > 0
    with pytest.raises(ValueError, match="compression"):
        MelBandEnergyLoss(16_000, compression=0.0)


def test_kl_matches_torch_distributions():
    mean, logvar = torch.randn(2, 7, 64), torch.randn(2, 7, 64)
    expected = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(GaussianPosterior(mean, logvar).kl(), expected)
    assert GaussianPosterior(torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)).kl() == 0


def test_multi_resolution_stft_loss_is_spectral_convergence_plus_log_magnitude_distance():
    loss = MultiResolutionSTFTLoss()
    wave = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert loss(wave, wave) == 0
    # halving the amplitude: convergence ‖|S| − |S| / 2‖ / ‖|S|‖ = 1/2 and log distance ln 2 at every resolution
    torch.testing.assert_close(loss(0.5 * wave, wave), torch.tensor(0.5 + math.log(2)), atol=1e-4, rtol=0)
    # linear-frequency bins resolve a tone moved by 60 Hz
    seconds = torch.arange(8000) / 16_000
    tone, moved = (torch.sin(2 * math.pi * f * seconds)[None] for f in (4000, 4060))
    assert loss(moved, tone) > 1.0


def test_compressed_complex_distance_sees_magnitude_and_phase():
    spectrum = torch.polar(torch.rand(2, 5, 9) + 0.1, torch.rand(2, 5, 9) * 6)
    compressed = spectrum.abs() ** 0.3
    assert compressed_complex_distance(spectrum, spectrum) < 1e-5
    # halving the magnitudes: |S|^0.3 (1 − 0.5^0.3); flipping the phases by π: 2 |S|^0.3
    torch.testing.assert_close(
        compressed_complex_distance(0.5 * spectrum, spectrum), (compressed * (1 - 0.5**0.3)).mean(), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(compressed_complex_distance(-spectrum, spectrum), 2 * compressed.mean())
    torch.testing.assert_close(
        compressed_complex_distance(-spectrum, spectrum, compression=1.0), 2 * spectrum.abs().mean()
    )


def test_compressed_complex_stft_loss_sees_the_phase_that_the_magnitude_stft_loss_does_not():
    wave = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    loss = CompressedComplexSTFTLoss()
    assert loss(wave, wave) < 1e-5
    assert MultiResolutionSTFTLoss()(-wave, wave) < 1e-5  # same magnitudes
    # a sign flip is a phase error of π in every bin: twice the distance of silence
    torch.testing.assert_close(loss(-wave, wave), 2 * loss(torch.zeros_like(wave), wave), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("subframes", [1, 2, 4])
def test_the_head_layout_consistency_distance_vanishes_only_for_spectra_of_a_waveform(subframes):
    config = SpeechTokenizerConfig.tiny(head_subframes=subframes)
    head = ISTFTHead(config)
    wave = torch.randn(1, 20 * config.hop_length, generator=torch.Generator().manual_seed(0)) * 0.1
    spectrum = head.analyze(wave)  # a waveform's spectra: overlap-adding them gives it back
    segment = 20 - config.latency_frames

    def inconsistency(spectra: torch.Tensor) -> torch.Tensor:
        # as the trainer: the finished slots (all but the last latency_frames), the head's frames wholly inside them
        finished = head.place(head.synthesize(spectra))[:, : segment * config.hop_length]
        first, last = head.n_fft // head.hop - 1, segment * subframes
        return compressed_complex_distance(spectra[:, first:last], head.analyze(finished)[:, first:])

    assert inconsistency(spectrum) < 1e-4
    # the same magnitudes with random phases: the overlapping frames disagree and partly cancel
    scrambled = torch.polar(spectrum.abs(), torch.rand(spectrum.shape, generator=torch.Generator().manual_seed(1)) * 7)
    assert inconsistency(scrambled) > 0.3 * (spectrum.abs() ** 0.3).mean()


def test_phase_loss_measures_phases_on_the_circle():
    phase = torch.rand(2, 7, 33, generator=torch.Generator().manual_seed(0)) * 20 - 10
    turns = torch.randint(-3, 4, phase.shape, generator=torch.Generator().manual_seed(1))
    assert phase_loss(phase + 2 * math.pi * turns, phase) < 1e-4  # whole turns are no error
    # a constant offset is an instantaneous-phase error only (group delay and frequency differences keep)
    torch.testing.assert_close(phase_loss(phase + 0.5, phase), torch.tensor(0.5))
    torch.testing.assert_close(phase_loss(phase + 2 * math.pi - 0.5, phase), torch.tensor(0.5), atol=1e-4, rtol=0)
    # a frequency error (the phase drifting by 0.25 per frame): mean offset 0.75, plus 0.25 per frame-to-frame step
    drift = 0.25 * torch.arange(7.0)[:, None]
    torch.testing.assert_close(phase_loss(phase + drift, phase), torch.tensor(0.75 + 0.25))
    # without the instantaneous term only the relations between bins and frames count: an offset is no error
    assert phase_loss(phase + 0.5, phase, instantaneous=False) < 1e-5
    torch.testing.assert_close(phase_loss(phase + drift, phase, instantaneous=False), torch.tensor(0.25))


def test_log_magnitude_loss_is_the_l1_distance_of_floored_natural_log_magnitudes():
    spectrum = torch.polar(torch.rand(2, 5, 9) + 0.1, torch.rand(2, 5, 9) * 6)
    assert log_magnitude_loss(spectrum.abs().log(), spectrum) == 0
    torch.testing.assert_close(
        log_magnitude_loss(spectrum.abs().log() - math.log(2), spectrum), torch.tensor(math.log(2))
    )
    # below the floor (1e-5) nothing more is asked: silence needs no exact level
    silence = torch.zeros(1, 2, 3, dtype=torch.complex64)
    assert log_magnitude_loss(torch.full((1, 2, 3), -30.0), silence) == 0


def test_pitch_loss_is_the_cross_entropy_over_the_voiced_frames_only():
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    target = torch.randint(7, (2, 5), generator=torch.Generator().manual_seed(1))
    correlation = torch.tensor([[0.9, 0.1, 0.5, 0.0, 0.8], [0.2, 0.3, 0.6, 0.46, 0.44]])
    voiced = correlation > 0.45
    expected = torch.nn.functional.cross_entropy(logits[voiced], target[voiced])
    torch.testing.assert_close(pitch_loss(logits, target, correlation), expected)
    assert pitch_loss(logits, target, torch.zeros(2, 5)) == 0  # nothing voiced: nothing asked
