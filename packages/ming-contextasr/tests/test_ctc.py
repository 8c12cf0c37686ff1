"""The auxiliary CTC head over the audio embeddings: its loss, best-path decoding, errors and the recogniser's
``audio`` output it reads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import ByT5Tokenizer

from ming_contextasr import AudioCTCHead, AudioEncoderOutput, ContextASRRequest, small_recognizer


def _audio(lengths=(7, 4), width=8, seed=0) -> AudioEncoderOutput:
    generator = torch.Generator().manual_seed(seed)
    embeddings = F.normalize(torch.randn(len(lengths), max(lengths), width, generator=generator), dim=-1)
    for row, n in enumerate(lengths):
        embeddings[row, n:] = 0
    return AudioEncoderOutput(embeddings=embeddings, lengths=torch.tensor(lengths))


def test_loss_is_the_per_clip_ctc_of_scaled_logits():
    torch.manual_seed(0)
    head = AudioCTCHead(8, 5, blank=0, scale=30.0)
    audio, targets = _audio(), [[1, 2, 2], [3]]
    expected = []
    for clip, target in zip(audio.unpadded(), targets, strict=True):
        log_probs = head.linear(30.0 * clip).log_softmax(-1)[:, None]
        loss = F.ctc_loss(log_probs, torch.tensor([target]), [len(clip)], [len(target)], reduction="sum")
        expected.append(loss / len(target))
    torch.testing.assert_close(head.loss(audio, targets), torch.stack(expected).mean())


def test_training_the_head_makes_best_path_decoding_give_the_targets():
    torch.manual_seed(0)
    head = AudioCTCHead(8, 5, blank=4)
    audio, targets = _audio(), [[1, 2, 2], [3, 0]]
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    assert head.greedy(audio) != targets
    for _ in range(200):
        loss = head.loss(audio, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert head.greedy(audio) == targets


def test_bad_targets_raise():
    head = AudioCTCHead(8, 5)
    with pytest.raises(ValueError, match="2 clips but 1 targets"):
        head.loss(_audio(), [[1]])
    with pytest.raises(ValueError, match="other than blank 0"):
        head.loss(_audio(), [[1, 0], [2]])
    with pytest.raises(ValueError, match="other than blank"):
        head.loss(_audio(), [[5], [2]])
    with pytest.raises(ValueError, match="outside the 5 labels"):
        AudioCTCHead(8, 5, blank=5)


def test_the_recogniser_output_carries_the_audio_the_decoder_read():
    model = small_recognizer(ByT5Tokenizer(), "<extra_id_0>", width=32, num_layers=1)
    audio = [0.1 * torch.randn(n, generator=torch.Generator().manual_seed(n)) for n in (4000, 6400)]
    output = model([ContextASRRequest(audio=a) for a in audio], ["English\thi", "English\tyo"])
    alone = model.audio_model(audio)
    torch.testing.assert_close(output.audio.embeddings, alone.embeddings)
    assert output.audio.lengths.tolist() == alone.lengths.tolist()
    head = AudioCTCHead(32, len(model.tokenizer), blank=model.tokenizer.pad_token_id)
    (output.loss + head.loss(output.audio, [[104, 105], [121, 111]])).backward()
    assert model.audio_model.projector_linear.weight.grad.abs().sum() > 0
