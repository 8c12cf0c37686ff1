"""The recogniser: audio placeholders, padding, training on answers, biasing, save → load, errors."""

from __future__ import annotations

import pytest
import torch
from transformers import ByT5Tokenizer, Qwen2Config, Qwen2ForCausalLM

from ming_contextasr import (
    ContextASRAudioConfig,
    ContextASRAudioModel,
    ContextASRRecognizer,
    ContextASRRequest,
    small_recognizer,
)
from ming_contextasr.recognizer import _biasing_ids

WIDTH = 32


def _recognizer(seed: int = 0, *, never_stop: bool = False) -> ContextASRRecognizer:
    torch.manual_seed(seed)
    tokenizer = ByT5Tokenizer()
    audio_config = ContextASRAudioConfig.tiny()
    audio_config.llm_hidden_size = WIDTH
    lm = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=WIDTH, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        )
    )  # fmt: skip
    if never_stop:  # random weights often stop at once or emit (invisible) sentinels: make every answer visible
        lm.generation_config.suppress_tokens = [tokenizer.eos_token_id, *range(259, len(tokenizer))]
    audio_token = tokenizer.convert_tokens_to_ids("<extra_id_0>")
    return ContextASRRecognizer(ContextASRAudioModel(audio_config), lm, tokenizer, audio_token).eval()


def _requests(hotwords=(), lengths=(16000, 5000, 9100)) -> list[ContextASRRequest]:
    generator = torch.Generator().manual_seed(1)
    return [
        ContextASRRequest(audio=0.1 * torch.randn(n, generator=generator), hotwords=hotwords, language="English")
        for n in lengths
    ]


def test_batched_transcription_equals_one_by_one():
    model = _recognizer(never_stop=True)
    requests = _requests(["Zorbak"])
    batched = model.transcribe(requests, max_new_tokens=12, batch_size=3)
    alone = [model.transcribe([r], max_new_tokens=12)[0] for r in requests]
    assert batched == alone
    assert all(t.text for t in batched)


def test_audio_reaches_the_decoder_and_gets_gradients():
    model = _recognizer().train()
    requests = _requests()
    loss = model(requests, ["English\thello"] * 3).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.audio_model.projector_linear.weight.grad.abs().sum() > 0
    other_audio = [ContextASRRequest(audio=r.audio.flip(0), language="English") for r in requests]
    with torch.no_grad():
        assert model(other_audio, ["English\thello"] * 3).loss != loss


def test_padded_batch_loss_is_the_token_weighted_mean_of_row_losses():
    """Right padding and the answer-only labels: each row contributes exactly its own answer + EOS terms."""
    model = _recognizer()
    requests = _requests()[:2]  # different audio lengths, so the shorter row is padded
    answers = ["English\tAsk Zorbak.", "English\tno"]
    tokens = [len(a.encode()) + 1 for a in answers]  # bytes + EOS
    with torch.no_grad():
        alone = [model([r], [a]).loss for r, a in zip(requests, answers, strict=True)]
        batch = model(requests, answers).loss
    torch.testing.assert_close(batch, sum(n * loss for n, loss in zip(tokens, alone, strict=True)) / sum(tokens))


def test_training_on_one_sample_makes_it_transcribe_that_sample():
    model = _recognizer().train()
    requests, answers = _requests(lengths=(3200, 4000)), ["English\tAsk Zorbak.", "English\tQuillon left."]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = model(requests, answers).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    out = model.transcribe(requests, max_new_tokens=30)
    assert [(t.language, t.text) for t in out] == [("English", "Ask Zorbak."), ("English", "Quillon left.")]


def test_biasing_pulls_the_output_towards_the_hotwords():
    model = _recognizer(never_stop=True)
    requests = _requests()
    plain = model.transcribe(requests, max_new_tokens=20)
    biased = model.transcribe(requests, bias_hotwords=[["Zorbak"], [], ["Quillon"]], bonus=100.0, max_new_tokens=20)
    assert "Zorbak" in biased[0].text
    assert "Quillon" in biased[2].text
    assert biased[1] == plain[1]  # an empty list means no biasing
    alone = [
        model.transcribe([r], bias_hotwords=[w], bonus=100.0, max_new_tokens=20)[0]
        for r, w in zip(requests, [["Zorbak"], [], ["Quillon"]], strict=True)
    ]
    assert biased == alone  # each row of a batch has its own processor
    assert "Zorbak" not in plain[0].text


def test_byte_level_biasing_keeps_one_spelling_per_word():
    tokenizer = ByT5Tokenizer()
    plain = tokenizer(["Zorbak", "Quillon"], add_special_tokens=False)["input_ids"]
    assert _biasing_ids(tokenizer, ["Zorbak", "Quillon"]) == plain  # " Zorbak" is the space + "Zorbak"


def test_save_and_load_give_the_same_transcriptions(tmp_path):
    model = _recognizer(never_stop=True)
    model.save_pretrained(tmp_path)
    loaded = ContextASRRecognizer.from_pretrained(tmp_path)
    assert all(p.suffix != ".bin" for p in tmp_path.rglob("*"))
    assert {k: v.tolist() for k, v in loaded.state_dict().items()} == {
        k: v.tolist() for k, v in model.state_dict().items()
    }
    requests = _requests(["Zorbak"])
    assert loaded.transcribe(requests, max_new_tokens=10) == model.transcribe(requests, max_new_tokens=10)


def test_bad_inputs_raise_clear_errors():
    model = _recognizer()
    with pytest.raises(ValueError, match="3 requests but 1 answers"):
        model(_requests(), ["English\thi"])
    with pytest.raises(ValueError, match="bias_hotwords"):
        model.transcribe(_requests(), bias_hotwords=[["Zorbak"]])
    wide = ContextASRAudioConfig.tiny()  # projects to 96, the LM is 32 wide
    with pytest.raises(ValueError, match="32 wide but the projector outputs 96"):
        ContextASRRecognizer(ContextASRAudioModel(wide), model.language_model, model.tokenizer, 259)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ContextASRRecognizer(model.audio_model, model.language_model, model.tokenizer, 10_000)


def test_prompt_text_spelling_the_audio_token_stays_text():
    """A hotword that literally reads like the audio placeholder token must not become an audio slot."""
    model = _recognizer()
    tricky = _requests(["<extra_id_0>"])[:1]
    inputs, _ = model._inputs(tricky, ["English\thi <extra_id_0>"])
    placeholders = int((inputs["input_ids"] == model.audio_token_id).sum())
    assert placeholders == int(model.audio_model([tricky[0].audio]).lengths[0])
    prompt_bytes = b"<extra_id_0>"
    row = inputs["input_ids"][0].tolist()
    assert any(row[i : i + len(prompt_bytes)] == [b + 3 for b in prompt_bytes] for i in range(len(row)))


def test_small_recognizer_is_seeded_and_trainable():
    tokenizer = ByT5Tokenizer()
    first, again, other = (
        small_recognizer(tokenizer, "<extra_id_0>", width=32, num_layers=1, seed=s) for s in (1, 1, 2)
    )
    assert all(torch.equal(p, q) for p, q in zip(first.state_dict().values(), again.state_dict().values(), strict=True))
    assert not torch.equal(first.language_model.lm_head.weight, other.language_model.lm_head.weight)
    assert first.audio_token_id == tokenizer.convert_tokens_to_ids("<extra_id_0>")
    loss = first(_requests()[:1], ["English\thi"]).loss
    loss.backward()
    assert first.audio_model.projector_linear.weight.grad.abs().sum() > 0


def test_lfm2_decoder_batches_like_one_by_one_and_saves(tmp_path):
    """The short-convolution decoder: left-padded batches must not leak padding through the convolution."""
    tokenizer = ByT5Tokenizer()
    model = small_recognizer(tokenizer, "<extra_id_0>", width=WIDTH, num_layers=2, decoder="lfm2").eval()
    assert model.language_model.config.layer_types == ["conv", "full_attention"]
    assert model.language_model.config.intermediate_size == 2 * WIDTH
    model.language_model.generation_config.suppress_tokens = [tokenizer.eos_token_id, *range(259, len(tokenizer))]
    requests = _requests(["Zorbak"])
    batched = model.transcribe(requests, max_new_tokens=8, batch_size=3)
    assert batched == [model.transcribe([r], max_new_tokens=8)[0] for r in requests]
    model.save_pretrained(tmp_path)
    loaded = ContextASRRecognizer.from_pretrained(tmp_path)
    assert type(loaded.language_model) is type(model.language_model)
    assert loaded.transcribe(requests, max_new_tokens=8) == batched
    with pytest.raises(ValueError, match="decoder must be"):
        small_recognizer(tokenizer, "<extra_id_0>", decoder="gpt2")
