"""The hand-written causal ISTFT equals torch.istft where torch.istft is defined, and overlap-adds to unity."""

import torch

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
