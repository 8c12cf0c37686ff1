"""Text normalisation of the ContextASR-Bench scorer (paper §3.2 evaluates on ContextASR-Bench).

Both languages go through the same steps, so a Chinese transcript becomes one token per character (WER is then in
effect a CER) and an English one a list of lower-case words.
"""

from __future__ import annotations

import contractions
import regex

__all__ = ["normalize_text"]

# The scorer's punctuation classes (English and CJK; mid-sentence, sentence-final and non-stop), curly quotes
# included: a "’" left after contractions are expanded splits its word ("Zorbak’s" → "zorbak s"), as "'" does. "-" and
# "'" are handled separately: they become spaces only after contractions are expanded.
_PUNCTUATION = (
    ',;(){}[]"|:!?.#$%&*+/<=>@\\^_`~'
    "，；､、丶｟｠《》（）｢｣［］｛｝「｣『』【】〔〕〖〗〘〙〚〛〈〉｜："
    "！？｡。"
    "＂＃＄％＆＇＊＋－／＜＝＞＠＼＾＿｀～〃〜〝〞〟〰〾〿‘’‛“”„‟…‧﹏·•・′″–—―"
)
_PUNCTUATION_RE = regex.compile("[" + regex.escape(_PUNCTUATION) + "]")
_CJK = r"\p{Han}\p{Hangul}\p{Hiragana}\p{Katakana}"
_CJK_CJK = regex.compile(rf"(?<=[{_CJK}])(?=[{_CJK}])")
_CJK_LATIN = regex.compile(rf"(?<=[{_CJK}])(?=\p{{IsLatin}})|(?<=\p{{IsLatin}})(?=[{_CJK}])")
# The scorer's lone "o'" rule ("o' clock" keeps its letter instead of becoming "of clock"), applied to each case as
# the scorer does, before contractions are expanded.
_LONE_O = [(regex.compile(rf"^{o}'\s|\s{o}'$|\s{o}'\s"), f" {o} ") for o in "Oo"]


def _merge_single_letters(tokens: list[str]) -> list[str]:
    """Join runs of spelled-out letters: "t o e f l" → "toefl". As in the scorer, a letter followed by a plural "s"
    ("a b cs", but also the words "is", "as", "us") counts as part of a run."""
    merged: list[str] = []
    run: list[str] = []
    for token in tokens:
        first = token[0]
        if (first.islower() or first.isupper()) and token[1:] in ("", "s"):
            run.append(token)
            continue
        if run:
            merged.append("".join(run))
            run = []
        merged.append(token)
    if run:
        merged.append("".join(run))
    return merged


def normalize_text(text: str) -> str:
    """Normalise a transcript the way ContextASR-Bench scores it, returning space-separated tokens.

    Steps, in the scorer's order: all-capital text is lower-cased; a lone "o'" becomes "o"; contractions are
    expanded by the ``contractions`` package exactly as the scorer calls it (``fix(text, leftovers=False,
    slang=False)``: "don't" and "don’t" → "do not", "here's" → "here is", "gonna" → "going to", "Jan." → "January");
    punctuation of both languages (curly quotes included), "-" and "'" become spaces; a space goes between adjacent
    CJK characters and at CJK↔Latin boundaries (digits stay glued to their neighbours: "2024年" is one token); runs
    of single letters are merged ("T O E F L" → "toefl"); everything is lower-cased. Text containing "İ", on which
    the scorer's contraction step fails, is lower-cased before that step.

    >>> normalize_text("I'm taking the T O E F L in 北京大学, OK?")
    'i am taking the toefl in 北 京 大 学 ok'
    """
    # As the scorer does, all-capital text is lower-cased first: the letter-merging rule is case-sensitive ("IS" is
    # not a letter + plural "s"). Where the scorer fails: `contractions` misaligns its matches on text whose
    # lower-casing changes length (only "İ" does) and can raise IndexError, so such text is lower-cased first too.
    if text.isupper() or len(text.lower()) != len(text):
        text = text.lower()
    for pattern, replacement in _LONE_O:
        text = pattern.sub(replacement, text)
    text = contractions.fix(text, leftovers=False, slang=False)
    text = _PUNCTUATION_RE.sub(" ", text).replace("-", " ").replace("'", " ")
    text = _CJK_LATIN.sub(" ", _CJK_CJK.sub(" ", text))
    tokens = text.split()
    return " ".join(_merge_single_letters(tokens)).lower()
