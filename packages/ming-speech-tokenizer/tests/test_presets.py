"""The flash preset has the paper's frame layout (built on the meta device, never allocated)."""

import pytest
import torch

from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel


def test_flash_numbers():
    config = SpeechTokenizerConfig.flash()
    assert (config.sampling_rate, config.hop_length, config.latent_dim) == (16_000, 320, 64)
    assert config.frame_rate == 50.0
    assert (config.n_fft, config.hop_length) == (1280, 320)
    assert config.discriminator_periods == [2, 3, 5, 7, 11]
    tiny = SpeechTokenizerConfig.tiny()
    assert (tiny.sampling_rate, tiny.hop_length, tiny.latent_dim, tiny.n_fft, tiny.frame_rate) == (
        16_000,
        320,
        64,
        1280,
        50.0,
    )


def test_flash_on_meta_gives_50_hz_64_dim_latents_and_320_samples_per_frame():
    config = SpeechTokenizerConfig.flash()
    with torch.device("meta"):
        model = SpeechTokenizerModel(config)
        posterior, _ = model.encoder(torch.zeros(2, 3 * 16_000))
        hidden, _ = model.decoder(posterior.mean)
        wave = model.decoder.head(hidden)
    assert posterior.mean.shape == posterior.logvar.shape == (2, 150, 64)
    assert wave.shape == (2, 3 * 16_000)
    assert model.decoder.head.proj.out_features == 1280 + 2  # n_fft / 2 + 1 magnitudes and phases
    # independent count: conv front end, blocks (qkv, out, two norms, MLP), final norm, posterior / latent projections
    h, i, layers = 768, 3072, 12
    block = 4 * h * h + 2 * h + (h * i + i) + (i * h + h)
    encoder = (1280 * h + h) + layers * block + h + (h * 128 + 128)
    decoder = (64 * h + h) + layers * block + h + (h * 1282 + 1282)
    assert sum(p.numel() for p in model.encoder.parameters()) == encoder
    assert sum(p.numel() for p in model.decoder.parameters()) == decoder
    assert 85e6 < encoder < 87e6


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_fft": 1000}, "n_fft"),
        ({"n_fft": 640}, "n_fft"),
        ({"num_attention_heads": 5}, "hidden_size"),
        ({"attention_window": 0}, "attention_window"),
        ({"latent_scaling_factor": 0.0}, "latent_scaling_factor"),
        ({"discriminator_stft_resolutions": [[256, 512]]}, "discriminator_stft_resolutions"),
        ({"discriminator_stft_resolutions": [[256, 0]]}, "discriminator_stft_resolutions"),
        ({"discriminator_stft_resolutions": []}, "discriminator_stft_resolutions"),
        ({"hop_length": 0}, "hop_length must be positive"),
        ({"sampling_rate": -16_000}, "sampling_rate must be positive"),
        ({"latent_dim": 0}, "latent_dim must be positive"),
        ({"encoder_layers": 0}, "encoder_layers must be positive"),
        ({"decoder_layers": 0}, "decoder_layers must be positive"),
        ({"intermediate_size": 0}, "intermediate_size must be positive"),
        ({"rope_theta": 0.0}, "rope_theta must be positive"),
        ({"rms_norm_eps": -1e-6}, "rms_norm_eps must be positive"),
        ({"discriminator_channels": 0}, "discriminator_channels must be positive"),
        ({"discriminator_periods": [2, 1]}, "discriminator_periods"),
        ({"discriminator_periods": []}, "discriminator_periods"),
        ({"harmonic_candidates": -1}, "harmonic_candidates"),
        ({"harmonic_f0_range": [500.0, 50.0]}, "harmonic_f0_range"),
        ({"harmonic_f0_range": [50.0, 9000.0]}, "harmonic_f0_range"),
        ({"harmonic_f0_range": [0.0, 500.0]}, "harmonic_f0_range"),
    ],
)
def test_bad_config_values_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        SpeechTokenizerConfig.tiny(**overrides)
