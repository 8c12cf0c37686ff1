"""Audio encoder + projector: presets, token counts, padding-free batches, windows, front end, save → load."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import WhisperFeatureExtractor

from ming_contextasr import ContextASRAudioConfig, ContextASRAudioModel, num_audio_tokens


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return ContextASRAudioModel(ContextASRAudioConfig.tiny()).eval()


def _whisper_encoder_parameters(mels: int, width: int, layers: int, positions: int) -> int:
    """Whisper encoder parameter count from its architecture (k_proj has no bias; MLP is 4× wide)."""
    convs = (mels * width * 3 + width) + (width * width * 3 + width)
    attention = 4 * width * width + 3 * width
    mlp = 2 * 4 * width * width + 4 * width + width
    norms = 2 * 2 * width
    return convs + positions * width + layers * (attention + mlp + norms) + 2 * width


def test_flash_preset_on_meta_has_large_v3_encoder_shape():
    config = ContextASRAudioConfig.flash()
    with torch.device("meta"):
        model = ContextASRAudioModel(config)
    encoder = sum(p.numel() for p in model.encoder.parameters())
    # Whisper-large-v3's encoder (1500 positions) is 636,968,960 parameters; the 15,000-position table adds 13,500 rows.
    assert _whisper_encoder_parameters(128, 1280, 32, 1500) == 636_968_960
    assert encoder == _whisper_encoder_parameters(128, 1280, 32, 15_000)
    projector = sum(p.numel() for p in model.projector_conv.parameters()) + sum(
        p.numel() for p in model.projector_linear.parameters()
    )
    assert projector == (1280 * 4096 * 3 + 4096) + (4096 * 4096 + 4096)
    assert model.encoder.layers[0].self_attn.num_heads == 20
    assert model.encoder.embed_positions.weight.shape == (15_000, 1280)
    assert num_audio_tokens(16000 * 300, config) == 7500  # 25 per second


@pytest.mark.parametrize("num_samples", [400, 401, 560, 1599, 1600, 3200, 3201, 7999, 16000, 16161, 24000 + 333])
def test_token_count_matches_the_helper(tiny, num_samples):
    with torch.no_grad():
        out = tiny([torch.randn(num_samples)])
    assert out.lengths.tolist() == [num_audio_tokens(num_samples, tiny.config)]
    assert out.embeddings.shape[1] == num_audio_tokens(num_samples, tiny.config)
    assert num_audio_tokens(num_samples) == math.ceil(math.ceil((num_samples // 160) / 2) / 2)


def test_padding_free_batch_equals_one_by_one(tiny):
    torch.manual_seed(1)
    clips = [torch.randn(n) for n in (16000, 5123, 400, 11111)]
    with torch.no_grad():
        batch = tiny(clips)
        alone = [tiny([clip]).embeddings[0] for clip in clips]
    for got, ref in zip(batch.unpadded(), alone, strict=True):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert torch.allclose(batch.unpadded()[0].norm(dim=-1), torch.ones(25))  # L2-normalised
    assert torch.count_nonzero(batch.embeddings[2, 1:]) == 0  # zero past the end


@pytest.fixture(scope="module")
def one_second_windows():
    config = ContextASRAudioConfig.tiny()
    config.max_source_positions = 50  # windows of 100 mel frames = 1 s
    torch.manual_seed(2)
    return ContextASRAudioModel(config).eval()


def _project(model, encoded):
    """The projector applied to one clip's encoder outputs ``(frames, d_model)``."""
    projected = model.projector_conv(encoded.T[None]).transpose(1, 2)
    return F.normalize(model.projector_linear(F.gelu(projected)), dim=-1)[0]


def test_long_audio_is_encoded_in_windows(one_second_windows):
    model = one_second_windows
    torch.manual_seed(3)
    audio = torch.randn(16000 * 3 + 4321)
    with torch.no_grad():
        whole = model([audio]).embeddings[0]
        features = model.log_mel(audio)
        windows = [features[:, i : i + 100] for i in range(0, features.shape[-1], 100)]
        encoded = model._encode_windows(windows)
        expected = _project(model, torch.cat(encoded))
    # 327 mel frames: three full windows of 100 (50 encoder frames each, within the 50-row position table) + 27.
    assert [e.shape[0] for e in encoded] == [50, 50, 50, 14]
    assert whole.shape[0] == num_audio_tokens(audio.numel(), model.config) == 82
    torch.testing.assert_close(whole, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="audio\\[0\\]"):
        model([torch.randn(399)])


def test_long_clip_in_a_mixed_batch_equals_the_clip_alone(one_second_windows):
    torch.manual_seed(4)
    clips = [torch.randn(7000), torch.randn(16000 * 2 + 999), torch.randn(500)]
    with torch.no_grad():
        batch = one_second_windows(clips).unpadded()
        alone = [one_second_windows([clip]).embeddings[0] for clip in clips]
    for got, ref in zip(batch, alone, strict=True):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_windows_do_not_depend_on_the_loudness_of_other_windows(one_second_windows):
    torch.manual_seed(5)
    quiet = torch.randn(16000 * 2) * 1e-3
    quiet[:4000] += 0.1 * torch.sin(torch.arange(4000) / 5)  # a tone: the first window's maximum
    loud = quiet.clone()
    loud[24000:28000] = 100 * torch.randn(4000)  # a burst in the middle of the second window
    with torch.no_grad():
        a, b = one_second_windows([quiet]).embeddings[0], one_second_windows([loud]).embeddings[0]
        features = one_second_windows.log_mel(quiet)
    assert features[:, :100].min() < features[:, :100].max() - 1.0  # the floor (max − 8) is reached in window 1
    # Embeddings 0..24 see only the first window's 50 encoder frames (projector conv: kernel 3, stride 2).
    torch.testing.assert_close(a[:25], b[:25], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[26:], b[26:])


def test_full_window_equals_whisper_encoder_forward(tiny):
    torch.manual_seed(6)
    features = torch.randn(32, 2 * tiny.config.max_source_positions)
    with torch.no_grad():
        ours = tiny._encode_windows([features])[0]
        theirs = tiny.encoder(features[None]).last_hidden_state[0]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_front_end_matches_whisper_feature_extractor():
    config = ContextASRAudioConfig.tiny()
    config.max_source_positions = 1500  # Whisper's 30 s window
    model = ContextASRAudioModel(config)
    audio = np.random.default_rng(0).standard_normal(16000 * 30).astype(np.float32) * 0.1
    audio[: 16000 * 10] *= 1e-3  # quiet for a third of the clip, so the max − 8 floor matters
    extractor = WhisperFeatureExtractor(feature_size=32, sampling_rate=16000)
    reference = extractor(audio, sampling_rate=16000, return_tensors="pt").input_features[0]
    ours = model.log_mel(torch.from_numpy(audio))
    assert ours.shape == reference.shape == (32, 3000)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


def test_bfloat16_on_cpu(tiny):
    clips = [torch.randn(16000), torch.randn(5000)]
    half = copy.deepcopy(tiny).to(torch.bfloat16)
    with torch.no_grad():
        reference = tiny(clips).unpadded()
        got = half(clips).unpadded()
    assert got[0].dtype == torch.bfloat16
    for g, r in zip(got, reference, strict=True):
        assert torch.nn.functional.cosine_similarity(g.float(), r, dim=-1).min() > 0.99
    # The front end stays float32 and outside the state dict (it is computed from the config).
    assert half._mel(torch.device("cpu")).mel_scale.fb.dtype == torch.float32
    assert not [key for key in half.state_dict() if "mel" in key]


def test_bad_batches_are_named(tiny):
    with pytest.raises(ValueError, match="empty batch"):
        tiny([])
    with pytest.raises(ValueError, match=r"audio\[1\] must hold float samples"):
        tiny([torch.randn(800), torch.zeros(800, dtype=torch.int16)])


def test_save_load_is_bit_identical(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = ContextASRAudioModel.from_pretrained(tmp_path).eval()
    assert loaded.config.to_diff_dict() | {"_name_or_path": ""} == tiny.config.to_diff_dict() | {"_name_or_path": ""}
    ours, theirs = tiny.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    clip = torch.randn(4000)
    with torch.no_grad():
        assert torch.equal(tiny([clip]).embeddings, loaded([clip]).embeddings)
