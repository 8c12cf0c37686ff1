"""Decoding-time hotword biasing (paper §2.2: hotword lists; applied here at decoding time, for any ``generate()``).

Hotwords, as token-id sequences, form a prefix trie turned into an Aho–Corasick automaton. While decoding, each
row's *current match* is the longest suffix of its generated tokens that is a prefix of some hotword. Scores are
shifted so that the total bonus along any output is::

    bonus × (number of output tokens that lie in a completed hotword or in the current match)

so, step by step:

- a token that extends the current match earns ``+bonus``;
- a token that breaks it withdraws the bonus of the match's tokens that are not part of a completed hotword (what
  still matches as a shorter suffix keeps its bonus);
- a completed hotword keeps its bonus for good, also when it ends inside a longer match that later breaks ("b c"
  inside a broken "a b c d"), and a token shared by overlapping hotwords counts once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

__all__ = ["HotwordBiasingProcessor", "HotwordTrie", "hotword_token_ids"]

_State = tuple[int, int]


class HotwordTrie:
    """Aho–Corasick automaton over hotword token sequences, with the bonus bookkeeping of the module docstring.

    A matching state is an opaque hashable value: start from :attr:`root` and advance with :meth:`step` (or
    :meth:`walk`). It holds the current match and which of its tokens lie in a completed hotword. Transitions are
    computed when first needed and remembered, so building the trie costs time proportional to the hotwords' total
    length, whatever the vocabulary.

    Args:
        hotwords: token-id sequences, e.g. from :func:`hotword_token_ids`.

    Raises:
        ValueError: no hotwords, or a hotword without tokens or with a negative token id (naming the hotword).

    Attributes:
        hotwords: the hotwords, as tuples of token ids.
        max_depth: tokens in the longest hotword.
    """

    root: _State = (0, 0)
    """The state before any token."""

    def __init__(self, hotwords: Sequence[Sequence[int]]) -> None:
        if len(hotwords) == 0:
            raise ValueError("hotwords is empty")
        self.hotwords: tuple[tuple[int, ...], ...] = tuple(tuple(int(t) for t in word) for word in hotwords)
        # Trie nodes: node 0 is the root; a node stands for the prefix spelled from the root.
        self._children: list[dict[int, int]] = [{}]
        self._depth = [0]
        terminal = [False]
        for i, word in enumerate(self.hotwords):
            if not word:
                raise ValueError(f"hotwords[{i}] has no tokens")
            if min(word) < 0:
                raise ValueError(f"hotwords[{i}] = {list(word)} has a negative token id")
            node = 0
            for token in word:
                if token not in self._children[node]:
                    self._children.append({})
                    self._depth.append(self._depth[node] + 1)
                    terminal.append(False)
                    self._children[node][token] = len(self._children) - 1
                node = self._children[node][token]
            terminal[node] = True
        self.max_depth: int = max(self._depth)
        # Breadth-first: failure links, and per node a bit mask of the positions of its prefix (bit i = token i) that
        # lie in a hotword occurring inside that prefix.
        self._fail = [0] * len(self._children)
        self._covered = [0] * len(self._children)
        self._next: list[dict[int, int]] = [{} for _ in self._children]
        longest_suffix_hotword = [0] * len(self._children)
        queue = deque([0])
        while queue:
            node = queue.popleft()
            for token, child in self._children[node].items():
                self._fail[child] = self._next_node(self._fail[node], token) if node else 0
                depth = self._depth[child]
                longest = depth if terminal[child] else longest_suffix_hotword[self._fail[child]]
                longest_suffix_hotword[child] = longest
                self._covered[child] = self._covered[node] | ((1 << longest) - 1) << (depth - longest)
                queue.append(child)
        self._tokens_after: dict[int, frozenset[int]] = {}
        self._steps: dict[tuple[_State, int], tuple[_State, int]] = {}

    def __len__(self) -> int:
        """Number of trie nodes (distinct hotword prefixes, plus the root)."""
        return len(self._children)

    def _next_node(self, node: int, token: int) -> int:
        """Aho–Corasick transition: the longest hotword prefix that ``node``'s prefix + ``token`` ends with."""
        cached = self._next[node].get(token)
        if cached is None:
            child = self._children[node].get(token)
            cached = child if child is not None else (self._next_node(self._fail[node], token) if node else 0)
            self._next[node][token] = cached
        return cached

    def _node_continuations(self, node: int) -> frozenset[int]:
        tokens = self._tokens_after.get(node)
        if tokens is None:
            own = frozenset(self._children[node])
            tokens = own | self._node_continuations(self._fail[node]) if node else own
            self._tokens_after[node] = tokens
        return tokens

    def continuations(self, state: _State) -> tuple[int, ...]:
        """The tokens after which some match remains, sorted; any other token returns to the root."""
        return tuple(sorted(self._node_continuations(state[0])))

    def _advance(self, state: _State, token: int) -> tuple[_State, int]:
        """The state after ``token`` and the bonus units it earns."""
        node, locked = state
        if token not in self._node_continuations(node):  # back to the root; not remembered, any token can come here
            return self.root, -self.held(state)
        key = (state, token)
        result = self._steps.get(key)
        if result is None:
            after = self._next_node(node, token)
            depth = self._depth[node]
            dropped = depth + 1 - self._depth[after]  # leading tokens of the match that no longer belong to it
            dropped_locked = (locked & ((1 << min(dropped, depth)) - 1)).bit_count()  # they keep their bonus
            result = (after, (locked >> dropped) | self._covered[after]), self._depth[after] - depth + dropped_locked
            self._steps[key] = result
        return result

    def step(self, state: _State, token: int) -> _State:
        """The state after ``token``."""
        return self._advance(state, int(token))[0]

    def walk(self, tokens: Sequence[int], state: _State | None = None) -> _State:
        """The state after ``tokens``, from ``state`` (default: the root)."""
        state = self.root if state is None else state
        for token in tokens:
            state = self._advance(state, int(token))[0]
        return state

    def reward(self, state: _State, token: int) -> int:
        """Bonus units earned by ``token`` in ``state`` (the module docstring's rule)."""
        return self._advance(state, int(token))[1]

    def held(self, state: _State) -> int:
        """Bonus units at stake in ``state``: tokens of the current match outside any completed hotword (what a
        token that returns to the root withdraws)."""
        node, locked = state
        return self._depth[node] - locked.bit_count()


def hotword_token_ids(tokenizer: Any, words: Sequence[str]) -> list[list[int]]:
    """Token-id sequences of ``words`` for :class:`HotwordBiasingProcessor`, as they occur in running text.

    BPE tokenizers (byte-level ones such as GPT-2's and Qwen's, and SentencePiece) spell a word differently at the
    start of a text and after a space ("Zorbak" vs " Zorbak"), so each word is tokenised both ways, without special
    tokens; a spelling that comes out identical is kept once.

    Args:
        tokenizer: a transformers tokenizer (called as ``tokenizer(texts, add_special_tokens=False)``).
        words: the hotwords.

    Raises:
        ValueError: ``words`` is a single string, or a word is not a non-empty string (naming it).
    """
    if isinstance(words, str):
        raise ValueError("words must be a list of strings, not one string")
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"words[{i}] must be a non-empty string, got {word!r}")
    variants = [text for word in words for text in (word, " " + word)]
    encoded = tokenizer(variants, add_special_tokens=False)["input_ids"]
    return [list(ids) for ids in dict.fromkeys(tuple(ids) for ids in encoded)]


class HotwordBiasingProcessor(LogitsProcessor):
    """A transformers ``LogitsProcessor`` that adds hotword bonuses (see the module docstring) to the scores.

    Only generated tokens are matched, never the prompt. Each row's state is recomputed from its own last
    ``2 × max_depth − 1`` generated tokens, so greedy search, sampling, beam search (rows reordered between steps) and
    assisted decoding (rows rolled back) all work. A call continues the previous generation when every row, less its
    last token, is a prefix of a row of the previous call (as these strategies extend sequences); otherwise it starts
    a new generation whose prompt is the whole of ``input_ids``. A prompt made of the previous prompt plus one token
    cannot be told apart from a continuation: call :meth:`reset` between ``generate()`` calls to be sure.

    Args:
        hotwords: token-id sequences of the hotwords (see :func:`hotword_token_ids`).
        bonus: score added per matched token (log-probability units).

    Raises:
        ValueError: ``bonus`` is negative, or the hotwords are invalid (see :class:`HotwordTrie`); when called, a
            hotword token id is outside the vocabulary of the scores (naming the hotword).

    Attributes:
        trie: the hotwords' automaton.
        bonus: score added per matched token.
    """

    def __init__(self, hotwords: Sequence[Sequence[int]], bonus: float = 2.0) -> None:
        if bonus < 0:
            raise ValueError(f"bonus must be >= 0, got {bonus}")
        self.trie = HotwordTrie(hotwords)
        self.bonus = float(bonus)
        # A state depends only on the last 2 × max_depth − 1 tokens: the current match is at most max_depth long, and
        # a completed hotword overlapping it starts at most max_depth − 1 tokens before it.
        self._window = 2 * self.trie.max_depth - 1
        self._largest_token = max(max(word) for word in self.trie.hotwords)
        self._previous: torch.Tensor | None = None
        self._prompt_length = 0
        # Per state: (bonus units of a token that returns to the root, continuation tokens, their extra units).
        self._entries: dict[_State, tuple[int, list[int], list[int]]] = {}

    def reset(self) -> None:
        """Forget the previous call: the next call starts a new generation."""
        self._previous = None

    def _continues(self, input_ids: torch.Tensor) -> bool:
        previous, length = self._previous, input_ids.shape[1]
        if previous is None or previous.shape[0] != input_ids.shape[0] or previous.device != input_ids.device:
            return False
        if not self._prompt_length < length <= previous.shape[1] + 1:
            return False
        head = input_ids[:, None, : length - 1]
        return bool((head == previous[None, :, : length - 1]).all(-1).any(-1).all())

    def _row_entries(self, state: _State) -> tuple[int, list[int], list[int]]:
        entries = self._entries.get(state)
        if entries is None:
            leave = -self.trie.held(state)
            tokens = list(self.trie.continuations(state))
            entries = (leave, tokens, [self.trie.reward(state, t) - leave for t in tokens])
            self._entries[state] = entries
        return entries

    def _check_vocabulary(self, vocab_size: int) -> None:
        if self._largest_token < vocab_size:
            return
        for i, word in enumerate(self.trie.hotwords):
            if max(word) >= vocab_size:
                raise ValueError(
                    f"hotwords[{i}] = {list(word)} has token id {max(word)}, outside the vocabulary of "
                    f"{vocab_size} scores"
                )

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Add the bonuses to ``scores`` (batch, vocab) given ``input_ids`` (batch, length)."""
        self._check_vocabulary(scores.shape[1])
        length = input_ids.shape[1]
        if not self._continues(input_ids):
            self._prompt_length = length
        self._previous = input_ids.clone()
        start = max(self._prompt_length, length - self._window)
        rows, tokens, extras, leaves = [], [], [], []
        for row, window in enumerate(input_ids[:, start:].tolist()):
            leave, row_tokens, row_extras = self._row_entries(self.trie.walk(window))
            leaves.append(leave)
            rows.extend([row] * len(row_tokens))
            tokens.extend(row_tokens)
            extras.extend(row_extras)
        device, dtype = scores.device, scores.dtype
        leave_bias = torch.tensor(leaves, dtype=torch.float32).mul_(self.bonus).to(device=device, dtype=dtype)
        biased = scores + leave_bias[:, None]
        index = torch.tensor([rows, tokens], dtype=torch.long).to(device)
        extra = torch.tensor(extras, dtype=torch.float32).mul_(self.bonus).to(device=device, dtype=dtype)
        return biased.index_put_((index[0], index[1]), extra, accumulate=True)
