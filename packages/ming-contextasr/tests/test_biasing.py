"""Hotword biasing: the bonus rule against brute force, trie continuations only, withdrawal after a mismatch, and
transformers generate() with greedy search, beam search, assisted decoding and a processor reused across calls."""

from __future__ import annotations

import itertools
import random
import time

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LogitsProcessor, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from ming_contextasr import HotwordBiasingProcessor, HotwordTrie, hotword_token_ids

HOTWORDS = [[5, 6, 7], [6, 7], [9, 10], [9, 10, 11, 12]]
VOCAB = 16


def _bias(processor, prompt, generated):
    """The bias after ``generated``, calling the processor step by step as generate() does."""
    for step in range(len(generated) + 1):
        bias = processor(torch.tensor([prompt + generated[:step]]), torch.zeros(1, VOCAB))
    return bias[0]


def _total(trie, tokens):
    state, total = trie.root, 0
    for token in tokens:
        total += trie.reward(state, token)
        state = trie.step(state, token)
    return total


def _rule(hotwords, tokens):
    """The documented total, by brute force: tokens inside a completed hotword or inside the current match (the
    longest suffix that is a prefix of a hotword)."""
    counted = set()
    for word in hotwords:
        for start in range(len(tokens) - len(word) + 1):
            if tokens[start : start + len(word)] == word:
                counted.update(range(start, start + len(word)))
    prefixes = {tuple(word[:n]) for word in hotwords for n in range(1, len(word) + 1)}
    match = next((n for n in range(len(tokens), 0, -1) if tuple(tokens[-n:]) in prefixes), 0)
    counted.update(range(len(tokens) - match, len(tokens)))
    return len(counted)


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
    # Completed: "9 10 11 12" (4, "9 10" inside it) and "6 7" (2); "9" at the end is still held (1); "5 6" withdrawn.
    assert _total(trie, [5, 6, 0, 9, 10, 11, 12, 3, 6, 7, 9]) == 4 + 2 + 1
    # Both outputs end with the completed hotword "2 3"; "1 2" was a partial match of "1 2 9" that broke.
    trie = HotwordTrie([[1, 2, 9], [2], [2, 3]])
    assert _total(trie, [1, 2, 3]) == _total(trie, [0, 2, 3]) == 2
    # "2 3" completed inside the longer match "1 2 3" keeps its bonus when "1 2 3 4" breaks.
    trie = HotwordTrie([[1, 2, 3, 4], [2, 3]])
    assert _total(trie, [1, 2, 3, 0]) == 2
    assert trie.held(trie.walk([1, 2, 3])) == 1  # only "1" is at stake


def test_total_bonus_follows_the_rule_on_random_hotwords():
    rng = random.Random(0)
    for _ in range(300):
        hotwords = [[rng.randrange(4) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(1, 4))]
        tokens = [rng.randrange(5) for _ in range(12)]
        trie = HotwordTrie(hotwords)
        for n in range(len(tokens) + 1):
            assert _total(trie, tokens[:n]) == _rule(hotwords, tokens[:n]), (hotwords, tokens[:n])


def test_processor_state_from_its_window_equals_the_full_history():
    rng = random.Random(1)
    for _ in range(30):
        hotwords = [[rng.randrange(4) for _ in range(rng.randint(1, 4))] for _ in range(3)]
        processor = HotwordBiasingProcessor(hotwords, bonus=1.0)
        prompt, generated = [3, 2, 1], [rng.randrange(5) for _ in range(20)]
        for step in range(len(generated) + 1):
            bias = processor(torch.tensor([prompt + generated[:step]]), torch.zeros(1, 6))[0]
            state = processor.trie.walk(generated[:step])
            assert bias.tolist() == [float(processor.trie.reward(state, t)) for t in range(6)]


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
    with pytest.raises(ValueError, match=r"hotwords\[0\] = \[3, -1\] has a negative token id"):
        HotwordBiasingProcessor([[3, -1]])
    with pytest.raises(ValueError, match="bonus"):
        HotwordBiasingProcessor([[1]], bonus=-1.0)
    processor = HotwordBiasingProcessor([[1, 2], [3, 40]])
    with pytest.raises(ValueError, match=r"hotwords\[1\] = \[3, 40\] has token id 40, outside the vocabulary of 16"):
        processor(torch.tensor([[1]]), torch.zeros(1, VOCAB))


def test_many_hotwords_build_quickly():
    rng = random.Random(2)
    hotwords = [[rng.randrange(150_000) for _ in range(rng.randint(1, 6))] for _ in range(2000)]
    start = time.perf_counter()
    processor = HotwordBiasingProcessor(hotwords)
    bias = processor(torch.tensor([[1, 2]] * 4), torch.zeros(4, 150_000))
    assert time.perf_counter() - start < 2.0  # the old dense states × alphabet table took ~9 s for 1000 hotwords
    assert torch.count_nonzero(bias[0]) == len({word[0] for word in hotwords})


def test_hotword_token_ids_cover_both_bpe_spellings():
    corpus = ["Ask Zorbak about Quillon.", "Zorbak met Quillon and Zorbak left."] * 20
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    ids = hotword_token_ids(tokenizer, ["Zorbak", "Quillon"])
    start = tokenizer("Zorbak", add_special_tokens=False).input_ids
    inner = tokenizer(" Zorbak", add_special_tokens=False).input_ids
    assert start != inner  # byte-level BPE spells the word differently after a space
    assert ids == [start, inner, *hotword_token_ids(tokenizer, ["Quillon"])]
    text = tokenizer("Zorbak met Zorbak", add_special_tokens=False).input_ids
    assert text[: len(start)] == start  # both spellings occur in running text
    assert text[-len(inner) :] == inner
    with pytest.raises(ValueError, match=r"words\[1\]"):
        hotword_token_ids(tokenizer, ["Zorbak", " "])
    with pytest.raises(ValueError, match="not one string"):
        hotword_token_ids(tokenizer, "Zorbak")


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


class _Recorder(LogitsProcessor):
    """Runs a processor and keeps each call's input ids and the bias it added."""

    def __init__(self, inner: HotwordBiasingProcessor) -> None:
        self.inner = inner
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, input_ids, scores):
        out = self.inner(input_ids, scores)
        self.calls.append((input_ids.clone(), out - scores))
        return out


def _assert_biases_follow_the_trie(calls, prompt_length, trie, bonus):
    for input_ids, bias in calls:
        for row, ids in enumerate(input_ids.tolist()):
            state = trie.walk(ids[prompt_length:])
            expected = torch.tensor([bonus * trie.reward(state, t) for t in range(bias.shape[1])])
            torch.testing.assert_close(bias[row], expected)


def test_inside_generate_scores_are_shifted_by_the_trie_bonus(tiny_lm):
    hotwords = [[40, 41, 42], [50, 51]]
    processor = HotwordBiasingProcessor(hotwords, bonus=3.0)
    prompt = torch.tensor([[2, 3, 4, 5], [7, 8, 9, 10]])
    out = tiny_lm.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=8,
        do_sample=False,
        logits_processor=[processor],
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


def test_beam_search_biases_each_beam_by_its_own_tokens(tiny_lm):
    hotwords = [[40, 41, 42], [20, 21]]
    recorder = _Recorder(HotwordBiasingProcessor(hotwords, bonus=2.0))
    prompt = torch.tensor([[2, 3, 4, 5], [7, 8, 9, 10]])
    tiny_lm.generate(prompt, max_new_tokens=6, num_beams=3, do_sample=False, logits_processor=[recorder])
    assert all(ids.shape[0] == 6 for ids, _ in recorder.calls)  # 2 prompts × 3 beams
    _assert_biases_follow_the_trie(recorder.calls, 4, recorder.inner.trie, 2.0)
    # Beams of one prompt differ, so their states (and biases) are per row.
    assert any(len({tuple(r) for r in ids[:3, 4:].tolist()}) > 1 for ids, _ in recorder.calls)
    # With a huge bonus the best beam is one whose every token earns it.
    forced = tiny_lm.generate(
        prompt,
        max_new_tokens=3,
        num_beams=3,
        do_sample=False,
        logits_processor=[HotwordBiasingProcessor(hotwords, 1e4)],
    )
    assert all(_rule(hotwords, row[4:]) == 3 for row in forced.tolist())


def test_assisted_decoding_keeps_the_prompt_length(tiny_lm):
    torch.manual_seed(1)
    assistant = Qwen2ForCausalLM(tiny_lm.config).eval()  # other weights: some of its candidates are rejected
    recorder = _Recorder(HotwordBiasingProcessor([[40, 41, 42], [20, 21]], bonus=2.0))
    prompt = torch.tensor([[2, 3, 4, 5]])
    tiny_lm.generate(prompt, max_new_tokens=8, do_sample=False, assistant_model=assistant, logits_processor=[recorder])
    ids = [ids[0].tolist() for ids, _ in recorder.calls]
    assert any(b[: len(a)] != a[: len(b)] for a, b in itertools.pairwise(ids))  # a rejected candidate
    _assert_biases_follow_the_trie(recorder.calls, 4, recorder.inner.trie, 2.0)


def test_processor_reused_across_generate_calls(tiny_lm):
    hotwords = [[40, 41, 42], [20, 21]]
    recorder = _Recorder(HotwordBiasingProcessor(hotwords, bonus=2.0))
    trie = recorder.inner.trie
    first = torch.tensor([[2, 3, 4, 5]])
    out = tiny_lm.generate(first, max_new_tokens=6, do_sample=False, logits_processor=[recorder])
    _assert_biases_follow_the_trie(recorder.calls, 4, trie, 2.0)
    # A new prompt one token longer than the last call's ids (a length rule would take it for a continuation),
    # ending with a partial hotword that must not be matched.
    second = torch.tensor([[7, 8, 9, 10, 11, 12, 13, 14, 40, 41]])
    assert second.shape[1] == recorder.calls[-1][0].shape[1] + 1 == out.shape[1]
    for prompt, reset in ((second, False), (second, False), (torch.cat([second, torch.tensor([[40]])], 1), True)):
        if reset:  # the previous prompt plus one token looks like a continuation: reset() says it is not
            recorder.inner.reset()
        recorder.calls.clear()
        tiny_lm.generate(prompt, max_new_tokens=4, do_sample=False, logits_processor=[recorder])
        _assert_biases_follow_the_trie(recorder.calls, prompt.shape[1], trie, 2.0)
