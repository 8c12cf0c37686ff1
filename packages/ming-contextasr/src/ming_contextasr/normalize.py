"""Text normalisation of the ContextASR-Bench scorer (paper §3.2 evaluates on ContextASR-Bench).

Both languages go through the same steps, so a Chinese transcript becomes one token per character (WER is then in
effect a CER) and an English one a list of lower-case words.
"""

from __future__ import annotations

import regex

__all__ = ["normalize_text"]

# The scorer's punctuation classes (English and CJK; mid-sentence, sentence-final and non-stop), plus the curly
# double quotes. "-" and "'" are handled separately: they become spaces only after contractions are expanded.
_PUNCTUATION = (
    ',;(){}[]"|:!?.#$%&*+/<=>@\\^_`~'
    "，；､、丶｟｠《》（）｢｣［］｛｝「｣『』【】〔〕〖〗〘〙〚〛〈〉｜："
    "！？｡。"
    "＂＃＄％＆＇＊＋－／＜＝＞＠＼＾＿｀～〃〜〝〞〟〰〾〿‛“”„‟…‧﹏·•・′″–—―"
)
_PUNCTUATION_RE = regex.compile("[" + regex.escape(_PUNCTUATION) + "]")
_CJK = r"\p{Han}\p{Hangul}\p{Hiragana}\p{Katakana}"
_CJK_CJK = regex.compile(rf"(?<=[{_CJK}])(?=[{_CJK}])")
_CJK_LATIN = regex.compile(rf"(?<=[{_CJK}])(?=\p{{IsLatin}})|(?<=\p{{IsLatin}})(?=[{_CJK}])")
_LONE_O = regex.compile(r"(?:^|(?<=\s))o'(?=\s|$)")  # "o' clock"-style lone "o'" keeps its letter

# Standard English contractions (the `contractions` package's table with slang and leftovers off, which the scorer
# uses); matched on whole words, after lower-casing.
_CONTRACTIONS = {
    "ain't": "are not",
    "aren't": "are not",
    "can't": "cannot",
    "can't've": "cannot have",
    "'cause": "because",
    "could've": "could have",
    "couldn't": "could not",
    "couldn't've": "could not have",
    "didn't": "did not",
    "doesn't": "does not",
    "don't": "do not",
    "hadn't": "had not",
    "hasn't": "has not",
    "haven't": "have not",
    "he'd": "he would",
    "he'll": "he will",
    "he's": "he is",
    "how'd": "how did",
    "how'll": "how will",
    "how's": "how is",
    "i'd": "i would",
    "i'll": "i will",
    "i'm": "i am",
    "i've": "i have",
    "isn't": "is not",
    "it'd": "it would",
    "it'll": "it will",
    "it's": "it is",
    "let's": "let us",
    "ma'am": "madam",
    "mightn't": "might not",
    "might've": "might have",
    "mustn't": "must not",
    "must've": "must have",
    "needn't": "need not",
    "o'clock": "of the clock",
    "shan't": "shall not",
    "she'd": "she would",
    "she'll": "she will",
    "she's": "she is",
    "should've": "should have",
    "shouldn't": "should not",
    "that'd": "that would",
    "that's": "that is",
    "there'd": "there would",
    "there's": "there is",
    "they'd": "they would",
    "they'll": "they will",
    "they're": "they are",
    "they've": "they have",
    "wasn't": "was not",
    "we'd": "we would",
    "we'll": "we will",
    "we're": "we are",
    "we've": "we have",
    "weren't": "were not",
    "what'll": "what will",
    "what're": "what are",
    "what's": "what is",
    "what've": "what have",
    "when's": "when is",
    "where'd": "where did",
    "where's": "where is",
    "where've": "where have",
    "who'll": "who will",
    "who's": "who is",
    "who've": "who have",
    "why's": "why is",
    "won't": "will not",
    "would've": "would have",
    "wouldn't": "would not",
    "y'all": "you all",
    "you'd": "you would",
    "you'll": "you will",
    "you're": "you are",
    "you've": "you have",
}
_CONTRACTION_RE = regex.compile(
    r"(?<![\p{L}'])(" + "|".join(regex.escape(c) for c in sorted(_CONTRACTIONS, key=len, reverse=True)) + r")(?!\p{L})"
)


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

    Steps: lower-case; a lone "o'" becomes "o"; English contractions are expanded ("don't" → "do not"; curly
    apostrophes count as "'"); punctuation of both languages, "-" and "'" become spaces; a space goes between
    adjacent CJK characters and at CJK↔Latin boundaries (digits stay glued to their neighbours: "2024年" is one
    token); runs of single letters are merged ("T O E F L" → "toefl").

    >>> normalize_text("I'm taking the T O E F L in 北京大学, OK?")
    'i am taking the toefl in 北 京 大 学 ok'
    """
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = _LONE_O.sub("o", text)
    text = _CONTRACTION_RE.sub(lambda m: _CONTRACTIONS[m.group(1)], text)
    text = _PUNCTUATION_RE.sub(" ", text).replace("-", " ").replace("'", " ")
    text = _CJK_LATIN.sub(" ", _CJK_CJK.sub(" ", text))
    tokens = text.split()
    return " ".join(_merge_single_letters(tokens)) if tokens else ""
