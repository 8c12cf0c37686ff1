"""Hotword biasing: trie continuations only, withdrawal after a mismatch, and a real transformers generate()."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList, Qwen2Config, Qwen2ForCausalLM

from ming_contextasr import HotwordBiasingProcessor, HotwordTrie

HOTWORDS = [[5, 6, 7], [6, 7], [9, 10], [9, 10, 11, 12]]
VOCAB = 16


def _bias(processor, prompt, generated):
    """The bias after ``generated``, calling the processor step by step as generate() does."""
    for step in range(len(generated) + 1):
        bias = processor(torch.tensor([prompt + generated[:step]]), torch.zeros(1, VOCAB))
    return bias[0]


def test_at_the_root_only_first_tokens_of_hotwords_are_boosted():
    processor = HotwordBiasingProcessor(HOTWORDS, bonus=1.5)
    bias = processor(torch.tensor([[1, 2, 3]]), torch.zeros(1, VOCAB))[0]
    expected = torch.zeros(VOCAB)
    expected[[5, 6, 9]] = 1.5
    assert torch.equal(bias, expected)


def test_partial_match_boosts_only_its_continuations_and_withdraws_on_mismatch():
    processor = HotwordBiasingProcessor(HOTWORDS, bonus=1.0)
    bias = _bias(processor, [1, 2], [5, 6])  # "5 6" of "5 6 7": 2 tokens held
    assert bias[7] == 1.0  # the only continuation
    assert bias[9] == -1.0  # breaking off (−2) but starting "9 10" (+1)
    assert bias[6] == -1.0  # falls back to the suffix "6", still a prefix of "6 7"
    assert bias[0] == -2.0
    assert bias[15] == -2.0
    # After the mismatch the state is back at the root: only first tokens of hotwords are boosted again.
    after = _bias(HotwordBiasingProcessor(HOTWORDS), [1], [5, 6, 0])
    assert set(torch.nonzero(after).flatten().tolist()) == {5, 6, 9}


def test_completed_hotword_keeps_its_bonus_and_longer_hotwords_continue():
    processor = HotwordBiasingProcessor(HOTWORDS, bonus=1.0)
    bias = _bias(processor, [1], [9, 10])  # "9 10" complete, also a prefix of "9 10 11 12"
    assert bias[11] == 1.0
    assert bias[0] == 0.0
    bias = _bias(HotwordBiasingProcessor(HOTWORDS, bonus=1.0), [1], [9, 10, 11])
    assert bias[12] == 1.0
    assert bias[0] == -1.0


def test_total_bonus_along_a_path_counts_completed_hotword_tokens():
    trie = HotwordTrie(HOTWORDS)
    tokens = [5, 6, 0, 9, 10, 11, 12, 3, 6, 7, 9]
    state, total = 0, 0
    for token in tokens:
        total += trie.reward(state, token)
        state = trie.step(state, token)
    # Completed: "9 10 11 12" (4) and "6 7" (2); "9" at the end is still held (1); "5 6" was withdrawn.
    assert total == 4 + 2 + 1


def test_prompt_tokens_are_never_matched():
    # The prompt ends with "5 6" (a partial hotword), yet the first generated step sees the root state.
    bias = HotwordBiasingProcessor(HOTWORDS, bonus=2.0)(torch.tensor([[5, 6]]), torch.zeros(1, VOCAB))[0]
    assert set(torch.nonzero(bias).flatten().tolist()) == {5, 6, 9}
    assert bias[7] == 0.0


def test_bad_hotwords():
    with pytest.raises(ValueError, match="empty"):
        HotwordBiasingProcessor([])
    with pytest.raises(ValueError, match=r"hotwords\[1\] has no tokens"):
        HotwordBiasingProcessor([[1], []])


@pytest.fixture(scope="module")
def tiny_lm():
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    return Qwen2ForCausalLM(config).eval()


def test_inside_generate_scores_are_shifted_by_the_trie_bonus(tiny_lm):
    hotwords = [[40, 41, 42], [50, 51]]
    processor = HotwordBiasingProcessor(hotwords, bonus=3.0)
    prompt = torch.tensor([[2, 3, 4, 5], [7, 8, 9, 10]])
    out = tiny_lm.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=8,
        do_sample=False,
        logits_processor=LogitsProcessorList([processor]),
        output_logits=True,
        output_scores=True,
        return_dict_in_generate=True,
    )
    trie = HotwordTrie(hotwords)
    generated = out.sequences[:, prompt.shape[1] :]
    for step, (raw, processed) in enumerate(zip(out.logits, out.scores, strict=True)):
        for row in range(2):
            state = trie.walk(generated[row, :step].tolist())
            expected = torch.tensor([3.0 * trie.reward(state, t) for t in range(64)])
            torch.testing.assert_close(processed[row] - raw[row], expected)


def test_a_large_bonus_forces_the_hotword(tiny_lm):
    processor = HotwordBiasingProcessor([[40, 41, 42]], bonus=1e4)
    prompt = torch.tensor([[2, 3, 4]])
    out = tiny_lm.generate(prompt, max_new_tokens=7, do_sample=False, logits_processor=[processor])
    assert out[0, 3:].tolist() == [40, 41, 42, 40, 41, 42, 40]
    baseline = tiny_lm.generate(prompt, max_new_tokens=7, do_sample=False)
    assert baseline[0, 3:].tolist() != out[0, 3:].tolist()
