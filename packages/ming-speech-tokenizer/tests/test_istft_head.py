"""The hand-written causal ISTFT equals torch.istft where torch.istft is defined, overlap-adds to unity, and
reconstructs a signal from the spectra of the input frames the encoder sees; the optional harmonic comb and mel
anchor."""

import math

import pytest
import torch
import torch.nn.functional as F

from ming_speech_tokenizer import (
    ISTFTHead,
    SpeechTokenizerConfig,
    SpeechTokenizerModel,
    StreamingDecoder,
    mel_anchor_loss,
    overlap_add,
)


def test_overlap_add_places_frames_hop_apart():
    frames = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    expected = torch.zeros(2, 8)
    for t in range(3):
        expected[:, 2 * t : 2 * t + 4] += frames[:, t]
    torch.testing.assert_close(overlap_add(frames, 2), expected)


def test_squared_windows_sum_to_the_normaliser_in_steady_state():
    head = ISTFTHead(SpeechTokenizerConfig.tiny())
    assert head.normaliser == 1.5
    frames = (head.window**2 / head.normaliser).expand(1, 20, -1)
    total = overlap_add(frames, head.hop)
    torch.testing.assert_close(total[:, 3 * 320 : 20 * 320], torch.ones(1, 17 * 320))


def test_synthesis_equals_torch_istft_away_from_the_edges():
    head = ISTFTHead(SpeechTokenizerConfig.tiny())
    spectrum = torch.randn(1, 641, 30, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    spectrum[:, 0].imag = 0  # DC and Nyquist bins of a real signal
    spectrum[:, -1].imag = 0
    reference = torch.istft(spectrum, 1280, 320, window=torch.hann_window(1280), center=True)
    ours = overlap_add(head.synthesize(spectrum.transpose(1, 2)), 320)
    # torch.istft (center=True) drops the first n_fft / 2 samples; compare where 4 frames overlap on both sides
    torch.testing.assert_close(ours[:, 640 + 960 : 640 + 27 * 320], reference[:, 960 : 27 * 320], rtol=1e-4, atol=1e-5)


def test_analyze_is_the_rfft_of_the_hann_windowed_frames_the_encoder_sees(speech):
    head = ISTFTHead(SpeechTokenizerConfig.tiny())
    x = speech[1][None, : 10 * 320]
    spectra = head.analyze(x)
    assert spectra.shape == (1, 10, 641)
    # frame 5 sees [320 · 2, 320 · 6); frame 1 sees [−640, 640), zeros before the start
    torch.testing.assert_close(spectra[:, 5], torch.fft.rfft(x[:, 640:1920] * torch.hann_window(1280)))
    torch.testing.assert_close(spectra[:, 1], torch.fft.rfft(F.pad(x[:, :640], (640, 0)) * torch.hann_window(1280)))


def test_oracle_spectra_of_the_frames_the_encoder_sees_reconstruct_the_input(speech):
    head = ISTFTHead(SpeechTokenizerConfig.tiny())
    x = speech[1][None, : 40 * 320]
    reconstruction = head.place(head.synthesize(head.analyze(x)))
    assert reconstruction.shape == x.shape
    # exact from sample 0 (no fade-in) up to the last 3 slots, which later frames would finish
    torch.testing.assert_close(reconstruction[:, : 37 * 320], x[:, : 37 * 320], rtol=1e-4, atol=1e-6)
    assert (reconstruction[:, 37 * 320 :] - x[:, 37 * 320 :]).abs().max() > 1e-3


def test_the_magnitude_clip_keeps_the_oracle_spectrum_of_a_full_scale_signal():
    head = ISTFTHead(SpeechTokenizerConfig.tiny())
    seconds = torch.arange(40 * 320) / 16_000
    x = torch.sin(2 * math.pi * 1000 * seconds)[None]  # full scale: its peak bin is n_fft / 4 = 320 > 100
    spectra = head.analyze(x)
    assert spectra.abs().max() > 300
    reconstruction = head.place(head.synthesize(head.polar(spectra.abs().log(), spectra.angle())))
    torch.testing.assert_close(reconstruction[:, : 37 * 320], x[:, : 37 * 320], rtol=1e-4, atol=1e-5)


def _comb_model(seed: int = 0) -> SpeechTokenizerModel:
    torch.manual_seed(seed)
    return SpeechTokenizerModel(SpeechTokenizerConfig.tiny(harmonic_candidates=64)).eval()


def test_the_harmonic_comb_is_off_by_default_and_peaks_on_the_harmonics_of_the_chosen_fundamental():
    assert not any("harmonic" in name for name in SpeechTokenizerModel(SpeechTokenizerConfig.tiny()).state_dict())
    comb = _comb_model().decoder.head.harmonic
    chosen = 40
    f0 = comb.f0s[chosen].item()
    torch.testing.assert_close(comb.f0s[[0, -1]], torch.tensor([50.0, 500.0], dtype=torch.float64))
    with torch.no_grad():
        comb.proj.weight.zero_()
        comb.proj.bias.zero_()
        comb.proj.bias[chosen] = 100.0  # softmax → the chosen fundamental
        comb.proj.bias[comb.candidates :] = math.log(math.e**2 - 1)  # softplus → depth 2 in every bin
    term = comb(torch.randn(1, 3, 128))
    hz = torch.arange(641) * 12.5
    torch.testing.assert_close(term[0, 1], 2 * torch.cos(2 * torch.pi * hz / f0), atol=1e-4, rtol=0)
    harmonics = torch.arange(1, 8) * f0
    nearest = (harmonics / 12.5).round().long()
    assert torch.all(term[0, 0, nearest] > 1.9)  # maxima on k · f0
    assert torch.all(term[0, 0, ((harmonics + f0 / 2) / 12.5).round().long()] < -1.9)  # minima half-way
    # the head adds it to its linear log-magnitudes; the phases are untouched
    head = _comb_model().decoder.head
    hidden = torch.randn(1, 3, 128)
    log_magnitude, phase = head.log_magnitude_and_phase(hidden)
    plain, plain_phase = head.proj(hidden).chunk(2, dim=-1)
    torch.testing.assert_close(log_magnitude, plain + head.harmonic(hidden))
    torch.testing.assert_close(phase, plain_phase)


def test_the_harmonic_comb_learns_which_fundamental_a_spectrum_has():
    comb = _comb_model().decoder.head.harmonic
    hidden = torch.randn(1, 1, 128, generator=torch.Generator().manual_seed(1))
    target_f0 = comb.f0s[23].item()  # about 115 Hz
    hz = torch.arange(641) * 12.5
    target = 3 * torch.cos(2 * torch.pi * hz / target_f0) * (hz < 2000)  # a comb up to 2 kHz
    optimizer = torch.optim.Adam(comb.parameters(), 1e-2)
    for _ in range(300):
        loss = (comb(hidden)[0, 0] - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    chosen = comb.proj(hidden)[0, 0, : comb.candidates].argmax().item()
    assert chosen == 23, comb.f0s[chosen]
    assert loss.item() < 0.2 * target.abs().mean().item()


def _assert_streams_as_decoded_and_reloads_bit_identical(model, tmp_path) -> SpeechTokenizerModel:
    """The streaming decoder gives ``model``'s full decoding of random latents, and so does the model saved and
    loaded from ``tmp_path``, bit for bit; returns the loaded model."""
    latents = torch.randn(1, 20, 64, generator=torch.Generator().manual_seed(0))
    full = model.decode(latents)
    streamer = StreamingDecoder(model)
    pieces = [streamer.step(latents[:, t : t + 1]) for t in range(20)]
    torch.testing.assert_close(torch.cat([*pieces, streamer.flush()], dim=-1), full, rtol=1e-4, atol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = SpeechTokenizerModel.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded.decode(latents), full)
    return loaded


def test_with_the_harmonic_comb_streaming_equals_full_decoding_and_save_load_is_bit_identical(tmp_path):
    model = _comb_model()
    with torch.no_grad():  # a trained-looking profile, which loading must not reset
        model.decoder.head.harmonic.profile.copy_(torch.tensor([0.5, 0.2, -0.1, 0.3]))
        model.decoder.head.harmonic.proj.bias[-16:] = 1.0
    _assert_streams_as_decoded_and_reloads_bit_identical(model, tmp_path)
    with torch.device("meta"):
        flash = SpeechTokenizerModel(SpeechTokenizerConfig.flash(harmonic_candidates=256))
    assert flash.decoder.head.harmonic.basis.shape == (4, 256, 641)


def test_the_pitch_teacher_finds_the_fundamental_of_a_harmonic_sound_and_not_of_noise_or_silence():
    head = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(harmonic_candidates=256)).decoder.head  # 0.9 % apart
    seconds = torch.arange(16_000) / 16_000
    f0 = 140.0 * (1 + 0.1 * seconds)  # a slow glide, 140 → 154 Hz
    cycles = torch.cumsum(f0, 0) / 16_000
    formant = lambda hz: 1 + 4 * torch.exp(-(((hz - 700) / 300) ** 2))  # noqa: E731
    voiced = sum(torch.sin(2 * torch.pi * k * cycles) * formant(k * f0) / k for k in range(1, 40)) * 0.05
    index, correlation = head.harmonic.pitch_targets(head.analyze(voiced[None]))
    inside = slice(4, 50)  # frames whose window lies in the signal
    found = head.harmonic.f0s[index[0, inside]]
    expected = f0[320 * torch.arange(50)[inside] + 320 - 640].double()  # the window's centre
    assert torch.all((found / expected - 1).abs() < 0.01), (found, expected)
    assert torch.all(correlation[0, inside] > 0.45)
    noise = torch.randn(1, 16_000, generator=torch.Generator().manual_seed(0)) * 0.05
    assert head.harmonic.pitch_targets(head.analyze(noise))[1][0, inside].median() < 0.3
    assert torch.all(head.harmonic.pitch_targets(head.analyze(torch.zeros(1, 3200)))[1].abs() < 0.01)


def test_parallel_phase_is_off_by_default_and_takes_the_phase_as_atan2_of_two_outputs(tmp_path):
    assert SpeechTokenizerModel(SpeechTokenizerConfig.tiny()).decoder.head.proj.out_features == 2 * 641
    with torch.device("meta"):
        flash = SpeechTokenizerModel(SpeechTokenizerConfig.flash())
    assert flash.decoder.head.proj.out_features == 2 * 641
    torch.manual_seed(0)
    model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(parallel_phase=True)).eval()
    head = model.decoder.head
    assert head.proj.out_features == 3 * 641
    hidden = torch.randn(1, 5, 128)
    log_magnitude, phase = head.log_magnitude_and_phase(hidden)
    plain, y, x = head.proj(hidden).split(641, dim=-1)
    torch.testing.assert_close(log_magnitude, plain)
    torch.testing.assert_close(phase, torch.atan2(y, x))
    assert phase.abs().max() <= math.pi  # wrapped by construction: no 2π jumps to learn where the target wraps
    assert _assert_streams_as_decoded_and_reloads_bit_identical(model, tmp_path).config.parallel_phase


def test_head_subframes_is_off_in_the_presets_and_must_divide_the_hop():
    for config in (SpeechTokenizerConfig.tiny(), SpeechTokenizerConfig.flash()):
        assert (config.head_subframes, config.head_n_fft, config.head_hop_length) == (1, 1280, 320)
        assert config.latency_frames == 3
    expected = {2: (640, 160, 2), 4: (320, 80, 1), 5: (256, 64, 1)}  # latency: ceil(3 / K) frames
    for k, numbers in expected.items():
        config = SpeechTokenizerConfig.tiny(head_subframes=k)
        assert (config.head_n_fft, config.head_hop_length, config.latency_frames) == numbers
    for bad in (0, -2, 3, 7):
        with pytest.raises(ValueError, match="head_subframes must be a positive divisor of hop_length"):
            SpeechTokenizerConfig.tiny(head_subframes=bad)


@pytest.mark.parametrize("k", [2, 4])
def test_subframe_spectra_are_the_short_frames_inside_what_the_encoder_saw_and_reconstruct_the_input(speech, k):
    config = SpeechTokenizerConfig.tiny(head_subframes=k)
    head = ISTFTHead(config)
    n, hop = 1280 // k, 320 // k
    x = speech[1][None, : 40 * 320]
    spectra = head.analyze(x)
    assert spectra.shape == (1, 40 * k, n // 2 + 1)
    # latent frame 10's last subframe ends with its slot, its first ends (k − 1) · hop earlier
    last, first = 10 * k + k - 1, 10 * k
    torch.testing.assert_close(spectra[:, last], torch.fft.rfft(x[:, 11 * 320 - n : 11 * 320] * torch.hann_window(n)))
    start = 10 * 320 + hop - n
    torch.testing.assert_close(spectra[:, first], torch.fft.rfft(x[:, start : start + n] * torch.hann_window(n)))
    assert start >= 11 * 320 - 1280  # inside the 1280 samples encoder frame 10 saw
    assert head.normaliser == 1.5  # the same 4× overlap of Hann windows
    reconstruction = head.place(head.synthesize(spectra))
    assert reconstruction.shape == x.shape
    # exact from sample 0 up to the last latency_frames slots
    done = (40 - config.latency_frames) * 320
    torch.testing.assert_close(reconstruction[:, :done], x[:, :done], rtol=1e-4, atol=1e-6)
    assert (reconstruction[:, done:] - x[:, done:]).abs().max() > 1e-3


@pytest.mark.parametrize("k", [2, 4])
def test_a_decoder_frame_with_subframes_writes_only_samples_its_encoder_frame_saw(k):
    torch.manual_seed(0)
    head = ISTFTHead(SpeechTokenizerConfig.tiny(head_subframes=k))
    hidden = torch.randn(1, 12, 128)
    poked = hidden.clone()
    poked[:, 6] += 1.0
    with torch.no_grad():
        changed = (head(poked) - head(hidden)).abs()[0] > 1e-7
    assert head.proj.out_features == k * 2 * (1280 // k // 2 + 1)
    written = changed.nonzero()[:, 0]
    # the k windows of frame 6 span [320 · 6 + 320 / k − 1280 / k, 320 · 7), within encoder frame 6's [320 · 3, 320 · 7)
    assert written.min() >= 6 * 320 + 320 // k - 1280 // k >= 3 * 320
    assert written.max() < 7 * 320
    assert written.min() < 6 * 320 + 320 // k - 1280 // k + 10  # both ends reached
    assert written.max() > 7 * 320 - 10


@pytest.mark.parametrize("k", [2, 4])
def test_with_subframes_streaming_equals_full_decoding_and_save_load_is_bit_identical(tmp_path, k):
    torch.manual_seed(0)
    config = SpeechTokenizerConfig.tiny(head_subframes=k, harmonic_candidates=64)
    model = SpeechTokenizerModel(config).eval()
    latency = config.latency_frames
    latents = torch.randn(1, 12, 64, generator=torch.Generator().manual_seed(1))
    streamer = StreamingDecoder(model)
    sizes = [streamer.step(latents[:, t : t + 1]).shape[-1] for t in range(12)]
    assert sizes == [0] * latency + [320] * (12 - latency)  # whole 20 ms slots after latency_frames frames
    assert streamer.flush().shape == (1, latency * 320)
    loaded = _assert_streams_as_decoded_and_reloads_bit_identical(model, tmp_path)
    assert loaded.config.head_subframes == k
    # the decoder is causal with latency_frames of latency: sample n depends on latents ≤ n // 320 + latency
    other = latents.clone()
    other[:, 8:] = torch.randn(1, 4, 64)
    first, second = model.decode(latents), model.decode(other)
    torch.testing.assert_close(first[:, : (8 - latency) * 320], second[:, : (8 - latency) * 320])
    assert not torch.allclose(first[:, (8 - latency) * 320 :], second[:, (8 - latency) * 320 :], atol=1e-4)


def test_the_harmonic_comb_of_subframes_has_one_fundamental_per_subframe_over_their_bins():
    torch.manual_seed(0)
    head = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(harmonic_candidates=64, head_subframes=2)).decoder.head
    comb = head.harmonic
    assert comb.bin_hz == 25.0
    assert comb.basis.shape == (4, 64, 321)
    chosen = (40, 10)  # subframe 0 and 1 of each frame
    with torch.no_grad():
        comb.proj.weight.zero_()
        comb.proj.bias.zero_()
        for j, index in enumerate(chosen):
            outputs = comb.proj.bias[j * (64 + 16) : (j + 1) * (64 + 16)]
            outputs[index] = 100.0
            outputs[64:] = math.log(math.e**2 - 1)  # depth 2
    hidden = torch.randn(1, 3, 128)
    assert comb.logits(hidden).shape == (1, 6, 64)
    assert comb.logits(hidden).argmax(-1).tolist() == [[40, 10, 40, 10, 40, 10]]
    term = comb(hidden)
    hz = torch.arange(321) * 25.0
    for j, index in enumerate(chosen):
        f0 = comb.f0s[index].item()
        torch.testing.assert_close(term[0, 2 + j], 2 * torch.cos(2 * torch.pi * hz / f0), atol=1e-4, rtol=0)
    log_magnitude, phase = head.log_magnitude_and_phase(hidden)
    assert log_magnitude.shape == phase.shape == (1, 6, 321)
    torch.testing.assert_close(log_magnitude - term, head.proj(hidden).reshape(1, 6, 642)[..., :321])


def _anchored_model(seed: int = 0) -> SpeechTokenizerModel:
    torch.manual_seed(seed)
    return SpeechTokenizerModel(SpeechTokenizerConfig.tiny(mel_anchor_bands=64, harmonic_candidates=64)).eval()


def test_the_mel_anchor_is_off_in_the_presets_and_fits_the_latent_and_the_head_layout():
    assert SpeechTokenizerConfig.tiny().mel_anchor_bands == SpeechTokenizerConfig.flash().mel_anchor_bands == 0
    assert SpeechTokenizerModel(SpeechTokenizerConfig.tiny()).decoder.head.anchor is None
    with pytest.raises(ValueError, match="mel_anchor_bands must be in"):
        SpeechTokenizerConfig.tiny(mel_anchor_bands=65)
    with pytest.raises(ValueError, match="needs head_subframes 1"):
        SpeechTokenizerConfig.tiny(mel_anchor_bands=64, head_subframes=2)
    with torch.device("meta"):
        flash = SpeechTokenizerModel(SpeechTokenizerConfig.flash(mel_anchor_bands=64))
    assert flash.decoder.head.anchor.spread.shape == (64, 641)


def test_the_mel_anchor_base_of_a_spectrum_s_normalised_log_mel_is_its_smooth_envelope():
    anchor = _anchored_model().decoder.head.anchor
    hz = torch.arange(641) * 12.5
    # a tilt and two formants, in nats, with random phases
    envelope = -4e-4 * hz + 2.5 * torch.exp(-(((hz - 700) / 250) ** 2)) + 1.5 * torch.exp(-(((hz - 2300) / 400) ** 2))
    spectrum = torch.polar(envelope.exp(), torch.rand(641, generator=torch.Generator().manual_seed(0)) * 6)[None, None]
    target = anchor.target(spectrum)
    assert target.shape == (1, 1, 64)
    assert target.abs().max() < 1.5  # near unit scale
    latents = torch.cat((target, torch.randn(1, 1, 0)), dim=-1)
    base = anchor(latents)[0, 0]
    inside = (hz >= 100) & (hz <= 7500)  # between the first and last band centroids
    assert (base - envelope)[inside].abs().max() < 0.06
    # a louder spectrum: the same envelope 1 nat higher, 1 / 3 higher in the normalised levels
    torch.testing.assert_close(anchor.target(spectrum * math.e), target + 1 / 3)
    # only the first 64 channels count
    torch.testing.assert_close(anchor(torch.cat((target, torch.randn(1, 1, 8)), dim=-1))[0, 0], base)


def test_the_mel_anchor_loss_is_zero_when_the_latent_is_the_normalised_log_mel_of_its_frame(speech):
    head = _anchored_model().decoder.head
    target = head.anchor.target(head.analyze(speech[0][None, : 20 * 320]))
    assert mel_anchor_loss(target, target).item() == 0.0
    assert mel_anchor_loss(target + 0.25, target).item() == pytest.approx(0.25)
    speech_frames = target[0, 4:].mean(-1) > (math.log(1e-5) + 2) / 3 + 0.1  # frames with sound
    assert speech_frames.any()


def test_with_the_mel_anchor_the_head_adds_the_base_to_its_log_magnitudes_and_needs_the_latents():
    head = _anchored_model().decoder.head
    hidden, latents = torch.randn(1, 5, 128), torch.randn(1, 5, 64)
    log_magnitude, _ = head.log_magnitude_and_phase(hidden, latents)
    head.anchor, anchor = None, head.anchor
    plain, _ = head.log_magnitude_and_phase(hidden)
    torch.testing.assert_close(log_magnitude, plain + anchor(latents))
    head.anchor = anchor
    with pytest.raises(ValueError, match="mel anchor"):
        head.log_magnitude_and_phase(hidden)
    with pytest.raises(ValueError, match="mel anchor"):
        head.log_magnitude_and_phase(hidden, latents[:, :4])


def test_with_the_mel_anchor_decoding_is_causal_streams_as_decoded_and_reloads_bit_identical(tmp_path):
    model = _anchored_model()
    loaded = _assert_streams_as_decoded_and_reloads_bit_identical(model, tmp_path)
    assert loaded.config.mel_anchor_bands == 64
    torch.testing.assert_close(loaded.decoder.head.anchor.spread, model.decoder.head.anchor.spread, rtol=0, atol=0)
    latents = torch.randn(1, 12, 64, generator=torch.Generator().manual_seed(1))
    other = latents.clone()
    other[:, 8:, :64] += 1.0  # only the anchored channels of the later frames
    first, second = model.decode(latents), model.decode(other)
    torch.testing.assert_close(first[:, : 5 * 320], second[:, : 5 * 320])  # latency 3 frames
    assert not torch.allclose(first[:, 5 * 320 :], second[:, 5 * 320 :], atol=1e-4)
