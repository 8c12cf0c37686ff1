"""Decoding-time hotword biasing (paper §2.2: hotword lists; applied here at decoding time, for any ``generate()``).

Hotwords, as token-id sequences, form a prefix trie turned into an Aho–Corasick automaton (failure links, completed
into a transition table over the hotwords' tokens). While decoding, each row's state is the longest suffix of its
generated tokens that is a trie prefix. Scores are shifted so that the total bonus along any output is
``bonus × (tokens of completed hotwords)`` plus ``bonus × (tokens of the partial match in progress)``:

- a token that continues the partial match earns ``+bonus``;
- a token that breaks it withdraws the bonus the partial match held (minus whatever suffix of it still matches);
- a completed hotword keeps its bonus: leaving it costs nothing.

A hotword that ends inside a longer partial match of another hotword ("b c" inside "a b c d") earns its bonus only
through that longer match.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

__all__ = ["HotwordBiasingProcessor", "HotwordTrie"]


class HotwordTrie:
    """Aho–Corasick automaton over hotword token sequences.

    State 0 is the root. ``depth[s]`` is the length of the prefix a state stands for; ``banked[s]`` the length of
    the longest complete hotword among its prefixes (its own path only).

    Args:
        hotwords: token-id sequences, e.g. ``tokenizer(words, add_special_tokens=False).input_ids``.
    """

    def __init__(self, hotwords: Sequence[Sequence[int]]) -> None:
        if not hotwords:
            raise ValueError("hotwords is empty")
        children: list[dict[int, int]] = [{}]
        self.depth: list[int] = [0]
        self.parent: list[int] = [0]
        terminal = [False]
        for i, word in enumerate(hotwords):
            if len(word) == 0:
                raise ValueError(f"hotwords[{i}] has no tokens")
            state = 0
            for token in word:
                token = int(token)
                if token not in children[state]:
                    children.append({})
                    self.depth.append(self.depth[state] + 1)
                    self.parent.append(state)
                    terminal.append(False)
                    children[state][token] = len(children) - 1
                state = children[state][token]
            terminal[state] = True
        self.terminal: list[bool] = terminal
        self.alphabet: list[int] = sorted({int(t) for word in hotwords for t in word})
        self.max_depth: int = max(self.depth)
        self.children = children
        self.banked: list[int] = [0] * len(children)
        # Breadth-first: failure links, then the full transition table (goto with failures folded in).
        self.fail: list[int] = [0] * len(children)
        self.next: list[dict[int, int]] = [{} for _ in children]
        queue = deque([0])
        while queue:
            state = queue.popleft()
            self.banked[state] = self.depth[state] if terminal[state] else self.banked[self.parent[state]]
            for token in self.alphabet:
                child = children[state].get(token)
                if child is not None:
                    self.fail[child] = 0 if state == 0 else self.next[self.fail[state]][token]
                    self.next[state][token] = child
                    queue.append(child)
                else:
                    self.next[state][token] = 0 if state == 0 else self.next[self.fail[state]][token]

    def __len__(self) -> int:
        return len(self.depth)

    def step(self, state: int, token: int) -> int:
        """The state after ``token``."""
        return self.next[state].get(int(token), 0)

    def walk(self, tokens: Sequence[int]) -> int:
        """The state after ``tokens``, from the root."""
        state = 0
        for token in tokens:
            state = self.step(state, token)
        return state

    def held(self, state: int) -> int:
        """Tokens of the partial match in progress (not yet part of a completed hotword)."""
        return self.depth[state] - self.banked[state]

    def reward(self, state: int, token: int) -> int:
        """Bonus units earned by ``token`` in ``state`` (the module docstring's rule)."""
        after = self.step(state, token)
        newly_banked = self.depth[after] - self.banked[self.parent[after]] if self.terminal[after] else 0
        return self.held(after) - self.held(state) + newly_banked


class HotwordBiasingProcessor(LogitsProcessor):
    """A transformers ``LogitsProcessor`` that adds hotword bonuses (see the module docstring) to the scores.

    Only generated tokens are matched, never the prompt: the length of ``input_ids`` at the first call of a
    generation is taken as the prompt length (a call whose ids are not one longer than the previous call's starts a
    new generation). Works with greedy search, sampling and beam search, since each row's state is recomputed from
    its own last tokens.

    Args:
        hotwords: token-id sequences of the hotwords.
        bonus: score added per matched token (log-probability units).
    """

    def __init__(self, hotwords: Sequence[Sequence[int]], bonus: float = 2.0) -> None:
        if bonus < 0:
            raise ValueError(f"bonus must be >= 0, got {bonus}")
        self.trie = HotwordTrie(hotwords)
        self.bonus = float(bonus)
        self._prompt_length: int | None = None
        self._last_length: int | None = None
        # Per state: the bonus of every alphabet token; any other token returns to the root.
        alphabet = torch.tensor(self.trie.alphabet, dtype=torch.long)
        self._alphabet = alphabet
        self._rewards = torch.tensor(
            [[self.trie.reward(s, t) for t in self.trie.alphabet] for s in range(len(self.trie))], dtype=torch.float
        )
        self._leave = torch.tensor([-self.trie.held(s) for s in range(len(self.trie))], dtype=torch.float)

    def states(self, generated: torch.LongTensor) -> list[int]:
        """Automaton state of each row of ``generated`` (the tokens produced so far)."""
        window = generated[:, -self.trie.max_depth :].tolist() if generated.shape[1] else [[]] * len(generated)
        return [self.trie.walk(row) for row in window]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Add the bonuses to ``scores`` (batch, vocab) given ``input_ids`` (batch, length)."""
        length = input_ids.shape[1]
        if self._last_length is None or length != self._last_length + 1:
            self._prompt_length = length
        self._last_length = length
        states = torch.tensor(self.states(input_ids[:, self._prompt_length :]), dtype=torch.long)
        bias = self._leave[states].unsqueeze(1).expand(-1, scores.shape[1]).clone()
        in_vocab = self._alphabet < scores.shape[1]
        bias[:, self._alphabet[in_vocab]] = self._rewards[states][:, in_vocab]
        return scores + (self.bonus * bias).to(device=scores.device, dtype=scores.dtype)
