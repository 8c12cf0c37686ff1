"""ContextASR-Bench metrics: WER (a CER for Chinese), NE-WER and NE-FNR (paper §3.2, Table 6).

Definitions follow the ContextASR-Bench scorer (``prepare_asr_result_for_metrics.py`` + ``calculate_metrics.py``):

- both texts go through :func:`normalize_text`; WER = token edit distance / reference tokens;
- the entity list is normalised the same way; an entity is scored when its normalised form occurs in the
  normalised reference (as a substring, like the scorer); reference occurrences are exact token-sequence matches
  (overlapping entities all count);
- NE-FNR = 1 − exact hypothesis matches (capped per entity at its reference count) / reference occurrences;
- NE-WER = edit distance between the joined reference occurrences and the joined fuzzy hypothesis matches (an
  n-token entity matches any window within ``ceil(n/2) − 1`` token edits) / reference entity tokens;
- a corpus figure divides summed numerators by summed denominators (not a mean of per-utterance rates).

Where the scorer crashes or drops data, values here are defined instead: a rate with a zero denominator is its
numerator (so 0.0 when there is nothing to score and nothing wrong; an empty reference with a non-empty hypothesis
gives the number of inserted tokens, as NeMo-Skills' port does); an utterance with no reference entity occurrences
(no entities, or all found only inside longer words) adds nothing to the NE sums; an entity absent from the
reference (the scorer skips the whole utterance) is left out of the NE figures and listed in
:attr:`UtteranceScore.ignored_entities`; a repeated entity in the list counts once; text containing "İ", on which
the scorer's contraction step crashes, is lower-cased before it (see :func:`normalize_text`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from .normalize import normalize_text

__all__ = ["CorpusScore", "UtteranceScore", "match_entities", "match_entities_fuzzy", "score_corpus", "score_utterance"]


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float(numerator)


def match_entities(
    tokens: Sequence[str], entities: Sequence[str], limits: Mapping[str, int] | None = None
) -> list[str]:
    """Exact occurrences of normalised ``entities`` in ``tokens``, in order of position (then length).

    Every start position is tried against every entity, so overlapping entities ("new york", "york") all count.
    With ``limits``, an entity is counted at most ``limits[entity]`` times (the scorer's cap for hypotheses).
    """
    tokens = list(tokens)
    counts: Counter[str] = Counter()
    found: list[tuple[int, int, str]] = []
    for start in range(len(tokens)):
        for entity in entities:
            entity_tokens = entity.split()
            if tokens[start : start + len(entity_tokens)] != entity_tokens:
                continue
            if limits is not None and counts[entity] >= limits.get(entity, 0):
                continue
            counts[entity] += 1
            found.append((start, len(entity_tokens), entity))
    found.sort(key=lambda item: (item[0], item[1]))
    return [entity for _, _, entity in found]


def match_entities_fuzzy(tokens: Sequence[str], entities: Sequence[str]) -> list[str]:
    """Fuzzy occurrences of normalised ``entities`` in ``tokens``, as the scorer finds them for NE-WER.

    For an n-token entity, windows of length n, then n−1 down to ``n − d``, then n+1 up to ``n + d`` (with
    ``d = ceil(n/2) − 1``) are tried at each start; the first within ``d`` token edits is a match and the search
    resumes after it. A window containing the entity's text reports the entity itself (and the search resumes right
    after it), otherwise the window's own tokens are reported. Results are ordered by start, then length, with
    repeats at the same start removed. Entities of one or two tokens therefore need an exact match.
    """
    tokens = list(tokens)
    found: list[tuple[int, str]] = []
    for entity in entities:
        entity_tokens = entity.split()
        n = len(entity_tokens)
        if n == 0:
            continue
        max_edits = math.ceil(n / 2) - 1
        lengths = [n, *range(n - 1, max(1, n - max_edits) - 1, -1), *range(n + 1, n + max_edits + 1)]
        resume = 0
        for start in range(len(tokens)):
            if start < resume:
                continue
            for length in lengths:
                end = start + length
                if end > len(tokens):
                    break  # the scorer stops trying shorter windows here too
                window = tokens[start:end]
                if Levenshtein.distance(window, entity_tokens) > max_edits:
                    continue
                window_text = " ".join(window)
                position = window_text.find(entity)
                if position >= 0:
                    matched = entity
                    resume = end - len(window_text[position + len(entity) :].split())
                else:
                    matched = window_text
                    resume = end
                found.append((start, matched))
                break
    found.sort(key=lambda item: (item[0], len(item[1].split())))
    return [entity for _, entity in dict.fromkeys(found)]


@dataclass(frozen=True)
class UtteranceScore:
    """Counts for one utterance (sum them over a corpus with :func:`score_corpus`).

    Attributes:
        reference: normalised reference text.
        hypothesis: normalised hypothesis text.
        errors: token edit distance between them.
        reference_tokens: number of reference tokens.
        reference_entities: reference entity occurrences (normalised), in order.
        hypothesis_entities: exact hypothesis occurrences, capped per entity at its reference count.
        fuzzy_entities: fuzzy hypothesis matches used for NE-WER.
        entity_errors: edit distance between the joined reference occurrences and the joined fuzzy matches.
        entity_tokens: number of tokens in the joined reference occurrences.
        ignored_entities: listed entities whose normalised form is empty or absent from the reference.
    """

    reference: str
    hypothesis: str
    errors: int
    reference_tokens: int
    reference_entities: tuple[str, ...]
    hypothesis_entities: tuple[str, ...]
    fuzzy_entities: tuple[str, ...]
    entity_errors: int
    entity_tokens: int
    ignored_entities: tuple[str, ...]

    @property
    def wer(self) -> float:
        """Token error rate (a CER for Chinese)."""
        return _rate(self.errors, self.reference_tokens)

    @property
    def ne_wer(self) -> float:
        """Error rate over the entity tokens."""
        return _rate(self.entity_errors, self.entity_tokens)

    @property
    def ne_fnr(self) -> float:
        """Fraction of reference entity occurrences missing from the hypothesis."""
        return _rate(len(self.reference_entities) - len(self.hypothesis_entities), len(self.reference_entities))


def score_utterance(reference: str, hypothesis: str, entities: Sequence[str] = ()) -> UtteranceScore:
    """Score one hypothesis against its reference and the reference's entity list (raw text, any language)."""
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    ref_tokens, hyp_tokens = ref.split(), hyp.split()
    kept: list[str] = []
    ignored: list[str] = []
    for entity in dict.fromkeys(entities):
        normalised = normalize_text(entity)
        if normalised and normalised in ref:
            if normalised not in kept:
                kept.append(normalised)
        else:
            ignored.append(entity)
    ref_entities = match_entities(ref_tokens, kept)
    if ref_entities:
        hyp_entities = match_entities(hyp_tokens, kept, Counter(ref_entities))
        fuzzy = match_entities_fuzzy(hyp_tokens, kept)
    else:  # the scorer divides by zero here; nothing to score
        hyp_entities, fuzzy = [], []
    ref_entity_tokens = " ".join(ref_entities).split()
    return UtteranceScore(
        reference=ref,
        hypothesis=hyp,
        errors=Levenshtein.distance(ref_tokens, hyp_tokens),
        reference_tokens=len(ref_tokens),
        reference_entities=tuple(ref_entities),
        hypothesis_entities=tuple(hyp_entities),
        fuzzy_entities=tuple(fuzzy),
        entity_errors=Levenshtein.distance(ref_entity_tokens, " ".join(fuzzy).split()),
        entity_tokens=len(ref_entity_tokens),
        ignored_entities=tuple(ignored),
    )


@dataclass(frozen=True)
class CorpusScore:
    """Corpus-level ContextASR figures (summed counts, then divided).

    Attributes:
        utterances: number of utterances.
        errors: summed token edit distances.
        reference_tokens: summed reference tokens.
        entity_errors: summed entity edit distances.
        entity_tokens: summed reference entity tokens.
        entity_hits: summed exact (capped) hypothesis entity matches.
        entity_occurrences: summed reference entity occurrences.
    """

    utterances: int
    errors: int
    reference_tokens: int
    entity_errors: int
    entity_tokens: int
    entity_hits: int
    entity_occurrences: int

    @property
    def wer(self) -> float:
        """Summed token errors / summed reference tokens."""
        return _rate(self.errors, self.reference_tokens)

    @property
    def ne_wer(self) -> float:
        """Summed entity errors / summed reference entity tokens."""
        return _rate(self.entity_errors, self.entity_tokens)

    @property
    def ne_fnr(self) -> float:
        """1 − summed hits / summed reference entity occurrences."""
        return _rate(self.entity_occurrences - self.entity_hits, self.entity_occurrences)


def score_corpus(scores: Iterable[UtteranceScore]) -> CorpusScore:
    """Sum per-utterance counts into corpus-level WER, NE-WER and NE-FNR."""
    scores = list(scores)
    return CorpusScore(
        utterances=len(scores),
        errors=sum(s.errors for s in scores),
        reference_tokens=sum(s.reference_tokens for s in scores),
        entity_errors=sum(s.entity_errors for s in scores),
        entity_tokens=sum(s.entity_tokens for s in scores),
        entity_hits=sum(len(s.hypothesis_entities) for s in scores),
        entity_occurrences=sum(len(s.reference_entities) for s in scores),
    )
