"""The hand-written causal ISTFT equals torch.istft where torch.istft is defined, overlap-adds to unity, and
reconstructs a signal from the spectra of the input frames the encoder sees."""

import math

import torch
import torch.nn.functional as F

from ming_speech_tokenizer import ISTFTHead, SpeechTokenizerConfig, overlap_add


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
